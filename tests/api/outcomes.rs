//! Every row of the outcome table: what each upstream answer does to the key
//! and to the request, observed through the answer, the upstream's call log
//! and the admin status route.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::helpers::{Canned, TestApp, error_of};

#[tokio::test]
async fn rate_limited_key_cools_down_for_retry_after_and_the_next_key_answers() {
    let app = TestApp::with_keys(2).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(
            429,
            "rate_limit_error",
            "Number of requests has exceeded your rate limit",
        )
        .header("retry-after", "30")],
    );
    let response = app.hello().await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["attempts"], 2);

    let status = app.status().await;
    let cooled = &status["keys"][0];
    assert_eq!(cooled["state"], "cooling_down");
    let remaining = cooled["cooldown_remaining_secs"].as_u64().unwrap();
    assert!((29..=30).contains(&remaining), "remaining {remaining}");
    assert_eq!(cooled["failures"], 1);
    assert_eq!(cooled["failure_history"][0]["status"], 429);
    assert_eq!(
        cooled["failure_history"][0]["error_type"],
        "rate_limit_error"
    );
    assert_eq!(status["stats"]["rotations"], 1);
    assert_eq!(status["stats"]["cooling_down_keys"], 1);

    // While it cools, every request goes to the other key.
    for _ in 0..4 {
        assert_eq!(app.hello().await.status(), 200);
    }
    assert_eq!(app.upstream.calls_with(app.key(0)), 1);
    assert_eq!(app.upstream.calls_with(app.key(1)), 5);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_understood() {
    let app = TestApp::with_keys(2).await;
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow down").header("retry-after", &date)],
    );
    assert_eq!(app.hello().await.status(), 200);
    let remaining = app.key_status(0).await["cooldown_remaining_secs"]
        .as_u64()
        .unwrap();
    assert!((118..=120).contains(&remaining), "remaining {remaining}");
}

#[tokio::test]
async fn a_429_without_retry_after_uses_key_cooldown_secs() {
    let app = TestApp::configured(2, |env| env.set("KEY_COOLDOWN_SECS", "90")).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow down")],
    );
    assert_eq!(app.hello().await.status(), 200);
    let remaining = app.key_status(0).await["cooldown_remaining_secs"]
        .as_u64()
        .unwrap();
    assert!((89..=90).contains(&remaining), "remaining {remaining}");
}

#[tokio::test]
async fn a_cooled_key_returns_to_rotation_when_its_cooldown_ends() {
    // Cooldowns last at least 1 s (KEY_COOLDOWN_SECS is clamped to it).
    let app = TestApp::configured(1, |env| env.set("KEY_COOLDOWN_SECS", "1")).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow down")],
    );
    assert_eq!(app.hello().await.status(), 429);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(app.hello().await.status(), 200);
    assert_eq!(app.key_status(0).await["state"], "active");
}

#[tokio::test]
async fn every_key_cooling_down_answers_429_with_retry_after() {
    let app = TestApp::with_keys(2).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "a").header("retry-after", "20")],
    );
    app.upstream.queue(
        app.key(1),
        [Canned::error(429, "rate_limit_error", "b").header("retry-after", "40")],
    );
    let response = app.hello().await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (19..=20).contains(&retry_after),
        "retry-after {retry_after}"
    );
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "rate_limit_error");
    assert!(message.contains("cooling down"), "{message}");

    // The next request is refused without calling the upstream at all.
    let calls_before = app.upstream.calls().len();
    let response = app.hello().await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(app.upstream.calls().len(), calls_before);
    let stats = app.status().await["stats"].clone();
    assert_eq!(stats["total_requests"], 2);
    assert_eq!(stats["failed_requests"], 2);
}

