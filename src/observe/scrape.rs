//! Series read at scrape time: each key's state, cooldown and rate-limit
//! headroom from its pool, and the ledger's and alerts' counters. Reading them when
//! Prometheus asks keeps the request path free of gauge updates, and a key
//! removed from its pool simply stops being reported. Names get the
//! registry's `keygate_` prefix.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::alerts::AlertCounters;
use crate::keypool::{KeyPools, PoolStatus};
use crate::ledger::LedgerCounters;

/// Every state a key can be in, as `KeyStatus::state` names them.
const KEY_STATES: [&str; 5] = ["active", "cooling_down", "ejected", "invalid", "disabled"];

/// Owned strings: the derive takes no borrowed labels, and this runs per
/// scrape, not per request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyStateLabels {
    provider: &'static str,
    key_id: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    provider: &'static str,
    key_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    provider: &'static str,
    key_id: String,
    window: &'static str,
}

/// Counters kept elsewhere that `/metrics` reports as they stand.
pub struct ScrapedCounters {
    pub ledger: Arc<LedgerCounters>,
    pub alerts: Arc<AlertCounters>,
    /// Whether this replica is connected to the cluster's Redis (`None`:
    /// no `REDIS_URL`, and no series).
    pub redis_connected: Option<Arc<AtomicBool>>,
}

pub struct PoolCollector {
    pools: KeyPools,
    counters: ScrapedCounters,
}

impl PoolCollector {
    pub fn new(pools: KeyPools, counters: ScrapedCounters) -> Self {
        Self { pools, counters }
    }
}

impl fmt::Debug for PoolCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PoolCollector")
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        // One short lock per pool; a pool that cannot answer is skipped.
        let statuses: Vec<PoolStatus> = self
            .pools
            .iter()
            .filter_map(|pool| pool.status().ok())
            .collect();
        let mut family = encoder.encode_descriptor(
            "key_state",
            "1 for the state each key is in now, 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        for status in &statuses {
            for key in &status.keys {
                for state in KEY_STATES {
                    let labels = KeyStateLabels {
                        provider: status.provider.as_str(),
                        key_id: key.id.to_string(),
                        state,
                    };
                    ConstGauge::new(i64::from(key.state == state))
                        .encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "key_cooldown_seconds",
            "Seconds until a cooling key is used again (0 when it is not cooling)",
            None,
            MetricType::Gauge,
        )?;
        for status in &statuses {
            for key in &status.keys {
                let labels = KeyLabels {
                    provider: status.provider.as_str(),
                    key_id: key.id.to_string(),
                };
                ConstGauge::new(key.cooldown_remaining_secs as i64)
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "key_ratelimit_remaining",
            "What the upstream's last rate-limit headers said is left, per window",
            None,
            MetricType::Gauge,
        )?;
        for status in &statuses {
            for key in &status.keys {
                let Some(limits) = &key.rate_limits else {
                    continue;
                };
                for (window, value) in [
                    ("requests", limits.requests),
                    ("tokens", limits.tokens),
                    ("input_tokens", limits.input_tokens),
                    ("output_tokens", limits.output_tokens),
                    ("month", limits.month),
                ] {
                    if let Some(value) = value {
                        let labels = WindowLabels {
                            provider: status.provider.as_str(),
                            key_id: key.id.to_string(),
                            window,
                        };
                        ConstGauge::new(value.remaining as i64)
                            .encode(family.encode_family(&labels)?)?;
                    }
                }
            }
        }
        for (name, help, value) in [
            (
                "ledger_rows_written",
                "Usage-ledger rows written to the database",
                self.counters.ledger.written(),
            ),
            (
                "ledger_rows_dropped",
                "Usage-ledger rows dropped because the writer fell behind or failed",
                self.counters.ledger.dropped(),
            ),
            (
                "alerts_sent",
                "Alert deliveries that reached their channel (one alert to one channel)",
                self.counters.alerts.sent(),
            ),
            (
                "alerts_failed",
                "Alert deliveries that failed after every retry",
                self.counters.alerts.failed(),
            ),
            (
                "alerts_dropped",
                "Alerts dropped because a channel's queue was full",
                self.counters.alerts.dropped(),
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        if let Some(connected) = &self.counters.redis_connected {
            let metric = encoder.encode_descriptor(
                "redis_connected",
                "1 while this replica is connected to the cluster's Redis, 0 while it serves on its own view",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(i64::from(connected.load(Ordering::Relaxed))).encode(metric)?;
        }
        Ok(())
    }
}
