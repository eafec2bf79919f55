//! Latency of a key's recent successful attempts (to the answer, or to the
//! first content of a stream), for p50/p95 in the status.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

const SAMPLES: usize = 100;

#[derive(Debug, Default)]
pub(super) struct LatencyWindow {
    /// Whole microseconds (what the summary shows), saturating at about 71
    /// minutes: 4 bytes a sample instead of a `Duration`'s 16 keeps a full
    /// window at 400 bytes a key, which large pools multiply.
    samples: VecDeque<u32>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub samples: usize,
}

impl LatencyWindow {
    pub fn push(&mut self, latency: Duration) {
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        let micros = (latency.as_secs_f64() * 1e6).round();
        self.samples
            .push_back(micros.min(f64::from(u32::MAX)) as u32);
    }

    pub fn summary(&self) -> Option<LatencySummary> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<u32> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        // Nearest-rank percentiles.
        let rank =
            |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        let ms = |micros: u32| f64::from(micros) / 1e3;
        Some(LatencySummary {
            p50_ms: ms(rank(0.50)),
            p95_ms: ms(rank(0.95)),
            samples: sorted.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut window = LatencyWindow::default();
        for ms in 1..=100 {
            window.push(Duration::from_millis(ms));
        }
        let summary = window.summary().unwrap();
        assert_eq!(
            (summary.p50_ms, summary.p95_ms, summary.samples),
            (50.0, 95.0, 100)
        );
        window.push(Duration::from_millis(1000));
        assert_eq!(window.summary().unwrap().samples, 100, "bounded");
    }
}
