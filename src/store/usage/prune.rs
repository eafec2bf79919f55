//! Deleting ledger data older than a cutoff. The caller (the ledger's
//! pruner) passes the start of a UTC day, so the raw rows and every rollup
//! level lose exactly the same days and never disagree about what is left.

use super::rollup::LEVELS;
use crate::store::{Store, StoreError, on_pool};

/// Deletes up to `limit` raw rows that arrived before `before_ms`, oldest
/// first; returns how many went. Small steps keep each write short, so the
/// ledger writer never waits long behind the pruner.
pub async fn prune_requests(store: &Store, before_ms: i64, limit: u32) -> Result<u64, StoreError> {
    let sql = "DELETE FROM usage_requests WHERE id IN \
         (SELECT id FROM usage_requests WHERE at_ms < $1 ORDER BY at_ms LIMIT $2)";
    Ok(on_pool!(store, |pool, Db| {
        sqlx::query(sql)
            .bind(before_ms)
            .bind(i64::from(limit))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })?)
}

/// Deletes the rollups (of every level) of periods that start before
/// `before_ms`; returns how many rows went.
pub async fn prune_rollups(store: &Store, before_ms: i64) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for level in LEVELS {
        let delete = format!("DELETE FROM {} WHERE start_ms < $1", level.table);
        deleted += on_pool!(store, |pool, Db| {
            sqlx::query(&delete)
                .bind(before_ms)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
    }
    Ok(deleted)
}
