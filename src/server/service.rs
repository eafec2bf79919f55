//! The service hyper calls for each request on a connection: it marks the
//! request in flight on the connection's slot until its response body is
//! dropped (sent whole, or abandoned), and puts the body-read deadline on
//! the request body. Both sit here, below the router, so they cover every
//! route, and neither touches a response: a stream may last as long as the
//! upstream keeps it going.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::service::TowerToHyperService;
use tokio::time::{Instant, Sleep};

use super::slots::{RequestGuard, Slot};
use crate::error::BodyReadTimeout;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One connection's service: the router, tracked.
#[derive(Clone)]
pub(super) struct TrackedService {
    router: TowerToHyperService<Router>,
    slot: Arc<Slot>,
    body_read_timeout: Duration,
}

impl TrackedService {
    pub(super) fn new(router: Router, slot: Arc<Slot>, body_read_timeout: Duration) -> Self {
        Self {
            router: TowerToHyperService::new(router),
            slot,
            body_read_timeout,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for TrackedService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // Counted from here, inside the connection's own poll, so the
        // connection task never sees a head parsed but not yet in flight.
        let guard = self.slot.request_started();
        let timeout = self.body_read_timeout;
        let request = request.map(|body| Body::new(DeadlineBody::new(body, timeout)));
        let response = hyper::service::Service::call(&self.router, request);
        Box::pin(async move {
            // A request abandoned before its response (HTTP/2 stream reset)
            // drops `guard` here, which ends it too.
            let response = response.await?;
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _guard: guard,
            }))
        })
    }
}

/// A response body that keeps its request in flight until dropped.
pub(super) struct TrackedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails with `BodyReadTimeout` if it has not arrived
/// whole by its deadline. The deadline is checked whenever the client has
/// nothing more to give, so a trickle and a stall are both cut; a body
/// that nobody reads costs nothing.
struct DeadlineBody {
    inner: Incoming,
    /// When the body must be whole; `None` once it is (or had nothing to
    /// send).
    due: Option<Instant>,
    /// The timer, made only once the client keeps the body waiting: a
    /// body that arrives with its head (most do) never registers one.
    timer: Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    timed_out: bool,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        let due = (!inner.is_end_stream()).then(|| Instant::now() + timeout);
        Self {
            inner,
            due,
            timer: None,
            timeout,
            timed_out: false,
        }
    }

    fn timeout_error(&self) -> BoxError {
        Box::new(BodyReadTimeout {
            after: self.timeout,
        })
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.timed_out {
            return Poll::Ready(Some(Err(this.timeout_error())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() || this.inner.is_end_stream() {
                this.due = None;
                this.timer = None;
            }
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        let Some(due) = this.due else {
            return Poll::Pending;
        };
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        ready!(timer.as_mut().poll(cx));
        this.due = None;
        this.timer = None;
        this.timed_out = true;
        Poll::Ready(Some(Err(this.timeout_error())))
    }

    fn is_end_stream(&self) -> bool {
        !self.timed_out && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
