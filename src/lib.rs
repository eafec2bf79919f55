//! keygate: an LLM API gateway that holds a pool of provider API keys per
//! provider, rotates between them on rate limits and rejections, and keeps
//! exact per-key statistics. The `keygate` binary (`main.rs`) only parses
//! the command line; everything else lives here, so integration tests build
//! the same application.
//!
//! # A request's path, in order
//!
//! 1. `server` accepts the connection (deadlines on the request head and
//!    body, the connection cap, shutdown); `routes` matches the route
//!    behind its layers (request id, `Host` check, CORS, body type, body
//!    limit), `auth` checks client or admin keys, `extract` reads the JSON
//!    body.
//! 2. A route handler (`routes::chat`, `routes::messages`,
//!    `routes::completions`) parses its input into a `providers::UpstreamCall`
//!    (via `domain::ChatRequest` for `/api/chat`, via `translate` for a
//!    `claude-` model on `/v1/chat/completions`) and calls the gateway once.
//!    A body it rebuilds is first checked against `limits`, and a large one
//!    waits for its turn at `limits::ConversionGate`. Routes beyond chat
//!    (`routes::embeddings`, `count_tokens`, `responses`, `batches`,
//!    `files`) name their `providers::Endpoint`; a call on a resource only
//!    its creating key can see carries that key (`routes::bindings`, from
//!    `store::bindings`), and the failover loop then uses that key alone.
//! 3. `gateway::Gateway` runs it: `gateway::failover` asks the provider's
//!    `keypool` for a key, `providers::Upstreams::send` makes the attempt,
//!    and a non-2xx answer is classified by the provider's `classify`
//!    module into a `domain::Failure` (a 429 becomes `RateLimited`, with the
//!    cooldown hint read by `providers::ratelimit`). Each attempt's outcome
//!    goes back to the pool from `gateway::KeyReport`'s `Drop`.
//! 4. In the pool, `keypool::machine` applies the outcome to the key's slot;
//!    `keypool::cooldown` decides how long a rate-limited key rests (the
//!    hint clamped, then the ladder).
//! 5. The answer is read whole, or streamed past the first-content gate
//!    (`gateway::stream`) and relayed frame by frame (`gateway::relay`),
//!    rendered by `gateway::render` (or `translate`). The gateway finishes
//!    the request's tracker; `pricing` prices the usage.
//! 6. A web search (`POST`/`GET /api/search`, `routes::search`) takes a
//!    path of its own beside chat: `gateway::search` runs the same failover
//!    loop over the search pools (`serpapi`, `google_cse`, `brave`), asking
//!    `providers::search` and applying each search provider's failure
//!    rules (SerpApi's account lookup on a 429, Google's project-wide daily
//!    quota, Brave's rate-limit windows).
//! 7. Behind the request path, `state_saver` takes each pool's changes every
//!    `STATE_FLUSH_SECS` and `store::pool_state` writes them (cooldowns
//!    included) to the database (SQLite, or PostgreSQL shared by replicas).
//! 7. With `REDIS_URL`, the pool also puts each change to a key's marks in
//!    an outbox its handle drains into a queue (never waited on); `cluster`
//!    publishes them to the other replicas and applies theirs, takes probe
//!    tokens and sums counters, all beside the request path.
//!
//! # Modules, from the leaves up
//!
//! Dependencies point one way (`tests/architecture.rs` fails on a cycle).
//!
//! - `scrub`, `domain`: the vocabulary every module shares (provider kind,
//!   key id and lease, failure and outcome, chat request and usage, stream
//!   frames, checked key fields); they depend on nothing else here.
//! - `raw_json`: reading fields of a body without building a JSON tree.
//! - `error`: `ApiError`, every error answer, logged once.
//! - `limits`: what a rebuilt request may contain, and the gate that lets
//!   only a few large bodies be converted at once.
//! - `crypto`: sealing keys at rest (AES-256-CBC + HMAC-SHA256).
//! - `keypool`: one pool per provider: a pure state machine behind its handle.
//! - `affinity`: which session a request belongs to, and the bounded table
//!   binding each session to the cache scope it last used, so a
//!   conversation stays on keys that share its prompt cache.
//! - `config`, `env_file`: typed configuration from the environment
//!   (`config` reads the alert settings into `alerts::settings`' types).
//! - `pricing`: list prices (built in, and `PRICES_FILE` reloaded as it
//!   changes), the one usage-and-cost builder, the unpriced models seen.
//! - `providers`: each upstream's wire format, classification, endpoints.
//! - `key_check`: checking a key with a cheap upstream call.
//! - `store`: everything SQL; `vault`: stored keys, sealed and opened.
//! - `gateway`: the request path (above); `translate`: OpenAI ⇄ Anthropic.
//! - `cluster`: sharing key marks, probe tokens and counters with other
//!   replicas through Redis (`REDIS_URL`), off the request path.
//! - `state_saver`: saving pool state and picking up CLI key changes;
//!   `key_rechecker`: giving invalid keys another chance.
//! - `alerts`: watching the pools and telling people (webhooks, e-mail)
//!   when keys or providers are in trouble, and when they recover.
//! - `ledger`: the usage ledger behind the request path: the sink a
//!   finished request's row is recorded into (never waiting), the writer
//!   that batches rows into `store::usage`, retention, and the parameters
//!   of its admin routes.
//! - `observe`: each client request's record (`RequestLog`, which becomes
//!   exactly one ledger row) and the Prometheus metrics.
//! - `fields`: one check per client field, the same on every route.
//! - `app_state`, `auth`, `extract`, `routes`: the HTTP surface.
//! - `server`, `startup`, `telemetry`: serving, assembling, logging.
//! - `cli`, `commands`: the command line and its one-shot commands;
//!   `demo`: `keygate demo`, keygate in front of a simulated upstream.

pub mod affinity;
pub mod alerts;
pub mod app_state;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod env_file;
pub mod error;
pub mod extract;
pub mod fields;
pub mod gateway;
pub mod key_check;
pub mod key_rechecker;
pub mod keypool;
pub mod ledger;
pub mod limits;
pub mod observe;
pub mod pricing;
pub mod providers;
pub mod raw_json;
pub mod routes;
pub mod scrub;
pub mod server;
pub mod startup;
pub mod state_saver;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod vault;
