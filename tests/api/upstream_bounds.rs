//! What keygate reads of an upstream answer is bounded: error bodies up to
//! 64 KB, successful ones up to `MAX_UPSTREAM_BODY_BYTES`, one stream line
//! up to 1 MiB. Past a bound the attempt is the provider's fault.

use fake_upstream::SseFrame;
use serde_json::json;

use crate::helpers::{Canned, TestApp, error_of};

#[tokio::test]
async fn an_answer_over_max_upstream_body_bytes_is_the_providers_fault() {
    let app = TestApp::configured(1, |env| env.set("MAX_UPSTREAM_BODY_BYTES", "2000")).await;
    let big = fake_upstream::anthropic_message(&"x".repeat(5000), "claude-sonnet-4-20250514");
    app.upstream.always(app.key(0), Canned::json(200, big));
    let response = app.hello().await;
    assert_eq!(response.status(), 502);
    let (_, message) = error_of(response).await;
    assert!(
        message.contains("larger than MAX_UPSTREAM_BODY_BYTES (2000 bytes)"),
        "{message}"
    );
    // A normal answer still fits.
    let app = TestApp::configured(1, |env| env.set("MAX_UPSTREAM_BODY_BYTES", "2000")).await;
    assert_eq!(app.hello().await.status(), 200);
}

#[tokio::test]
async fn only_the_first_64_kb_of_an_error_body_are_read() {
    let app = TestApp::with_keys(1).await;
    // A valid JSON error, but padded past 64 KB: cut at the bound it no
    // longer parses, so the message is an excerpt of the raw body.
    let padded = json!({"type": "error", "padding": "p".repeat(100_000),
                        "error": {"type": "invalid_request_error", "message": "the real message"}});
    app.upstream.always(app.key(0), Canned::json(400, padded));
    let response = app.hello().await;
    assert_eq!(response.status(), 400);
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "invalid_request_error");
    assert!(!message.contains("the real message"), "{message}");
    assert!(
        message.starts_with(r#"{"type":"error","padding":"ppp"#),
        "{message}"
    );
    assert!(message.len() <= 200);
}

#[tokio::test]
async fn a_stream_line_over_1_mib_fails_the_attempt() {
    let app = TestApp::with_keys(1).await;
    let endless = SseFrame::event("content_block_delta", "y".repeat(1_100_000));
    app.upstream.always(app.key(0), Canned::sse([endless]));
    let response = app
        .chat(json!({"stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(response.status(), 502);
    let (_, message) = error_of(response).await;
    assert!(
        message.contains("a stream line is longer than 1048576 bytes"),
        "{message}"
    );
}
