//! A ledger row's request id as a block holds it. keygate's own ids
//! (`x-request-id`, a UUID in its canonical form: 36 lowercase characters)
//! are kept as their 16 bytes; an id a client sent in any other form, as
//! its text. Either reads back as the same string.
//!
//! Why: the id was about half of a packed row (37 of ~75 bytes for
//! keygate-bench's rows), and each byte of a block is copied several times
//! on its way to the disk (laid out, bound by sqlx, copied by SQLite into
//! its record, its pages and the WAL). As 16 bytes a row takes about a
//! quarter less room on disk.

use std::fmt;

use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;

/// A request id, borrowed from a row or from a block's bytes. Made by
/// `of`, so one id has one form and rows compare equal by their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub enum RequestId<'a> {
    /// A canonical UUID's bytes.
    Uuid([u8; 16]),
    /// Any other id, as it came.
    Text(&'a str),
}

impl<'a> RequestId<'a> {
    /// `id`, as 16 bytes if it is a UUID written as keygate writes them
    /// (hyphenated, lowercase), else as its text.
    pub fn of(id: &'a str) -> Self {
        canonical_uuid(id.as_bytes()).map_or(Self::Text(id), Self::Uuid)
    }
}

/// The id as the client was answered with it.
impl fmt::Display for RequestId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uuid(bytes) => uuid::Uuid::from_bytes(*bytes).hyphenated().fmt(f),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// Where the hyphens of a canonical UUID are.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// The 16 bytes of `text` if it is a UUID in the one form that formats
/// back to the same text: 36 characters, hyphens at 8, 13, 18 and 23,
/// lowercase hex digits elsewhere.
fn canonical_uuid(text: &[u8]) -> Option<[u8; 16]> {
    let text: &[u8; 36] = text.try_into().ok()?;
    if HYPHENS.iter().any(|&at| text[at] != b'-') {
        return None;
    }
    let mut digits = text
        .iter()
        .enumerate()
        .filter(|(at, _)| !HYPHENS.contains(at))
        .map(|(_, &digit)| hex_value(digit));
    let mut bytes = [0u8; 16];
    for byte in &mut bytes {
        let high = digits.next()??;
        let low = digits.next()??;
        *byte = high << 4 | low;
    }
    Some(bytes)
}

/// A lowercase hex digit's value (uppercase would not format back).
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygates_own_ids_are_kept_as_bytes_and_read_back_the_same() {
        for _ in 0..100 {
            let made = uuid::Uuid::new_v4().to_string();
            let id = RequestId::of(&made);
            assert!(matches!(id, RequestId::Uuid(_)), "{made}");
            assert_eq!(id.to_string(), made);
        }
        let nil = "00000000-0000-0000-0000-000000000000";
        assert_eq!(RequestId::of(nil), RequestId::Uuid([0; 16]));
        let max = "ffffffff-ffff-ffff-ffff-ffffffffffff";
        assert_eq!(RequestId::of(max), RequestId::Uuid([0xff; 16]));
        assert_eq!(RequestId::of(max).to_string(), max);
    }

    #[test]
    fn any_other_id_is_kept_as_it_came() {
        let made = uuid::Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap();
        for other in [
            String::new(),
            "req-1".to_string(),
            made.to_string().to_uppercase(),
            made.simple().to_string(),
            made.braced().to_string(),
            made.urn().to_string(),
            format!("{made} "),
            made.to_string().replacen('-', "_", 1),
            made.to_string()
                .replacen(|c: char| c.is_ascii_digit(), "g", 1),
            "é".repeat(18),
        ] {
            let id = RequestId::of(&other);
            assert_eq!(id, RequestId::Text(&other));
            assert_eq!(id.to_string(), other);
        }
    }

    #[test]
    fn postcard_writes_a_uuid_in_17_bytes() {
        let made = uuid::Uuid::new_v4().to_string();
        let bytes = postcard::to_allocvec(&RequestId::of(&made)).unwrap();
        assert_eq!(bytes.len(), 17);
        assert_eq!(bytes[0], 0);
        let text = postcard::to_allocvec(&RequestId::of("req-1")).unwrap();
        assert_eq!(text, b"\x01\x05req-1");
        let back: RequestId<'_> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_string(), made);
    }
}
