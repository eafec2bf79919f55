//! `AppState`: what every handler can reach. Only cheap handles live here;
//! mutable key state is owned by each pool's actor, never by a lock in here.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::gateway::RetryPolicy;
use crate::keypool::KeyPools;
use crate::providers::Upstreams;
use crate::vault::Vault;

#[derive(Clone)]
pub struct AppState {
    /// One pool per provider; each pool's actor owns its keys' state.
    pub pools: KeyPools,
    /// The shared HTTP client and provider base URLs (immutable).
    pub upstreams: Arc<Upstreams>,
    /// Stored keys: admin changes are written here first, then told to the
    /// pool.
    pub vault: Arc<Vault>,
    /// Attempts and per-attempt timeout for every proxied request.
    pub retry: RetryPolicy,
    /// Secret for the admin routes; `None` disables them.
    pub admin_key: Option<Arc<SecretString>>,
    /// Largest accepted request body, for the 413 message.
    pub body_limit: usize,
    /// Longest silence between upstream stream events before the stream is
    /// ended with an error.
    pub stream_idle_timeout: Duration,
    /// Limit on checking one key against its upstream.
    pub key_test_timeout: Duration,
    /// Keys clients must present on the proxy routes; empty means open.
    pub client_keys: Arc<Vec<SecretString>>,
}
