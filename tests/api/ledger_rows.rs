//! Exactly one ledger row per client request, whatever became of it: a
//! rotation that succeeded, a refusal because every key was cooling, a
//! stream that failed mid-way, a client that hung up mid-stream or before
//! its answer, a request refused for its client key. Rows are read back
//! through `GET /api/usage/requests`, as an operator would.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, Canned, TestApp, anthropic_stream_frames, secret_core};

/// The ledger's rows of the last hour, newest first.
pub(crate) async fn fetch_rows(app: &TestApp) -> Vec<Value> {
    let page: Value = app
        .get("/api/usage/requests?limit=500&from=1h")
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["requests"].as_array().cloned().unwrap_or_default()
}

/// The ledger's rows, newest first, once there are `count` of them (the
/// writer commits in batches behind the request path), checked to be
/// exactly `count` a moment later.
pub(crate) async fn rows(app: &TestApp, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = fetch_rows(app).await;
        if rows.len() >= count {
            // Give a late extra row the chance to show itself.
            tokio::time::sleep(Duration::from_millis(400)).await;
            let rows = fetch_rows(app).await;
            assert_eq!(rows.len(), count, "exactly {count} rows: {rows:#?}");
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} rows arrived",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn messages_body(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-20250514", "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "Hello"}]})
}

async fn send_message(app: &TestApp, stream: bool) -> reqwest::Response {
    app.post("/v1/messages")
        .json(&messages_body(stream))
        .send()
        .await
        .unwrap()
}

