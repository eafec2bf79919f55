//! Cache scopes in the pool: which slots share each scope's prompt cache,
//! and selection that prefers one scope. Scopes are small (an
//! organisation's few keys), so a preferred pick looks only at its scope's
//! slots; when none of them can serve, selection falls back to the whole
//! pool, so health always wins over affinity.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::Selection;
use super::machine::PoolState;
use super::select::{Strategy, pick};
use super::slot::KeySlot;
use crate::domain::KeyId;

/// The slots of each cache scope, rebuilt whenever the key set changes.
#[derive(Default)]
pub(super) struct ScopeIndex {
    /// Each slot's scope name, by slot index.
    names: Vec<Arc<str>>,
    /// Each scope's slot indexes, in slot order.
    members: HashMap<Arc<str>, Vec<usize>>,
}

impl ScopeIndex {
    pub fn build(slots: &[KeySlot]) -> Self {
        let names: Vec<Arc<str>> = slots.iter().map(|s| s.entry.cache_scope()).collect();
        let mut members: HashMap<Arc<str>, Vec<usize>> = HashMap::new();
        for (index, name) in names.iter().enumerate() {
            members.entry(name.clone()).or_default().push(index);
        }
        Self { names, members }
    }

    /// The scope of the slot at `index`.
    pub fn name_of(&self, index: usize) -> Arc<str> {
        self.names
            .get(index)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    fn members(&self, scope: &str) -> &[usize] {
        self.members.get(scope).map_or(&[], Vec::as_slice)
    }
}

impl PoolState {
    /// `select_excluding`, preferring a key of `scope`: the pool's strategy
    /// runs over the scope's keys that can serve and that this request has
    /// not tried; if there are none, the whole pool is asked.
    pub fn select_preferring(
        &mut self,
        now: Instant,
        wall: SystemTime,
        tried: &[KeyId],
        spent: &[KeyId],
        model: Option<&str>,
        scope: Option<&str>,
    ) -> Selection {
        if let Some(index) = scope.and_then(|scope| self.pick_in(scope, now, wall, tried, spent, model))
        {
            return self.lease_at(index, model, now, wall);
        }
        self.select_excluding(now, wall, tried, spent, model)
    }

    fn pick_in(
        &mut self,
        scope: &str,
        now: Instant,
        wall: SystemTime,
        tried: &[KeyId],
        spent: &[KeyId],
        model: Option<&str>,
    ) -> Option<usize> {
        let count = self.slots.len();
        let headroom = self.settings.strategy == Strategy::Headroom;
        let mut candidates: Vec<usize> = self
            .scopes
            .members(scope)
            .iter()
            .copied()
            .filter(|&i| {
                let slot = &self.slots[i];
                slot.can_serve(model, now)
                    && !(headroom && slot.limits.is_some_and(|l| l.exhausted_for(wall).is_some()))
                    && !tried.contains(&slot.entry.id)
                    && !spent.contains(&slot.entry.id)
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        // From the round-robin cursor, as the whole pool's order is.
        let cursor = self.cursor;
        candidates.sort_by_key(|&i| (i + count - cursor) % count);
        Some(pick(
            self.settings.strategy,
            &candidates,
            &mut self.slots,
            now,
            wall,
        ))
    }
}
