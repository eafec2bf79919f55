//! The HTTP server loop. axum's own `serve` bounds nothing about a
//! connection; this loop is the same hyper machinery with every wait a
//! client can impose bounded, so hostile clients cannot hold descriptors
//! or shutdown: a complete request head within HEADER_READ_TIMEOUT_SECS of
//! the accept or the last response, whatever the protocol (hyper's own
//! HTTP/1 header-read timeout also stops slow-loris headers); a request
//! body within BODY_READ_TIMEOUT_SECS of its head; at most MAX_CONNECTIONS
//! open; HTTP/2 peers pinged. On shutdown, connections with nothing in
//! flight close at once and the others get the grace period. Responses,
//! streams included, have no limit here. TCP_NODELAY is on for every
//! connection (small stream frames are not held back by Nagle).
//!
//! - `connection`: one connection's task: the head deadline, and closing
//!   when idle too long, on shutdown, or to make room.
//! - `service`: the service hyper calls per request: requests in flight per
//!   connection, and the body deadline.
//! - `slots`: MAX_CONNECTIONS, and which connection makes room at the cap.
//! - `limits`: the descriptor limit, and the default cap sized from it.

mod connection;
pub mod limits;
mod service;
mod slots;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use service::TrackedService;
use slots::Slots;

/// How often an HTTP/2 peer is pinged, and how long its answer may take
/// before the connection is closed. Idle connections are closed by the head
/// deadline anyway; this finds peers that vanished while a long stream is
/// being sent to them.
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

pub struct ServerSettings {
    /// Longest time a connection may wait for a complete request head, from
    /// its accept or its last response.
    pub header_read_timeout: Duration,
    /// Longest time a request body may take to arrive, from its head.
    pub body_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// After `shutdown`, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, closes idle connections and waits up to the grace period for
/// the others.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let slots = Slots::new(settings.max_connections);
    let (stop, stopped) = watch::channel(false);
    // Every connection task, so that shutdown can wait for them and, after
    // the grace period, end them.
    let mut connections = JoinSet::new();
    let mut refusing = false;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: pause, not spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = ended
                    && error.is_panic()
                {
                    tracing::error!(%error, "a connection task panicked");
                }
                continue;
            }
            () = &mut shutdown => break,
        };
        let Some(slot) = slots.admit() else {
            // Every slot has a request in flight: refuse (close) this one.
            drop(stream);
            if !refusing {
                tracing::warn!(
                    max_connections = settings.max_connections,
                    "connection limit reached with every connection busy; refusing new connections"
                );
            }
            refusing = true;
            continue;
        };
        if refusing {
            tracing::info!("accepting connections again");
            refusing = false;
        }
        let _ = stream.set_nodelay(true);
        let slot = Arc::new(slot);
        let service = TrackedService::new(router.clone(), slot.clone(), settings.body_read_timeout);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        connections.spawn(connection::run(
            connection,
            slot,
            settings.header_read_timeout,
            stopped.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(settings.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = slots.open(),
            "shutdown grace period over; closing the connections still open"
        );
        connections.shutdown().await;
    }
}
