//! `SearchGateway`: `/api/search`'s path. It tries the chosen provider (or
//! each provider of `SEARCH_PROVIDERS` in turn, for `auto`) through the
//! same failover loop and pools as chat, then applies each provider's
//! rules for what a failure means:
//! - SerpApi 429: the free account endpoint says whether the month's or
//!   the hour's searches ran out (asked once per key per
//!   `SERPAPI_ACCOUNT_CACHE_SECS`, so a burst of 429s asks once);
//! - Google's daily quota belongs to a project: keys learned to share the
//!   project rest together until midnight Pacific time;
//! - Brave's rate-limit headers feed the headroom strategy on every answer.
//!
//! Nothing here runs on the chat path; a successful search makes no call
//! besides the search itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use serde::Serialize;
use tokio::time::Instant;

use super::failover::{GatewayError, RetryPolicy, with_failover};
use super::search_cache::SearchCache;
use crate::config::SearchSettings;
use crate::domain::{Failure, KeyId, KeyLease, ProviderKind, UpstreamDetail, Usage, ceil_secs};
use crate::error::ApiError;
use crate::keypool::{KeyPoolHandle, KeyPools, RequestTracker};
use crate::observe::RequestLog;
use crate::providers::Upstreams;
use crate::providers::search::serpapi::Account;
use crate::providers::search::{SearchFault, SearchHit, SearchQuery};

/// Which providers a search may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Choice {
    /// `SEARCH_PROVIDERS`, in order.
    Auto,
    Only(ProviderKind),
}

/// The normalised answer, whichever provider served it.
#[derive(Debug, Clone, Serialize)]
pub struct SearchAnswer {
    pub provider: ProviderKind,
    pub query: String,
    pub total_results: Option<u64>,
    pub results: Vec<SearchHit>,
    pub key_id: KeyId,
    pub attempts: u32,
    /// From asking the provider to its answer, in milliseconds.
    pub search_time_ms: f64,
    /// Answered from the cache: no upstream search was made.
    pub cached: bool,
}

pub struct SearchGateway {
    pools: KeyPools,
    upstreams: Arc<Upstreams>,
    retry: RetryPolicy,
    order: Vec<ProviderKind>,
    /// The rest assumed for a rate limit that names none.
    default_cooldown: Duration,
    account_ttl: Duration,
    /// SerpApi account answers by key. An async lock, held across the
    /// lookup on purpose: concurrent 429s of one burst wait for the first
    /// lookup instead of each making their own.
    accounts: tokio::sync::Mutex<HashMap<KeyId, (Instant, Account)>>,
    /// Google keys by the project the quota errors named.
    projects: Mutex<HashMap<KeyId, u64>>,
    cache: Option<SearchCache>,
}

/// How one provider's turn ended without an answer.
enum Miss {
    /// Out for now: every key rests; the first is back after this.
    Out(Duration),
    /// No key configured: `auto` passes over it silently.
    Unconfigured,
    Failed(ApiError),
}

impl SearchGateway {
    pub fn new(
        pools: KeyPools,
        upstreams: Arc<Upstreams>,
        retry: RetryPolicy,
        settings: &SearchSettings,
        default_cooldown: Duration,
    ) -> Self {
        Self {
            pools,
            upstreams,
            retry,
            order: settings.order.clone(),
            default_cooldown,
            account_ttl: settings.account_cache,
            accounts: tokio::sync::Mutex::new(HashMap::new()),
            projects: Mutex::new(HashMap::new()),
            cache: settings
                .cache_ttl
                .map(|ttl| SearchCache::new(ttl, settings.cache_entries)),
        }
    }

