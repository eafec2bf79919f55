//! Redis going away: the replicas keep serving, say so in `/health` and
//! `/metrics`, and converge when it comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::helpers::{Canned, TestApp, TestEnv};
use crate::support::{OwnRedis, Replicas, within};

fn limited(retry_after: &str) -> Canned {
    Canned::error(429, "rate_limit_error", "slow down").header("retry-after", retry_after)
}

async fn key_state(app: &TestApp, index: usize) -> String {
    let status = app.admin_get("/api/keypool/anthropic/status").await;
    status["keys"][index]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_loses_no_request_and_the_replicas_converge_when_it_returns() {
    let mut redis = OwnRedis::start();
    let cluster = Arc::new(Replicas::start(3, 3, &redis.url()).await);
    // Traffic through all three, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let driver = {
        let (cluster, stop, sent, failed) =
            (cluster.clone(), stop.clone(), sent.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let status = cluster.next().hello().await.status();
                sent.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    cluster.wait_until_connected(false).await;
    let metrics = cluster.apps[0]
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("keygate_redis_connected 0"), "{metrics}");
    // During the outage one replica learns that key 1 is limited (the one
    // the 429 reaches: A, or another through the traffic); only it knows.
    let key = cluster.keys[1].clone();
    let before = cluster.upstream.calls_with(&key);
    cluster.upstream.queue(&key, [limited("60")]);
    while cluster.upstream.calls_with(&key) == before {
        assert_eq!(cluster.apps[0].hello().await.status(), 200);
    }
    // The fake logs a call before answering it: wait for the answer's
    // effect.
    let waited = std::time::Instant::now();
    let states = loop {
        let mut states = Vec::new();
        for app in &cluster.apps {
            states.push(key_state(app, 1).await);
        }
        if states.iter().any(|s| s == "cooling_down") {
            break states;
        }
        assert!(waited.elapsed() < Duration::from_secs(2), "{states:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let learner = states.iter().position(|s| s == "cooling_down").unwrap();
    assert_eq!(
        states.iter().filter(|s| *s == "active").count(),
        2,
        "{states:?}"
    );
    // Redis returns, empty, on the same port.
    redis.restart();
    cluster.wait_until_connected(true).await;
    for (i, app) in cluster.apps.iter().enumerate() {
        within(
            Duration::from_secs(2),
            "the outage's cooldown reaches the others",
            || async { key_state(app, 1).await == "cooling_down" },
        )
        .await;
        if i != learner {
            println!("replica {i} learnt replica {learner}'s outage cooldown");
        }
    }
    let after = cluster.upstream.calls_with(&key);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    driver.await.unwrap();
    assert_eq!(
        cluster.upstream.calls_with(&key),
        after,
        "no replica uses the benched key once converged"
    );
    assert!(sent.load(Ordering::Relaxed) > 20);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no client request failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_starts_and_serves_with_redis_unreachable() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = crate::helpers::FakeUpstream::start().await;
    let keys = vec![crate::helpers::planted_key("alone")];
    let env = TestEnv::new(&upstream, &keys)
        .set(
            "REDIS_URL",
            &format!("redis://:pw-not-logged@127.0.0.1:{port}"),
        )
        .set("KEYGATE_CLUSTER", "kgtest-unreachable");
    let app = TestApp::start(env, upstream, keys).await;
    assert_eq!(app.hello().await.status(), 200);
    let health: serde_json::Value = app
        .get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["ready"], true);
    assert_eq!(health["cluster"]["redis"], "disconnected");
    let stats = app.admin_get("/api/keypool/stats").await;
    assert_eq!(stats["providers"]["anthropic"]["total_requests"], 1);
    assert!(!crate::helpers::captured_logs().contains("pw-not-logged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_cleared_during_a_partition_stays_cleared_when_redis_returns_with_its_data() {
    let redis = OwnRedis::start();
    let cluster = Replicas::start(3, 2, &redis.url()).await;
    // Key 0 is rejected through A: invalid on every replica.
    let key = cluster.keys[0].clone();
    cluster.upstream.queue(
        &key,
        [Canned::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        )],
    );
    while cluster.upstream.calls_with(&key) == 0 {
        assert_eq!(cluster.apps[0].hello().await.status(), 200);
    }
    for app in &cluster.apps {
        within(
            Duration::from_secs(1),
            "key 0 invalid everywhere",
            || async { key_state(app, 0).await == "invalid" },
        )
        .await;
    }
    // Redis freezes; meanwhile an admin's check through B finds the key
    // fine again. B publishes that when Redis returns; A and C, whose
    // Redis kept its data, take Redis's view and do not bring back the
    // invalid mark they still hold.
    redis.signal("STOP");
    let id = cluster.apps[1]
        .admin_get("/api/keypool/anthropic/status")
        .await["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let checked = cluster.apps[1]
        .post(&format!("/api/keypool/anthropic/test?key={id}"))
        .bearer_auth(crate::helpers::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    assert_eq!(key_state(&cluster.apps[1], 0).await, "active");
    cluster.wait_until_connected(false).await;
    for app in &cluster.apps {
        assert_eq!(app.hello().await.status(), 200, "serving without Redis");
    }
    redis.signal("CONT");
    cluster.wait_until_connected(true).await;
    for app in &cluster.apps {
        within(Duration::from_secs(2), "key 0 valid everywhere", || async {
            key_state(app, 0).await == "active"
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for app in &cluster.apps {
        assert_eq!(key_state(app, 0).await, "active", "and it stays so");
    }
}
