//! The request path, provider-neutral: everything between a parsed client
//! request and the answer a route renders.
//!
//! - `proxy`: `Gateway`, the one entry point: pick keys, attempt, classify,
//!   relay, finish the request's tracker, add the gateway's headers.
//! - `failover`: the retry loop across keys, and `KeyReport`, which reports
//!   each attempt's outcome to the pool exactly once (from `Drop`).
//! - `stream`: reading an upstream SSE stream up to the first-content gate.
//! - `relay`: relaying a gated stream to the client frame by frame.
//! - `render`: how frames and answers reach each kind of client.
//! - `search`: `/api/search`'s path across the search pools, with each
//!   search provider's failure rules; `search_cache`: its optional cache.
//! - `error`: how a gateway failure becomes the client's status and body.

mod error;
pub mod failover;
mod proxy;
pub mod relay;
pub mod render;
pub mod search;
mod search_cache;
pub mod stream;

pub use failover::{Answered, GatewayError, KeyReport, RetryPolicy, with_failover};
pub use proxy::{Gateway, Proxied};
pub use search::{Choice, SearchAnswer, SearchGateway};
