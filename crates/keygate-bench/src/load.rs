//! A closed-loop load generator: `concurrency` workers, each keeping exactly
//! one request in flight on its own keep-alive connection until a deadline,
//! recording latency (and, when streaming, time to the first content event)
//! into HDR histograms. Built on the same reqwest client keygate uses, so
//! the generator's cost per request is the same on every path measured.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use super::BenchError;
use super::api::{Api, Lines};

/// Latencies are recorded in nanoseconds, from 1 ns to 60 s, 3 digits.
const HIGHEST_NS: u64 = 60_000_000_000;

/// A client for the generator: TCP_NODELAY (small requests and SSE frames
/// must not wait for ACKs), keep-alive with enough idle slots for every
/// worker, and no proxy from the environment (everything is loopback).
pub fn client(concurrency: usize) -> Result<reqwest::Client, BenchError> {
    Ok(reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency.max(1) * 2)
        .no_proxy()
        .build()?)
}

/// What one measurement sends, and where.
#[derive(Clone)]
pub struct Spec {
    pub client: reqwest::Client,
    /// Full URL, e.g. `http://127.0.0.1:4000/v1/messages`.
    pub url: String,
    pub api: Api,
    pub stream: bool,
    pub concurrency: usize,
    /// Each worker is one session (`x-session-id`) sending a prompt long
    /// enough to cache (`--sessions`).
    pub sessions: bool,
}

/// The outcome of one timed run.
pub struct Sample {
    /// Successful requests (2xx, body read to the end).
    pub requests: u64,
    /// Non-2xx answers, transport errors, streams without content.
    pub errors: u64,
    pub elapsed: Duration,
    /// Send to the end of the body, ns.
    pub latency: Histogram<u64>,
    /// Send to the first content event (streaming only), ns.
    pub ttft: Histogram<u64>,
}

impl Sample {
    fn empty() -> Result<Self, BenchError> {
        Ok(Self {
            requests: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latency: Histogram::new_with_bounds(1, HIGHEST_NS, 3)?,
            ttft: Histogram::new_with_bounds(1, HIGHEST_NS, 3)?,
        })
    }

    fn merge(&mut self, other: &Sample) -> Result<(), BenchError> {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latency.add(&other.latency)?;
        self.ttft.add(&other.ttft)?;
        Ok(())
    }

    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs `spec` for `duration` (requests in flight at the deadline finish).
pub async fn run(spec: &Spec, duration: Duration) -> Result<Sample, BenchError> {
    let body = spec.api.body(spec.stream, spec.sessions);
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for index in 0..spec.concurrency {
        let session = spec.sessions.then(|| format!("bench-session-{index}"));
        workers.spawn(worker(spec.clone(), body.clone(), session, deadline));
    }
    let mut total = Sample::empty()?;
    while let Some(joined) = workers.join_next().await {
        total.merge(&joined??)?;
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

async fn worker(
    spec: Spec,
    body: Bytes,
    session: Option<String>,
    deadline: Instant,
) -> Result<Sample, BenchError> {
    let mut sample = Sample::empty()?;
    while Instant::now() < deadline {
        let sent = Instant::now();
        match one_request(&spec, body.clone(), session.as_deref(), sent).await {
            Some(ttft) => {
                sample.latency.saturating_record(nanos(sent.elapsed()));
                if let Some(ttft) = ttft {
                    sample.ttft.saturating_record(nanos(ttft));
                }
                sample.requests += 1;
            }
            None => {
                sample.errors += 1;
                // A refused connection fails at once; do not spin on it.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    Ok(sample)
}

/// `Some(ttft)` on success (`ttft` is `None` when not streaming), `None` on
/// any failure: the caller only counts those.
async fn one_request(
    spec: &Spec,
    body: Bytes,
    session: Option<&str>,
    sent: Instant,
) -> Option<Option<Duration>> {
    let mut request = spec
        .client
        .post(&spec.url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in spec.api.headers() {
        request = request.header(*name, *value);
    }
    if let Some(session) = session {
        request = request.header("x-session-id", session);
    }
    let mut response = request.send().await.ok()?;
    if !response.status().is_success() {
        let _ = response.bytes().await;
        return None;
    }
    if !spec.stream {
        response.bytes().await.ok()?;
        return Some(None);
    }
    let mut lines = Lines::default();
    let mut ttft = None;
    while let Some(chunk) = response.chunk().await.ok()? {
        if ttft.is_none() && lines.feed(&chunk, |data| spec.api.is_content(data)) {
            ttft = Some(sent.elapsed());
        }
    }
    ttft.map(Some)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
