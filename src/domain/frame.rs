//! Stream frames: one upstream SSE event, and what it means to the gateway
//! once its provider module has read it.

use super::{Failure, UsagePatch};

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
