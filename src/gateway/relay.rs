//! Relaying a stream that passed the gate to the client, frame by frame as
//! it arrives (nothing is buffered beyond one frame). A `Render` turns
//! upstream frames into the client's protocol; the relay owns the request's
//! statistics: the key's outcome and the request's success are reported
//! when the stream ends, fails, stalls past the idle timeout, or is dropped
//! because the client hung up (dropping also cancels the upstream request).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::scrub::Scrubber;
use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;

use super::failover::KeyReport;
use super::stream::{FrameStream, GatedStream, ended_early};
use crate::domain::failure::known_error_type;
use crate::domain::usage_row::CLIENT_CLOSED;
use crate::domain::{Failure, Frame, FrameKind, Reading, UpstreamDetail};
use crate::keypool::RequestTracker;
use crate::observe::RequestLog;

/// Writes the client's side of a stream.
pub trait Render: Send + 'static {
    /// One upstream frame (content, bookkeeping, or the upstream's end).
    fn frame(&mut self, frame: &Frame, reading: &Reading, out: &mut Vec<u8>);
    /// After the upstream's own end of message.
    fn finish(&mut self, out: &mut Vec<u8>);
    /// Ends the stream after a failure past the gate: never a clean end.
    fn fail(&mut self, error: &UpstreamDetail, out: &mut Vec<u8>);
}

/// Everything the relay needs besides the stream and the renderer.
pub struct RelayContext {
    pub read: fn(&Frame) -> Reading,
    pub idle_timeout: Duration,
    pub report: KeyReport,
    pub tracker: RequestTracker,
    /// Removes every pool key from upstream error text.
    pub scrubber: Arc<Scrubber>,
    /// The request's record: each frame's usage, and how the stream ended.
    pub log: RequestLog,
}

struct Relay<R> {
    frames: FrameStream,
    render: R,
    read: fn(&Frame) -> Reading,
    idle_timeout: Duration,
    report: KeyReport,
    /// Taken when the stream ends; if the client hangs up first, dropping
    /// it counts the request as failed.
    tracker: Option<RequestTracker>,
    scrubber: Arc<Scrubber>,
    log: RequestLog,
    opening: Option<Vec<u8>>,
    done: bool,
}

pub fn relay_body<R: Render>(gated: GatedStream, render: R, context: RelayContext) -> Body {
    let GatedStream { opened, rest } = gated;
    let mut relay = Relay {
        frames: rest,
        render,
        read: context.read,
        idle_timeout: context.idle_timeout,
        report: context.report,
        tracker: Some(context.tracker),
        scrubber: context.scrubber,
        log: context.log,
        opening: None,
        done: false,
    };
    let mut opening = Vec::new();
    for (frame, reading) in opened {
        if relay.handle(&frame, reading, &mut opening) {
            break;
        }
    }
    relay.opening = Some(opening);
    let stream = futures::stream::unfold(relay, |mut relay| async move {
        if let Some(opening) = relay.opening.take() {
            return Some((Ok::<_, Infallible>(Bytes::from(opening)), relay));
        }
        if relay.done {
            return None;
        }
        let mut out = Vec::new();
        while out.is_empty() && !relay.done {
            relay.step(&mut out).await;
        }
        Some((Ok(Bytes::from(out)), relay))
    });
    Body::from_stream(stream)
}

impl<R: Render> Relay<R> {
    async fn step(&mut self, out: &mut Vec<u8>) {
        match tokio::time::timeout(self.idle_timeout, self.frames.next()).await {
            Err(_) => self.fail(Failure::stalled(self.idle_timeout), out),
            Ok(None) => self.fail(ended_early(), out),
            Ok(Some(Err(failure))) => self.fail(failure, out),
            Ok(Some(Ok(frame))) => {
                let reading = (self.read)(&frame);
                self.handle(&frame, reading, out);
            }
        }
    }

    /// Renders one frame; returns whether the stream is over.
    fn handle(&mut self, frame: &Frame, reading: Reading, out: &mut Vec<u8>) -> bool {
        self.log.frame(&reading);
        match reading.kind {
            FrameKind::Error(failure) => self.fail(*failure, out),
            FrameKind::Finished => {
                self.render.frame(frame, &reading, out);
                self.render.finish(out);
                self.end(true);
            }
            FrameKind::Meta | FrameKind::Content => self.render.frame(frame, &reading, out),
        }
        self.done
    }

    fn fail(&mut self, failure: Failure, out: &mut Vec<u8>) {
        let failure = failure.scrubbed(&self.scrubber);
        tracing::warn!(error_type = %failure.detail().error_type, "stream failed after it started");
        let detail = failure.detail();
        self.render.fail(&detail, out);
        self.log
            .failed(known_error_type(&detail.error_type, detail.status));
        self.report.failed(failure);
        self.end(false);
    }

    fn end(&mut self, succeeded: bool) {
        self.done = true;
        if let Some(tracker) = self.tracker.take() {
            tracker.finish(succeeded);
        }
    }
}

impl<R> Drop for Relay<R> {
    /// Dropped before its end: the client hung up mid-stream.
    fn drop(&mut self) {
        if !self.done {
            self.log.failed(CLIENT_CLOSED);
        }
    }
}

/// Writes one SSE event: an optional `event:` line, then the data, one
/// `data:` line per line of it.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}
