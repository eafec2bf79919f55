//! The demo's own traffic: a request every second or so through keygate,
//! on every route, streamed and not, to both providers, so the ledger,
//! metrics and charts fill within a minute. Failures are expected (that is
//! what the simulated pool is for) and only counted.

use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

const ANTHROPIC_MODELS: &[&str] = &["claude-sonnet-4-20250514", "claude-haiku-4-5-20251001"];
const OPENAI_MODELS: &[&str] = &["gpt-4o-mini", "gpt-4o"];

/// How often the demo sends a request, and how many may be in flight.
pub struct Pace {
    pub every: std::ops::Range<u64>,
    pub in_flight: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            every: 400..1400,
            in_flight: 4,
        }
    }
}

pub async fn drive(base: String, pace: Pace) {
    let client = reqwest::Client::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(pace.in_flight));
    loop {
        let wait = rand::thread_rng().gen_range(pace.every.clone());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (path, body) = next_request();
        let request = client.post(format!("{base}{path}")).json(&body);
        let request = if path == "/v1/messages" {
            request.header("anthropic-version", "2023-06-01")
        } else {
            request
        };
        tokio::spawn(async move {
            // Read the whole answer, streamed or not, as a client would.
            if let Ok(response) = request.send().await {
                let _ = response.bytes().await;
            }
            drop(slot);
        });
    }
}

/// A random request: route, provider, model and stream flag.
fn next_request() -> (&'static str, Value) {
    let mut rng = rand::thread_rng();
    let stream = rng.gen_bool(0.5);
    let question = json!([{"role": "user", "content": "What does a key-rotating gateway do?"}]);
    match rng.gen_range(0..4) {
        0 => (
            "/api/chat",
            json!({"messages": question, "stream": stream,
                   "model": ANTHROPIC_MODELS.choose(&mut rng)}),
        ),
        1 => (
            "/v1/chat/completions",
            json!({"model": OPENAI_MODELS.choose(&mut rng), "messages": question,
                   "stream": stream}),
        ),
        _ => (
            "/v1/messages",
            json!({"model": ANTHROPIC_MODELS.choose(&mut rng), "max_tokens": 512,
                   "messages": question, "stream": stream}),
        ),
    }
}
