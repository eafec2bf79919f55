#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The fake upstream itself: streams are really streamed, broken and stalled
//! on request, the default OpenAI stream is complete, and the standalone
//! binary announces itself and answers.

use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_upstream::{Canned, FakeUpstream, SseFrame, anthropic_stream_frames};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Generous bound so a broken fake fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(10);

async fn post(url: &str, path: &str, key: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn encoded(frames: &[SseFrame]) -> Vec<u8> {
    frames.iter().flat_map(|frame| frame.encode()).collect()
}

#[tokio::test]
async fn a_paced_stream_arrives_frame_by_frame() {
    let upstream = FakeUpstream::start().await;
    let frames = anthropic_stream_frames(&["Hel", "lo", " wor", "ld"]);
    let pace = Duration::from_millis(50);
    upstream.queue("k", [Canned::sse(frames.clone()).paced(pace)]);

    let started = Instant::now();
    let response = post(&upstream.url, "/v1/messages", "k", json!({"stream": true})).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    let mut received = first.to_vec();
    while let Some(chunk) = tokio::time::timeout(PATIENCE, body.next()).await.unwrap() {
        received.extend_from_slice(&chunk.unwrap());
    }
    let last_at = started.elapsed();

    assert_eq!(
        first,
        frames[0].encode(),
        "the first read is the first frame alone"
    );
    assert_eq!(received, encoded(&frames));
    // The last frame is sent no earlier than one pace per frame; the first
    // was in hand while most of those paces were still to come.
    let all_paces = pace * u32::try_from(frames.len()).unwrap();
    assert!(last_at >= all_paces, "{last_at:?}");
    assert!(
        first_at + all_paces / 2 <= last_at,
        "first frame at {first_at:?}, end at {last_at:?}"
    );
}

#[tokio::test]
async fn a_cut_stream_is_a_body_error_after_its_frames() {
    let upstream = FakeUpstream::start().await;
    let frames = anthropic_stream_frames(&["a", "b", "c"]);
    upstream.queue("k", [Canned::sse(frames.clone()).cut_after(3)]);

    let response = post(&upstream.url, "/v1/messages", "k", json!({"stream": true})).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    let outcome = tokio::time::timeout(PATIENCE, async {
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => received.extend_from_slice(&bytes),
                Err(error) => return Some(error),
            }
        }
        None
    })
    .await
    .unwrap();

    assert!(
        outcome.is_some(),
        "the body ended cleanly instead of breaking"
    );
    assert_eq!(received, encoded(&frames[..3]));
}

#[tokio::test]
async fn a_stalled_stream_sends_its_frames_then_nothing() {
    let upstream = FakeUpstream::start().await;
    let frames = anthropic_stream_frames(&["a"]);
    upstream.queue("k", [Canned::sse(frames.clone()).stall_after(1)]);

    let response = post(&upstream.url, "/v1/messages", "k", json!({"stream": true})).await;
    let mut body = response.bytes_stream();
    let first: Bytes = body.next().await.unwrap().unwrap();
    assert_eq!(first, frames[0].encode());
    let next = tokio::time::timeout(Duration::from_millis(300), body.next()).await;
    assert!(next.is_err(), "the stream went on: {next:?}");
}

#[tokio::test]
async fn the_default_openai_stream_ends_with_usage_then_done() {
    let upstream = FakeUpstream::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", upstream.url))
        .bearer_auth("sk-openai-test")
        .json(&json!({
            "model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hi"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "9999");
    assert!(response.headers().contains_key("x-request-id"));
    let text = response.text().await.unwrap();

    let mut events: Vec<&str> = text.split_terminator("\n\n").collect();
    assert_eq!(events.pop(), Some("data: [DONE]"));
    let chunks: Vec<Value> = events
        .iter()
        .map(|event| serde_json::from_str(event.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let (usage_chunk, content_chunks) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 25);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 86);
    assert_eq!(usage_chunk["usage"]["total_tokens"], 111);
    let content: String = content_chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello from the fake upstream");
    assert!(chunks.iter().all(|chunk| chunk["model"] == "gpt-4o"));

    let calls = upstream.calls();
    assert_eq!(calls[0].key, "sk-openai-test");
    assert_eq!(calls[0].path, "/v1/chat/completions");
}

#[tokio::test]
async fn the_binary_announces_its_address_and_answers_by_default() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("fake upstream listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));

    let response = post(
        url,
        "/v1/messages",
        "sk-ant-test",
        json!({"model": "claude-3-5-haiku-20241022", "max_tokens": 10,
               "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["request-id"].to_str().unwrap();
    assert!(request_id.starts_with("req_fake"), "{request_id}");
    assert!(
        response
            .headers()
            .contains_key("anthropic-ratelimit-requests-reset")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "claude-3-5-haiku-20241022");
    assert_eq!(body["content"][0]["text"], "Hello from the fake upstream");
    assert_eq!(body["usage"]["output_tokens"], 86);
}

#[tokio::test]
async fn stored_responses_and_batches_are_visible_only_to_their_creating_key() {
    let upstream = FakeUpstream::start().await;
    let created: Value = post(
        &upstream.url,
        "/v1/responses",
        "mine",
        json!({"model": "gpt-4.1-mini", "input": "hi"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let follow_up = |key: &'static str| {
        post(
            &upstream.url,
            "/v1/responses",
            key,
            json!({"model": "gpt-4.1-mini", "input": "more", "previous_response_id": id}),
        )
    };
    assert_eq!(follow_up("mine").await.status(), 200);
    let foreign = follow_up("theirs").await;
    assert_eq!(foreign.status(), 404);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["error"]["code"], "previous_response_not_found");

    let batch: Value = post(
        &upstream.url,
        "/v1/messages/batches",
        "mine",
        json!({"requests": [{"custom_id": "a", "params": {"model": "m", "max_tokens": 1,
                                                           "messages": []}}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let get = |key: &'static str| {
        reqwest::Client::new()
            .get(format!(
                "{}/v1/messages/batches/{}",
                upstream.url,
                batch["id"].as_str().unwrap()
            ))
            .header("x-api-key", key)
            .send()
    };
    assert_eq!(get("theirs").await.unwrap().status(), 404);
    let polled: Value = get("mine").await.unwrap().json().await.unwrap();
    assert_eq!(polled["processing_status"], "ended");
    assert!(
        polled["results_url"]
            .as_str()
            .unwrap()
            .ends_with("/results")
    );
}
