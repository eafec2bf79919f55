//! Chaos mode: for calls no script covers, the fake picks a fault per key and
//! over time from a seeded RNG, plays it, and records what it played in the
//! call's [`Call::fault`](super::Call) so a test can check the gateway's
//! reaction against exactly what the upstream did.
//!
//! Reproducibility: each decision draws from an RNG seeded with the chaos
//! seed, the key and the key's call number, so the sequence of faults a key
//! sees depends only on the seed (and on which phase the call fell in: the
//! mix of faults changes every `phase` of wall time, calm then stormy then
//! flaky, to move keys in and out of cooldowns while the load runs).
//!
//! A "revocable" key is, at some call, revoked with a 401 or a 403, and then
//! answers every later call the same way, as a real revoked key does.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::canned::Canned;
use super::prompt_cache::CacheUse;
use super::{
    DEFAULT_PIECES, anthropic, anthropic_message, anthropic_stream_frames_for, openai,
    openai_stream_frames_for,
};

/// How the fake misbehaves in chaos mode.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    pub seed: u64,
    /// Keys that may be revoked (401/403) at some call, for good.
    pub revocable: Vec<String>,
    /// Chance per call that a revocable key is revoked at that call.
    pub revoke_chance: f64,
    /// How long a stalled non-streamed answer waits before its headers (make
    /// it longer than the gateway's attempt timeout).
    pub stall: Duration,
    /// Range of waits a 429 asks for.
    pub retry_after: (Duration, Duration),
    /// Range of delays before a normal answer's headers, so the load lasts
    /// long enough for keys to come back from their cooldowns.
    pub latency: (Duration, Duration),
    /// How long each phase (calm, storm, flaky) lasts.
    pub phase: Duration,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            seed: 0x006b_6579_6761_7465,
            revocable: Vec::new(),
            revoke_chance: 0.005,
            stall: Duration::from_secs(3),
            retry_after: (Duration::from_millis(1000), Duration::from_millis(2000)),
            latency: (Duration::from_millis(20), Duration::from_millis(120)),
            phase: Duration::from_millis(1500),
        }
    }
}

/// How a 429 says when to come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetFlavour {
    /// `retry-after: <seconds>` (decimal).
    Seconds,
    /// `retry-after: <HTTP date>` (whole seconds).
    HttpDate,
    /// `retry-after-ms: <milliseconds>`.
    Millis,
    /// Anthropic `anthropic-ratelimit-requests-{limit,remaining=0,reset}` or
    /// OpenAI `x-ratelimit-{limit,remaining,reset}-requests`, no retry-after.
    RateLimitHeaders,
    /// No hint at all: the gateway's default cooldown applies.
    None,
}

/// What the fake answered to one call in chaos mode.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The route's normal answer (streamed if asked).
    Normal,
    /// 429; `cooldown` is the wait the headers imply, measured from when the
    /// answer was built (`None` for [`ResetFlavour::None`]).
    RateLimited {
        flavour: ResetFlavour,
        cooldown: Option<Duration>,
    },
    /// 401 or 403: the key is revoked (and stays so).
    Revoked { status: u16 },
    /// 500 or 529.
    ServerError { status: u16 },
    /// The connection was dropped without any response.
    Reset,
    /// Stalled: a non-streamed answer delayed past `stall`, or a stream that
    /// stops sending (after its first content or before).
    Stall { after_content: bool },
    /// The body broke off (connection reset mid-body).
    Cut { after_content: bool },
    /// A 200 stream with garbage frames, ending without its final event.
    MalformedSse { after_content: bool },
    /// A 200 `application/json` body that is not valid JSON.
    MalformedJson,
}

impl Fault {
    /// A stream that delivered content and then failed: the client must see
    /// the stream end with an error, never a clean end.
    pub fn broke_after_content(&self) -> bool {
        matches!(
            self,
            Fault::Stall {
                after_content: true
            } | Fault::Cut {
                after_content: true
            } | Fault::MalformedSse {
                after_content: true
            }
        )
    }
}

/// Which API a call was made to, deciding the answers' shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    Anthropic,
    OpenAi,
}

/// What the handler should do.
pub(super) enum Play {
    Answer(Canned),
    /// Drop the connection without answering.
    Reset,
}

/// The chaos state: config, when it started, per-key call numbers and the
/// revoked keys.
pub(super) struct Chaos {
    config: ChaosConfig,
    started: Instant,
    calls: HashMap<String, u64>,
    revoked: HashMap<String, u16>,
    revocable: HashSet<String>,
}

impl Chaos {
    pub fn new(config: ChaosConfig) -> Self {
        Self {
            revocable: config.revocable.iter().cloned().collect(),
            config,
            started: Instant::now(),
            calls: HashMap::new(),
            revoked: HashMap::new(),
        }
    }

