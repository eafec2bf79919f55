//! The few fields of an SDK request that keygate itself reads (model,
//! messages, max_tokens, stream, stream_options; for embeddings and
//! responses also input, previous_response_id and store). Nothing is built into a
//! JSON tree: the fields are borrowed from the body as raw values and read
//! as the type wanted, and the rest (the conversation) is skipped unread.
//! The client's bytes go upstream unchanged, so there is no need to.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::affinity::SessionParts;
use crate::error::ApiError;
use crate::fields;
use crate::raw_json::{self, keep_null};

/// The visitor methods for JSON scalars (booleans and numbers), each
/// answering `$value`: every shape below treats them alike.
macro_rules! scalars_are {
    ($value:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// Each field as it is in the body (`null` included), or `None` if absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SdkFields<'a> {
    #[serde(borrow, deserialize_with = "keep_null")]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Option<Messages<'a>>,
    #[serde(borrow, deserialize_with = "keep_null")]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    temperature: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    top_p: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    stop_sequences: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    stop: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    stream: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    stream_options: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    input: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    previous_response_id: Option<&'a RawValue>,
    #[serde(borrow, deserialize_with = "keep_null")]
    store: Option<&'a RawValue>,
    // The session's sources, for cache affinity (`session_parts`).
    // Raw: a value that is not a string is the upstream's to refuse, not
    // this parse's.
    #[serde(borrow)]
    prompt_cache_key: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    system: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
}

/// `messages`: its shape, and its first message kept raw (the start of a
/// conversation's cacheable prefix).
#[derive(Debug)]
struct Messages<'a> {
    shape: Shape,
    first: Option<&'a RawValue>,
}

/// Whether a value is an array of readable messages, and how long, without
/// keeping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Array(usize),
    /// An array whose message at this index cannot be read: what is wrong.
    BadMessage(usize, &'static str),
    Other,
}

/// One message's shape: an object with a string `role` and a `content` that
/// is a string or an array. Nothing of it is kept.
struct MessageShape(Option<&'static str>);

impl<'de> Deserialize<'de> for MessageShape {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessageVisitor;
        impl<'de> Visitor<'de> for MessageVisitor {
            type Value = MessageShape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message")
            }
            scalars_are!(not_an_object());
            fn visit_str<E>(self, _: &str) -> Result<MessageShape, E> {
                Ok(not_an_object())
            }
            fn visit_unit<E>(self) -> Result<MessageShape, E> {
                Ok(not_an_object())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MessageShape, A::Error> {
                let (mut role, mut content) = (false, false);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "role" => role = map.next_value::<Kind>()? == Kind::Text,
                        "content" => {
                            content = matches!(map.next_value::<Kind>()?, Kind::Text | Kind::List)
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(MessageShape(if !role {
                    Some("role: must be a string")
                } else if !content {
                    Some("content: must be a string or an array of content blocks")
                } else {
                    None
                }))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MessageShape, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(not_an_object())
            }
        }
        deserializer.deserialize_any(MessageVisitor)
    }
}

fn not_an_object() -> MessageShape {
    MessageShape(Some(r#"must be an object with "role" and "content""#))
}

/// What kind of JSON value a field holds, without keeping it.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Text,
    List,
    Other,
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KindVisitor;
        impl<'de> Visitor<'de> for KindVisitor {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_are!(Kind::Other);
            fn visit_unit<E>(self) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
                Ok(Kind::Text)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Kind::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Kind::Other)
            }
        }
        deserializer.deserialize_any(KindVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Messages<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessagesVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MessagesVisitor<'a> {
            type Value = Messages<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_are!(Messages::other());
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Messages::other())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // The first message is kept raw, then read for its shape
                // like the others.
                let first = seq.next_element::<&'de RawValue>()?;
                let (mut len, mut problem) = (0, None);
                let mut note = |MessageShape(wrong)| {
                    if problem.is_none() {
                        problem = wrong.map(|wrong| (len, wrong));
                    }
                    len += 1;
                };
                if let Some(first) = first {
                    note(serde_json::from_str(first.get()).map_err(de::Error::custom)?);
                    while let Some(message) = seq.next_element::<MessageShape>()? {
                        note(message);
                    }
                }
                let shape = match problem {
                    Some((index, wrong)) => Shape::BadMessage(index, wrong),
                    None => Shape::Array(len),
                };
                Ok(Messages { shape, first })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Messages::other())
            }
        }
        deserializer.deserialize_any(MessagesVisitor(std::marker::PhantomData))
    }
}

