//! The gateway's provider-neutral chat request and reply, the shapes behind
//! `POST /api/chat`. Provider modules convert to and from their wire types.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    User,
    Assistant,
}

#[derive(Debug, Clone)]
pub struct ChatMessage {
    pub role: ChatRole,
    /// A string, or the provider's content blocks, passed through as given.
    pub content: Value,
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub max_tokens: u32,
    pub system: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop_sequences: Option<Vec<String>>,
    /// Ask the upstream for an SSE stream.
    pub stream: bool,
}

/// Token counts as the upstream reported them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens not served from or written to a cache.
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_creation_input_tokens: u64,
    /// Of the cache writes, those with a one-hour lifetime (priced higher).
    #[serde(skip)]
    pub cache_creation_1h_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
            + self.output_tokens
    }
}

#[derive(Debug, Clone)]
pub struct ChatReply {
    pub id: String,
    pub model: String,
    /// The reply's text blocks, concatenated.
    pub content: String,
    pub stop_reason: Option<String>,
    pub usage: Usage,
}
