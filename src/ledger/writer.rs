//! The ledger writer: one task that drains the sink's queue and writes rows
//! in batches (`store::usage::write_batch`), so no request ever waits for
//! the database.
//!
//! A batch is written when `batch_rows` rows wait or `flush_every` after the
//! writer saw the first of them, whichever comes first: under load batches
//! fill up (one transaction per `batch_rows`), when quiet a row still
//! reaches the database within `flush_every`. Requests queue their rows
//! (`queue`); meanwhile the writer takes them each time a drain's worth
//! waits (`RowQueue::drain_at`, 32 rows), packs them into
//! blocks (`packing`, `store::usage::batch`) and finishes the full ones
//! into the open batch, so rows wait in the queue only briefly.
//!
//! A batch that fails because the database is unreachable (a PostgreSQL
//! restart or network cut; `StoreError::is_transient`) is kept and retried
//! with backoff, while requests keep queueing rows: nothing is lost until
//! the queue is full, and only rows that find it full are dropped (and
//! counted), as always. The outage is logged once, and its end. A batch
//! that fails any other way would fail again: it is counted as dropped.
//! `stop` writes what is queued, then returns; while stopping, an
//! unreachable database gets `STOP_RETRY_FOR` before the rows are dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::alarm::DropAlarm;
use super::packing::Packing;
use super::queue::RowQueue;
use super::sink::LedgerCounters;
use crate::store::usage::batch::{Batch, PackingBlock, SealedBatch};
use crate::store::usage::write::write_sealed;
use crate::store::{Store, StoreError};

/// First pause before a failed batch is tried again; it doubles up to
/// `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long a stopping writer keeps retrying an unreachable database.
const STOP_RETRY_FOR: Duration = Duration::from_secs(10);

/// How the writer batches.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Rows per batch (and per transaction): a batch is written once it
    /// holds this many, or more by less than a block (`batch::SEAL_AT`).
    pub batch_rows: usize,
    /// Longest a row waits in a batch that is not full.
    pub flush_every: Duration,
}

/// The running writer; `stop` flushes the queue.
pub struct LedgerWriter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl LedgerWriter {
    /// Starts draining `queue` into `store`, counting rows in `counters`,
    /// in the batches the queue was made for (`RowQueue::new`).
    pub fn start(
        store: Store,
        queue: Arc<RowQueue>,
        counters: Arc<LedgerCounters>,
        settings: WriterSettings,
    ) -> Self {
        let (stop, stopped) = oneshot::channel();
        let writer = Writer {
            store,
            counters,
            batch_rows: settings.batch_rows,
            alarm: DropAlarm::new(Duration::from_secs(60)),
            stop_seen: None,
            outage: None,
        };
        let task = tokio::spawn(writer.run(queue, settings.flush_every, stopped));
        Self { stop, task }
    }

    /// Writes every row queued so far, then ends. Rows recorded after this
    /// began are refused by the closed queue and counted as dropped.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!(%error, "usage ledger: the writer task failed");
        }
    }
}

struct Writer {
    store: Store,
    counters: Arc<LedgerCounters>,
    batch_rows: usize,
    alarm: DropAlarm,
    /// When the stop signal was seen (`stopped` is not polled again once
    /// it completed).
    stop_seen: Option<Instant>,
    /// When the database became unreachable, while it is.
    outage: Option<Instant>,
}

