//! The few fields of an SDK request that keygate itself reads (model,
//! messages, max_tokens, stream, stream_options). The rest of the body (the
//! conversation) is skipped without being built into a JSON tree: the
//! client's bytes go upstream unchanged, so there is no need to.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SdkFields {
    pub model: Option<Value>,
    pub messages: Option<Shape>,
    pub max_tokens: Option<Value>,
    pub stream: Option<Value>,
    pub stream_options: Option<Value>,
}

/// Whether a value is an array, and how long, without keeping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Array(usize),
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let mut len = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    len += 1;
                }
                Ok(Shape::Array(len))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shape::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
        }
        deserializer.deserialize_any(ShapeVisitor)
    }
}

impl SdkFields {
    /// Reads the fields from a body that must be a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
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
    pub fn model(&self) -> Result<&str, ApiError> {
        match &self.model {
            Some(Value::String(model)) if !model.trim().is_empty() => Ok(model),
            Some(Value::String(_)) => Err(ApiError::bad_request("model: must not be empty")),
            Some(_) => Err(ApiError::bad_request("model: must be a string")),
            None => Err(ApiError::bad_request("model: field required")),
        }
    }

    /// `messages`: a non-empty array.
    pub fn check_messages(&self) -> Result<(), ApiError> {
        match self.messages {
            Some(Shape::Array(0)) => Err(ApiError::bad_request("messages: must not be empty")),
            Some(Shape::Array(_)) => Ok(()),
            _ => Err(ApiError::bad_request("messages: must be a non-empty array")),
        }
    }

    /// `stream`: a boolean, false if absent.
    pub fn stream(&self) -> Result<bool, ApiError> {
        match &self.stream {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(stream)) => Ok(*stream),
            Some(_) => Err(ApiError::bad_request("stream: must be a boolean")),
        }
    }

    /// `stream_options.include_usage`.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
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
        assert_eq!(fields.messages, Some(Shape::Array(2)));
        assert_eq!(fields.model().unwrap(), "m");
        assert!(fields.stream().unwrap() && fields.include_usage());
        assert_eq!(
            SdkFields::parse(br#"{"messages":"x"}"#).unwrap().messages,
            Some(Shape::Other)
        );
        assert!(SdkFields::parse(b"[1]").is_err());
        assert!(SdkFields::parse(b"{").is_err());
    }
}
