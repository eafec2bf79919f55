//! Key selection strategies, as a rank per key: each strategy leases the
//! best-ranked key that can serve, ties going to the earliest in
//! round-robin order from the cursor. `pick` runs a strategy over an
//! explicit list of candidates; `ready` keeps the same order in an index
//! so that a pick costs the same however large the pool.

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
    /// In proportion to each key's weight (stride scheduling: exact
    /// shares, evenly interleaved).
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

/// A key's place in the strategy's order: lower goes first, and ties go to
/// the earliest from the round-robin cursor. Round-robin and random rank
/// every key alike.
pub(super) type Rank = (u128, u64);

/// The distance between two picks of a weight-1 key under `weighted`; a
/// key of weight `w` advances by `STRIDE / w`. Large, so that integer
/// division leaves shares exact to within one pick in 2^40; held in a
/// `u128` so the passes never overflow.
const STRIDE: u128 = 1 << 40;

/// Where `slot` stands under `strategy` at this time.
pub(super) fn rank(strategy: Strategy, slot: &KeySlot, now: Instant, wall: SystemTime) -> Rank {
    match strategy {
        Strategy::RoundRobin | Strategy::Random => (0, 0),
        Strategy::Weighted => (slot.pass, 0),
        Strategy::LeastUsed => (u128::from(slot.in_flight), slot.recent_count(now) as u64),
        Strategy::Headroom => {
            let share = slot.limits.map_or(1.0, |l| l.share(wall));
            // Non-negative floats order as their bits do; the largest share
            // must rank lowest.
            let bits = if share > 0.0 { share.to_bits() } else { 0 };
            (u128::from(u64::MAX - bits), 0)
        }
    }
}

/// Whether `slot` may be leased for `model` now: it can serve, and under
/// `headroom` it has room left in every window.
pub(super) fn eligible(
    strategy: Strategy,
    slot: &KeySlot,
    model: Option<&str>,
    now: Instant,
    wall: SystemTime,
) -> bool {
    slot.can_serve(model, now)
        && !(strategy == Strategy::Headroom
            && slot.limits.is_some_and(|l| l.exhausted_for(wall).is_some()))
}

/// Picks one of `candidates` (non-empty, in round-robin order from the
/// cursor): the best-ranked, ties to the earliest; under `random`, any
/// with equal chance.
pub(super) fn pick(
    strategy: Strategy,
    candidates: &[usize],
    slots: &[KeySlot],
    now: Instant,
    wall: SystemTime,
) -> usize {
    match strategy {
        Strategy::Random => candidates[rand::thread_rng().gen_range(0..candidates.len())],
        _ => candidates
            .iter()
            .copied()
            .min_by_key(|&i| rank(strategy, &slots[i], now, wall))
            .unwrap_or(candidates[0]),
    }
}

/// What a lease costs the leased key's rank under `weighted` (stride
/// scheduling): its pass moves on by its stride, counted from the pool's
/// `clock` (the pass of the latest pick) so that a key back from a long
/// rest does not take a burst of requests to catch up.
pub(super) fn charge(strategy: Strategy, slot: &mut KeySlot, clock: &mut u128) {
    if strategy != Strategy::Weighted {
        return;
    }
    let start = slot.pass.max(*clock);
    *clock = start;
    slot.pass = start + STRIDE / u128::from(slot.entry.weight.max(1));
}
