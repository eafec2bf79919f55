//! A fake LLM provider for tests, benchmarks and SDK checks: an axum server
//! speaking enough of the Anthropic Messages and OpenAI Chat Completions
//! wire formats (JSON and SSE) to stand in for the real APIs.
//!
//! Routes: `POST /v1/messages`, `POST /v1/chat/completions`, `GET /v1/models`,
//! `POST /v1/messages/count_tokens`, `POST /v1/embeddings`, and OpenAI's
//! Responses API (`POST /v1/responses`, `GET`/`DELETE /v1/responses/{id}`,
//! `POST /v1/responses/{id}/cancel`), Anthropic's message batches
//! (`/v1/messages/batches…`), OpenAI's files (`/v1/files…`, multipart
//! uploads) and batches (`/v1/batches…`). Stored responses, batches and
//! files are visible only to the key that created them, as the real
//! APIs' are; a batch has ended by its first poll.
//! A call's key is its `x-api-key`, else its `Authorization: Bearer` token.
//! Per key, a test scripts answers with [`FakeUpstream::queue`] (one per
//! call, on any route) and [`FakeUpstream::always`]; an unscripted call gets
//! the route's default: "Hello from the fake upstream", 25 input and 86
//! output tokens, streamed when the body asks for `"stream": true`, with
//! realistic request-id and rate-limit headers. OpenAI default answers to
//! a reasoning model or a request for reasoning report some of their
//! output tokens as reasoning ([`REASONING_TOKENS`]). Default answers to a
//! prompt long enough to cache report the cache use of the key's
//! organisation ([`prompt_cache`]: reads where its prefix was cached,
//! writes where not).
//!
//! Not production code: `FakeUpstream::start` panics if it cannot bind, and
//! every call is kept in memory for [`FakeUpstream::calls`] (the standalone
//! [`serve`] records nothing, so a long benchmark does not grow).

mod anthropic;
mod batches;
mod canned;
mod chaos;
mod handler;
mod openai;
pub mod prompt_cache;
mod reasoning;
mod responses;
mod sse;
mod stored;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::serve::ListenerExt;
use serde_json::Value;
use tokio::net::TcpListener;

pub use anthropic::{
    DEFAULT_ANTHROPIC_MODEL, anthropic_message, anthropic_stream_frames,
    anthropic_stream_frames_for,
};
pub use canned::Canned;
pub use chaos::{ChaosConfig, Fault, ResetFlavour};
pub use openai::{
    DEFAULT_OPENAI_MODEL, openai_completion, openai_stream_frames, openai_stream_frames_for,
};
pub use reasoning::REASONING_TOKENS;
pub use responses::{EMBEDDING_TOKENS_PER_INPUT, response_object, response_stream_frames};
pub use sse::SseFrame;

/// The text of every default answer.
pub const DEFAULT_TEXT: &str = "Hello from the fake upstream";
/// Input (prompt) tokens reported by default answers and the builders.
pub const INPUT_TOKENS: u64 = 25;
/// Output (completion) tokens reported by default answers and the builders.
pub const OUTPUT_TOKENS: u64 = 86;

/// How default streams split [`DEFAULT_TEXT`].
const DEFAULT_PIECES: [&str; 5] = ["Hello", " from", " the", " fake", " upstream"];

/// Server-wide behaviour of the default answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    /// Delay before each frame of a default stream (scripted answers set
    /// their own pacing).
    pub stream_delay: Duration,
}

/// A request the fake upstream received.
#[derive(Clone, Debug)]
pub struct Call {
    /// From `x-api-key`, else `Authorization: Bearer`; empty if neither.
    pub key: String,
    /// e.g. `/v1/messages`.
    pub path: String,
    pub headers: HeaderMap,
    /// The JSON body, or `Null` if there was none or it was not JSON.
    pub body: Value,
    /// When the fake had read the whole request (before answering).
    pub received: Instant,
    /// In chaos mode, what the fake answered; `None` for scripted and
    /// default answers.
    pub fault: Option<Fault>,
}

