//! Usage ledger benchmark (issue 11): a program that measures and prints.
//!
//! 1. Writing: 1,000,000 generated rows, all inside the last 24 hours (the
//!    worst case for a day's query), go through the ledger writer as fast as
//!    it takes them (the sender waits when the queue is full), into a
//!    database file on disk. Printed: rows per second, wall clock from the
//!    first row sent to the last batch committed.
//! 2. Reading: keygate is built on that database and `GET /api/usage`
//!    (`group_by=key,hour` over the last 24 hours, and a few others) is
//!    called through its router (admin check, parameters, query, JSON) many
//!    times. Printed: min, median, p95 and max.
//! 3. Keeping up: rows are recorded through keygate's own sink (default
//!    queue and batches) at a steady 20,000 rows/s for 10 s. Printed: rows
//!    written and dropped.
//!
//! Run: `cargo bench --bench ledger` (`LEDGER_BENCH_ROWS=100000` for a
//! quicker run; `LEDGER_BENCH_KEEP=1` keeps the database for a look, and
//! `LEDGER_BENCH_DB=<folder>` measures reads again on a kept one).

mod rows;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::{Request, header};
use http_body_util::BodyExt;
use keygate::config::Config;
use keygate::domain::UsageRow;
use keygate::ledger::{LedgerCounters, LedgerSettings, LedgerWriter, RowQueue, now_ms};
use keygate::startup::Application;
use keygate::store::Store;
use tower::ServiceExt;

use rows::RowMaker;

/// The allocator the `keygate` binary runs on (`src/main.rs`), so the
/// figures are the deployed binary's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const DAY_MS: i64 = 86_400_000;
const ADMIN_KEY: &str = "ledger-bench-admin-key";
const ENCRYPTION_KEY: &str = "4f1c2a9be07d3856c1aa0e9f7b62d4e8a3c5f0917d2e6b8a4c1f3e5d7b9a0c2e";

fn main() -> anyhow::Result<()> {
    // Two workers: the VM's two cores, as keygate would run on it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    if let Ok(kept) = std::env::var("LEDGER_BENCH_DB") {
        let url = format!("sqlite://{kept}/keygate.db");
        println!("usage ledger bench: reads only, database {url}");
        println!("load average at start: {}", load_average());
        let app = Application::build(config(&url)?).await?;
        read_phase(&app).await?;
        println!("load average at end: {}", load_average());
        return Ok(());
    }
    let rows: u64 = match std::env::var("LEDGER_BENCH_ROWS") {
        Ok(n) => n.parse().context("LEDGER_BENCH_ROWS")?,
        Err(_) => 1_000_000,
    };
    // On disk beside the build, not in a RAM-backed /tmp.
    std::fs::create_dir_all("target")?;
    let mut dir = tempfile::Builder::new()
        .prefix("ledger-bench")
        .tempdir_in("target")?;
    if std::env::var_os("LEDGER_BENCH_KEEP").is_some() {
        dir.disable_cleanup(true);
    }
    let url = format!("sqlite://{}/keygate.db", dir.path().display());
    println!("usage ledger bench: {rows} rows, database {url}");
    println!("load average at start: {}", load_average());

    let store = Store::connect(&url).await?;
    write_phase(&store, rows).await?;
    store.close().await;
    let size = std::fs::metadata(dir.path().join("keygate.db"))?.len()
        + std::fs::metadata(dir.path().join("keygate.db-wal")).map_or(0, |m| m.len());
    println!(
        "  database size: {:.0} MB ({:.0} bytes per row)",
        size as f64 / 1e6,
        size as f64 / rows as f64
    );

    let app = Application::build(config(&url)?).await?;
    read_phase(&app).await?;
    keep_up_phase(&app, Traffic::Mixed).await?;
    keep_up_phase(&app, Traffic::LikeKeygateBench).await?;
    println!("load average at end: {}", load_average());
    Ok(())
}

