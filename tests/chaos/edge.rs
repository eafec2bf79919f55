//! Hostile clients at the edge: an oversized body, slow-loris connections
//! and header floods are answered (or dropped) without harm to the other
//! clients, who keep getting answers meanwhile.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// What well-behaved clients must see while the attack runs: every request
/// answered 200, none slower than this.
const PATIENCE: Duration = Duration::from_secs(2);

/// Sends `count` ordinary requests one after another and checks each is
/// answered quickly.
async fn well_behaved(app: &TestApp, count: usize) {
    for _ in 0..count {
        let started = Instant::now();
        let response = tokio::time::timeout(PATIENCE, app.hello())
            .await
            .expect("another client is answered while the attack runs");
        assert_eq!(response.status(), 200);
        assert!(started.elapsed() < PATIENCE);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn host_of(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// Reads what the server answers, until it closes or `limit` passes; a
/// reset counts as a close.
async fn answer_of(stream: &mut TcpStream, limit: Duration) -> String {
    let mut buffer = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut buffer)).await;
    String::from_utf8_lossy(&buffer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_413_and_others_are_served() {
    let app = TestApp::configured(1, |env| env.set("MAX_BODY_BYTES", "65536")).await;
    let big = "x".repeat(4 * 1024 * 1024);
    let body = json!({"messages": [{"role": "user", "content": big}]});
    let (oversized, ()) = tokio::join!(
        app.post("/api/chat").json(&body).send(),
        well_behaved(&app, 5)
    );
    // keygate answers 413 as soon as the declared length is past the limit
    // and may close before the client has written the whole body; a client
    // then sees the connection end instead of the 413. Both refuse it.
    match oversized {
        Ok(response) => assert_eq!(response.status(), 413),
        Err(error) => assert!(error.is_request() || error.is_body(), "{error:?}"),
    }
    well_behaved(&app, 2).await;
    assert_eq!(
        app.upstream.calls().len(),
        7,
        "the big body never went upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_clients_do_not_block_others() {
    let app = TestApp::with_keys(1).await;
    let host = host_of(&app);
    let request = b"POST /api/chat HTTP/1.1\r\nHost: keygate\r\ncontent-type: application/json\r\n";
    let mut lorises = Vec::new();
    for _ in 0..50 {
        let host = host.clone();
        lorises.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(&host).await else {
                return;
            };
            for byte in request {
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile (about 3 s of dribbling) others are served as usual.
    well_behaved(&app, 20).await;
    for loris in lorises {
        loris.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_floods_are_refused_and_others_are_served() {
    let app = TestApp::with_keys(1).await;
    let host = host_of(&app);
    let many: String = (0..10_000)
        .map(|i| format!("x-flood-{i}: {i}\r\n"))
        .collect();
    let huge = format!("x-huge: {}\r\n", "h".repeat(1024 * 1024));
    for headers in [many, huge] {
        let host = host.clone();
        let flood = tokio::spawn(async move {
            let mut stream = TcpStream::connect(&host).await.unwrap();
            let request = format!(
                "POST /api/chat HTTP/1.1\r\nHost: keygate\r\n{headers}content-length: 2\r\n\r\n{{}}"
            );
            // The server may close before everything is written: also a refusal.
            let _ = stream.write_all(request.as_bytes()).await;
            answer_of(&mut stream, Duration::from_secs(5)).await
        });
        well_behaved(&app, 3).await;
        let answer = flood.await.unwrap();
        let status: Option<u16> = answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok());
        assert!(
            answer.is_empty() || status.is_some_and(|s| (400..500).contains(&s)),
            "a header flood is refused with a 4xx or a closed connection, got {:?}",
            answer.lines().next()
        );
    }
    well_behaved(&app, 2).await;
    assert_eq!(
        app.upstream.calls().len(),
        8,
        "no flood reached the upstream"
    );
}
