//! Key lifecycle through the admin API, strategies and state across
//! restarts, against the fake upstream.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, Canned, TestApp, error_of, planted_key, secret_core};

async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app
        .client
        .request(method.parse().unwrap(), format!("{}{path}", app.address))
        .bearer_auth(ADMIN_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_key_added_through_the_api_serves_the_next_request() {
    let app = TestApp::with_keys(0).await;
    assert_eq!(app.hello().await.status(), 503);
    let key = planted_key("live");
    let response = admin(
        &app,
        "POST",
        "/api/keypool/anthropic/keys",
        Some(json!({"key": key, "label": "team-a", "weight": 2})),
    )
    .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["label"], "team-a");
    assert_eq!(
        created["masked"],
        format!("sk-ant-api03-…{}", &key[key.len() - 4..])
    );
    assert_eq!(created["weight"], 2);

    let response = app.hello().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-keygate-key"], id.as_str());
    assert_eq!(app.upstream.calls_with(&key), 1);

    let listed = admin(&app, "GET", "/api/keypool/anthropic/keys", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains("team-a") && listed.contains(&id));
    assert!(
        !listed.contains(secret_core(&key)),
        "the list never shows the key"
    );

    let duplicate = admin(
        &app,
        "POST",
        "/api/keypool/anthropic/keys",
        Some(json!({"key": key})),
    )
    .await;
    assert_eq!(duplicate.status(), 409);
    assert_eq!(error_of(duplicate).await.0, "conflict_error");
}

