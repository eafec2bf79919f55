//! Test harness: `TestApp` starts keygate on port 0 against a `FakeUpstream`
//! (`fake_upstream`: an axum app on port 0 that plays scripted
//! answers per key and records every call), with a temporary database. Logs
//! of every test in this binary are captured (at TRACE) so leak tests can
//! search them.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

pub use fake_upstream::{Canned, FakeUpstream, SseFrame, anthropic_stream_frames};
use keygate::config::Config;
use keygate::ledger::LedgerSink;
use keygate::startup::Application;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const MASTER_KEY: &str = "4f1c2a9be07d3856c1aa0e9f7b62d4e8a3c5f0917d2e6b8a4c1f3e5d7b9a0c2e";
pub const OTHER_MASTER_KEY: &str =
    "0000000000000000000000000000000000000000000000000000000000000001";
pub const ADMIN_KEY: &str = "admin-secret-for-tests";

/// Realistic-looking provider keys, distinct per tag.
pub fn planted_key(tag: &str) -> String {
    format!("sk-ant-api03-{tag}-{}-{tag}", "Zq7".repeat(12))
}

/// An OpenAI-style planted key.
pub fn planted_openai_key(tag: &str) -> String {
    format!("sk-proj-{tag}-{}-{tag}", "Xw4".repeat(12))
}

/// The parts of a planted key that must never show: all but a short prefix
/// and the last four characters a masked label may show.
pub fn secret_core(key: &str) -> &str {
    &key[8..key.len() - 4]
}

// ---------------------------------------------------------------- logs

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_log_capture() {
    init_log_capture_with("trace");
}

/// Starts the capture with `filter` (the first call in a test binary wins):
/// a binary with heavy load keeps keygate at TRACE but quiets the HTTP stack.
pub fn init_log_capture_with(filter: &str) {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || CaptureWriter(writer.clone()))
            .init();
        buffer
    });
}

