//! Publishes the sessions this replica bound to a cache scope, in batches,
//! so the other replicas send the next turn of a conversation to the same
//! cache. Bindings made while Redis is down are dropped, not kept: a
//! replica that never heard of a session binds it itself on its next turn.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Ctx;
use super::messages::{Body, Envelope};
use crate::affinity::SharedBinding;

/// Most bindings in one message.
const BATCH_MAX: usize = 256;

pub async fn run(ctx: Arc<Ctx>, mut bindings: mpsc::Receiver<SharedBinding>) {
    while let Some(first) = bindings.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            let Ok(next) = bindings.try_recv() else { break };
            batch.push(next);
        }
        let Some(mut conn) = ctx.link.commands() else {
            continue;
        };
        let envelope = Envelope {
            from: ctx.replica.clone(),
            body: Body::Bindings { bindings: batch },
        };
        let published = redis::cmd("PUBLISH")
            .arg(ctx.names.channel())
            .arg(envelope.encode())
            .exec_async(&mut conn)
            .await;
        if let Err(error) = published {
            tracing::debug!(%error, "publishing session bindings failed; dropped");
            ctx.link.report_trouble();
        }
    }
}
