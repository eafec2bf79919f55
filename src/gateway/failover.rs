//! The failover loop: up to `max_attempts` upstream attempts per client
//! request, each on a different key while an untried one is available. Every
//! attempt's outcome is reported to the pool before the next key is asked
//! for, so a key that just failed is never chosen again by a race.
//!
//! This is the only retry loop in keygate: transport code never retries.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::{Failure, KeyId, KeyLease, Outcome, ProviderKind, UpstreamDetail};
use crate::keypool::{BoundKeyGone, KeyPoolHandle, RequestTracker, Selection};
use crate::observe::{AttemptOutcome, RequestLog};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Limit on one attempt, from sending the request to its answer (for a
    /// stream: to its first content).
    pub attempt_timeout: Duration,
}

/// A successful attempt's value and how it was reached.
pub struct Answered<T> {
    pub value: T,
    pub key: KeyLease,
    pub attempts: u32,
    /// Reports the key's success when dropped; a stream carries it to its
    /// end so a failure after the gate can be reported instead.
    pub report: KeyReport,
}

enum Verdict {
    /// The attempt has not finished; dropped so, it was abandoned.
    Pending,
    Succeeded(Duration),
    Failed(Failure),
}

/// The outcome of one attempt, reported to the pool exactly once, when
/// dropped. Reporting from `Drop` means neither a client hanging up
/// mid-attempt nor mid-stream can lose the record (or leave a half-open
/// key's probe out forever).
pub struct KeyReport {
    pool: KeyPoolHandle,
    /// The request's log, which counts the attempt in the metrics.
    log: RequestLog,
    key: KeyId,
    model: Option<Arc<str>>,
    started: Instant,
    verdict: Verdict,
}

impl KeyReport {
    fn start(
        pool: &KeyPoolHandle,
        log: &RequestLog,
        key: &KeyId,
        model: Option<&Arc<str>>,
    ) -> Self {
        Self {
            pool: pool.clone(),
            log: log.clone(),
            key: key.clone(),
            model: model.cloned(),
            started: Instant::now(),
            verdict: Verdict::Pending,
        }
    }

    fn succeeded(&mut self) {
        self.verdict = Verdict::Succeeded(self.started.elapsed());
    }

    pub fn failed(&mut self, failure: Failure) {
        self.verdict = Verdict::Failed(failure);
    }
}

/// The metrics' word for an attempt's verdict.
fn counted_as(verdict: &Verdict) -> AttemptOutcome {
    match verdict {
        Verdict::Pending => AttemptOutcome::Cancelled,
        Verdict::Succeeded(_) => AttemptOutcome::Success,
        Verdict::Failed(failure) => match failure {
            Failure::RateLimited { .. } | Failure::QuotaSpent { .. } => AttemptOutcome::RateLimited,
            Failure::KeyRejected(_) | Failure::AccessDenied(_) | Failure::NoAccess(_) => {
                AttemptOutcome::Invalid
            }
            Failure::ProviderFault(_) => AttemptOutcome::ProviderFault,
            Failure::Timeout(_) => AttemptOutcome::Timeout,
            Failure::ClientFault(_) | Failure::Unfit(_) => AttemptOutcome::ClientFault,
        },
    }
}

impl Drop for KeyReport {
    fn drop(&mut self) {
        self.log
            .attempt(self.pool.provider(), &self.key, counted_as(&self.verdict));
        let outcome = match std::mem::replace(&mut self.verdict, Verdict::Pending) {
            Verdict::Pending => Outcome::Cancelled,
            Verdict::Succeeded(latency) => Outcome::Success {
                latency: Some(latency),
            },
            Verdict::Failed(failure) => failure.outcome(),
        };
        self.pool.report(&self.key, self.model.as_ref(), outcome);
    }
}

/// Why a request got no upstream answer.
#[derive(Debug)]
pub enum GatewayError {
    /// Every usable key is cooling down; the first frees after `retry_after`.
    AllKeysCoolingDown {
        provider: ProviderKind,
        retry_after: Duration,
    },
    /// No key can serve: none configured, or all rejected or disabled.
    NoUsableKey {
        provider: ProviderKind,
        total: usize,
        invalid: usize,
    },
    /// Every attempt failed; the last failure decides the answer.
    AttemptsExhausted { attempts: u32, last: Failure },
    /// Most keys just met provider faults: the provider is in trouble.
    ProviderOverloaded {
        provider: ProviderKind,
        failing: usize,
        usable: usize,
        last: Failure,
    },
    /// The upstream says the request itself is wrong; passed on, not retried.
    RequestRejected(UpstreamDetail),
    /// The pool is shutting down.
    PoolUnavailable,
    /// The key the named resource belongs to is cooling down.
    BoundKeyCooling { key: KeyId, retry_after: Duration },
    /// The key the named resource belongs to can never serve it again.
    BoundKeyGone { key: KeyId, why: BoundKeyGone },
}

/// Runs `attempt` with one key after another until one succeeds, the request
/// is found at fault, or attempts or keys run out. `model` scopes cooldowns
/// where the provider limits per model. Every attempt prefers a key of
/// cache `scope` (a session's), so failover tries the same scope first.
pub async fn with_failover<T, F, Fut>(
    pool: &KeyPoolHandle,
    policy: RetryPolicy,
    model: Option<&Arc<str>>,
    scope: Option<&str>,
    tracker: &mut RequestTracker,
    log: &RequestLog,
    attempt: F,
) -> Result<Answered<T>, GatewayError>
where
    F: FnMut(KeyLease) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let keys = Keys::Any { scope };
    failover(pool, policy, keys, model, tracker, log, attempt).await
}

