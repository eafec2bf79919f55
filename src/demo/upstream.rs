//! The simulated upstream: Anthropic's `POST /v1/messages` and OpenAI's
//! `POST /v1/chat/completions` (whole and streamed), and both `GET
//! /v1/models` (the key check), on a loopback port of its own. Each key
//! behaves as `keys` says, with realistic latencies, token counts and
//! rate-limit headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde_json::Value;

use super::keys::{Behaviour, behaviour_of};
use super::replies::{self, Dialect, Reply};

/// A rate-limiting key's budget: a few requests per window, so the demo's
/// light traffic runs it out now and then.
const SMALL_BUDGET: u32 = 4;
const BUDGET_WINDOW: Duration = Duration::from_secs(20);
/// What healthy keys report as their per-minute budget.
const LARGE_BUDGET: u32 = 1000;

pub struct Simulated {
    pub url: String,
}

#[derive(Clone, Default)]
struct Budgets {
    /// Per key secret: when its window began and what it has used.
    used: Arc<Mutex<HashMap<String, (Instant, u32)>>>,
}

impl Budgets {
    /// Takes one request from `key`'s window: `Ok(remaining)`, or
    /// `Err(wait)` until the window refills.
    fn take(&self, key: &str, budget: u32) -> Result<u32, Duration> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = used.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= BUDGET_WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= budget {
            return Err(BUDGET_WINDOW.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(budget - entry.1)
    }
}

pub async fn start() -> std::io::Result<Simulated> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/chat/completions", post(openai_completions))
        .route("/v1/models", get(models))
        .with_state(Budgets::default());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Simulated { url })
}

fn anthropic_key(headers: &HeaderMap) -> &str {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn bearer_key(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}

async fn anthropic_messages(
    State(budgets): State<Budgets>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Dialect::Anthropic, anthropic_key(&headers), &budgets, &body).await
}

async fn openai_completions(
    State(budgets): State<Budgets>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Dialect::OpenAI, bearer_key(&headers), &budgets, &body).await
}

async fn models(headers: HeaderMap) -> Response {
    let key = match headers.get("x-api-key") {
        Some(_) => anthropic_key(&headers),
        None => bearer_key(&headers),
    };
    if behaviour_of(key) == Behaviour::Rejected {
        return replies::error(
            Dialect::Anthropic,
            401,
            "authentication_error",
            "invalid x-api-key",
        );
    }
    axum::Json(serde_json::json!({"data": [], "has_more": false})).into_response()
}

/// Whether the 529 key is overloaded this time (a quarter of the time).
fn overloaded_now() -> bool {
    rand::thread_rng().gen_bool(0.25)
}

async fn answer(dialect: Dialect, key: &str, budgets: &Budgets, body: &[u8]) -> Response {
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let model = request["model"].as_str().unwrap_or("unknown").to_string();
    let stream = request["stream"].as_bool().unwrap_or(false);
    let include_usage = request["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let behaviour = behaviour_of(key);
    // Bad news comes fast, as from real upstreams.
    let first_byte = Duration::from_millis(rand::thread_rng().gen_range(20..80));
    tokio::time::sleep(first_byte).await;
    let budget = match behaviour {
        Behaviour::Rejected => {
            return replies::error(dialect, 401, "authentication_error", "invalid x-api-key");
        }
        Behaviour::Overloaded if overloaded_now() => {
            return replies::error(dialect, 529, "overloaded_error", "Overloaded");
        }
        Behaviour::RateLimits => SMALL_BUDGET,
        Behaviour::Healthy | Behaviour::Overloaded => LARGE_BUDGET,
    };
    let remaining = match budgets.take(key, budget) {
        Ok(remaining) => remaining,
        Err(wait) => {
            let mut response = replies::error(
                dialect,
                429,
                "rate_limit_error",
                "Number of requests has exceeded your per-minute rate limit",
            );
            let seconds = wait.as_secs().max(1).to_string();
            if let Ok(value) = seconds.parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    };
    let reply = Reply::random(&model);
    let mut response = if stream {
        let latency = Duration::from_millis(rand::thread_rng().gen_range(150..600));
        tokio::time::sleep(latency).await;
        let chunks = replies::stream(dialect, &reply, include_usage);
        let pace = Duration::from_millis(rand::thread_rng().gen_range(25..70));
        let body = futures::stream::unfold(chunks.into_iter(), move |mut chunks| async move {
            let chunk = chunks.next()?;
            tokio::time::sleep(pace).await;
            Some((Ok::<_, std::convert::Infallible>(chunk), chunks))
        });
        let mut response = Response::new(Body::from_stream(body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/event-stream"),
        );
        response
    } else {
        let latency = Duration::from_millis(rand::thread_rng().gen_range(300..1500));
        tokio::time::sleep(latency).await;
        axum::Json(replies::whole(dialect, &reply)).into_response()
    };
    replies::rate_limit_headers(dialect, response.headers_mut(), budget, remaining);
    *response.status_mut() = StatusCode::OK;
    response
}
