//! The routes beyond chat: OpenAI's embeddings and Responses API, and
//! Anthropic's token counting. Each passes the client's body through with
//! a pool key, rotates on the same failures as chat, and leaves a ledger
//! row under its own route with its usage and cost.

use serde_json::{Value, json};

use crate::helpers::{Canned, TestApp, sse_frames};
use crate::ledger_rows::rows;

const TEXT: &str = "Hello from the fake upstream";

fn response_request(stream: bool) -> Value {
    json!({"model": "gpt-4.1-mini", "input": "Say hello", "stream": stream})
}

#[tokio::test]
async fn embeddings_pass_batched_input_through_and_are_priced_per_input_token() {
    let app = TestApp::with_both(0, 1).await;
    let request = json!({"model": "text-embedding-3-small", "input": ["one", "two", "three"]});
    let response = app
        .post("/v1/embeddings")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    assert_eq!(body["usage"]["prompt_tokens"], 24);
    let call = &app.upstream.calls()[0];
    assert_eq!(call.path, "/v1/embeddings");
    assert_eq!(call.body, request, "the body goes upstream unchanged");
    assert_eq!(call.key, app.openai_key(0));
    let row = &rows(&app, 1).await[0];
    assert_eq!(row["route"], "/v1/embeddings");
    assert_eq!(row["tokens"]["input"], 24);
    // $0.02 per million tokens: 20 nano-dollars a token.
    assert_eq!(row["cost_nanos"], 24 * 20);

    let missing = app
        .post("/v1/embeddings")
        .json(&json!({"model": "text-embedding-3-small"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["message"], "input: field required");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn count_tokens_costs_nothing_but_rotates_and_cools_on_a_rate_limit() {
    let app = TestApp::with_keys(2).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow down").header("retry-after", "30")],
    );
    let request = json!({"model": "claude-sonnet-4-20250514",
                         "messages": [{"role": "user", "content": "Hello"}]});
    let response = app
        .post("/v1/messages/count_tokens")
        .header("anthropic-beta", "token-counting-2024-11-01")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-keygate-attempts"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"input_tokens": 25}));
    let calls = app.upstream.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.path == "/v1/messages/count_tokens"));
    assert_eq!(calls[1].key, app.key(1));
    assert_eq!(
        calls[1].headers["anthropic-beta"],
        "token-counting-2024-11-01"
    );
    assert_eq!(app.key_status(0).await["state"], "cooling_down");
    let row = &rows(&app, 1).await[0];
    assert_eq!(row["route"], "/v1/messages/count_tokens");
    assert_eq!(row["cost_nanos"], 0);
    assert_eq!(row["attempts"], 2);

    // The Messages rules for the body, without max_tokens.
    let bad = app
        .post("/v1/messages/count_tokens")
        .json(&json!({"model": "claude-sonnet-4-20250514", "messages": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["type"], "error", "Anthropic's error shape");
}

#[tokio::test]
async fn a_plain_response_is_passed_through_and_priced_like_chat() {
    let app = TestApp::with_both(0, 1).await;
    let response = app
        .post("/v1/responses")
        .json(&response_request(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "9999");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(body["output"][0]["content"][0]["text"], TEXT);
    assert_eq!(app.upstream.calls()[0].path, "/v1/responses");
    let row = &rows(&app, 1).await[0];
    assert_eq!(row["route"], "/v1/responses");
    assert_eq!(
        (
            row["tokens"]["input"].clone(),
            row["tokens"]["output"].clone()
        ),
        (json!(25), json!(86))
    );
    // gpt-4.1-mini: $0.40 in, $1.60 out per million tokens.
    assert_eq!(row["cost_nanos"], 25 * 400 + 86 * 1600);
}

#[tokio::test]
async fn a_streamed_response_passes_every_event_in_order() {
    let app = TestApp::with_both(0, 1).await;
    let response = app
        .post("/v1/responses")
        .json(&response_request(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let frames = sse_frames(response).await;
    let names: Vec<&str> = frames
        .iter()
        .map(|f| f.event.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names.first().copied(), Some("response.created"));
    assert_eq!(names.last().copied(), Some("response.completed"));
    assert!(names.contains(&"response.output_item.added"));
    let sequence: Vec<u64> = frames
        .iter()
        .map(|f| {
            serde_json::from_str::<Value>(&f.data).unwrap()["sequence_number"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(sequence, (0..frames.len() as u64).collect::<Vec<_>>());
    let text: String = frames
        .iter()
        .filter(|f| f.event.as_deref() == Some("response.output_text.delta"))
        .map(|f| {
            serde_json::from_str::<Value>(&f.data).unwrap()["delta"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text, TEXT);
    let row = &rows(&app, 1).await[0];
    assert_eq!(row["tokens"]["output"], 86);
    assert!(row["error_class"].is_null());
}

#[tokio::test]
async fn a_stream_that_fails_before_content_moves_on_and_one_that_breaks_after_ends_with_an_error_event()
 {
    let app = TestApp::with_both(0, 2).await;
    let failing =
        json!({"type": "error", "code": "server_error", "message": "boom", "sequence_number": 0});
    app.upstream.queue(
        app.openai_key(0),
        [Canned::sse([fake_upstream::SseFrame::event(
            "error",
            failing.to_string(),
        )])],
    );
    let response = app
        .post("/v1/responses")
        .json(&response_request(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-keygate-attempts"], "2");
    let frames = sse_frames(response).await;
    assert_eq!(
        frames.last().unwrap().event.as_deref(),
        Some("response.completed")
    );

    // Past the first content nothing is retried, and the end is honest.
    let whole = fake_upstream::response_stream_frames(
        &fake_upstream::response_object("gpt-4.1-mini", TEXT, None, true),
        &["Hel", "lo"],
    );
    let key = app.openai_key(1).to_string();
    app.upstream
        .queue(&key, [Canned::sse(whole.clone()).cut_after(6)]);
    app.upstream
        .queue(app.openai_key(0), [Canned::sse(whole.clone()).cut_after(6)]);
    let response = app
        .post("/v1/responses")
        .json(&response_request(true))
        .send()
        .await
        .unwrap();
    let frames = sse_frames(response).await;
    let last = frames.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    let error: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(error["type"], "error");
    assert!(
        frames
            .iter()
            .all(|f| f.event.as_deref() != Some("response.completed"))
    );
}