/// A fake upstream serving on 127.0.0.1, scripted per key.
#[derive(Clone)]
pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT`, to use as a provider base URL.
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeUpstream {
    /// Starts a fake on a free port with default settings.
    #[expect(
        clippy::expect_used,
        reason = "a test cannot go on without its upstream; start_with returns the error"
    )]
    pub async fn start() -> Self {
        Self::start_with(Settings::default())
            .await
            .expect("the fake upstream binds 127.0.0.1:0")
    }

    /// Starts a fake on a free port. It serves until the runtime shuts down
    /// (the end of a `#[tokio::test]`), so the task is deliberately not
    /// tracked.
    pub async fn start_with(settings: Settings) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::new(settings, true));
        let app = handler::router(shared.clone());
        tokio::spawn(async move {
            if let Err(error) = run(listener, app).await {
                tracing::error!(%error, "fake upstream stopped");
            }
        });
        Ok(Self { url, shared })
    }

    /// Queues `answers` for `key`, one per call, before its standing answer.
    pub fn queue(&self, key: &str, answers: impl IntoIterator<Item = Canned>) {
        self.shared
            .script()
            .queued
            .entry(key.to_string())
            .or_default()
            .extend(answers);
    }

    /// Answers every call with `key` with `answer` (after any queued ones).
    pub fn always(&self, key: &str, answer: Canned) {
        self.shared.script().always.insert(key.to_string(), answer);
    }

    /// Turns on chaos mode: every call no script covers gets an answer
    /// picked by [`ChaosConfig`]'s seeded RNG, recorded in [`Call::fault`].
    pub fn chaos(&self, config: ChaosConfig) {
        self.shared.script().chaos = Some(chaos::Chaos::new(config));
    }

    /// Puts `key` in organisation `org`, whose prompt cache its default
    /// answers use (see [`prompt_cache`]).
    pub fn assign_org(&self, key: &str, org: &str) {
        self.shared.script().cache.assign(key, org);
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.script().calls.clone()
    }

    /// How many calls used `key`.
    pub fn calls_with(&self, key: &str) -> usize {
        self.shared
            .script()
            .calls
            .iter()
            .filter(|call| call.key == key)
            .count()
    }

    /// How many calls each key made.
    pub fn calls_per_key(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for call in &self.shared.script().calls {
            *counts.entry(call.key.clone()).or_default() += 1;
        }
        counts
    }
}

/// Serves the default behaviour on `listener` until the process ends; for
/// the `fake-upstream` binary. Calls are not recorded.
pub async fn serve(listener: TcpListener, settings: Settings) -> io::Result<()> {
    run(
        listener,
        handler::router(Arc::new(Shared::new(settings, false))),
    )
    .await
}

async fn run(listener: TcpListener, app: Router) -> io::Result<()> {
    // Paced frames are small writes; with Nagle on, each would wait for the
    // previous one's ACK and the client would see them late and merged.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "fake upstream cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app).await
}

/// What the handlers share: the script and the settings.
struct Shared {
    script: Mutex<Script>,
    /// Resources kept between calls; a lock of its own, never held with
    /// `script`'s.
    stored: Mutex<stored::Stored>,
    settings: Settings,
}

impl Shared {
    fn new(settings: Settings, record: bool) -> Self {
        Self {
            script: Mutex::new(Script {
                record,
                ..Script::default()
            }),
            stored: Mutex::new(stored::Stored::default()),
            settings,
        }
    }

    /// The lock is never held across an await, and a panic under it leaves
    /// the maps consistent, so a poisoned lock is still usable.
    fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Like `script`: never held across an await, usable after a panic.
    fn stored(&self) -> MutexGuard<'_, stored::Stored> {
        self.stored.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Script {
    /// Answers consumed one per call, per key.
    queued: HashMap<String, VecDeque<Canned>>,
    /// The answer for a key once its queue is empty.
    always: HashMap<String, Canned>,
    /// Whether to keep `calls`.
    record: bool,
    calls: Vec<Call>,
    /// Chaos mode, when on.
    chaos: Option<chaos::Chaos>,
    /// Every organisation's prompt cache.
    cache: prompt_cache::PromptCache,
}

impl Script {
    /// Records `call` and returns what to play: the key's script, else a
    /// chaos pick, else `None` for the route's default. Recording and
    /// picking happen under one lock, so the record is exact under any
    /// concurrency and lists calls in the order their answers were chosen.
    fn answer(&mut self, mut call: Call, dialect: chaos::Dialect) -> Option<chaos::Play> {
        let queued = self.queued.get_mut(&call.key).and_then(VecDeque::pop_front);
        let scripted = queued.or_else(|| self.always.get(&call.key).cloned());
        let play = match (scripted, &mut self.chaos) {
            (Some(canned), _) => Some(chaos::Play::Answer(canned)),
            (None, Some(chaos)) => {
                let (fault, play) = chaos.decide(&call.key, dialect, &call.body);
                call.fault = Some(fault);
                Some(play)
            }
            (None, None) => None,
        };
        if self.record {
            self.calls.push(call);
        }
        play
    }
}
