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

use std::ops::Range;

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
    if header.is_some() {
        return Some(session_of_parts(
            provider,
            header,
            body,
            &SessionParts::default(),
        ));
    }
    // Only an object: serde would read a struct from an array too.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let fields: BodyFields<'_> = serde_json::from_slice(body).ok()?;
    let parts = SessionParts::of(
        body,
        fields.prompt_cache_key,
        fields.metadata,
        fields.system,
        fields.tools,
        fields.messages.0,
    );
    Some(session_of_parts(provider, None, body, &parts))
}

/// `session_of`, from the parts of `body` a route has already found (its
/// own parse of the body), so the body is not read a second time.
pub fn session_of_parts(
    provider: ProviderKind,
    header: Option<&HeaderValue>,
    body: &[u8],
    parts: &SessionParts,
) -> SessionId {
    let provider = provider.as_str().as_bytes();
    if let Some(header) = header {
        return SessionId::of(&[provider, b"header", header.as_bytes()]);
    }
    let slice = |range: &Option<Range<usize>>| {
        range
            .as_ref()
            .and_then(|range| body.get(range.clone()))
            .unwrap_or_default()
    };
    // A name that is not a string (or empty) names nothing; the next
    // source decides.
    let raw = |range| serde_json::from_slice::<&RawValue>(slice(range)).ok();
    if let Some(key) = raw(&parts.prompt_cache_key)
        .and_then(crate::raw_json::as_string)
        .filter(|key| !key.is_empty())
    {
        return SessionId::of(&[provider, b"prompt_cache_key", key.as_bytes()]);
    }
    if let Some(user) = raw(&parts.metadata)
        .and_then(crate::raw_json::object::<Metadata<'_>>)
        .and_then(|metadata| metadata.user_id)
        .filter(|user| !user.is_empty())
    {
        return SessionId::of(&[provider, b"user_id", user.as_bytes()]);
    }
    SessionId::of(&[
        provider,
        b"prefix",
        slice(&parts.system),
        slice(&parts.tools),
        slice(&parts.first_message),
    ])
}

/// Where a body's session sources lie in it, as byte ranges: noting them
/// costs a route nothing it has not parsed already, and they are only read
/// (the names decoded, the prefix hashed) when affinity wants a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionParts {
    prompt_cache_key: Option<Range<usize>>,
    metadata: Option<Range<usize>>,
    system: Option<Range<usize>>,
    tools: Option<Range<usize>>,
    first_message: Option<Range<usize>>,
}

impl SessionParts {
    /// The parts of `body`, from values parsed out of it (each raw value
    /// must borrow from `body`; one that does not is left out).
    pub fn of(
        body: &[u8],
        prompt_cache_key: Option<&RawValue>,
        metadata: Option<&RawValue>,
        system: Option<&RawValue>,
        tools: Option<&RawValue>,
        first_message: Option<&RawValue>,
    ) -> Self {
        let range = |value: Option<&RawValue>| value.and_then(|value| range_in(body, value));
        Self {
            prompt_cache_key: range(prompt_cache_key),
            metadata: range(metadata),
            system: range(system),
            tools: range(tools),
            first_message: range(first_message),
        }
    }
}

/// Where `value` lies in `body`, if it is a slice of it.
fn range_in(body: &[u8], value: &RawValue) -> Option<Range<usize>> {
    let text = value.get().as_bytes();
    let start = (text.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(text.len())?;
    (end <= body.len()).then_some(start..end)
}

/// The fields a session is read from; everything else is skipped.
#[derive(Deserialize)]
struct BodyFields<'a> {
    // Raw: a key that is not a string leaves the prefix to name the
    // session, rather than failing the whole read.
    #[serde(borrow, default)]
    prompt_cache_key: Option<&'a RawValue>,
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
