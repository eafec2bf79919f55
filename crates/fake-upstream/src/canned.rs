//! `Canned`: one scripted answer (status, headers, body, timing) and how it
//! becomes an HTTP response. The body is kept as chunks (one per SSE frame)
//! so a streamed answer is written chunk by chunk from a real stream, never
//! buffered, and can be paced, cut or stalled between chunks.

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt, stream};
use serde_json::{Value, json};

use super::anthropic::{DEFAULT_ANTHROPIC_MODEL, anthropic_message};
use super::sse::SseFrame;

/// One scripted upstream answer. Build it with a constructor, then adjust it
/// with the modifiers; the modifiers apply to any body, though they matter
/// most for [`Canned::sse`].
#[derive(Clone, Debug)]
pub struct Canned {
    status: u16,
    /// Applied in order; a later header replaces an earlier one of the same name.
    headers: Vec<(String, String)>,
    chunks: Vec<Bytes>,
    /// Before the response headers.
    delay: Duration,
    /// Before each chunk.
    pace: Duration,
    end: End,
}

/// How the body ends after its chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Complete,
    CutAfter(usize),
    StallAfter(usize),
}

impl Canned {
    /// A successful Anthropic message with `text` (model
    /// claude-sonnet-4-20250514, 25 input and 86 output tokens).
    pub fn reply(text: &str) -> Self {
        Self::json(200, anthropic_message(text, DEFAULT_ANTHROPIC_MODEL))
    }

    /// `body` as `application/json` with `status`.
    pub fn json(status: u16, body: Value) -> Self {
        Self::raw(status, "application/json", body.to_string())
    }

    /// Any bytes with any content type, e.g. a malformed body.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            chunks: vec![body.into()],
            delay: Duration::ZERO,
            pace: Duration::ZERO,
            end: End::Complete,
        }
    }

    /// An Anthropic-shaped error: `{"type":"error","error":{type, message},"request_id"}`.
    pub fn error(status: u16, error_type: &str, message: &str) -> Self {
        Self::json(
            status,
            json!({
                "type": "error",
                "error": {"type": error_type, "message": message},
                "request_id": "req_fake"
            }),
        )
    }

    /// An OpenAI-shaped error: `{"error":{message, type, "param":null, code}}`.
    pub fn openai_error(status: u16, error_type: &str, code: Option<&str>, message: &str) -> Self {
        Self::json(
            status,
            json!({
                "error": {"message": message, "type": error_type, "param": null, "code": code}
            }),
        )
    }

    /// A 200 `text/event-stream` answer sending `frames` one chunk each.
    pub fn sse(frames: impl IntoIterator<Item = SseFrame>) -> Self {
        Self {
            chunks: frames.into_iter().map(|frame| frame.encode()).collect(),
            ..Self::raw(200, "text/event-stream", Bytes::new())
        }
        .header("cache-control", "no-cache")
    }

    /// Adds (or replaces) a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Appends a raw chunk to the body (e.g. a malformed frame after good ones).
    pub fn chunk(mut self, chunk: impl Into<Bytes>) -> Self {
        self.chunks.push(chunk.into());
        self
    }

    /// Waits `delay` before sending the response headers.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Waits `pace` before each frame (chunk) of the body.
    pub fn paced(mut self, pace: Duration) -> Self {
        self.pace = pace;
        self
    }

    /// Sends the first `n` frames, then fails the body so the connection
    /// breaks mid-response (the client sees a body error, not a clean end).
    /// With `n` at or past the frame count, every frame goes out first.
    pub fn cut_after(mut self, n: usize) -> Self {
        self.end = End::CutAfter(n);
        self
    }

    /// Sends the first `n` frames, then neither sends more nor ends.
    pub fn stall_after(mut self, n: usize) -> Self {
        self.end = End::StallAfter(n);
        self
    }

    /// Waits out the delay, then answers.
    pub(super) async fn respond(self) -> Response {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.into_response()
    }
}

impl IntoResponse for Canned {
    /// Builds the response immediately (the delay is `respond`'s job). A
    /// script with an invalid status or header is a bug in the test, so it
    /// is logged and answered with a 500 rather than silently fixed.
    fn into_response(self) -> Response {
        let Ok(status) = StatusCode::from_u16(self.status) else {
            return internal_trouble(&format!("invalid status {}", self.status));
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(value)) => {
                    headers.insert(name, value);
                }
                _ => return internal_trouble(&format!("invalid header {name}: {value:?}")),
            }
        }
        // A plain answer gets one body with a content-length, like a real
        // JSON reply; anything timed or broken needs a chunked stream.
        let body = if self.pace.is_zero() && self.end == End::Complete {
            Body::from(self.chunks.concat())
        } else {
            Body::from_stream(chunk_stream(self.chunks, self.pace, self.end))
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

fn internal_trouble(problem: &str) -> Response {
    tracing::error!(problem, "fake upstream cannot play its script");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("fake upstream: {problem}"),
    )
        .into_response()
}

/// The body as a stream: each chunk after `pace`, then the chosen ending.
fn chunk_stream(
    chunks: Vec<Bytes>,
    pace: Duration,
    end: End,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let shown = match end {
        End::Complete => chunks.len(),
        End::CutAfter(n) | End::StallAfter(n) => n,
    };
    let sent = stream::iter(chunks.into_iter().take(shown)).then(move |chunk| async move {
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
        Ok(chunk)
    });
    let ending = stream::once(async move {
        match end {
            End::Complete => None,
            End::CutAfter(_) => {
                // Returning Pending once lets hyper flush the frames already
                // written; an immediate error would drop them along with the
                // connection, and the client would see no frames at all.
                tokio::task::yield_now().await;
                Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "fake upstream cut the stream",
                )))
            }
            End::StallAfter(_) => std::future::pending().await,
        }
    })
    .filter_map(std::future::ready);
    sent.chain(ending)
}
