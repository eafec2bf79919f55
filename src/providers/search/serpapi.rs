//! SerpApi (`/search.json`, `/account.json`). The key can only travel in
//! the query string. A 429 does not say whether the month's searches or
//! the hour's limit ran out; the free account endpoint does, so the
//! gateway asks it (see `gateway::search`). The account answer echoes the
//! key back: its wire type has no field for it, so it is dropped while
//! parsing and never stored or shown.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use serde::Deserialize;

use super::answer::{SearchPage, numbered};
use super::pacific::{first_of_next_month, parse_date};
use super::query::SearchQuery;
use crate::domain::{Failure, RateLimits, UpstreamDetail, Window};
use crate::providers::error_text::snippet;

pub const SEARCH_PATH: &str = "/search.json";
pub const ACCOUNT_PATH: &str = "/account.json";

/// The search URL, key included: never print it.
pub fn search_url(base: &Url, query: &SearchQuery, key: &str) -> Url {
    let mut url = base.clone();
    {
        let mut pairs = url.query_pairs_mut();
        pairs
            .append_pair("engine", "google")
            .append_pair("q", &query.q)
            .append_pair("num", &query.num.to_string())
            .append_pair("start", &query.start.to_string());
        if let Some(country) = &query.country {
            pairs.append_pair("gl", country);
        }
        if let Some(language) = &query.language {
            pairs.append_pair("hl", language);
        }
        if let Some(safe) = query.safe {
            pairs.append_pair("safe", safe.as_str());
        }
        pairs.append_pair("api_key", key);
    }
    url
}

/// The account URL, key included: never print it.
pub fn account_url(base: &Url, key: &str) -> Url {
    let mut url = base.clone();
    url.query_pairs_mut().append_pair("api_key", key);
    url
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    organic_results: Vec<Organic>,
    search_information: Option<Information>,
}

#[derive(Deserialize)]
struct Organic {
    #[serde(default)]
    title: String,
    #[serde(default)]
    link: String,
    #[serde(default)]
    snippet: String,
    displayed_link: Option<String>,
}

#[derive(Deserialize)]
struct Information {
    total_results: Option<u64>,
}

/// A 200's results. A 200 with an `error` and no results ("Google hasn't
/// returned any results for this query") is an empty answer, not a fault.
pub fn page(body: &[u8], start: u32) -> Result<SearchPage, Failure> {
    let body: Body = serde_json::from_slice(body)
        .map_err(|_| Failure::malformed("SerpApi's answer is not the JSON it documents"))?;
    Ok(SearchPage {
        total_results: body.search_information.and_then(|i| i.total_results),
        results: numbered(
            start,
            body.organic_results
                .into_iter()
                .map(|hit| (hit.title, hit.link, hit.snippet, hit.displayed_link)),
        ),
    })
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
}

/// What a non-2xx answer means, except a 429 (`None`): that one needs the
/// account endpoint's word.
pub fn classify(status: u16, body: &[u8]) -> Option<Failure> {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .unwrap_or_else(|| snippet(body));
    let detail = |error_type: &str| UpstreamDetail {
        status: Some(status),
        error_type: error_type.into(),
        message: message.clone(),
    };
    Some(match status {
        429 => return None,
        // 403: the account was deleted or lacks permission: the key's.
        401 | 403 => Failure::KeyRejected(detail("invalid_key")),
        _ => Failure::from_status(status, None, String::new(), message.clone()),
    })
}

/// What `account.json` says, the echoed key left out.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub plan_searches_left: Option<u64>,
    pub total_searches_left: Option<u64>,
    pub searches_per_month: Option<u64>,
    pub this_hour_searches: Option<u64>,
    pub account_rate_limit_per_hour: Option<u64>,
    pub plan_renewal_date: Option<String>,
}

pub fn account(body: &[u8]) -> Result<Account, Failure> {
    serde_json::from_slice(body)
        .map_err(|_| Failure::malformed("SerpApi's account answer is not the JSON it documents"))
}

/// The top of the next hour after `now`.
fn next_hour(now: SystemTime) -> SystemTime {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs((secs / 3600 + 1) * 3600)
}

