//! Asking an OpenAI stream for its usage chunk: keygate counts every
//! stream's tokens, so a stream request without
//! `stream_options.include_usage` gets it set on its way upstream. The body
//! is spliced, not rebuilt: the value of `stream_options` is replaced (or
//! the field added) and every other byte goes upstream as the client sent
//! it, so a large body costs one copy and no JSON tree.

use bytes::Bytes;

use crate::error::ApiError;
use crate::raw_json::value_spans;

/// `body` (a JSON object) with `stream_options.include_usage` set to true;
/// other fields of `stream_options` are kept if it is an object.
pub fn with_usage_requested(body: &[u8]) -> Result<Bytes, ApiError> {
    let mut out = Vec::with_capacity(body.len() + 48);
    set_field(
        body,
        "stream_options",
        &mut out,
        &|options, out| match options {
            Some(options) if options.starts_with(b"{") => {
                set_field(options, "include_usage", out, &|_, out| {
                    out.extend_from_slice(b"true");
                    Ok(())
                })
            }
            _ => {
                out.extend_from_slice(br#"{"include_usage":true}"#);
                Ok(())
            }
        },
    )?;
    Ok(Bytes::from(out))
}

/// Writes the value of a field, given its current value (`None`: absent).
type WriteValue<'w> = dyn Fn(Option<&[u8]>, &mut Vec<u8>) -> Result<(), ApiError> + 'w;

/// Writes `object` to `out` with each top-level value of `key` replaced by
/// what `write` makes of it, or with `key` added first if it is absent.
fn set_field(
    object: &[u8],
    key: &str,
    out: &mut Vec<u8>,
    write: &WriteValue,
) -> Result<(), ApiError> {
    let spans = value_spans(object, key)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    if spans.is_empty() {
        // `value_spans` read an object, so its first non-blank byte is `{`.
        let open = object
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or_default();
        let rest = &object[open + 1..];
        out.extend_from_slice(&object[..=open]);
        out.extend_from_slice(format!("{}:", serde_json::Value::from(key)).as_bytes());
        write(None, out)?;
        if rest.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(rest);
        return Ok(());
    }
    let mut copied = 0;
    for span in spans {
        out.extend_from_slice(&object[copied..span.start]);
        write(Some(&object[span.clone()]), out)?;
        copied = span.end;
    }
    out.extend_from_slice(&object[copied..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn requested(body: &str) -> Value {
        serde_json::from_slice(&with_usage_requested(body.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn the_field_is_added_set_or_replaced_and_the_rest_kept() {
        assert_eq!(
            requested(r#" {"model":"m", "stream":true}"#),
            json!({"stream_options": {"include_usage": true}, "model": "m", "stream": true})
        );
        assert_eq!(
            requested(r#"{"stream_options":{"include_usage":false,"x":[1, 2]},"model":"m"}"#),
            json!({"stream_options": {"include_usage": true, "x": [1, 2]}, "model": "m"})
        );
        assert_eq!(
            requested(r#"{"stream_options":{ },"model":"m"}"#),
            json!({"stream_options": {"include_usage": true}, "model": "m"})
        );
        assert_eq!(
            requested(r#"{"stream_options":{"x":1},"model":"m"}"#),
            json!({"stream_options": {"include_usage": true, "x": 1}, "model": "m"})
        );
        for other in ["null", "7", r#""yes""#, "[true]"] {
            assert_eq!(
                requested(&format!(r#"{{"model":"m","stream_options":{other}}}"#)),
                json!({"model": "m", "stream_options": {"include_usage": true}})
            );
        }
        assert_eq!(
            requested("{}"),
            json!({"stream_options": {"include_usage": true}})
        );
    }

    #[test]
    fn every_copy_of_a_repeated_field_asks_for_usage() {
        let body = with_usage_requested(
            br#"{"stream_options":{"include_usage":false},"stream_options":{"include_usage":false,"include_usage":0}}"#,
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"stream_options":{"include_usage":true},"stream_options":{"include_usage":true,"include_usage":true}}"#
        );
    }

    #[test]
    fn escaped_keys_are_the_same_field() {
        assert_eq!(
            requested(r#"{"stream\u005foptions":{"include_usage":false}}"#),
            json!({"stream_options": {"include_usage": true}})
        );
    }
}
