//! Prometheus metrics, built with `prometheus-client` (the Prometheus
//! project's own Rust client) and served by `GET /metrics`.
//!
//! Two kinds of series:
//! - counted as things happen: requests, attempts, latency and time to
//!   first token, tokens, cost, rotations and the prompt cache's reads,
//!   writes and hit rate per key and scope (`cache_metrics`), from each finished
//!   `UsageRow` and each attempt's outcome (`Metrics::request_finished`,
//!   `Metrics::attempt`);
//! - read at scrape time (`scrape::PoolCollector`): each key's state,
//!   cooldown and rate-limit headroom, and the ledger's written and
//!   dropped rows, so they are never stale and cost the request path
//!   nothing.
//!
//! Labels carry key ids, never key material. The model label is bounded
//! (`ModelLabels`), so a client sending made-up model names cannot grow
//! the number of series without end.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::cache_metrics::CacheMetrics;
use crate::domain::{ProviderKind, UsageRow};
use crate::pricing;

/// Most distinct model names reported; the rest are `other`.
pub const MAX_MODEL_LABELS: usize = 100;

/// Seconds; answers take from milliseconds to minutes (long streams).
const LATENCY_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    provider: &'static str,
    model: String,
    route: &'static str,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    provider: &'static str,
    key_id: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    provider: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: &'static str,
    model: String,
    key_id: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CostLabels {
    provider: &'static str,
    model: String,
    key_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabelSet {
    provider: &'static str,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
}

type Histograms = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// What an upstream attempt did, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Success,
    RateLimited,
    /// The key was refused (401/402) or lacks the model.
    Invalid,
    ProviderFault,
    ClientFault,
    Timeout,
    Cancelled,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::RateLimited => "rate_limited",
            AttemptOutcome::Invalid => "invalid",
            AttemptOutcome::ProviderFault => "provider_fault",
            AttemptOutcome::ClientFault => "client_fault",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    latency: Histograms,
    first_token: Histograms,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<CostLabels, Counter<f64, AtomicU64>>,
    rotations: Family<ProviderLabels, Counter>,
    unpriced: Family<ModelLabelSet, Counter>,
    cache: CacheMetrics,
    models: ModelLabels,
}

