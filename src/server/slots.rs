//! MAX_CONNECTIONS: every accepted connection holds a slot, and what each
//! connection is doing (requests in flight, idle since when), so that the
//! server loop can tell which connection gives way when the slots run out.
//!
//! At the cap, a new connection closes the connection that has waited
//! longest for a request head, preferring one that never sent any (a
//! silent or slow-loris client) over an idle keep-alive connection that
//! was served before; connections with a request in flight are never
//! closed for room. Only when every slot is busy is the new connection
//! refused. So a flood of silent connections cannot lock out `/health` or
//! real clients: each newcomer displaces the oldest silent one, while the
//! cap bounds the descriptors the flood holds (they are closed for good by
//! the head deadline). A reserve of descriptors below the process limit,
//! sized in `limits`, stays for upstream connections and the database.
//!
//! The bookkeeping sits behind one mutex, touched twice per request and
//! twice per connection, never across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

/// Connections told to make room that may still be closing: past this
/// many, new connections are refused instead, so the descriptors in use
/// stay below cap + this even when closing lags behind a burst of accepts.
const MAX_CLOSING: usize = 64;

/// The connection slots of one server.
pub(super) struct Slots {
    cap: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    next_idle: u64,
    /// Connections told to close for room, still open.
    closing: usize,
    connections: HashMap<u64, Connection>,
    /// Connections with no request in flight, the first to give way first:
    /// ordered by (served before, when they became idle).
    idle: BTreeMap<(bool, u64), u64>,
}

struct Connection {
    activity: Activity,
    /// Its task is closing it: it wants to hear when the last request ends.
    closing: bool,
    /// This connection's key in `idle`, while it is there.
    idle_key: Option<(bool, u64)>,
    wake: Arc<Notify>,
}

/// What a connection's task needs to know to decide whether to close it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Activity {
    pub in_flight: usize,
    /// Whether a request head has ever arrived on this connection.
    pub served: bool,
    /// When the last request finished (or the connection was accepted).
    pub idle_since: Instant,
    /// Told to close to make room for a newer connection.
    pub evicted: bool,
}

impl Slots {
    pub(super) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent after every statement; a panic elsewhere
        // while holding it leaves nothing half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a connection just accepted, or `None` if every slot is
    /// taken by a connection with a request in flight (the caller closes it).
    pub(super) fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut state = self.lock();
        let open = state.connections.len();
        if open >= self.cap {
            if state.closing >= MAX_CLOSING {
                return None;
            }
            let (_, victim) = state.idle.pop_first()?;
            state.closing += 1;
            if let Some(connection) = state.connections.get_mut(&victim) {
                connection.idle_key = None;
                connection.activity.evicted = true;
                connection.wake.notify_one();
            }
        }
        let id = state.next_id;
        state.next_id += 1;
        let key = (false, state.next_idle);
        state.next_idle += 1;
        state.idle.insert(key, id);
        let wake = Arc::new(Notify::new());
        state.connections.insert(
            id,
            Connection {
                activity: Activity {
                    in_flight: 0,
                    served: false,
                    idle_since: Instant::now(),
                    evicted: false,
                },
                idle_key: Some(key),
                closing: false,
                wake: wake.clone(),
            },
        );
        Some(Slot {
            slots: self.clone(),
            id,
            wake,
        })
    }

    /// Connections open now.
    pub(super) fn open(&self) -> usize {
        self.lock().connections.len()
    }
}

/// One connection's slot, held by its task; dropping it frees the slot.
pub(super) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    wake: Arc<Notify>,
}

impl Slot {
    pub(super) fn activity(&self) -> Activity {
        let state = self.slots.lock();
        match state.connections.get(&self.id) {
            Some(connection) => connection.activity,
            // Unreachable while the slot lives; an idle answer closes it.
            None => Activity {
                in_flight: 0,
                served: true,
                idle_since: Instant::now(),
                evicted: true,
            },
        }
    }

    /// From now on, the end of the last request in flight wakes the
    /// connection's task (which is closing it). Until then request ends do
    /// not wake it: it re-checks on its own timer, so an ordinary request
    /// costs no extra task wake-up.
    pub(super) fn closing(&self) {
        if let Some(connection) = self.slots.lock().connections.get_mut(&self.id) {
            connection.closing = true;
        }
    }

    /// Resolves when this connection's activity may have changed: a request
    /// finished while it is closing, or it was told to make room. A change while nobody waits
    /// is remembered, so none is missed between `activity` and this.
    pub(super) async fn changed(&self) {
        self.wake.notified().await;
    }

