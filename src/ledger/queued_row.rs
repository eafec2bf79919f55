//! How the ledger's queue holds one row: its integers at fixed width, its
//! strings' lengths, then the strings. `append` writes it straight from a
//! `UsageRow`; `read` gives it back as `RowFields` borrowing the strings.
//!
//! Why not postcard, as the blocks are stored: the queue's bytes never
//! leave the process that wrote them, so they need no varints, no schema
//! and no version, and serde's walk over 22 fields both ways was most of
//! what a row cost before the writer could sum it (0.2 µs to serialise on
//! the request path and 0.2 µs to read back, in `benches/ledger`'s keep-up
//! phase). A row here is 119 bytes of integers and lengths, plus 4 per key
//! tried, plus its strings.

use crate::domain::UsageRow;
use crate::store::usage::block::RowFields;

/// The length written for a string that is `None`.
const NONE: u32 = u32::MAX;

const UNPRICED: u8 = 1;
const HAS_TTFT: u8 = 2;

/// Appends `row` to `out`: the fixed-width fields, the strings' lengths,
/// then the strings' bytes together (so `read` checks them as UTF-8 once).
pub fn append(row: &UsageRow, out: &mut Vec<u8>) {
    let strings = [
        Some(row.request_id.as_str()),
        Some(row.route),
        row.provider.map(|p| p.as_str()),
        row.model_requested.as_deref(),
        row.model_answered.as_deref(),
        row.key_id.as_deref(),
        row.error_class.as_deref(),
        row.client_key.as_deref(),
        row.cache_scope.as_deref(),
    ];
    let string_bytes: usize = strings.iter().flatten().map(|s| s.len()).sum::<usize>()
        + row.keys_tried.iter().map(String::len).sum::<usize>();
    out.reserve(HEAD + 4 * row.keys_tried.len() + string_bytes);

    // The head is put together on the stack and appended in one copy: a
    // copy per field into the queue's buffer cost about twice as much.
    let mut head = [0u8; HEAD];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        head[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&row.at_ms.to_le_bytes());
    put(&row.attempts.to_le_bytes());
    put(&row.status.to_le_bytes());
    let mut flags = 0;
    if row.unpriced {
        flags |= UNPRICED;
    }
    if row.ttft_us.is_some() {
        flags |= HAS_TTFT;
    }
    put(&[flags]);
    for number in [
        row.usage.input_tokens,
        row.usage.output_tokens,
        row.usage.cache_read_input_tokens,
        row.usage.cache_creation_input_tokens,
        row.usage.reasoning_tokens,
        row.cost_nanos,
        row.latency_us,
        row.ttft_us.unwrap_or(0),
    ] {
        put(&number.to_le_bytes());
    }
    put(&length(Some(row.keys_tried.len())));
    for string in strings {
        put(&length(string.map(str::len)));
    }
    out.extend_from_slice(&head);
    for key in &row.keys_tried {
        out.extend_from_slice(&length(Some(key.len())));
    }
    let keys = row.keys_tried.iter().map(String::as_str);
    for string in strings.into_iter().flatten().chain(keys) {
        out.extend_from_slice(string.as_bytes());
    }
}

/// Bytes before the lengths: at_ms, attempts, status, flags, 8 numbers.
const FIXED: usize = 8 + 4 + 2 + 1 + 8 * 8;

/// The fixed fields, the number of keys tried and the strings' lengths.
const HEAD: usize = FIXED + 4 + 4 * STRINGS;

/// Strings before the keys tried: request id, route, provider, the two
/// models, key id, error class, client key, cache scope.
const STRINGS: usize = 9;

/// A length as written (`NONE` for no string). A string or list of 4 GiB
/// cannot reach the ledger: request bodies and headers are bounded far
/// below.
fn length(length: Option<usize>) -> [u8; 4] {
    let length = length.map_or(NONE, |n| u32::try_from(n).unwrap_or(NONE - 1));
    length.to_le_bytes()
}