    pub async fn search(
        &self,
        choice: Choice,
        query: &SearchQuery,
        log: &RequestLog,
    ) -> Result<SearchAnswer, ApiError> {
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(choice, query)) {
            log.target(hit.provider, Some(hit.provider.default_model()));
            return Ok(SearchAnswer {
                cached: true,
                attempts: 0,
                ..hit
            });
        }
        let providers = match choice {
            Choice::Auto => self.order.clone(),
            Choice::Only(provider) => vec![provider],
        };
        let mut first_back: Option<Duration> = None;
        let mut failed: Option<ApiError> = None;
        for provider in providers {
            let Some(pool) = self.pools.get(provider) else {
                continue;
            };
            match self.on(pool, query, log).await {
                Ok(answer) => {
                    if let Some(cache) = &self.cache {
                        cache.put(choice, query, &answer);
                    }
                    return Ok(answer);
                }
                Err(Miss::Out(wait)) => {
                    first_back = Some(first_back.map_or(wait, |w| w.min(wait)));
                }
                Err(Miss::Unconfigured) if choice == Choice::Auto => {}
                Err(Miss::Unconfigured) => {
                    return Err(ApiError::unavailable(format!(
                        "no {provider} key is configured; set {} or add one",
                        provider.env().key
                    )));
                }
                // The search itself is wrong: no provider would take it.
                Err(Miss::Failed(error)) if error.status.is_client_error() => {
                    return Err(error);
                }
                Err(Miss::Failed(error)) => failed = Some(error),
            }
        }
        if let Some(error) = failed {
            return Err(error);
        }
        match first_back {
            Some(wait) => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!(
                    "every search key is resting after a rate limit or a spent quota; \
                     the first is back in {} s",
                    ceil_secs(wait).max(1)
                ),
            )
            .with_retry_after(wait)),
            None => Err(ApiError::unavailable(
                "no search provider is configured; set SERPAPI_KEY, GOOGLE_CSE_KEY (with \
                 GOOGLE_CSE_CX) or BRAVE_SEARCH_KEY, or add a key",
            )),
        }
    }

    /// One provider's turn: the failover loop over its pool.
    async fn on(
        &self,
        pool: &KeyPoolHandle,
        query: &SearchQuery,
        log: &RequestLog,
    ) -> Result<SearchAnswer, Miss> {
        let provider = pool.provider();
        if pool.key_count().is_ok_and(|count| count == 0) {
            return Err(Miss::Unconfigured);
        }
        let model = provider.default_model();
        log.target(provider, Some(model));
        let mut tracker = RequestTracker::start(pool);
        let started = Instant::now();
        let result = with_failover(pool, self.retry, None, None, &mut tracker, log, |key| {
            self.attempt(pool, query, key)
        })
        .await;
        match result {
            Ok(answered) => {
                tracker.finish(true);
                log.answered(model, Usage::default());
                let page = answered.value;
                Ok(SearchAnswer {
                    provider,
                    query: query.q.clone(),
                    total_results: page.total_results,
                    results: page.results,
                    key_id: answered.key.id.clone(),
                    attempts: answered.attempts,
                    search_time_ms: started.elapsed().as_secs_f64() * 1000.0,
                    cached: false,
                })
            }
            Err(error) => {
                tracker.finish(false);
                Err(self.miss(error))
            }
        }
    }

    fn miss(&self, error: GatewayError) -> Miss {
        match error {
            GatewayError::AllKeysCoolingDown { retry_after, .. } => Miss::Out(retry_after),
            GatewayError::NoUsableKey { total: 0, .. } => Miss::Unconfigured,
            GatewayError::AttemptsExhausted {
                last: Failure::QuotaSpent { rest, .. },
                ..
            } => Miss::Out(rest),
            GatewayError::AttemptsExhausted {
                last: Failure::RateLimited { retry_after, .. },
                ..
            } => Miss::Out(retry_after.unwrap_or(self.default_cooldown)),
            other => Miss::Failed(other.into()),
        }
    }

    /// One search with one key, its failure read by the provider's rules.
    async fn attempt(
        &self,
        pool: &KeyPoolHandle,
        query: &SearchQuery,
        key: KeyLease,
    ) -> Result<crate::providers::search::SearchPage, Failure> {
        let search = self.upstreams.search();
        match search.search(pool.provider(), query, &key.secret).await {
            Ok((page, limits)) => {
                if !limits.is_empty() {
                    pool.observe(&key.id, limits);
                }
                Ok(page)
            }
            Err(SearchFault::Failed(failure)) => Err(failure),
            Err(SearchFault::Reported { failure, limits }) => {
                if !limits.is_empty() {
                    pool.observe(&key.id, limits);
                }
                Err(failure)
            }
            Err(SearchFault::SerpApiLimit(detail)) => {
                Err(self.serpapi_limit(pool, &key, detail).await)
            }
            Err(SearchFault::ProjectQuota { failure, project }) => {
                if let (Some(project), Failure::QuotaSpent { rest, .. }) = (project, &failure) {
                    self.rest_project(pool, &key.id, project, *rest);
                }
                Err(failure)
            }
        }
    }

    /// Which SerpApi limit a 429 hit, by the account endpoint (cached).
    async fn serpapi_limit(
        &self,
        pool: &KeyPoolHandle,
        key: &KeyLease,
        detail: UpstreamDetail,
    ) -> Failure {
        let mut accounts = self.accounts.lock().await;
        let fresh = accounts
            .get(&key.id)
            .filter(|(at, _)| at.elapsed() < self.account_ttl)
            .map(|(_, account)| account.clone());
        let account = match fresh {
            Some(account) => account,
            None => {
                let lookup = tokio::time::timeout(
                    self.retry.attempt_timeout,
                    self.upstreams.search().account(&key.secret),
                )
                .await;
                let Ok(Ok(account)) = lookup else {
                    return Failure::RateLimited {
                        retry_after: None,
                        detail,
                    };
                };
                accounts.insert(key.id.clone(), (Instant::now(), account.clone()));
                account
            }
        };
        drop(accounts);
        let now = SystemTime::now();
        pool.observe(&key.id, account.limits(now));
        account.verdict(now, detail)
    }

    /// Learns that `key` belongs to `project` and rests every key known
    /// to share it: their daily quota is the same one.
    fn rest_project(&self, pool: &KeyPoolHandle, key: &KeyId, project: u64, rest: Duration) {
        let siblings: Vec<KeyId> = {
            let mut projects = self.projects.lock().unwrap_or_else(|e| e.into_inner());
            projects.insert(key.clone(), project);
            projects
                .iter()
                .filter(|(other, p)| **p == project && *other != key)
                .map(|(other, _)| other.clone())
                .collect()
        };
        for sibling in siblings {
            pool.rest(&sibling, rest);
        }
    }
}
