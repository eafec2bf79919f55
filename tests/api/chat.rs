//! `POST /api/chat` on the happy path: request conversion, answer shape,
//! cost, headers; plus the models and health routes.

use fake_upstream::{anthropic_message, anthropic_stream_frames_for};
use serde_json::{Value, json};

use crate::helpers::{Canned, TestApp, data_events};

#[tokio::test]
async fn answers_with_content_usage_cost_and_the_key_used() {
    let app = TestApp::with_keys(2).await;
    let response = app.hello().await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap();

    assert_eq!(body["content"], "Hello from the fake upstream");
    assert_eq!(body["provider"], "anthropic");
    assert_eq!(body["model"], "claude-sonnet-4-20250514");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 25, "output_tokens": 86, "total_tokens": 111})
    );
    assert_eq!(body["cost"]["input"].as_f64(), Some(0.000075));
    assert_eq!(body["cost"]["output"].as_f64(), Some(0.00129));
    assert_eq!(body["cost"]["total"].as_f64(), Some(0.001365));
    assert_eq!(body["cost"]["currency"], "USD");
    assert_eq!(body["attempts"], 1);
    let key_id = body["key"].as_str().unwrap();
    assert!(key_id.starts_with("key_"));
    assert_eq!(headers["x-keygate-key"], key_id);
    assert_eq!(headers["x-keygate-attempts"], "1");
    assert!(!headers["x-request-id"].is_empty());

    let calls = app.upstream.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].key, app.key(0));
    assert_eq!(calls[0].headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        calls[0].body,
        json!({"model": "claude-sonnet-4-20250514", "max_tokens": 1024,
               "messages": [{"role": "user", "content": "Hello!"}]})
    );
    // The key id in the answer is the one the status route lists first.
    assert_eq!(app.key_status(0).await["id"], key_id);
}

#[tokio::test]
async fn system_messages_are_lifted_and_sampling_fields_pass_through() {
    let app = TestApp::with_keys(1).await;
    let response = app
        .chat(json!({
            "provider": "anthropic",
            "model": "claude-3-5-haiku-20241022",
            "max_tokens": 50,
            "system": "You are terse.",
            "temperature": 0.2,
            "top_p": 0.9,
            "stop_sequences": ["STOP"],
            "messages": [
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "assistant", "content": "Bonjour"},
                {"role": "user", "content": "Again"}
            ]
        }))
        .await;
    assert_eq!(response.status(), 200);
    let sent = &app.upstream.calls()[0].body;
    assert_eq!(sent["system"], "You are terse.\n\nAnswer in French.");
    assert_eq!(sent["model"], "claude-3-5-haiku-20241022");
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["top_p"], 0.9);
    assert_eq!(sent["stop_sequences"], json!(["STOP"]));
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        sent["messages"][0]["content"],
        json!([{"type": "text", "text": "Hi"}])
    );
}

#[tokio::test]
async fn an_unknown_model_is_served_without_a_cost() {
    let app = TestApp::with_keys(1).await;
    let reply = Canned::json(200, anthropic_message("ok", "claude-future-9"));
    app.upstream.always(app.key(0), reply);
    let response = app
        .chat(json!({"model": "claude-future-9", "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "claude-future-9");
    assert!(body["cost"].is_null());
    assert_eq!(body["usage"]["total_tokens"], 111);
}

/// The upstream may answer with a dated model id keygate has no price for;
/// the streamed and the plain answer to that same reply must agree on the
/// cost (both price it as the model that was asked for).
#[tokio::test]
async fn streamed_and_plain_answers_price_an_unpriced_dated_model_alike() {
    let app = TestApp::with_keys(1).await;
    let answered_as = "claude-sonnet-9-20990101";
    app.upstream.queue(
        app.key(0),
        [
            Canned::json(200, anthropic_message("ok", answered_as)),
            Canned::sse(anthropic_stream_frames_for(answered_as, &["o", "k"])),
        ],
    );
    let request = json!({"model": "claude-sonnet-4-20250514",
                         "messages": [{"role": "user", "content": "Hi"}]});
    let plain: Value = app.chat(request.clone()).await.json().await.unwrap();
    let mut streamed_request = request;
    streamed_request["stream"] = json!(true);
    let events = data_events(app.chat(streamed_request).await).await;
    let done = events.iter().find(|e| e["type"] == "done").unwrap();

    assert_eq!(plain["model"], answered_as);
    assert_eq!(plain["cost"]["total"].as_f64(), Some(0.001365));
    assert_eq!(done["cost"], plain["cost"]);
    assert_eq!(done["usage"], plain["usage"]);
}

#[tokio::test]
async fn models_route_lists_prices_and_the_default() {
    let app = TestApp::with_keys(1).await;
    let body: Value = app
        .client
        .get(format!("{}/api/models", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let anthropic = &body["providers"]["anthropic"];
    assert_eq!(anthropic["default_model"], "claude-sonnet-4-20250514");
    let sonnet = anthropic["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "claude-sonnet-4-20250514")
        .unwrap();
    assert_eq!(sonnet["pricing"]["input"], 3.0);
    assert_eq!(sonnet["pricing"]["output"], 15.0);
    assert_eq!(sonnet["pricing"]["cache_read"], 0.3);
}

#[tokio::test]
async fn health_reports_available_keys_per_provider() {
    let app = TestApp::with_keys(2).await;
    app.upstream.always(
        app.key(0),
        Canned::error(401, "authentication_error", "invalid x-api-key"),
    );
    app.hello().await;
    let body: Value = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(
        body["providers"]["anthropic"],
        json!({"total_keys": 2, "available_keys": 1})
    );
}

#[tokio::test]
async fn browsers_from_another_origin_are_allowed() {
    let app = TestApp::with_keys(1).await;
    let response = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/chat", app.address),
        )
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    // The frontend's development server, on its own port: admitted by name.
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
}

/// An error answer is logged exactly once, at the level its status calls
/// for, with the request id; the access log does not repeat it.
#[tokio::test]
async fn a_refused_request_is_logged_once_with_its_request_id() {
    let app = TestApp::with_keys(0).await;
    let response = app.hello().await;
    assert_eq!(response.status(), 503);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    // The log line is written as the answer is built, before it is sent.
    let logs = crate::helpers::captured_logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains(&request_id))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("ERROR"), "{}", lines[0]);
    assert!(
        lines[0].contains("no anthropic API key is configured"),
        "{}",
        lines[0]
    );
}
