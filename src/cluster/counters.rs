//! Cluster-wide counters. Every `TICK`, each replica adds what it counted
//! since its last report to one Redis hash per provider (`HINCRBY`, atomic)
//! and reads the hash back: the totals every replica shows. Each replica
//! also writes its own since-start counters under its id (expiring when it
//! stops reporting), which `/status` lists as the per-replica breakdown.
//!
//! Why increments and not each replica's totals: a replica only ever adds
//! what it did itself, so replicas cannot overwrite one another, and a
//! restarted replica (which loads the saved cluster totals from the store)
//! adds nothing twice: its starting figures are its baseline. The first
//! replica to reach an empty hash (a new Redis, or one that lost its data)
//! seeds it with the last totals it knew, in one atomic script.
//!
//! While Redis is away a replica keeps counting; its unsent part goes with
//! the next report. A report lost in transit after Redis applied it (the
//! link dropping between the write and its answer) can count twice; that is
//! the one inexactness, and it needs a failure at that very moment.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use super::publisher::now_ms;
use super::{Ctx, ProviderShare, ReplicaCounts};
use crate::domain::ProviderKind;
use crate::keypool::Counts;

const TICK: Duration = Duration::from_millis(200);
/// A replica that has not reported for this long is left out of the
/// breakdown (its share stays in the totals).
const REPLICA_TTL_MS: u64 = 10_000;
const PROVIDER_FIELDS: [&str; 4] = [
    "total_requests",
    "successful_requests",
    "failed_requests",
    "rotations",
];
const KEY_FIELDS: [&str; 3] = ["requests", "successes", "failures"];

/// Seeds an empty hash; a hash that exists (another replica seeded it, or
/// added to it) is left alone.
const SEED: &str = "if redis.call('EXISTS', KEYS[1]) == 0 and #ARGV > 0 then \
                    redis.call('HSET', KEYS[1], unpack(ARGV)) end return 0";

/// One pool's bookkeeping.
struct PoolBook {
    provider: ProviderKind,
    /// Local counts already added to the cluster's hash.
    sent: Counts,
    /// Local counts at start (restored from the store).
    start: Counts,
    /// The cluster's totals as last read (the seed after a data loss).
    totals: Counts,
}

pub struct CounterSync {
    ctx: Arc<Ctx>,
    books: Mutex<Vec<PoolBook>>,
    /// The link generation the hashes were last seeded on.
    seeded: Mutex<u64>,
    /// Serialises ticks (the last one at shutdown may race the timer).
    turn: tokio::sync::Mutex<()>,
}