impl Metrics {
    /// The counted series, registered in a registry of their own (not a
    /// process-wide one, so two gateways in one process never mix).
    /// `collector` adds the series read at scrape time.
    pub fn new(collector: Option<Box<dyn prometheus_client::collector::Collector>>) -> Self {
        let mut registry = Registry::with_prefix("keygate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Client requests by provider, model, route and status class",
            requests.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "upstream_attempts",
            "Upstream attempts by provider, key id and outcome",
            attempts.clone(),
        );
        let latency = Histograms::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "From a request's arrival to the last byte of its answer",
            latency.clone(),
        );
        let first_token = Histograms::new_with_constructor(latency_histogram);
        registry.register(
            "time_to_first_token_seconds",
            "From a streamed request's arrival to its first content",
            first_token.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "tokens",
            "Tokens by provider, model, key id and kind (input, output, cache_read, cache_write, \
             reasoning: a part of output)",
            tokens.clone(),
        );
        let cost = Family::<CostLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "cost_usd",
            "List-price cost in US dollars by provider, model and key id",
            cost.clone(),
        );
        let rotations = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "rotations",
            "Times a request moved to another key after a failed attempt",
            rotations.clone(),
        );
        let unpriced = Family::<ModelLabelSet, Counter>::default();
        registry.register(
            "unpriced_requests",
            "Requests that used tokens of a model keygate has no price for (cost unknown)",
            unpriced.clone(),
        );
        let cache = CacheMetrics::register(&mut registry);
        if let Some(collector) = collector {
            registry.register_collector(collector);
        }
        Self {
            registry,
            requests,
            attempts,
            latency,
            first_token,
            tokens,
            cost,
            rotations,
            unpriced,
            cache,
            models: ModelLabels::default(),
        }
    }

    /// Counts a finished request. `requested_priced`: keygate has a price
    /// for the model the client asked for (so its name may be a label).
    pub fn request_finished(&self, row: &UsageRow, requested_priced: bool) {
        let provider = row.provider.map_or("none", ProviderKind::as_str);
        let model = self.models.label(row, requested_priced);
        if row.unpriced {
            self.unpriced
                .get_or_create(&ModelLabelSet {
                    provider,
                    model: model.clone(),
                })
                .inc();
        }
        self.requests
            .get_or_create(&RequestLabels {
                provider,
                model: model.clone(),
                route: row.route,
                status_class: status_class(row.status),
            })
            .inc();
        let route = RouteLabels {
            provider,
            route: row.route,
        };
        self.latency
            .get_or_create(&route)
            .observe(row.latency_us as f64 / 1e6);
        if let Some(ttft) = row.ttft_us {
            self.first_token
                .get_or_create(&route)
                .observe(ttft as f64 / 1e6);
        }
        let rotations = row.keys_tried.windows(2).filter(|w| w[0] != w[1]).count();
        if rotations > 0 {
            self.rotations
                .get_or_create(&ProviderLabels { provider })
                .inc_by(rotations as u64);
        }
        let Some(key_id) = &row.key_id else {
            return;
        };
        self.cache.request_finished(provider, key_id, row);
        let usage = &row.usage;
        for (kind, count) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_input_tokens),
            ("cache_write", usage.cache_creation_input_tokens),
            ("reasoning", usage.reasoning_tokens),
        ] {
            if count > 0 {
                self.tokens
                    .get_or_create(&TokenLabels {
                        provider,
                        model: model.clone(),
                        key_id: key_id.clone(),
                        kind,
                    })
                    .inc_by(count);
            }
        }
        if row.cost_nanos > 0 {
            self.cost
                .get_or_create(&CostLabels {
                    provider,
                    model,
                    key_id: key_id.clone(),
                })
                .inc_by(pricing::usd(row.cost_nanos));
        }
    }

    /// Counts one upstream attempt.
    pub fn attempt(&self, provider: ProviderKind, key_id: &str, outcome: AttemptOutcome) {
        self.attempts
            .get_or_create(&AttemptLabels {
                provider: provider.as_str(),
                key_id: key_id.to_string(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Every series in the text exposition format (OpenMetrics 1.0, which
    /// Prometheus reads natively).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The model label of a request: the model that answered, else the one
/// asked for. Names enter the label set only if an upstream answered with
/// them or keygate has a price for them (so made-up names from clients do
/// not take the places of real ones), and only the first
/// `MAX_MODEL_LABELS` do; everything else is `other`.
#[derive(Default)]
struct ModelLabels {
    seen: Mutex<HashSet<String>>,
}

impl ModelLabels {
    fn label(&self, row: &UsageRow, requested_priced: bool) -> String {
        let (name, trusted) = match (&row.model_answered, &row.model_requested) {
            (Some(answered), _) => (answered, true),
            (None, Some(requested)) => (requested, requested_priced),
            (None, None) => return "none".to_string(),
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(name.as_str()) {
            return name.clone();
        }
        if trusted && seen.len() < MAX_MODEL_LABELS {
            seen.insert(name.clone());
            return name.clone();
        }
        "other".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(answered: Option<&str>, requested: Option<&str>) -> UsageRow {
        UsageRow {
            at_ms: 0,
            request_id: String::new(),
            route: "/v1/messages",
            provider: Some(ProviderKind::Anthropic),
            model_requested: requested.map(str::to_string),
            model_answered: answered.map(str::to_string),
            key_id: Some("k1".into()),
            attempts: 1,
            keys_tried: vec!["k1".into()],
            status: 200,
            error_class: None,
            usage: Default::default(),
            cost_nanos: 0,
            latency_us: 1000,
            ttft_us: None,
            client_key: None,
            unpriced: false,
            cache_scope: None,
        }
    }

    #[test]
    fn model_labels_stop_at_the_bound_and_made_up_names_are_other() {
        let labels = ModelLabels::default();
        for n in 0..MAX_MODEL_LABELS {
            let name = format!("model-{n}");
            assert_eq!(labels.label(&row(Some(&name), None), false), name);
        }
        assert_eq!(
            labels.label(&row(Some("one-too-many"), None), false),
            "other"
        );
        assert_eq!(labels.label(&row(Some("model-7"), None), false), "model-7");
        let fresh = ModelLabels::default();
        assert_eq!(
            fresh.label(&row(None, Some("made-up-by-a-client")), false),
            "other"
        );
        assert_eq!(
            fresh.label(&row(None, Some("claude-sonnet-4-20250514")), true),
            "claude-sonnet-4-20250514"
        );
    }

    #[test]
    fn an_unpriced_request_is_counted_by_provider_and_model() {
        let metrics = Metrics::new(None);
        let mut unpriced = row(Some("claude-nova-1"), Some("claude-nova-1"));
        unpriced.usage.output_tokens = 10;
        unpriced.unpriced = true;
        metrics.request_finished(&unpriced, false);
        metrics.request_finished(&row(Some("claude-sonnet-4-20250514"), None), false);
        let text = metrics.render().unwrap();
        let line =
            r#"keygate_unpriced_requests_total{provider="anthropic",model="claude-nova-1"} 1"#;
        assert!(text.contains(line), "missing {line} in\n{text}");
        assert_eq!(text.matches("keygate_unpriced_requests_total{").count(), 1);
    }

    #[test]
    fn a_request_is_counted_with_its_tokens_cost_and_rotations() {
        let metrics = Metrics::new(None);
        let mut done = row(Some("claude-sonnet-4-20250514"), None);
        done.keys_tried = vec!["k0".into(), "k1".into()];
        done.usage.input_tokens = 25;
        done.usage.output_tokens = 86;
        done.cost_nanos = 1_365_000;
        metrics.request_finished(&done, false);
        metrics.attempt(ProviderKind::Anthropic, "k0", AttemptOutcome::RateLimited);
        let text = metrics.render().unwrap();
        for line in [
            r#"keygate_requests_total{provider="anthropic",model="claude-sonnet-4-20250514",route="/v1/messages",status_class="2xx"} 1"#,
            r#"keygate_tokens_total{provider="anthropic",model="claude-sonnet-4-20250514",key_id="k1",kind="output"} 86"#,
            r#"keygate_cost_usd_total{provider="anthropic",model="claude-sonnet-4-20250514",key_id="k1"} 0.001365"#,
            r#"keygate_rotations_total{provider="anthropic"} 1"#,
            r#"keygate_upstream_attempts_total{provider="anthropic",key_id="k0",outcome="rate_limited"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
