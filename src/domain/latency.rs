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
    // ln(u64::MAX) / ln(1.05) ≈ 909.3, so the cast never saturates. The
    // quotient is never negative (ln ≥ 0 from 1 µs), so the cast's
    // truncation is `floor` (which is a call into libm: 0.8 % of the
    // ledger's instructions).
    1 + ((latency_us as f64).ln() / GROWTH.ln()) as Bucket
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
///
/// A sorted list, not a `BTreeMap`: the ledger adds each request's bucket
/// to one (`store::usage::rollup::BlockSums`), and a binary search of a few
/// dozen buckets in one allocation took about a fifth of the instructions
/// of the map's walk down its nodes (under cachegrind,
/// `benches/ledger_instructions.sh`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// `(bucket, count)` by bucket, each count above zero.
    counts: Vec<(Bucket, u64)>,
}

impl LatencyHistogram {
    pub fn record(&mut self, latency_us: u64) {
        self.add(bucket_of(latency_us), 1);
    }

    pub fn add(&mut self, bucket: Bucket, count: u64) {
        if count == 0 {
            return;
        }
        match self.counts.binary_search_by_key(&bucket, |&(b, _)| b) {
            Ok(at) => {
                let (_, counted) = &mut self.counts[at];
                *counted = counted.saturating_add(count);
            }
            Err(at) => self.counts.insert(at, (bucket, count)),
        }
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for &(bucket, count) in &other.counts {
            self.add(bucket, count);
        }
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|&(_, count)| count).sum()
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
        for &(bucket, count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(bucket_middle_us(bucket));
            }
        }
        None
    }

    /// The stored form: `bucket:count` pairs by bucket, comma-separated
    /// (`"61:2,64:1"`); text, so any SQL database holds it as is. Numbers
    /// are written with `itoa`: the ledger encodes a histogram per rollup
    /// row it writes, and `write!`'s formatting machinery cost it about
    /// three times as much.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(self.counts.len() * 7);
        let mut digits = itoa::Buffer::new();
        for (i, &(bucket, count)) in self.counts.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(digits.format(bucket));
            text.push(':');
            text.push_str(digits.format(count));
        }
        text
    }

    /// Adds the counts of a stored form. Returns false (having added the
    /// pairs before it) if `text` is not one `encode` wrote. Read byte by
    /// byte: summing a day of rollups parses about 100,000 pairs, and this
    /// is several times quicker than splitting and `str::parse`.
    pub fn add_encoded(&mut self, text: &str) -> bool {
        if text.is_empty() {
            return true;
        }
        for pair in text.as_bytes().split(|&b| b == b',') {
            let Some(colon) = pair.iter().position(|&b| b == b':') else {
                return false;
            };
            let bucket = number(&pair[..colon]).and_then(|b| Bucket::try_from(b).ok());
            let (Some(bucket), Some(count)) = (bucket, number(&pair[colon + 1..])) else {
                return false;
            };
            self.add(bucket, count);
        }
        true
    }
}

/// A decimal number of 1 to 19 digits (never overflowing a u64).
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
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
    fn buckets_are_kept_in_order_whatever_order_they_come_in() {
        let mut histogram = LatencyHistogram::default();
        for (bucket, count) in [(64, 1), (3, 2), (910, 1), (64, 4), (0, 1), (3, 0), (7, 1)] {
            histogram.add(bucket, count);
        }
        assert_eq!(histogram.encode(), "0:1,3:2,7:1,64:5,910:1");
        assert_eq!(histogram.count(), 10);
        let mut other = LatencyHistogram::default();
        assert!(other.add_encoded("910:1,0:1,64:5,7:1,3:2"));
        assert_eq!(other, histogram);
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
        for bad in [
            "12:x",
            "12",
            ":3",
            "3:",
            "1:2,,3:4",
            "99999:1",
            "1:99999999999999999999",
        ] {
            assert!(!LatencyHistogram::default().add_encoded(bad), "{bad}");
        }
        assert!(LatencyHistogram::default().add_encoded(""));
    }
}
