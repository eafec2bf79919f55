//! `LatencyHistogram`: latencies counted in log-scale buckets, each about
//! 5% wider than the one below, kept sparse. The usage ledger stores one
//! per hourly rollup row and a bucket number per request, so percentiles
//! over any range are computed by adding counts, never by reading every
//! latency.
//!
//! Invariant: the bucket scheme is part of the stored data (the ledger's
//! `latency_bucket` and `latency_hist` columns). Changing `GROWTH` needs a
//! migration that recomputes them.
//!
//! A percentile is answered as the middle (geometric mean of the bounds) of
//! the bucket that holds the exact nearest-rank percentile, so it is within
//! about 2.5% of the exact value (half a bucket).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Each bucket's upper bound is this many times its lower bound.
const GROWTH: f64 = 1.05;

/// A latency bucket: 0 holds 0 µs; bucket `b ≥ 1` holds
/// `[GROWTH^(b-1), GROWTH^b)` µs. Every `u64` of microseconds fits under
/// bucket 910.
pub type Bucket = u16;

/// The bucket of a latency in microseconds.
pub fn bucket_of(latency_us: u64) -> Bucket {
    if latency_us == 0 {
        return 0;
    }
    // ln(u64::MAX) / ln(1.05) ≈ 909.3, so the cast never saturates.
    1 + ((latency_us as f64).ln() / GROWTH.ln()).floor() as Bucket
}

/// The value a bucket stands for, in microseconds: the geometric middle of
/// its bounds (off by at most half a bucket, ~2.5%, from any value in it).
pub fn bucket_middle_us(bucket: Bucket) -> f64 {
    if bucket == 0 {
        return 0.0;
    }
    GROWTH.powf(f64::from(bucket) - 0.5)
}

/// Counts per bucket; only non-empty buckets are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: BTreeMap<Bucket, u64>,
}

impl LatencyHistogram {
    pub fn record(&mut self, latency_us: u64) {
        self.add(bucket_of(latency_us), 1);
    }

    pub fn add(&mut self, bucket: Bucket, count: u64) {
        if count > 0 {
            *self.counts.entry(bucket).or_default() += count;
        }
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (&bucket, &count) in &other.counts {
            self.add(bucket, count);
        }
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The nearest-rank `quantile` (0.5 for p50) in microseconds, as its
    /// bucket's middle; `None` when empty.
    pub fn quantile_us(&self, quantile: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // Nearest rank: the smallest value with at least `quantile` of all
        // values at or below it (rank 1 at the least).
        let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (&bucket, &count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(bucket_middle_us(bucket));
            }
        }
        None
    }

    /// The stored form: `bucket:count` pairs by bucket, comma-separated
    /// (`"61:2,64:1"`); text, so any SQL database holds it as is.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(self.counts.len() * 7);
        for (i, (bucket, count)) in self.counts.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            // Writing to a String cannot fail.
            let _ = write!(text, "{bucket}:{count}");
        }
        text
    }

    /// Adds the counts of a stored form. Returns false (having added the
    /// pairs before it) if `text` is not one `encode` wrote.
    pub fn add_encoded(&mut self, text: &str) -> bool {
        if text.is_empty() {
            return true;
        }
        for pair in text.split(',') {
            let parsed = pair
                .split_once(':')
                .and_then(|(b, c)| Some((b.parse().ok()?, c.parse().ok()?)));
            let Some((bucket, count)) = parsed else {
                return false;
            };
            self.add(bucket, count);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_latency_is_within_half_a_bucket_of_its_buckets_middle() {
        for us in [1, 2, 7, 999, 1_000, 1_001, 45_678, 812_345, 3_600_000_000] {
            let middle = bucket_middle_us(bucket_of(us));
            let error = (middle - us as f64).abs() / us as f64;
            assert!(error < 0.025, "{us} µs → {middle} ({error})");
        }
        assert_eq!(bucket_of(0), 0);
        assert!(bucket_of(u64::MAX) < 911);
    }

    #[test]
    fn buckets_grow_with_latency() {
        let buckets: Vec<Bucket> = (0..200_000).step_by(37).map(bucket_of).collect();
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn quantiles_are_nearest_rank_over_buckets() {
        let mut histogram = LatencyHistogram::default();
        // 1..=100 ms: p50 is 50 ms, p95 is 95 ms.
        for ms in 1..=100u64 {
            histogram.record(ms * 1000);
        }
        let p50 = histogram.quantile_us(0.5).unwrap();
        let p95 = histogram.quantile_us(0.95).unwrap();
        assert_eq!(p50, bucket_middle_us(bucket_of(50_000)));
        assert_eq!(p95, bucket_middle_us(bucket_of(95_000)));
        assert_eq!(LatencyHistogram::default().quantile_us(0.5), None);
    }

    #[test]
    fn the_stored_form_round_trips_and_merges() {
        let mut a = LatencyHistogram::default();
        for us in [10, 10, 5_000, 70_000] {
            a.record(us);
        }
        let text = a.encode();
        let mut b = LatencyHistogram::default();
        assert!(b.add_encoded(&text));
        assert_eq!(a, b);
        assert!(b.add_encoded(&text));
        assert_eq!(b.count(), 8);
        let mut merged = a.clone();
        merged.merge(&a);
        assert_eq!(merged, b);
        assert!(!LatencyHistogram::default().add_encoded("12:x"));
        assert!(LatencyHistogram::default().add_encoded(""));
    }
}
