//! Raw ledger rows, newest first, one page at a time. Rows are ordered by
//! arrival (`at_ms`), ties broken by `id`, and a page starts after the
//! position of the previous page's last row: a total order over rows that
//! never change, so paging neither repeats nor skips a row, and each page
//! is one range scan of the `(at_ms, id)` index however deep it is.

use sqlx::QueryBuilder;

use super::{RAW_MODEL, UsageFilter, push_filters};
use crate::store::{Store, StoreError, on_pool};

/// Where a page ends: the last row it gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagePosition {
    pub at_ms: i64,
    pub id: i64,
}

/// One stored row, as `usage_requests` holds it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
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
    /// A JSON array of key ids.
    pub keys_tried: String,
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
pub async fn page(
    store: &Store,
    filter: &UsageFilter,
    after: Option<PagePosition>,
    limit: u32,
) -> Result<Vec<LedgerEntry>, StoreError> {
    const COLUMNS: &str = "SELECT id, at_ms, request_id, route, provider, model_requested, \
         model_answered, key_id, attempts, keys_tried, status, error_class, input_tokens, \
         output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, \
         latency_us, ttft_us, client_key, cache_scope, unpriced FROM usage_requests \
         WHERE at_ms >= ";
    Ok(on_pool!(store, |pool, Db| {
        let mut query = QueryBuilder::<Db>::new(COLUMNS);
        query
            .push_bind(filter.from_ms)
            .push(" AND at_ms < ")
            .push_bind(filter.to_ms);
        if let Some(after) = after {
            // The first condition bounds the index scan; the row value picks
            // the rows after the position within its millisecond.
            query
                .push(" AND at_ms <= ")
                .push_bind(after.at_ms)
                .push(" AND (at_ms, id) < (")
                .push_bind(after.at_ms)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        push_filters(&mut query, filter, RAW_MODEL);
        query
            .push(" ORDER BY at_ms DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit));
        query.build_query_as::<LedgerEntry>().fetch_all(pool).await
    })?)
}