#[tokio::test]
async fn bad_keys_and_fields_are_refused_and_nothing_is_stored() {
    let app = TestApp::with_keys(1).await;
    let cases = [
        (json!({"key": ""}), "key: must not be empty"),
        (json!({"key": "   "}), "key: must not be empty"),
        (json!({"key": "sk-ant-with space"}), "whitespace or control"),
        (
            json!({"key": "sk-ant-line\nbreak"}),
            "whitespace or control",
        ),
        (json!({"key": "x".repeat(513)}), "longer than 512 bytes"),
        (
            json!({"key": "sk-ant-ok", "weight": 0}),
            "weight: must be 1 to 1000",
        ),
        (
            json!({"key": "sk-ant-ok", "wieght": 2}),
            "unknown field `wieght`",
        ),
        (json!({"label": "no key"}), "missing field `key`"),
    ];
    for (body, expected) in cases {
        let response = admin(
            &app,
            "POST",
            "/api/keypool/anthropic/keys",
            Some(body.clone()),
        )
        .await;
        assert_eq!(response.status(), 400, "{body}");
        let (_, message) = error_of(response).await;
        assert!(message.contains(expected), "{body}: {message}");
    }
    let listed: Value = admin(&app, "GET", "/api/keypool/anthropic/keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    let unknown = admin(
        &app,
        "POST",
        "/api/keypool/mistral/keys",
        Some(json!({"key": "sk-x"})),
    )
    .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_disabled_key_is_never_picked_and_a_deleted_key_never_used_again() {
    let app = TestApp::with_keys(3).await;
    let ids: Vec<String> = app.status().await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    let patched = admin(
        &app,
        "PATCH",
        &format!("/api/keypool/anthropic/keys/{}", ids[0]),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(patched.json::<Value>().await.unwrap()["state"], "disabled");
    let deleted = admin(
        &app,
        "DELETE",
        &format!("/api/keypool/anthropic/keys/{}", ids[1]),
        None,
    )
    .await;
    assert_eq!(deleted.status(), 200);
    for _ in 0..6 {
        assert_eq!(app.hello().await.status(), 200);
    }
    assert_eq!(app.upstream.calls_with(app.key(0)), 0, "disabled");
    assert_eq!(app.upstream.calls_with(app.key(1)), 0, "deleted");
    assert_eq!(app.upstream.calls_with(app.key(2)), 6);
    let status = app.status().await;
    assert_eq!(status["stats"]["total_keys"], 2);
    assert_eq!(status["keys"][0]["disabled_reason"], "disabled by an admin");

    let missing = admin(
        &app,
        "PATCH",
        "/api/keypool/anthropic/keys/key_nope",
        Some(json!({"weight": 2})),
    )
    .await;
    assert_eq!(missing.status(), 404);
    let missing = admin(&app, "DELETE", "/api/keypool/anthropic/keys/key_nope", None).await;
    assert_eq!(missing.status(), 404);
    let empty = admin(
        &app,
        "PATCH",
        &format!("/api/keypool/anthropic/keys/{}", ids[2]),
        Some(json!({})),
    )
    .await;
    assert_eq!(empty.status(), 400);
}

#[tokio::test]
async fn a_request_in_flight_on_a_deleted_key_still_finishes() {
    let app = TestApp::with_keys(1).await;
    app.upstream.queue(
        app.key(0),
        [Canned::reply("slow").delayed(Duration::from_millis(300))],
    );
    let id = app.status().await["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let in_flight = tokio::spawn({
        let client = app.client.clone();
        let url = format!("{}/api/chat", app.address);
        async move {
            client
                .post(url)
                .json(&json!({"messages": [{"role": "user", "content": "Hello!"}]}))
                .send()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        admin(
            &app,
            "DELETE",
            &format!("/api/keypool/anthropic/keys/{id}"),
            None
        )
        .await
        .status(),
        200
    );
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["content"], "slow");
    assert_eq!(
        app.hello().await.status(),
        503,
        "no key left for new requests"
    );
}

#[tokio::test]
async fn the_test_route_marks_rejected_keys_invalid_and_brings_back_ones_that_pass() {
    let app = TestApp::with_keys(2).await;
    app.upstream.queue(
        app.key(1),
        [Canned::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        )],
    );
    let response = admin(&app, "POST", "/api/keypool/anthropic/test", None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["result"], "ok");
    assert_eq!(results[1]["result"], "invalid");
    assert_eq!(results[1]["status"], 401);
    assert_eq!(results[1]["reason"], "invalid x-api-key");
    assert_eq!(app.upstream.calls()[0].path, "/v1/models");
    let status = app.status().await;
    assert_eq!(status["keys"][1]["state"], "invalid");

    let id = status["keys"][1]["id"].as_str().unwrap();
    let again: Value = admin(
        &app,
        "POST",
        &format!("/api/keypool/anthropic/test?key={id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["results"].as_array().unwrap().len(), 1);
    assert_eq!(again["results"][0]["result"], "ok");
    assert_eq!(app.status().await["keys"][1]["state"], "active");

    app.upstream.queue(
        app.key(0),
        [Canned::error(503, "api_error", "down").delayed(Duration::from_millis(10))],
    );
    let unreachable: Value = admin(&app, "POST", "/api/keypool/anthropic/test", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unreachable["results"][0]["result"], "unreachable");
    assert_eq!(
        app.status().await["keys"][0]["state"],
        "active",
        "no verdict, no change"
    );
}

#[tokio::test]
async fn headroom_avoids_a_key_with_nothing_left_before_any_429() {
    let app = TestApp::configured(2, |env| env.set("KEY_STRATEGY", "headroom")).await;
    let reset =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(60))
            .to_string();
    let spent = Canned::reply("last one")
        .header("anthropic-ratelimit-requests-limit", "50")
        .header("anthropic-ratelimit-requests-remaining", "0")
        .header("anthropic-ratelimit-requests-reset", &reset);
    let roomy = Canned::reply("plenty")
        .header("anthropic-ratelimit-requests-limit", "50")
        .header("anthropic-ratelimit-requests-remaining", "40")
        .header("anthropic-ratelimit-requests-reset", &reset);
    app.upstream.always(app.key(0), spent);
    app.upstream.always(app.key(1), roomy);
    // Both keys answer once (each is fresh, so each has full headroom).
    for _ in 0..2 {
        assert_eq!(app.hello().await.status(), 200);
    }
    for _ in 0..5 {
        assert_eq!(app.hello().await.status(), 200);
    }
    assert_eq!(
        app.upstream.calls_with(app.key(0)),
        1,
        "key 0 said it had nothing left"
    );
    assert_eq!(app.upstream.calls_with(app.key(1)), 6);
    let status = app.status().await;
    assert_eq!(status["strategy"], "headroom");
    assert_eq!(status["keys"][0]["rate_limits"]["requests"]["remaining"], 0);
    assert_eq!(status["keys"][0]["failures"], 0, "no 429 was needed");
}

#[tokio::test]
async fn a_429_for_one_model_does_not_bench_the_key_for_others() {
    let app = TestApp::with_keys(1).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow").header("retry-after", "120")],
    );
    let ask = |model: &str| {
        app.chat(json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
    };
    assert_eq!(ask("claude-sonnet-4-20250514").await.status(), 429);
    assert_eq!(ask("claude-sonnet-4-20250514").await.status(), 429);
    assert_eq!(ask("claude-haiku-4-5").await.status(), 200);
    let key = &app.status().await["keys"][0];
    assert_eq!(key["cooldowns"][0]["model"], "claude-sonnet-4-20250514");
    assert_eq!(app.upstream.calls().len(), 2);
}

#[tokio::test]
async fn a_cooldown_hint_from_reset_headers_is_used_and_clamped() {
    let app = TestApp::configured(2, |env| env.set("KEY_COOLDOWN_MAX_SECS", "100")).await;
    let reset =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(40))
            .to_string();
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow")
            .header("anthropic-ratelimit-tokens-limit", "1000")
            .header("anthropic-ratelimit-tokens-remaining", "0")
            .header("anthropic-ratelimit-tokens-reset", &reset)],
    );
    app.upstream.queue(
        app.key(1),
        [Canned::error(429, "rate_limit_error", "slow").header("retry-after-ms", "500000")],
    );
    assert_eq!(app.hello().await.status(), 429);
    let status = app.status().await;
    let first = status["keys"][0]["cooldown_remaining_secs"]
        .as_u64()
        .unwrap();
    assert!((38..=40).contains(&first), "reset header: {first}");
    assert_eq!(
        status["keys"][1]["cooldown_remaining_secs"], 100,
        "clamped to KEY_COOLDOWN_MAX_SECS"
    );
}

