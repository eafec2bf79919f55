//! One validation for every route: the same field gets the same check and
//! the same 400 whether it arrives on `/api/chat`, on `/v1/messages` or on
//! `/v1/chat/completions` (translated for a `claude-` model), and nothing
//! that fails a check reaches an upstream.

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_of};

fn completions(overrides: Value) -> Value {
    let mut body = json!({"model": "claude-sonnet-4-20250514",
                          "messages": [{"role": "user", "content": "Hi"}]});
    for (field, value) in overrides.as_object().unwrap() {
        body[field] = value.clone();
    }
    body
}

fn chat(overrides: Value) -> Value {
    let mut body = json!({"messages": [{"role": "user", "content": "Hi"}]});
    for (field, value) in overrides.as_object().unwrap() {
        body[field] = value.clone();
    }
    body
}

fn messages(overrides: Value) -> Value {
    let mut body = json!({"model": "claude-sonnet-4-20250514", "max_tokens": 10,
                          "messages": [{"role": "user", "content": "Hi"}]});
    for (field, value) in overrides.as_object().unwrap() {
        body[field] = value.clone();
    }
    body
}

#[tokio::test]
async fn bad_fields_get_the_same_400_on_every_route_and_never_go_upstream() {
    let app = TestApp::with_keys(1).await;
    let cases = [
        (
            json!({"max_tokens": -1}),
            "max_tokens: must be a positive integer",
        ),
        (
            json!({"max_tokens": 1e30}),
            "max_tokens: must be a positive integer",
        ),
        (
            json!({"max_tokens": 1.5}),
            "max_tokens: must be a positive integer",
        ),
        (
            json!({"max_tokens": "lots"}),
            "max_tokens: must be a positive integer",
        ),
        (
            json!({"max_tokens": 0}),
            "max_tokens: must be a positive integer",
        ),
        (
            json!({"temperature": "hot"}),
            "temperature: must be a number",
        ),
        (json!({"top_p": "high"}), "top_p: must be a number"),
        (json!({"stream": "yes"}), "stream: must be true or false"),
    ];
    for (fields, expected) in &cases {
        for (path, body) in [
            ("/api/chat", chat(fields.clone())),
            ("/v1/chat/completions", completions(fields.clone())),
            ("/v1/messages", messages(fields.clone())),
        ] {
            let response = app.post(path).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 400, "{path} {fields}");
            let (error_type, message) = error_of(response).await;
            assert_eq!(error_type, "invalid_request_error", "{path}");
            assert_eq!(message, *expected, "{path} {fields}");
        }
    }
    // Stop sequences: /api/chat and /v1/messages call them stop_sequences,
    // OpenAI's API calls them stop.
    for (path, body, expected) in [
        (
            "/api/chat",
            chat(json!({"stop_sequences": [5]})),
            "stop_sequences: must be an array of strings",
        ),
        (
            "/v1/messages",
            messages(json!({"stop_sequences": "END"})),
            "stop_sequences: must be an array of strings",
        ),
        (
            "/v1/chat/completions",
            completions(json!({"stop": 5})),
            "stop: must be a string or an array of strings",
        ),
    ] {
        let response = app.post(path).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let (_, message) = error_of(response).await;
        assert_eq!(message, expected, "{path}");
    }
    assert!(
        app.upstream.calls().is_empty(),
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn a_message_without_readable_content_is_refused_on_the_pass_through_route() {
    let app = TestApp::with_keys(2).await;
    for (messages_value, expected) in [
        (
            json!([{"role": "user", "content": null}]),
            "messages[0].content: must be a string or an array of content blocks",
        ),
        (
            json!([{"role": "user"}]),
            "messages[0].content: must be a string or an array of content blocks",
        ),
        (
            json!([{"content": "Hi"}]),
            "messages[0].role: must be a string",
        ),
        (
            json!(["Hi"]),
            "messages[0]: must be an object with \"role\" and \"content\"",
        ),
    ] {
        let response = app
            .post("/v1/messages")
            .json(&messages(json!({"messages": messages_value})))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{messages_value}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error", "Anthropic's shape");
        assert_eq!(body["error"]["message"], expected);
    }
    assert!(app.upstream.calls().is_empty());
    for i in 0..2 {
        assert_eq!(app.key_status(i).await["failures"], 0);
    }
}

#[tokio::test]
async fn valid_bodies_still_pass_on_every_route() {
    let app = TestApp::with_keys(1).await;
    for (path, body) in [
        (
            "/api/chat",
            chat(json!({"max_tokens": 5, "temperature": 0.5, "stop_sequences": ["X"]})),
        ),
        (
            "/v1/messages",
            messages(json!({"temperature": 1, "stop_sequences": ["X"]})),
        ),
        (
            "/v1/chat/completions",
            completions(json!({"max_tokens": 5, "temperature": 0, "stop": "X"})),
        ),
    ] {
        let response = app.post(path).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}
