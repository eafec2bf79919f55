//! keygate: an LLM API gateway that holds a pool of provider API keys per
//! provider, rotates between them on rate limits and rejections, and keeps
//! exact per-key statistics.
//!
//! The binaries (`src/main.rs`, and `src/bin/fake-upstream.rs` for the test
//! upstream) only parse the command line; everything else lives here so
//! integration tests can build the same application.

pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod env_file;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod key_rules;
pub mod keypool;
pub mod keytest;
pub mod pricing;
pub mod providers;
pub mod render;
pub mod routes;
pub mod scrub;
pub mod server;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod vault;
