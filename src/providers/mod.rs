//! The upstream providers. `ProviderKind` is parsed from text once, at the
//! edge (request body, path, config); everything past that matches on the
//! enum. Each provider has its own module with wire types, conversion to and
//! from the gateway's chat shape, and error classification.

pub mod anthropic;
mod error_text;
pub mod openai;
mod ratelimit;
mod upstream;

pub use ratelimit::{cooldown_hint, rate_limits};
pub use upstream::{
    UpstreamCall, Upstreams, UpstreamsError, frame_reader, parse_reply, passthrough_headers,
    read_body, stop_reason_normalizer,
};

use std::fmt;
use std::str::FromStr;

/// A provider keygate can route to. Adding one is adding a variant, its
/// `ProviderEnv` and its module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Anthropic,
    OpenAI,
}

/// The environment variables that configure one provider.
pub struct ProviderEnv {
    pub keys: &'static str,
    pub key: &'static str,
    pub base_url: &'static str,
    pub default_base_url: &'static str,
    /// Overrides `KEY_STRATEGY` for this provider.
    pub strategy: &'static str,
}

impl ProviderKind {
    pub const ALL: &'static [ProviderKind] = &[ProviderKind::Anthropic, ProviderKind::OpenAI];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAI => "openai",
        }
    }

    pub fn env(self) -> ProviderEnv {
        match self {
            ProviderKind::Anthropic => ProviderEnv {
                keys: "ANTHROPIC_API_KEYS",
                key: "ANTHROPIC_API_KEY",
                base_url: "ANTHROPIC_BASE_URL",
                default_base_url: "https://api.anthropic.com",
                strategy: "KEY_STRATEGY_ANTHROPIC",
            },
            ProviderKind::OpenAI => ProviderEnv {
                keys: "OPENAI_API_KEYS",
                key: "OPENAI_API_KEY",
                base_url: "OPENAI_BASE_URL",
                default_base_url: "https://api.openai.com",
                strategy: "KEY_STRATEGY_OPENAI",
            },
        }
    }

    /// The upstream rate-limits each model separately (Anthropic does), so a
    /// 429 benches the key for that model only.
    pub fn limits_per_model(self) -> bool {
        match self {
            ProviderKind::Anthropic => true,
            ProviderKind::OpenAI => false,
        }
    }

    pub fn default_model(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => anthropic::DEFAULT_MODEL,
            ProviderKind::OpenAI => openai::DEFAULT_MODEL,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown provider {0:?}; known providers: {known}", known = known_providers())]
pub struct UnknownProvider(pub String);

fn known_providers() -> String {
    ProviderKind::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for ProviderKind {
    type Err = UnknownProvider;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| UnknownProvider(text.chars().take(64).collect()))
    }
}
