//! What the upstream says a key has left: the rate-limit headers of its
//! latest answer, as windows of limit / remaining / reset. The `headroom`
//! strategy prefers the key with the largest remaining share, and skips a
//! key with nothing left in some window until that window resets, so it is
//! not driven into a 429 at all.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// One rate-limit window (requests, tokens, …).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub limit: u64,
    pub remaining: u64,
    /// When the window refills, if the upstream said.
    #[serde(serialize_with = "serialize_time")]
    pub reset: Option<SystemTime>,
}

/// The windows one answer reported; absent ones are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RateLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<Window>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<Window>,
    /// Searches left in the plan's month (SerpApi's `plan_searches_left`,
    /// Brave's per-month window). A search key's short window (SerpApi's
    /// hour, Brave's second) is `requests`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month: Option<Window>,
}

impl RateLimits {
    /// The whole per-minute budget of input tokens, as far as known (the
    /// input-token window, else the combined token window).
    pub fn token_limit(&self) -> Option<u64> {
        self.input_tokens
            .or(self.tokens)
            .map(|w| w.limit)
            .filter(|limit| *limit > 0)
    }

    pub fn is_empty(&self) -> bool {
        self.windows().next().is_none()
    }

    fn windows(&self) -> impl Iterator<Item = &Window> {
        [
            &self.requests,
            &self.tokens,
            &self.input_tokens,
            &self.output_tokens,
            &self.month,
        ]
        .into_iter()
        .flatten()
    }

    /// The smallest remaining share across windows, 0.0 to 1.0; 1.0 when
    /// nothing is known (a key never seen has all its headroom).
    pub fn share(&self, now: SystemTime) -> f64 {
        self.windows()
            .filter(|w| w.limit > 0 && !w.has_reset(now))
            .map(|w| w.remaining as f64 / w.limit as f64)
            .fold(1.0, f64::min)
    }

    /// If some window is used up and has not reset yet: how long until it
    /// does (the latest such reset, since every window must have room).
    pub fn exhausted_for(&self, now: SystemTime) -> Option<Duration> {
        self.windows()
            .filter(|w| w.remaining == 0 && !w.has_reset(now))
            .filter_map(|w| w.reset)
            .filter_map(|reset| reset.duration_since(now).ok())
            .max()
    }

    /// How long until the next window that has not reset yet does: the
    /// moment `share` or `exhausted_for` may change by time alone.
    pub fn next_reset(&self, now: SystemTime) -> Option<Duration> {
        self.windows()
            .filter_map(|w| w.reset)
            .filter_map(|reset| reset.duration_since(now).ok())
            .filter(|wait| !wait.is_zero())
            .min()
    }
}

impl Window {
    fn has_reset(&self, now: SystemTime) -> bool {
        self.reset.is_some_and(|reset| reset <= now)
    }
}

fn serialize_time<S: serde::Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => {
            serializer.serialize_str(&humantime::format_rfc3339_seconds(*time).to_string())
        }
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(
        limit: u64,
        remaining: u64,
        reset_in: Option<u64>,
        now: SystemTime,
    ) -> Option<Window> {
        Some(Window {
            limit,
            remaining,
            reset: reset_in.map(|s| now + Duration::from_secs(s)),
        })
    }

    #[test]
    fn share_is_the_tightest_window() {
        let now = SystemTime::now();
        let limits = RateLimits {
            requests: window(100, 80, Some(30), now),
            tokens: window(1000, 100, Some(30), now),
            ..RateLimits::default()
        };
        assert_eq!(limits.share(now), 0.1);
        assert_eq!(RateLimits::default().share(now), 1.0);
    }

    #[test]
    fn an_empty_window_blocks_until_it_resets() {
        let now = SystemTime::now();
        let limits = RateLimits {
            requests: window(100, 0, Some(20), now),
            tokens: window(1000, 0, Some(40), now),
            ..RateLimits::default()
        };
        assert_eq!(limits.exhausted_for(now), Some(Duration::from_secs(40)));
        let later = now + Duration::from_secs(41);
        assert_eq!(limits.exhausted_for(later), None);
        assert_eq!(limits.share(later), 1.0, "reset windows count as full");
    }
}
