//! The SDK-compatible routes: /v1/messages (Anthropic), /v1/chat/completions
//! (OpenAI, and claude- models translated), /v1/models, each answering
//! errors in its API's shape; client authentication with GATEWAY_API_KEYS.

use serde_json::{Value, json};

use crate::helpers::{Canned, TestApp, anthropic_stream_frames, sse_frames};

const TEXT: &str = "Hello from the fake upstream";

fn message_request() -> Value {
    json!({"model": "claude-sonnet-4-20250514", "max_tokens": 64, "metadata": {"user_id": "u1"},
           "messages": [{"role": "user", "content": "Hello!"}]})
}

#[tokio::test]
async fn v1_messages_passes_the_body_and_version_headers_through() {
    let app = TestApp::with_keys(1).await;
    let response = app
        .post("/v1/messages")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .header("x-api-key", "whatever-the-sdk-sends")
        .json(&message_request())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    assert!(headers.contains_key("anthropic-ratelimit-requests-remaining"));
    assert_eq!(headers["x-keygate-attempts"], "1");
    assert!(
        headers["x-keygate-key"]
            .to_str()
            .unwrap()
            .starts_with("key_")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], TEXT);
    let call = &app.upstream.calls()[0];
    assert_eq!(
        call.body,
        message_request(),
        "the body goes upstream unchanged"
    );
    assert_eq!(call.headers["anthropic-beta"], "prompt-caching-2024-07-31");
    assert_eq!(call.key, app.key(0), "the pool key replaces the client's");
}

#[tokio::test]
async fn v1_messages_streams_anthropic_events_as_sent() {
    let app = TestApp::with_keys(1).await;
    let mut request = message_request();
    request["stream"] = json!(true);
    let response = app
        .post("/v1/messages")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let frames = sse_frames(response).await;
    let names: Vec<&str> = frames
        .iter()
        .map(|f| f.event.as_deref().unwrap_or(""))
        .collect();
    let expected: Vec<String> = anthropic_stream_frames(&["x"])
        .iter()
        .map(|f| f.event.clone().unwrap_or_default())
        .collect();
    assert_eq!(names.first().copied(), expected.first().map(String::as_str));
    assert_eq!(names.last().copied(), Some("message_stop"));
    let text: String = frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(&f.data).ok())
        .filter(|v| v["type"] == "content_block_delta")
        .map(|v| v["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, TEXT);
}

#[tokio::test]
async fn v1_messages_errors_use_anthropics_shape() {
    let app = TestApp::with_keys(1).await;
    let response = app
        .post("/v1/messages")
        .json(&json!({"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["message"], "max_tokens: field required");

    app.upstream.always(
        app.key(0),
        Canned::error(429, "rate_limit_error", "slow down").header("retry-after", "30"),
    );
    let response = app
        .post("/v1/messages")
        .json(&message_request())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn v1_chat_completions_passes_openai_through() {
    let app = TestApp::with_both(0, 1).await;
    let request = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}], "seed": 7});
    let response = app
        .post("/v1/chat/completions")
        .bearer_auth("sdk-placeholder")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], TEXT);
    let call = &app.upstream.calls()[0];
    assert_eq!(call.body, request);
    assert_eq!(call.key, app.openai_key(0));
}

#[tokio::test]
async fn v1_chat_completions_streams_and_honours_include_usage() {
    let app = TestApp::with_both(0, 1).await;
    let asked = json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
                       "messages": [{"role": "user", "content": "Hello!"}]});
    let frames = sse_frames(
        app.post("/v1/chat/completions")
            .json(&asked)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    let usage: Value = serde_json::from_str(&frames[frames.len() - 2].data).unwrap();
    assert_eq!(usage["usage"]["total_tokens"], 111);

    let not_asked = json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "Hello!"}]});
    let frames = sse_frames(
        app.post("/v1/chat/completions")
            .json(&not_asked)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    for frame in &frames[..frames.len() - 1] {
        let chunk: Value = serde_json::from_str(&frame.data).unwrap();
        assert!(
            !chunk["choices"].as_array().unwrap().is_empty(),
            "no usage-only chunk: {chunk}"
        );
    }
    let sent = &app.upstream.calls()[1].body;
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "keygate always asks upstream"
    );
}

