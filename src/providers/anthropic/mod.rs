//! Anthropic's Messages API: wire types, conversion from the gateway's chat
//! shape, the HTTP call and error classification.

mod client;
mod convert;
pub mod wire;

pub use client::create_message;
pub use convert::{reply_from_wire, request_body};

pub const DEFAULT_MODEL: &str = "claude-sonnet-4-20250514";
/// The API version keygate speaks upstream.
pub const API_VERSION: &str = "2023-06-01";