impl Account {
    fn renewal(&self, now: SystemTime) -> SystemTime {
        self.plan_renewal_date
            .as_deref()
            .and_then(parse_date)
            .filter(|at| *at > now)
            .unwrap_or_else(|| first_of_next_month(now))
    }

    fn month_left(&self) -> Option<u64> {
        self.total_searches_left.or(self.plan_searches_left)
    }

    fn hour_full(&self) -> bool {
        match (self.this_hour_searches, self.account_rate_limit_per_hour) {
            (Some(used), Some(limit)) => limit > 0 && used >= limit,
            _ => false,
        }
    }

    /// The headroom it shows: this hour's searches and the month's.
    pub fn limits(&self, now: SystemTime) -> RateLimits {
        let hour = self
            .account_rate_limit_per_hour
            .filter(|l| *l > 0)
            .map(|limit| Window {
                limit,
                remaining: limit.saturating_sub(self.this_hour_searches.unwrap_or(0)),
                reset: Some(next_hour(now)),
            });
        let month = self.month_left().map(|left| Window {
            limit: self.searches_per_month.unwrap_or(left).max(left),
            remaining: left,
            reset: Some(self.renewal(now)),
        });
        RateLimits {
            requests: hour,
            month,
            ..RateLimits::default()
        }
    }

    /// Which limit a 429 hit: the month's searches (rest until the plan
    /// renews, or the first of next month), the hour's (rest until the
    /// hour turns), or neither known (the default cooldown).
    pub fn verdict(&self, now: SystemTime, detail: UpstreamDetail) -> Failure {
        let until = |at: SystemTime| at.duration_since(now).unwrap_or(Duration::from_secs(1));
        if self.month_left() == Some(0) {
            let rest = until(self.renewal(now));
            return Failure::QuotaSpent {
                rest,
                detail: UpstreamDetail {
                    message: format!(
                        "out of searches this month; the plan renews in {} h (upstream said: {})",
                        rest.as_secs() / 3600,
                        detail.message
                    ),
                    ..detail
                },
            };
        }
        if self.hour_full() {
            return Failure::QuotaSpent {
                rest: until(next_hour(now)),
                detail: UpstreamDetail {
                    message: format!(
                        "hourly search limit reached (upstream said: {})",
                        detail.message
                    ),
                    ..detail
                },
            };
        }
        Failure::RateLimited {
            retry_after: None,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(left: u64, used: u64, renewal: Option<&str>) -> Account {
        Account {
            plan_searches_left: Some(left),
            total_searches_left: Some(left),
            searches_per_month: Some(100),
            this_hour_searches: Some(used),
            account_rate_limit_per_hour: Some(50),
            plan_renewal_date: renewal.map(String::from),
        }
    }

    fn detail() -> UpstreamDetail {
        UpstreamDetail {
            status: Some(429),
            error_type: "rate_limit_error".into(),
            message: "limit".into(),
        }
    }

    #[test]
    fn a_spent_month_rests_until_renewal() {
        let now = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let renewal = parse_date("2099-01-01");
        match account(0, 3, Some("2099-01-01")).verdict(now, detail()) {
            Failure::QuotaSpent { rest, .. } => {
                assert_eq!(Some(now + rest), renewal);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_hour_rests_until_the_hour_turns() {
        let now = UNIX_EPOCH + Duration::from_secs(3600 * 10 + 600);
        match account(40, 50, None).verdict(now, detail()) {
            Failure::QuotaSpent { rest, .. } => assert_eq!(rest, Duration::from_secs(3000)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            account(40, 10, None).verdict(now, detail()),
            Failure::RateLimited { .. }
        ));
    }

    #[test]
    fn the_echoed_key_is_not_kept() {
        let parsed =
            super::account(br#"{"api_key":"secret-key-123","total_searches_left":5}"#).unwrap();
        assert!(!format!("{parsed:?}").contains("secret-key-123"));
    }

    #[test]
    fn an_error_with_no_results_is_an_empty_page() {
        let page = page(
            br#"{"error":"Google hasn't returned any results for this query."}"#,
            0,
        )
        .unwrap();
        assert!(page.results.is_empty());
    }
}
