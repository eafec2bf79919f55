//! Building the application: open the vault (master key, database, stored
//! keys), import the environment's keys, start one pool actor per provider,
//! bind the listener. `build` binds before serving, so tests pass port 0 and
//! read the real port back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::app_state::AppState;
use crate::config::Config;
use crate::domain::{KeyEntry, ProviderKind};
use crate::gateway::{Gateway, RetryPolicy};
use crate::keypool::{CooldownPolicy, KeyPoolHandle, KeyPools, PoolSettings, PoolState};
use crate::limits::ConversionGate;
use crate::providers::Upstreams;
use crate::routes::router;
use crate::server::{ServerSettings, serve};
use crate::state_saver::StateSaver;
use crate::store::pool_state::load_saved;
use crate::store::{Store, StoreError};
use crate::vault::{MasterKeySource, Vault, VaultError, resolve_cipher};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Upstreams(#[from] crate::providers::UpstreamsError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// The keys each provider starts with, decrypted.
pub type LoadedKeys = Vec<(ProviderKind, Vec<KeyEntry>)>;

/// Resolves the master key, opens the database and refuses a wrong
/// ENCRYPTION_KEY (or a tampered row) before anything is written. Imports
/// nothing: the key-management commands start here.
pub async fn open_vault(config: &Config) -> Result<(Vault, MasterKeySource), StartupError> {
    let (cipher, source) = resolve_cipher(config.encryption_key.as_ref(), &config.data_dir())?;
    if let MasterKeySource::Generated(path) = &source {
        tracing::warn!(
            "ENCRYPTION_KEY is not set: generated a new one in {}; back that file up \
             (stored keys cannot be decrypted without it) or set ENCRYPTION_KEY",
            path.display()
        );
    }
    let store = Store::connect(&config.database_url).await?;
    let vault = Vault::new(store, cipher);
    vault.verify_all().await?;
    Ok((vault, source))
}

/// Opens the vault (see `open_vault`), imports the environment's keys and
/// loads every provider's keys. This is also all `keygate seed` does.
pub async fn open_vault_and_import(config: &Config) -> Result<(Vault, LoadedKeys), StartupError> {
    let (vault, _source) = open_vault(config).await?;
    let mut loaded = Vec::new();
    for provider in &config.providers {
        let added = vault.import(provider.kind, &provider.keys).await?;
        let keys = vault.load(provider.kind).await?;
        tracing::info!(new = added, "{}: {} keys loaded", provider.kind, keys.len());
        if keys.is_empty() {
            tracing::warn!(
                "{}: no keys; set {} to serve it",
                provider.kind,
                provider.kind.env().keys
            );
        }
        loaded.push((provider.kind, keys));
    }
    Ok((vault, loaded))
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Store,
    state_saver: StateSaver,
    shutdown_grace: std::time::Duration,
    header_read_timeout: std::time::Duration,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let (vault, loaded) = open_vault_and_import(&config).await?;
        let store = vault.store().clone();
        let mut pools = Vec::new();
        for (kind, keys) in loaded {
            let Some(provider) = config.provider(kind) else {
                continue;
            };
            let settings = PoolSettings {
                provider: kind,
                strategy: provider.strategy,
                cooldown: CooldownPolicy {
                    default: config.key_cooldown,
                    max: config.key_cooldown_max,
                },
                max_attempts: config.max_attempts,
                per_model_cooldowns: kind.limits_per_model(),
            };
            let mut state = PoolState::new(settings, keys);
            let (stats, saved_keys) = load_saved(&store, kind).await?;
            state.restore(stats, &saved_keys, Instant::now(), SystemTime::now());
            pools.push(KeyPoolHandle::spawn(kind, state));
        }
        let pools = KeyPools::new(pools);
        let vault = Arc::new(vault);
        let state_saver =
            StateSaver::start(pools.clone(), vault.clone(), config.state_flush_interval).await;
        let upstreams = Arc::new(Upstreams::new(&config)?);
        let retry = RetryPolicy {
            max_attempts: config.max_attempts,
            attempt_timeout: config.upstream_timeout,
        };
        let gateway = Gateway::new(
            pools.clone(),
            upstreams.clone(),
            retry,
            config.stream_idle_timeout,
        );
        let state = AppState {
            gateway: Arc::new(gateway),
            pools,
            upstreams,
            vault,
            admin_key: config.admin_api_key.map(Arc::new),
            body_limit: config.body_limit,
            conversions: Arc::new(ConversionGate::new(config.conversions)),
            key_test_timeout: config.key_test_timeout,
            client_keys: Arc::new(config.client_keys),
        };
        if state.client_keys.is_empty() {
            tracing::warn!(
                "GATEWAY_API_KEYS is not set: the proxy routes are open to any client that can reach this address"
            );
        } else {
            tracing::info!(
                "client authentication on: {} gateway keys accepted",
                state.client_keys.len()
            );
        }
        if state.admin_key.is_none() {
            tracing::warn!("ADMIN_API_KEY is not set: the admin routes answer 403");
        }
        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| StartupError::Bind { address, source })?;
        Ok(Self {
            listener,
            router: router(state),
            store,
            state_saver,
            shutdown_grace: config.shutdown_grace,
            header_read_timeout: config.header_read_timeout,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The assembled router, for tests that drive it without a socket.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves until `shutdown` completes: stops accepting, lets requests in
    /// flight finish, saves the key state one last time, closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!("keygate listening on http://{}", self.local_addr());
        let settings = ServerSettings {
            header_read_timeout: self.header_read_timeout,
            shutdown_grace: self.shutdown_grace,
        };
        serve(self.listener, self.router, settings, shutdown).await;
        self.state_saver.stop().await;
        self.store.close().await;
        Ok(())
    }
}
