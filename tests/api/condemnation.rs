//! A key is condemned only for its own faults: a 403 or a model's 404 is
//! confirmed with a check of the key before the key is marked invalid; a
//! key that merely lacks a model sits out for that model alone; invalid
//! keys are checked again in the background; a request too large for a
//! key's whole token budget cools no key.

use std::time::Duration;

use fake_upstream::anthropic_message;
use serde_json::{Value, json};

use crate::helpers::{Canned, TestApp, error_of};

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn a_model_the_keys_lack_leaves_every_key_active_and_other_models_served() {
    let app = TestApp::with_keys(2).await;
    let denied = Canned::error(
        403,
        "permission_error",
        "your organization does not have access to claude-opus-4-1",
    );
    // One refusal each for the model; the key checks (GET /v1/models) and
    // everything after get the fake's default answers.
    for i in 0..2 {
        app.upstream.queue(app.key(i), [denied.clone()]);
    }
    let response = app.chat(ask("claude-opus-4-1")).await;
    assert_eq!(response.status(), 403);
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "permission_error");
    assert!(
        message.contains("does not have access to claude-opus-4-1"),
        "{message}"
    );

    // The verdict is remembered: the same model is refused without a call.
    let calls = app.upstream.calls().len();
    assert_eq!(app.chat(ask("claude-opus-4-1")).await.status(), 403);
    assert_eq!(app.upstream.calls().len(), calls, "no key was tried again");

    // Every other model is served, by both keys.
    for _ in 0..4 {
        assert_eq!(
            app.chat(ask("claude-sonnet-4-20250514")).await.status(),
            200
        );
    }
    for i in 0..2 {
        let key = app.key_status(i).await;
        assert_eq!(key["state"], "active", "{key}");
        assert!(key["invalid_reason"].is_null());
        assert_eq!(key["no_access"][0]["model"], "claude-opus-4-1", "{key}");
        assert!(key["no_access"][0]["remaining_secs"].as_u64().unwrap() > 3000);
        let paths: Vec<String> = app
            .upstream
            .calls()
            .iter()
            .filter(|call| call.key == app.key(i))
            .map(|call| {
                format!(
                    "{} {}",
                    call.path,
                    call.body["model"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(
            paths[..2],
            ["/v1/messages claude-opus-4-1", "/v1/models "],
            "refused once, then the key itself was checked"
        );
    }
}

#[tokio::test]
async fn a_404_naming_a_model_is_treated_like_a_403() {
    let app = TestApp::with_keys(1).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(
            404,
            "not_found_error",
            "model: claude-nope-1",
        )],
    );
    let response = app.chat(ask("claude-nope-1")).await;
    assert_eq!(response.status(), 404);
    assert_eq!(app.key_status(0).await["state"], "active");
    assert_eq!(app.hello().await.status(), 200);
}

#[tokio::test]
async fn a_truly_revoked_key_still_becomes_invalid() {
    let app = TestApp::with_keys(2).await;
    // Refused for the chat and for its own check.
    app.upstream.always(
        app.key(0),
        Canned::error(403, "permission_error", "this API key has been disabled"),
    );
    assert_eq!(app.hello().await.status(), 200);
    let key = app.key_status(0).await;
    assert_eq!(key["state"], "invalid", "{key}");
    assert_eq!(key["invalid_reason"], "this API key has been disabled");
    assert_eq!(app.key_status(1).await["state"], "active");
}

#[tokio::test]
async fn an_invalid_key_that_passes_its_check_again_comes_back_by_itself() {
    let app = TestApp::configured(1, |env| env.set("KEY_RECHECK_SECS", "0.2")).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        )],
    );
    assert_eq!(app.hello().await.status(), 503);
    assert_eq!(app.key_status(0).await["state"], "invalid");
    // Its next check (GET /v1/models) gets the fake's default 200.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.key_status(0).await["state"] != "active" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key was not revived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.hello().await.status(), 200);
    assert!(
        app.upstream
            .calls()
            .iter()
            .any(|call| call.path == "/v1/models"),
        "revived by a check, not by a request"
    );
}

#[tokio::test]
async fn a_still_failing_invalid_key_stays_invalid_and_checks_can_be_off() {
    let app = TestApp::configured(1, |env| env.set("KEY_RECHECK_SECS", "0.1")).await;
    app.upstream.always(
        app.key(0),
        Canned::error(401, "authentication_error", "invalid x-api-key"),
    );
    assert_eq!(app.hello().await.status(), 503);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.key_status(0).await["state"], "invalid");
    assert!(
        app.upstream
            .calls()
            .iter()
            .any(|call| call.path == "/v1/models")
    );

    let app = TestApp::configured(1, |env| env.set("KEY_RECHECK_SECS", "0")).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        )],
    );
    assert_eq!(app.hello().await.status(), 503);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.key_status(0).await["state"], "invalid");
    assert!(
        !app.upstream
            .calls()
            .iter()
            .any(|call| call.path == "/v1/models")
    );
}

#[tokio::test]
async fn a_request_larger_than_a_keys_token_budget_cools_no_key() {
    let app = TestApp::with_keys(2).await;
    // Both keys have said their budget is 1,000 input tokens a minute.
    for i in 0..2 {
        app.upstream.queue(
            app.key(i),
            [
                Canned::json(200, anthropic_message("ok", "claude-sonnet-4-20250514"))
                    .header("anthropic-ratelimit-input-tokens-limit", "1000")
                    .header("anthropic-ratelimit-input-tokens-remaining", "1000")
                    .header(
                        "anthropic-ratelimit-input-tokens-reset",
                        "2099-01-01T00:00:00Z",
                    ),
            ],
        );
    }
    assert_eq!(app.hello().await.status(), 200);
    assert_eq!(app.hello().await.status(), 200);
    // A request of ~60,000 bytes is at least 10,000 tokens: it can never fit.
    let too_large = Canned::error(429, "rate_limit_error", "request exceeds the token limit")
        .header("retry-after", "60");
    for i in 0..2 {
        app.upstream.queue(app.key(i), [too_large.clone()]);
    }
    let big = json!({"messages": [{"role": "user", "content": "word ".repeat(12_000)}]});
    let response = app.chat(big).await;
    assert_eq!(response.status(), 413);
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "request_too_large");
    assert!(message.contains("limit of 1000 tokens"), "{message}");
    for i in 0..2 {
        let key = app.key_status(i).await;
        assert_eq!(key["state"], "active", "{key}");
        assert!(key["cooldowns"].as_array().unwrap().is_empty(), "{key}");
    }
    // An ordinary request right after is served at once.
    assert_eq!(app.hello().await.status(), 200);
}

#[tokio::test]
async fn a_no_access_verdict_survives_a_restart() {
    let app = TestApp::with_keys(1).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(
            403,
            "permission_error",
            "no access to claude-opus-4-1",
        )],
    );
    assert_eq!(app.chat(ask("claude-opus-4-1")).await.status(), 403);
    let app = app.restart().await;
    let calls = app.upstream.calls().len();
    assert_eq!(app.chat(ask("claude-opus-4-1")).await.status(), 403);
    assert_eq!(app.upstream.calls().len(), calls);
    let key = app.key_status(0).await;
    assert_eq!(key["state"], "active");
    assert_eq!(key["no_access"][0]["model"], "claude-opus-4-1");
}