/// Reads the row at the start of `bytes`, and what follows it. `None` if
/// the bytes do not hold a whole row (never, for bytes `append` wrote).
pub fn read(bytes: &[u8]) -> Option<(RowFields<'_>, &[u8])> {
    let mut reader = Reader { rest: bytes };
    let at_ms = i64::from_le_bytes(reader.array()?);
    let attempts = u32::from_le_bytes(reader.array()?);
    let status = u16::from_le_bytes(reader.array()?);
    let [flags] = reader.array()?;
    let mut number = || reader.array().map(u64::from_le_bytes);
    let (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens) =
        (number()?, number()?, number()?, number()?);
    let (reasoning_tokens, cost_nanos, latency_us, ttft_us) =
        (number()?, number()?, number()?, number()?);
    let tried = reader.length()?? as usize;
    let mut lengths = [None; STRINGS];
    for length in &mut lengths {
        *length = reader.length()?;
    }
    // A count past the bytes left is not a row (and sizes nothing).
    let (key_lengths, _) = reader.take(tried.checked_mul(4)?)?.as_chunks::<4>();
    let key_lengths = key_lengths.iter().map(|&bytes| u32::from_le_bytes(bytes));
    let total = lengths
        .into_iter()
        .flatten()
        .chain(key_lengths.clone())
        .try_fold(0usize, |sum, n| sum.checked_add(n as usize))?;
    let text = std::str::from_utf8(reader.take(total)?).ok()?;
    let mut at = 0;
    let mut next = |length: u32| {
        let string = text.get(at..at + length as usize);
        at += length as usize;
        string
    };
    let mut strings = [None; STRINGS];
    for (string, length) in strings.iter_mut().zip(lengths) {
        if let Some(length) = length {
            *string = Some(next(length)?);
        }
    }
    let keys_tried = key_lengths.map(&mut next).collect::<Option<Vec<_>>>()?;
    let [
        request_id,
        route,
        provider,
        model_requested,
        model_answered,
        key_id,
        error_class,
        client_key,
        cache_scope,
    ] = strings;
    let row = RowFields {
        at_ms,
        request_id: request_id?,
        route: route?,
        provider,
        model_requested,
        model_answered,
        key_id,
        attempts,
        keys_tried,
        status,
        error_class,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_write_tokens,
        reasoning_tokens,
        cost_nanos,
        latency_us,
        ttft_us: (flags & HAS_TTFT != 0).then_some(ttft_us),
        client_key,
        unpriced: flags & UNPRICED != 0,
        cache_scope,
    };
    Some((row, reader.rest))
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*head)
    }

    /// `Some(None)` for a length written as `NONE`; `None` if the bytes
    /// end first.
    fn length(&mut self) -> Option<Option<u32>> {
        let length = u32::from_le_bytes(self.array()?);
        Some((length != NONE).then_some(length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ProviderKind, Usage};

    fn plain() -> UsageRow {
        UsageRow {
            at_ms: 1_700_000_000_123,
            request_id: "req-1".into(),
            route: "/v1/messages",
            status: 499,
            ..UsageRow::default()
        }
    }

    fn full() -> UsageRow {
        UsageRow {
            at_ms: -5,
            request_id: "ünïcode-id".into(),
            route: "/v1/chat/completions",
            provider: Some(ProviderKind::OpenAI),
            model_requested: Some("gpt-4o".into()),
            model_answered: Some(String::new()),
            key_id: Some("key_b".into()),
            attempts: u32::MAX,
            keys_tried: vec!["key_a".into(), "key_b".into(), String::new()],
            status: 200,
            error_class: Some("stream_error".into()),
            usage: Usage {
                input_tokens: 1,
                output_tokens: 2,
                cache_creation_input_tokens: 3,
                cache_creation_1h_tokens: 0,
                cache_read_input_tokens: 4,
                reasoning_tokens: u64::MAX,
            },
            cost_nanos: 6,
            latency_us: 7,
            ttft_us: Some(0),
            client_key: Some("fp_123".into()),
            unpriced: true,
            cache_scope: Some("org_9".into()),
        }
    }

    #[test]
    fn rows_read_back_as_written_one_after_the_other() {
        let mut long = plain();
        long.model_requested = Some("m".repeat(100_000));
        let rows = [full(), plain(), long];
        let mut bytes = Vec::new();
        for row in &rows {
            append(row, &mut bytes);
        }
        let mut rest = bytes.as_slice();
        for row in &rows {
            let (read_back, after) = read(rest).expect("a whole row");
            assert_eq!(read_back, RowFields::of(row));
            rest = after;
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn cut_bytes_are_not_a_row() {
        let mut bytes = Vec::new();
        append(&full(), &mut bytes);
        for cut in 0..bytes.len() {
            assert!(read(&bytes[..cut]).is_none(), "cut at {cut}");
        }
    }
}