    /// Picks and builds the answer to a call with `key`.
    pub fn decide(&mut self, key: &str, dialect: Dialect, request: &Value) -> (Fault, Play) {
        let number = self.calls.entry(key.to_string()).or_default();
        *number += 1;
        let mut rng = StdRng::seed_from_u64(
            self.config.seed ^ fnv(key) ^ number.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        if let Some(&status) = self.revoked.get(key) {
            return revoked(dialect, status);
        }
        if self.revocable.contains(key) && rng.gen_bool(self.config.revoke_chance) {
            let status = if rng.gen_bool(0.5) { 401 } else { 403 };
            self.revoked.insert(key.to_string(), status);
            return revoked(dialect, status);
        }
        let phase = (self.started.elapsed().as_millis() / self.config.phase.as_millis().max(1)) % 3;
        // Per mille: normal, 429, 5xx, reset, stall, cut, malformed. A
        // 429 benches a key (or one of its models) for over a second, so a
        // few per cent already keep most keys cooling in a storm.
        let weights: [u32; 7] = match phase {
            0 => [935, 5, 15, 10, 10, 15, 10],
            1 => [640, 60, 90, 50, 50, 60, 50],
            _ => [770, 10, 50, 50, 40, 40, 40],
        };
        let mut roll = rng.gen_range(0..weights.iter().sum::<u32>());
        let choice = weights
            .iter()
            .position(|&w| {
                if roll < w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .unwrap_or(0);
        let shape = Shape::of(dialect, request);
        match choice {
            1 => self.rate_limited(&mut rng, dialect),
            2 => {
                let status = if rng.gen_bool(0.5) { 500 } else { 529 };
                let answer = match dialect {
                    Dialect::Anthropic if status == 529 => {
                        Canned::error(529, "overloaded_error", "Overloaded")
                    }
                    Dialect::Anthropic => Canned::error(500, "api_error", "Internal server error"),
                    Dialect::OpenAi => Canned::openai_error(
                        status,
                        "server_error",
                        None,
                        "The server had an error",
                    ),
                };
                (Fault::ServerError { status }, Play::Answer(answer))
            }
            3 => (Fault::Reset, Play::Reset),
            4 => shape.stall(&mut rng, self.config.stall),
            5 => shape.cut(&mut rng),
            6 => shape.malformed(&mut rng),
            _ => {
                let (low, high) = self.config.latency;
                let delay = rng.gen_range(low..=high.max(low));
                (
                    Fault::Normal,
                    Play::Answer(shape.normal(request).delayed(delay)),
                )
            }
        }
    }

    fn rate_limited(&self, rng: &mut StdRng, dialect: Dialect) -> (Fault, Play) {
        let (low, high) = self.config.retry_after;
        let wait = rng.gen_range(low.as_secs_f64()..=high.as_secs_f64().max(low.as_secs_f64()));
        let flavour = match rng.gen_range(0..5) {
            0 => ResetFlavour::Seconds,
            1 => ResetFlavour::HttpDate,
            2 => ResetFlavour::Millis,
            3 => ResetFlavour::RateLimitHeaders,
            _ => ResetFlavour::None,
        };
        let mut answer = match dialect {
            Dialect::Anthropic => Canned::error(429, "rate_limit_error", "Rate limited"),
            Dialect::OpenAi => Canned::openai_error(
                429,
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for requests",
            ),
        };
        let now = SystemTime::now();
        let cooldown = match flavour {
            ResetFlavour::Seconds => {
                answer = answer.header("retry-after", &format!("{wait:.3}"));
                Some(Duration::from_secs_f64(wait))
            }
            ResetFlavour::HttpDate => {
                // An HTTP date has whole seconds: the wait it implies is
                // measured from now to the date as written.
                let at = now + Duration::from_secs_f64(wait);
                let written = httpdate::fmt_http_date(at);
                let implied = httpdate::parse_http_date(&written)
                    .ok()
                    .and_then(|date| date.duration_since(now).ok())
                    .unwrap_or_default();
                answer = answer.header("retry-after", &written);
                Some(implied)
            }
            ResetFlavour::Millis => {
                answer = answer.header("retry-after-ms", &format!("{}", (wait * 1000.0) as u64));
                Some(Duration::from_millis((wait * 1000.0) as u64))
            }
            ResetFlavour::RateLimitHeaders => {
                let wait = Duration::from_millis((wait * 1000.0) as u64);
                answer = match dialect {
                    Dialect::Anthropic => answer
                        .header("anthropic-ratelimit-requests-limit", "50")
                        .header("anthropic-ratelimit-requests-remaining", "0")
                        .header(
                            "anthropic-ratelimit-requests-reset",
                            &humantime::format_rfc3339_millis(now + wait).to_string(),
                        ),
                    Dialect::OpenAi => answer
                        .header("x-ratelimit-limit-requests", "50")
                        .header("x-ratelimit-remaining-requests", "0")
                        .header(
                            "x-ratelimit-reset-requests",
                            &format!("{}ms", wait.as_millis()),
                        ),
                };
                Some(wait)
            }
            ResetFlavour::None => None,
        };
        (
            Fault::RateLimited { flavour, cooldown },
            Play::Answer(answer),
        )
    }
}

fn revoked(dialect: Dialect, status: u16) -> (Fault, Play) {
    let (kind, message) = if status == 401 {
        ("authentication_error", "invalid x-api-key")
    } else {
        ("permission_error", "this key has been disabled")
    };
    let answer = match dialect {
        Dialect::Anthropic => Canned::error(status, kind, message),
        Dialect::OpenAi => Canned::openai_error(status, "invalid_request_error", None, message),
    };
    (Fault::Revoked { status }, Play::Answer(answer))
}

/// The normal answer's shape for this call: which API, streamed or not.
struct Shape {
    dialect: Dialect,
    stream: bool,
    model: String,
    include_usage: bool,
}

impl Shape {
    fn of(dialect: Dialect, request: &Value) -> Self {
        let default_model = match dialect {
            Dialect::Anthropic => anthropic::DEFAULT_ANTHROPIC_MODEL,
            Dialect::OpenAi => openai::DEFAULT_OPENAI_MODEL,
        };
        Self {
            dialect,
            stream: request["stream"].as_bool() == Some(true),
            model: request["model"]
                .as_str()
                .unwrap_or(default_model)
                .to_string(),
            include_usage: request["stream_options"]["include_usage"].as_bool() == Some(true),
        }
    }

    fn normal(&self, request: &Value) -> Canned {
        let settings = super::Settings::default();
        match self.dialect {
            Dialect::Anthropic => {
                anthropic::default_answer(request, &settings, CacheUse::default())
            }
            Dialect::OpenAi => openai::default_answer(request, &settings, CacheUse::default()),
        }
    }

    /// The whole stream and the index of its first content frame.
    fn frames(&self) -> (Vec<super::SseFrame>, usize) {
        match self.dialect {
            // message_start, content_block_start, ping, then the deltas.
            Dialect::Anthropic => (anthropic_stream_frames_for(&self.model, &DEFAULT_PIECES), 3),
            // The role chunk (empty content), then the pieces.
            Dialect::OpenAi => (
                openai_stream_frames_for(&self.model, &DEFAULT_PIECES, self.include_usage),
                1,
            ),
        }
    }

    /// How many frames to send before breaking: either some before the
    /// first content, or the first content and more, but never the last
    /// frame (the stream's own end).
    fn break_point(&self, rng: &mut StdRng) -> (usize, bool) {
        let (frames, first_content) = self.frames();
        if rng.gen_bool(0.5) {
            (rng.gen_range(0..first_content), false)
        } else {
            (rng.gen_range(first_content + 1..frames.len()), true)
        }
    }

    fn stall(&self, rng: &mut StdRng, stall: Duration) -> (Fault, Play) {
        if !self.stream {
            let answer = self.whole_body().delayed(stall);
            return (
                Fault::Stall {
                    after_content: false,
                },
                Play::Answer(answer),
            );
        }
        let (n, after_content) = self.break_point(rng);
        let answer = Canned::sse(self.frames().0).stall_after(n);
        (Fault::Stall { after_content }, Play::Answer(answer))
    }

    fn cut(&self, rng: &mut StdRng) -> (Fault, Play) {
        if !self.stream {
            let body = self.whole_body_bytes();
            let half = body.slice(..body.len() / 2);
            let answer = Canned::raw(200, "application/json", half).cut_after(1);
            return (
                Fault::Cut {
                    after_content: false,
                },
                Play::Answer(answer),
            );
        }
        let (n, after_content) = self.break_point(rng);
        let answer = Canned::sse(self.frames().0).cut_after(n);
        (Fault::Cut { after_content }, Play::Answer(answer))
    }

    fn malformed(&self, rng: &mut StdRng) -> (Fault, Play) {
        if !self.stream {
            let answer = Canned::raw(
                200,
                "application/json",
                r#"{"id":"msg_fake","type":"message","content":[{"type":"text","text":"Hel"#,
            );
            return (Fault::MalformedJson, Play::Answer(answer));
        }
        let (n, after_content) = self.break_point(rng);
        let garbage: [&[u8]; 4] = [
            b"data: {\"type\":\"content_block_delta\",\"delta\":{\"text\n\n",
            b"event: message_start\ndata: [[[\n\n",
            b"\xff\xfe not sse at all \x00\n\n",
            b"data: {\"choices\":[{\"delta\":{\"content\":12}}]\n\n",
        ];
        let pick = garbage[rng.gen_range(0..garbage.len())];
        let mut frames = self.frames().0;
        frames.truncate(n);
        let answer = Canned::sse(frames).chunk(Bytes::from_static(pick));
        (Fault::MalformedSse { after_content }, Play::Answer(answer))
    }

    fn whole_body(&self) -> Canned {
        Canned::raw(200, "application/json", self.whole_body_bytes())
    }

    fn whole_body_bytes(&self) -> Bytes {
        let body = match self.dialect {
            Dialect::Anthropic => anthropic_message(super::DEFAULT_TEXT, &self.model),
            Dialect::OpenAi => super::openai_completion(super::DEFAULT_TEXT, &self.model),
        };
        Bytes::from(body.to_string())
    }
}

/// FNV-1a: a stable hash of the key for the per-call seed (std's hasher is
/// randomly keyed per process).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