impl CounterSync {
    pub fn new(ctx: Arc<Ctx>) -> Self {
        let books = ctx
            .pools
            .iter()
            .filter_map(|pool| {
                let start = pool.local_counts().ok()?;
                Some(PoolBook {
                    provider: pool.provider(),
                    sent: start.clone(),
                    totals: start.clone(),
                    start,
                })
            })
            .collect();
        Self {
            ctx,
            books: Mutex::new(books),
            seeded: Mutex::new(0),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    pub async fn run(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.tick().await;
        }
    }

    /// One report: send increments, read totals and the breakdown.
    pub async fn tick(&self) {
        let _turn = self.turn.lock().await;
        let Some(mut conn) = self.ctx.link.commands() else {
            return;
        };
        let generation = self.ctx.generation();
        let seed = self.seeded.lock().map(|s| *s != generation).unwrap_or(true);
        let mut work = Vec::new();
        let Ok(books) = self.books.lock().map(|b| {
            b.iter()
                .map(|book| {
                    (
                        book.provider,
                        book.sent.clone(),
                        book.totals.clone(),
                        book.start.clone(),
                    )
                })
                .collect::<Vec<_>>()
        }) else {
            return;
        };
        let mut pipe = redis::pipe();
        let mut mine = ReplicaCounts {
            replica_id: self.ctx.replica.clone(),
            providers: BTreeMap::new(),
        };
        for (provider, sent, totals, start) in books {
            let Some(pool) = self.ctx.pools.get(provider) else {
                continue;
            };
            let Ok(local) = pool.local_counts() else {
                continue;
            };
            let hash = self.ctx.names.counts(provider);
            if seed {
                let args = fields(&totals);
                pipe.cmd("EVAL")
                    .arg(SEED)
                    .arg(1)
                    .arg(&hash)
                    .arg(args)
                    .ignore();
            }
            for (pair, step) in fields(&local).chunks(2).zip(steps(&local, &sent)) {
                match step {
                    Step::Add(0) => {}
                    Step::Add(delta) => {
                        pipe.cmd("HINCRBY")
                            .arg(&hash)
                            .arg(&pair[0])
                            .arg(delta)
                            .ignore();
                    }
                    Step::Set(value) => {
                        pipe.cmd("HSET")
                            .arg(&hash)
                            .arg(&pair[0])
                            .arg(value)
                            .ignore();
                    }
                }
            }
            pipe.cmd("HGETALL").arg(&hash);
            mine.providers
                .insert(provider.as_str().to_string(), share_since(&local, &start));
            work.push((provider, local));
        }
        let mine_json = serde_json::to_string(&mine).unwrap_or_default();
        let now = now_ms();
        pipe.cmd("SET")
            .arg(self.ctx.names.replica(&self.ctx.replica))
            .arg(mine_json)
            .arg("PX")
            .arg(REPLICA_TTL_MS)
            .ignore();
        pipe.cmd("ZADD")
            .arg(self.ctx.names.replicas())
            .arg(now)
            .arg(&self.ctx.replica)
            .ignore();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(self.ctx.names.replicas())
            .arg("-inf")
            .arg(now.saturating_sub(REPLICA_TTL_MS))
            .ignore();
        pipe.cmd("ZRANGE")
            .arg(self.ctx.names.replicas())
            .arg(0)
            .arg(-1);
        let answer: redis::RedisResult<Vec<redis::Value>> = pipe.query_async(&mut conn).await;
        let Ok(answer) = answer else {
            self.ctx.link.report_trouble();
            return;
        };
        let mut answer = answer.into_iter();
        for (provider, local) in work {
            let Some(hash) = answer.next() else { return };
            let totals = parse_totals(hash);
            self.record(provider, &local, &totals);
            if let Some(pool) = self.ctx.pools.get(provider) {
                pool.set_cluster_counts(totals, local);
            }
        }
        if seed && let Ok(mut seeded) = self.seeded.lock() {
            *seeded = generation;
        }
        let ids: Vec<String> = answer
            .next()
            .and_then(|v| redis::from_redis_value(v).ok())
            .unwrap_or_default();
        self.read_breakdown(&mut conn, ids).await;
    }

    /// Notes what was sent and the totals read back.
    fn record(&self, provider: ProviderKind, local: &Counts, totals: &Counts) {
        if let Ok(mut books) = self.books.lock()
            && let Some(book) = books.iter_mut().find(|b| b.provider == provider)
        {
            book.sent = local.clone();
            book.totals = totals.clone();
        }
    }

    async fn read_breakdown(&self, conn: &mut redis::aio::MultiplexedConnection, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let names: Vec<String> = ids.iter().map(|id| self.ctx.names.replica(id)).collect();
        let Ok(values) = redis::cmd("MGET")
            .arg(names)
            .query_async::<Vec<Option<String>>>(conn)
            .await
        else {
            return;
        };
        let mut replicas: Vec<ReplicaCounts> = values
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        replicas.sort_by(|a, b| a.replica_id.cmp(&b.replica_id));
        if let Ok(mut view) = self.ctx.replicas.lock() {
            *view = replicas;
        }
    }
}

/// The hash's fields and values for `counts`, flattened (field, value, …).
fn fields(counts: &Counts) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in PROVIDER_FIELDS.iter().zip(counts.provider) {
        out.push((*name).to_string());
        out.push(value.to_string());
    }
    let mut keys: Vec<_> = counts.keys.iter().collect();
    keys.sort();
    for (key, values) in keys {
        for (name, value) in KEY_FIELDS.iter().zip(values) {
            out.push(format!("{key}:{name}"));
            out.push(value.to_string());
        }
    }
    out
}

/// How one field of the hash changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// What this replica counted since its last report.
    Add(i64),
    /// A figure that went down (a reset cleared the keys' failures, on
    /// every replica): the cluster's figure restarts from this replica's.
    /// Failures another replica counted in the instant after the reset may
    /// be overwritten; a reset is an admin's rare act.
    Set(u64),
}

