//! The real binary, as an operator runs it: `keygate seed`, startup
//! refusals, and serving with its own logs checked for key material.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::{
    FakeUpstream, MASTER_KEY, OTHER_MASTER_KEY, TestEnv, planted_key, secret_core,
};

const BINARY: &str = env!("CARGO_BIN_EXE_keygate");

/// The binary with exactly `env`'s variables, run in its data folder so no
/// developer `.env` is picked up.
pub fn command(env: &TestEnv, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env_clear()
        .envs(&env.vars)
        .env("RUST_LOG", "trace")
        .current_dir(env.data_dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

pub async fn run(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let output = tokio::time::timeout(Duration::from_secs(30), command(env, args).output())
        .await
        .expect("keygate exits")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn seed_imports_the_keys_once_and_says_how_many() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[planted_key("seed-a"), planted_key("seed-b")]);
    let (ok, output) = run(&env, &["seed"]).await;
    assert!(ok, "{output}");
    assert!(output.contains("anthropic: 2 keys loaded"), "{output}");
    let (ok, output) = run(&env, &["seed"]).await;
    assert!(
        ok && output.contains("anthropic: 2 keys loaded"),
        "{output}"
    );
    assert!(!output.contains(secret_core(&planted_key("seed-a"))));
}

#[tokio::test]
async fn a_malformed_encryption_key_stops_startup_naming_the_variable() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[planted_key("x")]).set("ENCRYPTION_KEY", "not-hex");
    let (ok, output) = run(&env, &["seed"]).await;
    assert!(!ok);
    assert!(
        output.contains("invalid ENCRYPTION_KEY: must be exactly 64 hexadecimal characters"),
        "{output}"
    );
}

#[tokio::test]
async fn an_unsupported_database_url_is_refused_and_no_folder_is_made() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[planted_key("my")])
        .set("DATABASE_URL", "mysql://keygate@127.0.0.1/keygate");
    let (ok, output) = run(&env, &["seed"]).await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("invalid DATABASE_URL: the \"mysql\" database is not supported"),
        "{output}"
    );
    assert!(!env.data_dir.path().join("mysql:").exists());
}

#[tokio::test]
async fn postgres_without_an_encryption_key_is_refused_naming_the_variable() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[planted_key("pg")])
        .set(
            "DATABASE_URL",
            "postgres://keygate:db-password-1@127.0.0.1:1/keygate",
        )
        .unset("ENCRYPTION_KEY");
    let (ok, output) = run(&env, &[]).await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("invalid ENCRYPTION_KEY: must be set when DATABASE_URL is a PostgreSQL"),
        "{output}"
    );
    assert!(!output.contains("db-password-1"), "{output}");
    assert!(!env.data_dir.path().join("encryption.key").exists());
}

#[tokio::test]
async fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[planted_key("colour")]);
    let (ok, output) = run(&env, &["seed"]).await;
    assert!(ok, "{output}");
    assert!(output.contains("keys loaded"), "{output}");
    assert!(
        !output.contains('\u{1b}'),
        "escape codes in piped logs: {output:?}"
    );
}

#[tokio::test]
async fn serving_with_the_wrong_encryption_key_is_refused() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[planted_key("w")]);
    assert!(run(&env, &["seed"]).await.0);
    let env = env.set("ENCRYPTION_KEY", OTHER_MASTER_KEY);
    let (ok, output) = run(&env, &[]).await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("cannot be decrypted with the current ENCRYPTION_KEY"),
        "{output}"
    );
    // The original key still opens everything.
    let env = env.set("ENCRYPTION_KEY", MASTER_KEY);
    assert!(run(&env, &["seed"]).await.0);
}

#[tokio::test]
async fn the_binary_serves_chat_and_its_logs_hold_no_key() {
    let upstream = FakeUpstream::start().await;
    let keys = [planted_key("bin-a"), planted_key("bin-b")];
    let env = TestEnv::new(&upstream, &keys);
    upstream.queue(
        &keys[0],
        [crate::helpers::Canned::error(
            401,
            "authentication_error",
            &format!("bad {}", keys[0]),
        )],
    );
    let mut child = command(&env, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = String::new();
    let address = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("keygate logs its address")
            .unwrap()
            .expect("keygate is running");
        log.push_str(&line);
        log.push('\n');
        if let Some(at) = line.find("listening on http://") {
            break line[at + "listening on ".len()..].trim().to_string();
        }
    };
    assert!(log.contains("anthropic: 2 keys loaded"), "{log}");

    let client = reqwest::Client::new();
    let response = client
        .post(format!("{address}/api/chat"))
        .json(&json!({"messages": [{"role": "user", "content": "Hello!"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["attempts"], 2);

    child.start_kill().unwrap();
    let _ = child.wait().await;
    while let Ok(Some(line)) = lines.next_line().await {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(log.contains("upstream attempt failed"), "{log}");
    for key in &keys {
        assert!(
            !log.contains(secret_core(key)),
            "a key reached the binary's log"
        );
    }
}

#[tokio::test]
async fn a_node_backend_env_file_works_unchanged() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[]);
    let dir = env.data_dir.path();
    // As the Node backend's .env had it: an unquoted JSON array with spaces.
    std::fs::write(
        dir.join(".env"),
        format!(
            "ANTHROPIC_API_KEYS=[\"{}\", \"{}\"]\nANTHROPIC_API_KEY={}\nENCRYPTION_KEY={MASTER_KEY}\n\
             DATABASE_URL=sqlite://{}/node.db\n",
            planted_key("env-a"),
            planted_key("env-b"),
            planted_key("env-c"),
            dir.display()
        ),
    )
    .unwrap();
    let output = Command::new(BINARY)
        .arg("seed")
        .env_clear()
        .current_dir(dir)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("anthropic: 3 keys loaded"), "{text}");
}

#[tokio::test]
async fn after_a_kill_9_keys_are_intact_and_at_most_one_flush_of_counters_is_lost() {
    let upstream = FakeUpstream::start().await;
    let keys = [planted_key("kill-a"), planted_key("kill-b")];
    let env = TestEnv::new(&upstream, &keys).set("STATE_FLUSH_SECS", "0.2");
    let (mut child, address) = serve(&env).await;
    let client = reqwest::Client::new();
    for _ in 0..6 {
        let response = client
            .post(format!("{address}/api/chat"))
            .json(&json!({"messages": [{"role": "user", "content": "Hello!"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // Longer than one flush interval: these six are on disk.
    tokio::time::sleep(Duration::from_millis(600)).await;
    child.start_kill().unwrap(); // SIGKILL
    let _ = child.wait().await;

    let (mut child, address) = serve(&env).await;
    let stats: Value = client
        .get(format!("{address}/api/keypool/anthropic/status"))
        .bearer_auth(crate::helpers::ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["stats"]["total_requests"], 6);
    assert_eq!(stats["stats"]["total_keys"], 2, "every key is intact");
    let requests: u64 = (0..2)
        .map(|i| stats["keys"][i]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 6);
    let response = client
        .post(format!("{address}/api/chat"))
        .json(&json!({"messages": [{"role": "user", "content": "Hello!"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the keys still decrypt and serve");
    child.start_kill().unwrap();
}

/// Starts the binary serving and returns it with its address.
async fn serve(env: &TestEnv) -> (tokio::process::Child, String) {
    let mut child = command(env, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("keygate logs its address")
            .unwrap()
            .expect("keygate is running");
        if let Some(at) = line.find("listening on http://") {
            let address = line[at + "listening on ".len()..].trim().to_string();
            // Keep reading its output so it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, address);
        }
    }
}