/// Phase 1: the writer's own speed, with a sender that waits for room.
async fn write_phase(store: &Store, rows: u64) -> anyhow::Result<()> {
    let settings = LedgerSettings::default();
    let queue = Arc::new(RowQueue::new(
        settings.queue_capacity,
        settings.writer.batch_rows,
    ));
    let counters = Arc::new(LedgerCounters::default());
    let writer = LedgerWriter::start(
        store.clone(),
        queue.clone(),
        counters.clone(),
        settings.writer,
    );
    // Inside the last 24 h, with 10 minutes to spare for the write itself,
    // so the 24-hour query below still covers every row.
    let first_ms = now_ms() - DAY_MS + 10 * 60_000;
    // The rows' making alone, to take out of the writing's CPU time below.
    let making_cpu = {
        let before = cpu_ms();
        let mut maker = RowMaker::new(7, first_ms, DAY_MS - 10 * 60_000, rows);
        while let Some(row) = maker.next_row() {
            std::hint::black_box(row);
        }
        cpu_ms() - before
    };
    let mut maker = RowMaker::new(7, first_ms, DAY_MS - 10 * 60_000, rows);
    let cpu_before = cpu_ms();
    let started = Instant::now();
    while let Some(row) = maker.next_row() {
        // The sender waits for room here (a request never would), so the
        // figure is the writer's own speed.
        while !queue.has_room() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        queue.push(row).ok().context("the writer stopped")?;
    }
    writer.stop().await;
    let elapsed = started.elapsed();
    let writing_cpu = cpu_ms() - cpu_before - making_cpu;
    anyhow::ensure!(
        counters.written() == rows,
        "{} of {rows} rows written",
        counters.written()
    );
    println!(
        "write: {rows} rows in {:.1} s = {:.0} rows/s (batches of {}, rows generated on the fly)",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        settings.writer.batch_rows
    );
    // What the ledger adds to a request's CPU cost: with the ledger off the
    // request path still builds its row (metrics read it), so the
    // difference is the queue hand-off and this writing.
    println!(
        "write CPU: {:.2} µs per row, all threads, the rows' making ({:.2} µs per row) taken out",
        writing_cpu * 1_000.0 / rows as f64,
        making_cpu * 1_000.0 / rows as f64
    );
    Ok(())
}

/// Phase 2: the admin route, end to end through the router.
async fn read_phase(app: &Application) -> anyhow::Result<()> {
    let queries = [
        ("/api/usage?group_by=key,hour", 30),
        ("/api/usage?from=24h&group_by=model", 10),
        ("/api/usage", 10),
        ("/api/usage?from=90m&group_by=key,status", 10),
        ("/api/usage/requests?limit=50", 10),
    ];
    for (path, runs) in queries {
        let cpu_before = cpu_ms();
        let (first, timings, body) = time_route(app, path, runs).await?;
        // CPU time is less at the mercy of other processes than wall time.
        let cpu_per_call = (cpu_ms() - cpu_before) / (runs + 1) as f64;
        let answer: serde_json::Value = serde_json::from_slice(&body)?;
        let groups = answer["groups"].as_array().map_or(0, Vec::len);
        let requests: u64 = answer["groups"]
            .as_array()
            .map(|g| g.iter().filter_map(|g| g["requests"].as_u64()).sum())
            .unwrap_or(0);
        let what = if path.starts_with("/api/usage/requests") {
            format!("{} rows", answer["requests"].as_array().map_or(0, Vec::len))
        } else {
            format!("{groups} groups, {requests} requests")
        };
        println!(
            "read {path}: first {:.1} ms; over {runs} runs min {:.1} / median {:.1} / p95 {:.1} / max {:.1} ms; \
             CPU {cpu_per_call:.0} ms per call ({what}, {} KB)",
            ms(first),
            ms(timings[0]),
            ms(timings[timings.len() / 2]),
            ms(timings[(timings.len() * 95).div_ceil(100) - 1]),
            ms(timings[timings.len() - 1]),
            body.len() / 1024
        );
    }
    Ok(())
}

/// The first call, the sorted timings of `runs` more, and the last body.
async fn time_route(
    app: &Application,
    path: &str,
    runs: usize,
) -> anyhow::Result<(Duration, Vec<Duration>, Vec<u8>)> {
    let mut body = Vec::new();
    let mut timings = Vec::with_capacity(runs + 1);
    for _ in 0..=runs {
        let started = Instant::now();
        let request = Request::get(path)
            .header(header::HOST, "localhost")
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}"))
            .body(Body::empty())?;
        let response = app.router().oneshot(request).await?;
        anyhow::ensure!(response.status() == 200, "{path}: {}", response.status());
        body = response.into_body().collect().await?.to_bytes().to_vec();
        timings.push(started.elapsed());
    }
    let first = timings.remove(0);
    timings.sort();
    Ok((first, timings, body))
}

