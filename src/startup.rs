//! Building the application: open the vault (master key, database, stored
//! keys), import the environment's keys, start one key pool per provider
//! and the alert watcher, bind the listener. `build` binds before serving, so tests pass port 0 and
//! read the real port back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::alerts::{Alerts, AlertsError};
use crate::app_state::{AppParts, AppState};
use crate::cluster::{Cluster, LinkError};
use crate::config::Config;
use crate::domain::ClientKeys;
use crate::domain::{KeyEntry, ProviderKind};
use crate::gateway::{Gateway, RetryPolicy, SearchGateway};
use crate::key_rechecker::KeyRechecker;
use crate::keypool::{
    CooldownPolicy, KeyPoolHandle, KeyPools, OutlierPolicy, PoolSettings, PoolState,
};
use crate::ledger::{Ledger, LedgerSink};
use crate::limits::ConversionGate;
use crate::observe::scrape::{PoolCollector, ScrapedCounters};
use crate::observe::{Metrics, Observer};
use crate::pricing::{PriceFileError, PriceFileWatch, PriceTable, Prices, read_price_file};
use crate::providers::Upstreams;
use crate::routes::router;
use crate::scrub::Scrubber;
use crate::server::limits::{
    cap_crowds_descriptors, default_max_connections, raise_descriptor_limit,
};
use crate::server::{ServerSettings, serve};
use crate::state_saver::{KeyWatch, StateSaver};
use crate::store::pool_state::load_saved;
use crate::store::{Store, StoreError, redacted_url};
use crate::vault::{MasterKeySource, Vault, VaultError, resolve_cipher};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Upstreams(#[from] crate::providers::UpstreamsError),
    #[error(transparent)]
    Alerts(#[from] AlertsError),
    #[error(transparent)]
    Cluster(#[from] LinkError),
    #[error(transparent)]
    Prices(#[from] PriceFileError),
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
    if store.is_postgres() {
        tracing::info!(
            "keys, state and usage are stored in PostgreSQL at {}",
            redacted_url(&config.database_url)
        );
    }
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
        for key in &provider.keys {
            if let Some(owner) = provider
                .kind
                .foreign_key_owner(key.secret().expose_secret())
            {
                tracing::warn!(
                    "{}: a key in {} ({}) looks like a key for {owner}; it will be sent to {}",
                    provider.kind,
                    provider.kind.env().keys,
                    crate::scrub::mask_key(key.secret()),
                    provider.kind
                );
            }
        }
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

/// In a cluster, how often the stored key set is checked for changes made
/// through the CLI (admin routes also announce theirs through Redis): a
/// change must be in force everywhere within 1 s.
const CLUSTER_KEY_POLL: std::time::Duration = std::time::Duration::from_millis(500);

pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Store,
    state_saver: StateSaver,
    key_rechecker: Option<KeyRechecker>,
    /// The usage ledger's writer and pruner (`None`: USAGE_LEDGER=off).
    ledger: Option<Ledger>,
    ledger_sink: LedgerSink,
    alerts: Alerts,
    /// The cluster's tasks (`None`: no `REDIS_URL`).
    cluster: Option<Cluster>,
    /// Reloads `PRICES_FILE` when it changes (`None`: no price file).
    price_watch: Option<PriceFileWatch>,
    server: ServerSettings,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        // First: a malformed price file stops startup before anything is
        // opened or written.
        let price_table = match &config.prices_file {
            Some(path) => {
                let entries = read_price_file(path)?;
                tracing::info!(path = %path.display(), models = entries.len(), "price file read");
                PriceTable::with_file(entries)
            }
            None => PriceTable::built_in(),
        };
        let (vault, loaded) = open_vault_and_import(&config).await?;
        let store = vault.store().clone();
        let scrubber = Arc::new(Scrubber::new());
        let prices = Prices::new(price_table, scrubber.clone());
        let price_watch = config
            .prices_file
            .clone()
            .map(|path| PriceFileWatch::start(path, prices.clone(), config.prices_poll));
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
                    no_access: config.key_no_access,
                },
                max_attempts: config.max_attempts,
                per_model_cooldowns: kind.limits_per_model(),
                outlier: OutlierPolicy {
                    consecutive_faults: config.outlier_consecutive_failures,
                    base: config.outlier_ejection,
                    max: config.key_cooldown_max,
                },
            };
            let mut state = PoolState::new(settings, keys);
            let (stats, saved_keys) = load_saved(&store, kind).await?;
            state.restore(stats, &saved_keys, Instant::now(), SystemTime::now());
            pools.push(KeyPoolHandle::new(kind, state, scrubber.clone()));
        }
        let pools = KeyPools::new(pools);
        let vault = Arc::new(vault);
        let keys_changed = Arc::new(tokio::sync::Notify::new());
        // Started before serving and after the saved state is restored, so
        // the restored counters are this replica's baseline, not news.
        let cluster = config
            .cluster
            .as_ref()
            .map(|settings| Cluster::start(settings, pools.clone(), keys_changed.clone()))
            .transpose()?;
        let key_watch = KeyWatch {
            poll: if cluster.is_some() {
                CLUSTER_KEY_POLL
            } else {
                config.state_flush_interval
            },
            notice: keys_changed,
        };
        let state_saver = StateSaver::start(
            pools.clone(),
            vault.clone(),
            config.state_flush_interval,
            key_watch,
        )
        .await;
        let upstreams = Arc::new(Upstreams::new(&config, scrubber.clone())?);
        let retry = RetryPolicy {
            max_attempts: config.max_attempts,
            attempt_timeout: config.upstream_timeout,
        };
        let key_rechecker = config.key_recheck.map(|interval| {
            KeyRechecker::start(
                pools.clone(),
                vault.clone(),
                upstreams.clone(),
                interval,
                config.key_test_timeout,
            )
        });
        let (ledger_sink, ledger) = Ledger::start(&store, &config.ledger);
        if ledger.is_none() {
            tracing::info!("USAGE_LEDGER=off: usage is not recorded");
        }
        let alerts = Alerts::start(config.alerts, pools.clone())?;
        let search = SearchGateway::new(
            pools.clone(),
            upstreams.clone(),
            retry,
            &config.search,
            config.key_cooldown,
        );
        let gateway = Gateway::new(
            pools.clone(),
            upstreams.clone(),
            retry,
            config.stream_idle_timeout,
            scrubber,
            config.key_test_timeout,
        );
        // The request log (observe) writes each client request's row to the
        // ledger's sink.
        let collector = PoolCollector::new(
            pools.clone(),
            ScrapedCounters {
                ledger: ledger_sink.counters().clone(),
                alerts: alerts.handle().counters().clone(),
                redis_connected: cluster.as_ref().map(|c| c.handle().connected_flag()),
            },
        );
        let metrics = Arc::new(Metrics::new(Some(Box::new(collector))));
        let observer = Arc::new(Observer::new(ledger_sink.clone(), metrics, prices.clone()));
        let state = AppState::new(AppParts {
            gateway: Arc::new(gateway),
            search: Arc::new(search),
            observer,
            prices,
            pools,
            upstreams,
            vault,
            admin_key: config.admin_api_key.map(Arc::new),
            metrics_token: config.metrics_token.map(Arc::new),
            body_limit: config.body_limit,
            conversions: Arc::new(ConversionGate::new(config.conversions)),
            key_test_timeout: config.key_test_timeout,
            client_keys: Arc::new(ClientKeys::new(&config.client_keys)),
            cors_origins: Arc::new(config.cors_origins),
            allowed_hosts: config.allowed_hosts.map(Arc::new),
            ledger: ledger_sink.clone(),
            alerts: alerts.handle(),
            cluster: cluster.as_ref().map(Cluster::handle),
        });
        if state.client_keys.is_empty() {
            let why = if config.client_keys_given {
                "GATEWAY_API_KEYS is an empty list"
            } else {
                "GATEWAY_API_KEYS is not set"
            };
            tracing::warn!(
                "{why}: the proxy routes are open to any client that can reach this address"
            );
        } else {
            tracing::info!(
                "client authentication on: {} gateway keys accepted",
                state.client_keys.len()
            );
        }
        if state.cors_origins.any() {
            tracing::warn!(
                "CORS_ORIGINS lists \"*\": any web page may call the proxy routes from a visitor's browser"
            );
        }
        if state.admin_key.is_none() {
            tracing::warn!("ADMIN_API_KEY is not set: the admin routes answer 403");
        }
        let server = ServerSettings {
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            max_connections: connection_cap(config.max_connections),
            shutdown_grace: config.shutdown_grace,
        };
        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| StartupError::Bind { address, source })?;
        Ok(Self {
            listener,
            router: router(state),
            store,
            state_saver,
            key_rechecker,
            ledger,
            ledger_sink,
            alerts,
            cluster,
            price_watch,
            server,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The usage ledger's sink (the one in the router's state), for tests
    /// and tools that record rows directly.
    pub fn ledger(&self) -> LedgerSink {
        self.ledger_sink.clone()
    }

    /// The assembled router, for tests that drive it without a socket.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves until `shutdown` completes: stops accepting, lets requests in
    /// flight finish, writes the queued usage rows, saves the key state one
    /// last time, stops alerting, closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!("keygate listening on http://{}", self.local_addr());
        serve(self.listener, self.router, self.server, shutdown).await;
        if let Some(rechecker) = self.key_rechecker {
            rechecker.stop();
        }
        if let Some(watch) = self.price_watch {
            watch.stop();
        }
        // After serving: every request has recorded its row by now.
        if let Some(ledger) = self.ledger {
            ledger.stop().await;
        }
        // The last counters go to the cluster before the last save, which
        // writes the cluster's totals.
        if let Some(cluster) = self.cluster {
            cluster.stop().await;
        }
        self.state_saver.stop().await;
        // After the save, which matters more: alerts still queued get at
        // most ALERT_TIMEOUT_SECS.
        self.alerts.stop().await;
        self.store.close().await;
        Ok(())
    }
}

/// Raises the descriptor limit and settles MAX_CONNECTIONS (by default,
/// three quarters of the descriptors: the rest stay for upstream
/// connections and the database).
fn connection_cap(configured: Option<usize>) -> usize {
    let limit = raise_descriptor_limit();
    let cap = configured.unwrap_or_else(|| default_max_connections(limit));
    tracing::info!(
        "open-file limit {} (was {}); serving up to {cap} connections at once",
        limit.soft,
        limit.before
    );
    if cap_crowds_descriptors(cap, limit) {
        tracing::warn!(
            "MAX_CONNECTIONS={cap} leaves less than a quarter of the {} descriptors for \
             upstream connections and the database",
            limit.soft
        );
    }
    cap
}
