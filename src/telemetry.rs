//! Logging: `RUST_LOG`-style filtering with a quiet default, plain text or
//! JSON (`LOG_FORMAT=json`). Key material never reaches a log line: keys are
//! `SecretString`s, auth headers are marked sensitive, and only key ids and
//! masked labels are logged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,reqwest=warn,h2=warn";

/// Logs to stdout, as the server always has. `filter` is `RUST_LOG` from
/// the environment or `.env`.
pub fn init(json: bool, filter: Option<&str>) {
    let colour = std::io::stdout().is_terminal();
    init_with(json, filter, std::io::stdout, colour);
}

/// Logs to stderr, for one-shot commands whose stdout is their result (and
/// may be piped into another program).
pub fn init_on_stderr(json: bool, filter: Option<&str>) {
    let colour = std::io::stderr().is_terminal();
    init_with(json, filter, std::io::stderr, colour);
}

/// Colour codes only for a person at a terminal: in a file, a pipe or a
/// log collector they are noise.
fn init_with<W>(json: bool, filter: Option<&str>, writer: W, colour: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colour)
        .with_target(false);
    // `try_init` fails only if a subscriber is already set (e.g. by a test).
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
