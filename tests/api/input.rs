//! Bad input at the edge: each gets a clear 4xx JSON error, and nothing
//! reaches the upstream.

use serde_json::json;

use crate::helpers::{TestApp, error_of};

async fn post_raw(app: &TestApp, body: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/chat", app.address))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_message_that_says_what_is_wrong() {
    let app = TestApp::with_keys(1).await;
    let cases = [
        ("{\"messages\": [", "invalid JSON body"),
        ("", "request body is empty"),
        ("[1, 2]", "must be a JSON object"),
        (
            r#"{"model": "claude-sonnet-4-20250514"}"#,
            "missing field `messages`",
        ),
        (r#"{"messages": "Hello"}"#, "messages: invalid type"),
        (r#"{"messages": []}"#, "messages: must not be empty"),
        (
            r#"{"messages": [{"role": "robot", "content": "hi"}]}"#,
            "messages[0].role: unknown variant `robot`",
        ),
        (
            r#"{"messages": [{"role": "user", "content": 42}]}"#,
            "a string or an array of content blocks",
        ),
        (
            r#"{"messages": [{"role": "user"}]}"#,
            "missing field `content`",
        ),
        (
            r#"{"messages": [{"role": "system", "content": "only a system prompt"}]}"#,
            "at least one user or assistant",
        ),
        (
            r#"{"provider": "mistral", "messages": [{"role": "user", "content": "hi"}]}"#,
            "unknown provider \"mistral\"",
        ),
        (
            r#"{"provider": 7, "messages": [{"role": "user", "content": "hi"}]}"#,
            "provider: invalid type",
        ),
        (
            r#"{"model": "", "messages": [{"role": "user", "content": "hi"}]}"#,
            "model: must not be empty",
        ),
        (
            r#"{"max_tokens": -5, "messages": [{"role": "user", "content": "hi"}]}"#,
            "max_tokens: must be a positive integer",
        ),
        (
            r#"{"max_tokens": 1.5, "messages": [{"role": "user", "content": "hi"}]}"#,
            "max_tokens: must be a positive integer",
        ),
        (
            r#"{"stream": "yes", "messages": [{"role": "user", "content": "hi"}]}"#,
            "stream: must be true or false",
        ),
        (
            r#"{"temperature": "hot", "messages": [{"role": "user", "content": "hi"}]}"#,
            "temperature: must be a number",
        ),
    ];
    for (body, expected) in cases {
        let response = post_raw(&app, body).await;
        assert_eq!(response.status(), 400, "{body}");
        let (error_type, message) = error_of(response).await;
        assert_eq!(error_type, "invalid_request_error", "{body}");
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert!(app.upstream.calls().is_empty());
    let stats = app.status().await["stats"].clone();
    assert_eq!(
        stats["total_requests"], 0,
        "refused input is not a proxied request"
    );
}

#[tokio::test]
async fn a_body_without_content_type_is_still_read() {
    let app = TestApp::with_keys(1).await;
    let response = app
        .client
        .post(format!("{}/api/chat", app.address))
        .body(r#"{"messages":[{"role":"user","content":"Hello!"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let app = TestApp::configured(1, |env| env.set("MAX_BODY_BYTES", "2048")).await;
    let big = "x".repeat(4096);
    let response = app
        .chat(json!({"messages": [{"role": "user", "content": big}]}))
        .await;
    assert_eq!(response.status(), 413);
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "request_too_large");
    assert!(message.contains("2048 bytes"), "{message}");
    assert!(app.upstream.calls().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let app = TestApp::with_keys(1).await;
    let response = app
        .client
        .get(format!("{}/api/nothing", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_of(response).await.0, "not_found_error");
    let response = app
        .client
        .get(format!("{}/api/chat", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(error_of(response).await.0, "invalid_request_error");
}

#[tokio::test]
async fn no_configured_key_is_503() {
    let app = TestApp::with_keys(0).await;
    let response = app.hello().await;
    assert_eq!(response.status(), 503);
    let (_, message) = error_of(response).await;
    assert!(message.contains("set ANTHROPIC_API_KEYS"), "{message}");
}

#[tokio::test]
async fn a_client_too_slow_with_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::configured(1, |env| env.set("HEADER_READ_TIMEOUT_SECS", "0.3")).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"POST /api/chat HTTP/1.1\r\nHost: keygate\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        slow.read_to_end(&mut buffer),
    )
    .await;
    assert!(read.is_ok(), "the connection was closed, not held");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // Meanwhile and afterwards, other clients are served.
    assert_eq!(app.hello().await.status(), 200);
}
