//! Reading an upstream SSE stream up to the first-content gate.
//!
//! A stream counts as an answer only once the upstream said 2xx AND sent its
//! first content event. Everything before that (an `error` event, a stream
//! that closes empty, a stall) is a failed attempt like any other, so the
//! failover loop can still move to another key; the client has received no
//! byte yet. Frames read before the gate are kept and replayed to the client.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use sse_stream::SseByteStream;

use crate::domain::{Failure, Frame, FrameKind, Reading, UpstreamDetail};

pub type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, Failure>> + Send>>;

/// The upstream body as frames; metadata-only blocks are skipped.
pub fn frames(response: reqwest::Response) -> FrameStream {
    let events = SseByteStream::new(response.bytes_stream()).filter_map(|item| async move {
        match item {
            Ok(sse) if sse.data.is_none() && sse.event.is_none() => None,
            Ok(sse) => Some(Ok(Frame {
                event: sse.event,
                data: sse.data.unwrap_or_default(),
            })),
            Err(_) => Some(Err(stream_broke())),
        }
    });
    Box::pin(events)
}

/// A stream that has passed the gate: the frames read so far, and the rest.
pub struct GatedStream {
    pub opened: Vec<(Frame, Reading)>,
    pub rest: FrameStream,
}

/// Reads frames until the first content (or a complete empty answer). Fails
/// like an attempt would on an error event, an empty stream or a stall
/// longer than `idle_timeout`.
pub async fn pass_gate(
    mut frames: FrameStream,
    read: fn(&Frame) -> Reading,
    idle_timeout: Duration,
) -> Result<GatedStream, Failure> {
    let mut opened = Vec::new();
    loop {
        let frame = match tokio::time::timeout(idle_timeout, frames.next()).await {
            Err(_) => return Err(Failure::stalled(idle_timeout)),
            Ok(None) => return Err(closed_before_content()),
            Ok(Some(frame)) => frame?,
        };
        let reading = read(&frame);
        match &reading.kind {
            FrameKind::Error(failure) => return Err((**failure).clone()),
            FrameKind::Meta => opened.push((frame, reading)),
            FrameKind::Content | FrameKind::Finished => {
                opened.push((frame, reading));
                return Ok(GatedStream {
                    opened,
                    rest: frames,
                });
            }
        }
    }
}

fn closed_before_content() -> Failure {
    Failure::ProviderFault(UpstreamDetail {
        status: None,
        error_type: "empty_stream".into(),
        message: "the upstream stream closed before any content".into(),
    })
}

pub fn stream_broke() -> Failure {
    Failure::ProviderFault(UpstreamDetail {
        status: None,
        error_type: "network_error".into(),
        message: "the upstream stream broke off".into(),
    })
}

pub fn ended_early() -> Failure {
    Failure::ProviderFault(UpstreamDetail {
        status: None,
        error_type: "incomplete_stream".into(),
        message: "the upstream stream ended before the message was complete".into(),
    })
}
