//! `RowQueue`: the bounded buffer between the request path and the ledger
//! writer. A request packs its row into the open block of the queue's
//! `PackedRows` under a short lock and goes on; the writer takes the full
//! blocks as they fill and the open one when its batch is due.
//!
//! Why blocks and not the rows: a row packed by the request that made it
//! is never held in any other form. Before, a request copied its row into
//! the queue in a format of its own and the writer read it back to pack it
//! (and before that, queued `UsageRow`s, whose strings the writer's thread
//! freed at a cost to the allocator). Packing here holds the lock a little
//! longer (about a microsecond), against about a fifth of a microsecond
//! before, but spares the copy and the reading back, a third of what the
//! ledger cost a request.
//!
//! Why not a channel: a tokio `mpsc` moves each row through its own slot
//! and semaphore permit, and wakes the receiving task for nearly every row.
//! Profiled under `keygate-bench`, that hand-off cost about as much as
//! writing the row to SQLite. Here a row costs one uncontended lock, and
//! the writer is woken twice per batch: when the first row of a batch
//! arrives (to start its flush timer) and when a full batch is waiting.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::domain::UsageRow;
use crate::store::usage::batch::{PackedRows, PackingBlock};
use crate::store::usage::block::RowFields;

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
    /// Rung when a batch starts (first row) or fills (`batch_rows`); the
    /// writer re-checks the length, so a stale ring only costs a look.
    ring: Notify,
    capacity: usize,
    batch_rows: usize,
}

struct Waiting {
    rows: PackedRows,
    closed: bool,
}

impl RowQueue {
    /// A queue holding at most `capacity` rows, whose writer wants to hear
    /// when `batch_rows` are waiting.
    pub fn new(capacity: usize, batch_rows: usize) -> Self {
        Self {
            state: Mutex::new(Waiting {
                rows: PackedRows::default(),
                closed: false,
            }),
            ring: Notify::new(),
            capacity: capacity.max(1),
            batch_rows: batch_rows.max(1),
        }
    }

    /// Queues `row` without waiting; drops it if the queue is full or
    /// closed, and says which.
    pub fn push(&self, row: &UsageRow) -> Result<(), Refused> {
        let fields = RowFields::of(row);
        let waiting = {
            let mut state = self.lock();
            if state.closed {
                return Err(Refused::Closed);
            }
            if state.rows.len() >= self.capacity {
                return Err(Refused::Full);
            }
            state.rows.add(&fields);
            state.rows.len()
        };
        if waiting == 1 || waiting == self.batch_rows {
            self.ring.notify_one();
        }
        Ok(())
    }

    /// The blocks that are full, oldest first; their rows leave the queue.
    pub fn take_full(&self) -> Vec<PackingBlock> {
        self.lock().rows.take_full()
    }

