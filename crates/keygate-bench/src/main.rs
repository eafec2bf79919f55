//! `keygate-bench`: measures keygate against the fake upstream directly and
//! against the honest baseline (`keygate_bench::baseline`), on loopback, and
//! prints a Markdown report. Build the binaries first, then run it:
//! `cargo build --release --bins && target/release/keygate-bench`.
//!
//! `keygate-bench baseline …` is the baseline server the bench starts as its
//! own child process (so it can be pinned and measured).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use keygate_bench::baseline::BaselineConfig;
use keygate_bench::{self as bench, Options, procfs};
use tokio::net::TcpListener;

/// Benchmark keygate against a fake upstream and a minimal gateway baseline.
#[derive(Debug, Parser)]
#[command(name = "keygate-bench", version)]
struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Seconds of one measured run.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Seconds of warm-up per scenario and path.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measured runs per scenario and path (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The high concurrency level.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// About 10 s in all (one short run each): a smoke check, not figures.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results.json")]
    output: PathBuf,
    /// Do not pin processes to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Upstream keys per provider, for keygate's pools and the baseline.
    #[arg(long, default_value_t = 3)]
    keys: usize,
    /// keygate's KEY_STRATEGY (default: keygate's own default).
    #[arg(long)]
    strategy: Option<String>,
    /// Run the pool-size sweep instead: keygate alone, every strategy at
    /// each of `--sizes` keys (Anthropic Messages, `--concurrency`).
    #[arg(long)]
    sweep: bool,
    /// The sweep's pool sizes; ratios are to the smallest.
    #[arg(long, value_delimiter = ',', default_values_t = bench::sweep::POOL_SIZES)]
    sizes: Vec<usize>,
    /// An extra setting for keygate, e.g. `USAGE_LEDGER=off` to measure
    /// what the ledger costs (repeatable).
    #[arg(long = "keygate-env", value_name = "NAME=VALUE", value_parser = setting)]
    keygate_env: Vec<(String, String)>,
    /// Make every worker a session (`x-session-id`) sending a prompt long
    /// enough to cache, so keygate's cache affinity is on the request
    /// path; compare `--keygate-env KEY_AFFINITY=scope` with `=off`.
    #[arg(long)]
    sessions: bool,
    /// Compare two keygates instead, side by side: A as configured, B with
    /// this setting too (repeatable), e.g. `USAGE_LEDGER=off`; `--runs`
    /// rounds (10 or more for a narrow interval) of `--duration` seconds.
    #[arg(long = "compare", value_name = "NAME=VALUE", value_parser = setting)]
    compare: Vec<(String, String)>,
    /// With `--compare`: start both keygates afresh this many times, the
    /// rounds split between the launches, and give the interval over the
    /// launches' means (two launches of one build can disagree by more
    /// than one launch's interval)
    #[arg(long, default_value_t = 1)]
    launches: usize,
    /// With `--compare`: load both keygates at once, on their shared CPU,
    /// instead of in turn, so whatever the host does to that CPU meanwhile
    /// (neighbours, frequency) hits both alike; compare their CPU per
    /// request (their throughputs follow how the scheduler splits the CPU)
    #[arg(long, requires = "compare")]
    together: bool,
}

fn setting(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))?;
    Ok((name.to_string(), value.to_string()))
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run the baseline gateway (started by the bench itself).
    #[command(hide = true)]
    Baseline {
        #[arg(long)]
        upstream: String,
        /// Tokio worker threads: as many as keygate gets.
        #[arg(long)]
        workers: usize,
        #[arg(long = "client-key", required = true)]
        client_keys: Vec<String>,
        #[arg(long = "anthropic-key", required = true)]
        anthropic_keys: Vec<String>,
        #[arg(long = "openai-key", required = true)]
        openai_keys: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Sub::Baseline {
        upstream,
        workers,
        client_keys,
        anthropic_keys,
        openai_keys,
    }) = args.command
    {
        let config = BaselineConfig {
            upstream,
            client_keys,
            anthropic_keys,
            openai_keys,
        };
        return baseline(config, workers);
    }
    let bench_exe = std::env::current_exe().context("cannot locate the bench binary")?;
    let bin_dir = bench_exe
        .parent()
        .context("the bench binary has no directory")?
        .to_path_buf();
    let (duration, warmup, runs) = if args.quick {
        (0.4, 0.1, 1)
    } else {
        (args.duration, args.warmup, args.runs.max(1))
    };
    // keygate runs `#[tokio::main]`: one worker per CPU it may use, which
    // is the one server CPU when pinned. Counted before this process pins
    // itself, since pinning narrows what it sees.
    let unpinned_cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let cpus = if args.no_pin { None } else { pin_self() };
    let server_workers = if cpus.is_some() { 1 } else { unpinned_cpus };
    let options = Options {
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_secs_f64(warmup),
        runs,
        concurrency: args.concurrency.max(1),
        bin_dir,
        bench_exe,
        cpus,
        server_workers,
        keys_per_provider: args.keys.max(1),
        strategy: args.strategy,
        keygate_env: args.keygate_env,
        sessions: args.sessions,
        settle: Duration::ZERO,
        together: args.together,
    };
    // Built after pinning, so the runtime sizes itself to the one CPU left.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !args.compare.is_empty() {
        let comparison = runtime.block_on(bench::compare::compare(
            &options,
            &args.compare,
            args.launches,
        ))?;
        println!("{}", comparison.markdown());
        std::fs::write(&args.output, serde_json::to_string_pretty(&comparison)?)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        eprintln!("JSON written to {}", args.output.display());
        return Ok(());
    }
    if args.sweep {
        let cells = runtime.block_on(bench::sweep::sweep(&options, &args.sizes))?;
        println!("{}", bench::sweep::markdown(&cells));
        std::fs::write(&args.output, serde_json::to_string_pretty(&cells)?)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        eprintln!("JSON written to {}", args.output.display());
        return Ok(());
    }
    let report = runtime.block_on(bench::run::run(&options))?;
    println!("{}", report.markdown());
    std::fs::write(&args.output, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("JSON written to {}", args.output.display());
    Ok(())
}

/// Pins this process (the load generator) to the second allowed CPU and
/// returns (servers' CPU, load CPU); `None` with fewer than two CPUs or no
/// `taskset`.
fn pin_self() -> Option<(usize, usize)> {
    let cpus = procfs::allowed_cpus();
    let (&server, &load) = (cpus.first()?, cpus.get(1)?);
    let pinned = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &load.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !pinned {
        eprintln!("warning: taskset failed; running unpinned");
    }
    pinned.then_some((server, load))
}

/// Serves the baseline on a runtime of exactly `workers` threads (keygate's
/// count under the same pinning, set explicitly rather than left to the
/// default).
fn baseline(config: BaselineConfig, workers: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "baseline listening on http://{}",
            listener.local_addr()?
        )?;
        stdout.flush()?;
        drop(stdout);
        bench::baseline::serve(listener, config).await?;
        Ok(())
    })
}
