//! `RowQueue`: the bounded buffer between the request path and the ledger
//! writer. A request moves its finished row into the queue under a short
//! lock and goes on; the writer takes every waiting row once a drain's
//! worth waits (`drain_at`), or its batch is due, and packs them into
//! blocks itself.
//!
//! Why rows and not packed blocks: packing a row (its names, its bytes,
//! its five-minute sums) is about 5 KB of code. Run by each request, in
//! between the hundreds of kilobytes of code a request runs, nearly every
//! line of it missed the instruction cache again: under cachegrind
//! (`benches/ledger_instructions.sh`) packing cost a request about 660
//! instructions and 130 instruction-cache misses, the misses costing about
//! as much as the instructions. Run by the writer over dozens of rows
//! at a time, the same code stays in cache after the first row. A request
//! now only moves its row (a copy of its ~250 bytes; its strings stay
//! where they are) and the writer frees the strings once the row is
//! packed. Counted the same way, the ledger's instruction-cache misses
//! went from 158 to 35 a request. Timed, that changed nothing measurable
//! (`keygate-bench --compare --together`: the misses were served from the
//! second-level cache), but the request holds the lock for a copy of its
//! row instead of about a microsecond of packing.
//!
//! Why not a channel: a tokio `mpsc` moves each row through its own slot
//! and semaphore permit, and wakes the receiving task for nearly every row.
//! Profiled under `keygate-bench`, that hand-off cost about as much as
//! writing the row to SQLite. Here a row costs one uncontended lock, and
//! the writer is woken twice per drain: by the first row after the last
//! drain and by the row that makes a drain's worth.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::domain::UsageRow;

/// Rows that make a drain (fewer if the queue or the batch is smaller):
/// enough that the writer's packing loop runs in a warm instruction cache
/// after its first row, few enough that the rows' strings are still in
/// the data cache (at 10,000 requests a second, 3 ms of rows) and that the
/// strings a drain frees fit in jemalloc's thread cache (about 200 objects
/// a size class; a row holds four of 16 bytes). Counted under cachegrind
/// (pinned), 32 rows a drain cost the ledger 2,681 instructions a request
/// with 35 instruction-cache misses; 64 cost 2,783 with 24, of which about
/// 430 were the allocator's, the thread cache overflowing and refilling
/// around each drain (about 65 with 32).
const DRAIN_ROWS: usize = 32;

/// Why a row was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `capacity` rows are already waiting (the writer is behind).
    Full,
    /// The writer has stopped.
    Closed,
}

pub struct RowQueue {
    state: Mutex<Waiting>,
    /// Rung by the first row after a drain and by the row that makes
    /// `drain_at`; the writer re-checks the length, so a stale ring only
    /// costs a look.
    ring: Notify,
    capacity: usize,
    drain_at: usize,
}

struct Waiting {
    rows: Vec<UsageRow>,
    closed: bool,
}