/// `with_failover` held to one key: a call on a resource (a stored
/// response, a batch, a file) that only `key` can see. Its attempts all
/// use that key; when it is cooling the request is answered at once with
/// the wait, and when it is gone with the reason, never with another key.
pub async fn with_bound_key<T, F, Fut>(
    pool: &KeyPoolHandle,
    policy: RetryPolicy,
    key: &KeyId,
    model: Option<&Arc<str>>,
    tracker: &mut RequestTracker,
    log: &RequestLog,
    attempt: F,
) -> Result<Answered<T>, GatewayError>
where
    F: FnMut(KeyLease) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    failover(pool, policy, Keys::Bound(key), model, tracker, log, attempt).await
}

/// The keys a request's attempts may use.
#[derive(Clone, Copy)]
enum Keys<'a> {
    /// Any, preferring cache `scope`'s.
    Any { scope: Option<&'a str> },
    /// Only this one (see `with_bound_key`).
    Bound(&'a KeyId),
}

async fn failover<T, F, Fut>(
    pool: &KeyPoolHandle,
    policy: RetryPolicy,
    keys: Keys<'_>,
    model: Option<&Arc<str>>,
    tracker: &mut RequestTracker,
    log: &RequestLog,
    mut attempt: F,
) -> Result<Answered<T>, GatewayError>
where
    F: FnMut(KeyLease) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let provider = pool.provider();
    let bound = match keys {
        Keys::Bound(key) => Some(key),
        Keys::Any { .. } => None,
    };
    let mut tried: Vec<KeyId> = Vec::with_capacity(policy.max_attempts as usize);
    let mut spent: Vec<KeyId> = Vec::new();
    let mut last_failure = None;
    for number in 1..=policy.max_attempts {
        let selection = match keys {
            Keys::Bound(key) => pool.acquire_bound(key, model),
            Keys::Any { scope } => pool.acquire_preferring(&tried, &spent, model, scope),
        };
        let lease = match selection.map_err(|_| GatewayError::PoolUnavailable)? {
            Selection::Leased(lease) => lease,
            Selection::AllCoolingDown { retry_after } if let Some(key) = bound => {
                return Err(GatewayError::BoundKeyCooling {
                    key: key.clone(),
                    retry_after,
                });
            }
            Selection::BoundKeyGone(why) if let Some(key) = bound => {
                return Err(GatewayError::BoundKeyGone {
                    key: key.clone(),
                    why,
                });
            }
            // Only a bound selection answers so.
            Selection::BoundKeyGone(_) => return Err(GatewayError::PoolUnavailable),
            Selection::AllCoolingDown { retry_after } => {
                return Err(GatewayError::AllKeysCoolingDown {
                    provider,
                    retry_after,
                });
            }
            Selection::NoUsableKey { total, invalid } => {
                return Err(GatewayError::NoUsableKey {
                    provider,
                    total,
                    invalid,
                });
            }
            // No key can use this model: the upstream's own refusal, as
            // the client would have had it from one key.
            Selection::Spent => break,
            Selection::NoAccess(note) => {
                return Err(GatewayError::RequestRejected(UpstreamDetail {
                    status: note.status,
                    error_type: note.error_type,
                    message: note.message,
                }));
            }
        };
        if tried.last().is_some_and(|previous| *previous != lease.id) {
            tracker.rotated();
        }
        tried.push(lease.id.clone());
        log.attempted(&lease.id, &lease.scope);

        let mut report = KeyReport::start(pool, log, &lease.id, model);
        let result = tokio::time::timeout(policy.attempt_timeout, attempt(lease.clone()))
            .await
            .unwrap_or(Err(Failure::timeout(policy.attempt_timeout)));
        match result {
            Ok(value) => {
                report.succeeded();
                return Ok(Answered {
                    value,
                    key: lease,
                    attempts: number,
                    report,
                });
            }
            Err(failure) => {
                let failure = failure.scrubbed(pool.scrubber());
                let detail = failure.detail();
                tracing::warn!(
                    %provider,
                    key = %lease.id,
                    attempt = number,
                    status = detail.status,
                    error_type = %detail.error_type,
                    "upstream attempt failed"
                );
                report.failed(failure.clone());
                drop(report);
                if let Failure::ClientFault(detail) = failure {
                    return Err(GatewayError::RequestRejected(detail));
                }
                if matches!(failure, Failure::Unfit(_)) {
                    spent.push(lease.id.clone());
                }
                last_failure = Some(failure);
            }
        }
    }
    let Some(last) = last_failure else {
        // max_attempts is at least 1, so this is unreachable in practice.
        return Err(GatewayError::PoolUnavailable);
    };
    if matches!(last, Failure::ProviderFault(_) | Failure::Timeout(_))
        && let Ok(Some((failing, usable))) = pool.overloaded()
    {
        return Err(GatewayError::ProviderOverloaded {
            provider,
            failing,
            usable,
            last,
        });
    }
    Err(GatewayError::AttemptsExhausted {
        attempts: policy.max_attempts,
        last,
    })
}
