//! Test harness: `TestApp` starts keygate on port 0 against a `FakeUpstream`
//! (an axum app on port 0 that plays scripted answers per key and records
//! every call), with a temporary database. Logs of every test in this binary
//! are captured (at TRACE) so leak tests can search them.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keygate::config::Config;
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

/// The parts of a planted key that must never show: all but its known
/// prefix and the last four characters a masked label may show.
pub fn secret_core(key: &str) -> &str {
    &key["sk-ant-api03-".len()..key.len() - 4]
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
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter("trace")
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

// ---------------------------------------------------------------- fake upstream

/// One scripted upstream answer.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Canned {
    pub fn reply(text: &str) -> Self {
        Self::json(
            200,
            json!({
                "id": "msg_fake_1", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-20250514",
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 25, "output_tokens": 86}
            }),
        )
    }

    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// An Anthropic-shaped error.
    pub fn error(status: u16, error_type: &str, message: &str) -> Self {
        Self::json(
            status,
            json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"}),
        )
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the fake upstream received.
#[derive(Clone, Debug)]
pub struct Call {
    pub key: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Script {
    /// Answers consumed one per call, per key.
    queued: HashMap<String, VecDeque<Canned>>,
    /// The answer for a key once its queue is empty.
    always: HashMap<String, Canned>,
    calls: Vec<Call>,
}

#[derive(Clone)]
pub struct FakeUpstream {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl FakeUpstream {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route("/v1/messages", axum::routing::post(answer))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{address}"),
            script,
        }
    }

    /// Queues `answers` for `key`, one per call, before its standing answer.
    pub fn queue(&self, key: &str, answers: impl IntoIterator<Item = Canned>) {
        let mut script = self.script.lock().unwrap();
        script
            .queued
            .entry(key.to_string())
            .or_default()
            .extend(answers);
    }

    /// Answers every call with `key` with `answer` (after any queued ones).
    pub fn always(&self, key: &str, answer: Canned) {
        self.script
            .lock()
            .unwrap()
            .always
            .insert(key.to_string(), answer);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.script.lock().unwrap().calls.clone()
    }

    pub fn calls_with(&self, key: &str) -> usize {
        self.calls().iter().filter(|c| c.key == key).count()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let canned = {
        let mut script = script.lock().unwrap();
        script.calls.push(Call {
            key: key.clone(),
            headers: headers.clone(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let queued = script.queued.get_mut(&key).and_then(VecDeque::pop_front);
        queued
            .or_else(|| script.always.get(&key).cloned())
            .unwrap_or_else(|| Canned::reply("Hello from the fake upstream"))
    };
    if !canned.delay.is_zero() {
        tokio::time::sleep(canned.delay).await;
    }
    let mut response = (StatusCode::from_u16(canned.status).unwrap(), canned.body).into_response();
    for (name, value) in canned.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

// ---------------------------------------------------------------- keygate under test

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub upstream: FakeUpstream,
    pub keys: Vec<String>,
    pub data_dir: Arc<TempDir>,
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
    /// keygate with `n` planted keys in front of a fresh fake upstream.
    pub async fn with_keys(n: usize) -> Self {
        let upstream = FakeUpstream::start().await;
        let keys: Vec<String> = (0..n).map(|i| planted_key(&format!("k{i}"))).collect();
        let env = TestEnv::new(&upstream, &keys);
        Self::start(env, upstream, keys).await
    }

    /// keygate with `n` keys and extra settings.
    pub async fn configured(n: usize, adjust: impl FnOnce(TestEnv) -> TestEnv) -> Self {
        let upstream = FakeUpstream::start().await;
        let keys: Vec<String> = (0..n).map(|i| planted_key(&format!("k{i}"))).collect();
        let env = adjust(TestEnv::new(&upstream, &keys));
        Self::start(env, upstream, keys).await
    }

    pub async fn start(env: TestEnv, upstream: FakeUpstream, keys: Vec<String>) -> Self {
        init_log_capture();
        let app = Application::build(env.config())
            .await
            .expect("keygate starts");
        let address = format!("http://{}", app.local_addr());
        let server = tokio::spawn(async move {
            let _ = app.run_until_stopped(std::future::pending()).await;
        });
        Self {
            address,
            client: reqwest::Client::new(),
            upstream,
            keys,
            data_dir: env.data_dir,
            server,
        }
    }

    pub fn key(&self, index: usize) -> &str {
        &self.keys[index]
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
