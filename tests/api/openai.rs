//! The OpenAI pool behind /api/chat: its own keys, Bearer auth, pricing with
//! cached tokens, and `insufficient_quota` taking a key out of rotation.

use serde_json::{Value, json};

use crate::helpers::{Canned, TestApp, error_of};

fn openai_body() -> Value {
    json!({"provider": "openai", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]})
}

#[tokio::test]
async fn api_chat_serves_openai_from_its_own_pool() {
    let app = TestApp::with_both(1, 2).await;
    let response = app.chat(openai_body()).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .contains_key("x-ratelimit-remaining-requests")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["provider"], "openai");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["content"], "Hello from the fake upstream");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 25, "output_tokens": 86, "total_tokens": 111})
    );
    assert_eq!(body["cost"]["total"].as_f64(), Some(0.00005535));
    let call = &app.upstream.calls()[0];
    assert_eq!(call.path, "/v1/chat/completions");
    assert_eq!(call.key, app.openai_key(0));
    assert_eq!(
        call.headers["authorization"],
        format!("Bearer {}", app.openai_key(0))
    );
    assert_eq!(
        call.body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(call.body["max_completion_tokens"], 1024);
    let stats = app.admin_get("/api/keypool/stats").await;
    assert_eq!(stats["providers"]["openai"]["successful_requests"], 1);
    assert_eq!(stats["providers"]["anthropic"]["total_requests"], 0);
}

#[tokio::test]
async fn insufficient_quota_marks_the_key_invalid_instead_of_cooling_it() {
    let app = TestApp::with_both(0, 2).await;
    app.upstream.always(
        app.openai_key(0),
        Canned::openai_error(
            429,
            "insufficient_quota",
            Some("insufficient_quota"),
            "You exceeded your current quota",
        ),
    );
    let response = app.chat(openai_body()).await;
    assert_eq!(response.status(), 200);
    let status = app.admin_get("/api/keypool/openai/status").await;
    let key = &status["keys"][0];
    assert_eq!(key["state"], "invalid");
    assert_eq!(key["invalid_reason"], "You exceeded your current quota");
    assert_eq!(key["cooldown_remaining_secs"], 0);
    for _ in 0..3 {
        assert_eq!(app.chat(openai_body()).await.status(), 200);
    }
    assert_eq!(app.upstream.calls_with(app.openai_key(0)), 1);
}

#[tokio::test]
async fn an_ordinary_openai_429_cools_the_key_down() {
    let app = TestApp::with_both(0, 2).await;
    app.upstream.queue(
        app.openai_key(0),
        [Canned::openai_error(
            429,
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached",
        )
        .header("retry-after", "20")],
    );
    assert_eq!(app.chat(openai_body()).await.status(), 200);
    let key = &app.admin_get("/api/keypool/openai/status").await["keys"][0];
    assert_eq!(key["state"], "cooling_down");
}

#[tokio::test]
async fn an_openai_401_echoing_the_key_is_scrubbed_and_never_a_401() {
    let app = TestApp::with_both(0, 1).await;
    let key = app.openai_key(0).to_string();
    let masked = format!(
        "Incorrect API key provided: sk-proj-****{}.",
        &key[key.len() - 4..]
    );
    app.upstream.always(
        &key,
        Canned::openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            &masked,
        ),
    );
    let response = app.chat(openai_body()).await;
    assert_eq!(response.status(), 503);
    let (_, message) = error_of(response).await;
    assert!(!message.contains(&key[key.len() - 4..]), "{message}");
    let status = app.admin_get("/api/keypool/openai/status").await;
    assert_eq!(
        status["keys"][0]["last_error"],
        "Incorrect API key provided: [redacted]"
    );
}
