//! Graceful shutdown: requests in flight finish, a stream that would never
//! end is cut after SHUTDOWN_GRACE_SECS, and the state is saved.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Canned, TestApp, anthropic_stream_frames};

#[tokio::test]
async fn in_flight_requests_finish_and_a_stalled_stream_does_not_hold_shutdown() {
    let mut app = TestApp::configured(2, |env| env.set("SHUTDOWN_GRACE_SECS", "0.5")).await;
    app.upstream.queue(
        app.key(0),
        [Canned::reply("finished").delayed(Duration::from_millis(200))],
    );
    app.upstream.queue(
        app.key(1),
        [Canned::sse(anthropic_stream_frames(&["a", "b"])).stall_after(4)],
    );
    let send = |body: serde_json::Value| {
        let client = app.client.clone();
        let url = format!("{}/api/chat", app.address);
        tokio::spawn(async move { client.post(url).json(&body).send().await })
    };
    let quick = send(json!({"messages": [{"role": "user", "content": "Hello!"}]}));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stalled =
        send(json!({"stream": true, "messages": [{"role": "user", "content": "Hello!"}]}));
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    app.shutdown().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    let quick = quick.await.unwrap().unwrap();
    assert_eq!(quick.status(), 200, "a request in flight finishes");
    assert_eq!(
        quick.json::<serde_json::Value>().await.unwrap()["content"],
        "finished"
    );
    // (In the binary the process then exits, closing the stalled stream's
    // connection; in-process its task would linger, so the test drops it.)
    stalled.abort();
    let refused = app
        .client
        .post(format!("{}/api/chat", app.address))
        .json(&json!({"messages": [{"role": "user", "content": "Hello!"}]}))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "new connections are refused after shutdown"
    );

    let app = app.restart_stopped().await;
    let stats = app.status().await["stats"].clone();
    assert_eq!(
        stats["total_requests"], 2,
        "both requests were counted and saved"
    );
}
