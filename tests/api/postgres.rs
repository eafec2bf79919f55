//! keygate on PostgreSQL (`DATABASE_URL=postgres://…`), through the real
//! application: keys and state across a restart, a password that never
//! shows, and a brief outage of the database that requests do not notice
//! and the ledger does not lose.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Row;

use crate::helpers::{ADMIN_KEY, Canned, TestApp, captured_logs, planted_key, secret_core};
use crate::pg_support::{CutProxy, TestDatabase};

/// Polls `check` until it holds, for at most 30 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests the ledger holds a row for. Counted by request id: a batch
/// whose commit went through just as the connection was cut is written
/// again (the writer cannot know), and this test is about losing none.
async fn ledger_rows(database: &TestDatabase) -> i64 {
    let pool = database.pool().await;
    let blocks: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT format, rows FROM usage_blocks")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut requests = std::collections::HashSet::new();
    for (format, bytes) in &blocks {
        let block = keygate::store::usage::block::Unpacked::read(*format, bytes).unwrap();
        requests.extend(block.rows(0).map(|(_, row)| row.request_id.to_string()));
    }
    requests.len() as i64
}

#[tokio::test]
async fn keys_and_state_are_stored_in_postgres_and_survive_a_restart() {
    let database = TestDatabase::create().await;
    let app = TestApp::configured(2, |env| env.set("DATABASE_URL", &database.url)).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow").header("retry-after", "300")],
    );
    assert_eq!(app.hello().await.status(), 200, "the second key answers");
    let added = app
        .client
        .post(format!("{}/api/keypool/anthropic/keys", app.address))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"key": planted_key("pg-added"), "label": "team-pg", "weight": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let before = app.status().await;

    let app = app.restart().await;
    let after = app.status().await;
    assert_eq!(after["stats"], before["stats"], "counters are back");
    let keys = after["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0]["state"], "cooling_down");
    assert_eq!(
        (keys[2]["label"].as_str(), keys[2]["weight"].as_u64()),
        (Some("team-pg"), Some(3))
    );
    // Keys are sealed in the database, in the format SQLite stores.
    let pool = database.pool().await;
    let rows = sqlx::query("SELECT sealed_key, enabled FROM api_keys ORDER BY rowid")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let sealed: String = row.get(0);
        assert!(sealed.starts_with("v1:"), "{sealed}");
        assert!(row.get::<bool, _>(1));
        for key in &app.keys {
            assert!(!sealed.contains(secret_core(key)));
        }
    }
    pool.close().await;
    // The ledger (written at shutdown) is read back from PostgreSQL.
    let usage = app.admin_get("/api/usage?group_by=key").await;
    let groups = usage["groups"].as_array().unwrap();
    let requests: u64 = groups.iter().map(|g| g["requests"].as_u64().unwrap()).sum();
    assert_eq!(requests, 1, "{usage}");
    let calls = app.upstream.calls_with(app.key(0));
    assert_eq!(app.hello().await.status(), 200);
    assert_eq!(
        app.upstream.calls_with(app.key(0)),
        calls,
        "the cooling key rests after the restart too"
    );
}

#[tokio::test]
async fn the_database_password_is_never_logged() {
    let database = TestDatabase::create().await;
    // Trust auth ignores the password; keygate still holds it.
    let url = database
        .url
        .replacen("://postgres@", "://postgres:pg-secret-4711@", 1);
    assert!(url.contains("pg-secret-4711"), "{url}");
    let app = TestApp::configured(1, |env| env.set("DATABASE_URL", &url)).await;
    assert_eq!(app.hello().await.status(), 200);
    drop(app);
    // A failing connection prints the URL it tried: masked.
    let unreachable = "postgres://postgres:pg-secret-4711@127.0.0.1:1/nowhere";
    let error = keygate::store::Store::connect(unreachable)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("postgres://postgres:***@127.0.0.1:1/nowhere"),
        "{error}"
    );
    let logs = captured_logs();
    assert!(logs.contains("stored in PostgreSQL at postgres://postgres:***@"));
    assert!(
        !logs.contains("pg-secret-4711"),
        "the password reached the logs"
    );
    assert!(!error.contains("pg-secret-4711"));
}

#[tokio::test]
async fn a_brief_database_outage_loses_no_request_and_no_ledger_row() {
    let database = TestDatabase::create().await;
    let proxy = CutProxy::start().await;
    let url = database.url_via(&proxy);
    let app = TestApp::configured(2, |env| {
        env.set("DATABASE_URL", &url)
            .set("USAGE_FLUSH_SECS", "0.05")
            .set("STATE_FLUSH_SECS", "0.1")
    })
    .await;
    let mut sent = 0;
    for _ in 0..5 {
        assert_eq!(app.hello().await.status(), 200);
        sent += 1;
    }
    eventually("the first rows are written", || async {
        ledger_rows(&database).await == 5
    })
    .await;

    proxy.cut();
    let cut_at = tokio::time::Instant::now();
    while cut_at.elapsed() < Duration::from_secs(2) {
        let response = app.hello().await;
        assert_eq!(response.status(), 200, "served from the keys in memory");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(sent > 20, "requests were served during the cut: {sent}");
    assert!(
        ledger_rows(&database).await < sent,
        "the rows of the cut were held back"
    );
    proxy.restore();
    for _ in 0..5 {
        assert_eq!(app.hello().await.status(), 200);
        sent += 1;
    }

    eventually("every ledger row reaches the database", || async {
        ledger_rows(&database).await == sent
    })
    .await;
    let stats = app.admin_get("/api/keypool/stats").await;
    assert_eq!(stats["providers"]["anthropic"]["total_requests"], sent);
    // The key state kept during the cut is saved too.
    eventually("the pool's counters are saved", || async {
        let pool = database.pool().await;
        let data: Option<String> =
            sqlx::query_scalar("SELECT data FROM provider_stats WHERE provider = 'anthropic'")
                .fetch_optional(&pool)
                .await
                .unwrap();
        pool.close().await;
        data.and_then(|d| serde_json::from_str::<Value>(&d).ok())
            .is_some_and(|d| d["total_requests"] == sent)
    })
    .await;
    let logs = captured_logs();
    assert!(logs.contains("usage ledger: the database is unreachable"));
    assert!(logs.contains("usage ledger: the database is reachable again"));
    assert_eq!(app.ledger.counters().dropped(), 0);
}
