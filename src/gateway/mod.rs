//! The provider-neutral part of serving a request: the gateway's own chat
//! shapes, how an upstream failure is classified, and the failover loop that
//! moves a request across keys.

pub mod chat;
pub mod failover;
pub mod failure;
pub mod relay;
pub mod retry_after;
pub mod stream;

pub use chat::{ChatMessage, ChatReply, ChatRequest, ChatRole, Usage};
pub use failover::{Answered, GatewayError, KeyReport, RetryPolicy, with_failover};
pub use failure::{Failure, UpstreamDetail};
