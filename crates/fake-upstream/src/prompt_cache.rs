//! The fake's prompt cache, as a provider keeps one per organisation. Each
//! request's whole prompt (system, tools, messages) is cached for its
//! organisation. A later request of the same organisation whose prompt
//! begins, at a message boundary, with a prompt cached within the cache's
//! lifetime reads that prefix (`cache_read_input_tokens`) and writes the
//! rest (`cache_creation_input_tokens`); with no such prefix it writes the
//! whole prompt. So a conversation that stays in one organisation reads
//! everything but its newest messages, turn after turn. Prompts under 1024
//! tokens (four bytes each) are not cached, as the real minimum. The
//! lifetime is 5 minutes from the last use, or an hour when the request
//! asks for `"ttl": "1h"`.
//!
//! A key's organisation is the one given by [`crate::FakeUpstream::assign_org`],
//! else named in the key itself after `org-` (`sk-ant-org-acme-1` is in
//! `acme`), else the key is an organisation of its own.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The smallest prefix cached, in tokens.
const MIN_TOKENS: u64 = 1024;
const BYTES_PER_TOKEN: u64 = 4;
const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
const HOUR_TTL: Duration = Duration::from_secs(60 * 60);
/// Most prefixes remembered; past it, expired ones are dropped, and if
/// none are, all (a benchmark's fake must not grow without end).
const MAX_ENTRIES: usize = 100_000;

/// What one request did with its organisation's cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheUse {
    /// `cache_read_input_tokens` (OpenAI: `cached_tokens`).
    pub read: u64,
    /// `cache_creation_input_tokens`.
    pub written: u64,
}

#[derive(Default)]
pub(crate) struct PromptCache {
    /// Who is in which organisation, when set by a test.
    orgs: HashMap<String, String>,
    /// (organisation, prefix digest) → when it expires.
    entries: HashMap<(String, u64), Instant>,
}

impl PromptCache {
    pub fn assign(&mut self, key: &str, org: &str) {
        self.orgs.insert(key.to_string(), org.to_string());
    }

    /// Reads `request`'s longest cached prefix from `key`'s organisation's
    /// cache and writes the rest of its prompt.
    pub fn use_prefix(&mut self, key: &str, request: &Value, now: Instant) -> CacheUse {
        let boundaries = boundaries(request);
        let Some(&(whole, tokens)) = boundaries.last().filter(|(_, t)| *t >= MIN_TOKENS) else {
            return CacheUse::default();
        };
        let org = self.org_of(key);
        let until = now + ttl(request);
        let read = boundaries
            .iter()
            .rev()
            .find_map(|&(digest, prefix_tokens)| {
                let entry = self.entries.get_mut(&(org.clone(), digest))?;
                // A read renews the cache's lifetime.
                (*entry > now).then(|| {
                    *entry = until.max(*entry);
                    prefix_tokens
                })
            });
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, until| *until > now);
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.clear();
            }
        }
        self.entries.insert((org, whole), until);
        let read = read.unwrap_or(0);
        CacheUse {
            read,
            written: tokens - read,
        }
    }

    fn org_of(&self, key: &str) -> String {
        if let Some(org) = self.orgs.get(key) {
            return org.clone();
        }
        match key.split_once("org-") {
            Some((_, rest)) => rest.split('-').next().unwrap_or(rest).to_string(),
            None => key.to_string(),
        }
    }
}

/// The digest and size in tokens of the prompt up to each message
/// boundary (after the first message, the second, ..., the last).
fn boundaries(request: &Value) -> Vec<(u64, u64)> {
    let mut hasher = DefaultHasher::new();
    let mut bytes = 0;
    for part in [&request["system"], &request["tools"]] {
        let text = part.to_string();
        bytes += text.len() as u64;
        text.hash(&mut hasher);
    }
    let messages = request["messages"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    messages
        .iter()
        .map(|message| {
            let text = message.to_string();
            bytes += text.len() as u64;
            text.hash(&mut hasher);
            (hasher.finish(), bytes / BYTES_PER_TOKEN)
        })
        .collect()
}

fn ttl(request: &Value) -> Duration {
    if request.to_string().contains(r#""ttl":"1h""#) {
        HOUR_TTL
    } else {
        DEFAULT_TTL
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(system: &str) -> Value {
        json!({"system": system, "messages": [{"role": "user", "content": "hi"}]})
    }

    #[test]
    fn an_organisation_reads_what_it_wrote_and_no_other_does() {
        let mut cache = PromptCache::default();
        let now = Instant::now();
        let long = request(&"cacheable ".repeat(500));
        let first = cache.use_prefix("sk-org-acme-1", &long, now);
        assert!(first.written > 1024 && first.read == 0);
        let same_org = cache.use_prefix("sk-org-acme-2", &long, now);
        assert_eq!(same_org.read, first.written);
        let mut next_turn = long.clone();
        let messages = next_turn["messages"].as_array_mut().unwrap();
        messages.push(json!({"role": "assistant", "content": "hello"}));
        messages.push(json!({"role": "user", "content": "more"}));
        let grown = cache.use_prefix("sk-org-acme-1", &next_turn, now);
        assert_eq!(grown.read, first.written);
        assert!(grown.written > 0 && grown.written < 20);
        let other_org = cache.use_prefix("sk-org-umbrella-1", &long, now);
        assert_eq!(other_org.read, 0);
        let expired = cache.use_prefix("sk-org-acme-1", &long, now + DEFAULT_TTL * 3);
        assert_eq!(expired.read, 0);
        assert_eq!(
            cache.use_prefix("sk-org-acme-1", &request("short"), now),
            CacheUse::default()
        );
    }
}
