//! Google Custom Search JSON API (`/customsearch/v1`). The key travels in
//! the query string. The daily quota belongs to the Google Cloud project,
//! not the key, and resets at midnight Pacific time; the error names the
//! project (`project_number:N`), so keys found to share one rest together
//! (see `gateway::search`). A 400 that is not about the key is about the
//! search engine id (`cx`): a configuration fault, no key's.
//!
//! Google closed this API to new customers in 2026; existing customers
//! have it until 2027-01-01.

use std::time::{Duration, SystemTime};

use reqwest::Url;
use serde::Deserialize;

use super::answer::{SearchPage, numbered};
use super::pacific::until_midnight;
use super::query::SearchQuery;
use crate::domain::{Failure, UpstreamDetail};
use crate::providers::error_text::snippet;

pub const SEARCH_PATH: &str = "/customsearch/v1";

/// The search URL, key included: never print it.
pub fn search_url(base: &Url, query: &SearchQuery, cx: &str, key: &str) -> Url {
    let mut url = base.clone();
    {
        let mut pairs = url.query_pairs_mut();
        pairs
            .append_pair("cx", cx)
            .append_pair("q", &query.q)
            .append_pair("num", &query.num.to_string())
            // Google counts from 1.
            .append_pair("start", &(query.start + 1).to_string());
        if let Some(country) = &query.country {
            pairs.append_pair("gl", country);
        }
        if let Some(language) = &query.language {
            pairs.append_pair("lr", &format!("lang_{language}"));
        }
        if let Some(safe) = query.safe {
            pairs.append_pair("safe", safe.as_str());
        }
        pairs.append_pair("key", key);
    }
    url
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(rename = "searchInformation")]
    information: Option<Information>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    title: String,
    #[serde(default)]
    link: String,
    #[serde(default)]
    snippet: String,
    #[serde(rename = "displayLink")]
    display_link: Option<String>,
}

#[derive(Deserialize)]
struct Information {
    /// A string of digits, not a number.
    #[serde(rename = "totalResults")]
    total_results: Option<String>,
}

pub fn page(body: &[u8], start: u32) -> Result<SearchPage, Failure> {
    let body: Body = serde_json::from_slice(body)
        .map_err(|_| Failure::malformed("Google's answer is not the JSON it documents"))?;
    Ok(SearchPage {
        total_results: body
            .information
            .and_then(|i| i.total_results)
            .and_then(|t| t.trim().parse().ok()),
        results: numbered(
            start,
            body.items
                .into_iter()
                .map(|item| (item.title, item.link, item.snippet, item.display_link)),
        ),
    })
}

#[derive(Deserialize)]
struct Envelope {
    error: GoogleError,
}

#[derive(Deserialize, Default)]
struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    errors: Vec<Reason>,
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(Deserialize)]
struct Reason {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
}

/// A failed search as Google explains it.
#[derive(Debug)]
pub enum GoogleFault {
    /// The key's or the provider's: handled like any failure.
    Failed(Failure),
    /// The project's daily quota is spent; `project` when the error names it.
    DailyQuota {
        failure: Failure,
        project: Option<u64>,
    },
    /// The search engine id is wrong: `GOOGLE_CSE_CX` must be fixed.
    BadCx(String),
}

impl GoogleError {
    fn reasons(&self) -> impl Iterator<Item = &str> {
        self.errors
            .iter()
            .map(|r| r.reason.as_str())
            .chain(self.details.iter().map(|d| d.reason.as_str()))
    }

    fn has_reason(&self, reason: &str) -> bool {
        self.reasons().any(|r| r == reason)
    }

