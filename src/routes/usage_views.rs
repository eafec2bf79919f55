//! The shapes the usage routes answer with, in one place. Money is given
//! twice: `cost_usd` for reading and `cost_nanos` (USD × 10⁻⁹), the exact
//! integer it comes from. Latency percentiles are approximate: each is the
//! middle of the ~5%-wide bucket holding the exact value (within ~2.5%).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ledger::query::{UsageQuery, rfc3339_ms, rfc3339_secs};
use crate::pricing;
use crate::store::usage::{DimValue, Dimension, GroupTotals, LedgerEntry, TokenTotals};

/// `GET /api/usage`
#[derive(Debug, Serialize)]
pub struct UsageReport {
    pub from: String,
    pub to: String,
    pub group_by: Vec<&'static str>,
    /// In order of the first grouping, then the second; groups without
    /// requests are left out. Without grouping, exactly one total.
    pub groups: Vec<GroupView>,
}

impl UsageReport {
    pub fn new(
        query: &UsageQuery,
        groups: Vec<(Vec<DimValue>, GroupTotals)>,
        savings: &BTreeMap<Vec<DimValue>, u64>,
    ) -> Self {
        let mut views: Vec<GroupView> = groups
            .into_iter()
            .map(|(values, totals)| {
                let saved = savings.get(&values).copied().unwrap_or(0);
                GroupView::new(&query.group_by, values, &totals, saved)
            })
            .collect();
        if query.group_by.is_empty() && views.is_empty() {
            views.push(GroupView::new(&[], Vec::new(), &GroupTotals::default(), 0));
        }
        Self {
            from: rfc3339_ms(query.filter.from_ms),
            to: rfc3339_ms(query.filter.to_ms),
            group_by: query.group_by.iter().map(|d| d.as_str()).collect(),
            groups: views,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GroupView {
    /// The group's value for each grouping (`{}` for the one total).
    pub group: BTreeMap<&'static str, GroupValue>,
    pub requests: u64,
    pub successes: u64,
    /// Requests that did not succeed, by error class.
    pub errors: BTreeMap<String, u64>,
    pub tokens: TokenView,
    pub cost_usd: f64,
    pub cost_nanos: u64,
    /// What prompt caching saved: the cache reads priced as plain input,
    /// minus their price as reads.
    pub cache_saved_usd: f64,
    pub cache_saved_nanos: u64,
    /// `null` when the group has no requests.
    pub latency_ms: Option<LatencyView>,
}

impl GroupView {
    fn new(
        group_by: &[Dimension],
        values: Vec<DimValue>,
        totals: &GroupTotals,
        cache_saved_nanos: u64,
    ) -> Self {
        let group = group_by
            .iter()
            .zip(values)
            .map(|(dimension, value)| (dimension.as_str(), GroupValue::new(*dimension, value)))
            .collect();
        let quantile_ms = |q| totals.latency.quantile_us(q).map(rounded_ms);
        Self {
            group,
            requests: totals.requests,
            successes: totals.successes,
            errors: totals.errors.clone(),
            tokens: TokenView::from(totals.tokens),
            cost_usd: pricing::usd(totals.cost_nanos),
            cost_nanos: totals.cost_nanos,
            cache_saved_usd: pricing::usd(cache_saved_nanos),
            cache_saved_nanos,
            latency_ms: quantile_ms(0.5)
                .zip(quantile_ms(0.95))
                .map(|(p50, p95)| LatencyView { p50, p95 }),
        }
    }
}

/// A grouping's value: a name (`null` when the requests had none, e.g. a
/// key for requests refused before one was chosen), a status, or the UTC
/// start of an hour or a day.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum GroupValue {
    Name(Option<String>),
    Status(i64),
    Time(String),
}

impl GroupValue {
    fn new(dimension: Dimension, value: DimValue) -> Self {
        match (dimension, value) {
            (_, DimValue::Name(name)) => GroupValue::Name(name),
            (Dimension::Hour | Dimension::Day, DimValue::Number(ms)) => {
                GroupValue::Time(rfc3339_secs(ms))
            }
            (_, DimValue::Number(n)) => GroupValue::Status(n),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TokenView {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    /// Of `output`, the tokens spent reasoning (already in `output` and
    /// its cost, not added to them).
    pub reasoning: u64,
}

impl From<TokenTotals> for TokenView {
    fn from(tokens: TokenTotals) -> Self {
        Self {
            input: tokens.input,
            output: tokens.output,
            cache_read: tokens.cache_read,
            cache_write: tokens.cache_write,
            reasoning: tokens.reasoning,
        }
    }
}

/// Approximate percentiles (see the module docs), in milliseconds.
#[derive(Debug, Serialize)]
pub struct LatencyView {
    pub p50: f64,
    pub p95: f64,
}

fn rounded_ms(us: f64) -> f64 {
    (us / 10.0).round() / 100.0
}

/// `GET /api/usage/requests`
#[derive(Debug, Serialize)]
pub struct RequestPage {
    /// Newest first.
    pub requests: Vec<RequestView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One recorded request.
#[derive(Debug, Serialize)]
pub struct RequestView {
    /// When it arrived.
    pub at: String,
    pub request_id: String,
    pub route: String,
    pub provider: Option<String>,
    pub model_requested: Option<String>,
    pub model_answered: Option<String>,
    pub key_id: Option<String>,
    pub attempts: i64,
    pub keys_tried: Vec<String>,
    pub status: i64,
    pub error_class: Option<String>,
    pub tokens: TokenView,
    pub cost_usd: f64,
    pub cost_nanos: u64,
    /// Tokens of a model keygate had no price for: the cost above is 0
    /// because it is unknown.
    pub unpriced: bool,
    /// Exact, from arrival to the answer's last byte.
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    /// The fingerprint of the client's gateway key.
    pub client_key: Option<String>,
    /// The cache scope of `key_id` when the request was made.
    pub cache_scope: Option<String>,
}

impl RequestView {
    pub fn new(entry: LedgerEntry) -> Self {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Self {
            at: rfc3339_ms(entry.at_ms),
            request_id: entry.request_id,
            route: entry.route,
            provider: entry.provider,
            model_requested: entry.model_requested,
            model_answered: entry.model_answered,
            key_id: entry.key_id,
            attempts: entry.attempts,
            keys_tried: entry.keys_tried,
            status: entry.status,
            error_class: entry.error_class,
            tokens: TokenView {
                input: count(entry.input_tokens),
                output: count(entry.output_tokens),
                cache_read: count(entry.cache_read_tokens),
                cache_write: count(entry.cache_write_tokens),
                reasoning: count(entry.reasoning_tokens),
            },
            cost_usd: pricing::usd(count(entry.cost_nanos)),
            cost_nanos: count(entry.cost_nanos),
            unpriced: entry.unpriced,
            latency_ms: entry.latency_us as f64 / 1000.0,
            ttft_ms: entry.ttft_us.map(|us| us as f64 / 1000.0),
            client_key: entry.client_key,
            cache_scope: entry.cache_scope,
        }
    }
}
