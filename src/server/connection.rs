//! One connection's task: serves it, and closes it when it waits too long
//! for a request head, when its slot is needed, or when the server stops.
//!
//! One rule covers every protocol: a connection with no request in flight
//! must bring a complete request head within HEADER_READ_TIMEOUT_SECS of
//! being accepted or of its last response. hyper's own header-read timeout
//! only starts once HTTP/1 is recognised, so a silent connection, a bare
//! HTTP/2 preface or an idle HTTP/2 connection would otherwise stay open
//! for ever. A connection that never sent a head is simply dropped (there
//! is nothing to finish); one that was served is closed gracefully (its
//! last response may still be flushing, HTTP/2 says GOAWAY) and dropped if
//! that takes longer than `CLOSE_LINGER`.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::UpgradeableConnection;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::service::TrackedService;
use super::slots::Slot;

pub(super) type Connection =
    UpgradeableConnection<'static, TokioIo<TcpStream>, TrackedService, TokioExecutor>;

/// How long a connection asked to close gracefully, with nothing in
/// flight, may take about it: enough to flush a last response, and a bound
/// on HTTP/2's GOAWAY, which waits for a PING answer that a silent client
/// never sends.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Drives `connection` to its end (see the module comment). `stop` turns
/// true when the server shuts down.
pub(super) async fn run(
    connection: Connection,
    slot: Arc<Slot>,
    head_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    tokio::pin!(connection);
    let mut stopping = false;
    let mut closing_since: Option<Instant> = None;
    loop {
        let activity = slot.activity();
        let idle = activity.in_flight == 0;
        stopping |= *stop.borrow();
        let now = Instant::now();
        let head_due = idle && activity.idle_since + head_timeout <= now;
        if closing_since.is_none() && (stopping || activity.evicted || head_due) {
            if head_due {
                tracing::debug!("closing a connection: no request head in time");
            } else if activity.evicted {
                tracing::debug!("closing an idle connection to make room for a new one");
            }
            if idle && !activity.served {
                return;
            }
            // In flight: hyper finishes the requests, then closes (bounded
            // by the server's grace period on shutdown).
            connection.as_mut().graceful_shutdown();
            slot.closing();
            closing_since = Some(now);
        }
        // While nothing is in flight, when to give up on the connection;
        // while something is, when to look again (request ends do not wake
        // this task unless it is closing: see `Slot::closing`).
        let deadline = match closing_since {
            None if !idle => Some(now + head_timeout),
            _ if !idle => None,
            None => Some(activity.idle_since + head_timeout),
            Some(since) => Some(since.max(activity.idle_since) + CLOSE_LINGER),
        };
        if closing_since.is_some() && deadline.is_some_and(|deadline| deadline <= now) {
            return;
        }
        tokio::select! {
            _ = connection.as_mut() => return,
            () = sleep_until(deadline) => {}
            () = slot.changed() => {}
            changed = stop.changed(), if !stopping => {
                // The sender gone means the server is gone: stop as well.
                stopping |= changed.is_err();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
