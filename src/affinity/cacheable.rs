//! Whether a request is worth keeping on its cache: a prompt shorter than
//! the model's minimum cacheable length is never cached, so affinity would
//! only stop it spreading across keys. The length is estimated from the
//! body's size, without reading it. And for how long: the provider's cache
//! lifetime, 5 minutes from the last use, 1 hour where asked for.

use std::time::Duration;

use crate::domain::ProviderKind;

/// Anthropic's and OpenAI's default cache lifetime, renewed by each use.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// Anthropic's `"ttl": "1h"` cache.
pub const HOUR_TTL: Duration = Duration::from_secs(60 * 60);

/// Bytes per token for the estimate. English runs at about four; JSON's
/// quotes and keys add bytes without tokens, so this errs towards too
/// many tokens, which only keeps a borderline request on its cache.
const BYTES_PER_TOKEN: usize = 4;

/// The fewest prompt tokens the provider caches for `model` (Anthropic's
/// table as of early 2026; unknown and newer Claude models get the lowest
/// minimum, so they keep their affinity. OpenAI caches from 1024 tokens).
pub fn min_cacheable_tokens(provider: ProviderKind, model: Option<&str>) -> usize {
    if provider != ProviderKind::Anthropic {
        return 1024;
    }
    let model = model.unwrap_or_default();
    let family = |names: &[&str]| names.iter().any(|name| model.contains(name));
    if family(&["opus-4-5", "opus-4-6", "haiku-4-5"]) {
        4096
    } else if family(&["sonnet-4-6", "haiku"]) {
        2048
    } else {
        1024
    }
}

/// Whether a body of `body_len` bytes may reach `min_tokens`.
pub fn may_be_cached(body_len: usize, min_tokens: usize) -> bool {
    body_len / BYTES_PER_TOKEN >= min_tokens
}

/// How long the provider keeps the request's cache after this use: an
/// hour when any `cache_control` asks for `"ttl": "1h"`.
pub fn cache_ttl(body: &[u8]) -> Duration {
    // Found from the `1` of `"1h"`, a byte prompts seldom hold. A search
    // for `"ttl"` (memchr's memmem) went from every quote, JSON's commonest
    // byte, and cost about 1 µs per 6 KB prompt on every request; this
    // costs about 0.7 µs (benches/affinity).
    let asks_for_hour = memchr::memchr_iter(b'1', body).any(|at| {
        if !body[at..].starts_with(b"1h\"") {
            return false;
        }
        let Some(before) = body[..at].strip_suffix(b"\"") else {
            return false;
        };
        before
            .trim_ascii_end()
            .strip_suffix(b":")
            .is_some_and(|name| name.trim_ascii_end().ends_with(b"\"ttl\""))
    });
    if asks_for_hour { HOUR_TTL } else { DEFAULT_TTL }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimums_follow_the_model_family() {
        let anthropic = |model| min_cacheable_tokens(ProviderKind::Anthropic, Some(model));
        assert_eq!(anthropic("claude-sonnet-4-20250514"), 1024);
        assert_eq!(anthropic("claude-3-5-haiku-20241022"), 2048);
        assert_eq!(anthropic("claude-opus-4-5-20251101"), 4096);
        assert_eq!(anthropic("claude-haiku-4-5"), 4096);
        assert_eq!(
            min_cacheable_tokens(ProviderKind::OpenAI, Some("gpt-4o")),
            1024
        );
    }

    #[test]
    fn small_bodies_are_not_worth_an_affinity() {
        assert!(!may_be_cached(300, 1024));
        assert!(may_be_cached(4096, 1024));
        assert!(!may_be_cached(4096, 2048));
    }

    #[test]
    fn the_hour_cache_is_read_from_cache_control() {
        assert_eq!(cache_ttl(br#"{"system": "x"}"#), DEFAULT_TTL);
        let hour =
            br#"{"system": [{"text": "x", "cache_control": {"type": "ephemeral", "ttl" : "1h"}}]}"#;
        assert_eq!(cache_ttl(hour), HOUR_TTL);
        let five = br#"{"cache_control": {"type": "ephemeral", "ttl": "5m"}}"#;
        assert_eq!(cache_ttl(five), DEFAULT_TTL);
    }
}
