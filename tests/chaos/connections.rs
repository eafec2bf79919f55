//! Bounded connections (issue 9): a connection that never completes a
//! request head is closed after HEADER_READ_TIMEOUT_SECS whatever its
//! protocol, a body that does not arrive within BODY_READ_TIMEOUT_SECS is
//! cut, MAX_CONNECTIONS keeps a flood from using up the descriptors while
//! `/health` still answers, idle connections do not hold up shutdown, and
//! an oversized `Expect: 100-continue` upload is refused before it starts.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Canned, TestApp, TestEnv, anthropic_stream_frames, data_events};

/// The HTTP/2 connection preface a client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Slack on top of a deadline for scheduling on a loaded two-core machine.
const SLACK: Duration = Duration::from_millis(1500);

fn host_of(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (a reset counts) or
/// `limit` passes; returns what was read and whether it was closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    (answer, read.is_ok())
}

/// `GET /health` on a connection of its own (a pooled one would prove
/// nothing about accepting), answered 200 within `limit`.
async fn health_answers(app: &TestApp, limit: Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response =
        tokio::time::timeout(limit, client.get(format!("{}/health", app.address)).send())
            .await
            .expect("/health answers in time")
            .expect("/health answers");
    assert_eq!(response.status(), 200);
}

/// keygate with a short head deadline and whatever `adjust` adds.
async fn app_with(head: &str, adjust: impl FnOnce(TestEnv) -> TestEnv) -> TestApp {
    TestApp::configured(1, |env| adjust(env.set("HEADER_READ_TIMEOUT_SECS", head))).await
}

