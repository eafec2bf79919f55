//! Half-open probe tokens. When a shared cooldown or ejection runs out,
//! every replica knows it at once (same deadline), and each would send one
//! probe: with ten replicas, ten requests into a key that may still be
//! limited. Here, every `TICK` each replica asks its pools for finished
//! rests waiting on a token and tries `SET NX PX` on the token's name
//! (which carries the rest's end, so all contend for the same one). The
//! winner's pool lets one request probe; the others keep the key out until
//! the probe's result arrives (a new rest, or a recovery) or the token
//! expires.
//!
//! This runs beside the request path, never on it: a key simply stays out
//! for a few milliseconds longer. Without Redis each replica probes alone,
//! as a single keygate does.

use std::sync::Arc;
use std::time::Duration;

use super::Ctx;

const TICK: Duration = Duration::from_millis(50);
/// How long a token holds: long enough for a probe to be answered, short
/// enough that a holder that died (or gets no traffic) is not waited on
/// for long.
const TOKEN_TTL: Duration = Duration::from_secs(10);

pub async fn run(ctx: Arc<Ctx>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for pool in ctx.pools.iter() {
            for probe in pool.probes_due() {
                let Some(mut conn) = ctx.link.commands() else {
                    pool.probe_granted(&probe);
                    continue;
                };
                let name = ctx.names.probe(
                    pool.provider(),
                    probe.key.as_str(),
                    &probe.scope.slot(),
                    probe.until_ms,
                );
                let taken: redis::RedisResult<Option<String>> = redis::cmd("SET")
                    .arg(&name)
                    .arg(&ctx.replica)
                    .arg("NX")
                    .arg("PX")
                    .arg(TOKEN_TTL.as_millis() as u64)
                    .query_async(&mut conn)
                    .await;
                match taken {
                    Ok(Some(_)) => pool.probe_granted(&probe),
                    Ok(None) => {
                        let holder: Option<String> = redis::cmd("GET")
                            .arg(&name)
                            .query_async(&mut conn)
                            .await
                            .unwrap_or(None);
                        if holder.as_deref() == Some(ctx.replica.as_str()) {
                            pool.probe_granted(&probe);
                        } else {
                            pool.probe_elsewhere(&probe, TOKEN_TTL);
                        }
                    }
                    Err(_) => {
                        // Serve rather than wait on a link in trouble.
                        pool.probe_granted(&probe);
                        ctx.link.report_trouble();
                    }
                }
            }
        }
    }
}
