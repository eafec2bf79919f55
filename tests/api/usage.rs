//! The usage ledger as an admin sees it: rows recorded through keygate's own
//! sink (as the request path records them) and read back through
//! `GET /api/usage` and `GET /api/usage/requests`.

use std::time::Duration;

use keygate::domain::{ProviderKind, Usage, UsageRow};
use keygate::ledger::now_ms;
use keygate::ledger::query::rfc3339_ms;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, TestApp, TestEnv, captured_logs, error_of};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

fn this_hour() -> i64 {
    now_ms() / HOUR * HOUR
}

/// A successful Anthropic request on `key`; tests change what they need.
fn row(at_ms: i64, key: &str, model: &str) -> UsageRow {
    UsageRow {
        at_ms,
        request_id: format!("req-{at_ms}-{key}"),
        route: "/v1/messages",
        provider: Some(ProviderKind::Anthropic),
        model_requested: Some(model.to_string()),
        model_answered: None,
        key_id: Some(key.to_string()),
        attempts: 1,
        keys_tried: vec![key.to_string()],
        status: 200,
        error_class: None,
        usage: Usage::default(),
        cost_nanos: 0,
        latency_us: 1_000,
        ttft_us: None,
        client_key: None,
        unpriced: false,
        cache_scope: None,
    }
}

fn tokens(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_input_tokens: cache_read,
        cache_creation_input_tokens: cache_write,
        cache_creation_1h_tokens: 0,
        reasoning_tokens: 0,
    }
}

/// Records `rows` and waits until the writer has committed them.
async fn record(app: &TestApp, rows: Vec<UsageRow>) {
    let counters = app.ledger.counters().clone();
    let target = counters.written() + rows.len() as u64;
    for row in rows {
        app.ledger.record(row);
    }
    // Waits for the writer, not for a fixed time: fails only by timing out.
    tokio::time::timeout(Duration::from_secs(30), async {
        while counters.written() < target {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the ledger writer commits the rows");
}

async fn usage(app: &TestApp, query: &str) -> Value {
    app.admin_get(&format!("/api/usage{query}")).await
}

fn group<'a>(answer: &'a Value, field: &str, value: Value) -> &'a Value {
    answer["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"][field] == value)
        .unwrap_or_else(|| panic!("no group {field}={value} in {answer}"))
}

fn within_a_bucket(reported_ms: &Value, exact_ms: f64) {
    let reported = reported_ms.as_f64().unwrap();
    assert!(
        (reported - exact_ms).abs() / exact_ms < 0.025,
        "{reported} ms reported for {exact_ms} ms"
    );
}

/// Six requests three hours ago with every kind of outcome.
fn six_requests() -> Vec<UsageRow> {
    let at = this_hour() - 3 * HOUR + 10 * MINUTE;
    let sonnet = "claude-sonnet-4-5";
    let haiku = "claude-haiku-4-5";
    vec![
        UsageRow {
            usage: tokens(100, 50, 10, 5),
            cost_nanos: 1_500_000,
            latency_us: 800_000,
            model_answered: Some(sonnet.into()),
            ..row(at, "key_a", sonnet)
        },
        UsageRow {
            usage: tokens(200, 20, 0, 0),
            cost_nanos: 250_000,
            latency_us: 400_000,
            ..row(at + 1, "key_a", haiku)
        },
        UsageRow {
            status: 429,
            error_class: Some("rate_limit_error".into()),
            latency_us: 50_000,
            // Counted under the model that answered.
            model_answered: Some("claude-haiku-4-5-20251001".into()),
            ..row(at + 2, "key_b", haiku)
        },
        UsageRow {
            // A stream that failed after it began keeps its 200.
            error_class: Some("api_error".into()),
            usage: tokens(300, 7, 0, 0),
            cost_nanos: 999_999,
            latency_us: 2_000_000,
            ..row(at + 3, "key_b", sonnet)
        },
        UsageRow {
            // Refused before a provider, model or key was known.
            provider: None,
            model_requested: None,
            key_id: None,
            keys_tried: vec![],
            attempts: 0,
            status: 400,
            error_class: Some("invalid_request_error".into()),
            latency_us: 1_000,
            ..row(at + 4, "", "")
        },
        UsageRow {
            provider: Some(ProviderKind::OpenAI),
            route: "/v1/chat/completions",
            // A reasoning model: 60 of its 100 output tokens.
            usage: Usage {
                reasoning_tokens: 60,
                ..tokens(1_000, 100, 0, 0)
            },
            cost_nanos: 3_000_000_001,
            latency_us: 1_200_000,
            ..row(at + 5, "key_o", "gpt-4o")
        },
    ]
}

