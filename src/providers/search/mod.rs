//! Web search upstreams: SerpApi, Google Custom Search and Brave, each
//! asked in its own dialect and answered in one normalised shape.
//!
//! - `query`: `SearchQuery`, a checked search (what `/api/search` accepts).
//! - `answer`: `SearchPage` and `SearchHit`, the normalised answer.
//! - `client`: `SearchClient`, endpoints and sending, the one dispatch.
//! - `serpapi`, `google_cse`, `brave`: one module per provider (wire
//!   types, conversion, error classification).
//! - `pacific`: the next midnight in America/Los_Angeles (Google's reset).
//!
//! Two of the three take the key in the query string, so no URL built
//! here is ever printed: transport errors are made `without_url()`, and
//! every upstream text is scrubbed by the failover loop.

mod answer;
pub mod brave;
mod client;
pub mod google_cse;
pub mod pacific;
mod query;
pub mod serpapi;

pub use answer::{SearchHit, SearchPage};
pub use client::{SearchClient, SearchFault, config_fault};
pub use query::{QueryError, SafeSearch, SearchQuery};
