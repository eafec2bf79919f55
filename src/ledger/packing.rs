//! `Packing`: the writer's side of the queue. Each drain moves the waiting
//! rows out of the queue and packs them into blocks and five-minute sums
//! (`store::usage::batch::PackedRows`) in one loop, so the packing code
//! stays in the instruction cache for all of them (see `queue` for why the
//! request path no longer packs its own row).

use crate::domain::UsageRow;
use crate::store::usage::batch::{PackedRows, PackingBlock};
use crate::store::usage::block::RowFields;

use super::queue::RowQueue;

/// Rows' room kept in the buffer the queue and the writer trade between
/// drains (`RowQueue::take_into`): many drains' worth, for the rows that
/// come while a batch is being written (100 ms at 10,000 requests a
/// second). A longer hold-up grows the buffer for as long as it lasts,
/// then the room is given back.
const KEPT_ROOM: usize = 1_024;

#[derive(Default)]
pub struct Packing {
    packed: PackedRows,
    /// The rows of the last drain, empty between drains.
    taken: Vec<UsageRow>,
}

impl Packing {
    /// Takes every row waiting in `queue` and packs it.
    pub fn drain(&mut self, queue: &RowQueue) {
        queue.take_into(&mut self.taken);
        // Each row is dropped (its strings freed) once packed.
        for row in self.taken.drain(..) {
            self.packed.add(&RowFields::of(&row));
        }
        self.taken.shrink_to(KEPT_ROOM);
    }

    /// How many rows are packed and not yet taken.
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    /// The full blocks, oldest first; the open one stays for the next
    /// drain's rows.
    pub fn take_full(&mut self) -> Vec<PackingBlock> {
        self.packed.take_full()
    }

    /// Every block, the open one last.
    pub fn take_all(&mut self) -> Vec<PackingBlock> {
        self.packed.take_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::queue::tests::row;
    use crate::store::usage::LedgerEntry;
    use crate::store::usage::batch::SEAL_AT;
    use crate::store::usage::block::{FORMAT, Unpacked};

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

    #[test]
    fn drained_rows_are_packed_whole_in_the_order_recorded() {
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
            queue.push(r.clone()).unwrap();
        }
        let mut packing = Packing::default();
        packing.drain(&queue);
        assert!(queue.is_empty(), "the queue keeps nothing once drained");
        assert_eq!(packing.len(), 3);
        let expected: Vec<_> = rows.iter().map(|r| RowFields::of(r).to_entry(0)).collect();
        assert_eq!(stored_rows(packing.take_all()), expected);
        assert_eq!(packing.len(), 0);
    }

    #[test]
    fn full_blocks_are_taken_and_the_open_one_waits_for_the_next_drain() {
        let queue = RowQueue::new(10_000, 10);
        for i in 0..=SEAL_AT {
            queue.push(row(i)).unwrap();
        }
        let mut packing = Packing::default();
        packing.drain(&queue);
        let full = stored_rows(packing.take_full());
        assert_eq!(full.len(), SEAL_AT);
        assert_eq!((full[0].request_id.as_str(), packing.len()), ("req-0", 1));
        queue.push(row(9_999)).unwrap();
        packing.drain(&queue);
        let open: Vec<_> = stored_rows(packing.take_all())
            .into_iter()
            .map(|row| row.request_id)
            .collect();
        assert_eq!(open, [format!("req-{SEAL_AT}"), "req-9999".to_string()]);
    }

    #[test]
    fn the_buffer_a_burst_grew_is_given_back() {
        let queue = RowQueue::new(10 * KEPT_ROOM, 10);
        for i in 0..4 * KEPT_ROOM {
            queue.push(row(i)).unwrap();
        }
        let mut packing = Packing::default();
        packing.drain(&queue);
        assert!(packing.taken.capacity() <= KEPT_ROOM);
        assert_eq!(
            packing
                .take_all()
                .iter()
                .map(PackingBlock::len)
                .sum::<usize>(),
            4 * KEPT_ROOM
        );
    }
}
