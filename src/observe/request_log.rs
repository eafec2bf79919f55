//! `RequestLog`: one client request's record while it runs. The layer that
//! starts it, the gateway, the stream relay and the response body each hold
//! a clone; when the last clone goes (the answer's last byte was sent, the
//! client hung up, or a handler returned early), the record becomes one
//! `UsageRow`. Finishing from `Drop` is what makes "exactly one row per
//! request" hold on every path, the abandoned ones included.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tokio::time::Instant;

use super::{AttemptOutcome, Observer};
use crate::domain::usage_row::{CLIENT_CLOSED, CLIENT_CLOSED_STATUS};
use crate::domain::{KeyId, ProviderKind, Reading, Usage, UsagePatch, UsageRow};
use crate::error::ErrorClass;
use crate::pricing::PriceTable;

/// A request's record; cloning shares it. The default log is inert and
/// records nothing (a handler reached without the layer).
#[derive(Clone, Default)]
pub struct RequestLog(Option<Arc<Entry>>);

struct Entry {
    observer: Arc<Observer>,
    started: Instant,
    at: SystemTime,
    draft: Mutex<Draft>,
}

#[derive(Default)]
struct Draft {
    request_id: String,
    route: &'static str,
    client_key: Option<String>,
    provider: Option<ProviderKind>,
    model_requested: Option<String>,
    model_answered: Option<String>,
    keys_tried: Vec<KeyId>,
    status: Option<u16>,
    error_class: Option<Cow<'static, str>>,
    usage: Usage,
    first_content: Option<Duration>,
}

impl RequestLog {
    pub fn start(
        observer: Arc<Observer>,
        route: &'static str,
        request_id: String,
        client_key: Option<String>,
    ) -> Self {
        Self(Some(Arc::new(Entry {
            observer,
            started: Instant::now(),
            at: SystemTime::now(),
            draft: Mutex::new(Draft {
                request_id,
                route,
                client_key,
                ..Draft::default()
            }),
        })))
    }

    /// Runs `f` on the draft. A poisoned lock (a panic while recording)
    /// still records: the draft holds only plain values.
    fn with(&self, f: impl FnOnce(&mut Draft)) {
        if let Some(entry) = &self.0 {
            f(&mut lock(&entry.draft));
        }
    }

    /// The provider and model the request is for, once parsed.
    pub fn target(&self, provider: ProviderKind, model: Option<&str>) {
        self.with(|draft| {
            draft.provider = Some(provider);
            if draft.model_requested.is_none() {
                draft.model_requested = model.map(str::to_string);
            }
        });
    }

    /// An upstream attempt with `key` began.
    pub fn attempted(&self, key: &KeyId) {
        self.with(|draft| draft.keys_tried.push(key.clone()));
    }

    /// An upstream attempt with `key` is over.
    pub fn attempt(&self, provider: ProviderKind, key: &KeyId, outcome: AttemptOutcome) {
        if let Some(entry) = &self.0 {
            entry.observer.attempt(provider, key.as_str(), outcome);
        }
    }

    /// A whole answer arrived: the model that gave it and its usage.
    pub fn answered(&self, model: &str, usage: Usage) {
        self.with(|draft| {
            draft.model_answered = Some(model.to_string());
            draft.usage = usage;
        });
    }

    /// A stream passed its first-content gate: its time to first token.
    pub fn first_content(&self) {
        if let Some(entry) = &self.0 {
            let elapsed = entry.started.elapsed();
            lock(&entry.draft).first_content = Some(elapsed);
        }
    }

    /// A stream frame: its model and usage, if it reports any.
    pub fn frame(&self, reading: &Reading) {
        let usage = &reading.usage;
        if *usage == UsagePatch::default() && reading.model.is_none() {
            return;
        }
        self.with(|draft| {
            draft.usage.apply(usage);
            if draft.model_answered.is_none() {
                draft.model_answered = reading.model.clone();
            }
        });
    }

    /// The status the client is answered with, and the error type if it is
    /// an error answer.
    pub fn responded(&self, status: u16, error: Option<&ErrorClass>) {
        self.with(|draft| {
            draft.status = Some(status);
            if let Some(ErrorClass(class)) = error {
                draft.error_class = Some(class.clone());
            }
        });
    }

    /// The answer failed after it began (a stream's error, or the client
    /// hanging up mid-stream). The first failure is the one recorded.
    pub fn failed(&self, class: impl Into<Cow<'static, str>>) {
        let class = class.into();
        self.with(|draft| {
            draft.error_class.get_or_insert(class);
        });
    }
}

fn lock(draft: &Mutex<Draft>) -> MutexGuard<'_, Draft> {
    draft
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Entry {
    fn drop(&mut self) {
        let latency = self.started.elapsed();
        let draft = std::mem::take(self.draft.get_mut().unwrap_or_else(|p| p.into_inner()));
        let row = draft.into_row(self.at, latency, &self.observer.prices().table());
        self.observer.request_finished(row);
    }
}

impl Draft {
    fn into_row(self, at: SystemTime, latency: Duration, prices: &PriceTable) -> UsageRow {
        // No status: the client hung up before any answer was made.
        let (status, error_class) = match self.status {
            Some(status) => (status, self.error_class),
            None => (
                CLIENT_CLOSED_STATUS,
                self.error_class.or(Some(Cow::Borrowed(CLIENT_CLOSED))),
            ),
        };
        let cost_nanos = self.provider.and_then(|provider| {
            prices.cost_nanos(
                provider,
                self.model_answered.as_deref().unwrap_or_default(),
                self.model_requested.as_deref().unwrap_or_default(),
                &self.usage,
            )
        });
        let unpriced = cost_nanos.is_none() && self.usage.total_tokens() > 0;
        let at_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64);
        UsageRow {
            at_ms,
            request_id: self.request_id,
            route: self.route,
            provider: self.provider,
            model_requested: self.model_requested,
            model_answered: self.model_answered,
            key_id: self.keys_tried.last().map(|key| key.to_string()),
            attempts: self.keys_tried.len() as u32,
            keys_tried: self.keys_tried.iter().map(|key| key.to_string()).collect(),
            status,
            error_class: error_class.map(Cow::into_owned),
            usage: self.usage,
            cost_nanos: cost_nanos.unwrap_or(0),
            latency_us: latency.as_micros() as u64,
            ttft_us: self.first_content.map(|d| d.as_micros() as u64),
            client_key: self.client_key,
            unpriced,
        }
    }
}

/// Handlers take the request's log as an argument; outside the logged
/// routes it is inert.
impl<S: Send + Sync> FromRequestParts<S> for RequestLog {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestLog>()
            .cloned()
            .unwrap_or_default())
    }
}
