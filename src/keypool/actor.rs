//! The task that owns one provider's `PoolState`. All messages arrive on one
//! unbounded channel, so an outcome reported before the next key request is
//! always applied before it (a 429'd key is never handed out again by a race),
//! and reporting never blocks the request path. Requests that want an answer
//! carry a oneshot sender; the loop ends when every handle is gone.

use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::state::PoolState;
use super::status::{PoolStats, PoolStatus};
use super::{KeyId, Outcome, Selection};

pub(super) enum Message {
    Acquire {
        tried: Vec<KeyId>,
        reply: oneshot::Sender<Selection>,
    },
    Report {
        key: KeyId,
        outcome: Outcome,
    },
    RequestStarted,
    RequestFinished {
        succeeded: bool,
        rotations: u32,
    },
    Stats {
        reply: oneshot::Sender<PoolStats>,
    },
    Status {
        reply: oneshot::Sender<PoolStatus>,
    },
    Reset {
        reply: oneshot::Sender<PoolStatus>,
    },
}

pub(super) fn spawn(state: PoolState) -> mpsc::UnboundedSender<Message> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(run(state, receiver));
    sender
}

async fn run(mut state: PoolState, mut inbox: mpsc::UnboundedReceiver<Message>) {
    while let Some(message) = inbox.recv().await {
        let now = Instant::now();
        // A dropped reply receiver means the request went away; nothing to do.
        match message {
            Message::Acquire { tried, reply } => {
                let _ = reply.send(state.select(now, SystemTime::now(), &tried));
            }
            Message::Report { key, outcome } => {
                state.record(&key, &outcome, now, SystemTime::now())
            }
            Message::RequestStarted => state.request_started(),
            Message::RequestFinished {
                succeeded,
                rotations,
            } => state.request_finished(succeeded, rotations),
            Message::Stats { reply } => {
                let _ = reply.send(state.stats(now));
            }
            Message::Status { reply } => {
                let _ = reply.send(state.status(now));
            }
            Message::Reset { reply } => {
                state.reset();
                let _ = reply.send(state.status(now));
            }
        }
    }
}
