//! Checking keys against their upstream with a cheap call (`GET /v1/models`;
//! SerpApi's free account endpoint; a one-result search for Google and
//! Brave), for `POST /api/keypool/{provider}/test` and `keygate keys test`.
//! A search key's check also reads what it has left (its headroom). Bounded
//! concurrency and a timeout per key, so a large pool or a dead upstream
//! cannot hang the check.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use crate::domain::{Failure, KeyEntry, ProviderKind, RateLimits};
use crate::providers::Upstreams;

/// Keys checked at once.
pub const CONCURRENCY: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum KeyCheck {
    /// The upstream accepted the key (a rate limit still proves it valid).
    Ok,
    /// The upstream refused the key itself.
    Invalid { status: Option<u16>, reason: String },
    /// No verdict: network error, timeout or an upstream fault.
    Unreachable { reason: String },
}

pub async fn check_key(
    upstreams: &Upstreams,
    provider: ProviderKind,
    key: &KeyEntry,
    timeout: Duration,
) -> KeyCheck {
    check_key_headroom(upstreams, provider, key, timeout)
        .await
        .0
}

/// The check, and what the upstream said the key has left (empty when it
/// did not say).
pub async fn check_key_headroom(
    upstreams: &Upstreams,
    provider: ProviderKind,
    key: &KeyEntry,
    timeout: Duration,
) -> (KeyCheck, RateLimits) {
    let outcome = tokio::time::timeout(timeout, upstreams.probe_limits(provider, &key.secret))
        .await
        .unwrap_or(Err(Failure::timeout(timeout)));
    let check = match outcome.map_err(|failure| failure.scrubbed(upstreams.scrubber())) {
        Ok(limits) => return (KeyCheck::Ok, limits),
        Err(Failure::RateLimited { .. } | Failure::QuotaSpent { .. }) => KeyCheck::Ok,
        // The models list needs no special access: a 403 there is the key's.
        Err(Failure::KeyRejected(detail) | Failure::AccessDenied(detail)) => KeyCheck::Invalid {
            status: detail.status,
            reason: detail.message,
        },
        Err(other) => {
            let detail = other.detail();
            KeyCheck::Unreachable {
                reason: match detail.status {
                    Some(status) => format!("{status} {}: {}", detail.error_type, detail.message),
                    None => detail.message,
                },
            }
        }
    };
    (check, RateLimits::default())
}

/// Checks `keys`, `CONCURRENCY` at a time, calling `progress(done, total)`
/// after each; results come back in the keys' order.
pub async fn check_keys(
    upstreams: &Upstreams,
    provider: ProviderKind,
    keys: Vec<KeyEntry>,
    timeout: Duration,
    mut progress: impl FnMut(usize, usize),
) -> Vec<(KeyEntry, KeyCheck, RateLimits)> {
    let total = keys.len();
    let mut results: Vec<(usize, KeyEntry, (KeyCheck, RateLimits))> = Vec::with_capacity(total);
    let mut checks = futures::stream::iter(keys.into_iter().enumerate())
        .map(|(index, key)| async move {
            let check = check_key_headroom(upstreams, provider, &key, timeout).await;
            (index, key, check)
        })
        .buffer_unordered(CONCURRENCY);
    while let Some(result) = checks.next().await {
        results.push(result);
        progress(results.len(), total);
    }
    results.sort_by_key(|(index, _, _)| *index);
    results
        .into_iter()
        .map(|(_, key, (check, limits))| (key, check, limits))
        .collect()
}