    /// Marks a request head arrived; the guard marks it finished on drop
    /// (its response sent, or abandoned).
    pub(super) fn request_started(&self) -> RequestGuard {
        let mut state = self.slots.lock();
        let state = &mut *state;
        if let Some(connection) = state.connections.get_mut(&self.id) {
            connection.activity.in_flight += 1;
            connection.activity.served = true;
            if let Some(key) = connection.idle_key.take() {
                state.idle.remove(&key);
            }
        }
        RequestGuard {
            slots: self.slots.clone(),
            id: self.id,
            wake: self.wake.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.lock();
        if let Some(connection) = state.connections.remove(&self.id) {
            if let Some(key) = connection.idle_key {
                state.idle.remove(&key);
            }
            if connection.activity.evicted {
                state.closing -= 1;
            }
        }
    }
}

/// One request in flight on a connection.
pub(super) struct RequestGuard {
    slots: Arc<Slots>,
    id: u64,
    wake: Arc<Notify>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut state = self.slots.lock();
        let state = &mut *state;
        let Some(connection) = state.connections.get_mut(&self.id) else {
            return;
        };
        connection.activity.in_flight -= 1;
        if connection.activity.in_flight == 0 {
            connection.activity.idle_since = Instant::now();
            // An evicted connection is closing already: not a candidate again.
            if !connection.activity.evicted {
                let key = (true, state.next_idle);
                state.next_idle += 1;
                state.idle.insert(key, self.id);
                connection.idle_key = Some(key);
            }
            if connection.closing || connection.activity.evicted {
                self.wake.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_oldest_head_less_connection_gives_way() {
        let slots = Slots::new(3);
        let served = slots.admit().unwrap();
        drop(served.request_started());
        let silent_old = slots.admit().unwrap();
        let silent_new = slots.admit().unwrap();
        let _newcomer = slots.admit().expect("room is made");
        assert!(silent_old.activity().evicted, "the oldest silent one goes");
        assert!(!silent_new.activity().evicted);
        assert!(!served.activity().evicted, "a served idle one goes last");
        silent_old.changed().await;
        drop(silent_old);
        assert_eq!(slots.open(), 3);
    }

    #[tokio::test]
    async fn busy_connections_are_never_closed_for_room() {
        let slots = Slots::new(2);
        let first = slots.admit().unwrap();
        let second = slots.admit().unwrap();
        let _busy = (first.request_started(), second.request_started());
        assert!(slots.admit().is_none(), "refused: every slot is busy");
        assert!(!first.activity().evicted && !second.activity().evicted);
    }

    #[tokio::test]
    async fn a_finished_request_makes_the_connection_idle_again() {
        let slots = Slots::new(1);
        let slot = slots.admit().unwrap();
        let request = slot.request_started();
        assert_eq!(slot.activity().in_flight, 1);
        drop(request);
        let activity = slot.activity();
        assert_eq!(activity.in_flight, 0);
        assert!(activity.served);
        let _newcomer = slots.admit().expect("the idle connection makes room");
        assert!(slot.activity().evicted);
        // Told to make room, its task hears of it at once.
        tokio::time::timeout(std::time::Duration::from_secs(1), slot.changed())
            .await
            .expect("an eviction wakes the connection's task");
    }

    #[tokio::test]
    async fn only_a_closing_connection_is_woken_by_its_last_request() {
        let slots = Slots::new(2);
        let slot = slots.admit().unwrap();
        drop(slot.request_started());
        let quiet =
            tokio::time::timeout(std::time::Duration::from_millis(50), slot.changed()).await;
        assert!(quiet.is_err(), "an ordinary request end costs no wake-up");
        slot.closing();
        drop(slot.request_started());
        tokio::time::timeout(std::time::Duration::from_secs(1), slot.changed())
            .await
            .expect("a closing connection hears its last request end");
    }

    #[tokio::test]
    async fn closing_connections_are_bounded() {
        let slots = Slots::new(1);
        let mut kept = Vec::new();
        // Each newcomer evicts the one before; none of them closes.
        kept.push(slots.admit().unwrap());
        for _ in 0..MAX_CLOSING {
            kept.push(slots.admit().expect("room is made"));
        }
        assert!(slots.admit().is_none(), "too many still closing");
        kept.remove(0);
        assert!(slots.admit().is_some(), "one closed: room again");
    }
}
