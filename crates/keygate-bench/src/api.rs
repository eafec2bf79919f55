//! The two APIs the bench drives: the request each sends (a small chat turn,
//! streamed or not) and how a stream's first content event is recognised,
//! which is where time-to-first-token stops.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

/// The gateway keys keygate (`GATEWAY_API_KEYS`) and the baseline accept.
pub const CLIENT_KEYS: [&str; 2] = ["kg-bench-client-1", "kg-bench-client-2"];

/// The one the load generator presents: the last, so a check that walks the
/// list walks all of it.
pub const CLIENT_KEY: &str = CLIENT_KEYS[1];

/// An API under test, served by the fake, keygate and the baseline alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `POST /v1/messages`.
    Anthropic,
    /// `POST /v1/chat/completions`.
    OpenAi,
}

impl Api {
    pub const ALL: [Api; 2] = [Api::Anthropic, Api::OpenAi];

    pub fn name(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic",
            Api::OpenAi => "openai",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Api::Anthropic => "/v1/messages",
            Api::OpenAi => "/v1/chat/completions",
        }
    }

    /// The JSON body of one request; with `cacheable`, a conversation
    /// whose system prompt (about 1,600 tokens) is long enough to cache,
    /// so keygate's cache affinity looks its session up.
    pub fn body(self, stream: bool, cacheable: bool) -> Bytes {
        let mut messages = vec![json!({"role": "user", "content": "Say hello"})];
        let system = cacheable.then(|| "You are a careful assistant. ".repeat(230));
        let body = match self {
            Api::Anthropic => {
                let mut body = json!({
                    "model": "claude-sonnet-4-20250514", "max_tokens": 256,
                    "messages": messages, "stream": stream
                });
                if let Some(system) = system {
                    body["system"] = system.into();
                }
                body
            }
            Api::OpenAi => {
                if let Some(system) = system {
                    messages.insert(0, json!({"role": "system", "content": system}));
                }
                json!({"model": "gpt-4o-mini", "messages": messages, "stream": stream})
            }
        };
        Bytes::from(body.to_string())
    }

    /// The client's headers: [`CLIENT_KEY`] as each SDK sends it. keygate
    /// and the baseline check it and swap in an upstream key; the fake
    /// accepts anything, so the direct path sends the same headers and the
    /// generator's work is the same on every path.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Api::Anthropic => &[
                ("x-api-key", CLIENT_KEY),
                ("anthropic-version", "2023-06-01"),
            ],
            // `concat!` takes literals only: a test checks it is CLIENT_KEY.
            Api::OpenAi => &[("authorization", "Bearer kg-bench-client-2")],
        }
    }

    /// Whether the SSE `data:` payload `data` carries the first content:
    /// Anthropic's `content_block_delta`, or an OpenAI chunk with non-empty
    /// `delta.content` (the first chunk only carries the role and "").
    pub fn is_content(self, data: &str) -> bool {
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            return false;
        };
        match self {
            Api::Anthropic => event["type"] == "content_block_delta",
            Api::OpenAi => event["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
        }
    }
}

/// Splits a byte stream into lines, keeping a partial last line for later.
#[derive(Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Adds `chunk` and returns whether any complete `data:` line in the text
    /// so far satisfies `found`; consumed lines are dropped.
    pub fn feed(&mut self, chunk: &[u8], mut found: impl FnMut(&str) -> bool) -> bool {
        self.pending.extend_from_slice(chunk);
        let mut hit = false;
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(data) = line.trim_end().strip_prefix("data:") {
                hit = hit || found(data.trim_start());
            }
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fake_upstream::{anthropic_stream_frames, openai_stream_frames};

    /// The index of the frame at which each API's first content is seen.
    fn first_content_frame(api: Api, frames: &[Bytes]) -> Option<usize> {
        let mut lines = Lines::default();
        frames
            .iter()
            .position(|frame| lines.feed(frame, |data| api.is_content(data)))
    }

    #[test]
    fn first_content_is_the_first_text_delta_of_either_api() {
        let anthropic: Vec<Bytes> = anthropic_stream_frames(&["Hi", " there"])
            .iter()
            .map(|frame| frame.encode())
            .collect();
        let found = first_content_frame(Api::Anthropic, &anthropic);
        assert!(found.is_some_and(|i| i > 0), "{found:?}");
        let openai: Vec<Bytes> = openai_stream_frames(&["Hi"], false)
            .iter()
            .map(|frame| frame.encode())
            .collect();
        // Frame 0 carries the role and empty content: not content yet.
        assert_eq!(first_content_frame(Api::OpenAi, &openai), Some(1));
    }

    #[test]
    fn both_apis_present_the_client_key() {
        let presented = |api: Api, name: &str| {
            api.headers()
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, value)| *value)
        };
        assert_eq!(presented(Api::Anthropic, "x-api-key"), Some(CLIENT_KEY));
        assert_eq!(
            presented(Api::OpenAi, "authorization"),
            Some(format!("Bearer {CLIENT_KEY}").as_str())
        );
    }

    #[test]
    fn a_line_split_across_chunks_is_seen_once_complete() {
        let mut lines = Lines::default();
        let api = Api::Anthropic;
        assert!(!lines.feed(b"data: {\"type\":\"content_bl", |d| api.is_content(d)));
        assert!(lines.feed(b"ock_delta\"}\n\n", |d| api.is_content(d)));
    }
}
