//! Running as one replica of several: key marks, probe tokens and counters
//! shared through Redis (`REDIS_URL`), under the deployment's name
//! (`KEYGATE_CLUSTER`).
//!
//! Nothing here is on the request path. The pools stay what requests read;
//! what they change goes through a queue (`keypool::SharedOutlet`, never
//! waited on) to the publisher, and what other replicas publish is applied
//! to the pools by the subscriber. Without Redis each replica serves on its
//! own view and catches up when the link returns.
//!
//! - `messages`: the channel's messages and the Redis names.
//! - `link`: the connection, its state, backoff, a password-free URL.
//! - `subscriber`: the supervisor: connects, catches up, applies messages.
//! - `sync`: catching up after (re)connecting.
//! - `publisher`: publishes the pools' changes and keeps marks in Redis.
//! - `counters`: cluster-wide counters and the per-replica breakdown.
//! - `probes`: half-open probe tokens, so one replica probes a key.
//! - `bindings`: publishes the sessions this replica bound to a cache
//!   scope (`affinity`); the subscriber adopts the others'.

mod bindings;
mod counters;
mod link;
pub mod messages;
mod probes;
mod publisher;
mod subscriber;
mod sync;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::affinity::{Affinity, SharedBinding};
use crate::config::ClusterSettings;
use crate::domain::ProviderKind;
use crate::keypool::shared::SharedChange;
use crate::keypool::{KeyPools, SharedOutlet};

pub use link::{LinkError, redacted_url};
pub use messages::Names;

/// Changes the pools may queue for the publisher before new ones are
/// dropped (and a full resync is sent instead).
const OUTLET_CAPACITY: usize = 4096;

/// One replica's own counters, as the others see them in `/status`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ReplicaCounts {
    pub replica_id: String,
    /// Provider → what this replica did since it started.
    pub providers: std::collections::BTreeMap<String, ProviderShare>,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct ProviderShare {
    pub total_requests: u64,
    pub successful_requests: u64,
    pub failed_requests: u64,
    pub rotations: u64,
    /// Key id → requests (attempts), successes, failures.
    pub keys: std::collections::BTreeMap<String, [u64; 3]>,
}

/// What the cluster's tasks share.
struct Ctx {
    link: link::Link,
    names: Names,
    replica: String,
    pools: KeyPools,
    /// Wakes the state saver to reload the stored key set.
    keys_changed: Arc<Notify>,
    /// Changes made while the link was down, published on reconnection.
    pending: Mutex<publisher::Pending>,
    /// The pools' queue overflowed: send every mark in force.
    overflowed: Arc<AtomicBool>,
    /// Bumped at each (re)connection, so counters are seeded once per link.
    generation: AtomicU64,
    /// The latest per-replica breakdown read from Redis.
    replicas: Mutex<Vec<ReplicaCounts>>,
    /// Session bindings, adopted from the other replicas.
    affinity: Arc<Affinity>,
}

/// The view the routes read: all local memory, never a Redis call.
#[derive(Clone)]
pub struct ClusterHandle {
    ctx: Arc<Ctx>,
    notices: mpsc::UnboundedSender<()>,
}

impl ClusterHandle {
    pub fn replica_id(&self) -> &str {
        &self.ctx.replica
    }

    pub fn redis_connected(&self) -> bool {
        self.ctx.link.is_up()
    }

    /// The gauge's source.
    pub fn connected_flag(&self) -> Arc<AtomicBool> {
        self.ctx.link.connected().clone()
    }

    /// Every live replica's own counters (this one's included).
    pub fn replicas(&self) -> Vec<ReplicaCounts> {
        self.ctx
            .replicas
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Tells the other replicas the stored key set changed (an admin route
    /// just wrote it). Never waits.
    pub fn announce_keys_changed(&self) {
        let _ = self.notices.send(());
    }
}

/// The running tasks.
pub struct Cluster {
    handle: ClusterHandle,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<counters::CounterSync>,
}

impl Cluster {
    /// Joins the cluster: the pools start sharing, the tasks start, and
    /// the first connection is attempted in the background (a Redis that
    /// is down at start does not stop this replica from serving).
    pub fn start(
        settings: &ClusterSettings,
        pools: KeyPools,
        keys_changed: Arc<Notify>,
        affinity: Arc<Affinity>,
    ) -> Result<Self, LinkError> {
        use secrecy::ExposeSecret;
        let url = settings.redis_url.expose_secret();
        let link = link::Link::new(url)?;
        let replica = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        tracing::info!(
            replica = %replica,
            cluster = %settings.name,
            redis = %redacted_url(url),
            "joining the cluster"
        );
        let (sender, changes) = mpsc::channel::<(ProviderKind, Vec<SharedChange>)>(OUTLET_CAPACITY);
        let overflowed = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(Ctx {
            link,
            names: Names::new(&settings.name),
            replica,
            pools: pools.clone(),
            keys_changed,
            pending: Mutex::new(publisher::Pending::default()),
            overflowed: overflowed.clone(),
            generation: AtomicU64::new(0),
            replicas: Mutex::new(Vec::new()),
            affinity: affinity.clone(),
        });
        // Counters taken before sharing starts: what was restored from the
        // store is already in the cluster's totals.
        let counters = Arc::new(counters::CounterSync::new(ctx.clone()));
        for pool in pools.iter() {
            pool.share(SharedOutlet {
                sender: sender.clone(),
                overflowed: overflowed.clone(),
            });
        }
        let (binding_tx, bindings) = mpsc::channel::<SharedBinding>(OUTLET_CAPACITY);
        affinity.share(binding_tx);
        let (notices, notice_rx) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(subscriber::run(ctx.clone())),
            tokio::spawn(publisher::run(ctx.clone(), changes, notice_rx)),
            tokio::spawn(counters.clone().run()),
            tokio::spawn(probes::run(ctx.clone())),
            tokio::spawn(bindings::run(ctx.clone(), bindings)),
        ];
        Ok(Self {
            handle: ClusterHandle { ctx, notices },
            tasks,
            counters,
        })
    }

    pub fn handle(&self) -> ClusterHandle {
        self.handle.clone()
    }

    /// Sends the last counters (briefly, if Redis is there) and stops.
    pub async fn stop(self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.counters.tick()).await;
        for task in &self.tasks {
            task.abort();
        }
        self.handle.ctx.link.set_down();
    }
}

impl Ctx {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}
