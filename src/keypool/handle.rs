//! The request path's view of a key pool: cheap to clone, every method either
//! fire-and-forget (reports) or a short round trip to the actor.

use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;

use super::Selection;
use super::actor::{self, Changes, Message};
use super::machine::PoolState;
use super::status::{PoolStats, PoolStatus};
use crate::domain::{KeyEntry, KeyId, Outcome, ProviderKind, RateLimits};
use crate::scrub::Scrubber;

/// The pool's actor has stopped (only during shutdown); callers answer 503.
#[derive(Debug, thiserror::Error)]
#[error("the key pool is not running")]
pub struct PoolUnavailable;

#[derive(Clone)]
pub struct KeyPoolHandle {
    provider: ProviderKind,
    sender: mpsc::UnboundedSender<Message>,
    /// Learns every key that enters the pool, so no echo of it is ever
    /// shown; shared by all pools.
    scrubber: Arc<Scrubber>,
}

impl KeyPoolHandle {
    /// Starts the pool's actor over `state`, teaching `scrubber` its keys.
    pub fn spawn(provider: ProviderKind, state: PoolState, scrubber: Arc<Scrubber>) -> Self {
        for secret in state.secrets() {
            scrubber.learn(secret);
        }
        Self {
            provider,
            sender: actor::spawn(state),
            scrubber,
        }
    }

    /// The scrubber that knows every pool's keys.
    pub fn scrubber(&self) -> &Arc<Scrubber> {
        &self.scrubber
    }

    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// Asks for a key for the next attempt at `model`; `tried` are the
    /// keys this request already used, `spent` those it must not use again
    /// (they can never serve it).
    pub async fn acquire(
        &self,
        tried: &[KeyId],
        spent: &[KeyId],
        model: Option<&Arc<str>>,
    ) -> Result<Selection, PoolUnavailable> {
        self.ask(|reply| Message::Acquire {
            tried: tried.to_vec(),
            spent: spent.to_vec(),
            model: model.cloned(),
            reply,
        })
        .await
    }

    /// Records an attempt's outcome; never waits.
    pub fn report(&self, key: &KeyId, model: Option<&Arc<str>>, outcome: Outcome) {
        self.tell(Message::Report {
            key: key.clone(),
            model: model.cloned(),
            outcome,
        });
    }

    /// Records the rate-limit windows an answer reported; never waits.
    pub fn observe(&self, key: &KeyId, limits: RateLimits) {
        self.tell(Message::Observe {
            key: key.clone(),
            limits,
        });
    }

    pub fn add_key(&self, entry: KeyEntry) {
        self.scrubber.learn(&entry.secret);
        self.tell(Message::AddKey(entry));
    }

    /// Mirrors the stored key set (see `PoolState::sync_keys`).
    pub fn sync_keys(&self, entries: Vec<KeyEntry>) {
        for entry in &entries {
            self.scrubber.learn(&entry.secret);
        }
        self.tell(Message::SyncKeys(entries));
    }

    pub fn remove_key(&self, key: &KeyId) {
        self.tell(Message::RemoveKey(key.clone()));
    }

    /// `name: Some(None)` clears the name.
    pub fn update_key(
        &self,
        key: &KeyId,
        name: Option<Option<String>>,
        weight: Option<u32>,
        enabled: Option<bool>,
    ) {
        self.tell(Message::UpdateKey {
            key: key.clone(),
            name,
            weight,
            enabled,
        });
    }

    pub fn set_invalid(&self, key: &KeyId, reason: Option<String>) {
        self.tell(Message::SetInvalid {
            key: key.clone(),
            reason,
        });
    }

    pub async fn stats(&self) -> Result<PoolStats, PoolUnavailable> {
        self.ask(Message::Stats).await
    }

    pub async fn status(&self) -> Result<PoolStatus, PoolUnavailable> {
        self.ask(Message::Status).await
    }

    pub async fn reset(&self) -> Result<PoolStatus, PoolUnavailable> {
        self.ask(Message::Reset).await
    }

    /// `Some((failing, usable))` when most keys just met provider faults.
    pub async fn overloaded(&self) -> Result<Option<(usize, usize)>, PoolUnavailable> {
        self.ask(Message::Overloaded).await
    }

    /// What changed since the last call: the provider counters (if they
    /// did) and each changed key, in their saved form.
    pub async fn take_changes(&self) -> Result<Changes, PoolUnavailable> {
        self.ask(Message::TakeChanges).await
    }

    fn tell(&self, message: Message) {
        // Only fails when the actor is gone, i.e. during shutdown.
        let _ = self.sender.send(message);
    }

    async fn ask<T>(
        &self,
        message: impl FnOnce(oneshot::Sender<T>) -> Message,
    ) -> Result<T, PoolUnavailable> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(message(reply))
            .map_err(|_| PoolUnavailable)?;
        answer.await.map_err(|_| PoolUnavailable)
    }
}

/// Counts one client request in the provider statistics. Created when the
/// request starts; if it is dropped without `finish` (the client hung up, a
/// handler returned early) the request counts as failed, so
/// `total = successful + failed` holds once requests are done.
pub struct RequestTracker {
    pool: KeyPoolHandle,
    rotations: u32,
    finished: bool,
}

impl RequestTracker {
    pub fn start(pool: &KeyPoolHandle) -> Self {
        pool.tell(Message::RequestStarted);
        Self {
            pool: pool.clone(),
            rotations: 0,
            finished: false,
        }
    }

    pub fn rotated(&mut self) {
        self.rotations += 1;
    }

    pub fn finish(mut self, succeeded: bool) {
        self.send(succeeded);
    }

    fn send(&mut self, succeeded: bool) {
        if !self.finished {
            self.finished = true;
            self.pool.tell(Message::RequestFinished {
                succeeded,
                rotations: self.rotations,
            });
        }
    }
}

impl Drop for RequestTracker {
    fn drop(&mut self) {
        self.send(false);
    }
}

/// One pool per configured provider.
#[derive(Clone, Default)]
pub struct KeyPools {
    /// Shared, not copied: the state is cloned for every request.
    pools: Arc<[KeyPoolHandle]>,
}

impl KeyPools {
    pub fn new(pools: Vec<KeyPoolHandle>) -> Self {
        Self {
            pools: pools.into(),
        }
    }

    pub fn get(&self, provider: ProviderKind) -> Option<&KeyPoolHandle> {
        self.pools.iter().find(|p| p.provider == provider)
    }

    pub fn iter(&self) -> impl Iterator<Item = &KeyPoolHandle> {
        self.pools.iter()
    }
}
