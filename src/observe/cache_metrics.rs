//! The prompt cache's series: cache reads and writes per key and per cache
//! scope, and each scope's hit rate, so the effect of key affinity is seen
//! where it is paid for. A request that read from a cache is a hit; one
//! that only wrote one is a miss; one that did neither was not cacheable
//! and is not counted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::domain::UsageRow;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    provider: &'static str,
    scope: String,
    key_id: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    provider: &'static str,
    scope: String,
}

pub(super) struct CacheMetrics {
    /// Tokens by kind (`cache_read`, `cache_write`).
    tokens: Family<CacheLabels, Counter>,
    /// Requests by kind (`hit`, `miss`).
    requests: Family<CacheLabels, Counter>,
    hit_ratio: Family<ScopeLabels, Gauge<f64, AtomicU64>>,
    /// Hits and misses per scope, for the ratio.
    tallies: Mutex<HashMap<ScopeLabels, [u64; 2]>>,
}

impl CacheMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let tokens = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_tokens",
            "Prompt-cache tokens by provider, cache scope, key id and kind (cache_read, cache_write)",
            tokens.clone(),
        );
        let requests = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_requests",
            "Requests that read a prompt cache (kind hit) or only wrote one (kind miss), \
             by provider, cache scope and key id",
            requests.clone(),
        );
        let hit_ratio = Family::<ScopeLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "cache_hit_ratio",
            "Share of a cache scope's cacheable requests that read its cache",
            hit_ratio.clone(),
        );
        Self {
            tokens,
            requests,
            hit_ratio,
            tallies: Mutex::default(),
        }
    }

    pub fn request_finished(&self, provider: &'static str, key_id: &str, row: &UsageRow) {
        let usage = &row.usage;
        let (read, written) = (
            usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens,
        );
        if read == 0 && written == 0 {
            return;
        }
        let scope = row
            .cache_scope
            .clone()
            .unwrap_or_else(|| key_id.to_string());
        let labels = |kind| CacheLabels {
            provider,
            scope: scope.clone(),
            key_id: key_id.to_string(),
            kind,
        };
        for (kind, count) in [("cache_read", read), ("cache_write", written)] {
            if count > 0 {
                self.tokens.get_or_create(&labels(kind)).inc_by(count);
            }
        }
        let hit = read > 0;
        self.requests
            .get_or_create(&labels(if hit { "hit" } else { "miss" }))
            .inc();
        let scope = ScopeLabels { provider, scope };
        let ratio = {
            let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
            let tally = tallies.entry(scope.clone()).or_default();
            tally[usize::from(!hit)] += 1;
            tally[0] as f64 / (tally[0] + tally[1]) as f64
        };
        self.hit_ratio.get_or_create(&scope).set(ratio);
    }
}
