//! Counters in a cluster. Each replica counts what it does itself; the
//! cluster's totals come back from Redis (see `cluster::counters`), and the
//! pool shows those totals plus what it counted since it last sent its own
//! share, so its figures never lag its own traffic.
//!
//! Provider counters: total, successful, failed requests and rotations;
//! per key: attempts (requests), successes, failures.

use std::collections::HashMap;

use super::machine::PoolState;
use super::status::PoolStats;

/// A pool's counters, by provider and by key id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// total, successful, failed requests; rotations.
    pub provider: [u64; 4],
    /// Key id → requests, successes, failures.
    pub keys: HashMap<String, [u64; 3]>,
}

/// The cluster's totals as last read, and this replica's own counts that
/// they already include.
pub(super) struct ClusterCounts {
    totals: Counts,
    included: Counts,
}

impl PoolState {
    /// This replica's own counters.
    pub fn local_counts(&self) -> Counts {
        Counts {
            provider: [
                self.stats.total_requests,
                self.stats.successful_requests,
                self.stats.failed_requests,
                self.stats.rotations,
            ],
            keys: self
                .slots
                .iter()
                .map(|s| {
                    (
                        s.entry.id.to_string(),
                        [s.requests, s.successes, s.failures],
                    )
                })
                .collect(),
        }
    }

    /// The cluster's `totals`, which include this replica's `included`.
    pub fn set_cluster_counts(&mut self, totals: Counts, included: Counts) {
        self.cluster_counts = Some(ClusterCounts { totals, included });
    }

    /// A reset cleared the keys' failures: the cluster's failure totals go
    /// too (the counters task sets them in Redis from the replicas' own).
    pub(super) fn forget_failures(&mut self) {
        if let Some(cluster) = &mut self.cluster_counts {
            for counts in [&mut cluster.totals, &mut cluster.included] {
                counts.keys.values_mut().for_each(|values| values[2] = 0);
            }
        }
    }

    /// The provider counters to show: the cluster's when known.
    pub(super) fn shown_stats(&self) -> PoolStats {
        let mut stats = self.stats.clone();
        if let Some(cluster) = &self.cluster_counts {
            let local = [
                stats.total_requests,
                stats.successful_requests,
                stats.failed_requests,
                stats.rotations,
            ];
            let shown = add_since(cluster.totals.provider, local, cluster.included.provider);
            [
                stats.total_requests,
                stats.successful_requests,
                stats.failed_requests,
                stats.rotations,
            ] = shown;
        }
        stats
    }

    /// A key's requests, successes and failures to show.
    pub(super) fn shown_key(&self, key: &str) -> [u64; 3] {
        let Some(slot) = self.positions.get(key).map(|&i| &self.slots[i]) else {
            return [0; 3];
        };
        let local = [slot.requests, slot.successes, slot.failures];
        match &self.cluster_counts {
            None => local,
            Some(cluster) => add_since(
                cluster.totals.keys.get(key).copied().unwrap_or(local),
                local,
                cluster.included.keys.get(key).copied().unwrap_or(local),
            ),
        }
    }
}

/// `totals` plus what `local` gained since `included`; a local figure that
/// went down (a reset cleared failures) counts from zero.
fn add_since<const N: usize>(totals: [u64; N], local: [u64; N], included: [u64; N]) -> [u64; N] {
    std::array::from_fn(|i| {
        let gained = if local[i] >= included[i] {
            local[i] - included[i]
        } else {
            local[i]
        };
        totals[i].saturating_add(gained)
    })
}