/// How each field changes since `sent`, in `fields`' order.
fn steps(local: &Counts, sent: &Counts) -> Vec<Step> {
    let gain = |now: u64, before: u64| -> Step {
        if now >= before {
            Step::Add(i64::try_from(now - before).unwrap_or(i64::MAX))
        } else {
            Step::Set(now)
        }
    };
    let mut out: Vec<Step> = (0..4)
        .map(|i| gain(local.provider[i], sent.provider[i]))
        .collect();
    let mut keys: Vec<_> = local.keys.iter().collect();
    keys.sort();
    for (key, values) in keys {
        // A key unknown at the last report joined since, with nothing.
        let before = sent.keys.get(key).copied().unwrap_or([0; 3]);
        out.extend((0..3).map(|i| gain(values[i], before[i])));
    }
    out
}

fn parse_totals(value: redis::Value) -> Counts {
    let map: HashMap<String, i64> = redis::from_redis_value(value).unwrap_or_default();
    let get = |name: &str| u64::try_from(map.get(name).copied().unwrap_or(0)).unwrap_or(0);
    let mut counts = Counts {
        provider: std::array::from_fn(|i| get(PROVIDER_FIELDS[i])),
        keys: HashMap::new(),
    };
    for field in map.keys() {
        if let Some((key, "requests")) = field.rsplit_once(':') {
            let values = std::array::from_fn(|i| get(&format!("{key}:{}", KEY_FIELDS[i])));
            counts.keys.insert(key.to_string(), values);
        }
    }
    counts
}

fn share_since(local: &Counts, start: &Counts) -> ProviderShare {
    let since = |now: u64, then: u64| now.saturating_sub(then);
    ProviderShare {
        total_requests: since(local.provider[0], start.provider[0]),
        successful_requests: since(local.provider[1], start.provider[1]),
        failed_requests: since(local.provider[2], start.provider[2]),
        rotations: since(local.provider[3], start.provider[3]),
        keys: local
            .keys
            .iter()
            .map(|(key, values)| {
                let before = start.keys.get(key).copied().unwrap_or([0; 3]);
                (
                    key.clone(),
                    std::array::from_fn(|i| since(values[i], before[i])),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(provider: [u64; 4], keys: &[(&str, [u64; 3])]) -> Counts {
        Counts {
            provider,
            keys: keys.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn only_what_was_counted_since_the_last_report_is_sent() {
        let sent = counts([10, 9, 1, 0], &[("k1", [12, 11, 1])]);
        let local = counts([13, 11, 2, 1], &[("k1", [16, 14, 2]), ("k2", [1, 1, 0])]);
        let adds = |steps: Vec<Step>| -> Vec<i64> {
            steps
                .into_iter()
                .map(|s| match s {
                    Step::Add(n) => n,
                    Step::Set(_) => -1,
                })
                .collect()
        };
        assert_eq!(
            adds(steps(&local, &sent)),
            [3, 2, 1, 1, 4, 3, 1, 1, 1, 0],
            "a key added since the last report counts from zero"
        );
        let reset = counts([13, 11, 2, 1], &[("k1", [16, 14, 0])]);
        let after = counts([13, 11, 2, 1], &[("k1", [17, 14, 1])]);
        assert_eq!(adds(steps(&after, &reset)), [0, 0, 0, 0, 1, 0, 1]);
        let before_reset = counts([13, 11, 2, 1], &[("k1", [16, 14, 2])]);
        let gone_down = counts([13, 11, 2, 1], &[("k1", [16, 14, 1])]);
        assert_eq!(
            steps(&gone_down, &before_reset)[6],
            Step::Set(1),
            "failures reset, then one: the cluster's figure restarts"
        );
    }

    #[test]
    fn totals_parse_back_from_the_hash_fields() {
        let local = counts([5, 4, 1, 2], &[("key_a", [6, 4, 2])]);
        let flat = fields(&local);
        let pairs: Vec<(redis::Value, redis::Value)> = flat
            .chunks(2)
            .map(|p| {
                (
                    redis::Value::BulkString(p[0].clone().into_bytes()),
                    redis::Value::BulkString(p[1].clone().into_bytes()),
                )
            })
            .collect();
        assert_eq!(parse_totals(redis::Value::Map(pairs)), local);
    }
}
