//! `keygate-bench`: a reproducible, loopback-only benchmark of keygate
//! against the fake upstream directly and against an honest baseline (the
//! least any gateway must do, written lean), for the Anthropic Messages and
//! OpenAI Chat Completions APIs (issue 5, part 1; issue 10).
//!
//! Layout: `api` (requests, client keys and first-content detection), `load`
//! (the closed-loop generator), `children` (pinned server processes),
//! `baseline` (the minimal gateway keygate is compared with), `procfs` (CPU,
//! RSS, machine), `run` (phases and medians), `stats` (pure arithmetic and
//! targets), `report` (Markdown and JSON), `sweep` (the pool-size sweep,
//! issue 16), `compare` (two keygate settings side by side, issue 11).

pub mod api;
pub mod baseline;
pub mod children;
pub mod compare;
pub mod load;
pub mod procfs;
pub mod report;
pub mod run;
pub mod stats;
pub mod sweep;

use std::path::PathBuf;
use std::time::Duration;

/// How a bench run is shaped.
#[derive(Clone, Debug)]
pub struct Options {
    /// Length of one measured run.
    pub duration: Duration,
    /// Unmeasured load before each scenario's runs, per path.
    pub warmup: Duration,
    /// Measured runs per scenario and path; medians are reported.
    pub runs: usize,
    /// The "high" concurrency (64 in the issue).
    pub concurrency: usize,
    /// Where `keygate` and `fake-upstream` are (next to the bench binary).
    pub bin_dir: PathBuf,
    /// The bench binary itself, re-run as `baseline`.
    pub bench_exe: PathBuf,
    /// (servers' CPU, load generator's and fake's CPU), when pinning.
    pub cpus: Option<(usize, usize)>,
    /// The tokio workers keygate gets under this pinning; the baseline is
    /// given exactly as many.
    pub server_workers: usize,
    /// Upstream keys per provider (keygate's pools and the baseline's).
    pub keys_per_provider: usize,
    /// Passed to keygate as `KEY_STRATEGY` when set.
    pub strategy: Option<String>,
    /// Further settings for keygate (`--keygate-env NAME=VALUE`).
    pub keygate_env: Vec<(String, String)>,
    /// Every worker is a session sending a cacheable prompt (`--sessions`).
    pub sessions: bool,
    /// A pause after each measured slice, billed to it (`compare` sets
    /// it, so a process's background work is done before the next slice
    /// and counted in the CPU of the requests behind it).
    pub settle: Duration,
    /// Every path of a round is loaded at once instead of in turn
    /// (`--together`).
    pub together: bool,
}

/// Why a bench run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start {name}: {source}")]
    Spawn {
        name: &'static str,
        source: std::io::Error,
    },
    #[error("{0} did not log `listening on http://…` in time")]
    NotReady(&'static str),
    #[error("{0} not found: build the binaries first (`cargo build --release --bins`)")]
    MissingBinary(PathBuf),
    #[error("no request succeeded for {0}: is the path serving?")]
    NothingServed(String),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("histogram: {0}")]
    Histogram(String),
    #[error("load worker: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<hdrhistogram::CreationError> for BenchError {
    fn from(error: hdrhistogram::CreationError) -> Self {
        Self::Histogram(error.to_string())
    }
}

impl From<hdrhistogram::AdditionError> for BenchError {
    fn from(error: hdrhistogram::AdditionError) -> Self {
        Self::Histogram(error.to_string())
    }
}
