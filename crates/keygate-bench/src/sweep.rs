//! The pool-size sweep (issue 16): keygate alone in front of the fake
//! upstream, Anthropic Messages at the high concurrency, with each pool
//! size under each strategy. Per cell: throughput and p99 (medians of the
//! runs) and their ratio to the smallest pool, the first start (which
//! imports the keys from a keys file), a restart with them stored, and
//! keygate's resident memory after the load.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::api::Api;
use super::children::Server;
use super::load;
use super::procfs;
use super::report::PathKind;
use super::run::{Path, Scratch, fake_launch, keygate_launch, measure};
use super::{BenchError, Options};

/// The pool sizes of the targets.
pub const POOL_SIZES: [usize; 3] = [2, 200, 5000];

/// keygate's pools in a cell: Anthropic and OpenAI each get the cell's
/// keys (`keygate_launch`), so memory per key divides by twice as many.
const POOLS: usize = 2;

/// Every strategy keygate has (`KEY_STRATEGY`).
pub const STRATEGIES: [&str; 5] = [
    "round_robin",
    "random",
    "weighted",
    "least_used",
    "headroom",
];

/// One strategy at one pool size.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub strategy: String,
    pub keys: usize,
    pub requests_per_sec: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// From launch to the ready line, importing the keys on a new database.
    pub first_start_s: f64,
    /// The same with the keys already stored.
    pub restart_s: f64,
    /// keygate's resident memory once measured (MiB).
    pub rss_mb: Option<f64>,
}

/// Runs every strategy at every size in `sizes`.
pub async fn sweep(options: &Options, sizes: &[usize]) -> Result<Vec<Cell>, BenchError> {
    let (server_cpu, load_cpu) = options.cpus.unzip();
    let fake = Server::start(fake_launch(options, load_cpu)?)?;
    let client = load::client(options.concurrency)?;
    let mut cells = Vec::new();
    for strategy in STRATEGIES {
        for &keys in sizes {
            let options = Options {
                keys_per_provider: keys.max(1),
                strategy: Some(strategy.to_string()),
                ..options.clone()
            };
            let scratch = Scratch::create(&format!("{strategy}-{keys}"))?;
            // One launch for both starts: the same master key and keys.
            let launch = keygate_launch(&options, server_cpu, &fake.url, &scratch)?;
            let (first_start, keygate) = timed_start(launch.clone())?;
            drop(keygate);
            let (restart, keygate) = timed_start(launch)?;
            let path = [Path {
                kind: PathKind::Keygate,
                base_url: keygate.url.clone(),
                pid: Some(keygate.pid),
            }];
            let measured = measure(
                &client,
                &path,
                Api::Anthropic,
                false,
                options.concurrency,
                &options,
            )
            .await?;
            let figures = &measured[0].median;
            cells.push(Cell {
                strategy: strategy.to_string(),
                keys,
                requests_per_sec: figures.requests_per_sec,
                p99_ms: figures.p99_ms,
                errors: figures.errors,
                first_start_s: first_start.as_secs_f64(),
                restart_s: restart.as_secs_f64(),
                rss_mb: procfs::rss_kib(keygate.pid).map(|kib| kib as f64 / 1024.0),
            });
        }
    }
    Ok(cells)
}

fn timed_start(launch: super::children::Launch) -> Result<(Duration, Server), BenchError> {
    let started = Instant::now();
    let server = Server::start(launch)?;
    Ok((started.elapsed(), server))
}

/// The sweep as a Markdown table, each cell's throughput and p99 also as a
/// ratio to the same strategy's smallest pool; then memory per key.
pub fn markdown(cells: &[Cell]) -> String {
    let mut text = String::from(
        "| strategy | keys | req/s | vs smallest | p99 ms | vs smallest | errors | first start s | restart s | RSS MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for cell in cells {
        let reference = cells
            .iter()
            .filter(|c| c.strategy == cell.strategy)
            .min_by_key(|c| c.keys);
        let ratio = |value: f64, of: fn(&Cell) -> f64| {
            reference
                .map(of)
                .filter(|r| *r > 0.0)
                .map_or("-".to_string(), |r| format!("{:.2}×", value / r))
        };
        text.push_str(&format!(
            "| {} | {} | {:.0} | {} | {:.2} | {} | {} | {:.3} | {:.3} | {} |\n",
            cell.strategy,
            cell.keys,
            cell.requests_per_sec,
            ratio(cell.requests_per_sec, |c| c.requests_per_sec),
            cell.p99_ms,
            ratio(cell.p99_ms, |c| c.p99_ms),
            cell.errors,
            cell.first_start_s,
            cell.restart_s,
            cell.rss_mb.map_or("-".to_string(), |mb| format!("{mb:.1}")),
        ));
    }
    if let Some(per_key) = memory_per_key(cells) {
        text.push_str(&format!(
            "\nResident memory per key (largest pools against smallest, mean over strategies): {per_key:.0} bytes\n"
        ));
    }
    text
}

/// Bytes of RSS each key adds: the largest pools' against the smallest's,
/// averaged over the strategies measured at both.
fn memory_per_key(cells: &[Cell]) -> Option<f64> {
    let smallest = cells.iter().map(|c| c.keys).min()?;
    let largest = cells.iter().map(|c| c.keys).max()?;
    if largest == smallest {
        return None;
    }
    let rss = |strategy: &str, keys| {
        cells
            .iter()
            .find(|c| c.strategy == strategy && c.keys == keys)
            .and_then(|c| c.rss_mb)
    };
    let per_key: Vec<f64> = STRATEGIES
        .iter()
        .filter_map(|s| Some((rss(s, largest)? - rss(s, smallest)?) * 1024.0 * 1024.0))
        .map(|bytes| bytes / ((largest - smallest) * POOLS) as f64)
        .collect();
    (!per_key.is_empty()).then(|| per_key.iter().sum::<f64>() / per_key.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(strategy: &str, keys: usize, rps: f64, p99: f64, rss: f64) -> Cell {
        Cell {
            strategy: strategy.into(),
            keys,
            requests_per_sec: rps,
            p99_ms: p99,
            errors: 0,
            first_start_s: 0.5,
            restart_s: 0.2,
            rss_mb: Some(rss),
        }
    }

    #[test]
    fn ratios_are_to_the_same_strategys_smallest_pool() {
        let cells = [
            cell("round_robin", 2, 1000.0, 10.0, 20.0),
            cell("round_robin", 5000, 900.0, 11.0, 30.0),
            cell("weighted", 2, 500.0, 10.0, 20.0),
            cell("weighted", 5000, 250.0, 20.0, 40.0),
        ];
        let text = markdown(&cells);
        assert!(
            text.contains("| round_robin | 5000 | 900 | 0.90× | 11.00 | 1.10× |"),
            "{text}"
        );
        assert!(
            text.contains("| weighted | 5000 | 250 | 0.50× | 20.00 | 2.00× |"),
            "{text}"
        );
        // (10 MiB + 20 MiB) / 2 over 4,998 keys in each of two pools.
        let per_key = memory_per_key(&cells).unwrap();
        assert!((per_key - 15.0 * 1024.0 * 1024.0 / 9996.0).abs() < 1e-6);
    }
}
