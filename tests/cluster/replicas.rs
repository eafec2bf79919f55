//! Three replicas on the machine's Redis, driven round-robin.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, Canned, planted_key};
use crate::support::{Replicas, add_key_and_wait, shared_redis_url, within};

fn limited(retry_after: &str) -> Canned {
    Canned::error(429, "rate_limit_error", "slow down").header("retry-after", retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rate_limited_through_one_replica_gets_no_call_from_any_during_its_cooldown() {
    let cluster = Replicas::start(3, 3, &shared_redis_url()).await;
    let key = cluster.keys[0].clone();
    // The first call with key 0 is limited for 5 s; so is its probe.
    cluster.upstream.queue(&key, [limited("5"), limited("5")]);
    let a = &cluster.apps[0];
    while cluster.upstream.calls_with(&key) == 0 {
        assert_eq!(a.hello().await.status(), 200, "replica A fails over");
    }
    let limited_at = Instant::now();
    // Every replica knows within the target (100 ms; measured and shown,
    // bounded loosely here so a loaded CI machine does not fail the test).
    for app in &cluster.apps[1..] {
        within(
            Duration::from_secs(1),
            "the cooldown reaches B and C",
            || async {
                app.admin_get("/api/keypool/anthropic/status").await["keys"][0]["state"]
                    == "cooling_down"
            },
        )
        .await;
        println!(
            "cooldown seen on another replica {:?} after A's answer",
            limited_at.elapsed()
        );
    }
    while limited_at.elapsed() < Duration::from_millis(4_000) {
        assert_eq!(cluster.next().hello().await.status(), 200);
    }
    assert_eq!(
        cluster.upstream.calls_with(&key),
        1,
        "no replica used the key during its cooldown"
    );
    // After the rest exactly one replica probes; its probe is limited again
    // and benches the key everywhere once more.
    while limited_at.elapsed() < Duration::from_millis(7_000) {
        assert_eq!(cluster.next().hello().await.status(), 200);
    }
    assert_eq!(
        cluster.upstream.calls_with(&key),
        2,
        "one probe for the whole cluster"
    );
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_added_through_one_replica_serves_on_another_within_a_second() {
    let cluster = Replicas::start(3, 1, &shared_redis_url()).await;
    let (b, c) = (&cluster.apps[1], &cluster.apps[2]);
    let new_key = planted_key("added");
    let took = add_key_and_wait(b, c, &new_key, 2).await;
    for _ in 0..2 {
        assert_eq!(c.hello().await.status(), 200);
    }
    assert_eq!(cluster.upstream.calls_with(&new_key), 1, "C served with it");
    println!("key in force on another replica after {took:?}");
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_summed_over_the_cluster_equal_the_upstream_calls_exactly() {
    let cluster = Replicas::start(3, 3, &shared_redis_url()).await;
    // Some failures and rotations too: key 1 is limited once, key 2 fails.
    cluster.upstream.queue(&cluster.keys[1], [limited("1")]);
    cluster
        .upstream
        .queue(&cluster.keys[2], [Canned::error(500, "api_error", "boom")]);
    let requests = 60;
    let mut handles = Vec::new();
    for i in 0..requests {
        let app = &cluster.apps[i % 3];
        let (client, address) = (app.client.clone(), app.address.clone());
        handles.push(tokio::spawn(async move {
            client
                .post(format!("{address}/api/chat"))
                .json(&json!({"messages": [{"role": "user", "content": "Hello!"}]}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for handle in handles {
        assert_eq!(handle.await.unwrap(), 200);
    }
    let calls = cluster.upstream.calls_per_key();
    let total_calls: usize = calls.values().sum();
    assert!(total_calls > requests, "some requests rotated");
    for app in &cluster.apps {
        within(Duration::from_secs(2), "cluster totals settle", || async {
            let stats = app.admin_get("/api/keypool/stats").await;
            let status = app.admin_get("/api/keypool/anthropic/status").await;
            let provider = &stats["providers"]["anthropic"];
            let per_key: Vec<u64> = status["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["requests"].as_u64().unwrap())
                .collect();
            provider["total_requests"] == requests as u64
                && provider["successful_requests"] == requests as u64
                && per_key.iter().sum::<u64>() == total_calls as u64
                && cluster
                    .keys
                    .iter()
                    .zip(&per_key)
                    .all(|(key, n)| calls.get(key).copied().unwrap_or(0) as u64 == *n)
        })
        .await;
    }
    // The breakdown: each replica's own share, adding up to the totals.
    within(Duration::from_secs(2), "the breakdown adds up", || async {
        let status = cluster.apps[0]
            .admin_get("/api/keypool/anthropic/status")
            .await;
        let replicas = status["cluster"]["replicas"].as_array().unwrap().clone();
        let shares: Vec<u64> = replicas
            .iter()
            .map(|r| r["total_requests"].as_u64().unwrap())
            .collect();
        let attempts: u64 = replicas
            .iter()
            .flat_map(|r| r["keys"].as_object().unwrap().values())
            .map(|k: &Value| k["requests"].as_u64().unwrap())
            .sum();
        shares == [20, 20, 20] && attempts == total_calls as u64
    })
    .await;
    // A reset through one replica clears the failures the cluster shows on
    // every replica (request totals stay).
    let reset = cluster.apps[0]
        .post("/api/keypool/anthropic/reset")
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    for app in &cluster.apps {
        within(
            Duration::from_secs(1),
            "failures cleared everywhere",
            || async {
                let status = app.admin_get("/api/keypool/anthropic/status").await;
                let keys = status["keys"].as_array().unwrap();
                keys.iter()
                    .all(|k| k["failures"] == 0 && k["state"] == "active")
                    && keys
                        .iter()
                        .map(|k| k["requests"].as_u64().unwrap())
                        .sum::<u64>()
                        == total_calls as u64
            },
        )
        .await;
    }
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_counts_nothing_twice() {
    let mut cluster = Replicas::start(3, 2, &shared_redis_url()).await;
    let send = |app: &crate::helpers::TestApp| {
        let (client, address) = (app.client.clone(), app.address.clone());
        async move {
            let status = client
                .post(format!("{address}/api/chat"))
                .json(&json!({"messages": [{"role": "user", "content": "Hello!"}]}))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
        }
    };
    for i in 0..30 {
        send(&cluster.apps[i % 3]).await;
    }
    // B stops (saving the cluster's totals to the shared store) and starts
    // again from the store, with a new replica id.
    let b = cluster.apps.remove(1);
    let b = b.restart().await;
    cluster.apps.insert(1, b);
    cluster.wait_until_connected(true).await;
    for i in 0..30 {
        send(&cluster.apps[i % 3]).await;
    }
    let calls = cluster.upstream.calls().len() as u64;
    assert_eq!(calls, 60);
    for app in &cluster.apps {
        within(Duration::from_secs(2), "totals stay exact", || async {
            let stats = app.admin_get("/api/keypool/stats").await;
            let status = app.admin_get("/api/keypool/anthropic/status").await;
            let attempts: u64 = status["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["requests"].as_u64().unwrap())
                .sum();
            stats["providers"]["anthropic"]["total_requests"] == 60 && attempts == calls
        })
        .await;
    }
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_added_with_the_cli_is_in_force_on_every_replica_within_a_second() {
    let cluster = Replicas::start(3, 1, &shared_redis_url()).await;
    let new_key = planted_key("from-cli");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_keygate"))
        .args(["keys", "add", "--provider", "anthropic", "--key", &new_key])
        .env_clear()
        .envs(cluster.apps[0].env_vars())
        .env_remove("REDIS_URL")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let added = Instant::now();
    for app in &cluster.apps {
        within(
            Duration::from_secs(1),
            "the CLI's key reaches every replica",
            || async {
                let status = app.admin_get("/api/keypool/anthropic/status").await;
                status["keys"].as_array().unwrap().len() == 2
            },
        )
        .await;
    }
    println!("CLI key in force everywhere after {:?}", added.elapsed());
    cluster.finish().await;
}
