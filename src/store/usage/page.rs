//! Raw ledger rows, newest first, one page at a time. Rows are ordered by
//! arrival (`at_ms`), ties broken by `id`, and a page starts after the
//! position of the previous page's last row: a total order over rows that
//! never change, so paging neither repeats nor skips a row. Each page
//! reads the blocks (`block`) that can hold its rows, newest first.

use futures::TryStreamExt;

use super::UsageFilter;
use super::block::Unpacked;
use crate::store::{Store, StoreError, on_pool};

/// Where a page ends: the last row it gave. Ordered by arrival, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PagePosition {
    pub at_ms: i64,
    pub id: i64,
}

/// One stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub id: i64,
    pub at_ms: i64,
    pub request_id: String,
    pub route: String,
    pub provider: Option<String>,
    pub model_requested: Option<String>,
    pub model_answered: Option<String>,
    pub key_id: Option<String>,
    pub attempts: i64,
    /// Key ids in the order they were tried.
    pub keys_tried: Vec<String>,
    pub status: i64,
    pub error_class: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    /// Of the output tokens, those spent reasoning.
    pub reasoning_tokens: i64,
    pub cost_nanos: i64,
    pub latency_us: i64,
    pub ttft_us: Option<i64>,
    pub client_key: Option<String>,
    /// Tokens of a model keygate had no price for: the cost is unknown.
    pub unpriced: bool,
    /// The answering key's cache scope when the request was made.
    pub cache_scope: Option<String>,
}

impl LedgerEntry {
    pub fn position(&self) -> PagePosition {
        PagePosition {
            at_ms: self.at_ms,
            id: self.id,
        }
    }
}

/// Up to `limit` rows matching `filter`, newest first, after `after`.
///
/// Blocks are read newest-ending first. Rows that arrived long before they
/// were written (a long stream) sit in later blocks than their neighbours
/// in time, so the scan goes on until the next block ends before the
/// oldest row kept: no block it skips can hold a row of the page.
pub async fn page(
    store: &Store,
    filter: &UsageFilter,
    after: Option<PagePosition>,
    limit: u32,
) -> Result<Vec<LedgerEntry>, StoreError> {
    const BLOCKS: &str = "SELECT id, last_at_ms, format, rows FROM usage_blocks \
         WHERE last_at_ms >= $1 AND first_at_ms <= $2 ORDER BY last_at_ms DESC";
    let limit = limit as usize;
    if limit == 0 {
        return Ok(Vec::new());
    }
    // The latest arrival a row of the page can have.
    let newest = after.map_or(filter.to_ms.saturating_sub(1), |a| {
        a.at_ms.min(filter.to_ms.saturating_sub(1))
    });
    let mut found: Vec<LedgerEntry> = Vec::new();
    on_pool!(store, |pool, Db| {
        let mut blocks = sqlx::query_as::<_, (i64, i64, i64, Vec<u8>)>(BLOCKS)
            .bind(filter.from_ms)
            .bind(newest)
            .fetch(pool);
        while let Some((block_id, last_at_ms, format, bytes)) = blocks.try_next().await? {
            if found.len() >= limit && found.last().is_some_and(|oldest| last_at_ms < oldest.at_ms)
            {
                break;
            }
            let Some(rows) = Unpacked::read_or_skip(block_id, format, &bytes) else {
                continue;
            };
            for (id, row) in rows.rows(block_id).rev() {
                let position = PagePosition {
                    at_ms: row.at_ms,
                    id,
                };
                if row.at_ms < filter.from_ms
                    || row.at_ms > newest
                    || after.is_some_and(|after| position >= after)
                    || !filter.matches(row)
                {
                    continue;
                }
                found.push(row.to_entry(id));
            }
            if found.len() >= limit {
                keep_newest(&mut found, limit);
            }
        }
        Ok::<_, sqlx::Error>(())
    })?;
    keep_newest(&mut found, limit);
    Ok(found)
}

/// Sorts `found` newest first and keeps the first `limit`.
fn keep_newest(found: &mut Vec<LedgerEntry>, limit: usize) {
    found.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.position()));
    found.truncate(limit);
}