#[tokio::test]
async fn totals_per_group_are_the_exact_sums_of_the_rows() {
    let app = TestApp::with_keys(1).await;
    record(&app, six_requests()).await;

    let total = usage(&app, "").await;
    assert_eq!(total["group_by"], json!([]));
    assert_eq!(total["groups"].as_array().unwrap().len(), 1);
    let all = &total["groups"][0];
    assert_eq!(all["group"], json!({}));
    assert_eq!(all["requests"], 6);
    assert_eq!(all["successes"], 3);
    assert_eq!(
        all["errors"],
        json!({"api_error": 1, "invalid_request_error": 1, "rate_limit_error": 1})
    );
    assert_eq!(
        all["tokens"],
        json!({"input": 1_600, "output": 177, "cache_read": 10, "cache_write": 5, "reasoning": 60})
    );
    assert_eq!(all["cost_nanos"], 3_002_750_000u64);
    assert_eq!(all["cost_usd"], 3.00275);

    let by_key = usage(&app, "?group_by=key").await;
    let keys: Vec<&Value> = by_key["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["group"]["key"])
        .collect();
    assert_eq!(
        keys,
        [
            &Value::Null,
            &json!("key_a"),
            &json!("key_b"),
            &json!("key_o")
        ]
    );
    let key_a = group(&by_key, "key", json!("key_a"));
    assert_eq!(key_a["requests"], 2);
    assert_eq!(key_a["successes"], 2);
    assert_eq!(key_a["errors"], json!({}));
    assert_eq!(
        key_a["tokens"],
        json!({"input": 300, "output": 70, "cache_read": 10, "cache_write": 5, "reasoning": 0})
    );
    assert_eq!(key_a["cost_nanos"], 1_750_000);
    // Nearest rank of {400 ms, 800 ms}: p50 is 400, p95 is 800.
    within_a_bucket(&key_a["latency_ms"]["p50"], 400.0);
    within_a_bucket(&key_a["latency_ms"]["p95"], 800.0);
    let key_b = group(&by_key, "key", json!("key_b"));
    assert_eq!(key_b["successes"], 0);
    assert_eq!(
        key_b["errors"],
        json!({"api_error": 1, "rate_limit_error": 1})
    );
    assert_eq!(key_b["cost_nanos"], 999_999);

    let by_model = usage(&app, "?group_by=model").await;
    let models: Vec<(&Value, &Value)> = by_model["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (&g["group"]["model"], &g["requests"]))
        .collect();
    assert_eq!(
        models,
        [
            (&Value::Null, &json!(1)),
            (&json!("claude-haiku-4-5"), &json!(1)),
            (&json!("claude-haiku-4-5-20251001"), &json!(1)),
            (&json!("claude-sonnet-4-5"), &json!(2)),
            (&json!("gpt-4o"), &json!(1)),
        ]
    );

    let by_status = usage(&app, "?group_by=status").await;
    let ok = group(&by_status, "status", json!(200));
    assert_eq!((&ok["requests"], &ok["successes"]), (&json!(4), &json!(3)));
    assert_eq!(group(&by_status, "status", json!(429))["requests"], 1);

    let openai = usage(&app, "?provider=openai").await;
    assert_eq!(openai["groups"][0]["requests"], 1);
    assert_eq!(openai["groups"][0]["cost_usd"], 3.000000001);
    assert_eq!(openai["groups"][0]["tokens"]["reasoning"], 60);
    let sonnet_on_b = usage(&app, "?model=claude-sonnet-4-5&key=key_b").await;
    assert_eq!(sonnet_on_b["groups"][0]["requests"], 1);
    assert_eq!(sonnet_on_b["groups"][0]["errors"], json!({"api_error": 1}));
}

#[tokio::test]
async fn partial_hours_at_both_ends_of_a_range_are_exact() {
    let app = TestApp::with_keys(1).await;
    let h = this_hour() - 3 * HOUR;
    // Each row's input tokens are a distinct power of two, so a sum names
    // exactly the rows it counted.
    let times = [
        h + 10 * MINUTE,            // before the range
        h + 40 * MINUTE,            // in its first, partial hour
        h + HOUR + 5 * MINUTE,      // in the whole hour
        h + HOUR + 55 * MINUTE,     // in the whole hour
        h + 2 * HOUR + 10 * MINUTE, // in its last, partial hour
        h + 2 * HOUR + 20 * MINUTE, // after the range
    ];
    let keys = ["key_a", "key_b"];
    let rows = times
        .iter()
        .enumerate()
        .map(|(i, &at)| UsageRow {
            usage: tokens(1 << i, 0, 0, 0),
            cost_nanos: 1_000 << i,
            ..row(at, keys[i % 2], "claude-haiku-4-5")
        })
        .collect();
    record(&app, rows).await;

    let range = format!(
        "from={}&to={}",
        rfc3339_ms(h + 30 * MINUTE),
        rfc3339_ms(h + 2 * HOUR + 15 * MINUTE)
    );
    let total = usage(&app, &format!("?{range}")).await;
    assert_eq!(total["groups"][0]["requests"], 4);
    assert_eq!(total["groups"][0]["tokens"]["input"], 2 + 4 + 8 + 16);
    assert_eq!(total["groups"][0]["cost_nanos"], 30_000);

    let by_key_hour = usage(&app, &format!("?{range}&group_by=key,hour")).await;
    let cells: Vec<(Value, Value, Value)> = by_key_hour["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group"]["key"].clone(),
                g["group"]["hour"].clone(),
                g["tokens"]["input"].clone(),
            )
        })
        .collect();
    let hour = |n: i64| json!(rfc3339_ms(h + n * HOUR).replace(".000", ""));
    assert_eq!(
        cells,
        [
            (json!("key_a"), hour(1), json!(4)),
            (json!("key_a"), hour(2), json!(16)),
            (json!("key_b"), hour(0), json!(2)),
            (json!("key_b"), hour(1), json!(8)),
        ]
    );
}

