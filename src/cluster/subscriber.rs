//! The link's supervisor: connects (with backoff), subscribes, catches up
//! (`sync`), declares the link up, then applies what other replicas publish
//! until the link drops or a task reports trouble. The loss is logged once
//! per outage, and so is the recovery.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;

use super::Ctx;
use super::link::Backoff;
use super::messages::{Body, Envelope};
use crate::domain::ProviderKind;

pub async fn run(ctx: Arc<Ctx>) {
    let mut backoff = Backoff::new();
    let mut epoch: Option<String> = None;
    // Whether the current outage was logged (the first attempt counts as
    // an outage only when it fails).
    let mut outage_logged = false;
    let mut ever_up = false;
    loop {
        match connect_and_catch_up(&ctx, epoch.as_deref()).await {
            Ok((commands, pubsub, now_epoch)) => {
                epoch = Some(now_epoch);
                ctx.generation.fetch_add(1, Ordering::Relaxed);
                ctx.link.set_up(commands);
                backoff.reset();
                if outage_logged || !ever_up {
                    tracing::info!(replica = %ctx.replica, "connected to Redis: sharing key state with the cluster");
                }
                ever_up = true;
                listen(&ctx, pubsub).await;
                ctx.link.set_down();
                tracing::warn!(
                    "lost the link to Redis: serving on this replica's own view until it returns"
                );
                outage_logged = true;
            }
            Err(error) => {
                if !outage_logged {
                    tracing::warn!(
                        %error,
                        "Redis is unreachable: serving on this replica's own view, retrying with backoff"
                    );
                    outage_logged = true;
                }
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn connect_and_catch_up(
    ctx: &Arc<Ctx>,
    epoch: Option<&str>,
) -> redis::RedisResult<(
    redis::aio::MultiplexedConnection,
    redis::aio::PubSub,
    String,
)> {
    let (mut commands, mut pubsub) = ctx.link.connect().await?;
    // Subscribed before reading Redis's marks: nothing published between
    // the read and the subscription can slip through.
    pubsub.subscribe(ctx.names.channel()).await?;
    let epoch = super::sync::catch_up(ctx, &mut commands, epoch).await?;
    Ok((commands, pubsub, epoch))
}

/// Applies messages until the subscription ends or a task saw trouble.
async fn listen(ctx: &Ctx, pubsub: redis::aio::PubSub) {
    let mut messages = pubsub.into_on_message();
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => apply(ctx, message.get_payload_bytes()),
                None => return,
            },
            () = ctx.link.trouble() => {
                // A command failed: check the link with a PING before
                // tearing down a working subscription.
                if let Some(mut conn) = ctx.link.commands()
                    && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
                {
                    continue;
                }
                return;
            }
        }
    }
}

fn apply(ctx: &Ctx, payload: &[u8]) {
    let Some(envelope) = Envelope::decode(payload) else {
        return;
    };
    if envelope.from == ctx.replica {
        return;
    }
    match envelope.body {
        Body::Changes { provider, changes } => {
            let Ok(provider) = provider.parse::<ProviderKind>() else {
                return;
            };
            if let Some(pool) = ctx.pools.get(provider) {
                for change in &changes {
                    pool.apply_remote(change);
                }
            }
        }
        Body::KeysChanged => ctx.keys_changed.notify_one(),
        Body::Bindings { bindings } => {
            for binding in &bindings {
                ctx.affinity.adopt(binding);
            }
        }
    }
}
