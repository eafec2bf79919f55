//! Cooldowns and their ladder. A rate-limited key rests for the upstream's
//! hint (or the configured default), clamped to [1 s, max]. When the rest
//! ends the key is half-open: one request probes it. If that probe is
//! rate-limited again the key climbs a rung and rests longer (1×, 2×, 5×,
//! 15× the default, capped at the max); a success clears the cooldown and
//! with it the ladder.

use std::time::Duration;

use tokio::time::Instant;

use super::shared::ProbeGate;

/// Multiples of the default cooldown, per rung.
const LADDER: [u32; 4] = [1, 2, 5, 15];

/// A rest on a whole key (`model: None`) or on one model of it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cooldown {
    pub model: Option<String>,
    pub until: Instant,
    pub level: u8,
    /// Half-open and a probe request is out.
    pub probing: bool,
    /// In a cluster, whether this replica may probe once the rest is over
    /// (`None`: it may; see `shared`).
    pub gate: Option<ProbeGate>,
}

impl Cooldown {
    pub fn is_active(&self, now: Instant) -> bool {
        now < self.until
    }

    /// Over, but its probe belongs to another replica or waits for the
    /// token.
    pub fn awaits_token(&self, now: Instant) -> bool {
        !self.is_active(now) && self.gate.is_some()
    }

    /// Applies to a request for `model`: key-wide ones apply to all.
    pub fn applies_to(&self, model: Option<&str>) -> bool {
        self.model.is_none() || self.model.as_deref() == model
    }
}

/// Limits on cooldown lengths.
#[derive(Debug, Clone, Copy)]
pub struct CooldownPolicy {
    pub default: Duration,
    pub max: Duration,
    /// How long a key sits out a model it was found to have no access to
    /// (`KEY_NO_ACCESS_SECS`).
    pub no_access: Duration,
}

impl CooldownPolicy {
    /// The rest for rung `level`, given the upstream's hint.
    pub fn length(&self, level: u8, hint: Option<Duration>) -> Duration {
        let rung = LADDER[usize::from(level).min(LADDER.len() - 1)];
        let ladder = self.default.saturating_mul(rung);
        let length = match (level, hint) {
            (0, Some(hint)) => hint,
            (0, None) => self.default,
            (_, hint) => ladder.max(hint.unwrap_or_default()),
        };
        length.clamp(Duration::from_secs(1), self.max.max(Duration::from_secs(1)))
    }

    /// How long a finished cooldown is remembered: a 429 later than this
    /// after the key came back starts again at the bottom of the ladder.
    pub fn memory(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CooldownPolicy {
        CooldownPolicy {
            no_access: Duration::from_secs(3600),
            default: Duration::from_secs(60),
            max: Duration::from_secs(900),
        }
    }

    #[test]
    fn the_ladder_climbs_and_caps() {
        let p = policy();
        let secs =
            |level, hint: Option<u64>| p.length(level, hint.map(Duration::from_secs)).as_secs();
        assert_eq!(secs(0, None), 60);
        assert_eq!(secs(1, None), 120);
        assert_eq!(secs(2, None), 300);
        assert_eq!(secs(3, None), 900);
        assert_eq!(secs(9, None), 900);
        assert_eq!(
            secs(0, Some(7)),
            7,
            "the upstream's hint wins on the first rung"
        );
        assert_eq!(secs(1, Some(400)), 400, "a longer hint wins on later rungs");
        assert_eq!(secs(0, Some(5000)), 900, "clamped to the max");
        assert_eq!(
            p.length(0, Some(Duration::from_millis(10))),
            Duration::from_secs(1),
            "at least 1 s"
        );
    }
}
