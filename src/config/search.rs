//! The web-search settings beside the search pools' keys: Google's search
//! engine id (`GOOGLE_CSE_CX`), the `auto` order (`SEARCH_PROVIDERS`), the
//! optional answer cache (`SEARCH_CACHE_SECS`, `SEARCH_CACHE_ENTRIES`) and
//! how long a SerpApi account lookup is reused (`SERPAPI_ACCOUNT_CACHE_SECS`).

use std::time::Duration;

use super::{ConfigError, parse_number, parse_secs, string_list};
use crate::domain::ProviderKind;

pub struct SearchSettings {
    /// The Programmable Search Engine id Google searches go to; not a
    /// secret (it is in every public search page's source).
    pub google_cx: Option<String>,
    /// The providers `auto` tries, in order.
    pub order: Vec<ProviderKind>,
    /// How long an identical search is answered from memory; `None`: no
    /// cache (the default).
    pub cache_ttl: Option<Duration>,
    /// The most answers the cache holds.
    pub cache_entries: usize,
    /// How long one `account.json` answer decides SerpApi 429s, so a burst
    /// of them asks once.
    pub account_cache: Duration,
}

pub(super) fn search_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<SearchSettings, ConfigError> {
    let order = match get("SEARCH_PROVIDERS") {
        None => ProviderKind::SEARCH.to_vec(),
        Some(text) => {
            let mut order = Vec::new();
            for name in string_list("SEARCH_PROVIDERS", &text)? {
                let kind = name
                    .trim()
                    .parse::<ProviderKind>()
                    .ok()
                    .filter(|kind| kind.is_search())
                    .ok_or_else(|| {
                        ConfigError::new(
                            "SEARCH_PROVIDERS",
                            format!(
                                "{:?} is not a search provider; use serpapi, google_cse, brave",
                                name.chars().take(32).collect::<String>()
                            ),
                        )
                    })?;
                if !order.contains(&kind) {
                    order.push(kind);
                }
            }
            order
        }
    };
    let cache_ttl = parse_secs(get, "SEARCH_CACHE_SECS", 0.0)?;
    Ok(SearchSettings {
        google_cx: get("GOOGLE_CSE_CX").map(|cx| cx.trim().to_string()),
        order,
        cache_ttl: Some(cache_ttl).filter(|ttl| !ttl.is_zero()),
        cache_entries: parse_number(get, "SEARCH_CACHE_ENTRIES", 1000)?.max(1),
        account_cache: parse_secs(get, "SERPAPI_ACCOUNT_CACHE_SECS", 60.0)?,
    })
}
