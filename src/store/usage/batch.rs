//! Rows on their way to the database, in two steps:
//! - `PackedRows`: rows packed into blocks (`block::BlockWriter`) and
//!   summed per five minutes (`rollup::BlockSums`), by the ledger writer
//!   as it drains the queue (`ledger::packing`), a few dozen rows at a
//!   time.
//! - `Batch`: one write of the ledger, built by the writer from the full
//!   blocks: each is finished (sorted by time, its bytes laid out) and
//!   its sums named; `seal` makes the batch ready to write
//!   (`write::write_sealed`), and a sealed batch can be written again after
//!   a failed attempt.
//!
//! Before, a request packed its own row into the queue's open block
//! (`ledger::queue` says why it no longer does), and before that it copied
//! its row into the queue in a format of its own that the writer read back
//! (the copy and the read were about a third of what the ledger cost a
//! request under cachegrind, `benches/ledger_instructions.sh`).

use std::collections::HashMap;

use super::block::{BlockWriter, PackedBlock, RowFields};
use super::rollup::{self, BlockSums, Level, RollupDelta, RollupKey};

/// Rows per block the ledger writes (a block may hold up to
/// `block::MAX_ROWS`). Small enough that a block's bytes (~40 KB) stay in
/// cache on their way through packing, sqlx and SQLite, and the buffers
/// freed by one block are warm when the next reuses them: with 4,096-row
/// blocks (~330 KB, copied four times), writing into cold memory was most
/// of the ledger's last-level cache misses under cachegrind.
pub const SEAL_AT: usize = 512;

/// Bytes a packed row takes in a block, at most for most rows (~60 for
/// keygate-bench's, whose request ids take 17; ~80 with an id as text): an
/// open block reserves room for `SEAL_AT` of them, so its buffer seldom
/// grows.
const ROW_BYTES: usize = 96;

/// One block's rows as they were recorded, packed and summed; the writer
/// finishes it (`Batch::add`).
pub struct PackingBlock {
    rows: BlockWriter,
    sums: BlockSums,
}