#[tokio::test]
async fn the_requests_page_newest_first_without_repeats_or_gaps() {
    let app = TestApp::with_keys(1).await;
    let start = now_ms() - 2 * HOUR;
    // 120 rows; every third shares its millisecond with the one before.
    let rows: Vec<UsageRow> = (0..120)
        .map(|i: i64| UsageRow {
            request_id: format!("req-{i:03}"),
            status: if i % 10 == 0 { 429 } else { 200 },
            error_class: (i % 10 == 0).then(|| "rate_limit_error".to_string()),
            usage: tokens(i as u64, 1, 2, 3),
            cost_nanos: 5,
            ttft_us: Some(250),
            ..row(
                start + (i - i64::from(i % 3 == 2)) * 1_000,
                ["key_a", "key_b"][(i % 2) as usize],
                "claude-haiku-4-5",
            )
        })
        .collect();
    record(&app, rows).await;

    let mut seen: Vec<String> = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=50&cursor={c}"),
            None => "?limit=50".to_string(),
        };
        let page = app.admin_get(&format!("/api/usage/requests{query}")).await;
        let requests = page["requests"].as_array().unwrap();
        sizes.push(requests.len());
        seen.extend(
            requests
                .iter()
                .map(|r| r["request_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(sizes, [50, 50, 20]);
    // Newest first; rows of the same millisecond, the later recorded first.
    let mut expected: Vec<i64> = (0..120).collect();
    expected.sort_by_key(|i| std::cmp::Reverse((i - i64::from(i % 3 == 2), *i)));
    let expected: Vec<String> = expected.iter().map(|i| format!("req-{i:03}")).collect();
    assert_eq!(seen, expected);

    let page = app.admin_get("/api/usage/requests?key=key_b&limit=2").await;
    let newest = &page["requests"][0];
    assert_eq!(newest["request_id"], "req-119");
    assert_eq!(newest["key_id"], "key_b");
    assert_eq!(newest["keys_tried"], json!(["key_b"]));
    assert_eq!(newest["status"], 200);
    assert_eq!(
        newest["tokens"],
        json!({"input": 119, "output": 1, "cache_read": 2, "cache_write": 3, "reasoning": 0})
    );
    assert_eq!(newest["cost_nanos"], 5);
    assert_eq!(newest["latency_ms"], 1.0);
    assert_eq!(newest["ttft_ms"], 0.25);
    assert_eq!(newest["at"], rfc3339_ms(start + 118_000));
    assert_eq!(page["requests"][1]["request_id"], "req-117");
}

#[tokio::test]
async fn data_older_than_the_retention_is_pruned_rows_and_totals_alike() {
    let mut app = TestApp::with_keys(1).await;
    let now = now_ms();
    record(
        &app,
        vec![
            row(now - 3 * DAY, "key_old", "claude-haiku-4-5"),
            row(now - 3 * DAY - 2 * HOUR, "key_old", "claude-haiku-4-5"),
            row(now - HOUR, "key_new", "claude-haiku-4-5"),
        ],
    )
    .await;
    // Whole hours of the old rows are answered from the rollups.
    let week = "?from=7d&group_by=key";
    assert_eq!(
        usage(&app, week).await["groups"].as_array().unwrap().len(),
        2
    );
    // Started again with one day of retention: the pruner runs at start.
    app.shutdown().await;
    let env = TestEnv {
        vars: app.env_vars().clone(),
        data_dir: app.data_dir.clone(),
    }
    .set("USAGE_RETENTION_DAYS", "1");
    let app = TestApp::start(env, app.upstream.clone(), app.keys.clone()).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while usage(&app, week).await["groups"].as_array().unwrap().len() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("old data is pruned at start");
    let left = usage(&app, week).await;
    assert_eq!(left["groups"][0]["group"]["key"], "key_new");
    let rows = app.admin_get("/api/usage/requests?from=7d").await;
    assert_eq!(rows["requests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn graceful_shutdown_writes_every_queued_row() {
    // No timed flush and batches larger than the test: only the shutdown
    // can write these rows.
    let mut app = TestApp::configured(1, |env| env.set("USAGE_FLUSH_SECS", "3600")).await;
    let at = now_ms() - HOUR;
    for i in 0..300 {
        app.ledger.record(row(at + i, "key_a", "claude-haiku-4-5"));
    }
    assert_eq!(app.ledger.counters().written(), 0);
    app.shutdown().await;
    assert_eq!(app.ledger.counters().written(), 300);
    let app = app.restart_stopped().await;
    assert_eq!(usage(&app, "").await["groups"][0]["requests"], 300);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_rows_without_blocking_and_warns() {
    let mut app = TestApp::configured(1, |env| {
        env.set("USAGE_QUEUE_CAPACITY", "10")
            .set("USAGE_FLUSH_SECS", "3600")
    })
    .await;
    let at = now_ms() - HOUR;
    // This test's runtime has one thread: the writer cannot run while this
    // loop does, so the queue fills after 10 rows and `record` must return
    // at once for the loop to end.
    for i in 0..5_000 {
        app.ledger.record(row(at + i, "key_a", "claude-haiku-4-5"));
    }
    let counters = app.ledger.counters().clone();
    assert_eq!(counters.dropped(), 4_990);
    app.shutdown().await;
    assert_eq!(counters.written(), 10);
    assert!(
        captured_logs().contains("usage ledger: rows dropped"),
        "a warning says rows were dropped"
    );
}

#[tokio::test]
async fn bad_parameters_are_refused_with_the_parameter_and_what_it_accepts() {
    let app = TestApp::with_keys(1).await;
    let cases = [
        (
            "/api/usage?group_by=team",
            "group_by: unknown grouping \"team\"",
            "key, model, provider, status, hour, day",
        ),
        (
            "/api/usage?group_by=key,model,hour",
            "group_by: at most 2 groupings",
            "key,hour",
        ),
        (
            "/api/usage?from=1h&to=2h",
            "from: must be before to",
            "is not before",
        ),
        (
            "/api/usage?from=yesterday",
            "from: expected an RFC 3339 time",
            "24h",
        ),
        (
            "/api/usage?to=2026-01-15T10:00:00",
            "to: expected an RFC 3339 time",
            "7d",
        ),
        (
            "/api/usage?provider=mistral",
            "provider: unknown provider \"mistral\"",
            "anthropic, openai",
        ),
        (
            "/api/usage?groupby=key",
            "groupby: unknown parameter",
            "group_by",
        ),
        (
            "/api/usage/requests?limit=0",
            "limit: expected a whole number from 1 to 500",
            "\"0\"",
        ),
        (
            "/api/usage/requests?limit=501",
            "limit: expected a whole number from 1 to 500",
            "\"501\"",
        ),
        (
            "/api/usage/requests?limit=ten",
            "limit: expected a whole number from 1 to 500",
            "\"ten\"",
        ),
        (
            "/api/usage/requests?cursor=nope",
            "cursor: not a cursor from this route",
            "next_cursor",
        ),
        (
            "/api/usage/requests?group_by=key",
            "group_by: unknown parameter",
            "cursor, limit",
        ),
    ];
    for (path, starts, mentions) in cases {
        let response = app.get(path).bearer_auth(ADMIN_KEY).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let (kind, message) = error_of(response).await;
        assert_eq!(kind, "invalid_request_error", "{path}");
        assert!(message.starts_with(starts), "{path}: {message}");
        assert!(message.contains(mentions), "{path}: {message}");
    }
}

#[tokio::test]
async fn the_usage_routes_need_the_admin_key() {
    let app = TestApp::with_keys(1).await;
    for path in ["/api/usage", "/api/usage/requests"] {
        let anonymous = app.get(path).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let wrong = app
            .get(path)
            .bearer_auth("not-the-admin-key-at-all")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let (kind, _) = error_of(wrong).await;
        assert_eq!(kind, "authentication_error");
    }
}

#[tokio::test]
async fn with_the_ledger_off_nothing_is_recorded() {
    let app = TestApp::configured(1, |env| env.set("USAGE_LEDGER", "off")).await;
    app.ledger
        .record(row(now_ms() - HOUR, "key_a", "claude-haiku-4-5"));
    let counters = app.ledger.counters();
    assert_eq!((counters.written(), counters.dropped()), (0, 0));
    let total = usage(&app, "").await;
    assert_eq!(total["groups"][0]["requests"], 0);
    assert_eq!(total["groups"][0]["latency_ms"], Value::Null);
}