#[tokio::test]
async fn rejected_keys_401_402_403_become_invalid_and_are_never_used_again() {
    let app = TestApp::with_keys(4).await;
    app.upstream.always(
        app.key(0),
        Canned::error(401, "authentication_error", "invalid x-api-key"),
    );
    app.upstream.always(
        app.key(1),
        Canned::error(402, "billing_error", "billing problem"),
    );
    app.upstream.always(
        app.key(2),
        Canned::error(403, "permission_error", "no access"),
    );
    // Each rejected key costs one attempt; the third attempt still fails, so
    // the first request exhausts its attempts without ever reaching key 3.
    let response = app.hello().await;
    assert_eq!(
        response.status(),
        502,
        "a rejected key is never a 401 to the client"
    );
    for _ in 0..5 {
        assert_eq!(app.hello().await.status(), 200);
    }
    // A 403 is confirmed with a check of the key itself (GET /v1/models)
    // before the key is condemned: that check failed too.
    let paths: Vec<String> = app
        .upstream
        .calls()
        .iter()
        .filter(|call| call.key == app.key(2))
        .map(|call| call.path.clone())
        .collect();
    assert_eq!(paths, ["/v1/messages", "/v1/models"]);
    for rejected in 0..3 {
        assert_eq!(
            app.upstream.calls_with(app.key(rejected)),
            1 + usize::from(rejected == 2)
        );
        let key = app.key_status(rejected).await;
        assert_eq!(key["state"], "invalid");
        assert!(key["invalid_reason"].is_string());
    }
    assert_eq!(app.upstream.calls_with(app.key(3)), 5);
    assert_eq!(app.status().await["stats"]["invalid_keys"], 3);
}

#[tokio::test]
async fn all_keys_rejected_answers_503_not_401() {
    let app = TestApp::with_keys(2).await;
    for i in 0..2 {
        app.upstream.always(
            app.key(i),
            Canned::error(401, "authentication_error", "invalid x-api-key"),
        );
    }
    let response = app.hello().await;
    assert_eq!(response.status(), 503);
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "service_unavailable");
    assert!(message.contains("2 of 2 were rejected"), "{message}");
}

#[tokio::test]
async fn server_errors_count_a_failure_and_move_to_the_next_key() {
    for status in [500u16, 502, 503, 504, 529] {
        let app = TestApp::with_keys(2).await;
        app.upstream
            .queue(app.key(0), [Canned::error(status, "api_error", "boom")]);
        let response = app.hello().await;
        assert_eq!(response.status(), 200, "after a {status}");
        let key = app.key_status(0).await;
        assert_eq!(
            key["state"], "active",
            "a single {status} does not bench the key"
        );
        assert_eq!(key["failures"], 1);
        assert_eq!(key["consecutive_failures"], 1);
        assert_eq!(key["last_error"], "boom");
        assert_eq!(app.upstream.calls_with(app.key(1)), 1);
    }
}

#[tokio::test]
async fn attempts_never_exceed_max_attempts() {
    let app = TestApp::configured(5, |env| env.set("MAX_ATTEMPTS", "2")).await;
    for i in 0..5 {
        app.upstream.always(
            app.key(i),
            Canned::error(500, "api_error", "Internal error"),
        );
    }
    let response = app.hello().await;
    assert_eq!(response.status(), 502);
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "upstream_error");
    assert!(
        message.contains("all 2 upstream attempts failed") && message.contains("500"),
        "{message}"
    );
    let calls = app.upstream.calls();
    assert_eq!(calls.len(), 2);
    assert_ne!(
        calls[0].key, calls[1].key,
        "each attempt on a different key"
    );
    let stats = app.status().await["stats"].clone();
    assert_eq!(stats["rotations"], 1);
    assert_eq!(stats["failed_requests"], 1);
}

#[tokio::test]
async fn most_keys_failing_with_5xx_is_the_providers_trouble_not_the_keys() {
    let app = TestApp::with_keys(5).await;
    for i in 0..5 {
        app.upstream.always(
            app.key(i),
            Canned::error(529, "overloaded_error", "Overloaded"),
        );
    }
    let response = app.hello().await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "overloaded_error");
    assert!(
        message.contains("anthropic looks overloaded: 3 of 5 keys"),
        "{message}"
    );
    assert_eq!(app.upstream.calls().len(), 3, "still at most MAX_ATTEMPTS");
    let status = app.status().await;
    for key in status["keys"].as_array().unwrap() {
        assert_eq!(
            key["state"], "active",
            "no key is benched for the provider's trouble"
        );
    }
    assert_eq!(status["stats"]["available_keys"], 5);
}

