//! `AppState`: what every handler can reach. Only cheap handles live here;
//! mutable key state is owned by each pool's actor, never by a lock in here.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::gateway::Gateway;
use crate::keypool::KeyPools;
use crate::limits::ConversionGate;
use crate::providers::Upstreams;
use crate::vault::Vault;

#[derive(Clone)]
pub struct AppState {
    /// The request path: every proxied request goes through it.
    pub gateway: Arc<Gateway>,
    /// One pool per provider (the same pools the gateway uses), for the
    /// admin routes.
    pub pools: KeyPools,
    /// The shared HTTP client, for key checks.
    pub upstreams: Arc<Upstreams>,
    /// Stored keys: admin changes are written here first, then told to the
    /// pool.
    pub vault: Arc<Vault>,
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
    pub client_keys: Arc<Vec<SecretString>>,
}
