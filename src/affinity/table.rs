//! The session table: which cache scope each session is bound to, until
//! when. Bounded in entries (least recently used sessions leave first) and
//! by time (a binding past its cache's lifetime is dropped when found), so
//! any number of distinct sessions costs at most `max_sessions` entries.
//! Split into shards, each behind its own short lock (never held across an
//! await), so requests of different sessions seldom wait on each other.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lru::LruCache;
use tokio::time::Instant;

use super::session::SessionId;

/// Independent locks; a power of two, so a session's shard is a mask.
const SHARDS: usize = 8;

struct Binding {
    scope: Arc<str>,
    expires: Instant,
    /// When other replicas were last told of this binding.
    told: Instant,
}

pub struct SessionTable {
    shards: Box<[Mutex<LruCache<SessionId, Binding>>]>,
}

impl SessionTable {
    /// A table holding at most `max_sessions` bindings (at least one per
    /// shard).
    pub fn new(max_sessions: usize) -> Self {
        let per_shard = NonZeroUsize::new(max_sessions / SHARDS).unwrap_or(NonZeroUsize::MIN);
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
        }
    }

    /// The scope `id` is bound to, if its binding has not expired.
    pub fn get(&self, id: &SessionId, now: Instant) -> Option<Arc<str>> {
        let mut shard = self.shard(id);
        match shard.get(id) {
            Some(binding) if binding.expires > now => Some(binding.scope.clone()),
            Some(_) => {
                shard.pop(id);
                None
            }
            None => None,
        }
    }

    /// Binds `id` to `scope` for `ttl` from `now` (a use renews the cache's
    /// lifetime, so it renews the binding too). Returns whether other
    /// replicas should hear of it: a new or moved binding, or one they
    /// last heard of over half its lifetime ago (so theirs does not lapse
    /// while the session lives here).
    pub fn bind(&self, id: SessionId, scope: Arc<str>, ttl: Duration, now: Instant) -> bool {
        let mut shard = self.shard(&id);
        let told = match shard.get(&id) {
            Some(old) if old.scope == scope && old.expires > now && now < old.told + ttl / 2 => {
                Some(old.told)
            }
            _ => None,
        };
        let binding = Binding {
            scope,
            expires: now + ttl,
            told: told.unwrap_or(now),
        };
        shard.put(id, binding);
        told.is_none()
    }

    /// Bindings held (expired ones included until found or pushed out).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most bindings the table can hold.
    pub fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| lock(shard).cap().get())
            .sum()
    }

    fn shard(&self, id: &SessionId) -> MutexGuard<'_, LruCache<SessionId, Binding>> {
        lock(&self.shards[id.shard(SHARDS)])
    }
}

/// A panic under the lock cannot leave a binding half-written (`put` and
/// `pop` are whole), so a poisoned shard is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> SessionId {
        SessionId::from_parts(b"test", &n.to_le_bytes())
    }

    #[test]
    fn a_binding_lasts_its_ttl_and_no_longer() {
        let table = SessionTable::new(64);
        let now = Instant::now();
        table.bind(id(1), "acme".into(), Duration::from_secs(300), now);
        let later = now + Duration::from_secs(299);
        assert_eq!(table.get(&id(1), later).as_deref(), Some("acme"));
        assert_eq!(table.get(&id(1), now + Duration::from_secs(300)), None);
        assert!(table.is_empty(), "an expired binding is dropped when found");
    }

    #[test]
    fn distinct_sessions_never_grow_the_table_past_its_bound() {
        let table = SessionTable::new(10_000);
        let now = Instant::now();
        let scope: Arc<str> = "acme".into();
        for n in 0..100_000 {
            table.bind(id(n), scope.clone(), Duration::from_secs(300), now);
            assert!(table.len() <= 10_000);
        }
        assert!(table.len() <= table.capacity());
        assert!(table.capacity() <= 10_000);
        // The most recent sessions are the ones kept.
        assert_eq!(table.get(&id(99_999), now).as_deref(), Some("acme"));
        assert_eq!(table.get(&id(0), now), None);
    }
}
