//! The usage ledger: one row per client request (`domain::UsageRow`),
//! queued by the request path without waiting (`sink`), written to the
//! database in batches behind it (`writer`), pruned after the retention
//! period (`retention`), and read back by the admin routes through `query`.
//!
//! - `sink`: `LedgerSink`, the request path's side, and `LedgerCounters`.
//! - `queue`: the bounded buffer between the two, where a request packs
//!   its row into a block.
//! - `writer`: the task that drains the queue in batches.
//! - `alarm`: when to warn that rows are being dropped.
//! - `retention`: the task that deletes old rows and rollups.
//! - `query`: the routes' parameters, parsed and checked.
//! - `savings`: what prompt caching saved, per group of `/api/usage`.
//!
//! `Ledger::start` assembles the pieces; `Ledger::stop` flushes the queue
//! (graceful shutdown loses no rows that were queued).

pub mod alarm;
mod packing;
pub mod query;
pub mod queue;
pub mod retention;
pub mod savings;
pub mod sink;
pub mod writer;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use queue::RowQueue;
pub use sink::{LedgerCounters, LedgerSink};
pub use writer::{LedgerWriter, WriterSettings};

use crate::store::Store;
use retention::Pruner;

/// How the ledger runs (`USAGE_*` settings).
#[derive(Debug, Clone, Copy)]
pub struct LedgerSettings {
    /// `USAGE_LEDGER=off` turns recording off.
    pub enabled: bool,
    /// `USAGE_QUEUE_CAPACITY`: rows that may wait for the writer; more are
    /// dropped (and counted) instead of slowing requests.
    pub queue_capacity: usize,
    /// `USAGE_RETENTION_DAYS`, as a duration.
    pub retention: Duration,
    /// How often old data is pruned.
    pub prune_every: Duration,
    pub writer: WriterSettings,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            queue_capacity: 10_000,
            retention: Duration::from_secs(30 * 86_400),
            prune_every: Duration::from_secs(3_600),
            writer: WriterSettings {
                batch_rows: 5_000,
                // Each batch is one transaction, and a transaction costs
                // about as much as 100-200 rows (reading and upserting the
                // rollups, the WAL commit, a round trip to SQLite's thread
                // per statement). Measured with `keygate-bench --compare
                // --together` (README, "Usage ledger"), the ledger cost a
                // request +2.9 % CPU with batches every 250 ms and +1.7-2.1 %
                // every second; every 50 ms cost more still, every two
                // seconds no less. A row still reaches the database within
                // a second.
                flush_every: Duration::from_secs(1),
            },
        }
    }
}

/// The ledger's background half: the writer and the pruner.
pub struct Ledger {
    writer: LedgerWriter,
    pruner: Pruner,
}

impl Ledger {
    /// Starts the writer and the pruner on `store`, and returns the sink
    /// the request path records into. Turned off, the sink keeps nothing
    /// and nothing runs.
    pub fn start(store: &Store, settings: &LedgerSettings) -> (LedgerSink, Option<Ledger>) {
        if !settings.enabled {
            return (LedgerSink::off(), None);
        }
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
        let pruner = Pruner::start(store.clone(), settings.retention, settings.prune_every);
        (
            LedgerSink::new(queue, counters),
            Some(Ledger { writer, pruner }),
        )
    }

    /// Stops pruning, then writes every queued row and returns.
    pub async fn stop(self) {
        self.pruner.stop().await;
        self.writer.stop().await;
    }
}

/// The ledger's clock: ms since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
