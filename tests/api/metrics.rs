//! `GET /metrics` seen by a scraper: requests, attempts, tokens, cost and
//! rotations counted as they happen, each key's state read at scrape time,
//! the model label bounded, the token guard, and no key material anywhere.

use serde_json::json;

use crate::helpers::{Canned, TestApp, planted_key, secret_core};

pub(crate) async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of the series whose line starts with `series` (name and
/// labels exactly as exposed).
pub(crate) fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

async fn message(app: &TestApp, model: &str) -> reqwest::Response {
    app.post("/v1/messages")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": model, "max_tokens": 64,
                      "messages": [{"role": "user", "content": "Hello"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rotation_is_counted_with_its_attempts_tokens_cost_and_key_states() {
    let app = TestApp::with_keys(2).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow down").header("retry-after", "60")],
    );
    let first = message(&app, "claude-sonnet-4-20250514").await;
    assert_eq!(first.status(), 200);
    let used = first.headers()["x-keygate-key"]
        .to_str()
        .unwrap()
        .to_string();
    let status = app.status().await;
    let ids: Vec<String> = status["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    let (limited, answering) = (&ids[0], &ids[1]);
    assert_eq!(&used, answering);

    let text = scrape(&app).await;
    let model = "claude-sonnet-4-20250514";
    assert_eq!(
        value(
            &text,
            &format!(
                r#"keygate_requests_total{{provider="anthropic",model="{model}",route="/v1/messages",status_class="2xx"}}"#
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!(
                r#"keygate_upstream_attempts_total{{provider="anthropic",key_id="{limited}",outcome="rate_limited"}}"#
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &format!(
                r#"keygate_upstream_attempts_total{{provider="anthropic",key_id="{answering}",outcome="success"}}"#
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"keygate_rotations_total{provider="anthropic"}"#),
        Some(1.0)
    );
    for (kind, count) in [("input", 25.0), ("output", 86.0)] {
        assert_eq!(
            value(
                &text,
                &format!(
                    r#"keygate_tokens_total{{provider="anthropic",model="{model}",key_id="{answering}",kind="{kind}"}}"#
                )
            ),
            Some(count)
        );
    }
    // The worked example: 25 in, 86 out on Sonnet 4 is $0.001365.
    assert_eq!(
        value(
            &text,
            &format!(
                r#"keygate_cost_usd_total{{provider="anthropic",model="{model}",key_id="{answering}"}}"#
            )
        ),
        Some(0.001365)
    );
    assert_eq!(
        value(
            &text,
            &format!(
                r#"keygate_key_state{{provider="anthropic",key_id="{limited}",state="cooling_down"}}"#
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &format!(
                r#"keygate_key_state{{provider="anthropic",key_id="{limited}",state="active"}}"#
            )
        ),
        Some(0.0)
    );
    let cooldown = value(
        &text,
        &format!(r#"keygate_key_cooldown_seconds{{provider="anthropic",key_id="{limited}"}}"#),
    )
    .unwrap();
    assert!((55.0..=60.0).contains(&cooldown), "{cooldown}");
    assert!(
        text.contains("keygate_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn rate_limit_headroom_and_stream_first_token_are_exposed() {
    let app = TestApp::with_keys(1).await;
    app.upstream.always(
        app.key(0),
        Canned::sse(crate::helpers::anthropic_stream_frames(&["Hi", " there"]))
            .header("anthropic-ratelimit-requests-limit", "50")
            .header("anthropic-ratelimit-requests-remaining", "42"),
    );
    let response = app
        .post("/v1/messages")
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "claude-sonnet-4-20250514", "max_tokens": 64, "stream": true,
                      "messages": [{"role": "user", "content": "Hello"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();
    let id = app.key_status(0).await["id"].as_str().unwrap().to_string();
    let text = scrape(&app).await;
    assert_eq!(
        value(
            &text,
            &format!(
                r#"keygate_key_ratelimit_remaining{{provider="anthropic",key_id="{id}",window="requests"}}"#
            )
        ),
        Some(42.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"keygate_time_to_first_token_seconds_count{provider="anthropic",route="/v1/messages"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn made_up_model_names_cannot_grow_the_series_past_the_bound() {
    let app = TestApp::with_keys(1).await;
    // The fake answers with whatever model was asked for.
    for n in 0..110 {
        assert_eq!(
            message(&app, &format!("claude-made-up-{n}")).await.status(),
            200
        );
    }
    let text = scrape(&app).await;
    let models: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("keygate_requests_total{"))
        .filter_map(|l| l.split("model=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(models.len(), 101, "100 names and other: {models:?}");
    assert!(models.contains("other"));
    assert_eq!(
        value(
            &text,
            r#"keygate_requests_total{provider="anthropic",model="other",route="/v1/messages",status_class="2xx"}"#
        ),
        Some(10.0)
    );
}

#[tokio::test]
async fn a_metrics_token_guards_the_route_and_no_key_is_ever_exposed() {
    let token = "metrics-token-for-tests-0123";
    let app = TestApp::configured(2, |env| env.set("METRICS_TOKEN", token)).await;
    assert_eq!(app.hello().await.status(), 200);
    let refused = app.get("/metrics").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let wrong = app
        .get("/metrics")
        .bearer_auth("nope-nope-nope-nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let text = app
        .get("/metrics")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("keygate_requests_total"), "{text}");
    for index in 0..2 {
        assert!(!text.contains(secret_core(app.key(index))));
    }
    assert!(!text.contains(secret_core(&planted_key("a"))));
}

#[tokio::test]
async fn a_short_metrics_token_is_refused_at_start() {
    let upstream = crate::helpers::FakeUpstream::start().await;
    let env =
        crate::helpers::TestEnv::new(&upstream, &[planted_key("a")]).set("METRICS_TOKEN", "short");
    let error = keygate::config::Config::from_lookup(|name| env.vars.get(name).cloned())
        .err()
        .expect("a 5-character token is refused");
    assert!(error.to_string().contains("METRICS_TOKEN"), "{error}");
}
