//! Large pools (issue 16): thousands of keys loaded from `.env`, from
//! `<PROVIDER>_API_KEYS_FILE` and served in rotation; and, ignored by
//! default, the figures the README's targets are checked against.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::run;
use crate::helpers::{
    FakeUpstream, TestApp, TestEnv, planted_key, planted_openai_key, secret_core,
};

fn keys(tag: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| planted_key(&format!("{tag}{i}")))
        .collect()
}

#[tokio::test]
async fn a_dot_env_and_a_keys_file_load_pools_too_large_for_a_variable() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[]).unset("ANTHROPIC_API_KEYS");
    let anthropic = keys("env", 5000);
    let openai: Vec<String> = (0..3000)
        .map(|i| planted_openai_key(&format!("o{i}")))
        .collect();
    let array = serde_json::to_string(&anthropic).unwrap();
    assert!(array.len() > 128 * 1024, "more than one variable may hold");
    std::fs::write(
        env.data_dir.path().join("openai-keys.txt"),
        openai.join("\n"),
    )
    .unwrap();
    std::fs::write(
        env.data_dir.path().join(".env"),
        format!("ANTHROPIC_API_KEYS={array}\nOPENAI_API_KEYS_FILE=openai-keys.txt\n"),
    )
    .unwrap();
    let (ok, output) = run(&env, &["seed"]).await;
    assert!(ok, "{output}");
    assert!(output.contains("anthropic: 5000 keys loaded"), "{output}");
    assert!(output.contains("openai: 3000 keys loaded"), "{output}");
    for key in anthropic.iter().chain(&openai).step_by(97) {
        assert!(!output.contains(secret_core(key)), "a key was printed");
    }
}

#[tokio::test]
async fn a_pool_from_a_keys_file_serves_every_key_in_turn() {
    let upstream = FakeUpstream::start().await;
    let pool = keys("file", 300);
    let base = TestEnv::new(&upstream, &[]).unset("ANTHROPIC_API_KEYS");
    let file = base.data_dir.path().join("anthropic-keys.txt");
    std::fs::write(&file, pool.join("\n")).unwrap();
    let env = base.set("ANTHROPIC_API_KEYS_FILE", &file.display().to_string());
    let app = TestApp::start(env, upstream, pool.clone()).await;
    for _ in 0..600 {
        let response = app
            .chat(json!({"messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(response.status(), 200);
    }
    let calls = app.upstream.calls_per_key();
    assert_eq!(calls.len(), 300, "every key of the file served");
    assert!(calls.values().all(|&n| n == 2), "{calls:?}");
}

/// Run on a quiet machine, with a release build:
/// `cargo test --release --test api large_pools::figures -- --ignored --nocapture`.
/// Prints how long importing 5,000 keys with `keys add --from-file` takes,
/// how long keygate takes to start serving them, and its resident memory
/// per key (5,000 keys against 2).
#[tokio::test]
#[ignore = "a measurement: run on a quiet machine with --release"]
async fn figures() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[]).unset("ANTHROPIC_API_KEYS");
    let file = env.data_dir.path().join("keys.txt");
    std::fs::write(&file, keys("m", 5000).join("\n")).unwrap();
    let path = file.display().to_string();
    let started = Instant::now();
    let (ok, output) = run(
        &env,
        &[
            "keys",
            "add",
            "--provider",
            "anthropic",
            "--from-file",
            &path,
        ],
    )
    .await;
    assert!(ok, "{output}");
    println!(
        "import of 5000 keys: {:.2} s (target: under 5 s)",
        started.elapsed().as_secs_f64()
    );
    let large = serving(&env).await;
    println!(
        "start-up with 5000 keys: {:.3} s (target: under 1 s)",
        large.0.as_secs_f64()
    );

    let small_env = TestEnv::new(&upstream, &keys("s", 2));
    let small = serving(&small_env).await;
    let per_key = (large.1.saturating_sub(small.1)) as f64 * 1024.0 / 4998.0;
    println!(
        "resident memory: {} KiB with 5000 keys, {} KiB with 2: {per_key:.0} bytes per key (target: under 4096)",
        large.1, small.1
    );
}

/// Starts `keygate` serving `env`; returns the time to its ready line and
/// its resident memory (KiB) once ready and a few requests served.
async fn serving(env: &TestEnv) -> (Duration, u64) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut command = crate::cli::command(env, &[]);
    // Info only: a log line per request would be part of the measurement.
    command
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("keygate starts")
            .unwrap()
            .expect("keygate logs its address");
        if let Some((_, rest)) = line.split_once("listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let ready = started.elapsed();
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let response = client
            .post(format!("{url}/api/chat"))
            .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let pid = child.id().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap();
    child.kill().await.unwrap();
    (ready, rss)
}
