//! Deleting ledger data older than a cutoff. The caller (the ledger's
//! pruner) passes the start of an hour, so the raw rows and the rollups
//! lose exactly the same hours and never disagree about what is left.

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

/// Deletes the rollups of hours that start before `before_ms`.
pub async fn prune_rollups(store: &Store, before_ms: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM usage_hourly WHERE hour_ms < ?")
        .bind(before_ms)
        .execute(store.pool())
        .await?;
    Ok(done.rows_affected())
}
