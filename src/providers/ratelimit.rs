//! Reading each provider's rate-limit headers into `RateLimits`.
//! Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
//! resets as RFC 3339 times. OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`,
//! resets as Go-style durations (`1s`, `6m0s`, `12ms`, `1h2m3s`).

use std::time::{Duration, SystemTime};

use crate::domain::{ProviderKind, RateLimits, Window};
use reqwest::header::HeaderMap;

/// Header names per window: limit, remaining, reset. Static, so reading
/// them on every answer allocates nothing.
const ANTHROPIC: [[&str; 3]; 4] = [
    [
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ],
    [
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ],
    [
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ],
    [
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ],
];
const OPENAI: [[&str; 3]; 2] = [
    [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ],
    [
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ],
];

pub fn rate_limits(provider: ProviderKind, headers: &HeaderMap, now: SystemTime) -> RateLimits {
    match provider {
        ProviderKind::Anthropic => {
            let window = |[limit, remaining, reset]: [&str; 3]| {
                window_from(text(headers, limit), text(headers, remaining), || {
                    text(headers, reset).and_then(|r| humantime::parse_rfc3339_weak(r).ok())
                })
            };
            RateLimits {
                requests: window(ANTHROPIC[0]),
                tokens: window(ANTHROPIC[1]),
                input_tokens: window(ANTHROPIC[2]),
                output_tokens: window(ANTHROPIC[3]),
                month: None,
            }
        }
        ProviderKind::OpenAI => {
            let window = |[limit, remaining, reset]: [&str; 3]| {
                window_from(text(headers, limit), text(headers, remaining), || {
                    text(headers, reset)
                        .and_then(parse_go_duration)
                        .map(|d| now + d)
                })
            };
            RateLimits {
                requests: window(OPENAI[0]),
                tokens: window(OPENAI[1]),
                ..RateLimits::default()
            }
        }
        // Search answers are read by their own modules (`providers::search`).
        _ => RateLimits::default(),
    }
}

/// How long a rate-limited key should rest, by the best signal the answer
/// carries: `retry-after-ms`, `retry-after`, then the reset of a used-up
/// rate-limit window. `None` leaves the configured default.
pub fn cooldown_hint(
    provider: ProviderKind,
    headers: &HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    super::retry_after::parse_retry_after(headers, now)
        .or_else(|| rate_limits(provider, headers, now).exhausted_for(now))
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A window needs at least a limit and a remaining count; deployments that
/// send `-1` or nonsense are ignored.
fn window_from(
    limit: Option<&str>,
    remaining: Option<&str>,
    reset: impl FnOnce() -> Option<SystemTime>,
) -> Option<Window> {
    Some(Window {
        limit: limit?.parse().ok()?,
        remaining: remaining?.parse().ok()?,
        reset: reset(),
    })
}

/// `1h2m3.5s`, `6m0s`, `12ms`, `250us`: a sequence of number+unit pairs.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, after) = rest.split_at(number_len);
        let number: f64 = number.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * scale;
        rest = after;
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    reqwest::header::HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("12ms"), Some(Duration::from_millis(12)));
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("-1"), None);
        assert_eq!(parse_go_duration("soon"), None);
    }

    #[test]
    fn openai_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let limits = rate_limits(
            ProviderKind::OpenAI,
            &headers(&[
                ("x-ratelimit-limit-requests", "60"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "20s"),
                ("x-ratelimit-limit-tokens", "150000"),
                ("x-ratelimit-remaining-tokens", "149000"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ]),
            now,
        );
        assert_eq!(limits.exhausted_for(now), Some(Duration::from_secs(20)));
        assert_eq!(limits.tokens.unwrap().remaining, 149000);
    }

    #[test]
    fn anthropic_headers() {
        let now = humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let limits = rate_limits(
            ProviderKind::Anthropic,
            &headers(&[
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "49"),
                ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:30Z"),
                ("anthropic-ratelimit-input-tokens-limit", "40000"),
                ("anthropic-ratelimit-input-tokens-remaining", "0"),
                (
                    "anthropic-ratelimit-input-tokens-reset",
                    "2026-01-01T00:00:45Z",
                ),
            ]),
            now,
        );
        assert_eq!(limits.requests.unwrap().remaining, 49);
        assert_eq!(limits.exhausted_for(now), Some(Duration::from_secs(45)));
        assert!(limits.tokens.is_none());
    }
}
