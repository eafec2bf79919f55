//! Cache-aware key affinity. Prompt caches belong to an organisation (or
//! an Anthropic workspace), and each key names its organisation as a cache
//! scope (`KeyEntry::cache_scope`). A conversation whose every turn lands
//! on a key of the same scope reads the prefix its previous turn cached;
//! one spread across scopes pays a cache write on nearly every turn.
//!
//! So a request's session (`session`) is bound to the scope of the key
//! that answered it, for the cache's lifetime (`cacheable`), in a bounded
//! table (`table`); the next turn asks the pool for a key of that scope
//! first. The pool decides health: a scope that cannot serve is left, and
//! the session is bound to wherever the request was answered.
//!
//! Requests too short to be cached get no affinity at all, so they keep
//! spreading by the pool's strategy. `KEY_AFFINITY=off` turns it off.
//!
//! In a cluster (`REDIS_URL`), new and moved bindings are queued (never
//! waited on) for `cluster` to publish, and the other replicas' are
//! adopted, so a conversation keeps its scope whichever replica serves it.

mod cacheable;
mod session;
mod table;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::HeaderValue;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::domain::ProviderKind;

pub use cacheable::{DEFAULT_TTL, HOUR_TTL, min_cacheable_tokens};
pub use session::{SessionId, SessionParts, session_header, session_of, session_of_parts};
pub use table::SessionTable;

/// `KEY_AFFINITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AffinityMode {
    /// Every request is placed by the pool's strategy alone.
    Off,
    /// A session prefers keys of the cache scope it last used.
    #[default]
    Scope,
}

impl std::str::FromStr for AffinityMode {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(AffinityMode::Off),
            "scope" => Ok(AffinityMode::Scope),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct AffinitySettings {
    pub mode: AffinityMode,
    /// `AFFINITY_MAX_SESSIONS`: the most sessions remembered at once.
    pub max_sessions: usize,
}

impl Default for AffinitySettings {
    fn default() -> Self {
        Self {
            mode: AffinityMode::Scope,
            max_sessions: 100_000,
        }
    }
}

/// A request worth keeping on one cache: its session and its cache's
/// lifetime.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub id: SessionId,
    pub ttl: Duration,
}

/// A binding as replicas tell each other of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedBinding {
    /// `SessionId::to_hex`.
    pub session: String,
    pub scope: String,
    /// The binding's remaining lifetime, in milliseconds.
    pub ttl_ms: u64,
}

/// The longest lifetime a shared binding is given, whatever it says.
const MAX_SHARED_TTL: Duration = HOUR_TTL;

/// The bindings of every provider's sessions (a session id includes its
/// provider), shared by all requests.
pub struct Affinity {
    mode: AffinityMode,
    table: SessionTable,
    /// Where bindings to tell other replicas go, once in a cluster.
    outlet: OnceLock<mpsc::Sender<SharedBinding>>,
}

impl Affinity {
    pub fn new(settings: AffinitySettings) -> Self {
        Self {
            mode: settings.mode,
            table: SessionTable::new(settings.max_sessions),
            outlet: OnceLock::new(),
        }
    }

    /// Shares this replica's bindings through `outlet` (a full queue drops
    /// them: a replica that misses one rebinds the session itself).
    pub fn share(&self, outlet: mpsc::Sender<SharedBinding>) {
        let _ = self.outlet.set(outlet);
    }

    /// A binding another replica made (never told on).
    pub fn adopt(&self, binding: &SharedBinding) {
        let Some(id) = SessionId::from_hex(&binding.session) else {
            return;
        };
        let ttl = Duration::from_millis(binding.ttl_ms).min(MAX_SHARED_TTL);
        self.table
            .bind(id, Arc::from(binding.scope.as_str()), ttl, Instant::now());
    }

    /// The session of a request, if affinity is on and the prompt may be
    /// long enough for `model` to cache. `parts`: where the route found the
    /// body's session sources, if it parsed the body (else it is read
    /// again here).
    pub fn session(
        &self,
        provider: ProviderKind,
        model: Option<&str>,
        header: Option<&HeaderValue>,
        body: &[u8],
        parts: Option<&SessionParts>,
    ) -> Option<Session> {
        if self.mode == AffinityMode::Off
            || !cacheable::may_be_cached(body.len(), min_cacheable_tokens(provider, model))
        {
            return None;
        }
        let id = match parts {
            Some(parts) => session::session_of_parts(provider, header, body, parts),
            None => session::session_of(provider, header, body)?,
        };
        Some(Session {
            id,
            ttl: cacheable::cache_ttl(body),
        })
    }

    /// The scope `session` is bound to, if still within its cache's life.
    pub fn scope_of(&self, session: &Session) -> Option<Arc<str>> {
        self.table.get(&session.id, Instant::now())
    }

    /// Binds `session` to `scope`, where it was just answered.
    pub fn bind(&self, session: &Session, scope: Arc<str>) {
        let tell = self
            .table
            .bind(session.id, scope.clone(), session.ttl, Instant::now());
        if tell && let Some(outlet) = self.outlet.get() {
            let _ = outlet.try_send(SharedBinding {
                session: session.id.to_hex(),
                scope: scope.to_string(),
                ttl_ms: u64::try_from(session.ttl.as_millis()).unwrap_or(u64::MAX),
            });
        }
    }
}
