//! The request path's view of a key pool: cheap to clone, every method either
//! fire-and-forget (reports) or a short round trip to the actor.

use tokio::sync::{mpsc, oneshot};

use super::actor::{self, Message};
use super::state::PoolState;
use super::status::{PoolStats, PoolStatus};
use super::{KeyId, Outcome, Selection};
use crate::providers::ProviderKind;

/// The pool's actor has stopped (only during shutdown); callers answer 503.
#[derive(Debug, thiserror::Error)]
#[error("the key pool is not running")]
pub struct PoolUnavailable;

#[derive(Clone)]
pub struct KeyPoolHandle {
    provider: ProviderKind,
    sender: mpsc::UnboundedSender<Message>,
}

impl KeyPoolHandle {
    pub fn spawn(provider: ProviderKind, state: PoolState) -> Self {
        Self {
            provider,
            sender: actor::spawn(state),
        }
    }

    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// Asks for a key for the next attempt; `tried` are the keys this request
    /// already used.
    pub async fn acquire(&self, tried: &[KeyId]) -> Result<Selection, PoolUnavailable> {
        self.ask(|reply| Message::Acquire {
            tried: tried.to_vec(),
            reply,
        })
        .await
    }

    /// Records an attempt's outcome; never waits.
    pub fn report(&self, key: &KeyId, outcome: Outcome) {
        self.tell(Message::Report {
            key: key.clone(),
            outcome,
        });
    }

    pub async fn stats(&self) -> Result<PoolStats, PoolUnavailable> {
        self.ask(|reply| Message::Stats { reply }).await
    }

    pub async fn status(&self) -> Result<PoolStatus, PoolUnavailable> {
        self.ask(|reply| Message::Status { reply }).await
    }

    pub async fn reset(&self) -> Result<PoolStatus, PoolUnavailable> {
        self.ask(|reply| Message::Reset { reply }).await
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
    pools: Vec<KeyPoolHandle>,
}

impl KeyPools {
    pub fn new(pools: Vec<KeyPoolHandle>) -> Self {
        Self { pools }
    }

    pub fn get(&self, provider: ProviderKind) -> Option<&KeyPoolHandle> {
        self.pools.iter().find(|p| p.provider == provider)
    }

    pub fn iter(&self) -> impl Iterator<Item = &KeyPoolHandle> {
        self.pools.iter()
    }
}