impl Writer {
    async fn run(
        mut self,
        queue: Arc<RowQueue>,
        flush_every: Duration,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let mut batch = Batch::default();
        let mut packing = Packing::default();
        // When the rows waiting (in the open batch, packing and the queue) are
        // written at the latest: `flush_every` after the writer first saw
        // one of them.
        let mut due: Option<Instant> = None;
        loop {
            // A stop signal (or its sender dropped) completes `stopped`;
            // whoever sees it sets `stop_seen`, and nobody polls it again.
            let due_at = match due {
                Some(due_at) => due_at,
                None => {
                    if self.wait_for_a_row(&queue, &mut stopped).await {
                        self.stop_seen = Some(Instant::now());
                        break;
                    }
                    *due.insert(Instant::now() + flush_every)
                }
            };
            if self.wait_for_a_drain(&queue, due_at, &mut stopped).await {
                self.stop_seen = Some(Instant::now());
                break;
            }
            let timed_out = Instant::now() >= due_at;
            packing.drain(&queue);
            let whole_batch = batch.len() + packing.len() >= self.batch_rows;
            // Otherwise the open block stays for the next drain's rows.
            let take_all = timed_out || whole_batch;
            let blocks = if take_all {
                packing.take_all()
            } else {
                packing.take_full()
            };
            self.add_all(blocks, &mut batch, &mut stopped).await;
            if timed_out && !batch.is_empty() {
                self.write(&std::mem::take(&mut batch).seal(), &mut stopped)
                    .await;
            }
            if take_all && batch.is_empty() {
                due = None;
            }
            if self.stop_seen.is_some() {
                break;
            }
        }
        // Closing first: what is queued now is all there will be.
        queue.close();
        self.stop_seen.get_or_insert_with(Instant::now);
        packing.drain(&queue);
        self.add_all(packing.take_all(), &mut batch, &mut stopped)
            .await;
        if !batch.is_empty() {
            self.write(&batch.seal(), &mut stopped).await;
        }
        self.report_drops(true);
    }

    /// Waits until a row is queued (an idle writer is woken by the first
    /// row, `RowQueue::push`). Returns true if told to stop meanwhile.
    async fn wait_for_a_row(&self, queue: &RowQueue, stopped: &mut oneshot::Receiver<()>) -> bool {
        while queue.is_empty() {
            tokio::select! {
                _ = queue.rung() => {}
                _ = &mut *stopped => return true,
            }
        }
        false
    }

    /// Waits until a drain's worth of rows is queued (`RowQueue::drain_at`)
    /// or the open batch is `due`. No timer runs between: under load the
    /// rows themselves set the pace (a drain every 3 ms at 10,000 requests
    /// a second), and each drain packs its rows in one loop. Returns true
    /// if told to stop meanwhile.
    async fn wait_for_a_drain(
        &self,
        queue: &RowQueue,
        due: Instant,
        stopped: &mut oneshot::Receiver<()>,
    ) -> bool {
        let deadline = tokio::time::sleep_until(due);
        tokio::pin!(deadline);
        // The queue also rings for the first row after each drain: only a
        // drain's worth cuts the wait short.
        while queue.len() < queue.drain_at() {
            tokio::select! {
                _ = &mut deadline => return false,
                _ = queue.rung() => {}
                _ = &mut *stopped => return true,
            }
        }
        false
    }

    /// Adds `blocks` to `batch`, writing it each time it holds
    /// `batch_rows` or more (more can be waiting after a slow write).
    async fn add_all(
        &mut self,
        blocks: Vec<PackingBlock>,
        batch: &mut Batch,
        stopped: &mut oneshot::Receiver<()>,
    ) {
        for block in blocks {
            batch.add(block);
            if batch.len() >= self.batch_rows {
                self.write(&std::mem::take(batch).seal(), stopped).await;
            }
        }
    }

    /// Writes `batch`, retrying while the database is unreachable (see the
    /// module's notes).
    async fn write(&mut self, batch: &SealedBatch, stopped: &mut oneshot::Receiver<()>) {
        let rows = batch.len() as u64;
        let mut pause = RETRY_FIRST;
        loop {
            // Stopping, with the database gone past the retry time: each
            // batch left would only wait for its connection to time out.
            let result = if self.outage.is_some() && !self.may_retry() {
                Err(StoreError::Query(sqlx::Error::PoolTimedOut))
            } else {
                write_sealed(&self.store, batch).await
            };
            match result {
                Ok(()) => {
                    self.counters.written.fetch_add(rows, Ordering::Relaxed);
                    if let Some(since) = self.outage.take() {
                        tracing::info!(
                            after_ms = since.elapsed().as_millis() as u64,
                            "usage ledger: the database is reachable again; the rows kept \
                             meanwhile are being written"
                        );
                    }
                    break;
                }
                Err(error) if error.is_transient() && self.may_retry() => {
                    if self.outage.is_none() {
                        self.outage = Some(Instant::now());
                        tracing::error!(
                            %error,
                            "usage ledger: the database is unreachable; rows are kept in the \
                             queue (USAGE_QUEUE_CAPACITY) and written when it is back"
                        );
                    }
                    self.pause(pause, stopped).await;
                    pause = (pause * 2).min(RETRY_MAX);
                }
                Err(error) => {
                    self.counters.dropped.fetch_add(rows, Ordering::Relaxed);
                    self.alarm.write_failed(error.to_string());
                    break;
                }
            }
        }
        self.report_drops(false);
    }

