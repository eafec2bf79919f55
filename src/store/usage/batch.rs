//! `Batch`: one write of the ledger, built a row at a time as the writer
//! reads its queue. Each row is packed into the open block and counted in
//! that block's sums as it comes (`block::BlockWriter`,
//! `rollup::BlockSums`), so a row is read once and held in no other form;
//! `seal` makes the batch ready to write (`write::write_sealed`), and a
//! sealed batch can be written again after a failed attempt.
//!
//! Before, the writer first read the batch into a list of rows, summed the
//! list and then packed it into a second list: three passes over a few
//! megabytes per batch, whose memory traffic the request path paid for
//! too, on a machine whose cores share little cache.

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

/// A batch being built.
pub struct Batch {
    sealed: Vec<PackedBlock>,
    open: BlockWriter,
    open_sums: BlockSums,
    /// The five-minute sums of the sealed blocks, by name.
    five_minutes: HashMap<RollupKey, RollupDelta>,
    rows: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            sealed: Vec::new(),
            open: BlockWriter::new(0),
            open_sums: BlockSums::default(),
            five_minutes: HashMap::new(),
            rows: 0,
        }
    }
}

impl Batch {
    /// Adds `row`; a block that reaches `SEAL_AT` rows is sealed and the
    /// next row starts another.
    pub fn add(&mut self, row: &RowFields<'_>) {
        let names = self.open.push(row);
        self.open_sums.record(row, names);
        self.rows += 1;
        if self.open.len() == SEAL_AT {
            self.seal_open_block();
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn seal_open_block(&mut self) {
        let open = std::mem::replace(&mut self.open, BlockWriter::new(0));
        std::mem::take(&mut self.open_sums).name_into(|p| open.name(p), &mut self.five_minutes);
        self.sealed.push(open.finish());
    }

    /// The batch, ready to write.
    pub fn seal(mut self) -> SealedBatch {
        if !self.open.is_empty() {
            self.seal_open_block();
        }
        SealedBatch {
            blocks: self.sealed,
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

    fn row(at_ms: i64, key_id: &str) -> RowFields<'_> {
        RowFields {
            at_ms,
            request_id: "req",
            route: "/v1/messages",
            provider: Some("anthropic"),
            model_requested: Some("claude-haiku-4-5"),
            model_answered: None,
            key_id: Some(key_id),
            attempts: 1,
            keys_tried: vec![key_id],
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

    #[test]
    fn a_batch_past_a_block_is_cut_into_blocks_and_summed_across_them() {
        let mut batch = Batch::default();
        let rows = SEAL_AT * 2 + 10;
        for i in 0..rows {
            batch.add(&row(i as i64, if i % 2 == 0 { "key_a" } else { "key_b" }));
        }
        let sealed = batch.seal();
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
        let mut batch = Batch::default();
        let mut empty = row(1, "key_a");
        empty.error_class = Some("");
        batch.add(&row(1, "key_a"));
        batch.add(&empty);
        let sealed = batch.seal();
        let [_, _, (_, five_minutes)] = &sealed.levels;
        assert_eq!(five_minutes.len(), 1);
        assert_eq!(five_minutes.values().next().unwrap().requests, 2);
    }
}
