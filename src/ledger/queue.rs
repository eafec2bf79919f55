//! `RowQueue`: the bounded buffer between the request path and the ledger
//! writer. A request appends its row's bytes (`queued_row`) under a short
//! lock and goes on; the writer takes every waiting row at once by swapping
//! buffers, and reads the rows borrowed from them.
//!
//! Why bytes and not the `UsageRow`s: a row owns a handful of strings, and
//! when the writer thread dropped them the allocator paid for freeing
//! memory another thread had allocated (jemalloc's slow paths were 1.5 %
//! of keygate's CPU under `keygate-bench`). A row's bytes are freed with
//! the buffer, and wait in ~200 bytes instead of ~600.
//!
//! Why not a channel: a tokio `mpsc` moves each row through its own slot
//! and semaphore permit, and wakes the receiving task for nearly every row.
//! Profiled under `keygate-bench`, that hand-off cost about as much as
//! writing the row to SQLite. Here a row costs one uncontended lock and a
//! move into a `Vec`, and the writer is woken twice per batch: when the
//! first row of a batch arrives (to start its flush timer) and when a full
//! batch is waiting.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::queued_row;
use crate::domain::UsageRow;
use crate::store::usage::block::RowFields;

/// Rows as queued: each laid out by `queued_row`, one after the other.
#[derive(Debug, Default)]
pub struct QueuedRows {
    bytes: Vec<u8>,
    count: usize,
}

impl QueuedRows {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The rows, borrowed from the bytes, in the order they were queued.
    pub fn iter(&self) -> impl Iterator<Item = RowFields<'_>> {
        let mut rest = self.bytes.as_slice();
        // Written by `push` (`queued_row::append`): always reads back.
        std::iter::from_fn(move || {
            let (row, after) = queued_row::read(rest)?;
            rest = after;
            Some(row)
        })
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }
}

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
    rows: QueuedRows,
    closed: bool,
}

impl RowQueue {
    /// A queue holding at most `capacity` rows, whose writer wants to hear
    /// when `batch_rows` are waiting.
    pub fn new(capacity: usize, batch_rows: usize) -> Self {
        Self {
            state: Mutex::new(Waiting {
                rows: QueuedRows::default(),
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
        let waiting = {
            let mut state = self.lock();
            if state.closed {
                return Err(Refused::Closed);
            }
            if state.rows.count >= self.capacity {
                return Err(Refused::Full);
            }
            // Written in place: a handful of copies, about as long as
            // copying bytes made before the lock was taken.
            queued_row::append(row, &mut state.rows.bytes);
            state.rows.count += 1;
            state.rows.count
        };
        if waiting == 1 || waiting == self.batch_rows {
            self.ring.notify_one();
        }
        Ok(())
    }

    /// Every waiting row, leaving `spare` (emptied, its allocation kept) in
    /// their place, so the two buffers take turns and neither regrows.
    pub fn take_all(&self, mut spare: QueuedRows) -> QueuedRows {
        spare.clear();
        std::mem::replace(&mut self.lock().rows, spare)
    }

    pub fn len(&self) -> usize {
        self.lock().rows.count
    }

    /// Whether a row pushed now would be kept (for a sender that can wait,
    /// such as a benchmark; a request never does).
    pub fn has_room(&self) -> bool {
        let state = self.lock();
        !state.closed && state.rows.count < self.capacity
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

    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    /// A panic while holding the lock cannot leave `Waiting` half changed
    /// (each change is one push or one swap), so a poisoned lock is used
    /// as it is rather than losing the ledger.
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> UsageRow {
        UsageRow {
            request_id: format!("req-{i}"),
            route: "/v1/messages",
            attempts: 1,
            status: 200,
            ..UsageRow::default()
        }
    }

    #[test]
    fn a_full_queue_gives_the_row_back_and_taking_makes_room() {
        let queue = RowQueue::new(3, 2);
        for i in 0..3 {
            assert!(queue.push(&row(i)).is_ok());
        }
        assert!(!queue.has_room());
        assert_eq!(queue.push(&row(3)).unwrap_err(), Refused::Full);
        let taken = queue.take_all(QueuedRows::default());
        let ids: Vec<&str> = taken.iter().map(|r| r.request_id).collect();
        assert_eq!(ids, ["req-0", "req-1", "req-2"], "in the order recorded");
        assert!(queue.is_empty() && queue.has_room());
        assert!(queue.push(&row(4)).is_ok());
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
        let taken = queue.take_all(QueuedRows::default());
        let expected: Vec<RowFields<'_>> = rows.iter().map(RowFields::of).collect();
        assert_eq!(taken.iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_closed_queue_refuses_rows_but_keeps_the_waiting_ones() {
        let queue = RowQueue::new(10, 5);
        queue.push(&row(1)).unwrap();
        queue.close();
        assert_eq!(queue.push(&row(2)).unwrap_err(), Refused::Closed);
        assert!(!queue.has_room());
        assert_eq!(queue.take_all(QueuedRows::default()).len(), 1);
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
