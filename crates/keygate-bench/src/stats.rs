//! Pure arithmetic of the report: medians of repeated runs, ratios and
//! differences between paths, their spread over paired runs, and the
//! issue's targets with their PASS/MISS verdicts and shortfalls. No I/O, so
//! every rule here is unit-tested.

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

/// `compare(a[i], b[i])` for each pair of runs measured side by side (run
/// `i` of two paths is taken in the same round, so slow drift on a shared
/// machine hits both); pairs `compare` refuses are skipped.
pub fn paired(a: &[f64], b: &[f64], compare: impl Fn(f64, f64) -> Option<f64>) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter_map(|(&a, &b)| compare(a, b))
        .collect()
}

/// A mean with its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MeanInterval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    /// How many values it is from.
    pub n: usize,
}

/// The mean of `values` and its 95 % confidence interval (Student's t:
/// the values are few, and taken as independent draws around the mean);
/// `None` for fewer than two values.
pub fn mean_ci95(values: &[f64]) -> Option<MeanInterval> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_975(n - 1) * (variance / n as f64).sqrt();
    Some(MeanInterval {
        mean,
        low: mean - half,
        high: mean + half,
        n,
    })
}

/// The 97.5th percentile of Student's t with `df` degrees of freedom
/// (from the standard table; past 30 the normal's 1.96 is within 4 %).
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    TABLE.get(df.wrapping_sub(1)).copied().unwrap_or(1.96)
}

/// (smallest, largest) of `values`; `None` when empty.
pub fn spread(values: &[f64]) -> Option<(f64, f64)> {
    let mut values = values.iter().copied();
    let first = values.next()?;
    Some(values.fold((first, first), |(low, high), v| (low.min(v), high.max(v))))
}

/// Which side of the limit passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtMost,
    AtLeast,
}

/// A target's limit: which side passes, the value and its unit.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Limit {
    pub bound: Bound,
    pub value: f64,
    /// e.g. "×", "ms", "MB".
    pub unit: &'static str,
}

/// One target of the issue in one scope, with the value measured for it.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    /// What is measured, e.g. "p50 at concurrency 1, keygate − baseline".
    pub measure: &'static str,
    /// Where: an API's name, or "keygate" for whole-process figures.
    pub scope: &'static str,
    /// From the medians; `None` when the run could not measure it.
    pub measured: Option<f64>,
    /// (lowest, highest) of the same comparison run by run, when paired.
    pub runs_range: Option<(f64, f64)>,
    pub limit: Limit,
    pub pass: bool,
}

impl TargetCheck {
    pub fn new(
        measure: &'static str,
        scope: &'static str,
        measured: Option<f64>,
        runs_range: Option<(f64, f64)>,
        limit: Limit,
    ) -> Self {
        let pass = measured.is_some_and(|value| match limit.bound {
            Bound::AtMost => value <= limit.value,
            Bound::AtLeast => value >= limit.value,
        });
        Self {
            measure,
            scope,
            measured,
            runs_range,
            limit,
            pass,
        }
    }

    /// "PASS" or "MISS" (an unmeasured target is a miss).
    pub fn verdict(&self) -> &'static str {
        if self.pass { "PASS" } else { "MISS" }
    }

    /// By how much a measured target is missed, in its unit (positive), or
    /// `None` when it passes or was not measured.
    pub fn shortfall(&self) -> Option<f64> {
        let value = self.measured?;
        let by = match self.limit.bound {
            Bound::AtMost => value - self.limit.value,
            Bound::AtLeast => self.limit.value - value,
        };
        (by > 0.0).then_some(by)
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

    fn check(measured: Option<f64>, bound: Bound, value: f64) -> TargetCheck {
        let limit = Limit {
            bound,
            value,
            unit: "ms",
        };
        TargetCheck::new("t", "api", measured, None, limit)
    }

    #[test]
    fn targets_pass_on_the_right_side_of_the_limit_and_miss_when_unmeasured() {
        let at_most = |v| check(v, Bound::AtMost, 0.1);
        assert!(at_most(Some(0.1)).pass);
        assert!(!at_most(Some(0.11)).pass);
        assert_eq!(at_most(None).verdict(), "MISS");
        let at_least = |v| check(v, Bound::AtLeast, 0.9);
        assert!(at_least(Some(0.95)).pass);
        assert_eq!(at_least(Some(0.5)).verdict(), "MISS");
    }

    #[test]
    fn a_miss_says_by_how_much_on_either_side_and_a_pass_says_nothing() {
        let missed = check(Some(0.72), Bound::AtLeast, 0.9).shortfall();
        assert!(
            missed.is_some_and(|by| (by - 0.18).abs() < 1e-9),
            "{missed:?}"
        );
        let missed = check(Some(0.25), Bound::AtMost, 0.1).shortfall();
        assert!(
            missed.is_some_and(|by| (by - 0.15).abs() < 1e-9),
            "{missed:?}"
        );
        assert_eq!(check(Some(0.9), Bound::AtLeast, 0.9).shortfall(), None);
        assert_eq!(check(Some(0.05), Bound::AtMost, 0.1).shortfall(), None);
        assert_eq!(check(None, Bound::AtMost, 0.1).shortfall(), None);
    }

    #[test]
    fn paired_runs_compare_run_by_run_and_spread_bounds_them() {
        let keygate = [900.0, 1000.0, 800.0];
        let baseline = [1000.0, 1250.0, 0.0];
        // The third pair has no positive baseline: ratio refuses, it is skipped.
        let ratios = paired(&keygate, &baseline, ratio);
        assert_eq!(ratios, vec![0.9, 0.8]);
        assert_eq!(spread(&ratios), Some((0.8, 0.9)));
        let differences = paired(&[0.3, 0.2], &[0.25, 0.1, 9.0], |a, b| Some(a - b));
        assert_eq!(differences.len(), 2, "pairs stop at the shorter side");
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[4.0]), Some((4.0, 4.0)));
    }

    #[test]
    fn cpu_per_request_converts_ticks_to_microseconds() {
        // 50 ticks at 100 Hz = 0.5 s over 10 000 requests = 50 µs each.
        assert_eq!(cpu_us_per_request(50, 100, 10_000), Some(50.0));
        assert_eq!(cpu_us_per_request(50, 100, 0), None);
    }

    #[test]
    fn a_mean_has_the_students_t_interval_of_its_values() {
        assert_eq!(mean_ci95(&[1.0]), None);
        // Mean 2, sample sd 1, n 3: 2 ± 4.303 × 1/√3.
        let interval = mean_ci95(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(interval.mean, 2.0);
        assert!((interval.high - (2.0 + 4.303 / 3f64.sqrt())).abs() < 1e-9);
        assert!((interval.low - (2.0 - 4.303 / 3f64.sqrt())).abs() < 1e-9);
        let constant = mean_ci95(&[0.97; 12]).unwrap();
        assert!((constant.low - 0.97).abs() < 1e-12 && (constant.high - 0.97).abs() < 1e-12);
    }
}
