//! Three replicas sharing a PostgreSQL store and a Redis, as a deployment
//! runs them: a key added through one serves on another, and every
//! replica's requests land in the one ledger, which any replica reports.

use std::time::Duration;

use crate::helpers::planted_key;
use crate::pg_support::TestDatabase;
use crate::support::{Replicas, add_key_and_wait, shared_redis_url, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_share_keys_counters_and_the_ledger() {
    let database = TestDatabase::create().await;
    let cluster = Replicas::start_on(3, 2, &shared_redis_url(), Some(&database.url)).await;
    let (b, c) = (&cluster.apps[1], &cluster.apps[2]);

    let new_key = planted_key("pg-added");
    let took = add_key_and_wait(b, c, &new_key, 3).await;
    println!("key added on B in force on C after {took:?}");

    let requests = 30;
    for _ in 0..requests {
        assert_eq!(cluster.next().hello().await.status(), 200);
    }
    assert!(
        cluster.upstream.calls_with(&new_key) >= 1,
        "the new key served"
    );
    let upstream_calls: usize = cluster.upstream.calls_per_key().values().sum();
    // Any replica reports the whole cluster: counters through Redis, usage
    // from the shared ledger.
    for app in &cluster.apps {
        within(
            Duration::from_secs(3),
            "totals and usage settle",
            || async {
                let stats = app.admin_get("/api/keypool/stats").await;
                let usage = app.admin_get("/api/usage?from=1h").await;
                stats["providers"]["anthropic"]["total_requests"] == requests as u64
                    && usage["groups"][0]["requests"] == requests as u64
            },
        )
        .await;
        let status = app.admin_get("/api/keypool/anthropic/status").await;
        let attempts: u64 = status["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["requests"].as_u64().unwrap())
            .sum();
        assert_eq!(attempts, upstream_calls as u64);
    }
    let stored: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(row_count), 0) AS BIGINT) FROM usage_blocks")
            .fetch_one(&database.pool().await)
            .await
            .unwrap();
    assert_eq!(
        stored, requests as i64,
        "one ledger row per request, in PostgreSQL"
    );
    cluster.finish().await;
}
