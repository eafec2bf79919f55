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

use super::chat::Usage;
use super::failure::{Failure, UpstreamDetail};

/// One SSE event as the upstream sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub event: Option<String>,
    pub data: String,
}

/// What a frame means to the gateway, whatever the provider.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FrameKind {
    /// Bookkeeping (message start, ping, role-only chunk).
    #[default]
    Meta,
    /// Part of the answer: text, a tool call, a stop reason.
    Content,
    /// The upstream's own end of the message.
    Finished,
    /// The upstream reported an error inside the stream.
    Error(Box<Failure>),
}

/// A frame as read by its provider module.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub kind: FrameKind,
    pub text: Option<String>,
    pub message_id: Option<String>,
    pub model: Option<String>,
    pub stop_reason: Option<String>,
    pub usage: UsagePatch,
}

/// Token counts a frame reports. Providers send cumulative totals, so the
/// latest value of each field wins.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UsagePatch {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_creation_1h_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
}

impl Usage {
    pub fn apply(&mut self, patch: &UsagePatch) {
        let set = |field: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *field = value;
            }
        };
        set(&mut self.input_tokens, patch.input_tokens);
        set(&mut self.output_tokens, patch.output_tokens);
        set(
            &mut self.cache_creation_input_tokens,
            patch.cache_creation_input_tokens,
        );
        set(
            &mut self.cache_creation_1h_tokens,
            patch.cache_creation_1h_tokens,
        );
        set(
            &mut self.cache_read_input_tokens,
            patch.cache_read_input_tokens,
        );
    }
}

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
