//! `fake-upstream`: the fake Anthropic/OpenAI provider of
//! `keygate::fake_upstream` as a standalone server, for benchmarks and SDK
//! tests that need an upstream without a network or a real key. Every call
//! gets the default answer of its route.
//!
//! Prints exactly one line on stdout when ready (logs go to stderr), so a
//! harness can wait for it and read the port:
//! `fake upstream listening on http://HOST:PORT`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fake_upstream::Settings;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// A fake LLM upstream (Anthropic Messages, OpenAI Chat Completions).
#[derive(Debug, Parser)]
#[command(name = "fake-upstream", version)]
struct Args {
    /// Port to listen on; 0 picks a free one (read it from the ready line).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Delay before each frame of a streamed answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    stream_delay_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // stderr, so stdout carries nothing but the ready line.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let address = listener.local_addr()?;
    {
        // A harness reading through a pipe would otherwise wait for a full buffer.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "fake upstream listening on http://{address}")?;
        stdout.flush()?;
    }
    let settings = Settings {
        stream_delay: Duration::from_millis(args.stream_delay_ms),
    };
    fake_upstream::serve(listener, settings).await?;
    Ok(())
}
