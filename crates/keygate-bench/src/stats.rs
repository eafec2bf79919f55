//! Pure arithmetic of the report: medians of repeated runs, differences
//! against the direct path, ratios, and the targets with their
//! PASS/MISS verdicts. No I/O, so every rule here is unit-tested.

use serde::Serialize;

/// The median of `values` (the mean of the middle two for an even count);
/// `None` when there are no values. NaNs sort last and are not special.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// `part / whole`, or `None` when `whole` is not a positive number.
pub fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

/// Which side of the limit passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtMost,
    AtLeast,
}

/// One target of the issue, with the value measured for it.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    /// What is measured, e.g. "anthropic: added p50 at concurrency 1".
    pub name: String,
    /// `None` when the run could not measure it (e.g. no /proc).
    pub measured: Option<f64>,
    pub bound: Bound,
    pub limit: f64,
    /// e.g. "ms", "MB", "x forwarder".
    pub unit: &'static str,
    pub pass: bool,
}

impl TargetCheck {
    pub fn new(
        name: String,
        measured: Option<f64>,
        bound: Bound,
        limit: f64,
        unit: &'static str,
    ) -> Self {
        let pass = measured.is_some_and(|value| match bound {
            Bound::AtMost => value <= limit,
            Bound::AtLeast => value >= limit,
        });
        Self {
            name,
            measured,
            bound,
            limit,
            unit,
            pass,
        }
    }

    /// "PASS" or "MISS" (an unmeasured target is a miss).
    pub fn verdict(&self) -> &'static str {
        if self.pass { "PASS" } else { "MISS" }
    }
}

/// CPU seconds per request from clock ticks spent over `requests`, in µs.
pub fn cpu_us_per_request(ticks: u64, ticks_per_sec: u64, requests: u64) -> Option<f64> {
    if requests == 0 || ticks_per_sec == 0 {
        return None;
    }
    Some(ticks as f64 * 1e6 / ticks_per_sec as f64 / requests as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty_sets() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.5]), Some(7.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratio_refuses_a_zero_whole() {
        assert_eq!(ratio(9.0, 10.0), Some(0.9));
        assert_eq!(ratio(1.0, 0.0), None);
    }

    #[test]
    fn targets_pass_on_the_right_side_of_the_limit_and_miss_when_unmeasured() {
        let at_most = |v| TargetCheck::new("t".into(), v, Bound::AtMost, 0.1, "ms");
        assert!(at_most(Some(0.1)).pass);
        assert!(!at_most(Some(0.11)).pass);
        assert_eq!(at_most(None).verdict(), "MISS");
        let at_least = |v| TargetCheck::new("t".into(), v, Bound::AtLeast, 0.9, "x");
        assert!(at_least(Some(0.95)).pass);
        assert_eq!(at_least(Some(0.5)).verdict(), "MISS");
    }

    #[test]
    fn cpu_per_request_converts_ticks_to_microseconds() {
        // 50 ticks at 100 Hz = 0.5 s over 10 000 requests = 50 µs each.
        assert_eq!(cpu_us_per_request(50, 100, 10_000), Some(50.0));
        assert_eq!(cpu_us_per_request(50, 100, 0), None);
    }
}
