//! Key selection strategies. Each picks one of `candidates` (indexes into
//! the pool's slots, already filtered to keys that can serve and ordered
//! from the round-robin cursor); ties go to the earliest in that order.

use std::str::FromStr;
use std::time::SystemTime;

use rand::Rng;
use tokio::time::Instant;

use super::slot::KeySlot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Each key in turn.
    #[default]
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// In proportion to each key's weight (smooth weighted round-robin).
    Weighted,
    /// Fewest requests in flight, then fewest in the last minute.
    LeastUsed,
    /// The largest remaining rate-limit share; keys with nothing left in a
    /// window are skipped until it resets.
    Headroom,
}

impl Strategy {
    pub const NAMES: &'static str = "round_robin, random, weighted, least_used, headroom";

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::Random => "random",
            Strategy::Weighted => "weighted",
            Strategy::LeastUsed => "least_used",
            Strategy::Headroom => "headroom",
        }
    }
}

impl FromStr for Strategy {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim().to_ascii_lowercase().as_str() {
            "round_robin" => Ok(Strategy::RoundRobin),
            "random" => Ok(Strategy::Random),
            "weighted" => Ok(Strategy::Weighted),
            "least_used" => Ok(Strategy::LeastUsed),
            "headroom" => Ok(Strategy::Headroom),
            _ => Err(()),
        }
    }
}

/// Picks one of `candidates` (non-empty).
pub(super) fn pick(
    strategy: Strategy,
    candidates: &[usize],
    slots: &mut [KeySlot],
    now: Instant,
    wall: SystemTime,
) -> usize {
    match strategy {
        Strategy::RoundRobin => candidates[0],
        Strategy::Random => candidates[rand::thread_rng().gen_range(0..candidates.len())],
        Strategy::Weighted => smooth_weighted(candidates, slots),
        Strategy::LeastUsed => {
            let mut best = candidates[0];
            let mut best_load = (u32::MAX, usize::MAX);
            for &i in candidates {
                let load = (slots[i].in_flight, slots[i].recent_count(now));
                if load < best_load {
                    best = i;
                    best_load = load;
                }
            }
            best
        }
        Strategy::Headroom => {
            let share = |i: usize| slots[i].limits.map_or(1.0, |l| l.share(wall));
            let mut best = candidates[0];
            for &i in &candidates[1..] {
                if share(i) > share(best) {
                    best = i;
                }
            }
            best
        }
    }
}

/// nginx's smooth weighted round-robin: exact shares, evenly interleaved.
fn smooth_weighted(candidates: &[usize], slots: &mut [KeySlot]) -> usize {
    let mut total = 0i64;
    let mut best = candidates[0];
    for &i in candidates {
        let weight = i64::from(slots[i].entry.weight.max(1));
        slots[i].smooth_weight += weight;
        total += weight;
        if slots[i].smooth_weight > slots[best].smooth_weight {
            best = i;
        }
    }
    slots[best].smooth_weight -= total;
    best
}
