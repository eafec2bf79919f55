//! `SearchClient`: the search endpoints, parsed once, and the one place
//! that dispatches a search to its provider's module. It shares the chat
//! upstreams' HTTP client (no redirects, so a key in a URL or header never
//! follows one elsewhere). Transport errors are reduced to their kind: a
//! reqwest error's text carries the URL, and with it the key.

use std::time::SystemTime;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use super::answer::SearchPage;
use super::google_cse::GoogleFault;
use super::query::SearchQuery;
use super::serpapi::Account;
use super::{brave, google_cse, serpapi};
use crate::config::Config;
use crate::domain::{Failure, ProviderKind, RateLimits, UpstreamDetail};
use crate::providers::UpstreamsError;
use crate::providers::upstream::header_value;

/// Largest search answer read: pages of ten results are a few hundred KB.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Why a search attempt gave no page, where the failure alone does not say
/// what to do.
#[derive(Debug)]
pub enum SearchFault {
    Failed(Failure),
    /// A failure whose answer still reported the key's rate-limit windows
    /// (Brave sends them on every answer, a 429 included).
    Reported {
        failure: Failure,
        limits: RateLimits,
    },
    /// A SerpApi 429: the account endpoint says which limit it was.
    SerpApiLimit(UpstreamDetail),
    /// A Google project's daily quota is spent.
    ProjectQuota {
        failure: Failure,
        project: Option<u64>,
    },
}

impl From<Failure> for SearchFault {
    fn from(failure: Failure) -> Self {
        SearchFault::Failed(failure)
    }
}

/// A configuration fault (`GOOGLE_CSE_CX`): a 503 that blames no key.
pub fn config_fault(message: String) -> Failure {
    Failure::ClientFault(UpstreamDetail {
        status: Some(503),
        error_type: "configuration_error".into(),
        message,
    })
}

pub struct SearchClient {
    http: reqwest::Client,
    serpapi_search: Url,
    serpapi_account: Url,
    google: Url,
    brave: Url,
    /// `GOOGLE_CSE_CX`.
    cx: Option<String>,
}

impl SearchClient {
    pub fn new(http: reqwest::Client, config: &Config) -> Result<Self, UpstreamsError> {
        let url = |kind: ProviderKind, path: &str| {
            let base = config
                .provider(kind)
                .map_or(kind.env().default_base_url, |p| p.base_url.as_str());
            Url::parse(&format!("{base}{path}")).map_err(|e| UpstreamsError::BaseUrl {
                variable: kind.env().base_url,
                reason: e.to_string(),
            })
        };
        Ok(Self {
            serpapi_search: url(ProviderKind::SerpApi, serpapi::SEARCH_PATH)?,
            serpapi_account: url(ProviderKind::SerpApi, serpapi::ACCOUNT_PATH)?,
            google: url(ProviderKind::GoogleCse, google_cse::SEARCH_PATH)?,
            brave: url(ProviderKind::Brave, brave::SEARCH_PATH)?,
            cx: config.search.google_cx.clone(),
            http,
        })
    }

