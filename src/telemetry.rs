//! Logging: `RUST_LOG`-style filtering with a quiet default, plain text or
//! JSON (`LOG_FORMAT=json`). Key material never reaches a log line: keys are
//! `SecretString`s, auth headers are marked sensitive, and only key ids and
//! masked labels are logged.

use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,reqwest=warn,h2=warn";

/// `filter` is `RUST_LOG` from the environment or `.env`.
pub fn init(json: bool, filter: Option<&str>) {
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // `try_init` fails only if a subscriber is already set (e.g. by a test).
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
