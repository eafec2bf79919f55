//! A fake of the three search APIs on port 0: SerpApi (`/search.json`,
//! `/account.json`), Google Custom Search (`/customsearch/v1`) and Brave
//! (`/res/v1/web/search`). Each key gets scripted replies (queued ones
//! first, then its standing one, else a page of results), and every call
//! is recorded with the key it carried, so tests count calls per key.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// One call: which path, with which key.
#[derive(Clone, Debug)]
pub struct Call {
    pub path: String,
    pub key: String,
}

#[derive(Default)]
struct Script {
    queued: HashMap<(String, String), VecDeque<Reply>>,
    standing: HashMap<(String, String), Reply>,
    calls: Vec<Call>,
}

#[derive(Clone)]
pub struct FakeSearch {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

pub const SERPAPI: &str = "/search.json";
pub const ACCOUNT: &str = "/account.json";
pub const GOOGLE: &str = "/customsearch/v1";
pub const BRAVE: &str = "/res/v1/web/search";

impl FakeSearch {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route(SERPAPI, get(answer))
            .route(ACCOUNT, get(answer))
            .route(GOOGLE, get(answer))
            .route(BRAVE, get(answer))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, script }
    }

    /// `replies` answer the next calls of `key` on `path`, in order.
    pub fn queue(&self, path: &str, key: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut script = self.script.lock().unwrap();
        script
            .queued
            .entry((path.into(), key.into()))
            .or_default()
            .extend(replies);
    }

    /// `reply` answers every call of `key` on `path` once the queue is empty.
    pub fn always(&self, path: &str, key: &str, reply: Reply) {
        let mut script = self.script.lock().unwrap();
        script.standing.insert((path.into(), key.into()), reply);
    }

    /// Calls of `key` on `path` so far.
    pub fn calls(&self, path: &str, key: &str) -> usize {
        let script = self.script.lock().unwrap();
        script
            .calls
            .iter()
            .filter(|c| c.path == path && c.key == key)
            .count()
    }

    pub fn all_calls(&self) -> Vec<Call> {
        self.script.lock().unwrap().calls.clone()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let path = uri.path().to_string();
    let key = params
        .get("api_key")
        .or_else(|| params.get("key"))
        .cloned()
        .or_else(|| {
            headers
                .get("x-subscription-token")
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        })
        .unwrap_or_default();
    let reply = {
        let mut script = script.lock().unwrap();
        script.calls.push(Call {
            path: path.clone(),
            key: key.clone(),
        });
        let slot = (path.clone(), key.clone());
        script
            .queued
            .get_mut(&slot)
            .and_then(VecDeque::pop_front)
            .or_else(|| script.standing.get(&slot).cloned())
    };
    let reply = reply.unwrap_or_else(|| default_reply(&path, &key, &params));
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        axum::Json(reply.body),
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// A page of two results, in each provider's own shape.
fn default_reply(path: &str, key: &str, params: &HashMap<String, String>) -> Reply {
    let q = params.get("q").cloned().unwrap_or_default();
    match path {
        SERPAPI => Reply::new(
            200,
            json!({
                "search_metadata": {"status": "Success"},
                "search_information": {"total_results": 4200},
                "organic_results": [
                    {"position": 1, "title": format!("{q} one"), "link": "https://one.example/a",
                     "displayed_link": "one.example › a", "snippet": "first"},
                    {"position": 2, "title": format!("{q} two"), "link": "https://two.example/b",
                     "snippet": "second"}
                ]
            }),
        ),
        ACCOUNT => Reply::new(
            200,
            json!({
                "account_email": "someone@example.com",
                "api_key": key,
                "plan_searches_left": 95, "total_searches_left": 95,
                "searches_per_month": 100, "this_hour_searches": 5,
                "account_rate_limit_per_hour": 50, "plan_renewal_date": "2099-01-01"
            }),
        ),
        GOOGLE => Reply::new(
            200,
            json!({
                "searchInformation": {"totalResults": "1234", "searchTime": 0.2},
                "items": [
                    {"title": format!("{q} g1"), "link": "https://g1.example/", "displayLink": "g1.example",
                     "snippet": "google first"},
                    {"title": format!("{q} g2"), "link": "https://g2.example/x", "snippet": "google second"}
                ]
            }),
        ),
        _ => Reply::new(
            200,
            json!({"web": {"results": [
                {"title": format!("{q} b1"), "url": "https://b1.example/p", "description": "brave first"}
            ]}}),
        )
        .header("x-ratelimit-limit", "20, 15000")
        .header("x-ratelimit-remaining", "19, 14000")
        .header("x-ratelimit-reset", "1, 86400"),
    }
}
