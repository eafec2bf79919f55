//! Which session a request belongs to, in order of preference:
//! 1. an explicit `x-session-id` header;
//! 2. a coding client's session header (`x-claude-code-session-id`);
//! 3. OpenAI's `prompt_cache_key`;
//! 4. Anthropic's `metadata.user_id`;
//! 5. else the cacheable prefix itself: the system prompt, the tools and
//!    the first message, which every turn of a conversation re-sends
//!    byte for byte.
//!
//! A session is known only by a digest (`SessionId`) of its provider and
//! its source, so the table never holds what a client sent, and the same
//! session is the same id on every replica.

use axum::http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::domain::ProviderKind;

/// Session headers, most explicit first.
const SESSION_HEADERS: [&str; 2] = ["x-session-id", "x-claude-code-session-id"];

/// A session's digest: 128 bits of SHA-256, so two sessions never share a
/// binding by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// The digest of `parts`, each length-prefixed so no two splits of the
    /// same bytes collide.
    pub fn from_parts(kind: &[u8], value: &[u8]) -> Self {
        Self::of(&[kind, value])
    }

    fn of(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        let digest = hasher.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    /// Which of `shards` (a power of two) holds this session.
    pub fn shard(&self, shards: usize) -> usize {
        usize::from(self.0[0]) & (shards - 1)
    }

    /// The id as text, for sharing with other replicas.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// An id another replica shared (`to_hex`); `None` if malformed.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(text, &mut id).ok()?;
        Some(Self(id))
    }
}

/// The client's own session header, if it sent one (read by the routes,
/// which see the client's headers; empty values do not count).
pub fn session_header(headers: &HeaderMap) -> Option<HeaderValue> {
    SESSION_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).filter(|value| !value.is_empty()))
        .cloned()
}

/// The session of a request to `provider`: its session header's, else the
/// one its body names or implies. `None` for a body that is not a JSON
/// object.
pub fn session_of(
    provider: ProviderKind,
    header: Option<&HeaderValue>,
    body: &[u8],
) -> Option<SessionId> {
    let provider = provider.as_str().as_bytes();
    if let Some(header) = header {
        return Some(SessionId::of(&[provider, b"header", header.as_bytes()]));
    }
    let fields: BodyFields<'_> = serde_json::from_slice(body).ok()?;
    if let Some(key) = fields.prompt_cache_key.filter(|key| !key.is_empty()) {
        return Some(SessionId::of(&[
            provider,
            b"prompt_cache_key",
            key.as_bytes(),
        ]));
    }
    if let Some(user) = fields
        .metadata
        .and_then(crate::raw_json::object::<Metadata<'_>>)
        .and_then(|metadata| metadata.user_id)
        .filter(|user| !user.is_empty())
    {
        return Some(SessionId::of(&[provider, b"user_id", user.as_bytes()]));
    }
    Some(SessionId::of(&[
        provider,
        b"prefix",
        raw_bytes(fields.system),
        raw_bytes(fields.tools),
        raw_bytes(fields.messages.0),
    ]))
}

fn raw_bytes(value: Option<&RawValue>) -> &[u8] {
    value.map_or(&[], |value| value.get().as_bytes())
}

/// The fields a session is read from; everything else is skipped.
#[derive(Deserialize)]
struct BodyFields<'a> {
    #[serde(borrow, default)]
    prompt_cache_key: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: FirstItem<'a>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default)]
    user_id: Option<std::borrow::Cow<'a, str>>,
}

/// An array's first item, kept raw; the rest is skipped without being
/// kept (a conversation's later turns are not part of its prefix).
#[derive(Default)]
struct FirstItem<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstItem<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct First<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for First<'a> {
            type Value = FirstItem<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<&'de RawValue>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstItem(first))
            }
        }
        deserializer.deserialize_seq(First(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANTHROPIC: ProviderKind = ProviderKind::Anthropic;

    fn body_session(body: &str) -> SessionId {
        session_of(ANTHROPIC, None, body.as_bytes()).unwrap()
    }

    #[test]
    fn a_session_header_wins_over_the_body() {
        let mut headers = HeaderMap::new();
        headers.insert("x-claude-code-session-id", HeaderValue::from_static("cc-1"));
        let coding = session_header(&headers);
        headers.insert("x-session-id", HeaderValue::from_static("s-1"));
        let explicit = session_header(&headers);
        assert_eq!(coding.as_ref().unwrap(), "cc-1");
        assert_eq!(explicit.as_ref().unwrap(), "s-1");
        let body = br#"{"metadata": {"user_id": "u"}}"#;
        assert_eq!(
            session_of(ANTHROPIC, explicit.as_ref(), body),
            session_of(ANTHROPIC, explicit.as_ref(), b"not json"),
        );
        assert_ne!(
            session_of(ANTHROPIC, explicit.as_ref(), body),
            session_of(ANTHROPIC, None, body),
        );
    }

    #[test]
    fn a_conversation_keeps_its_prefix_session_as_it_grows() {
        let first = r#"{"system": "be brief", "messages": [{"role": "user", "content": "hi"}]}"#;
        let later = r#"{"system": "be brief", "messages": [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}]}"#;
        let other = r#"{"system": "be long", "messages": [{"role": "user", "content": "hi"}]}"#;
        assert_eq!(body_session(first), body_session(later));
        assert_ne!(body_session(first), body_session(other));
    }

    #[test]
    fn named_sessions_come_before_the_prefix_and_providers_stay_apart() {
        let keyed = r#"{"prompt_cache_key": "k", "metadata": {"user_id": "u"}, "system": "a"}"#;
        let same_key = r#"{"prompt_cache_key": "k", "system": "b"}"#;
        assert_eq!(body_session(keyed), body_session(same_key));
        let user = r#"{"metadata": {"user_id": "u"}, "system": "a"}"#;
        let same_user = r#"{"metadata": {"user_id": "u"}, "system": "b"}"#;
        assert_eq!(body_session(user), body_session(same_user));
        assert_ne!(body_session(user), body_session(keyed));
        assert_ne!(
            session_of(ProviderKind::OpenAI, None, keyed.as_bytes()),
            session_of(ANTHROPIC, None, keyed.as_bytes())
        );
        assert_eq!(session_of(ANTHROPIC, None, b"[1, 2]"), None);
    }
}