    fn quota_limit(&self) -> String {
        self.details
            .iter()
            .filter_map(|d| d.metadata.get("quota_limit").and_then(|v| v.as_str()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `project_number:N` from the message or the details' consumer.
    fn project(&self) -> Option<u64> {
        let consumer = self
            .details
            .iter()
            .filter_map(|d| d.metadata.get("consumer").and_then(|v| v.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        [self.message.as_str(), consumer.as_str()]
            .into_iter()
            .find_map(|text| {
                let at = text.find("project_number:")? + "project_number:".len();
                let digits: String = text[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse().ok()
            })
    }
}

pub fn classify(status: u16, body: &[u8], now: SystemTime) -> GoogleFault {
    let error = serde_json::from_slice::<Envelope>(body)
        .map(|e| e.error)
        .unwrap_or_default();
    let message = if error.message.is_empty() {
        snippet(body)
    } else {
        error.message.clone()
    };
    let detail = |error_type: &str| UpstreamDetail {
        status: Some(status),
        error_type: error_type.into(),
        message: message.clone(),
    };
    let key_invalid = error.has_reason("API_KEY_INVALID")
        || error.has_reason("keyInvalid")
        || message.contains("API key not valid");
    let quota = status == 429
        || error.status == "RESOURCE_EXHAUSTED"
        || error.has_reason("rateLimitExceeded")
        || error.has_reason("dailyLimitExceeded")
        || error.has_reason("RATE_LIMIT_EXCEEDED");
    let daily = error.has_reason("dailyLimitExceeded")
        || message.to_ascii_lowercase().contains("per day")
        || error.quota_limit().contains("PerDay");
    match status {
        400 | 401 | 403 if key_invalid => {
            GoogleFault::Failed(Failure::KeyRejected(detail("invalid_key")))
        }
        400 => GoogleFault::BadCx(message),
        403 | 429 if quota && daily => GoogleFault::DailyQuota {
            failure: Failure::QuotaSpent {
                rest: until_midnight(now),
                detail: detail("rate_limit_error"),
            },
            project: error.project(),
        },
        // A per-minute limit: a short rest.
        429 => GoogleFault::Failed(Failure::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
            detail: detail("rate_limit_error"),
        }),
        // The project has no access (API not enabled, referrer blocked):
        // this key cannot search at all.
        401 | 403 => GoogleFault::Failed(Failure::KeyRejected(detail("permission_error"))),
        _ => GoogleFault::Failed(Failure::from_status(status, None, String::new(), message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAILY: &str = r#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'Queries' and limit 'Queries per day' of service 'customsearch.googleapis.com' for consumer 'project_number:123456'.","status":"RESOURCE_EXHAUSTED","errors":[{"reason":"rateLimitExceeded"}]}}"#;

    #[test]
    fn the_daily_quota_names_its_project() {
        match classify(429, DAILY.as_bytes(), SystemTime::now()) {
            GoogleFault::DailyQuota {
                project: Some(123456),
                failure: Failure::QuotaSpent { .. },
            } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_key_a_bad_cx_and_no_access_are_told_apart() {
        let bad_key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#;
        assert!(matches!(
            classify(400, bad_key.as_bytes(), SystemTime::now()),
            GoogleFault::Failed(Failure::KeyRejected(_))
        ));
        let bad_cx = r#"{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT","errors":[{"reason":"badRequest"}]}}"#;
        assert!(matches!(
            classify(400, bad_cx.as_bytes(), SystemTime::now()),
            GoogleFault::BadCx(_)
        ));
        let denied = r#"{"error":{"code":403,"message":"This project does not have the access to Custom Search JSON API.","status":"PERMISSION_DENIED"}}"#;
        assert!(matches!(
            classify(403, denied.as_bytes(), SystemTime::now()),
            GoogleFault::Failed(Failure::KeyRejected(_))
        ));
    }

    #[test]
    fn total_results_is_read_from_a_string() {
        let page = page(
            br#"{"searchInformation":{"totalResults":"1234"},"items":[{"title":"t","link":"https://a.example/x","snippet":"s","displayLink":"a.example"}]}"#,
            20,
        )
        .unwrap();
        assert_eq!(page.total_results, Some(1234));
        assert_eq!(page.results[0].position, 21);
    }
}
