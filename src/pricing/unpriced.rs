//! The models an upstream answered for that keygate had no price for, so
//! an operator sees what to add to the price file (`GET /api/models`, the
//! pool status views) and the log warns once per model.
//!
//! Only models an upstream answered with are listed: a client can make up
//! any number of names, but upstreams refuse those. The list is bounded all
//! the same (`MAX_UNPRICED_MODELS`); past it, requests are only counted.
//! Names are scrubbed of anything key-like and cut short before they are
//! kept, since they come from an upstream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::PriceTable;
use crate::domain::ProviderKind;
use crate::scrub::Scrubber;

/// Most distinct unpriced models kept.
pub const MAX_UNPRICED_MODELS: usize = 100;

/// Longest model name kept, in characters.
const MAX_NAME_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnpricedModel {
    pub provider: ProviderKind,
    pub model: String,
    /// Requests answered by this model since keygate started.
    pub requests: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

pub struct UnpricedModels {
    scrubber: Arc<Scrubber>,
    seen: Mutex<BTreeMap<(&'static str, String), UnpricedModel>>,
    /// Unpriced requests whose model found the list full.
    overflow: AtomicU64,
}

impl UnpricedModels {
    pub fn new(scrubber: Arc<Scrubber>) -> Self {
        Self {
            scrubber,
            seen: Mutex::new(BTreeMap::new()),
            overflow: AtomicU64::new(0),
        }
    }

    /// An upstream answered as `model`, which has no price.
    pub fn record(&self, provider: ProviderKind, model: &str, at_ms: i64) {
        let name: String = self
            .scrubber
            .scrub(model)
            .chars()
            .take(MAX_NAME_CHARS)
            .collect();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = seen.get_mut(&(provider.as_str(), name.clone())) {
            entry.requests += 1;
            entry.last_seen_ms = at_ms;
            return;
        }
        if seen.len() >= MAX_UNPRICED_MODELS {
            drop(seen);
            if self.overflow.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    "more than {MAX_UNPRICED_MODELS} models answered without a price: further ones \
                     are counted in keygate_unpriced_requests_total but not listed"
                );
            }
            return;
        }
        seen.insert(
            (provider.as_str(), name.clone()),
            UnpricedModel {
                provider,
                model: name.clone(),
                requests: 1,
                first_seen_ms: at_ms,
                last_seen_ms: at_ms,
            },
        );
        drop(seen);
        tracing::warn!(
            %provider,
            model = %name,
            "no price for this model: its requests are served with \"cost\": null and flagged \
             unpriced in the ledger; add it to PRICES_FILE"
        );
    }

    /// The models seen without a price that `table` still does not price
    /// (a reloaded price file may have priced some since).
    pub fn list(&self, table: &PriceTable) -> Vec<UnpricedModel> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.values()
            .filter(|entry| table.find(entry.provider, &entry.model).is_none())
            .cloned()
            .collect()
    }

    /// Unpriced requests not listed because the list was full.
    pub fn overflow(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_bounded_and_each_model_counted() {
        let unpriced = UnpricedModels::new(Arc::new(Scrubber::new()));
        for n in 0..MAX_UNPRICED_MODELS + 5 {
            unpriced.record(ProviderKind::Anthropic, &format!("made-up-{n}"), 1);
        }
        unpriced.record(ProviderKind::Anthropic, "made-up-3", 7);
        let list = unpriced.list(&PriceTable::built_in());
        assert_eq!(list.len(), MAX_UNPRICED_MODELS);
        let third = list.iter().find(|m| m.model == "made-up-3").unwrap();
        assert_eq!((third.requests, third.last_seen_ms), (2, 7));
        assert_eq!(unpriced.overflow(), 5);
    }

    #[test]
    fn names_are_scrubbed_and_cut_short() {
        let unpriced = UnpricedModels::new(Arc::new(Scrubber::new()));
        unpriced.record(
            ProviderKind::OpenAI,
            &format!("sk-proj-abcdefghijklmnop{}", "x".repeat(500)),
            1,
        );
        let list = unpriced.list(&PriceTable::built_in());
        assert!(!list[0].model.contains("abcdefgh"), "{}", list[0].model);
        assert!(list[0].model.chars().count() <= MAX_NAME_CHARS);
    }

    #[test]
    fn a_model_priced_since_is_no_longer_listed() {
        let unpriced = UnpricedModels::new(Arc::new(Scrubber::new()));
        unpriced.record(ProviderKind::Anthropic, "claude-opus-4-8", 1);
        unpriced.record(ProviderKind::Anthropic, "claude-nova-1", 1);
        let listed: Vec<String> = unpriced
            .list(&PriceTable::built_in())
            .into_iter()
            .map(|m| m.model)
            .collect();
        assert_eq!(listed, ["claude-nova-1"]);
    }
}
