//! Reading a few fields of a JSON body without building it into a tree.
//! A field is kept as the `RawValue` it is in the body (borrowed: no copy)
//! and read as the one type keygate wants from it, so a 30 MB array where a
//! number belongs costs a failed read, not a 30 MB `serde_json::Value`
//! (about 40 times its size in memory). `value_spans` finds where a
//! top-level field's value sits in the body, so it can be replaced by
//! splicing bytes.

use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// For `#[serde(borrow, default, deserialize_with = "raw_json::keep_null")]`
/// on an `Option<&RawValue>` field: a `null` is `Some("null")`, so a field
/// that is there but null can be told from one that is missing.
pub fn keep_null<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// The value as `T` if it is one; arrays and objects are refused at their
/// first byte, without being read through.
pub fn read<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    match raw.get().as_bytes().first() {
        Some(b'[' | b'{') => None,
        _ => serde_json::from_str(raw.get()).ok(),
    }
}

pub fn as_string(raw: &RawValue) -> Option<String> {
    read(raw)
}

pub fn as_u64(raw: &RawValue) -> Option<u64> {
    read(raw)
}

pub fn as_f64(raw: &RawValue) -> Option<f64> {
    read(raw)
}

pub fn as_bool(raw: &RawValue) -> Option<bool> {
    read(raw)
}

/// A JSON object read as the struct `T`. Only an object: a derived
/// `Deserialize` also reads a struct from an array of its fields in order.
pub fn object<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    match raw.get().as_bytes().first() {
        Some(b'{') => serde_json::from_str(raw.get()).ok(),
        _ => None,
    }
}

/// `include_usage` of a `stream_options` object: true only if it is `true`.
pub fn include_usage(stream_options: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Options<'a> {
        #[serde(borrow)]
        include_usage: Option<&'a RawValue>,
    }
    object::<Options>(stream_options)
        .and_then(|options| options.include_usage)
        .and_then(as_bool)
        .unwrap_or(false)
}

/// Where each value of the top-level field `key` of the object `json` is, in
/// order (JSON allows a key twice). `Err` if `json` is not a JSON object.
pub fn value_spans(json: &[u8], key: &str) -> Result<Vec<Range<usize>>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let values = deserializer.deserialize_map(FieldValues { key })?;
    deserializer.end()?;
    // A borrowed RawValue points into `json`; its address says where.
    let base = json.as_ptr() as usize;
    Ok(values
        .into_iter()
        .map(|raw| {
            let start = raw.get().as_ptr() as usize - base;
            start..start + raw.get().len()
        })
        .collect())
}

/// The raw values of one key of a map, every other value skipped unread.
struct FieldValues<'k> {
    key: &'k str,
}

impl<'de> Visitor<'de> for FieldValues<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        while let Some(wanted) = map.next_key_seed(KeyIs(self.key))? {
            if wanted {
                values.push(map.next_value::<&RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(values)
    }
}

/// Reads a map key as whether it is the wanted one, without keeping it.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> &RawValue {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn scalars_are_read_and_containers_refused_unread() {
        assert_eq!(as_u64(raw("5")), Some(5));
        assert_eq!(as_u64(raw("5.5")), None);
        assert_eq!(as_f64(raw("5")), Some(5.0));
        assert_eq!(as_bool(raw("true")), Some(true));
        assert_eq!(as_string(raw(r#""a\"b""#)).as_deref(), Some("a\"b"));
        assert_eq!(as_u64(raw("[1]")), None);
        assert_eq!(as_string(raw(r#"{"a":"b"}"#)), None);
        assert!(is_null(raw("null")) && !is_null(raw("0")));
        assert!(include_usage(raw(r#"{"include_usage":true,"x":[1]}"#)));
        assert!(!include_usage(raw(r#"{"include_usage":"yes"}"#)));
        assert!(!include_usage(raw("[true]")));
    }

    #[test]
    fn spans_find_every_top_level_value_of_a_key() {
        let json = br#"{"a": {"s": 1}, "s": [1, {"s": 2}], "b": "s", "s" :null }"#;
        let spans = value_spans(json, "s").unwrap();
        let found: Vec<&str> = spans
            .into_iter()
            .map(|span| std::str::from_utf8(&json[span]).unwrap())
            .collect();
        assert_eq!(found, [r#"[1, {"s": 2}]"#, "null"]);
        assert!(value_spans(b"[1]", "s").is_err());
        assert!(value_spans(br#"{"s":1} x"#, "s").is_err());
    }
}