impl PackingBlock {
    fn new(room: usize) -> Self {
        Self {
            rows: BlockWriter::with_room(0, room, room * ROW_BYTES),
            sums: BlockSums::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The block's bytes (its sums are left out), for a test that reads
    /// the rows back; the writer finishes blocks through `Batch::add`.
    #[cfg(test)]
    pub fn finish(self) -> PackedBlock {
        self.rows.finish()
    }
}

/// Rows packed into blocks of `SEAL_AT` as they are recorded: the full
/// blocks, and the open one the next row goes to.
pub struct PackedRows {
    full: Vec<PackingBlock>,
    open: PackingBlock,
    rows: usize,
}

impl Default for PackedRows {
    fn default() -> Self {
        Self {
            full: Vec::new(),
            // Rooms come with the second block: an idle ledger holds none.
            open: PackingBlock::new(0),
            rows: 0,
        }
    }
}

impl PackedRows {
    /// Packs and sums `row`; a block that reaches `SEAL_AT` rows is set
    /// aside as full, for the writer to finish into a batch.
    pub fn add(&mut self, row: &RowFields<'_>) {
        let names = self.open.rows.push(row);
        self.open.sums.record(row, names);
        self.rows += 1;
        if self.open.len() == SEAL_AT {
            let full = std::mem::replace(&mut self.open, PackingBlock::new(SEAL_AT));
            self.full.push(full);
        }
    }

    /// How many rows are held, in every block.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The full blocks, oldest first; the open one stays.
    pub fn take_full(&mut self) -> Vec<PackingBlock> {
        let full = std::mem::take(&mut self.full);
        self.rows -= full.iter().map(PackingBlock::len).sum::<usize>();
        full
    }

    /// Every block, the open one last (if it holds a row).
    pub fn take_all(&mut self) -> Vec<PackingBlock> {
        let mut blocks = std::mem::take(&mut self.full);
        if !self.open.is_empty() {
            blocks.push(std::mem::replace(&mut self.open, PackingBlock::new(0)));
        }
        self.rows = 0;
        blocks
    }
}

/// A batch being built.
#[derive(Default)]
pub struct Batch {
    blocks: Vec<PackedBlock>,
    /// The five-minute sums of the blocks, by name.
    five_minutes: HashMap<RollupKey, RollupDelta>,
    rows: usize,
}

impl Batch {
    /// `rows` packed as the queue packs them, in one batch: for a caller
    /// that holds its rows already (`write::write_batch`, tests).
    pub fn of<'a>(rows: impl IntoIterator<Item = RowFields<'a>>) -> Self {
        let mut packed = PackedRows::default();
        for row in rows {
            packed.add(&row);
        }
        let mut batch = Self::default();
        for block in packed.take_all() {
            batch.add(block);
        }
        batch
    }

    /// Adds `block`'s rows and sums (nothing, for an empty block).
    pub fn add(&mut self, block: PackingBlock) {
        if block.is_empty() {
            return;
        }
        let PackingBlock { rows, sums } = block;
        sums.name_into(|p| rows.name(p), &mut self.five_minutes);
        self.rows += rows.len();
        self.blocks.push(rows.finish());
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The batch, ready to write.
    pub fn seal(self) -> SealedBatch {
        SealedBatch {
            blocks: self.blocks,
            levels: rollup::levels(self.five_minutes),
            rows: self.rows,
        }
    }
}

/// A batch's blocks and what it adds to each rollup level.
pub struct SealedBatch {
    pub(super) blocks: Vec<PackedBlock>,
    pub(super) levels: [(Level, HashMap<RollupKey, RollupDelta>); 3],
    rows: usize,
}

impl SealedBatch {
    /// How many rows the batch holds.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::usage::request_id::RequestId;

    fn row(at_ms: i64, key_id: &str) -> RowFields<'_> {
        RowFields {
            at_ms,
            request_id: RequestId::Text("req"),
            route: "/v1/messages",
            provider: Some("anthropic"),
            model_requested: Some("claude-haiku-4-5"),
            model_answered: None,
            key_id: Some(key_id),
            attempts: 1,
            keys_tried: vec![key_id].into(),
            status: 200,
            error_class: None,
            input_tokens: 10,
            output_tokens: 5,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
            cost_nanos: 3,
            latency_us: 1_000,
            ttft_us: None,
            client_key: None,
            unpriced: false,
            cache_scope: None,
        }
    }

    fn batch_of(rows: &[RowFields<'_>]) -> SealedBatch {
        Batch::of(rows.iter().cloned()).seal()
    }

    #[test]
    fn a_batch_past_a_block_is_cut_into_blocks_and_summed_across_them() {
        let rows = SEAL_AT * 2 + 10;
        let rows: Vec<_> = (0..rows)
            .map(|i| row(i as i64, if i % 2 == 0 { "key_a" } else { "key_b" }))
            .collect();
        let sealed = batch_of(&rows);
        let rows = rows.len();
        assert_eq!(sealed.len(), rows);
        let counts: Vec<i64> = sealed.blocks.iter().map(|b| b.row_count).collect();
        assert_eq!(counts, [SEAL_AT as i64, SEAL_AT as i64, 10]);
        for (level, sums) in &sealed.levels {
            // Every row is within the first five minutes of the epoch.
            assert_eq!(sums.len(), 2, "{}: one sum per key", level.table);
            let requests: u64 = sums.values().map(|d| d.requests).sum();
            assert_eq!(requests, rows as u64, "{}", level.table);
            assert!(sums.values().all(|d| d.cost_nanos == 3 * d.requests));
        }
    }

    #[test]
    fn an_empty_name_and_no_name_add_up_in_one_rollup_row() {
        let mut empty = row(1, "key_a");
        empty.error_class = Some("");
        let sealed = batch_of(&[row(1, "key_a"), empty]);
        let [_, _, (_, five_minutes)] = &sealed.levels;
        assert_eq!(five_minutes.len(), 1);
        assert_eq!(five_minutes.values().next().unwrap().requests, 2);
    }

    #[test]
    fn taking_the_full_blocks_leaves_the_open_one_and_its_rows_counted() {
        let mut packed = PackedRows::default();
        for i in 0..SEAL_AT + 3 {
            packed.add(&row(i as i64, "key_a"));
        }
        assert_eq!(packed.len(), SEAL_AT + 3);
        let full = packed.take_full();
        let lengths: Vec<usize> = full.iter().map(PackingBlock::len).collect();
        assert_eq!(lengths, [SEAL_AT]);
        assert_eq!(packed.len(), 3);
        assert!(packed.take_full().is_empty(), "the open block is not full");
        let rest = packed.take_all();
        let lengths: Vec<usize> = rest.iter().map(PackingBlock::len).collect();
        assert_eq!(lengths, [3]);
        assert!(packed.is_empty() && packed.take_all().is_empty());
    }
}