impl Messages<'_> {
    fn other() -> Self {
        Self {
            shape: Shape::Other,
            first: None,
        }
    }
}

impl<'a> SdkFields<'a> {
    /// `messages`' shape, if the body has the field.
    pub fn messages(&self) -> Option<Shape> {
        self.messages.as_ref().map(|messages| messages.shape)
    }

    /// Where `body` (the body these fields were read from) holds the
    /// sources of its session, for cache affinity.
    pub fn session_parts(&self, body: &[u8]) -> SessionParts {
        SessionParts::of(
            body,
            self.prompt_cache_key,
            self.metadata,
            self.system,
            self.tools,
            self.messages.as_ref().and_then(|messages| messages.first),
        )
    }

    /// Reads the fields from a body that must be a JSON object.
    pub fn parse(body: &'a [u8]) -> Result<Self, ApiError> {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            None => {
                return Err(ApiError::bad_request(
                    "request body is empty; send a JSON object",
                ));
            }
            Some(b'{') => {}
            Some(_) => return Err(ApiError::bad_request("request body must be a JSON object")),
        }
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }

    /// `model`: a non-empty string.
    pub fn model(&self) -> Result<String, ApiError> {
        let Some(model) = self.model else {
            return Err(ApiError::bad_request("model: field required"));
        };
        match raw_json::as_string(model) {
            Some(model) if !model.trim().is_empty() => Ok(model),
            Some(_) => Err(ApiError::bad_request("model: must not be empty")),
            None => Err(ApiError::bad_request("model: must be a string")),
        }
    }

    /// `max_tokens`: required by Anthropic (its value is checked by
    /// `check_common`).
    pub fn check_max_tokens(&self) -> Result<(), ApiError> {
        match self.max_tokens {
            Some(value) if !raw_json::is_null(value) => Ok(()),
            _ => Err(ApiError::bad_request("max_tokens: field required")),
        }
    }

    /// `messages`: a non-empty array. (OpenAI's messages may have a `null`
    /// content, an assistant turn that only calls tools.)
    pub fn check_messages(&self) -> Result<(), ApiError> {
        match self.messages() {
            Some(Shape::Array(0)) => Err(ApiError::bad_request("messages: must not be empty")),
            Some(Shape::Array(_) | Shape::BadMessage(..)) => Ok(()),
            _ => Err(ApiError::bad_request("messages: must be a non-empty array")),
        }
    }

    /// Anthropic's `messages`: a non-empty array of objects with a string
    /// `role` and a string or array `content` (the upstream cannot read
    /// anything else, and may drop the connection rather than say so).
    pub fn check_anthropic_messages(&self) -> Result<(), ApiError> {
        match self.messages() {
            Some(Shape::BadMessage(index, wrong)) => {
                let separator = if wrong.starts_with("must") { ": " } else { "." };
                Err(ApiError::bad_request(format!(
                    "messages[{index}]{separator}{wrong}"
                )))
            }
            _ => self.check_messages(),
        }
    }

    /// The length, sampling and stop fields, checked by the same rules as
    /// on every route (`routes::fields`), where present. These are small
    /// values; each is read as JSON only to be checked.
    pub fn check_common(&self) -> Result<(), ApiError> {
        let value = |raw: Option<&RawValue>| {
            raw.filter(|raw| !raw_json::is_null(raw))
                .map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).unwrap_or_default())
        };
        for (field, raw) in [
            ("max_tokens", self.max_tokens),
            ("max_completion_tokens", self.max_completion_tokens),
        ] {
            if let Some(value) = value(raw) {
                fields::max_tokens(field, &value)?;
            }
        }
        for (field, raw) in [("temperature", self.temperature), ("top_p", self.top_p)] {
            if let Some(value) = value(raw) {
                fields::number(field, &value)?;
            }
        }
        if let Some(value) = value(self.stop_sequences) {
            fields::stop_sequences(&value)?;
        }
        if let Some(value) = value(self.stop) {
            fields::stop(&value)?;
        }
        Ok(())
    }

    /// `stream`: a boolean, false if absent.
    pub fn stream(&self) -> Result<bool, ApiError> {
        match self.stream {
            None => Ok(false),
            Some(value) if raw_json::is_null(value) => Ok(false),
            Some(value) => raw_json::as_bool(value)
                .ok_or_else(|| ApiError::bad_request("stream: must be true or false")),
        }
    }

    /// `input`: present and not `null` (what it holds is the upstream's
    /// to judge: a string, an array of strings, tokens or input items).
    pub fn check_input(&self) -> Result<(), ApiError> {
        match self.input {
            Some(value) if !raw_json::is_null(value) => Ok(()),
            _ => Err(ApiError::bad_request("input: field required")),
        }
    }

    /// `previous_response_id`: a response id, if given.
    pub fn previous_response_id(&self) -> Result<Option<String>, ApiError> {
        match self.previous_response_id {
            None => Ok(None),
            Some(value) if raw_json::is_null(value) => Ok(None),
            Some(value) => raw_json::as_string(value)
                .filter(|id| !id.is_empty())
                .map(Some)
                .ok_or_else(|| {
                    ApiError::bad_request("previous_response_id: must be a non-empty string")
                }),
        }
    }

    /// `store`: whether the upstream keeps the response (it does unless
    /// told not to).
    pub fn stores(&self) -> Result<bool, ApiError> {
        match self.store {
            None => Ok(true),
            Some(value) if raw_json::is_null(value) => Ok(true),
            Some(value) => raw_json::as_bool(value)
                .ok_or_else(|| ApiError::bad_request("store: must be true or false")),
        }
    }

    /// `stream_options.include_usage`.
    pub fn include_usage(&self) -> bool {
        self.stream_options.is_some_and(raw_json::include_usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_and_only_measures_the_messages() {
        let fields = SdkFields::parse(
            br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[1,2]}],
                "stream":true,"stream_options":{"include_usage":true},"extra":{"a":[1]}}"#,
        )
        .unwrap();
        assert_eq!(fields.messages(), Some(Shape::Array(2)));
        assert_eq!(fields.model().unwrap(), "m");
        assert!(fields.check_max_tokens().is_ok());
        assert!(fields.stream().unwrap() && fields.include_usage());
        assert_eq!(
            SdkFields::parse(br#"{"messages":"x"}"#).unwrap().messages(),
            Some(Shape::Other)
        );
        assert!(SdkFields::parse(b"[1]").is_err());
        assert!(SdkFields::parse(b"{").is_err());
        let nulls = SdkFields::parse(br#"{"model":null,"max_tokens":null,"stream":null}"#).unwrap();
        assert_eq!(
            nulls.model().unwrap_err().message,
            "model: must be a string"
        );
        assert!(nulls.check_max_tokens().is_err());
        assert!(!nulls.stream().unwrap());
    }

    #[test]
    fn the_session_from_the_routes_parse_is_the_one_a_second_parse_finds() {
        use crate::affinity::{session_of, session_of_parts};
        use crate::domain::ProviderKind::{Anthropic, OpenAI};
        let bodies: [&[u8]; 7] = [
            br#"{"model":"m","prompt_cache_key":"tenant-\u0041","messages":[{"role":"user","content":"hi"}]}"#,
            br#"{"model":"m","metadata":{"user_id":"u-1"},"messages":[{"role":"user","content":"hi"}]}"#,
            br#"{"model":"m","metadata":{"user_id":""},"system":"You are terse.","tools":[{"name":"t"}],"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}"#,
            br#"{"model":"m","prompt_cache_key":"","system":[{"type":"text","text":"S"}],"messages":[{"role":"user","content":[{"type":"text","text":"q"}]}]}"#,
            br#"{"model":"m","messages":[]}"#,
            br#"{"model":"m","prompt_cache_key":7,"messages":[{"role":"user","content":"z"}]}"#,
            br#"  {"messages":[{"role":"user","content":"a"}],"model":"m","system":"s"}"#,
        ];
        let mut ids = std::collections::HashSet::new();
        for body in bodies {
            let fields = SdkFields::parse(body).unwrap();
            for provider in [Anthropic, OpenAI] {
                let from_parts =
                    session_of_parts(provider, None, body, &fields.session_parts(body));
                assert_eq!(
                    Some(from_parts),
                    session_of(provider, None, body),
                    "{}",
                    String::from_utf8_lossy(body)
                );
                ids.insert(from_parts);
            }
        }
        assert_eq!(ids.len(), 14, "every body and provider is its own session");
    }
}
