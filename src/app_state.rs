//! `AppState`: what every handler can reach. axum clones the state for
//! every request, so it is one `Arc` around the parts (one atomic increment
//! per request, not one per field). Mutable key state is owned by each
//! pool's handle, never by a lock in here.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::alerts::AlertsHandle;
use crate::cluster::ClusterHandle;
use crate::domain::ClientKeys;
use crate::domain::browser::{AllowedHosts, CorsOrigins};
use crate::gateway::{Gateway, SearchGateway};
use crate::keypool::KeyPools;
use crate::ledger::LedgerSink;
use crate::limits::ConversionGate;
use crate::observe::Observer;
use crate::pricing::Prices;
use crate::providers::Upstreams;
use crate::vault::Vault;

#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

pub struct AppParts {
    /// The request path: every proxied request goes through it.
    pub gateway: Arc<Gateway>,
    /// `/api/search`'s path across the search pools (the same pools).
    pub search: Arc<SearchGateway>,
    /// Where each finished request's row and each attempt go (usage
    /// ledger, metrics).
    pub observer: Arc<Observer>,
    /// The prices in force (built in, with `PRICES_FILE` over them),
    /// swapped whole by `pricing::PriceFileWatch`, and the models answered
    /// without a price. The same handle the observer prices rows with.
    pub prices: Prices,
    /// One pool per provider (the same pools the gateway uses), for the
    /// admin routes.
    pub pools: KeyPools,
    /// The shared HTTP client, for key checks.
    pub upstreams: Arc<Upstreams>,
    /// Stored keys: admin changes are written here first, then told to the
    /// pool.
    pub vault: Arc<Vault>,
    /// Bearer token `GET /metrics` requires; `None` leaves it open.
    pub metrics_token: Option<Arc<SecretString>>,
    /// Secret for the admin routes; `None` disables them.
    pub admin_key: Option<Arc<SecretString>>,
    /// Largest accepted request body, for the 413 message.
    pub body_limit: usize,
    /// Turns for converting large bodies (`/api/chat`, a `claude-` model
    /// on `/v1/chat/completions`): only a few are rebuilt at once.
    pub conversions: Arc<ConversionGate>,
    /// Limit on checking one key against its upstream.
    pub key_test_timeout: Duration,
    /// Keys clients must present on the proxy routes; empty means open.
    pub client_keys: Arc<ClientKeys>,
    /// Pages browsers may call from (`CORS_ORIGINS`), for the CORS layer
    /// and the body-type check.
    pub cors_origins: Arc<CorsOrigins>,
    /// `Host` names answered; `None` leaves `Host` unchecked.
    pub allowed_hosts: Option<Arc<AllowedHosts>>,
    /// Where each finished request's usage row goes (never waits); its
    /// counters say how many rows were written and dropped. The writer
    /// behind it is owned by `Application`, which flushes it at shutdown.
    pub ledger: LedgerSink,
    /// The alert watcher's view (open conditions), its channels and its
    /// delivery counters (`alerts.counters()`: sent, failed, dropped),
    /// owned by the tasks `alerts::Alerts` runs.
    pub alerts: AlertsHandle,
    /// This replica's view of its cluster (`None`: no `REDIS_URL`): the
    /// replica id, the Redis link's state, the per-replica counters, and
    /// the "keys changed" notice the key routes send. Owned by the tasks
    /// `cluster::Cluster` runs; reading it never waits on Redis.
    pub cluster: Option<ClusterHandle>,
}