#[tokio::test]
async fn status_shows_weight_latency_rate_limits_and_cooldown_level() {
    let app = TestApp::with_keys(1).await;
    for _ in 0..3 {
        assert_eq!(app.hello().await.status(), 200);
    }
    let key = &app.status().await["keys"][0];
    assert_eq!(key["weight"], 1);
    assert_eq!(key["enabled"], true);
    assert_eq!(key["cooldown_level"], 0);
    assert_eq!(key["latency"]["samples"], 3);
    assert!(key["latency"]["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(
        key["latency"]["p95_ms"].as_f64().unwrap() >= key["latency"]["p50_ms"].as_f64().unwrap()
    );
    assert_eq!(
        key["rate_limits"]["requests"]["limit"], 4000,
        "the fake's default headers"
    );
}

#[tokio::test]
async fn state_survives_a_restart_and_a_cooling_key_is_not_hammered() {
    let app = TestApp::with_keys(2).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow").header("retry-after", "300")],
    );
    app.upstream.queue(
        app.key(1),
        [Canned::error(401, "authentication_error", "revoked")],
    );
    assert_eq!(app.hello().await.status(), 429);
    let before = app.status().await;

    let app = app.restart().await;
    let after = app.status().await;
    assert_eq!(after["stats"], before["stats"], "counters are back");
    assert_eq!(after["keys"][0]["state"], "cooling_down");
    let remaining = after["keys"][0]["cooldown_remaining_secs"]
        .as_u64()
        .unwrap();
    assert!((295..=300).contains(&remaining), "{remaining}");
    assert_eq!(
        after["keys"][0]["failure_history"],
        before["keys"][0]["failure_history"]
    );
    assert_eq!(after["keys"][1]["state"], "invalid");
    assert_eq!(after["keys"][1]["invalid_reason"], "revoked");

    let calls = app.upstream.calls().len();
    assert_eq!(
        app.hello().await.status(),
        429,
        "the cooling key is still resting"
    );
    assert_eq!(app.upstream.calls().len(), calls);
}

