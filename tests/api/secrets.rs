//! No provider key in any response or log line, even when the upstream
//! echoes it back in an error.

use serde_json::json;

use crate::helpers::{ADMIN_KEY, Canned, TestApp, captured_logs, secret_core};

#[tokio::test]
async fn planted_keys_appear_in_no_response_and_no_log_line() {
    let app = TestApp::with_keys(3).await;
    // Upstreams that quote the key back, in full and masked, OpenAI-style.
    let echo = |key: &str| {
        format!(
            "Incorrect API key provided: {key}. Also sk-ant-****{}",
            &key[key.len() - 4..]
        )
    };
    app.upstream.always(
        app.key(0),
        Canned::error(401, "authentication_error", &echo(app.key(0))),
    );
    app.upstream.queue(
        app.key(1),
        [Canned::error(429, "rate_limit_error", &echo(app.key(1)))],
    );
    app.upstream.queue(
        app.key(2),
        [Canned::error(
            400,
            "invalid_request_error",
            &echo(app.key(2)),
        )],
    );

    let mut seen = String::new();
    for body in [
        json!({"messages": [{"role": "user", "content": "Hello!"}]}),
        json!({"messages": [{"role": "user", "content": "Hello!"}]}),
        json!({"messages": [{"role": "user", "content": "Hello!"}]}),
    ] {
        let response = app.chat(body).await;
        seen.push_str(&format!("{:?}", response.headers()));
        seen.push_str(&response.text().await.unwrap());
    }
    for path in [
        "/api/keypool/stats",
        "/api/keypool/anthropic/status",
        "/health",
        "/api/models",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        seen.push_str(&response.text().await.unwrap());
    }
    assert!(
        seen.contains("Incorrect API key provided: [redacted]"),
        "the message itself survives: {seen}"
    );

    let logs = captured_logs();
    assert!(
        logs.contains("upstream attempt failed"),
        "logs were captured"
    );
    for key in &app.keys {
        let core = secret_core(key);
        assert!(!seen.contains(core), "a key reached a client: {seen}");
        assert!(!logs.contains(core), "a key reached the logs");
    }
    assert!(!logs.contains(ADMIN_KEY), "the admin key reached the logs");
}

#[tokio::test]
async fn an_upstream_redirect_is_not_followed_with_the_key() {
    let app = TestApp::with_keys(1).await;
    let elsewhere = crate::helpers::FakeUpstream::start().await;
    app.upstream.always(
        app.key(0),
        Canned::json(307, json!({})).header("location", &format!("{}/v1/messages", elsewhere.url)),
    );
    let response = app.hello().await;
    assert_eq!(
        response.status(),
        502,
        "a redirect is the upstream misbehaving"
    );
    assert!(elsewhere.calls().is_empty(), "the key went to another host");
}
