//! Session bindings shared through Redis: a conversation keeps its cache
//! scope whichever replica serves its next turn.

use std::time::Duration;

use serde_json::json;

use crate::support::{Replicas, shared_redis_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_bound_on_one_replica_keeps_its_scope_on_the_others() {
    // Four keys without scopes: each is its own, so staying in the scope
    // means staying on the key.
    let cluster = Replicas::start(2, 4, &shared_redis_url()).await;
    let body = json!({
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 10,
        "system": "You are a careful assistant. ".repeat(200),
        "messages": [{"role": "user", "content": "Hi"}],
    });
    let turn = |replica: usize| {
        cluster.apps[replica]
            .post("/v1/messages")
            .header("x-session-id", "shared-session")
            .json(&body)
            .send()
    };
    let first = turn(0).await.unwrap();
    let key = first.headers()["x-keygate-key"].clone();
    // The binding is published at once; this leaves it time to arrive
    // through Redis even on a loaded machine.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for replica in [1, 0, 1, 1, 0, 1] {
        let answer = turn(replica).await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["x-keygate-key"], key, "replica {replica}");
    }
    cluster.finish().await;
}