/// Everything logged so far by every test in this binary.
pub fn captured_logs() -> String {
    init_log_capture();
    String::from_utf8_lossy(&LOGS.get().unwrap().lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------- keygate under test

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub upstream: FakeUpstream,
    pub keys: Vec<String>,
    pub openai_keys: Vec<String>,
    pub data_dir: Arc<TempDir>,
    /// The usage ledger's sink, for recording rows directly.
    pub ledger: LedgerSink,
    vars: HashMap<String, String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

/// Environment for one keygate instance; tests override entries.
pub struct TestEnv {
    pub vars: HashMap<String, String>,
    pub data_dir: Arc<TempDir>,
}

impl TestEnv {
    pub fn new(upstream: &FakeUpstream, keys: &[String]) -> Self {
        let data_dir = Arc::new(tempfile::tempdir().unwrap());
        let mut vars = HashMap::new();
        let mut set = |k: &str, v: String| {
            vars.insert(k.to_string(), v);
        };
        set("PORT", "0".into());
        set(
            "DATABASE_URL",
            format!("sqlite://{}/keygate.db", data_dir.path().display()),
        );
        set("ENCRYPTION_KEY", MASTER_KEY.into());
        set("ADMIN_API_KEY", ADMIN_KEY.into());
        set("ANTHROPIC_API_KEYS", serde_json::to_string(keys).unwrap());
        set("ANTHROPIC_BASE_URL", upstream.url.clone());
        set("UPSTREAM_TIMEOUT_SECS", "5".into());
        // Ledger batches four times as often as keygate's default, so a
        // test sees its rows (and would see a stray extra one) sooner.
        set("USAGE_FLUSH_SECS", "0.25".into());
        Self { vars, data_dir }
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    pub fn unset(mut self, name: &str) -> Self {
        self.vars.remove(name);
        self
    }

    pub fn config(&self) -> Config {
        Config::from_lookup(|name| self.vars.get(name).cloned()).unwrap()
    }
}

impl TestApp {
    /// keygate with `n` planted Anthropic keys in front of a fresh fake upstream.
    pub async fn with_keys(n: usize) -> Self {
        Self::configured_both(n, 0, |env| env).await
    }

    /// keygate with `n` Anthropic keys and extra settings.
    pub async fn configured(n: usize, adjust: impl FnOnce(TestEnv) -> TestEnv) -> Self {
        Self::configured_both(n, 0, adjust).await
    }

    /// keygate with Anthropic and OpenAI keys.
    pub async fn with_both(anthropic: usize, openai: usize) -> Self {
        Self::configured_both(anthropic, openai, |env| env).await
    }

    pub async fn configured_both(
        anthropic: usize,
        openai: usize,
        adjust: impl FnOnce(TestEnv) -> TestEnv,
    ) -> Self {
        let upstream = FakeUpstream::start().await;
        let keys: Vec<String> = (0..anthropic)
            .map(|i| planted_key(&format!("k{i}")))
            .collect();
        let openai_keys: Vec<String> = (0..openai)
            .map(|i| planted_openai_key(&format!("o{i}")))
            .collect();
        let env = TestEnv::new(&upstream, &keys)
            .set(
                "OPENAI_API_KEYS",
                &serde_json::to_string(&openai_keys).unwrap(),
            )
            .set("OPENAI_BASE_URL", &upstream.url);
        let mut app = Self::start(adjust(env), upstream, keys).await;
        app.openai_keys = openai_keys;
        app
    }

    pub async fn start(env: TestEnv, upstream: FakeUpstream, keys: Vec<String>) -> Self {
        init_log_capture();
        let app = Application::build(env.config())
            .await
            .expect("keygate starts");
        let address = format!("http://{}", app.local_addr());
        let ledger = app.ledger();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = app
                .run_until_stopped(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            address,
            client: reqwest::Client::new(),
            upstream,
            keys,
            openai_keys: Vec::new(),
            data_dir: env.data_dir.clone(),
            ledger,
            vars: env.vars,
            stop: Some(stop),
            server,
        }
    }

    /// Stops keygate gracefully (requests finish, state is saved) and
    /// starts it again on the same database and upstream.
    pub async fn restart(mut self) -> Self {
        self.shutdown().await;
        self.start_again().await
    }

    /// Starts keygate again after `shutdown`.
    pub async fn restart_stopped(self) -> Self {
        self.start_again().await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
    }

    async fn start_again(self) -> Self {
        let env = TestEnv {
            vars: self.vars.clone(),
            data_dir: self.data_dir.clone(),
        };
        let openai_keys = self.openai_keys.clone();
        let mut app = Self::start(env, self.upstream.clone(), self.keys.clone()).await;
        app.openai_keys = openai_keys;
        app
    }

    pub fn key(&self, index: usize) -> &str {
        &self.keys[index]
    }

    /// The environment this instance was started with (for running the
    /// CLI on the same database).
    pub fn env_vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    pub fn openai_key(&self, index: usize) -> &str {
        &self.openai_keys[index]
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.address))
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.address))
    }

    pub async fn chat(&self, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/chat", self.address))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn hello(&self) -> reqwest::Response {
        self.chat(json!({"messages": [{"role": "user", "content": "Hello!"}]}))
            .await
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn status(&self) -> Value {
        self.admin_get("/api/keypool/anthropic/status").await
    }

    /// The status entry of the key planted at `index` (keys are listed in
    /// the order they were imported).
    pub async fn key_status(&self, index: usize) -> Value {
        self.status().await["keys"][index].clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Reads a JSON error body and returns (type, message).
pub async fn error_of(response: reqwest::Response) -> (String, String) {
    let body: Value = response.json().await.unwrap();
    (
        body["error"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// The SSE events of a response body, as sent.
pub async fn sse_frames(response: reqwest::Response) -> Vec<SseFrame> {
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_string());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push(value);
                }
            }
            SseFrame {
                event,
                data: data.join("\n"),
            }
        })
        .collect()
}

/// The JSON `data:` payloads of a response body (for /api/chat streams).
pub async fn data_events(response: reqwest::Response) -> Vec<Value> {
    sse_frames(response)
        .await
        .iter()
        .map(|frame| serde_json::from_str(&frame.data).unwrap())
        .collect()
}