/// Raises this process's descriptor limit and says how many connections it
/// can afford: keygate runs in-process, so each one costs two descriptors.
fn affordable_connections(wanted: usize) -> usize {
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let affordable = usize::try_from(soft.saturating_sub(300) / 2).unwrap_or(usize::MAX);
    if affordable < wanted {
        eprintln!("descriptor limit {soft}: opening {affordable} connections, not {wanted}");
    }
    wanted.min(affordable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_connections_is_closed_and_health_keeps_answering() {
    let head = Duration::from_millis(1500);
    let app = app_with("1.5", |env| env).await;
    let host = host_of(&app);
    let count = affordable_connections(2_000);
    let mut silent = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = TcpStream::connect(&host).await.unwrap();
        silent.push((Instant::now(), stream));
    }
    // Every one of them is still inside its deadline at the latest.
    health_answers(&app, Duration::from_secs(1)).await;

    let closed = join_all(silent.into_iter().map(|(opened, mut stream)| async move {
        let limit = (opened + head + SLACK).saturating_duration_since(Instant::now());
        let (_, closed) = read_until_closed(&mut stream, limit).await;
        closed
    }))
    .await;
    let open = closed.iter().filter(|closed| !**closed).count();
    assert_eq!(
        open, 0,
        "{open} of {count} silent connections outlived the deadline"
    );
    health_answers(&app, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_http2_preface_is_closed_on_time() {
    let app = app_with("0.5", |env| env).await;
    let mut stream = TcpStream::connect(host_of(&app)).await.unwrap();
    stream.write_all(H2_PREFACE).await.unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_millis(500) + SLACK).await;
    assert!(
        closed,
        "a preface-only HTTP/2 connection is still open after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_first_line_is_closed_on_time() {
    let app = app_with("0.5", |env| env).await;
    // "P" alone could still be an HTTP/2 preface, so the protocol is not
    // known yet; "POST /api/ch" is HTTP/1 already.
    for partial in ["P", "PRI * HTTP/", "POST /api/ch"] {
        let mut stream = TcpStream::connect(host_of(&app)).await.unwrap();
        stream.write_all(partial.as_bytes()).await.unwrap();
        let started = Instant::now();
        let (_, closed) = read_until_closed(&mut stream, Duration::from_millis(500) + SLACK).await;
        assert!(
            closed,
            "{partial:?} is still open after {:?}",
            started.elapsed()
        );
    }
}

/// An HTTP/2 frame: 9-byte header, then the payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// `GET /health` over HTTP/2 with prior knowledge, by hand: preface, empty
/// SETTINGS, and one HEADERS frame (HPACK: indexed `:method GET` and
/// `:scheme http`, literal `:path` and `:authority`) that ends the stream.
fn h2_health_request() -> Vec<u8> {
    let mut headers = vec![0x82, 0x86, 0x44, 7];
    headers.extend_from_slice(b"/health");
    headers.extend_from_slice(&[0x41, 9]);
    headers.extend_from_slice(b"localhost");
    let mut bytes = H2_PREFACE.to_vec();
    bytes.extend(h2_frame(0x4, 0, 0, &[]));
    bytes.extend(h2_frame(0x1, 0x4 | 0x1, 1, &headers));
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_head_deadline() {
    let app = app_with("0.5", |env| env).await;
    let requests: [(&str, Vec<u8>, &[u8]); 2] = [
        // HTTP/2: answered, then no stream open. hyper alone would keep it.
        ("HTTP/2", h2_health_request(), &[0x88]), // HPACK `:status 200`
        // HTTP/1 keep-alive: hyper's own header-read timeout closes it too.
        (
            "HTTP/1.1",
            b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n".to_vec(),
            b"HTTP/1.1 200",
        ),
    ];
    join_all(requests.into_iter().map(|(protocol, request, answered)| {
        let host = host_of(&app);
        async move {
            let mut stream = TcpStream::connect(host).await.unwrap();
            stream.write_all(&request).await.unwrap();
            let started = Instant::now();
            // Idle after its answer: the head deadline, plus a second to
            // close gracefully (GOAWAY) for a connection that was served.
            let limit = Duration::from_millis(500) + Duration::from_secs(1) + SLACK;
            let (answer, closed) = read_until_closed(&mut stream, limit).await;
            let took = started.elapsed();
            assert!(
                answer.windows(answered.len()).any(|w| w == answered),
                "{protocol}: not answered: {answer:?}"
            );
            assert!(closed, "{protocol}: idle connection open after {took:?}");
            assert!(
                took >= Duration::from_millis(400),
                "{protocol}: closed after {took:?}"
            );
        }
    }))
    .await;
}

/// The status line and JSON body of a raw HTTP/1 answer.
fn status_and_body(answer: &[u8]) -> (Option<u16>, Value) {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// Sends a request head declaring a 1 MB body, then `upload` (a trickle or
/// nothing), and returns the answer and how long it took.
async fn upload(app: &TestApp, path: &str, trickle: bool) -> (Vec<u8>, Duration) {
    let stream = TcpStream::connect(host_of(app)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         anthropic-version: 2023-06-01\r\ncontent-length: 1000000\r\n\r\n{{\"messages\": ["
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        if trickle {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if writer.write_all(b" ").await.is_err() {
                    return;
                }
            }
        }
        // A stalled client: keeps the connection open and sends nothing.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(writer);
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(1) + SLACK * 2,
        reader.read_to_end(&mut answer),
    )
    .await;
    sender.abort();
    (answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_stalled_uploads_are_cut_at_the_body_deadline() {
    let app = app_with("0.5", |env| env.set("BODY_READ_TIMEOUT_SECS", "1")).await;
    let uploads = [
        ("/api/chat", true),
        ("/api/chat", false),
        ("/v1/messages", true),
    ];
    let answers = join_all(uploads.map(|(path, trickle)| upload(&app, path, trickle))).await;
    for ((path, trickle), (answer, took)) in uploads.into_iter().zip(answers) {
        let (status, body) = status_and_body(&answer);
        assert_eq!(
            status,
            Some(408),
            "{path} trickle={trickle}: {:?}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(body["error"]["type"], "timeout_error", "{body}");
        assert!(
            took >= Duration::from_millis(900),
            "cut after {took:?}, before the deadline"
        );
        assert!(took < Duration::from_secs(1) + SLACK, "cut after {took:?}");
    }
    assert!(
        app.upstream.calls().is_empty(),
        "no partial body went upstream"
    );
    // Responses have no such deadline: a stream outlasting it is whole.
    app.upstream.queue(
        app.key(0),
        [Canned::sse(anthropic_stream_frames(&["slow", "ly"])).paced(Duration::from_millis(250))],
    );
    let started = Instant::now();
    let events = data_events(
        app.chat(json!({"stream": true, "messages": [{"role": "user", "content": "Hello!"}]}))
            .await,
    )
    .await;
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "the stream outlasted the body deadline"
    );
    assert_eq!(events.last().unwrap()["type"], "done", "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_hold_up_shutdown() {
    let mut app = TestApp::configured(1, |env| {
        env.set("HEADER_READ_TIMEOUT_SECS", "20")
            .set("SHUTDOWN_GRACE_SECS", "20")
    })
    .await;
    let host = host_of(&app);
    // Head-less: silent, a bare HTTP/2 preface, a partial first line.
    let mut raw = Vec::new();
    for opening in [&b""[..], H2_PREFACE, b"POST /api/ch"] {
        let mut stream = TcpStream::connect(&host).await.unwrap();
        stream.write_all(opening).await.unwrap();
        raw.push(stream);
    }
    // Idle after a request: HTTP/1 keep-alive and HTTP/2 with no open stream.
    let h1 = reqwest::Client::new();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for client in [&h1, &h2] {
        let response = client
            .get(format!("{}/health", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    app.shutdown().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "shutdown took {took:?} with idle connections open"
    );
    for mut stream in raw {
        let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(1)).await;
        assert!(closed, "an idle connection outlived shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_expect_100_continue_upload_gets_413_without_100() {
    let app = app_with("2", |env| env.set("MAX_BODY_BYTES", "65536")).await;
    for path in [
        "/api/chat",
        "/v1/messages",
        "/v1/chat/completions",
        "/health",
    ] {
        let mut stream = TcpStream::connect(host_of(&app)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             expect: 100-continue\r\ncontent-length: 10000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        // The whole answer, or what came before the client would give up.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while !String::from_utf8_lossy(&answer).contains("}") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => answer.extend_from_slice(&buffer[..n]),
                }
            }
        })
        .await;
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains("100 Continue"), "{path}: {text:?}");
        let (status, body) = status_and_body(&answer);
        assert_eq!(status, Some(413), "{path}: {text:?}");
        assert_eq!(body["error"]["type"], "request_too_large", "{path}: {body}");
    }
    assert!(app.upstream.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_health_still_answers() {
    // The head deadline is long here, so only the cap can close anything.
    let app = app_with("5", |env| env.set("MAX_CONNECTIONS", "20")).await;
    let host = host_of(&app);
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(&host).await.unwrap());
    }
    health_answers(&app, Duration::from_secs(1)).await;
    health_answers(&app, Duration::from_secs(1)).await;
    let closed = join_all(silent.iter_mut().map(|stream| async move {
        read_until_closed(stream, Duration::from_millis(300))
            .await
            .1
    }))
    .await;
    let closed = closed.iter().filter(|closed| **closed).count();
    // 50 silent + 2 answered connections, at most 20 open at a time.
    assert!(
        closed >= 30,
        "only {closed} of 50 silent connections were closed at a cap of 20"
    );
}