/// Phase 3: recording at a steady rate through the production sink.
/// What the recorded rows look like.
#[derive(Debug, Clone, Copy)]
enum Traffic {
    /// `RowMaker`'s mix: 20 keys, 5 models, failures of every kind, so a
    /// batch touches hundreds of rollup rows per level.
    Mixed,
    /// What `keygate-bench` sends: 3 keys, one model, every answer a
    /// success, so a batch touches a few rollup rows per level.
    LikeKeygateBench,
}

impl Traffic {
    fn shape(self, mut row: UsageRow, i: u64) -> UsageRow {
        if let Traffic::LikeKeygateBench = self {
            row.key_id = Some(format!("key_{}", i % 3));
            row.keys_tried = row.key_id.iter().cloned().collect();
            row.model_requested = Some("claude-sonnet-4-5".to_string());
            row.model_answered = Some("claude-sonnet-4-5-20250929".to_string());
            row.status = 200;
            row.error_class = None;
        }
        row
    }
}

async fn keep_up_phase(app: &Application, traffic: Traffic) -> anyhow::Result<()> {
    const RATE: u64 = 20_000;
    const SECONDS: u64 = 10;
    const TICK: Duration = Duration::from_millis(10);
    let per_tick = RATE * TICK.as_millis() as u64 / 1_000;
    let sink = app.ledger();
    let counters = sink.counters().clone();
    let (written_before, dropped_before) = (counters.written(), counters.dropped());
    let mut maker = RowMaker::new(8, 0, 1, 1);
    let making_cpu = {
        let before = cpu_ms();
        for i in 0..RATE * SECONDS {
            std::hint::black_box(traffic.shape(maker.row_at(now_ms()), i));
        }
        cpu_ms() - before
    };
    let mut ticks = tokio::time::interval(TICK);
    let cpu_before = cpu_ms();
    let started = Instant::now();
    let mut sent = 0;
    while sent < RATE * SECONDS {
        ticks.tick().await;
        for i in sent..sent + per_tick {
            sink.record(traffic.shape(maker.row_at(now_ms()), i));
        }
        sent += per_tick;
    }
    let sending = started.elapsed();
    let settled = async {
        while counters.written() + counters.dropped() < written_before + dropped_before + sent {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), settled)
        .await
        .context("the writer did not catch up within 2 minutes")?;
    let recording_cpu = cpu_ms() - cpu_before - making_cpu;
    println!(
        "keep up: {sent} rows recorded at {:.0} rows/s over {:.1} s through the sink (queue {}): \
         {} written, {} dropped, all written {:.2} s after the last was recorded",
        sent as f64 / sending.as_secs_f64(),
        sending.as_secs_f64(),
        LedgerSettings::default().queue_capacity,
        counters.written() - written_before,
        counters.dropped() - dropped_before,
        (started.elapsed() - sending).as_secs_f64()
    );
    // Rows arriving in time order, as from traffic: each batch touches one
    // or two periods of each rollup level (the write phase above spreads
    // every batch over a whole day, the worst case for the rollups).
    println!(
        "keep up CPU ({traffic:?}): {:.2} µs per row recorded and written, all threads, the \
         rows' making ({:.2} µs per row) taken out",
        recording_cpu * 1_000.0 / sent as f64,
        making_cpu * 1_000.0 / sent as f64
    );
    Ok(())
}

fn config(url: &str) -> anyhow::Result<Config> {
    let vars = [
        ("PORT", "0"),
        ("DATABASE_URL", url),
        ("ENCRYPTION_KEY", ENCRYPTION_KEY),
        ("ADMIN_API_KEY", ADMIN_KEY),
    ];
    Ok(Config::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    })?)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// CPU time this process has used (all threads, user and system), from
/// /proc/self/stat in clock ticks of 10 ms.
fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which ends with ')'.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
            Some((ticks(11)? + ticks(12)?) * 10.0)
        })
        .unwrap_or(0.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