#[tokio::test]
async fn claude_models_on_chat_completions_are_translated() {
    let app = TestApp::with_both(1, 0).await;
    let request = json!({"model": "claude-sonnet-4-20250514", "max_tokens": 50, "stop": ["END"], "temperature": 0.5,
                         "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]});
    let response = app
        .post("/v1/chat/completions")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], TEXT);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 25);
    assert_eq!(body["usage"]["completion_tokens"], 86);
    let call = &app.upstream.calls()[0];
    assert_eq!(call.path, "/v1/messages");
    assert_eq!(
        call.body,
        json!({"model": "claude-sonnet-4-20250514", "max_tokens": 50, "system": "Be brief.", "temperature": 0.5,
               "stop_sequences": ["END"], "messages": [{"role": "user", "content": "Hello!"}]})
    );

    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    streaming["stream_options"] = json!({"include_usage": true});
    let frames = sse_frames(
        app.post("/v1/chat/completions")
            .json(&streaming)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(&f.data).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, TEXT);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 86);
}

#[tokio::test]
async fn translated_routes_refuse_tools_in_openai_shape() {
    let app = TestApp::with_both(1, 0).await;
    let request = json!({"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "hi"}],
                         "tools": [{"type": "function", "function": {"name": "f"}}]});
    let response = app
        .post("/v1/chat/completions")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tool calls are not supported")
    );
    assert!(body["error"].as_object().unwrap().contains_key("param"));
    assert!(app.upstream.calls().is_empty());
}

#[tokio::test]
async fn v1_models_answers_in_the_callers_shape() {
    let app = TestApp::with_both(1, 1).await;
    let anthropic: Value = app
        .get("/v1/models")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sonnet = anthropic["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "claude-sonnet-4-20250514")
        .unwrap();
    assert_eq!(sonnet["type"], "model");
    assert_eq!(sonnet["created_at"], "2025-05-14T00:00:00Z");
    assert_eq!(anthropic["has_more"], false);
    let openai: Value = app
        .get("/v1/models")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "list");
    let ids: Vec<&str> = openai["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"gpt-4o-mini") && ids.contains(&"claude-sonnet-4-20250514"));
}

#[tokio::test]
async fn gateway_api_keys_guard_every_proxy_route_and_never_go_upstream() {
    let app = TestApp::configured_both(1, 1, |env| {
        env.set("GATEWAY_API_KEYS", r#"["kg-client-1","kg-client-2"]"#)
    })
    .await;
    let chat = json!({"messages": [{"role": "user", "content": "Hello!"}]});
    let completion =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]});

    let refused = app.post("/api/chat").json(&chat).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"]["type"],
        "authentication_error"
    );
    let refused = app
        .post("/v1/messages")
        .header("x-api-key", "wrong")
        .json(&message_request())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["type"],
        "error",
        "Anthropic's shape"
    );
    let refused = app
        .post("/v1/chat/completions")
        .bearer_auth("wrong")
        .json(&completion)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(
        refused.json::<Value>().await.unwrap()["error"]
            .get("param")
            .is_some(),
        "OpenAI's shape"
    );
    assert!(app.upstream.calls().is_empty());

    let ok = app
        .post("/api/chat")
        .header("x-api-key", "kg-client-2")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = app
        .post("/v1/messages")
        .header("x-api-key", "kg-client-1")
        .json(&message_request())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = app
        .post("/v1/chat/completions")
        .bearer_auth("kg-client-1")
        .json(&completion)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    for call in app.upstream.calls() {
        let headers = format!("{:?}", call.headers);
        assert!(
            !headers.contains("kg-client"),
            "a client key went upstream: {headers}"
        );
    }
    // Open routes stay open.
    assert_eq!(app.get("/health").send().await.unwrap().status(), 200);
    assert_eq!(app.get("/api/models").send().await.unwrap().status(), 200);
}
