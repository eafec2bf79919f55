//! The task that owns one provider's `PoolState`. All messages arrive on one
//! unbounded channel, so an outcome reported before the next key request is
//! always applied before it (a 429'd key is never handed out again by a race),
//! and reporting never blocks the request path. Requests that want an answer
//! carry a oneshot sender; the loop ends when every handle is gone.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::Selection;
use super::machine::PoolState;
use super::snapshot::{SavedKey, SavedProvider};
use super::status::{PoolStats, PoolStatus};
use crate::domain::{KeyEntry, KeyId, Outcome, RateLimits};

pub type Changes = (Option<SavedProvider>, Vec<(KeyId, SavedKey)>);

pub(super) enum Message {
    Acquire {
        tried: Vec<KeyId>,
        spent: Vec<KeyId>,
        model: Option<Arc<str>>,
        reply: oneshot::Sender<Selection>,
    },
    Report {
        key: KeyId,
        model: Option<Arc<str>>,
        outcome: Outcome,
    },
    Observe {
        key: KeyId,
        limits: RateLimits,
    },
    RequestStarted,
    RequestFinished {
        succeeded: bool,
        rotations: u32,
    },
    AddKey(KeyEntry),
    SyncKeys(Vec<KeyEntry>),
    RemoveKey(KeyId),
    UpdateKey {
        key: KeyId,
        name: Option<Option<String>>,
        weight: Option<u32>,
        enabled: Option<bool>,
    },
    SetInvalid {
        key: KeyId,
        reason: Option<String>,
    },
    Stats(oneshot::Sender<PoolStats>),
    Status(oneshot::Sender<PoolStatus>),
    Reset(oneshot::Sender<PoolStatus>),
    Overloaded(oneshot::Sender<Option<(usize, usize)>>),
    TakeChanges(oneshot::Sender<Changes>),
}

pub(super) fn spawn(state: PoolState) -> mpsc::UnboundedSender<Message> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(run(state, receiver));
    sender
}

async fn run(mut state: PoolState, mut inbox: mpsc::UnboundedReceiver<Message>) {
    while let Some(message) = inbox.recv().await {
        let now = Instant::now();
        let wall = SystemTime::now();
        // A dropped reply receiver means the request went away; nothing to do.
        match message {
            Message::Acquire {
                tried,
                spent,
                model,
                reply,
            } => {
                let selection = state.select_excluding(now, wall, &tried, &spent, model.as_deref());
                let _ = reply.send(selection);
            }
            Message::Report {
                key,
                model,
                outcome,
            } => {
                state.record(&key, model.as_deref(), &outcome, now, wall);
            }
            Message::Observe { key, limits } => state.observe(&key, limits),
            Message::RequestStarted => state.request_started(),
            Message::RequestFinished {
                succeeded,
                rotations,
            } => {
                state.request_finished(succeeded, rotations);
            }
            Message::AddKey(entry) => state.add_key(entry),
            Message::SyncKeys(entries) => state.sync_keys(entries),
            Message::RemoveKey(key) => {
                state.remove_key(&key);
            }
            Message::UpdateKey {
                key,
                name,
                weight,
                enabled,
            } => state.update_key(&key, name, weight, enabled),
            Message::SetInvalid { key, reason } => state.set_invalid(&key, reason),
            Message::Stats(reply) => {
                let _ = reply.send(state.stats(now));
            }
            Message::Status(reply) => {
                let _ = reply.send(state.status(now, wall));
            }
            Message::Reset(reply) => {
                state.reset();
                let _ = reply.send(state.status(now, wall));
            }
            Message::Overloaded(reply) => {
                let _ = reply.send(state.overloaded(now));
            }
            Message::TakeChanges(reply) => {
                let _ = reply.send(state.take_changes(now, wall));
            }
        }
    }
}