    /// One search with `secret`: the page and the rate-limit windows the
    /// answer reported.
    pub async fn search(
        &self,
        provider: ProviderKind,
        query: &SearchQuery,
        secret: &SecretString,
    ) -> Result<(SearchPage, RateLimits), SearchFault> {
        let key = secret.expose_secret();
        let now = SystemTime::now();
        match provider {
            ProviderKind::SerpApi => {
                let url = serpapi::search_url(&self.serpapi_search, query, key);
                let (status, _, body) = self.get(self.http.get(url)).await?;
                if (200..300).contains(&status) {
                    return Ok((serpapi::page(&body, query.start)?, RateLimits::default()));
                }
                match serpapi::classify(status, &body) {
                    Some(failure) => Err(failure.into()),
                    None => Err(SearchFault::SerpApiLimit(UpstreamDetail {
                        status: Some(status),
                        error_type: "rate_limit_error".into(),
                        message: serpapi_message(&body),
                    })),
                }
            }
            ProviderKind::GoogleCse => {
                let Some(cx) = self.cx.as_deref() else {
                    return Err(config_fault(
                        "GOOGLE_CSE_CX is not set: Google searches need a search engine id".into(),
                    )
                    .into());
                };
                let url = google_cse::search_url(&self.google, query, cx, key);
                let (status, _, body) = self.get(self.http.get(url)).await?;
                if (200..300).contains(&status) {
                    return Ok((google_cse::page(&body, query.start)?, RateLimits::default()));
                }
                Err(match google_cse::classify(status, &body, now) {
                    GoogleFault::Failed(failure) => failure.into(),
                    GoogleFault::DailyQuota { failure, project } => {
                        SearchFault::ProjectQuota { failure, project }
                    }
                    GoogleFault::BadCx(said) => config_fault(format!(
                        "Google refused the search engine id in GOOGLE_CSE_CX; check it (upstream said: {said})"
                    ))
                    .into(),
                })
            }
            ProviderKind::Brave => {
                let request = self
                    .http
                    .get(brave::search_url(&self.brave, query))
                    .header("accept", "application/json")
                    .header(brave::TOKEN_HEADER, header_value(key)?);
                let (status, headers, body) = self.get(request).await?;
                let limits = brave::rate_limits(&headers, now);
                if (200..300).contains(&status) {
                    return Ok((brave::page(&body, query.start)?, limits));
                }
                Err(SearchFault::Reported {
                    failure: brave::classify(status, &headers, &body, now),
                    limits,
                })
            }
            _ => Err(Failure::malformed("not a search provider").into()),
        }
    }

    /// SerpApi's free account answer for `secret` (the echoed key dropped).
    pub async fn account(&self, secret: &SecretString) -> Result<Account, Failure> {
        let url = serpapi::account_url(&self.serpapi_account, secret.expose_secret());
        let (status, _, body) = self.get(self.http.get(url)).await?;
        if (200..300).contains(&status) {
            return serpapi::account(&body);
        }
        Err(
            serpapi::classify(status, &body).unwrap_or(Failure::RateLimited {
                retry_after: None,
                detail: UpstreamDetail {
                    status: Some(status),
                    error_type: "rate_limit_error".into(),
                    message: serpapi_message(&body),
                },
            }),
        )
    }

    /// Checks a key: SerpApi through the free account endpoint (its
    /// headroom comes back); Google and Brave with a one-result search,
    /// which Google counts against the project's daily quota.
    pub async fn probe(
        &self,
        provider: ProviderKind,
        secret: &SecretString,
    ) -> Result<RateLimits, Failure> {
        if provider == ProviderKind::SerpApi {
            let account = self.account(secret).await?;
            return Ok(account.limits(SystemTime::now()));
        }
        let query = SearchQuery::parse(Some("keygate".into()), Some(1), None, None, None, None)
            .map_err(|e| Failure::malformed(&e.to_string()))?;
        match self.search(provider, &query, secret).await {
            Ok((_, limits)) => Ok(limits),
            Err(
                SearchFault::Failed(failure)
                | SearchFault::ProjectQuota { failure, .. }
                | SearchFault::Reported { failure, .. },
            ) => Err(failure),
            Err(SearchFault::SerpApiLimit(detail)) => Err(Failure::RateLimited {
                retry_after: None,
                detail,
            }),
        }
    }

    /// Sends `request`; the status, headers and body (capped).
    async fn get(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, reqwest::header::HeaderMap, bytes::Bytes), Failure> {
        let mut response = request
            .send()
            .await
            .map_err(|e| Failure::network(&e.without_url()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::network(&e.without_url()))?
        {
            if body.len() + chunk.len() > BODY_LIMIT {
                return Err(Failure::malformed("the search answer is too large"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body.freeze()))
    }
}

fn serpapi_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: Option<String>,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .unwrap_or_else(|| crate::providers::error_text::snippet(body))
}