async fn key_ids(app: &TestApp) -> Vec<String> {
    app.status().await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_rotated_request_leaves_one_row_with_its_attempts_tokens_and_cost() {
    let app = TestApp::with_keys(2).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow down").header("retry-after", "30")],
    );
    let response = send_message(&app, false).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let ids = key_ids(&app).await;
    let row = &rows(&app, 1).await[0];
    assert_eq!(row["request_id"], request_id.as_str());
    assert_eq!(row["route"], "/v1/messages");
    assert_eq!(row["provider"], "anthropic");
    assert_eq!(row["model_requested"], "claude-sonnet-4-20250514");
    assert_eq!(row["model_answered"], "claude-sonnet-4-20250514");
    assert_eq!(row["status"], 200);
    assert!(row["error_class"].is_null(), "{row}");
    assert_eq!(row["attempts"], 2);
    assert_eq!(row["keys_tried"], json!([ids[0], ids[1]]));
    assert_eq!(row["key_id"], ids[1].as_str());
    assert_eq!(row["tokens"]["input"], 25);
    assert_eq!(row["tokens"]["output"], 86);
    // The worked example: $0.001365, kept exactly in nano-dollars.
    assert_eq!(row["cost_nanos"], 1_365_000);
    assert!(row["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(row["ttft_ms"].is_null(), "not a stream: {row}");
}

#[tokio::test]
async fn a_refusal_because_every_key_is_cooling_leaves_a_row() {
    let app = TestApp::with_keys(1).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow down").header("retry-after", "30")],
    );
    assert_eq!(app.hello().await.status(), 429);
    let refused = app.hello().await;
    assert_eq!(refused.status(), 429);
    let rows = rows(&app, 2).await;
    // Newest first: the refusal made no attempt at all.
    assert_eq!(rows[0]["status"], 429);
    assert_eq!(rows[0]["error_class"], "rate_limit_error");
    assert_eq!(rows[0]["attempts"], 0, "{}", rows[0]);
    assert_eq!(rows[0]["route"], "/api/chat");
    assert_eq!(rows[1]["attempts"], 1);
}

#[tokio::test]
async fn a_stream_that_fails_mid_way_keeps_its_200_and_records_the_failure() {
    let app = TestApp::with_keys(1).await;
    app.upstream.always(
        app.key(0),
        Canned::sse(anthropic_stream_frames(&["Hel", "lo", " there"])).cut_after(5),
    );
    let response = send_message(&app, true).await;
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;
    let row = &rows(&app, 1).await[0];
    assert_eq!(row["status"], 200);
    assert!(row["error_class"].is_string(), "{row}");
    assert_ne!(row["error_class"], "client_closed");
    assert!(row["ttft_ms"].as_f64().is_some(), "{row}");
    assert_eq!(
        row["tokens"]["input"], 25,
        "usage seen before the cut is kept"
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_leaves_a_client_closed_row() {
    let app = TestApp::with_keys(1).await;
    app.upstream.always(
        app.key(0),
        Canned::sse(anthropic_stream_frames(&["a", "b", "c", "d", "e", "f"]))
            .paced(Duration::from_millis(150)),
    );
    let response = send_message(&app, true).await;
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(body);
    let row = &rows(&app, 1).await[0];
    assert_eq!(row["status"], 200);
    assert_eq!(row["error_class"], "client_closed", "{row}");
}

#[tokio::test]
async fn a_client_that_hangs_up_before_its_answer_leaves_a_499_row() {
    let app = TestApp::with_keys(1).await;
    app.upstream.always(
        app.key(0),
        Canned::reply("late").delayed(Duration::from_secs(3)),
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gave_up = client
        .post(format!("{}/v1/messages", app.address))
        .json(&messages_body(false))
        .send()
        .await;
    assert!(gave_up.is_err());
    let row = &rows(&app, 1).await[0];
    assert_eq!(row["status"], 499, "{row}");
    assert_eq!(row["error_class"], "client_closed");
    assert_eq!(row["attempts"], 1);
}

#[tokio::test]
async fn client_keys_are_recorded_by_fingerprint_and_a_refused_request_leaves_a_row() {
    let client_key = "kg-client-key-for-the-ledger-0001";
    let app = TestApp::configured(1, |env| {
        env.set("GATEWAY_API_KEYS", &format!(r#"["{client_key}"]"#))
    })
    .await;
    let refused = send_message(&app, false).await;
    assert_eq!(refused.status(), 401);
    let served = app
        .post("/v1/messages")
        .header("x-api-key", client_key)
        .json(&messages_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let rows = rows(&app, 2).await;
    let fingerprint = rows[0]["client_key"].as_str().unwrap();
    assert!(
        fingerprint.starts_with("ck-") && fingerprint.len() == 11,
        "{fingerprint}"
    );
    assert!(!fingerprint.contains(&client_key[3..]));
    assert_eq!(rows[1]["status"], 401);
    assert_eq!(rows[1]["error_class"], "authentication_error");
    assert!(rows[1]["client_key"].is_null());
    let everything = serde_json::to_string(&rows).unwrap();
    assert!(!everything.contains(client_key));
    assert!(!everything.contains(secret_core(app.key(0))));
}

#[tokio::test]
async fn concurrent_mixed_requests_leave_exactly_one_row_each() {
    let app = TestApp::with_both(3, 2).await;
    app.upstream.queue(
        app.key(1),
        [Canned::error(429, "rate_limit_error", "slow down").header("retry-after", "30")],
    );
    let requests = (0..40).map(|n| {
        let (path, body) = match n % 4 {
            0 => (
                "/api/chat",
                json!({"messages": [{"role": "user", "content": "hi"}]}),
            ),
            1 => ("/v1/messages", messages_body(n % 8 == 1)),
            2 => (
                "/v1/chat/completions",
                json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
            ),
            // A bad request: refused before any upstream is asked.
            _ => ("/v1/messages", json!({"model": "claude-sonnet-4-20250514"})),
        };
        let request = app.post(path).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let id = response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string();
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            (id, status)
        }
    });
    let answered: Vec<(String, u16)> = futures::stream::iter(requests)
        .buffer_unordered(8)
        .collect()
        .await;
    let rows = rows(&app, 40).await;
    for (id, status) in &answered {
        let matching: Vec<&Value> = rows
            .iter()
            .filter(|r| r["request_id"] == id.as_str())
            .collect();
        assert_eq!(matching.len(), 1, "request {id}");
        assert_eq!(matching[0]["status"], *status);
    }
    let bad = rows.iter().filter(|r| r["status"] == 400).count();
    assert_eq!(bad, 10);
}