    /// Every waiting row, in blocks, oldest first.
    pub fn take_all(&self) -> Vec<PackingBlock> {
        self.lock().rows.take_all()
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

    /// Whether half the capacity or more is taken.
    pub fn is_half_full(&self) -> bool {
        self.len() >= self.capacity.div_ceil(2)
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

    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    /// A panic while holding the lock cannot leave `Waiting` half changed
    /// in a way that loses more than the row being added (a row is packed,
    /// then counted), so a poisoned lock is used as it is rather than
    /// losing the ledger.
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::usage::LedgerEntry;
    use crate::store::usage::block::{FORMAT, Unpacked};

    fn row(i: usize) -> UsageRow {
        UsageRow {
            request_id: format!("req-{i}"),
            route: "/v1/messages",
            attempts: 1,
            status: 200,
            ..UsageRow::default()
        }
    }

    /// The rows of `blocks` as stored, in order.
    fn stored_rows(blocks: Vec<PackingBlock>) -> Vec<LedgerEntry> {
        let mut rows = Vec::new();
        for block in blocks {
            let packed = block.finish();
            let unpacked = Unpacked::read(FORMAT, &packed.bytes).unwrap();
            rows.extend(unpacked.rows(0).map(|(_, row)| row.to_entry(0)));
        }
        rows
    }

    fn request_ids(blocks: Vec<PackingBlock>) -> Vec<String> {
        stored_rows(blocks)
            .into_iter()
            .map(|row| row.request_id)
            .collect()
    }

    #[test]
    fn a_full_queue_gives_the_row_back_and_taking_makes_room() {
        let queue = RowQueue::new(3, 2);
        for i in 0..3 {
            assert!(queue.push(&row(i)).is_ok());
        }
        assert!(!queue.has_room());
        assert_eq!(queue.push(&row(3)).unwrap_err(), Refused::Full);
        assert!(queue.take_full().is_empty(), "no block is full");
        assert!(!queue.has_room(), "the open block's rows are still queued");
        let ids = request_ids(queue.take_all());
        assert_eq!(ids, ["req-0", "req-1", "req-2"], "in the order recorded");
        assert!(queue.is_empty() && queue.has_room());
        assert!(queue.push(&row(4)).is_ok());
    }

    #[test]
    fn full_blocks_leave_the_queue_and_make_room_the_open_one_stays() {
        use crate::store::usage::batch::SEAL_AT;
        let queue = RowQueue::new(SEAL_AT + 1, 10);
        for i in 0..=SEAL_AT {
            queue.push(&row(i)).unwrap();
        }
        assert!(!queue.has_room());
        let full = request_ids(queue.take_full());
        assert_eq!(full.len(), SEAL_AT);
        assert_eq!((full[0].as_str(), queue.len()), ("req-0", 1));
        queue.push(&row(9_999)).unwrap();
        let open = request_ids(queue.take_all());
        assert_eq!(open, [format!("req-{SEAL_AT}"), "req-9999".to_string()]);
    }

    #[test]
    fn rows_come_back_whole_however_long() {
        let queue = RowQueue::new(10, 5);
        let mut full = row(1);
        full.provider = Some(crate::domain::ProviderKind::OpenAI);
        full.model_requested = Some("gpt-4o".into());
        full.key_id = Some("key_b".into());
        full.keys_tried = vec!["key_a".into(), "key_b".into()];
        full.error_class = Some("rate_limit_error".into());
        full.ttft_us = Some(7);
        full.usage.reasoning_tokens = u64::MAX;
        let mut long = row(2);
        long.model_requested = Some("m".repeat(100_000));
        let rows = [full, row(0), long];
        for r in &rows {
            queue.push(r).unwrap();
        }
        let expected: Vec<_> = rows.iter().map(|r| RowFields::of(r).to_entry(0)).collect();
        assert_eq!(stored_rows(queue.take_all()), expected);
    }

    #[test]
    fn a_closed_queue_refuses_rows_but_keeps_the_waiting_ones() {
        let queue = RowQueue::new(10, 5);
        queue.push(&row(1)).unwrap();
        queue.close();
        assert_eq!(queue.push(&row(2)).unwrap_err(), Refused::Closed);
        assert!(!queue.has_room());
        assert_eq!(request_ids(queue.take_all()), ["req-1"]);
    }

    #[tokio::test]
    async fn the_writer_is_rung_by_a_batchs_first_row_and_by_a_full_batch() {
        let queue = RowQueue::new(100, 3);
        queue.push(&row(1)).unwrap();
        // The ring of the first row was kept for the writer.
        tokio::time::timeout(std::time::Duration::from_secs(5), queue.rung())
            .await
            .unwrap();
        queue.push(&row(2)).unwrap();
        let not_yet = tokio::time::timeout(std::time::Duration::from_millis(20), queue.rung());
        assert!(not_yet.await.is_err(), "the second row rings nobody");
        queue.push(&row(3)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), queue.rung())
            .await
            .unwrap();
    }
}
