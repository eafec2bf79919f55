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

/// Longest stream line accepted: real events are a few KB; an upstream
/// that never sends a newline would otherwise make the parser buffer
/// without end.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The upstream body as frames; metadata-only blocks are skipped.
pub fn frames(response: reqwest::Response) -> FrameStream {
    let bytes = line_bounded(response.bytes_stream(), MAX_LINE_BYTES);
    let events = SseByteStream::new(bytes).filter_map(|item| async move {
        match item {
            Ok(sse) if sse.data.is_none() && sse.event.is_none() => None,
            Ok(sse) => Some(Ok(Frame {
                event: sse.event,
                data: sse.data.unwrap_or_default(),
            })),
            Err(sse_stream::Error::Body(error))
                if matches!(error.downcast_ref::<BodyError>(), Some(BodyError::Line(_))) =>
            {
                Some(Err(Failure::malformed(&format!(
                    "a stream line is longer than {MAX_LINE_BYTES} bytes"
                ))))
            }
            Err(_) => Some(Err(stream_broke())),
        }
    });
    Box::pin(events)
}

#[derive(Debug, thiserror::Error)]
#[error("a stream line is longer than the limit")]
struct LineTooLong;

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error(transparent)]
    Line(#[from] LineTooLong),
    #[error(transparent)]
    Read(#[from] reqwest::Error),
}

/// `chunks`, failing once a line (bytes between breaks, across chunks)
/// is longer than `limit`.
fn line_bounded(
    chunks: impl Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
    limit: usize,
) -> impl Stream<Item = Result<bytes::Bytes, BodyError>> + Send {
    let mut since_break = 0usize;
    chunks.map(move |chunk| {
        let chunk = chunk.map_err(BodyError::from)?;
        let mut line_start = 0;
        for at in memchr::memchr2_iter(b'\n', b'\r', &chunk) {
            if since_break + (at - line_start) > limit {
                return Err(BodyError::from(LineTooLong));
            }
            since_break = 0;
            line_start = at + 1;
        }
        since_break += chunk.len() - line_start;
        if since_break > limit {
            return Err(BodyError::from(LineTooLong));
        }
        Ok(chunk)
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    async fn bounded(chunks: &[&str], limit: usize) -> Result<usize, ()> {
        let chunks: Vec<Result<Bytes, reqwest::Error>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c.as_bytes())))
            .collect();
        let mut stream = std::pin::pin!(line_bounded(futures::stream::iter(chunks), limit));
        let mut passed = 0;
        while let Some(item) = stream.next().await {
            item.map_err(|_| ())?;
            passed += 1;
        }
        Ok(passed)
    }

    #[tokio::test]
    async fn a_line_is_bounded_within_and_across_chunks() {
        assert_eq!(bounded(&["abcd\nefgh\n"], 4).await, Ok(1));
        assert_eq!(bounded(&["abcde\n"], 4).await, Err(()));
        assert_eq!(bounded(&["ab", "cd", "\nx"], 4).await, Ok(3));
        assert_eq!(bounded(&["ab", "cd", "e\n"], 4).await, Err(()));
        assert_eq!(bounded(&["abc\r", "defg", "\r\nhijk"], 4).await, Ok(3));
        assert_eq!(bounded(&["x\nabcdefgh\ny"], 4).await, Err(()));
    }
}