    /// Whether a batch that failed transiently is tried again: always,
    /// unless the writer has been stopping for `STOP_RETRY_FOR`.
    fn may_retry(&self) -> bool {
        self.stop_seen
            .is_none_or(|since| since.elapsed() < STOP_RETRY_FOR)
    }

    /// Waits `pause` before a retry, noting a stop signal that comes
    /// meanwhile (the retries then end after `STOP_RETRY_FOR`).
    async fn pause(&mut self, pause: Duration, stopped: &mut oneshot::Receiver<()>) {
        if self.stop_seen.is_some() {
            tokio::time::sleep(pause).await;
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped => self.stop_seen = Some(Instant::now()),
        }
    }

    /// The once-a-minute warning while rows are being dropped (`final_report`:
    /// what is left to say at stop, whenever the last warning was).
    fn report_drops(&mut self, final_report: bool) {
        let Some(report) = self
            .alarm
            .check(self.counters.dropped(), Instant::now(), final_report)
        else {
            return;
        };
        match report.last_error {
            Some(error) => tracing::error!(
                dropped = report.dropped,
                failed_batches = report.failed_batches,
                total_dropped = self.counters.dropped(),
                %error,
                "usage ledger: rows dropped since the last report; writing batches failed"
            ),
            None => tracing::warn!(
                dropped = report.dropped,
                total_dropped = self.counters.dropped(),
                "usage ledger: rows dropped since the last report; the queue was full (the \
                 writer is behind the requests, which were not slowed)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UsageRow;
    use crate::ledger::{LedgerSink, now_ms};
    use crate::store::usage::{DAY_MS, UsageFilter, totals};

    fn row(i: usize) -> UsageRow {
        UsageRow {
            at_ms: now_ms() - 1_000,
            request_id: format!("req-{i}"),
            route: "/v1/messages",
            model_requested: Some("claude-haiku-4-5".into()),
            key_id: Some("key_a".into()),
            attempts: 1,
            keys_tried: vec!["key_a".into()],
            status: 200,
            cost_nanos: 7,
            latency_us: 1_000,
            ..UsageRow::default()
        }
    }

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db", dir.path().display());
        (dir, Store::connect(&url).await.unwrap())
    }

    async fn stored(store: &Store) -> u64 {
        let everything = UsageFilter {
            from_ms: now_ms() - DAY_MS,
            to_ms: now_ms() + DAY_MS,
            provider: None,
            model: None,
            key: None,
        };
        let groups = totals(store, &everything, &[]).await.unwrap();
        groups.first().map_or(0, |(_, t)| t.requests)
    }

    /// A sink over a queue of `capacity` that no writer drains yet.
    fn undrained(capacity: usize) -> (LedgerSink, Arc<RowQueue>, Arc<LedgerCounters>) {
        let queue = Arc::new(RowQueue::new(capacity, SLOW.batch_rows));
        let counters = Arc::new(LedgerCounters::default());
        (
            LedgerSink::new(queue.clone(), counters.clone()),
            queue,
            counters,
        )
    }

    /// Batches that only fill up or stop: no timer writes during a test.
    const SLOW: WriterSettings = WriterSettings {
        batch_rows: 1_000,
        flush_every: Duration::from_secs(3_600),
    };

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_rows_and_the_queued_ones_are_written() {
        let (_dir, store) = temp_store().await;
        let (sink, rows, counters) = undrained(10);
        // `record` is synchronous: it cannot wait for the writer.
        for i in 0..15 {
            sink.record(row(i));
        }
        assert_eq!(counters.dropped(), 5);
        let writer = LedgerWriter::start(store.clone(), rows, counters.clone(), SLOW);
        writer.stop().await;
        assert_eq!(counters.written(), 10);
        assert_eq!(stored(&store).await, 10);
    }

    #[tokio::test]
    async fn stop_writes_every_queued_row_then_refuses_more() {
        let (_dir, store) = temp_store().await;
        let (sink, rows, counters) = undrained(5_000);
        let writer = LedgerWriter::start(store.clone(), rows, counters.clone(), SLOW);
        // More than a batch, and a partial batch the timer would only
        // write in an hour.
        for i in 0..2_500 {
            sink.record(row(i));
        }
        writer.stop().await;
        assert_eq!(counters.written(), 2_500);
        assert_eq!(stored(&store).await, 2_500);
        sink.record(row(9_999));
        assert_eq!(counters.dropped(), 1, "after stop, rows are dropped");
    }

    #[tokio::test]
    async fn a_busy_writer_empties_the_queue_long_before_it_writes_the_batch() {
        let (_dir, store) = temp_store().await;
        let (sink, queue, counters) = undrained(100);
        let writer = LedgerWriter::start(store.clone(), queue.clone(), counters.clone(), SLOW);
        for i in 0..100 {
            sink.record(row(i));
        }
        // The queue is full: the writer takes its rows within a drain and
        // packs them, into a block smaller than full, which waits for the
        // open batch; SLOW writes that only when 1,000 rows are in it or in
        // an hour. The queue has room again.
        let drained = tokio::time::timeout(Duration::from_secs(30), async {
            while !queue.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert!(drained.await.is_ok(), "the rows stayed in the queue");
        for i in 100..200 {
            sink.record(row(i));
        }
        assert_eq!((counters.written(), counters.dropped()), (0, 0));
        writer.stop().await;
        assert_eq!(counters.written(), 200);
        assert_eq!(stored(&store).await, 200);
    }

    #[tokio::test]
    async fn a_block_and_more_leave_the_queue_at_once_and_wait_for_their_batch() {
        use crate::store::usage::batch::SEAL_AT;
        let (_dir, store) = temp_store().await;
        let (sink, queue, counters) = undrained(10_000);
        let writer = LedgerWriter::start(store.clone(), queue.clone(), counters.clone(), SLOW);
        for i in 0..SEAL_AT + 3 {
            sink.record(row(i));
        }
        // The full block goes into the open batch and the three rows after
        // it into the next open block; nothing is written before the
        // batch holds 1,000 rows, or at stop.
        let taken = tokio::time::timeout(Duration::from_secs(30), async {
            while !queue.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert!(taken.await.is_ok(), "the rows stayed in the queue");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(counters.written(), 0);
        writer.stop().await;
        assert_eq!(counters.written(), SEAL_AT as u64 + 3);
        assert_eq!(stored(&store).await, SEAL_AT as u64 + 3);
    }

    #[tokio::test]
    async fn a_partial_batch_is_written_after_flush_every() {
        let (_dir, store) = temp_store().await;
        let (sink, rows, counters) = undrained(100);
        let quick = WriterSettings {
            batch_rows: 1_000,
            flush_every: Duration::from_millis(20),
        };
        let writer = LedgerWriter::start(store.clone(), rows, counters.clone(), quick);
        sink.record(row(1));
        // Waits for the write, however slow the machine; fails only by
        // hanging past the test runner's patience.
        while counters.written() < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(stored(&store).await, 1);
        writer.stop().await;
    }

    #[tokio::test]
    async fn a_batch_that_cannot_be_written_is_counted_dropped() {
        let (_dir, store) = temp_store().await;
        let (sink, rows, counters) = undrained(100);
        for i in 0..7 {
            sink.record(row(i));
        }
        // The database goes away under the writer.
        store.close().await;
        let writer = LedgerWriter::start(store.clone(), rows, counters.clone(), SLOW);
        writer.stop().await;
        assert_eq!((counters.written(), counters.dropped()), (0, 7));
    }
}
