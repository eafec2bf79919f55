//! `ProviderKind`: the providers keygate can route to. Text becomes a
//! `ProviderKind` once, at the edge (request body, path, config); everything
//! past that matches on the enum.

use std::fmt;
use std::str::FromStr;

/// A provider keygate can route to. Adding one is adding a variant, its
/// `ProviderEnv` and its module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Anthropic,
    OpenAI,
    /// SerpApi (Google results through serpapi.com): a web-search pool.
    SerpApi,
    /// Google Custom Search JSON API: a web-search pool.
    GoogleCse,
    /// Brave Search API: a web-search pool.
    Brave,
}

/// The environment variables that configure one provider.
pub struct ProviderEnv {
    pub keys: &'static str,
    /// A file of keys (one a line, or a JSON array), for pools too large
    /// for one environment variable.
    pub keys_file: &'static str,
    pub key: &'static str,
    pub base_url: &'static str,
    pub default_base_url: &'static str,
    /// Overrides `KEY_STRATEGY` for this provider.
    pub strategy: &'static str,
}

impl ProviderKind {
    pub const ALL: &'static [ProviderKind] = &[
        ProviderKind::Anthropic,
        ProviderKind::OpenAI,
        ProviderKind::SerpApi,
        ProviderKind::GoogleCse,
        ProviderKind::Brave,
    ];

    /// The web-search providers, in the default `auto` order.
    pub const SEARCH: &'static [ProviderKind] = &[
        ProviderKind::SerpApi,
        ProviderKind::GoogleCse,
        ProviderKind::Brave,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAI => "openai",
            ProviderKind::SerpApi => "serpapi",
            ProviderKind::GoogleCse => "google_cse",
            ProviderKind::Brave => "brave",
        }
    }

    /// A web-search provider (served by `/api/search`, never by the chat
    /// routes).
    pub fn is_search(self) -> bool {
        matches!(
            self,
            ProviderKind::SerpApi | ProviderKind::GoogleCse | ProviderKind::Brave
        )
    }

    pub fn env(self) -> ProviderEnv {
        match self {
            ProviderKind::Anthropic => ProviderEnv {
                keys: "ANTHROPIC_API_KEYS",
                keys_file: "ANTHROPIC_API_KEYS_FILE",
                key: "ANTHROPIC_API_KEY",
                base_url: "ANTHROPIC_BASE_URL",
                default_base_url: "https://api.anthropic.com",
                strategy: "KEY_STRATEGY_ANTHROPIC",
            },
            ProviderKind::OpenAI => ProviderEnv {
                keys: "OPENAI_API_KEYS",
                keys_file: "OPENAI_API_KEYS_FILE",
                key: "OPENAI_API_KEY",
                base_url: "OPENAI_BASE_URL",
                default_base_url: "https://api.openai.com",
                strategy: "KEY_STRATEGY_OPENAI",
            },
            // The single-key names are the ones the assistant app's backend
            // already uses, so its `.env` keeps working as it is.
            ProviderKind::SerpApi => ProviderEnv {
                keys: "SERPAPI_KEYS",
                keys_file: "SERPAPI_KEYS_FILE",
                key: "SERPAPI_KEY",
                base_url: "SERPAPI_BASE_URL",
                default_base_url: "https://serpapi.com",
                strategy: "KEY_STRATEGY_SERPAPI",
            },
            ProviderKind::GoogleCse => ProviderEnv {
                keys: "GOOGLE_CSE_KEYS",
                keys_file: "GOOGLE_CSE_KEYS_FILE",
                key: "GOOGLE_CSE_KEY",
                base_url: "GOOGLE_CSE_BASE_URL",
                default_base_url: "https://customsearch.googleapis.com",
                strategy: "KEY_STRATEGY_GOOGLE_CSE",
            },
            ProviderKind::Brave => ProviderEnv {
                keys: "BRAVE_SEARCH_KEYS",
                keys_file: "BRAVE_SEARCH_KEYS_FILE",
                key: "BRAVE_SEARCH_KEY",
                base_url: "BRAVE_SEARCH_BASE_URL",
                default_base_url: "https://api.search.brave.com",
                strategy: "KEY_STRATEGY_BRAVE",
            },
        }
    }

    /// The upstream rate-limits each model separately (Anthropic does), so a
    /// 429 benches the key for that model only.
    pub fn limits_per_model(self) -> bool {
        self == ProviderKind::Anthropic
    }

    /// The provider whose keys look like `key`, if it is another one than
    /// `self` (an `sk-ant-` key pasted into the OpenAI pool, say). Keys are
    /// opaque, so this warns; it never refuses.
    pub fn foreign_key_owner(self, key: &str) -> Option<ProviderKind> {
        let looks_like = if key.starts_with("sk-ant-") {
            ProviderKind::Anthropic
        } else if key.starts_with("sk-") {
            ProviderKind::OpenAI
        } else if key.starts_with("AIza") {
            ProviderKind::GoogleCse
        } else {
            return None;
        };
        (looks_like != self).then_some(looks_like)
    }

    pub const fn default_model(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "claude-sonnet-4-20250514",
            ProviderKind::OpenAI => "gpt-4o-mini",
            // Search has no models; the ledger's model column names the API.
            ProviderKind::SerpApi => "google",
            ProviderKind::GoogleCse => "customsearch",
            ProviderKind::Brave => "web",
        }
    }
}

impl serde::Serialize for ProviderKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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
