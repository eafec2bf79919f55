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
use super::select::{eligible, pick};
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
        if let Some(index) =
            scope.and_then(|scope| self.pick_in(scope, now, wall, tried, spent, model))
        {
            return self.lease_at(index, model, now, wall);
        }
        self.select_excluding(now, wall, tried, spent, model)
    }

    /// The scope's pick: its keys that can serve and that the request has
    /// not tried (nor spent), in round-robin order from the cursor as the
    /// whole pool's are, then the pool's strategy, as `scan` would choose
    /// were the scope the whole pool.
    fn pick_in(
        &self,
        scope: &str,
        now: Instant,
        wall: SystemTime,
        tried: &[KeyId],
        spent: &[KeyId],
        model: Option<&str>,
    ) -> Option<usize> {
        let count = self.slots.len();
        let strategy = self.settings.strategy;
        let mut candidates: Vec<usize> = self
            .scopes
            .members(scope)
            .iter()
            .copied()
            .filter(|&i| {
                let slot = &self.slots[i];
                let used = tried.contains(&slot.entry.id) || spent.contains(&slot.entry.id);
                !used && eligible(strategy, slot, model, now, wall)
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        // From the round-robin cursor, as the whole pool's order is.
        let cursor = self.cursor;
        candidates.sort_by_key(|&i| (i + count - cursor) % count);
        Some(pick(strategy, &candidates, &self.slots, now, wall))
    }
}

#[cfg(test)]
mod tests {
    use super::super::machine::tests::{Clock, MODEL, limited, pool, record};
    use super::*;

    /// Six keys, key0..key5, in scopes a, b, c, a, b, c.
    fn scoped_pool() -> PoolState {
        let mut pool = pool(6);
        for i in 0..6 {
            let scope = ["a", "b", "c"][i % 3];
            pool.set_scope(&KeyId::new(format!("key{i}")), Some(scope.into()));
        }
        pool
    }

    fn lease(
        pool: &mut PoolState,
        clock: (Instant, SystemTime),
        tried: &[KeyId],
        scope: Option<&str>,
    ) -> (KeyId, Arc<str>) {
        match pool.select_preferring(clock.0, clock.1, tried, &[], MODEL, scope) {
            Selection::Leased(lease) => (lease.id, lease.scope),
            _ => panic!("no key leased"),
        }
    }

    #[test]
    fn a_preferred_scope_is_served_by_its_own_keys_in_turn() {
        let clock = Clock::new();
        let mut pool = scoped_pool();
        let ids: Vec<String> = (0..4)
            .map(|_| lease(&mut pool, clock.at(0), &[], Some("b")).0.to_string())
            .collect();
        assert_eq!(ids, ["key1", "key4", "key1", "key4"]);
        let (_, scope) = lease(&mut pool, clock.at(0), &[], None);
        assert!(["a", "b", "c"].contains(&&*scope));
    }

    #[test]
    fn failover_tries_the_scope_first_then_leaves_it() {
        let clock = Clock::new();
        let mut pool = scoped_pool();
        let (first, _) = lease(&mut pool, clock.at(0), &[], Some("a"));
        let (second, scope) = lease(
            &mut pool,
            clock.at(0),
            std::slice::from_ref(&first),
            Some("a"),
        );
        assert_eq!((second.as_str(), &*scope), ("key3", "a"));
        let (third, scope) = lease(&mut pool, clock.at(0), &[first, second], Some("a"));
        assert_ne!(&*scope, "a", "{third}");
    }

    #[test]
    fn health_wins_over_affinity() {
        let clock = Clock::new();
        let mut pool = scoped_pool();
        for key in ["key0", "key3"] {
            record(
                &mut pool,
                &KeyId::new(key),
                MODEL,
                limited(Some(60)),
                clock.at(0),
            );
        }
        let (_, scope) = lease(&mut pool, clock.at(1), &[], Some("a"));
        assert_ne!(&*scope, "a");
        // Back from its cooldown, the scope serves its sessions again.
        let (_, scope) = lease(&mut pool, clock.at(61), &[], Some("a"));
        assert_eq!(&*scope, "a");
    }

    #[test]
    fn a_key_without_a_scope_is_its_own() {
        let clock = Clock::new();
        let mut pool = pool(2);
        let (id, scope) = lease(&mut pool, clock.at(0), &[], Some("key1"));
        assert_eq!((id.as_str(), &*scope), ("key1", "key1"));
    }
}