#[tokio::test]
async fn keys_added_disabled_or_deleted_live_stay_so_after_a_restart() {
    let app = TestApp::with_keys(2).await;
    let ids: Vec<String> = app.status().await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    admin(
        &app,
        "PATCH",
        &format!("/api/keypool/anthropic/keys/{}", ids[0]),
        Some(json!({"enabled": false, "label": "paused"})),
    )
    .await;
    admin(
        &app,
        "DELETE",
        &format!("/api/keypool/anthropic/keys/{}", ids[1]),
        None,
    )
    .await;
    let added: Value = admin(
        &app,
        "POST",
        "/api/keypool/anthropic/keys",
        Some(json!({"key": planted_key("added")})),
    )
    .await
    .json()
    .await
    .unwrap();
    let app = app.restart().await;
    let keys = app.status().await["keys"].clone();
    let ids_after: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    // The deleted key came from the environment: a restart imports it again
    // as a new key; the admin's other changes stay.
    assert!(ids_after.contains(&ids[0].as_str()));
    assert!(ids_after.contains(&added["id"].as_str().unwrap()));
    let paused = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == ids[0].as_str())
        .unwrap();
    assert_eq!(
        (paused["state"].as_str(), paused["label"].as_str()),
        (Some("disabled"), Some("paused"))
    );
}

#[tokio::test]
async fn keys_changed_with_the_cli_reach_a_running_keygate_without_a_restart() {
    let app = TestApp::configured(1, |env| env.set("STATE_FLUSH_SECS", "0.1")).await;
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keygate"))
            .args(args)
            .env_clear()
            .envs(app.env_vars())
            .current_dir(app.data_dir.path())
            .output()
            .unwrap()
    };
    let key = planted_key("from-cli");
    let added = cli(&[
        "keys",
        "add",
        "--provider",
        "anthropic",
        "--key",
        &key,
        "--label",
        "cli",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let mut keys = Value::Null;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        keys = app.status().await["keys"].clone();
        if keys.as_array().unwrap().len() == 2 {
            break;
        }
    }
    assert_eq!(
        keys.as_array().unwrap().len(),
        2,
        "the running pool picked up the new key"
    );
    assert_eq!(keys[1]["label"], "cli");
    let first_id = keys[0]["id"].as_str().unwrap().to_string();
    let disabled = cli(&["keys", "disable", &first_id]);
    assert!(disabled.status.success());
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if app.status().await["keys"][0]["state"] == "disabled" {
            break;
        }
    }
    for _ in 0..3 {
        assert_eq!(app.hello().await.status(), 200);
    }
    assert_eq!(
        app.upstream.calls_with(&key),
        3,
        "only the CLI's key serves now"
    );
}

#[tokio::test]
async fn keys_with_invisible_or_non_ascii_characters_are_refused() {
    let app = TestApp::with_keys(0).await;
    for key in [
        "sk-ant-api03-abc\u{200B}def",
        "sk-ant-api03-abc\u{202E}def",
        "sk-ant-api03-🔑🔑🔑",
        "sk-ant-api03-\u{00A0}abc",
    ] {
        let response = admin(
            &app,
            "POST",
            "/api/keypool/anthropic/keys",
            Some(json!({ "key": key })),
        )
        .await;
        assert_eq!(response.status(), 400, "{key:?}");
        let (_, message) = error_of(response).await;
        assert!(
            message.starts_with("key: must be printable ASCII"),
            "{message}"
        );
        assert!(!message.contains("abc"), "the key is not quoted: {message}");
    }
    let listed: Value = admin(&app, "GET", "/api/keypool/anthropic/keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed["keys"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_key_that_looks_like_another_providers_is_added_with_a_warning() {
    let app = TestApp::with_both(1, 1).await;
    let response = admin(
        &app,
        "POST",
        "/api/keypool/openai/keys",
        Some(json!({ "key": planted_key("misplaced") })),
    )
    .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["warning"],
        "this key looks like a key for anthropic, but was added to the openai pool; it will be sent to openai"
    );
    let fitting = admin(
        &app,
        "POST",
        "/api/keypool/anthropic/keys",
        Some(json!({ "key": planted_key("fitting") })),
    )
    .await;
    let created: Value = fitting.json().await.unwrap();
    assert!(created.get("warning").is_none(), "{created}");
}
