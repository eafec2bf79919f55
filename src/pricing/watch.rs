//! Reloading `PRICES_FILE` while keygate runs: when its modification time
//! or size changes (checked every `PRICES_POLL_SECS`; a poll of one
//! `stat` call works on every filesystem, network mounts and replaced
//! symlinks included, where change notifications do not) and on SIGHUP.
//!
//! A file that fails to read leaves the last good table in force; the
//! error is logged once per change of the file, not at every poll.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use super::{PriceTable, Prices, read_price_file};

/// The background task; stopped or dropped, it ends.
pub struct PriceFileWatch {
    task: JoinHandle<()>,
}

/// What a poll compares: a write changes one or the other.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

impl PriceFileWatch {
    /// Watches `path`, whose contents `prices` holds now.
    pub fn start(path: PathBuf, prices: Prices, poll: Duration) -> Self {
        // Caught from here on, before the task first runs: a SIGHUP sent
        // once keygate has started never falls to the default (exit).
        let mut hangups = hangup_signals();
        let task = tokio::spawn(async move {
            let mut last = stamp(&path);
            let mut ticks = tokio::time::interval(poll);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let forced = tokio::select! {
                    _ = ticks.tick() => false,
                    Some(()) = next_hangup(&mut hangups) => true,
                };
                let now = stamp(&path);
                if !forced && now == last {
                    continue;
                }
                last = now;
                reload(&path, &prices, forced);
            }
        });
        Self { task }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

fn reload(path: &Path, prices: &Prices, forced: bool) {
    let why = if forced { "SIGHUP" } else { "file changed" };
    match read_price_file(path) {
        Ok(entries) => {
            let count = entries.len();
            prices.replace(PriceTable::with_file(entries));
            tracing::info!(path = %path.display(), models = count, "price file reloaded ({why})");
        }
        Err(error) => {
            tracing::error!(%error, "price file not reloaded ({why}): the last good prices stay in force");
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangup_signals() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "SIGHUP cannot be caught: the price file reloads only when it changes");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signals() -> Hangups {
    None
}

/// The next SIGHUP; never, without a handler.
async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    #[cfg(unix)]
    if let Some(signal) = hangups {
        return signal.recv().await;
    }
    #[cfg(not(unix))]
    let _ = hangups;
    std::future::pending().await
}
