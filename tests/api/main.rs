//! Integration tests: keygate's real router and binary against fake
//! upstreams on port 0, a temporary database per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod affinity;
mod alert_sinks;
mod alerts;
mod batches_files;
mod browser;
mod chat;
mod cli;
mod cli_keys;
mod condemnation;
mod dashboard;
mod demo;
mod echoes;
mod ejection;
mod fake_search;
mod helpers;
mod input;
mod large_pools;
mod ledger_rows;
mod lifecycle;
mod limits;
mod metrics;
mod more_routes;
mod openai;
mod outcomes;
mod pg_support;
mod postgres;
mod prices;
mod reasoning;
mod resource_bindings;
mod sdk_routes;
mod search;
mod search_app;
mod search_rules;
mod search_secrets;
mod secrets;
mod shutdown;
mod storage;
mod store_copy;
mod streaming;
mod upstream_bounds;
mod usage;
mod validation;