#[tokio::test]
async fn max_attempts_is_configurable_and_a_lone_key_is_retried() {
    let app = TestApp::configured(1, |env| env.set("MAX_ATTEMPTS", "2")).await;
    app.upstream
        .queue(app.key(0), [Canned::error(500, "api_error", "first")]);
    let response = app.hello().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["attempts"], 2);
    assert_eq!(app.upstream.calls_with(app.key(0)), 2);
    assert_eq!(
        app.status().await["stats"]["rotations"],
        0,
        "no other key to move to"
    );
}

#[tokio::test]
async fn request_faults_are_returned_at_once_without_retry() {
    for status in [400u16, 404, 413, 422] {
        let app = TestApp::with_keys(2).await;
        app.upstream.always(
            app.key(0),
            Canned::error(status, "invalid_request_error", "max_tokens: too large"),
        );
        let response = app.hello().await;
        assert_eq!(response.status(), status);
        let (error_type, message) = error_of(response).await;
        assert_eq!(error_type, "invalid_request_error");
        assert_eq!(message, "max_tokens: too large");
        assert_eq!(app.upstream.calls().len(), 1, "{status} is not retried");
        let key = app.key_status(0).await;
        assert_eq!(
            (key["state"].as_str(), key["failures"].as_u64()),
            (Some("active"), Some(0))
        );
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_after_every_attempt() {
    let app =
        TestApp::configured(2, |env| env.set("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")).await;
    let response = app.hello().await;
    assert_eq!(response.status(), 502);
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "upstream_error");
    assert!(message.contains("could not connect"), "{message}");
    let status = app.status().await;
    let failures: u64 = (0..2)
        .map(|i| status["keys"][i]["failures"].as_u64().unwrap())
        .sum();
    assert_eq!(failures, 3);
}

#[tokio::test]
async fn a_timed_out_attempt_moves_on_and_all_timeouts_answer_504() {
    let app = TestApp::configured(2, |env| env.set("UPSTREAM_TIMEOUT_SECS", "0.2")).await;
    let slow = Canned::reply("late").delayed(Duration::from_millis(600));
    app.upstream.queue(app.key(0), [slow.clone()]);
    let response = app.hello().await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.key_status(0).await["failure_history"][0]["error_type"],
        "timeout_error"
    );

    app.upstream.always(app.key(0), slow.clone());
    app.upstream.always(app.key(1), slow);
    let response = app.hello().await;
    assert_eq!(response.status(), 504);
    assert_eq!(error_of(response).await.0, "timeout_error");
}

#[tokio::test]
async fn round_robin_spreads_requests_evenly() {
    let app = TestApp::with_keys(3).await;
    for _ in 0..9 {
        assert_eq!(app.hello().await.status(), 200);
    }
    for i in 0..3 {
        assert_eq!(app.upstream.calls_with(app.key(i)), 3, "key {i}");
        assert_eq!(app.key_status(i).await["requests"], 3);
    }
}

#[tokio::test]
async fn malformed_success_bodies_are_provider_faults() {
    let app = TestApp::with_keys(2).await;
    let broken = Canned::raw(200, "application/json", "{not json");
    app.upstream.queue(app.key(0), [broken]);
    assert_eq!(app.hello().await.status(), 200);
    assert_eq!(
        app.key_status(0).await["failure_history"][0]["error_type"],
        "malformed_response"
    );
}

#[tokio::test]
async fn reset_clears_cooldowns_invalid_marks_and_failures_but_keeps_totals() {
    let app = TestApp::with_keys(2).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(401, "authentication_error", "bad key")],
    );
    app.upstream.queue(
        app.key(1),
        [Canned::error(429, "rate_limit_error", "slow").header("retry-after", "600")],
    );
    assert_eq!(app.hello().await.status(), 429);
    let before = app.status().await;
    assert_eq!(before["stats"]["available_keys"], 0);

    let response = app
        .client
        .post(format!("{}/api/keypool/anthropic/reset", app.address))
        .header("x-api-key", crate::helpers::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let after: Value = response.json().await.unwrap();
    assert_eq!(after["stats"]["available_keys"], 2);
    for key in after["keys"].as_array().unwrap() {
        assert_eq!(key["state"], "active");
        assert_eq!(key["failures"], 0);
        assert_eq!(key["failure_history"], json!([]));
        assert_eq!(key["requests"], 1, "request totals stay");
    }
    assert_eq!(after["stats"]["total_requests"], 1);
    assert_eq!(app.hello().await.status(), 200);
}
