//! `keygate store copy`: an installation moved from SQLite to PostgreSQL
//! with the real binary: counts per table, nothing added by a second run,
//! a wrong master key refused on either side, the copied keys and state
//! serving requests from PostgreSQL, and the way back to SQLite.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::helpers::{
    Canned, FakeUpstream, OTHER_MASTER_KEY, TestApp, TestEnv, planted_key, secret_core,
};
use crate::pg_support::TestDatabase;

const BINARY: &str = env!("CARGO_BIN_EXE_keygate");

/// `keygate store copy --from … --to …` with `env`'s variables (and its
/// ENCRYPTION_KEY), in its data folder so no developer `.env` is read.
async fn copy(env: &TestEnv, from: &str, to: &str) -> (bool, String) {
    let output = Command::new(BINARY)
        .args(["store", "copy", "--from", from, "--to", to])
        .env_clear()
        .envs(&env.vars)
        .current_dir(env.data_dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the copy ends")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn table_rows(database: &TestDatabase, table: &str) -> i64 {
    scalar(database, &format!("SELECT COUNT(*) FROM {table}")).await
}

/// Ledger rows in the database (each block holds one write's).
async fn ledger_rows(database: &TestDatabase) -> i64 {
    scalar(
        database,
        "SELECT CAST(COALESCE(SUM(row_count), 0) AS BIGINT) FROM usage_blocks",
    )
    .await
}

async fn scalar(database: &TestDatabase, query: &str) -> i64 {
    let pool = database.pool().await;
    let value = sqlx::query_scalar(query).fetch_one(&pool).await.unwrap();
    pool.close().await;
    value
}

#[tokio::test]
async fn an_sqlite_installation_moves_to_postgres_once_and_serves_from_there() {
    // A SQLite installation with keys, state (a cooling key) and usage.
    let mut app = TestApp::with_keys(2).await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(429, "rate_limit_error", "slow").header("retry-after", "300")],
    );
    for _ in 0..4 {
        assert_eq!(app.hello().await.status(), 200);
    }
    let before = app.status().await;
    app.shutdown().await;
    let source = app.env_vars()["DATABASE_URL"].clone();
    let env = TestEnv {
        vars: app.env_vars().clone(),
        data_dir: app.data_dir.clone(),
    };
    let database = TestDatabase::create().await;

    let (ok, output) = copy(&env, &source, &database.url).await;
    assert!(ok, "{output}");
    for line in [
        "api_keys: 2 new (2 in the source)",
        "key_state: 2 new (2 in the source)",
        "provider_stats: 1 new (1 in the source)",
        "resource_bindings: 0 new (0 in the source)",
        "usage rows: 4 new (4 in the source)",
    ] {
        assert!(output.contains(line), "{line}: {output}");
    }
    assert!(output.contains("usage_hourly: "), "{output}");
    for key in &app.keys {
        assert!(!output.contains(secret_core(key)), "{output}");
    }
    let rollups = table_rows(&database, "usage_5min").await;
    assert!(rollups > 0);

    // Again: nothing new.
    let (ok, output) = copy(&env, &source, &database.url).await;
    assert!(ok, "{output}");
    for line in [
        "api_keys: 0 new (2 in the source)",
        "key_state: 0 new (2 in the source)",
        "provider_stats: 0 new (1 in the source)",
        "usage rows: 0 new (4 in the source)",
        "usage_5min: 0 new",
    ] {
        assert!(output.contains(line), "{line}: {output}");
    }
    assert_eq!(ledger_rows(&database).await, 4);
    assert_eq!(table_rows(&database, "usage_5min").await, rollups);

    // And back, into a new SQLite file.
    let back = format!("sqlite://{}/back.db", env.data_dir.path().display());
    let (ok, output) = copy(&env, &database.url, &back).await;
    assert!(ok, "{output}");
    for line in [
        "api_keys: 2 new (2 in the source)",
        "key_state: 2 new (2 in the source)",
        "usage rows: 4 new (4 in the source)",
        &format!("usage_5min: {rollups} new ({rollups} in the source)"),
    ] {
        assert!(output.contains(line), "{line}: {output}");
    }

    // The copied keys, state and ledger serve from PostgreSQL.
    let pg_env = TestEnv::new(&app.upstream, &app.keys).set("DATABASE_URL", &database.url);
    let mut moved = TestApp::start(pg_env, app.upstream.clone(), app.keys.clone()).await;
    let after = moved.status().await;
    assert_eq!(after["stats"], before["stats"]);
    assert_eq!(after["keys"][0]["id"], before["keys"][0]["id"]);
    assert_eq!(after["keys"][0]["state"], "cooling_down");
    assert_eq!(after["keys"].as_array().unwrap().len(), 2, "no key twice");
    let usage = moved.admin_get("/api/usage").await;
    assert_eq!(usage["groups"][0]["requests"], 4, "{usage}");
    let calls = app.upstream.calls_with(app.key(1));
    assert_eq!(moved.hello().await.status(), 200);
    assert_eq!(app.upstream.calls_with(app.key(1)), calls + 1);
    // New rows continue after the copied ids.
    moved.shutdown().await;
    assert_eq!(ledger_rows(&database).await, 5);
}

#[tokio::test]
async fn a_copy_with_the_wrong_encryption_key_is_refused_on_either_side() {
    let upstream = FakeUpstream::start().await;
    let mine = TestEnv::new(&upstream, &[planted_key("copy-a")]);
    let (ok, output) = copy(&mine, "sqlite://does/not/exist.db", "sqlite://elsewhere.db").await;
    assert!(!ok && output.contains("no such database file"), "{output}");
    // Seed a source, then copy it with another key.
    drop(
        keygate::startup::Application::build(mine.config())
            .await
            .unwrap(),
    );
    let source = mine.vars["DATABASE_URL"].clone();
    let database = TestDatabase::create().await;
    let wrong = TestEnv {
        vars: mine.vars.clone(),
        data_dir: mine.data_dir.clone(),
    }
    .set("ENCRYPTION_KEY", OTHER_MASTER_KEY);
    let (ok, output) = copy(&wrong, &source, &database.url).await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("1 of 1 keys in the source cannot be decrypted with ENCRYPTION_KEY"),
        "{output}"
    );
    assert_eq!(table_rows(&database, "api_keys").await, 0, "nothing copied");

    // The target holds keys sealed with MASTER_KEY; a source sealed with
    // another key may not join them.
    let (ok, output) = copy(&mine, &source, &database.url).await;
    assert!(ok, "{output}");
    let other =
        TestEnv::new(&upstream, &[planted_key("copy-b")]).set("ENCRYPTION_KEY", OTHER_MASTER_KEY);
    drop(
        keygate::startup::Application::build(other.config())
            .await
            .unwrap(),
    );
    let (ok, output) = copy(&other, &other.vars["DATABASE_URL"], &database.url).await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("1 of 1 keys in the target cannot be decrypted with ENCRYPTION_KEY"),
        "{output}"
    );
    assert_eq!(table_rows(&database, "api_keys").await, 1);
    // Without ENCRYPTION_KEY the copy names the variable.
    let (ok, output) = copy(&mine.unset("ENCRYPTION_KEY"), &source, &database.url).await;
    assert!(
        !ok && output.contains("ENCRYPTION_KEY must be set"),
        "{output}"
    );
}