impl RowQueue {
    /// A queue holding at most `capacity` rows, for a writer of batches of
    /// `batch_rows`.
    pub fn new(capacity: usize, batch_rows: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            state: Mutex::new(Waiting {
                rows: Vec::new(),
                closed: false,
            }),
            ring: Notify::new(),
            capacity,
            // Half the capacity at most: the rows that come while the
            // writer wakes must find room.
            drain_at: DRAIN_ROWS.min(batch_rows).min(capacity.div_ceil(2)).max(1),
        }
    }

    /// Queues `row` without waiting; drops it if the queue is full or
    /// closed, and says which.
    pub fn push(&self, row: UsageRow) -> Result<(), Refused> {
        let waiting = {
            let mut state = self.lock();
            if state.closed {
                return Err(Refused::Closed);
            }
            if state.rows.len() >= self.capacity {
                return Err(Refused::Full);
            }
            state.rows.push(row);
            state.rows.len()
        };
        if waiting == 1 || waiting == self.drain_at {
            self.ring.notify_one();
        }
        Ok(())
    }

    /// Moves every waiting row, oldest first, into `into`, which must be
    /// empty: the two buffers trade places, so a busy queue and its writer
    /// pass the same two back and forth instead of allocating.
    pub fn take_into(&self, into: &mut Vec<UsageRow>) {
        debug_assert!(into.is_empty(), "rows taken before would be lost");
        std::mem::swap(&mut self.lock().rows, into);
    }

    pub fn len(&self) -> usize {
        self.lock().rows.len()
    }

    /// Whether a row pushed now would be kept (for a sender that can wait,
    /// such as a benchmark; a request never does).
    pub fn has_room(&self) -> bool {
        let state = self.lock();
        !state.closed && state.rows.len() < self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses every later row; the ones waiting can still be taken.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ring.notify_one();
    }

    /// Waits for the next ring (see `ring`); returns at once if one came
    /// while nobody was waiting.
    pub async fn rung(&self) {
        self.ring.notified().await;
    }

    /// How many waiting rows make a drain.
    pub fn drain_at(&self) -> usize {
        self.drain_at
    }

    /// A panic while holding the lock cannot leave `Waiting` half changed
    /// (a row is pushed whole or not at all), so a poisoned lock is used as
    /// it is rather than losing the ledger.
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A queued row with its request id numbered `i` (also `packing`'s).
    pub(in crate::ledger) fn row(i: usize) -> UsageRow {
        UsageRow {
            request_id: format!("req-{i}"),
            route: "/v1/messages",
            attempts: 1,
            status: 200,
            ..UsageRow::default()
        }
    }

    fn taken_ids(queue: &RowQueue) -> Vec<String> {
        let mut taken = Vec::new();
        queue.take_into(&mut taken);
        taken.into_iter().map(|row| row.request_id).collect()
    }

    #[test]
    fn a_full_queue_refuses_the_row_and_taking_makes_room() {
        let queue = RowQueue::new(3, 2);
        for i in 0..3 {
            assert!(queue.push(row(i)).is_ok());
        }
        assert!(!queue.has_room());
        assert_eq!(queue.push(row(3)).unwrap_err(), Refused::Full);
        assert_eq!(
            taken_ids(&queue),
            ["req-0", "req-1", "req-2"],
            "in the order recorded"
        );
        assert!(queue.is_empty() && queue.has_room());
        assert!(queue.push(row(4)).is_ok());
        assert_eq!(taken_ids(&queue), ["req-4"]);
    }

    #[test]
    fn rows_are_taken_whole_and_the_buffers_trade_places() {
        let queue = RowQueue::new(10, 5);
        let mut full = row(1);
        full.provider = Some(crate::domain::ProviderKind::OpenAI);
        full.model_requested = Some("m".repeat(100_000));
        full.keys_tried = vec!["key_a".into(), "key_b".into()];
        full.usage.reasoning_tokens = u64::MAX;
        queue.push(full.clone()).unwrap();
        let mut taken = Vec::with_capacity(64);
        queue.take_into(&mut taken);
        assert_eq!(taken, [full]);
        taken.clear();
        // The emptied buffer went to the queue, with its room.
        queue.push(row(2)).unwrap();
        let mut again = Vec::new();
        queue.take_into(&mut again);
        assert!(
            again.capacity() >= 64,
            "the queue allocated a buffer of its own"
        );
    }

    #[test]
    fn a_drain_is_a_few_dozen_rows_or_half_a_small_queue() {
        assert_eq!(RowQueue::new(10_000, 5_000).drain_at(), DRAIN_ROWS);
        assert_eq!(RowQueue::new(20, 5_000).drain_at(), 10);
        assert_eq!(RowQueue::new(1, 5_000).drain_at(), 1);
        assert_eq!(RowQueue::new(0, 0).drain_at(), 1);
    }

    #[test]
    fn a_closed_queue_refuses_rows_but_keeps_the_waiting_ones() {
        let queue = RowQueue::new(10, 5);
        queue.push(row(1)).unwrap();
        queue.close();
        assert_eq!(queue.push(row(2)).unwrap_err(), Refused::Closed);
        assert!(!queue.has_room());
        assert_eq!(taken_ids(&queue), ["req-1"]);
    }

    #[tokio::test]
    async fn the_writer_is_rung_by_the_first_row_and_by_a_drains_worth() {
        let queue = RowQueue::new(100, 3);
        assert_eq!(queue.drain_at(), 3, "no more than a batch");
        queue.push(row(1)).unwrap();
        // The ring of the first row was kept for the writer.
        tokio::time::timeout(std::time::Duration::from_secs(5), queue.rung())
            .await
            .unwrap();
        queue.push(row(2)).unwrap();
        let not_yet = tokio::time::timeout(std::time::Duration::from_millis(20), queue.rung());
        assert!(not_yet.await.is_err(), "the second row rings nobody");
        queue.push(row(3)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), queue.rung())
            .await
            .unwrap();
    }
}
