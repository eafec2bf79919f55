//! Deleting ledger data older than a cutoff. The caller (the ledger's
//! pruner) passes the start of a UTC day, so the raw rows and every rollup
//! level lose exactly the same days and never disagree about what is left.

use super::rollup::LEVELS;
use crate::store::{Store, StoreError};

/// Deletes up to `limit` raw rows that arrived before `before_ms`, oldest
/// first; returns how many went. Small steps keep each write short, so the
/// ledger writer never waits long behind the pruner.
pub async fn prune_requests(store: &Store, before_ms: i64, limit: u32) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM usage_requests WHERE id IN \
         (SELECT id FROM usage_requests WHERE at_ms < ? ORDER BY at_ms LIMIT ?)",
    )
    .bind(before_ms)
    .bind(i64::from(limit))
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Deletes the rollups (of every level) of periods that start before
/// `before_ms`; returns how many rows went.
pub async fn prune_rollups(store: &Store, before_ms: i64) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for level in LEVELS {
        let delete = format!("DELETE FROM {} WHERE start_ms < ?", level.table);
        let done = sqlx::query(&delete)
            .bind(before_ms)
            .execute(store.pool())
            .await?;
        deleted += done.rows_affected();
    }
    Ok(deleted)
}
