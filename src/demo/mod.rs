//! `keygate demo`: keygate in front of a simulated upstream, in one process,
//! with light traffic of its own, so the dashboard, ledger, metrics and
//! alerts fill within a minute without a real key or the internet.
//!
//! - `keys`: the simulated pools and how each key behaves.
//! - `upstream`: the simulated Anthropic and OpenAI APIs (on loopback).
//! - `replies`: their answers, whole and streamed.
//! - `traffic`: the requests the demo sends through keygate.
//!
//! The demo never reads `.env` or the environment's keys: its whole
//! configuration is built here, with a fresh admin key and encryption key,
//! and its data lives in a temporary directory unless `--data` is given.

mod keys;
mod replies;
mod traffic;
mod upstream;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rand::RngCore;

pub use traffic::Pace;

use crate::config::Config;
use crate::startup::{Application, StartupError};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the simulated upstream: {0}")]
    Upstream(std::io::Error),
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Serve(std::io::Error),
}

/// Where the demo listens and keeps its data.
pub struct DemoOptions {
    pub host: String,
    pub port: u16,
    /// `None`: a temporary directory, removed when the demo stops.
    pub data: Option<PathBuf>,
    /// How often the demo's own traffic sends a request.
    pub pace: Pace,
}

/// A demo ready to serve: where it listens and the admin key to use.
pub struct Demo {
    pub address: SocketAddr,
    pub admin_key: String,
    pub data_dir: PathBuf,
    temporary: bool,
    pace: Pace,
    app: Application,
}

/// Runs the demo until `shutdown` completes, printing where to look.
pub async fn run(
    options: DemoOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let demo = start(options).await?;
    let base = format!("http://{}", demo.address);
    println!();
    println!("  keygate demo: a simulated upstream, no real key, no internet");
    println!();
    println!("  dashboard   {base}/dashboard");
    println!("  admin key   {}", demo.admin_key);
    println!("  metrics     {base}/metrics");
    println!("  data        {}", demo.data_dir.display());
    println!();
    println!("  Pools: anthropic has healthy keys, one that rate-limits now and then,");
    println!("  one that sometimes answers 529 and one the upstream rejects; openai has");
    println!("  two healthy keys and one that rate-limits. Traffic starts now. Ctrl-C stops.");
    println!();
    demo.serve(shutdown).await
}

/// Starts the simulated upstream and keygate in front of it (listening,
/// not yet serving).
pub async fn start(options: DemoOptions) -> Result<Demo, DemoError> {
    let upstream = upstream::start().await.map_err(DemoError::Upstream)?;
    let (data_dir, temporary) = match options.data {
        Some(path) => (path, false),
        None => (
            std::env::temp_dir().join(format!("keygate-demo-{}", random_hex(6))),
            true,
        ),
    };
    std::fs::create_dir_all(&data_dir).map_err(|source| DemoError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let admin_key = format!("demo-admin-{}", random_hex(12));
    let vars = settings(
        &options.host,
        options.port,
        &data_dir,
        &upstream,
        &admin_key,
    );
    let config = Config::from_lookup(|name| vars.get(name).cloned())?;
    let app = Application::build(config).await?;
    Ok(Demo {
        address: app.local_addr(),
        admin_key,
        data_dir,
        temporary,
        pace: options.pace,
        app,
    })
}

impl Demo {
    /// Sends the demo's traffic and serves until `shutdown` completes;
    /// then removes a temporary data directory.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DemoError> {
        let base = format!("http://{}", self.address);
        let traffic = tokio::spawn(traffic::drive(base, self.pace));
        let served = self.app.run_until_stopped(shutdown).await;
        traffic.abort();
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
        served.map_err(DemoError::Serve)
    }
}

/// The demo's whole configuration: nothing is read from `.env`.
fn settings(
    host: &str,
    port: u16,
    data_dir: &Path,
    upstream: &upstream::Simulated,
    admin_key: &str,
) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    let mut set = |name: &str, value: String| {
        vars.insert(name.to_string(), value);
    };
    set("HOST", host.to_string());
    set("PORT", port.to_string());
    set(
        "DATABASE_URL",
        format!("sqlite://{}", data_dir.join("keygate.db").display()),
    );
    set("ENCRYPTION_KEY", random_hex(32));
    set("ADMIN_API_KEY", admin_key.to_string());
    set("ANTHROPIC_API_KEYS", json_list(keys::ANTHROPIC));
    set("OPENAI_API_KEYS", json_list(keys::OPENAI));
    set("ANTHROPIC_BASE_URL", upstream.url.clone());
    set("OPENAI_BASE_URL", upstream.url.clone());
    // Short rests, so keys visibly leave and rejoin the pool within a
    // minute of watching.
    set("KEY_COOLDOWN_SECS", "15".into());
    set("OUTLIER_EJECTION_SECS", "20".into());
    set("STATE_FLUSH_SECS", "2".into());
    set("KEY_RECHECK_SECS", "120".into());
    set("UPSTREAM_TIMEOUT_SECS", "30".into());
    set(
        "RUST_LOG",
        "info,sqlx=warn,hyper=warn,reqwest=warn,h2=warn".into(),
    );
    vars
}

fn json_list(keys: &[keys::DemoKey]) -> String {
    serde_json::Value::from(keys.iter().map(|k| k.secret).collect::<Vec<_>>()).to_string()
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}
