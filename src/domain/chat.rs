//! The gateway's provider-neutral chat request and reply, the shapes behind
//! `POST /api/chat`. Provider modules convert to and from their wire types.

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    User,
    Assistant,
}

#[derive(Debug, Clone)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: ChatContent,
}

/// A message's content as it goes upstream.
#[derive(Debug, Clone)]
pub enum ChatContent {
    Text(String),
    /// The provider's content blocks as the client wrote them: never parsed
    /// into a JSON tree (which costs tens of times their size), written
    /// upstream byte for byte.
    Blocks(Vec<Box<RawValue>>),
}

impl ChatContent {
    /// Bytes of its JSON: exact for blocks, a little over for text (which
    /// may need escapes).
    fn encoded_len_hint(&self) -> usize {
        match self {
            ChatContent::Text(text) => text_len_hint(text),
            ChatContent::Blocks(blocks) => blocks.iter().map(|b| b.get().len() + 1).sum(),
        }
    }
}

fn text_len_hint(text: &str) -> usize {
    text.len() + text.len() / 8 + 2
}

impl Serialize for ChatContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ChatContent::Text(text) => serializer.serialize_str(text),
            ChatContent::Blocks(blocks) => serializer.collect_seq(blocks),
        }
    }
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

/// `max_tokens` when a client names none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The parts of a chat request every client API has, before they are
/// checked and assembled into a `ChatRequest`.
pub struct ChatParts {
    pub model: String,
    pub max_tokens: Option<u32>,
    /// System prompt pieces, in order: an explicit `system` field, then the
    /// text of each system (or developer) message.
    pub system: Vec<String>,
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop_sequences: Option<Vec<String>>,
    pub stream: bool,
}

impl ChatRequest {
    /// About how long the request is as JSON, in either provider's API: the
    /// capacity for its upstream body, which is written once without
    /// growing (growing a buffer of tens of megabytes copies it, and holds
    /// both copies meanwhile).
    pub fn encoded_len_hint(&self) -> usize {
        let messages: usize = self
            .messages
            .iter()
            .map(|m| m.content.encoded_len_hint() + 32)
            .sum();
        let stops: usize = self
            .stop_sequences
            .iter()
            .flatten()
            .map(|s| text_len_hint(s) + 1)
            .sum();
        let system = self.system.as_deref().map_or(0, text_len_hint);
        messages + stops + system + self.model.len() + 256
    }

    /// Assembles a request. Anthropic has no system role, so the system
    /// pieces are joined into one prompt; the message says what is wrong,
    /// naming the field.
    pub fn assemble(parts: ChatParts) -> Result<Self, &'static str> {
        let max_tokens = parts.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        if max_tokens == 0 {
            return Err("max_tokens: must be at least 1");
        }
        if parts.messages.is_empty() {
            return Err("messages: must contain at least one user or assistant message");
        }
        let system: Vec<String> = parts.system.into_iter().filter(|s| !s.is_empty()).collect();
        Ok(Self {
            model: parts.model,
            max_tokens,
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages: parts.messages,
            temperature: parts.temperature,
            top_p: parts.top_p,
            stop_sequences: parts.stop_sequences,
            stream: parts.stream,
        })
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
