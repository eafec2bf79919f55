//! Admin routes: authentication and the stats/status bodies.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, TestApp, error_of};

#[tokio::test]
async fn stats_have_the_node_backend_shape() {
    let app = TestApp::with_keys(2).await;
    assert_eq!(app.hello().await.status(), 200);
    let stats = app.admin_get("/api/keypool/stats").await;
    assert_eq!(
        stats["providers"]["anthropic"],
        json!({
            "total_keys": 2, "available_keys": 2, "cooling_down_keys": 0, "invalid_keys": 0, "disabled_keys": 0, "ejected_keys": 0,
            "total_requests": 1, "successful_requests": 1, "failed_requests": 0, "rotations": 0
        })
    );
    // Every provider is listed, configured or not.
    assert_eq!(stats["providers"]["openai"]["total_keys"], 0);
}

#[tokio::test]
async fn status_lists_every_key_masked() {
    let app = TestApp::with_keys(2).await;
    assert_eq!(app.hello().await.status(), 200);
    let status = app.status().await;
    assert_eq!(status["provider"], "anthropic");
    assert_eq!(status["strategy"], "round_robin");
    assert_eq!(status["cooldown_secs"], 60.0);
    assert_eq!(status["max_attempts"], 3);
    let first = &status["keys"][0];
    assert_eq!(
        first["label"],
        format!("sk-ant-api03-…{}", &app.key(0)[app.key(0).len() - 4..])
    );
    assert_eq!(first["state"], "active");
    assert_eq!(first["requests"], 1);
    assert_eq!(first["successes"], 1);
    assert!(first["last_used_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(first["last_error"], Value::Null);
    assert_eq!(status["keys"][1]["last_used_at"], Value::Null);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::with_keys(1).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = app
            .client
            .get(format!("{}/api/keypool/stats", app.address))
            .header("authorization", format!("{scheme} {ADMIN_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn a_padded_admin_key_is_trimmed_and_a_short_one_refused() {
    let app = TestApp::configured(1, |env| {
        env.set("ADMIN_API_KEY", &format!("  {ADMIN_KEY}\t"))
    })
    .await;
    let response = app
        .client
        .get(format!("{}/api/keypool/stats", app.address))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let upstream = crate::helpers::FakeUpstream::start().await;
    let env = crate::helpers::TestEnv::new(&upstream, &[]).set("ADMIN_API_KEY", "a");
    let Err(error) = keygate::config::Config::from_lookup(|name| env.vars.get(name).cloned())
    else {
        panic!("a one-character admin key was accepted");
    };
    assert!(
        error
            .to_string()
            .contains("ADMIN_API_KEY: must be at least 16 characters"),
        "{error}"
    );
}

#[tokio::test]
async fn missing_and_wrong_credentials_get_the_same_401() {
    let app = TestApp::with_keys(1).await;
    let url = format!("{}/api/keypool/stats", app.address);
    let missing = app.client.get(&url).send().await.unwrap();
    let wrong = app
        .client
        .get(&url)
        .bearer_auth("not-the-key")
        .send()
        .await
        .unwrap();
    let wrong_header = app
        .client
        .get(&url)
        .header("x-api-key", "nope")
        .send()
        .await
        .unwrap();
    for response in [missing, wrong, wrong_header] {
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let (error_type, message) = error_of(response).await;
        assert_eq!(error_type, "authentication_error");
        assert!(message.starts_with("missing or invalid admin credentials"));
    }
    for response in [
        app.client
            .get(&url)
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap(),
        app.client
            .get(&url)
            .header("x-api-key", ADMIN_KEY)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 200);
    }
    // Reset is guarded too, and a refused reset changes nothing.
    let reset = app
        .client
        .post(format!("{}/api/keypool/anthropic/reset", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 401);
}

#[tokio::test]
async fn without_admin_api_key_the_admin_routes_answer_403() {
    let app = TestApp::configured(1, |env| env.unset("ADMIN_API_KEY")).await;
    for path in ["/api/keypool/stats", "/api/keypool/anthropic/status"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(
            error_of(response).await.1,
            "admin API disabled: set ADMIN_API_KEY"
        );
    }
}

#[tokio::test]
async fn unknown_provider_in_the_path_is_404() {
    let app = TestApp::with_keys(1).await;
    for (method, path) in [
        ("GET", "/api/keypool/mistral/status"),
        ("POST", "/api/keypool/mistral/reset"),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), format!("{}{path}", app.address))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let (error_type, message) = error_of(response).await;
        assert_eq!(error_type, "not_found_error");
        assert!(
            message.contains("unknown provider \"mistral\""),
            "{message}"
        );
    }
}
