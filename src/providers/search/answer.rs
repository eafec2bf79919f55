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

/// `url`'s host and path without the scheme, for a result that came
/// without a display form.
pub fn display_url(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}
