//! The gateway's provider-neutral chat request and reply, the shapes behind
//! `POST /api/chat`. Provider modules convert to and from their wire types.

use serde_json::Value;

use super::Usage;

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
