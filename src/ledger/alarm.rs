//! `DropAlarm`: when to say that ledger rows are being dropped. At the
//! first drop at once, then at most once per period while drops go on, each
//! report counting the drops since the previous one: a writer that is
//! behind for an hour logs sixty lines, not a million. A pure state
//! machine: the caller passes the time and the dropped total.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct DropAlarm {
    every: Duration,
    last_report: Option<Instant>,
    /// The dropped total at the last report.
    reported: u64,
    /// Batches that failed to write since the last report.
    failed_batches: u64,
    last_error: Option<String>,
}

/// What to log.
#[derive(Debug, PartialEq, Eq)]
pub struct DropReport {
    /// Rows dropped since the previous report.
    pub dropped: u64,
    /// Of the reasons, batches that failed to write (their rows are in
    /// `dropped`), with the last failure's error.
    pub failed_batches: u64,
    pub last_error: Option<String>,
}

impl DropAlarm {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last_report: None,
            reported: 0,
            failed_batches: 0,
            last_error: None,
        }
    }

    /// Notes a batch that failed to write (its rows were counted dropped).
    pub fn write_failed(&mut self, error: String) {
        self.failed_batches += 1;
        self.last_error = Some(error);
    }

    /// A report if rows were dropped since the last one and a period has
    /// passed since it (or `now_anyway`, for the last word at stop).
    pub fn check(&mut self, dropped: u64, now: Instant, now_anyway: bool) -> Option<DropReport> {
        if dropped <= self.reported {
            return None;
        }
        let due = self
            .last_report
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if !due && !now_anyway {
            return None;
        }
        let report = DropReport {
            dropped: dropped - self.reported,
            failed_batches: std::mem::take(&mut self.failed_batches),
            last_error: self.last_error.take(),
        };
        self.reported = dropped;
        self.last_report = Some(now);
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_first_drop_is_reported_at_once_then_once_a_minute() {
        let mut alarm = DropAlarm::new(MINUTE);
        let start = Instant::now();
        assert_eq!(alarm.check(0, start, false), None, "nothing dropped");
        let first = alarm.check(3, start, false).unwrap();
        assert_eq!(first.dropped, 3);
        // More drops within the minute wait for it.
        assert_eq!(
            alarm.check(50, start + Duration::from_secs(30), false),
            None
        );
        let second = alarm.check(70, start + MINUTE, false).unwrap();
        assert_eq!(second.dropped, 67, "everything since the last report");
        // A quiet minute says nothing.
        assert_eq!(alarm.check(70, start + 3 * MINUTE, false), None);
    }

    #[test]
    fn failed_writes_are_named_in_the_next_report_and_stop_says_the_rest() {
        let mut alarm = DropAlarm::new(MINUTE);
        let start = Instant::now();
        alarm.write_failed("disk I/O error".into());
        let report = alarm.check(100, start, false).unwrap();
        assert_eq!(report.failed_batches, 1);
        assert_eq!(report.last_error.as_deref(), Some("disk I/O error"));
        assert_eq!(
            alarm.check(120, start + Duration::from_secs(1), false),
            None
        );
        let last = alarm
            .check(120, start + Duration::from_secs(1), true)
            .unwrap();
        assert_eq!(
            (last.dropped, last.failed_batches, last.last_error),
            (20, 0, None)
        );
    }
}
