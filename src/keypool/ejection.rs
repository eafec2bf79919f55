//! Outlier ejection: a key that fails again and again (5xx, 529, timeouts,
//! connection errors) while its siblings succeed is taken out of rotation
//! for a while, as Envoy ejects an outlier host. A single fault never
//! ejects a key, and provider-wide trouble ejects none (the pool answers
//! 503 `overloaded_error` instead); no more than half of a pool's usable
//! keys are ever out at once.
//!
//! An ejection lasts the base time, doubled at each ejection in a row
//! (capped at the cooldown maximum). When it ends the key is half-open: one
//! request probes it. A success clears the ejection and its ladder; a fault
//! ejects it again, for twice as long.

use std::time::Duration;

use tokio::time::Instant;

use super::shared::ProbeGate;

/// When to eject and for how long.
#[derive(Debug, Clone, Copy)]
pub struct OutlierPolicy {
    /// Provider faults in a row that eject a key (`OUTLIER_CONSECUTIVE_FAILURES`);
    /// 0 turns ejection off.
    pub consecutive_faults: u32,
    /// The first ejection's length (`OUTLIER_EJECTION_SECS`).
    pub base: Duration,
    /// The longest ejection (`KEY_COOLDOWN_MAX_SECS`).
    pub max: Duration,
}

impl OutlierPolicy {
    /// The length of ejection number `level` in a row (0: the first).
    pub fn length(&self, level: u8) -> Duration {
        let factor = 1u32 << u32::from(level.min(20));
        self.base
            .saturating_mul(factor)
            .min(self.max)
            .max(self.base.min(self.max))
    }
}

/// A key's current ejection.
#[derive(Debug, Clone)]
pub struct Ejection {
    pub until: Instant,
    /// Ejections in a row (0: the first); a successful probe resets it.
    pub level: u8,
    /// What the last fault said, for the status views.
    pub reason: String,
    /// Rest over and the one probe is out.
    pub probing: bool,
    /// In a cluster, whether this replica may probe once the rest is over
    /// (`None`: it may; see `shared`).
    pub gate: Option<ProbeGate>,
}

impl Ejection {
    pub fn is_active(&self, now: Instant) -> bool {
        now < self.until
    }

    /// Keeps the key out of selection: ejected, or half-open with its
    /// probe already out.
    pub fn blocks(&self, now: Instant) -> bool {
        self.is_active(now) || self.probing || self.gate.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejections_double_up_to_the_cap() {
        let policy = OutlierPolicy {
            consecutive_faults: 5,
            base: Duration::from_secs(30),
            max: Duration::from_secs(900),
        };
        let lengths: Vec<u64> = (0..7).map(|l| policy.length(l).as_secs()).collect();
        assert_eq!(lengths, [30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(policy.length(u8::MAX).as_secs(), 900);
    }
}
