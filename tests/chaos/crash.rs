//! The real binary under load: killed with SIGKILL and restarted on the same
//! database (keys intact, counters lost only within the flush interval),
//! and stopped with SIGTERM (in-flight requests finish, new connections are
//! refused, the state is flushed exactly).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{ADMIN_KEY, Canned, FakeUpstream, TestEnv, planted_key};

const BINARY: &str = env!("CARGO_BIN_EXE_keygate");
/// STATE_FLUSH_SECS for these runs.
const FLUSH: Duration = Duration::from_millis(200);
/// Beyond the flush interval: a flush already under way when the kill came
/// (SQLite write of a few rows) and scheduling delay on a loaded machine.
const FLUSH_MARGIN: Duration = Duration::from_millis(300);

/// Starts the binary with `env` and returns it with its address.
pub(crate) async fn start(env: &TestEnv) -> (Child, String) {
    let mut child = Command::new(BINARY)
        .env_clear()
        .envs(&env.vars)
        .env("RUST_LOG", "info")
        .current_dir(env.data_dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("keygate logs its address")
            .unwrap()
            .expect("keygate is running");
        if let Some(at) = line.find("listening on http://") {
            break line[at + "listening on ".len()..].trim().to_string();
        }
    };
    // Keep draining its output so a full pipe never blocks it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}

async fn admin(client: &reqwest::Client, address: &str, path: &str) -> Value {
    let response = client
        .get(format!("{address}{path}"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

fn total_requests(status: &Value) -> u64 {
    status["stats"]["total_requests"]
        .as_u64()
        .or_else(|| status["total_requests"].as_u64())
        .unwrap_or_else(|| panic!("no total_requests in {status}"))
}

async fn hello(client: &reqwest::Client, address: &str) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{address}/api/chat"))
        .json(&json!({"messages": [{"role": "user", "content": "Hello!"}]}))
        .send()
        .await
}

/// After a restart: every key listed, each decrypts and answers a check
/// through the upstream.
async fn assert_keys_intact(
    client: &reqwest::Client,
    address: &str,
    upstream: &FakeUpstream,
    keys: &[String],
) {
    let status = admin(client, address, "/api/keypool/anthropic/status").await;
    assert_eq!(status["keys"].as_array().unwrap().len(), keys.len());
    let before = upstream.calls_per_key();
    let checked = client
        .post(format!("{address}/api/keypool/anthropic/test"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    let after = upstream.calls_per_key();
    for key in keys {
        assert!(
            after.get(key).copied().unwrap_or(0) > before.get(key).copied().unwrap_or(0),
            "every stored key decrypts and reaches the upstream"
        );
    }
    assert_eq!(hello(client, address).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_at_most_the_flush_interval() {
    let upstream = FakeUpstream::start().await;
    let keys: Vec<String> = (0..3).map(|i| planted_key(&format!("kill{i}"))).collect();
    let env = TestEnv::new(&upstream, &keys).set("STATE_FLUSH_SECS", "0.2");
    let (mut child, address) = start(&env).await;
    let client = reqwest::Client::new();

    // Acknowledgement times of the answered requests.
    let acked = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let requests = if crate::long_run() { 3000 } else { 800 };
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, address, acked) = (client.clone(), address.clone(), acked.clone());
        tasks.spawn(async move {
            for _ in (worker..requests).step_by(16) {
                match hello(&client, &address).await {
                    Ok(response) if response.status() == 200 => {
                        acked.lock().unwrap().push(Instant::now());
                    }
                    _ => break,
                }
                // Spread the load over about two seconds.
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    child.start_kill().unwrap();
    let killed = Instant::now();
    let _ = child.wait().await;
    while tasks.join_next().await.is_some() {}
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "the load was running when the kill came");
    assert!(
        acked
            .iter()
            .any(|&at| at + Duration::from_millis(100) > killed),
        "requests were still being answered right before the kill"
    );

    let (_child, address) = start(&env).await;
    let status = admin(&client, &address, "/api/keypool/anthropic/status").await;
    let restored = total_requests(&status);
    let safe = acked
        .iter()
        .filter(|&&at| at + FLUSH + FLUSH_MARGIN < killed)
        .count() as u64;
    eprintln!(
        "sigkill: {} acknowledged, {safe} of them more than {:?} before the kill; {restored} restored",
        acked.len(),
        FLUSH + FLUSH_MARGIN
    );
    assert!(
        restored >= safe,
        "lost more than the flush interval: {restored} restored < {safe} acknowledged before kill - flush - margin"
    );
    assert!(
        restored <= upstream.calls().len() as u64,
        "never more than were sent"
    );
    assert_keys_intact(&client, &address, &upstream, &keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_refuses_new_ones_and_flushes() {
    let upstream = FakeUpstream::start().await;
    let keys: Vec<String> = (0..2).map(|i| planted_key(&format!("term{i}"))).collect();
    for key in &keys {
        upstream.always(
            key,
            Canned::reply("slow").delayed(Duration::from_millis(800)),
        );
    }
    // A long flush interval: only the shutdown flush can save the counters.
    let env = TestEnv::new(&upstream, &keys).set("STATE_FLUSH_SECS", "60");
    let (mut child, address) = start(&env).await;
    let client = reqwest::Client::new();

    let in_flight = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (client, address) = (client.clone(), address.clone());
        tasks.spawn(async move { hello(&client, &address).await.map(|r| r.status()) });
    }
    // Wait until all of them reached the upstream.
    let waiting = Instant::now();
    while upstream.calls().len() < in_flight {
        assert!(waiting.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let host = address.trim_start_matches("http://");
    assert!(
        tokio::net::TcpStream::connect(host).await.is_err(),
        "a new connection after SIGTERM is refused"
    );
    while let Some(joined) = tasks.join_next().await {
        let status = joined.unwrap().expect("an in-flight request is answered");
        assert_eq!(status, 200, "an in-flight request finishes");
    }
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("keygate exits after its in-flight requests")
        .unwrap();
    assert!(exit.success(), "clean exit: {exit:?}");

    let (_child, address) = start(&env).await;
    let status = admin(&client, &address, "/api/keypool/anthropic/status").await;
    assert_eq!(total_requests(&status), in_flight as u64, "{status}");
    let attempts: u64 = status["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(attempts, in_flight as u64);
}
