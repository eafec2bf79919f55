//! Selecting one named key: a resource (a stored response, a batch, a
//! file) is visible only to the key that created it, so a call naming it
//! may use that key and no other. Whether it can serve now follows the
//! same rules as ordinary selection; when it cannot, the answer says how
//! long to wait, or why it never will. Such a lease is outside the
//! rotation: the round-robin cursor and the `weighted` passes stay as they
//! are.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::machine::PoolState;
use super::{BoundKeyGone, Selection};
use crate::domain::KeyId;

/// How long a caller is told to wait for a key that is not cooling but
/// cannot take a call yet (its half-open probe is out elsewhere).
const PROBE_WAIT: Duration = Duration::from_secs(1);

impl PoolState {
    /// Leases `key` for an attempt at `model` if it can serve now.
    pub fn select_bound(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: &KeyId,
        model: Option<&str>,
    ) -> Selection {
        let Some(&index) = self.positions.get(key) else {
            return Selection::BoundKeyGone(BoundKeyGone::Deleted);
        };
        let slot = &self.slots[index];
        if let Some(reason) = &slot.invalid {
            return Selection::BoundKeyGone(BoundKeyGone::Invalid(reason.clone()));
        }
        if !slot.entry.enabled {
            return Selection::BoundKeyGone(BoundKeyGone::Disabled);
        }
        if slot.can_serve(model, now) {
            return Selection::Leased(self.hand_out(index, model, now, wall));
        }
        let until = slot
            .resting_until(model, now)
            .or_else(|| slot.lacks_access(model, now).map(|_| now + PROBE_WAIT));
        Selection::AllCoolingDown {
            retry_after: until.map_or(PROBE_WAIT, |until| until - now),
        }
    }
}
