//! `"stream": true` on /api/chat: the event sequence, the first-content
//! gate (failover before the first byte, an error event after it), live
//! delivery, stalls, and statistics when the client hangs up.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{Canned, SseFrame, TestApp, anthropic_stream_frames, data_events};

fn stream_body(provider: &str) -> Value {
    json!({"provider": provider, "stream": true, "messages": [{"role": "user", "content": "Hello!"}]})
}

const TEXT: &str = "Hello from the fake upstream";

fn error_frame(error_type: &str) -> SseFrame {
    SseFrame {
        event: Some("error".into()),
        data: json!({"type": "error", "error": {"type": error_type, "message": "Overloaded"}})
            .to_string(),
    }
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "delta")
        .map(|e| e["text"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn anthropic_streams_start_deltas_and_done_with_usage_and_cost() {
    let app = TestApp::with_keys(1).await;
    let response = app.chat(stream_body("anthropic")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-keygate-attempts"], "1");
    let events = data_events(response).await;
    let start = &events[0];
    assert_eq!(start["type"], "start");
    assert_eq!(start["provider"], "anthropic");
    assert_eq!(start["model"], "claude-sonnet-4-20250514");
    assert!(start["key"].as_str().unwrap().starts_with("key_"));
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(text_of(&events), TEXT);
    let done = events.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["stop_reason"], "end_turn");
    assert_eq!(
        done["usage"],
        json!({"input_tokens": 25, "output_tokens": 86, "total_tokens": 111})
    );
    assert_eq!(done["cost"]["total"].as_f64(), Some(0.001365));
    assert_eq!(done["attempts"], 1);
    assert_eq!(app.upstream.calls()[0].body["stream"], true);
    let stats = app.status().await["stats"].clone();
    assert_eq!(
        (
            stats["successful_requests"].as_u64(),
            stats["failed_requests"].as_u64()
        ),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn openai_streams_the_same_events_priced_from_its_usage_chunk() {
    let app = TestApp::with_both(0, 1).await;
    let events = data_events(app.chat(stream_body("openai")).await).await;
    assert_eq!(events[0]["type"], "start");
    assert_eq!(events[0]["model"], "gpt-4o-mini");
    assert_eq!(text_of(&events), TEXT);
    let done = events.last().unwrap();
    assert_eq!(done["stop_reason"], "end_turn");
    assert_eq!(done["usage"]["total_tokens"], 111);
    // 25 × $0.15 + 86 × $0.60 per million tokens
    assert_eq!(done["cost"]["total"].as_f64(), Some(0.00005535));
    let sent = &app.upstream.calls()[0].body;
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn failures_before_the_first_content_move_to_the_next_key() {
    let app = TestApp::configured(4, |env| env.set("MAX_ATTEMPTS", "4")).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow").header("retry-after", "30")],
    );
    app.upstream.queue(
        app.key(1),
        [Canned::sse(vec![error_frame("overloaded_error")])],
    );
    app.upstream.queue(app.key(2), [Canned::sse(Vec::new())]);
    let events = data_events(app.chat(stream_body("anthropic")).await).await;
    assert_eq!(
        events[0]["type"], "start",
        "the client saw none of the failed attempts"
    );
    assert_eq!(text_of(&events), TEXT);
    assert_eq!(events.last().unwrap()["attempts"], 4);
    let status = app.status().await;
    assert_eq!(status["keys"][0]["state"], "cooling_down");
    assert_eq!(status["keys"][1]["state"], "active");
    assert_eq!(
        status["keys"][1]["failure_history"][0]["error_type"],
        "overloaded_error"
    );
    assert_eq!(
        status["keys"][2]["failure_history"][0]["error_type"],
        "empty_stream"
    );
    assert_eq!(status["stats"]["rotations"], 3);
}

#[tokio::test]
async fn a_failure_after_the_stream_started_ends_it_with_an_error_event() {
    let app = TestApp::with_keys(2).await;
    let mut frames = anthropic_stream_frames(&["Hel", "lo"]);
    frames.truncate(4); // message_start, ping, block start, first delta
    frames.push(error_frame("overloaded_error"));
    app.upstream.queue(app.key(0), [Canned::sse(frames)]);
    let events = data_events(app.chat(stream_body("anthropic")).await).await;
    assert_eq!(events[0]["type"], "start");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["error"]["type"], "overloaded_error");
    assert!(events.iter().all(|e| e["type"] != "done"));
    assert_eq!(
        app.upstream.calls().len(),
        1,
        "nothing is retried after the first byte"
    );
    let status = app.status().await;
    assert_eq!(status["keys"][0]["failures"], 1);
    assert_eq!(status["stats"]["failed_requests"], 1);
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_an_error_not_done() {
    let app = TestApp::with_keys(1).await;
    app.upstream.queue(
        app.key(0),
        [Canned::sse(anthropic_stream_frames(&["a", "b", "c"])).cut_after(5)],
    );
    let events = data_events(app.chat(stream_body("anthropic")).await).await;
    assert_eq!(events.last().unwrap()["type"], "error");
    assert!(events.iter().all(|e| e["type"] != "done"));
}

#[tokio::test]
async fn a_stalled_stream_ends_after_the_idle_timeout() {
    let app = TestApp::configured(1, |env| env.set("STREAM_IDLE_TIMEOUT_SECS", "0.3")).await;
    app.upstream.queue(
        app.key(0),
        [Canned::sse(anthropic_stream_frames(&["a", "b", "c"])).stall_after(5)],
    );
    let started = Instant::now();
    let events = data_events(app.chat(stream_body("anthropic")).await).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["error"]["type"], "timeout_error");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn deltas_reach_the_client_as_they_arrive() {
    let app = TestApp::with_keys(1).await;
    let pace = Duration::from_millis(150);
    app.upstream.queue(
        app.key(0),
        [Canned::sse(anthropic_stream_frames(&["one ", "two ", "three ", "four"])).paced(pace)],
    );
    let started = Instant::now();
    let response = app.chat(stream_body("anthropic")).await;
    let mut body = response.bytes_stream();
    let mut first_delta = None;
    let mut seen = String::new();
    while let Some(chunk) = body.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if first_delta.is_none() && seen.contains("\"delta\"") {
            first_delta = Some(started.elapsed());
        }
    }
    let finished = started.elapsed();
    let first_delta = first_delta.expect("a delta arrived");
    // Four more paced frames follow the first delta upstream; had keygate
    // buffered the answer, the first delta would arrive with the last.
    assert!(
        first_delta + pace * 3 < finished,
        "first delta at {first_delta:?}, stream done at {finished:?}"
    );
}

#[tokio::test]
async fn a_client_hanging_up_mid_stream_is_still_recorded() {
    let app = TestApp::with_keys(1).await;
    app.upstream.queue(
        app.key(0),
        [
            Canned::sse(anthropic_stream_frames(&["a", "b", "c", "d", "e", "f"]))
                .paced(Duration::from_millis(200)),
        ],
    );
    let response = app.chat(stream_body("anthropic")).await;
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("start"));
    drop(body);
    // The relay notices the hang-up at its next write and records then.
    let mut stats = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = app.status().await;
        if stats["stats"]["failed_requests"] == 1 {
            break;
        }
    }
    assert_eq!(stats["stats"]["total_requests"], 1);
    assert_eq!(
        stats["stats"]["failed_requests"], 1,
        "a request cut short is not a success"
    );
    assert_eq!(stats["keys"][0]["requests"], 1);
    assert_eq!(
        stats["keys"][0]["successes"], 1,
        "the key itself answered fine"
    );
}
