//! The normalised answer: the same shape whichever provider served it.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// 1-based rank across pages (`start` + index + 1).
    pub position: u32,
    pub title: String,
    pub url: String,
    pub snippet: String,
    pub display_url: String,
}

/// What a provider found for one query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPage {
    /// The total the provider estimates, when it says.
    pub total_results: Option<u64>,
    pub results: Vec<SearchHit>,
}

/// One result as a provider gave it: `(title, url, snippet, display form)`.
pub type RawHit = (String, String, String, Option<String>);

/// A page's hits numbered from `start + 1`, each with a display form (its
/// URL without the scheme when the provider gave none).
pub fn numbered(start: u32, hits: impl IntoIterator<Item = RawHit>) -> Vec<SearchHit> {
    hits.into_iter()
        .zip(start + 1..)
        .map(|((title, url, snippet, display), position)| SearchHit {
            position,
            display_url: display.unwrap_or_else(|| display_url(&url)),
            title,
            url,
            snippet,
        })
        .collect()
}

/// `url`'s host and path without the scheme, for a result that came
/// without a display form.
fn display_url(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}
