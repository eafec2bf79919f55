//! Brave Search API (`/res/v1/web/search`). The key goes in the
//! `X-Subscription-Token` header. Every answer carries two rate-limit
//! windows, per second and per month, comma-separated in
//! `X-RateLimit-Limit`, `-Remaining` and `-Reset` (seconds until each
//! window resets): they feed the headroom strategy, and on a 429 the
//! window that is used up says how long the key rests.

use std::time::{Duration, SystemTime};

use reqwest::Url;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::answer::{SearchPage, numbered};
use super::query::{SafeSearch, SearchQuery};
use crate::domain::{Failure, RateLimits, UpstreamDetail, Window};
use crate::providers::error_text::snippet;

pub const SEARCH_PATH: &str = "/res/v1/web/search";
pub const TOKEN_HEADER: &str = "x-subscription-token";

/// The search URL (the key is not in it).
pub fn search_url(base: &Url, query: &SearchQuery) -> Url {
    let mut url = base.clone();
    {
        let mut pairs = url.query_pairs_mut();
        pairs
            .append_pair("q", &query.q)
            .append_pair("count", &query.num.to_string())
            // Brave's offset counts pages of `count` results.
            .append_pair("offset", &(query.start / query.num).to_string());
        if let Some(country) = &query.country {
            pairs.append_pair("country", &country.to_ascii_uppercase());
        }
        if let Some(language) = &query.language {
            pairs.append_pair("search_lang", language);
        }
        if let Some(safe) = query.safe {
            pairs.append_pair(
                "safesearch",
                match safe {
                    SafeSearch::Off => "off",
                    SafeSearch::Active => "strict",
                },
            );
        }
    }
    url
}

#[derive(Deserialize)]
struct Body {
    web: Option<Web>,
}

#[derive(Deserialize)]
struct Web {
    #[serde(default)]
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
}

pub fn page(body: &[u8], start: u32) -> Result<SearchPage, Failure> {
    let body: Body = serde_json::from_slice(body)
        .map_err(|_| Failure::malformed("Brave's answer is not the JSON it documents"))?;
    Ok(SearchPage {
        total_results: None,
        results: numbered(
            start,
            body.web
                .map(|w| w.results)
                .unwrap_or_default()
                .into_iter()
                .map(|hit| (hit.title, hit.url, hit.description, None)),
        ),
    })
}

fn numbers(headers: &HeaderMap, name: &str) -> Vec<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|text| {
            text.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The per-second window as `requests`, the per-month one as `month`.
pub fn rate_limits(headers: &HeaderMap, now: SystemTime) -> RateLimits {
    let limit = numbers(headers, "x-ratelimit-limit");
    let remaining = numbers(headers, "x-ratelimit-remaining");
    let reset = numbers(headers, "x-ratelimit-reset");
    let window = |i: usize| {
        Some(Window {
            limit: *limit.get(i)?,
            remaining: *remaining.get(i)?,
            reset: reset.get(i).map(|s| now + Duration::from_secs(*s)),
        })
    };
    RateLimits {
        requests: window(0),
        month: window(1),
        ..RateLimits::default()
    }
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<BraveError>,
}

#[derive(Deserialize)]
struct BraveError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    detail: String,
}

pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Failure {
    let error = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error);
    let code = error.as_ref().map(|e| e.code.clone()).unwrap_or_default();
    let message = error
        .map(|e| e.detail)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| snippet(body));
    let detail = |error_type: &str| UpstreamDetail {
        status: Some(status),
        error_type: error_type.into(),
        message: message.clone(),
    };
    if status == 429 {
        let limits = rate_limits(headers, now);
        let rest_of = |w: Option<Window>| {
            w.filter(|w| w.remaining == 0)
                .and_then(|w| w.reset)
                .and_then(|reset| reset.duration_since(now).ok())
        };
        if let Some(rest) = rest_of(limits.month) {
            return Failure::QuotaSpent {
                rest,
                detail: detail("rate_limit_error"),
            };
        }
        return Failure::RateLimited {
            retry_after: rest_of(limits.requests)
                .or_else(|| crate::providers::parse_retry_after(headers, now))
                .map(|rest| rest.max(Duration::from_secs(1))),
            detail: detail("rate_limit_error"),
        };
    }
    if matches!(status, 401 | 403) || code.starts_with("SUBSCRIPTION_TOKEN") {
        return Failure::KeyRejected(detail("invalid_key"));
    }
    Failure::from_status(status, None, String::new(), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(limit: &str, remaining: &str, reset: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-ratelimit-limit", limit),
            ("x-ratelimit-remaining", remaining),
            ("x-ratelimit-reset", reset),
        ] {
            headers.insert(name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn two_windows_are_read() {
        let now = SystemTime::now();
        let limits = rate_limits(&headers("1, 15000", "0, 14000", "1, 1419704"), now);
        assert_eq!(limits.requests.unwrap().remaining, 0);
        assert_eq!(limits.month.unwrap().limit, 15000);
        assert_eq!(
            limits.month.unwrap().reset,
            Some(now + Duration::from_secs(1_419_704))
        );
    }

    #[test]
    fn a_429_rests_until_the_spent_window_resets() {
        let now = SystemTime::now();
        match classify(429, &headers("1, 15000", "0, 0", "1, 86400"), b"{}", now) {
            Failure::QuotaSpent { rest, .. } => assert_eq!(rest, Duration::from_secs(86400)),
            other => panic!("{other:?}"),
        }
        match classify(429, &headers("1, 15000", "0, 10", "2, 86400"), b"{}", now) {
            Failure::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)))
            }
            other => panic!("{other:?}"),
        }
    }
}
