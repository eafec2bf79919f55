//! A cluster of replicas for a test, and a `redis-server` a test owns.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{ADMIN_KEY, FakeUpstream, TestApp, TestEnv, planted_key};

/// The machine's Redis, for tests that do not kill it.
pub fn shared_redis_url() -> String {
    std::env::var("KEYGATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct Replicas {
    pub apps: Vec<TestApp>,
    pub upstream: FakeUpstream,
    pub keys: Vec<String>,
    pub prefix: String,
    pub redis_url: String,
    next: std::sync::atomic::AtomicUsize,
}

impl Replicas {
    /// `n` replicas with `keys` planted Anthropic keys, on `redis_url`,
    /// sharing one SQLite file.
    pub async fn start(n: usize, keys: usize, redis_url: &str) -> Self {
        Self::start_on(n, keys, redis_url, None).await
    }

    /// The same, sharing the store at `database_url` when given (a
    /// PostgreSQL database), else one SQLite file.
    pub async fn start_on(
        n: usize,
        keys: usize,
        redis_url: &str,
        database_url: Option<&str>,
    ) -> Self {
        let upstream = FakeUpstream::start().await;
        let keys: Vec<String> = (0..keys).map(|i| planted_key(&format!("c{i}"))).collect();
        let prefix = format!("kgtest-{}", uuid_like());
        let mut env = TestEnv::new(&upstream, &keys);
        if let Some(url) = database_url {
            env = env.set("DATABASE_URL", url);
        }
        let env = env
            .set("REDIS_URL", redis_url)
            .set("KEYGATE_CLUSTER", &prefix)
            .set("STATE_FLUSH_SECS", "0.5")
            .set("KEY_RECHECK_SECS", "0");
        let mut apps = Vec::new();
        for _ in 0..n {
            let env = TestEnv {
                vars: env.vars.clone(),
                data_dir: env.data_dir.clone(),
            };
            apps.push(TestApp::start(env, upstream.clone(), keys.clone()).await);
        }
        let replicas = Self {
            apps,
            upstream,
            keys,
            prefix,
            redis_url: redis_url.to_string(),
            next: Default::default(),
        };
        replicas.wait_until_connected(true).await;
        replicas
    }

    /// The next replica, round-robin.
    pub fn next(&self) -> &TestApp {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.apps[i % self.apps.len()]
    }

    /// Waits (up to 10 s) until every replica's `/health` says the Redis
    /// link is `connected` (or not).
    pub async fn wait_until_connected(&self, connected: bool) {
        let want = if connected {
            "connected"
        } else {
            "disconnected"
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut all = true;
            for app in &self.apps {
                let health: Value = app
                    .get("/health")
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                all &= health["cluster"]["redis"] == want;
            }
            if all {
                return;
            }
            assert!(Instant::now() < deadline, "replicas never became {want}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every replica (their last counters sent, their tasks ended),
    /// then deletes the test's Redis keys. A test that panics before this
    /// still deletes them on drop, though replicas still running may write
    /// a few back.
    pub async fn finish(mut self) {
        for app in &mut self.apps {
            app.shutdown().await;
        }
        self.clean_up();
    }

    /// Deletes every Redis key of this test's prefix.
    pub fn clean_up(&self) {
        let port = self
            .redis_url
            .rsplit(':')
            .next()
            .unwrap_or("6379")
            .trim_end_matches('/')
            .to_string();
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "redis-cli -p {port} --scan --pattern '{}:*' | xargs -r redis-cli -p {port} del",
                self.prefix
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        self.clean_up();
    }
}

/// Adds `key` to the Anthropic pool through `app`'s admin API, then waits
/// (up to 1 s) until `other` lists `keys_after` keys; returns how long that
/// took.
pub async fn add_key_and_wait(
    app: &TestApp,
    other: &TestApp,
    key: &str,
    keys_after: usize,
) -> Duration {
    let response = app
        .post("/api/keypool/anthropic/keys")
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({ "key": key, "label": "added-on-another-replica" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    within(
        Duration::from_secs(1),
        "the key reaches the other",
        || async {
            let status = other.admin_get("/api/keypool/anthropic/status").await;
            status["keys"].as_array().unwrap().len() == keys_after
        },
    )
    .await
}

/// Polls `check` every 20 ms until it holds, for at most `limit`; returns
/// how long it took.
pub async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

/// A `redis-server` of a test's own, on a free port, without persistence.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port) and waits for it.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes (`STOP`) or thaws (`CONT`) the server: its clients' links
    /// hang, as over a network partition, and it keeps what it holds.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        // The shell's own `kill`: no procps needed.
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {pid}")])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Kills the server at once (SIGKILL: no goodbye to the clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -CONT {}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
