//! Writing one batch of ledger rows: the raw rows packed into blocks
//! (`block`) and their sums added to every rollup level, in one transaction, so the
//! tables always agree (a failed batch leaves none changed).

use sqlx::QueryBuilder;

use super::batch::{Batch, SealedBatch};
use super::block::{self, PackedBlock, RowFields};
use super::{padded_chunks, push_padded_values, rollup_store};
use crate::domain::UsageRow;
use crate::store::{Store, StoreError, Tx, on_tx};

/// Writes `rows` and adds them to the rollups, in one transaction.
pub async fn write_batch(store: &Store, rows: &[UsageRow]) -> Result<(), StoreError> {
    let batch = Batch::of(rows.iter().map(RowFields::of));
    write_sealed(store, &batch.seal()).await
}

/// Writes a sealed batch's blocks and adds its sums to the rollups, in one
/// transaction. Packed and summed before: the write lock is held only for
/// SQL, and a batch tried again is not packed again.
pub async fn write_sealed(store: &Store, batch: &SealedBatch) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    // The rollup step reads the stored histograms, then writes: no other
    // writer may come between (`begin_write`, `exclude_other_writers`).
    let mut tx = store.begin_write().await?;
    exclude_other_writers(&mut tx).await?;
    insert_blocks(&mut tx, &batch.blocks).await?;
    // Merged with the stored histograms on the way: a copy, so the batch
    // stays as it was for another attempt.
    rollup_store::add_levels(&mut tx, &mut batch.levels.clone()).await?;
    tx.commit().await
}

/// An arbitrary constant naming the ledger's lock among advisory locks.
const LEDGER_LOCK: i64 = 0x6b65_7967_6174_6501;

/// Serialises the transactions that read rollup histograms and write them
/// back. SQLite's `BEGIN IMMEDIATE` already did: one writer at a time.
/// Several replicas share one PostgreSQL database, where two batches that
/// read the same stored histogram and each wrote back its own sum would
/// lose the other's counts: a transaction-scoped advisory lock makes them
/// take turns (a batch holds it for its few statements; counts and tokens
/// would add up in the upsert anyway).
pub(in crate::store) async fn exclude_other_writers(tx: &mut Tx) -> Result<(), StoreError> {
    if let Tx::Postgres(conn) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LEDGER_LOCK)
            .execute(&mut **conn)
            .await?;
    }
    Ok(())
}

/// Stores `blocks` under new ids, in their order, up to
/// `ROWS_PER_STATEMENT` blocks a statement (`padded_chunks`): each
/// statement is a round trip to sqlx's SQLite thread, and a batch holds
/// about ten blocks.
pub(super) async fn insert_blocks(tx: &mut Tx, blocks: &[PackedBlock]) -> Result<(), StoreError> {
    for (chunk, rows) in padded_chunks(blocks) {
        on_tx!(&mut *tx, |conn, Db| {
            let mut insert = QueryBuilder::<Db>::new(
                "INSERT INTO usage_blocks (first_at_ms, last_at_ms, row_count, format, rows) \
                 SELECT * FROM (",
            );
            push_padded_values(&mut insert, chunk, rows, 5, |values, block| {
                values
                    .push_bind(block.first_at_ms)
                    .push_bind(block.last_at_ms)
                    .push_bind(block.row_count)
                    .push_bind(block::FORMAT)
                    .push_bind(block.bytes.as_slice());
            });
            // Padding rows are left out.
            insert.push(") AS v WHERE v.column1 IS NOT NULL");
            // One of seven texts (see `padded_chunks`): cached.
            insert.build().execute(&mut **conn).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// Stores `block` under `block_id`, so its rows keep their ids: a block
/// the pruner rewrote without its oldest rows (new blocks go through
/// `insert_blocks`).
pub(super) async fn insert_block(
    tx: &mut Tx,
    block_id: i64,
    block: &PackedBlock,
) -> Result<(), StoreError> {
    let insert = match &*tx {
        // PostgreSQL generates the ids itself unless told to keep this one.
        Tx::Postgres(_) => {
            "INSERT INTO usage_blocks (id, first_at_ms, last_at_ms, row_count, format, rows) \
             OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6)"
        }
        Tx::Sqlite(_) => {
            "INSERT INTO usage_blocks (id, first_at_ms, last_at_ms, row_count, format, rows) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        }
    };
    on_tx!(tx, |conn, Db| {
        sqlx::query(insert)
            .bind(block_id)
            .bind(block.first_at_ms)
            .bind(block.last_at_ms)
            .bind(block.row_count)
            .bind(block::FORMAT)
            .bind(block.bytes.as_slice())
            .execute(&mut **conn)
            .await
            .map(|_| ())
    })?;
    Ok(())
}
