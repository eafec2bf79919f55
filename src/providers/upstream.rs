//! `Upstreams`: the shared HTTP client and each provider's base URL, and the
//! one place that dispatches a gateway operation to the provider's module.

use std::time::Duration;

use bytes::Bytes;

use super::{ProviderKind, anthropic};
use crate::config::Config;
use crate::gateway::{ChatReply, ChatRequest, Failure};
use crate::keypool::KeyLease;

pub struct Upstreams {
    http: reqwest::Client,
    base_urls: Vec<(ProviderKind, String)>,
}

impl Upstreams {
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // No total timeout: it would cut long answers and streams; the
            // failover loop bounds each attempt instead.
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("keygate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base_urls: config
                .providers
                .iter()
                .map(|p| (p.kind, p.base_url.clone()))
                .collect(),
        })
    }

    fn base_url(&self, provider: ProviderKind) -> &str {
        self.base_urls
            .iter()
            .find(|(kind, _)| *kind == provider)
            .map(|(_, url)| url.as_str())
            .unwrap_or_default()
    }

    /// The provider's request body for `request`, built once per request.
    pub fn chat_body(&self, provider: ProviderKind, request: &ChatRequest) -> Bytes {
        match provider {
            ProviderKind::Anthropic => anthropic::request_body(request),
        }
    }

    /// One chat attempt with one key.
    pub async fn chat(
        &self,
        provider: ProviderKind,
        key: KeyLease,
        body: Bytes,
    ) -> Result<ChatReply, Failure> {
        let base_url = self.base_url(provider);
        match provider {
            ProviderKind::Anthropic => {
                anthropic::create_message(&self.http, base_url, &key.secret, body)
                    .await
                    .map(anthropic::reply_from_wire)
            }
        }
    }
}
