//! Ledger rows packed into blocks: the raw rows of one write are stored as
//! one `usage_blocks` row whose `rows` column holds them all, encoded
//! together with postcard (varints) and one table of the names they
//! repeat (routes, providers, models, key ids, error classes, ...).
//!
//! One database row per request cost the ledger about 5 µs of CPU per
//! request: binding 23 values, a B-tree insert into the table and its time
//! index, and the WAL pages of ~200 bytes a row (`benches/ledger`, the
//! keep-up phase). A block is one insert of a few dozen bytes a row. The
//! raw rows are read only for the ends of a totals range (at most ten
//! minutes), the request pages and retention, all of which decode the
//! blocks they touch in Rust.
//!
//! A row's id is its block's id times `ROWS_PER_ID_BLOCK` plus its index
//! in the block as written: stable for the row's life (pruning the older
//! start of a block keeps the other rows' indexes, `first_index`), and in
//! write order, as the page route's tie-breaker needs.

use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;

use super::int;
use super::page::LedgerEntry;
use super::request_id::RequestId;
use crate::domain::UsageRow;

/// The encoding of the `rows` column written now (the `format` column), so
/// a later one can be told apart. 2: request ids as `RequestId`s (a UUID
/// in 16 bytes); 1 (still read): as text.
pub const FORMAT: i64 = 2;

/// The encoding before request ids were kept as `RequestId`s.
const FORMAT_TEXT_IDS: i64 = 1;

/// Most rows in one block: a page decodes at most this many rows per
/// block it reads, and ids leave room for them.
pub const MAX_ROWS: usize = 4_096;

/// Row ids per block id (`MAX_ROWS` fits).
const ROWS_PER_ID_BLOCK: i64 = 1 << 16;

/// The id of the row at `index` (as written) of block `block_id`.
pub fn row_id(block_id: i64, index: u32) -> i64 {
    block_id
        .saturating_mul(ROWS_PER_ID_BLOCK)
        .saturating_add(i64::from(index))
}

/// One raw row, borrowed from a `UsageRow` to be packed or from a block's
/// bytes once unpacked.
/// Unknown names are `None`, as in `UsageRow`.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFields<'a> {
    pub at_ms: i64,
    pub request_id: RequestId<'a>,
    pub route: &'a str,
    pub provider: Option<&'a str>,
    pub model_requested: Option<&'a str>,
    pub model_answered: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub attempts: u32,
    pub keys_tried: KeysTried<'a>,
    pub status: u16,
    pub error_class: Option<&'a str>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_nanos: u64,
    pub latency_us: u64,
    pub ttft_us: Option<u64>,
    pub client_key: Option<&'a str>,
    pub unpriced: bool,
    pub cache_scope: Option<&'a str>,
}

/// The keys a row tried, borrowed as its source holds them: a request's
/// row is packed without collecting them into a list of its own (an
/// allocation per request).
#[derive(Debug, Clone)]
pub enum KeysTried<'a> {
    /// A `UsageRow`'s.
    Owned(&'a [String]),
    /// Names borrowed from anywhere else (a block's bytes, a test).
    Borrowed(Vec<&'a str>),
}

impl<'a> KeysTried<'a> {
    pub fn len(&self) -> usize {
        match self {
            Self::Owned(keys) => keys.len(),
            Self::Borrowed(keys) => keys.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key ids, in the order tried. (One of the two halves chained is
    /// empty: one iterator type for either variant, without boxing.)
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        let (owned, borrowed) = match self {
            Self::Owned(keys) => (Some(keys.iter().map(String::as_str)), None),
            Self::Borrowed(keys) => (None, Some(keys.iter().copied())),
        };
        owned
            .into_iter()
            .flatten()
            .chain(borrowed.into_iter().flatten())
    }
}

impl<'a> From<Vec<&'a str>> for KeysTried<'a> {
    fn from(keys: Vec<&'a str>) -> Self {
        Self::Borrowed(keys)
    }
}

/// Equal when the same ids were tried in the same order, however held.
impl PartialEq for KeysTried<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a> RowFields<'a> {
    pub fn of(row: &'a UsageRow) -> Self {
        Self {
            at_ms: row.at_ms,
            request_id: RequestId::of(&row.request_id),
            route: row.route,
            provider: row.provider.map(|p| p.as_str()),
            model_requested: row.model_requested.as_deref(),
            model_answered: row.model_answered.as_deref(),
            key_id: row.key_id.as_deref(),
            attempts: row.attempts,
            keys_tried: KeysTried::Owned(&row.keys_tried),
            status: row.status,
            error_class: row.error_class.as_deref(),
            input_tokens: row.usage.input_tokens,
            output_tokens: row.usage.output_tokens,
            cache_read_tokens: row.usage.cache_read_input_tokens,
            cache_write_tokens: row.usage.cache_creation_input_tokens,
            reasoning_tokens: row.usage.reasoning_tokens,
            cost_nanos: row.cost_nanos,
            latency_us: row.latency_us,
            ttft_us: row.ttft_us,
            client_key: row.client_key.as_deref(),
            unpriced: row.unpriced,
            cache_scope: row.cache_scope.as_deref(),
        }
    }

    /// The model the row counts under (`UsageRow::model`'s rule).
    pub fn model(&self) -> Option<&'a str> {
        self.model_answered.or(self.model_requested)
    }

    /// The row as the page route gives it.
    pub fn to_entry(&self, id: i64) -> LedgerEntry {
        let owned = |name: Option<&str>| name.map(str::to_string);
        LedgerEntry {
            id,
            at_ms: self.at_ms,
            request_id: self.request_id.to_string(),
            route: self.route.to_string(),
            provider: owned(self.provider),
            model_requested: owned(self.model_requested),
            model_answered: owned(self.model_answered),
            key_id: owned(self.key_id),
            attempts: i64::from(self.attempts),
            keys_tried: self.keys_tried.iter().map(str::to_string).collect(),
            status: i64::from(self.status),
            error_class: owned(self.error_class),
            input_tokens: int(self.input_tokens),
            output_tokens: int(self.output_tokens),
            cache_read_tokens: int(self.cache_read_tokens),
            cache_write_tokens: int(self.cache_write_tokens),
            reasoning_tokens: int(self.reasoning_tokens),
            cost_nanos: int(self.cost_nanos),
            latency_us: int(self.latency_us),
            ttft_us: self.ttft_us.map(int),
            client_key: owned(self.client_key),
            unpriced: self.unpriced,
            cache_scope: owned(self.cache_scope),
        }
    }
}

/// A block ready to be inserted.
#[derive(Debug)]
pub struct PackedBlock {
    pub first_at_ms: i64,
    pub last_at_ms: i64,
    pub row_count: i64,
    pub bytes: Vec<u8>,
}

/// The `rows` column: names once, rows referring to them. Read through
/// serde; written by `BlockWriter`, to the same bytes (serde's side is
/// kept for tests to hold the two together). `Id` is how a row's request
/// id is written: a `RequestId` (`FORMAT`), or text (`FORMAT_TEXT_IDS`).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct Encoded<'a, Id> {
    /// The index the first row had when the block was written.
    first_index: u32,
    /// The earliest row's `at_ms`; rows store their offset from it.
    base_ms: i64,
    #[serde(borrow)]
    names: Vec<&'a str>,
    rows: Vec<EncodedRow<Id>>,
}

/// A row with names as `names` positions plus one (0: none).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct EncodedRow<Id> {
    at_offset_ms: u64,
    request_id: Id,
    route: u32,
    provider: u32,
    model_requested: u32,
    model_answered: u32,
    key_id: u32,
    attempts: u32,
    keys_tried: Vec<u32>,
    status: u16,
    error_class: u32,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    reasoning_tokens: u64,
    cost_nanos: u64,
    latency_us: u64,
    ttft_us: Option<u64>,
    client_key: u32,
    unpriced: bool,
    cache_scope: u32,
}

/// Packs `rows` (at most `MAX_ROWS`, at least one) into one block, in order
/// of arrival; `first_index` is the index its first row keeps.
pub fn pack(rows: &[RowFields<'_>], first_index: u32) -> PackedBlock {
    debug_assert!(!rows.is_empty() && rows.len() <= MAX_ROWS);
    let mut block = BlockWriter::new(first_index);
    for row in rows {
        block.push(row);
    }
    block.finish()
}

/// A row's names as positions in its block's table (0: none), for summing
/// rows by name without hashing the names again (`rollup::BlockSums`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NamePositions {
    pub provider: u32,
    /// The answering model's, else the requested one's (`RowFields::model`).
    pub model: u32,
    pub key_id: u32,
    pub error_class: u32,
}

/// One block, packed a row at a time as rows arrive: the ledger's writer
/// feeds it straight from its queue (`batch::Batch`), so no row is held
/// in any other form on the way.
///
/// Each row is encoded when it is pushed, but for its time (its offset
/// from the block's earliest row, known only at the end); `finish` puts
/// the rows in time order behind the names. The encoding is written here
/// by hand, not through serde: it is the bytes postcard gives `Encoded`
/// (which `Unpacked::read` decodes), and the test
/// `hand_encoding_is_postcards` holds the two to the same bytes. Serde's
/// walk over a row's 21 fields was a third of the cost of packing it.
pub struct BlockWriter {
    first_index: u32,
    names: Names,
    /// Each row's `at_ms` and where its encoding lies in `bodies`.
    rows: Vec<(i64, std::ops::Range<usize>)>,
    bodies: Vec<u8>,
}

impl BlockWriter {
    /// An empty block whose first row will have index `first_index`.
    pub fn new(first_index: u32) -> Self {
        Self::with_room(first_index, 0, 0)
    }

    /// `new`, with room reserved for `rows` rows of `bytes` in all.
    pub fn with_room(first_index: u32, rows: usize, bytes: usize) -> Self {
        Self {
            first_index,
            names: Names::default(),
            rows: Vec::with_capacity(rows),
            bodies: Vec::with_capacity(bytes),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds `row` (a block holds at most `MAX_ROWS`; the caller cuts).
    pub fn push(&mut self, row: &RowFields<'_>) -> NamePositions {
        let names = &mut self.names;
        let out = &mut self.bodies;
        let start = out.len();
        let (requested, answered) = (
            names.of(REQUESTED, row.model_requested),
            names.of(ANSWERED, row.model_answered),
        );
        let positions = NamePositions {
            provider: names.of(PROVIDER, row.provider),
            // `RowFields::model`'s rule, on positions (0 is none).
            model: if answered != 0 { answered } else { requested },
            key_id: names.of(KEY, row.key_id),
            error_class: names.of(ERROR, row.error_class),
        };
        let route = names.of(ROUTE, Some(row.route));
        // Names are listed in the order first met, as `Encoded` lists them.
        let client_key = names.of(CLIENT_KEY, row.client_key);
        // A request's cache scope and the keys it tried are mostly the key
        // that answered it, whose position is at hand.
        let the_key = |name: &str| row.key_id.is_some_and(|key| same_name(key, name));
        let cache_scope = match row.cache_scope {
            Some(scope) if the_key(scope) => positions.key_id,
            scope => names.of(CACHE_SCOPE, scope),
        };
        put_request_id(out, row.request_id);
        let mut varints = Varints::default();
        for number in [
            route,
            positions.provider,
            requested,
            answered,
            positions.key_id,
            row.attempts,
        ] {
            varints.put(u64::from(number));
        }
        varints.put(row.keys_tried.len() as u64);
        varints.move_to(out);
        for key in row.keys_tried.iter() {
            let position = if the_key(key) {
                positions.key_id
            } else {
                names.of(KEY, Some(key))
            };
            put_varint(out, u64::from(position));
        }
        varints.put(u64::from(row.status));
        varints.put(u64::from(positions.error_class));
        for number in [
            row.input_tokens,
            row.output_tokens,
            row.cache_read_tokens,
            row.cache_write_tokens,
            row.reasoning_tokens,
            row.cost_nanos,
            row.latency_us,
        ] {
            varints.put(number);
        }
        match row.ttft_us {
            None => varints.put(0),
            Some(ttft_us) => {
                varints.put(1);
                varints.put(ttft_us);
            }
        }
        varints.put(u64::from(client_key));
        varints.put(u64::from(row.unpriced));
        varints.put(u64::from(cache_scope));
        varints.move_to(out);
        self.rows.push((row.at_ms, start..out.len()));
        positions
    }

    /// The name at `position` (as `push` gave it); "" for none.
    pub fn name(&self, position: u32) -> &str {
        match position {
            0 => "",
            n => self.names.list.get(n as usize - 1).map_or("", |name| name),
        }
    }

    /// The block's bytes: the names, then the rows oldest first (rows of
    /// one millisecond in the order they were pushed).
    pub fn finish(mut self) -> PackedBlock {
        sort_by_time(&mut self.rows);
        let base_ms = self.rows.first().map_or(0, |(at_ms, _)| *at_ms);
        let last_at_ms = self.rows.last().map_or(0, |(at_ms, _)| *at_ms);
        let names: Vec<&str> = self.names.list.iter().map(|name| &**name).collect();
        // `Encoded`'s fields before its rows. Integers, strings and lists
        // always serialise.
        let mut bytes =
            postcard::to_allocvec(&(self.first_index, base_ms, names)).unwrap_or_default();
        bytes.reserve(self.bodies.len() + 3 * self.rows.len() + 5);
        put_varint(&mut bytes, self.rows.len() as u64);
        for (at_ms, body) in &self.rows {
            // Sorted: never below the base.
            put_varint(&mut bytes, at_ms.abs_diff(base_ms));
            bytes.extend_from_slice(&self.bodies[body.clone()]);
        }
        PackedBlock {
            first_at_ms: base_ms,
            last_at_ms,
            row_count: self.rows.len() as i64,
            bytes,
        }
    }
}

/// Sorts rows by time, stably: rows of one millisecond keep their order of
/// writing. Rows come nearly in order (each is recorded when its request
/// ends, stamped when it began), so each is moved back past the few later
/// ones before it, the way insertion sort does: a comparison or two a row,
/// against about nine for `sort_by_key` (which was 4 % of the ledger's
/// instructions). Rows that come far out of order (long streams among
/// short requests) make it fall back to `sort_by_key` after a few moves a
/// row on average, so it never costs much more.
fn sort_by_time(rows: &mut [(i64, std::ops::Range<usize>)]) {
    let mut moves_left = 8 * rows.len();
    for i in 1..rows.len() {
        let mut j = i;
        while j > 0 && rows[j - 1].0 > rows[j].0 {
            if moves_left == 0 {
                // Equal times were never swapped: still in writing order.
                rows.sort_by_key(|(at_ms, _)| *at_ms);
                return;
            }
            rows.swap(j - 1, j);
            moves_left -= 1;
            j -= 1;
        }
    }
}

/// An unsigned integer as postcard writes it: seven bits a byte, least
/// significant first, the high bit set on every byte but the last.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A row's integers, gathered as varints on the stack and added to the
/// block's bytes in one copy, instead of pushing each byte onto the
/// block's `Vec` (a capacity check and a store of its length per byte):
/// packing a row's fields took a tenth fewer instructions under
/// cachegrind.
struct Varints {
    bytes: [u8; Varints::ROOM],
    len: usize,
}

impl Varints {
    /// The most a row gathers between two `move_to`s: 7 integers before
    /// its keys tried and 14 after (the ttft's flag and the unpriced flag
    /// among them), each at most 10 bytes as a varint.
    const ROOM: usize = 14 * 10;

    /// Adds `value` as postcard writes it (see `put_varint`). A row adds
    /// no more than `ROOM` bytes in between `move_to`s, so the indexing
    /// stays in bounds.
    fn put(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes[self.len] = value as u8 | 0x80;
            self.len += 1;
            value >>= 7;
        }
        self.bytes[self.len] = value as u8;
        self.len += 1;
    }

    /// Appends what was gathered to `out` and starts again.
    fn move_to(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes[..self.len]);
        self.len = 0;
    }
}

impl Default for Varints {
    fn default() -> Self {
        Self {
            bytes: [0; Self::ROOM],
            len: 0,
        }
    }
}

/// A request id as postcard writes a `RequestId`: its variant's index,
/// then a UUID's 16 bytes or the text as a string.
fn put_request_id(out: &mut Vec<u8>, id: RequestId<'_>) {
    match id {
        RequestId::Uuid(bytes) => {
            out.push(0);
            out.extend_from_slice(&bytes);
        }
        RequestId::Text(text) => {
            out.push(1);
            put_str(out, text);
        }
    }
}

/// A string as postcard writes it: its length, then its bytes.
fn put_str(out: &mut Vec<u8>, value: &str) {
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

/// A row's name fields, as indexes into `Names::recent`.
const REQUESTED: usize = 0;
const ANSWERED: usize = 1;
const PROVIDER: usize = 2;
const KEY: usize = 3;
const ERROR: usize = 4;
const ROUTE: usize = 5;
const CLIENT_KEY: usize = 6;
const CACHE_SCOPE: usize = 7;
const FIELDS: usize = 8;

/// How many of its latest names each field remembers. Keys taken in turn
/// (rotation, or the balancer spreading load) come back within a few rows,
/// as do a few models; with one remembered name, every key change hashed.
const RECENT: usize = 4;

/// The names of one block, each once. Owned: a block outlives the
/// requests whose rows it holds.
#[derive(Default)]
struct Names {
    list: Vec<Box<str>>,
    /// Each name's position in `list` plus one.
    positions: std::collections::HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    /// The position each name field (`REQUESTED`...) had in the last row
    /// (0: none yet).
    last: [u32; FIELDS],
    /// The positions each field had lately, tried in slot order when the
    /// last one is not it.
    recent: [[u32; RECENT]; FIELDS],
    /// The slot of `recent` the field's next new position takes, in turn.
    next_slot: [usize; FIELDS],
}

impl Names {
    /// The position of `name` (0 for none), given in `field`. Rows in a
    /// row mostly share their route, provider and model, and their keys
    /// come from a few: the field's name in the last row is tried first
    /// (here, in line), then its recent names, and only then is `name`
    /// hashed. The lookups were 690 of the ~5,000 instructions the ledger
    /// spent on a request when every one hashed, under cachegrind; with
    /// only the last name tried (through a call, and `memcmp`), packing a
    /// row and its names took about 1,090, and now about 730.
    /// Always in line: the compiler would not, and the call cost as much
    /// as the comparison.
    #[inline(always)]
    fn of(&mut self, field: usize, name: Option<&str>) -> u32 {
        let Some(name) = name else { return 0 };
        let last = self.last[field];
        if let Some(known) = self.list.get((last as usize).wrapping_sub(1))
            && same_name(known, name)
        {
            return last;
        }
        let position = self.of_other(field, name);
        self.last[field] = position;
        position
    }

    /// `of`, for a name other than the field's last one.
    #[inline(never)]
    fn of_other(&mut self, field: usize, name: &str) -> u32 {
        let Self {
            list,
            positions,
            recent,
            next_slot,
            ..
        } = self;
        let recent = &mut recent[field];
        for &position in recent.iter() {
            if let Some(known) = list.get((position as usize).wrapping_sub(1))
                && same_name(known, name)
            {
                return position;
            }
        }
        let position = match positions.get(name) {
            Some(&position) => position,
            None => {
                list.push(name.into());
                let position = list.len() as u32;
                positions.insert(name.into(), position);
                position
            }
        };
        let slot = &mut next_slot[field];
        recent[*slot % RECENT] = position;
        *slot = (*slot + 1) % RECENT;
        position
    }
}

/// Whether two names are equal, compared eight bytes at a time in line:
/// names are short, and calling `memcmp` for each comparison cost more
/// than comparing (it was 6 % of the ledger's instructions).
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len < 4 {
        // The first, middle and last bytes are all of up to three.
        return len == 0 || (a[0] == b[0] && a[len / 2] == b[len / 2] && a[len - 1] == b[len - 1]);
    }
    if len < 8 {
        // The first and last four bytes overlap to cover them all.
        let word = |bytes: &[u8; 4]| u32::from_ne_bytes(*bytes);
        return a.first_chunk::<4>().map(word) == b.first_chunk::<4>().map(word)
            && a.last_chunk::<4>().map(word) == b.last_chunk::<4>().map(word);
    }
    let word = |bytes: &[u8; 8]| u64::from_ne_bytes(*bytes);
    let (a_words, _) = a.as_chunks::<8>();
    let (b_words, _) = b.as_chunks::<8>();
    // The last eight bytes cover what the whole words leave over.
    a_words.iter().zip(b_words).all(|(x, y)| word(x) == word(y))
        && a.last_chunk::<8>().map(word) == b.last_chunk::<8>().map(word)
}

/// A block's bytes could not be read: written by a later format, or damaged.
#[derive(Debug, thiserror::Error)]
#[error("unreadable usage block (format {format}): {reason}")]
pub struct Unreadable {
    pub format: i64,
    pub reason: String,
}

/// A stored block, unpacked: its rows borrow from the bytes.
pub struct Unpacked<'a> {
    first_index: u32,
    rows: Vec<RowFields<'a>>,
}

impl<'a> Unpacked<'a> {
    /// Unpacks the `rows` column of a block stored in `format`.
    pub fn read(format: i64, bytes: &'a [u8]) -> Result<Self, Unreadable> {
        match format {
            FORMAT => Self::unpack::<RequestId<'a>>(format, bytes, |id| id),
            FORMAT_TEXT_IDS => Self::unpack::<&'a str>(format, bytes, RequestId::of),
            _ => Err(Unreadable {
                format,
                reason: "unknown format".into(),
            }),
        }
    }

    /// `read`, for a format whose rows write their request ids as `Id`.
    fn unpack<Id: Deserialize<'a> + Copy>(
        format: i64,
        bytes: &'a [u8],
        request_id: impl Fn(Id) -> RequestId<'a>,
    ) -> Result<Self, Unreadable> {
        let unreadable = |reason: String| Unreadable { format, reason };
        let encoded: Encoded<'a, Id> =
            postcard::from_bytes(bytes).map_err(|error| unreadable(error.to_string()))?;
        let names = &encoded.names;
        let name = |position: u32| -> Result<Option<&'a str>, Unreadable> {
            match position {
                0 => Ok(None),
                n => names
                    .get(n as usize - 1)
                    .copied()
                    .map(Some)
                    .ok_or_else(|| unreadable(format!("name {n} of {}", names.len()))),
            }
        };
        let mut rows = Vec::with_capacity(encoded.rows.len());
        for row in &encoded.rows {
            let keys_tried = row
                .keys_tried
                .iter()
                .map(|&k| name(k).map(Option::unwrap_or_default))
                .collect::<Result<Vec<_>, _>>()?
                .into();
            rows.push(RowFields {
                at_ms: encoded
                    .base_ms
                    .saturating_add(i64::try_from(row.at_offset_ms).unwrap_or(i64::MAX)),
                request_id: request_id(row.request_id),
                route: name(row.route)?.unwrap_or_default(),
                provider: name(row.provider)?,
                model_requested: name(row.model_requested)?,
                model_answered: name(row.model_answered)?,
                key_id: name(row.key_id)?,
                attempts: row.attempts,
                keys_tried,
                status: row.status,
                error_class: name(row.error_class)?,
                input_tokens: row.input_tokens,
                output_tokens: row.output_tokens,
                cache_read_tokens: row.cache_read_tokens,
                cache_write_tokens: row.cache_write_tokens,
                reasoning_tokens: row.reasoning_tokens,
                cost_nanos: row.cost_nanos,
                latency_us: row.latency_us,
                ttft_us: row.ttft_us,
                client_key: name(row.client_key)?,
                unpriced: row.unpriced,
                cache_scope: name(row.cache_scope)?,
            });
        }
        Ok(Self {
            first_index: encoded.first_index,
            rows,
        })
    }

    /// `read` for a reader that goes on without the block: an unreadable
    /// one is logged (by id, never its content) and `None`.
    pub fn read_or_skip(block_id: i64, format: i64, bytes: &'a [u8]) -> Option<Self> {
        Self::read(format, bytes)
            .inspect_err(|error| {
                tracing::warn!(block_id, %error, "usage ledger: a block was skipped");
            })
            .ok()
    }

    /// The rows with their ids, oldest first.
    pub fn rows(&self, block_id: i64) -> impl DoubleEndedIterator<Item = (i64, &RowFields<'a>)> {
        let first = self.first_index;
        self.rows
            .iter()
            .enumerate()
            .map(move |(i, row)| (row_id(block_id, first + i as u32), row))
    }

    /// The block without its rows that arrived before `cutoff_ms` (which
    /// come first): `None` if none is left. The rows left keep their ids.
    pub fn without_before(self, cutoff_ms: i64) -> Option<PackedBlock> {
        let gone = self.rows.iter().take_while(|r| r.at_ms < cutoff_ms).count();
        let left: Vec<RowFields<'a>> = self.rows.into_iter().skip(gone).collect();
        if left.is_empty() {
            return None;
        }
        Some(pack(&left, self.first_index + gone as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at_ms: i64, request_id: &str) -> RowFields<'_> {
        RowFields {
            at_ms,
            request_id: RequestId::of(request_id),
            route: "/v1/messages",
            provider: Some("anthropic"),
            model_requested: Some("claude-haiku-4-5"),
            model_answered: None,
            key_id: Some("key_b"),
            attempts: 2,
            keys_tried: vec!["key_a", "key_b"].into(),
            status: 200,
            error_class: None,
            input_tokens: 12,
            output_tokens: 7_000_000_000,
            cache_read_tokens: 3,
            cache_write_tokens: 0,
            reasoning_tokens: 1,
            cost_nanos: u64::MAX,
            latency_us: 1_500,
            ttft_us: Some(300),
            client_key: Some("ck_1234"),
            unpriced: true,
            cache_scope: Some("org-1"),
        }
    }

    #[test]
    fn rows_come_back_as_packed_oldest_first_with_ids_in_block_order() {
        let mut late = row(2_000, "req-late");
        late.provider = None;
        late.keys_tried = vec![].into();
        late.ttft_us = None;
        late.error_class = Some("rate_limit_error");
        let packed = pack(&[late.clone(), row(1_000, "req-early")], 0);
        assert_eq!((packed.first_at_ms, packed.last_at_ms), (1_000, 2_000));
        assert_eq!(packed.row_count, 2);
        let unpacked = Unpacked::read(FORMAT, &packed.bytes).unwrap();
        let rows: Vec<_> = unpacked.rows(7).collect();
        assert_eq!(rows[0], (row_id(7, 0), &row(1_000, "req-early")));
        assert_eq!(rows[1], (row_id(7, 1), &late));
        assert!(row_id(7, 1) > row_id(7, 0) && row_id(8, 0) > row_id(7, 4_095));
    }

    /// What postcard makes of `rows` as `Encoded`, with the names in
    /// `names`' order: the bytes `Unpacked::read` is written against.
    fn postcard_bytes(rows: &[RowFields<'_>], names: &[Box<str>], first_index: u32) -> Vec<u8> {
        postcard_bytes_with_ids(rows, names, first_index, |row| row.request_id)
    }

    /// `postcard_bytes`, each row's request id written as `id` gives it.
    fn postcard_bytes_with_ids<'r, Id: Serialize>(
        rows: &[RowFields<'r>],
        names: &[Box<str>],
        first_index: u32,
        id: impl Fn(&RowFields<'r>) -> Id,
    ) -> Vec<u8> {
        let position = |name: Option<&str>| match name {
            None => 0,
            Some(name) => names.iter().position(|n| &**n == name).unwrap() as u32 + 1,
        };
        let mut order: Vec<&RowFields<'_>> = rows.iter().collect();
        order.sort_by_key(|row| row.at_ms);
        let base_ms = order[0].at_ms;
        let encoded = Encoded {
            first_index,
            base_ms,
            names: names.iter().map(|name| &**name).collect(),
            rows: order
                .iter()
                .map(|row| EncodedRow {
                    at_offset_ms: (row.at_ms - base_ms) as u64,
                    request_id: id(row),
                    route: position(Some(row.route)),
                    provider: position(row.provider),
                    model_requested: position(row.model_requested),
                    model_answered: position(row.model_answered),
                    key_id: position(row.key_id),
                    attempts: row.attempts,
                    keys_tried: row.keys_tried.iter().map(|k| position(Some(k))).collect(),
                    status: row.status,
                    error_class: position(row.error_class),
                    input_tokens: row.input_tokens,
                    output_tokens: row.output_tokens,
                    cache_read_tokens: row.cache_read_tokens,
                    cache_write_tokens: row.cache_write_tokens,
                    reasoning_tokens: row.reasoning_tokens,
                    cost_nanos: row.cost_nanos,
                    latency_us: row.latency_us,
                    ttft_us: row.ttft_us,
                    client_key: position(row.client_key),
                    unpriced: row.unpriced,
                    cache_scope: position(row.cache_scope),
                })
                .collect(),
        };
        postcard::to_allocvec(&encoded).unwrap()
    }

    #[test]
    fn hand_encoding_is_postcards() {
        let long_id = "r".repeat(300);
        let mut rows = vec![
            row(-5_000, "req-négatif"),
            row(i64::MAX / 2, &long_id),
            row(0, "67e55044-10b1-426f-9247-bb680e5fe0c8"),
        ];
        for i in 0..300u64 {
            let mut r = row(1_000 + (i as i64 * 7919) % 500, "req");
            r.attempts = i as u32 * 1_000_003;
            r.status = (i as u16).wrapping_mul(251);
            r.input_tokens = 1 << (i % 64);
            r.latency_us = u64::MAX >> (i % 64);
            r.ttft_us = (i % 3 != 0).then_some(i * 127);
            r.unpriced = i % 2 == 0;
            r.model_answered = (i % 5 == 0).then_some("");
            r.provider = (i % 4 != 0).then_some("openai");
            r.keys_tried = (0..i % 4)
                .map(|k| ["k0", "k1", "k2"][k as usize % 3])
                .collect::<Vec<_>>()
                .into();
            rows.push(r);
        }
        let mut block = BlockWriter::new(77);
        for r in &rows {
            block.push(r);
        }
        let expected = postcard_bytes(&rows, &block.names.list, 77);
        let packed = block.finish();
        assert_eq!(packed.bytes, expected);
        assert_eq!(
            (packed.first_at_ms, packed.last_at_ms),
            (-5_000, i64::MAX / 2)
        );
        let unpacked = Unpacked::read(FORMAT, &packed.bytes).unwrap();
        let mut sorted = rows.clone();
        sorted.sort_by_key(|row| row.at_ms);
        let back: Vec<RowFields<'_>> = unpacked.rows(1).map(|(_, r)| r.clone()).collect();
        assert_eq!(back, sorted);
    }

    #[test]
    fn blocks_written_with_text_request_ids_still_read() {
        let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let rows = vec![row(1_000, "req-old"), row(1_001, uuid)];
        let mut block = BlockWriter::new(0);
        for r in &rows {
            block.push(r);
        }
        let text_ids = postcard_bytes_with_ids(&rows, &block.names.list, 0, |row| {
            row.request_id.to_string()
        });
        let unpacked = Unpacked::read(FORMAT_TEXT_IDS, &text_ids).unwrap();
        let back: Vec<RowFields<'_>> = unpacked.rows(1).map(|(_, r)| r.clone()).collect();
        assert_eq!(back, rows);
        assert_eq!(back[1].request_id.to_string(), uuid);
        assert_eq!(back[0].request_id, RequestId::Text("req-old"));
        // The UUID takes 17 bytes instead of 37; a text id one more (its
        // variant), 8 + 1.
        assert_eq!(text_ids.len() - block.finish().bytes.len(), 20 - 1);
    }

    #[test]
    fn a_rows_name_positions_name_its_provider_model_key_and_error() {
        let mut block = BlockWriter::new(0);
        let mut failed = row(1, "a");
        failed.error_class = Some("overloaded_error");
        failed.model_answered = Some("claude-haiku-4-5-20251001");
        let first = block.push(&row(1, "a"));
        let second = block.push(&failed);
        let names = |p: NamePositions| {
            [p.provider, p.model, p.key_id, p.error_class].map(|n| block.name(n).to_string())
        };
        assert_eq!(names(first), ["anthropic", "claude-haiku-4-5", "key_b", ""]);
        assert_eq!(
            names(second),
            [
                "anthropic",
                "claude-haiku-4-5-20251001",
                "key_b",
                "overloaded_error"
            ]
        );
        assert_eq!(first.provider, second.provider, "a name has one position");
    }

    #[test]
    fn names_that_change_from_row_to_row_or_move_between_fields_read_back() {
        // Each field remembers its last few names (`Names::of`):
        // alternate them, swap a name from one field to another, drop
        // them, and rotate through more keys than a field remembers, whose
        // names differ only in one byte of their first, middle or last
        // eight.
        let keys = [
            "key_0000000000000001",
            "key_0000000000000002",
            "key_0000000010000001",
            "1ey_0000000000000001",
            "key_000000000000001",
            "key_0000000000000001_",
        ];
        let rows: Vec<_> = (0..40i64)
            .map(|i| {
                let mut r = row(1_000 + i, "req");
                let (a, b) = if i % 3 == 0 { ("x", "y") } else { ("y", "x") };
                r.model_requested = Some(a);
                r.key_id = Some(keys[i as usize % keys.len()]);
                r.keys_tried = vec![b, keys[(i as usize * 5) % keys.len()], a, b].into();
                r.model_answered = (i % 2 == 0).then_some(b);
                r.error_class = (i % 5 == 0).then_some("x");
                r.route = if i % 4 == 0 {
                    "/v1/chat/completions"
                } else {
                    "/v1/messages"
                };
                r.client_key = (i % 7 != 0).then_some(a);
                r
            })
            .collect();
        let packed = pack(&rows, 0);
        let unpacked = Unpacked::read(FORMAT, &packed.bytes).unwrap();
        let back: Vec<RowFields<'_>> = unpacked.rows(1).map(|(_, r)| r.clone()).collect();
        assert_eq!(back, rows);
    }

    #[test]
    fn names_compare_equal_exactly_when_their_bytes_do() {
        let base: String = ('a'..='z').chain('A'..='Z').collect();
        for len in 0..=base.len() {
            let a = &base[..len];
            // Equal bytes in another allocation.
            let copy = String::from(a);
            assert!(same_name(a, &copy), "{a}");
            for at in 0..len {
                let mut other = a.as_bytes().to_vec();
                other[at] = b'#';
                let other = String::from_utf8(other).unwrap();
                assert!(!same_name(a, &other), "{a} / {other}");
            }
            if len > 0 {
                assert!(!same_name(a, &base[..len - 1]));
                assert!(!same_name(&base[1..len], &base[..len - 1]) || len == 1);
            }
        }
    }

    #[test]
    fn names_are_stored_once_per_block() {
        let rows: Vec<_> = (0..1_000)
            .map(|i| row(1_000 + i, "req-0123456789"))
            .collect();
        let packed = pack(&rows, 0);
        // Each row's request id, varints and name positions; the names once.
        assert!(
            packed.bytes.len() < 1_000 * 60,
            "{} bytes",
            packed.bytes.len()
        );
    }

    #[test]
    fn pruning_the_start_of_a_block_keeps_the_other_rows_ids() {
        let packed = pack(&[row(1, "a"), row(2, "b"), row(3, "c")], 0);
        let unpacked = Unpacked::read(FORMAT, &packed.bytes).unwrap();
        let before: Vec<_> = unpacked.rows(3).map(|(id, r)| (id, r.clone())).collect();
        let left = unpacked.without_before(3).unwrap();
        assert_eq!((left.first_at_ms, left.row_count), (3, 1));
        let unpacked = Unpacked::read(FORMAT, &left.bytes).unwrap();
        let after: Vec<_> = unpacked.rows(3).map(|(id, r)| (id, r.clone())).collect();
        assert_eq!(after, before[2..]);
        assert!(unpacked.without_before(4).is_none());
    }

    #[test]
    fn damaged_or_unknown_blocks_are_refused_not_misread() {
        let packed = pack(&[row(1, "a")], 0);
        assert!(Unpacked::read(FORMAT + 1, &packed.bytes).is_err());
        assert!(Unpacked::read(FORMAT, &packed.bytes[..packed.bytes.len() / 2]).is_err());
        assert!(Unpacked::read(FORMAT, b"").is_err());
        // A name position past the table.
        let bad: Encoded<'_, RequestId<'_>> = Encoded {
            first_index: 0,
            base_ms: 0,
            names: vec![],
            rows: vec![],
        };
        let mut bytes = postcard::to_allocvec(&bad).unwrap();
        bytes.pop();
        bytes.push(1);
        let mut row = postcard::to_allocvec(&EncodedRow {
            at_offset_ms: 0,
            request_id: RequestId::Text("x"),
            route: 5,
            provider: 0,
            model_requested: 0,
            model_answered: 0,
            key_id: 0,
            attempts: 1,
            keys_tried: vec![],
            status: 200,
            error_class: 0,
            input_tokens: 0,
            output_tokens: 0,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
            cost_nanos: 0,
            latency_us: 0,
            ttft_us: None,
            client_key: 0,
            unpriced: false,
            cache_scope: 0,
        })
        .unwrap();
        bytes.append(&mut row);
        let error = Unpacked::read(FORMAT, &bytes).err().unwrap();
        assert!(error.to_string().contains("name 5 of 0"), "{error}");
    }

    #[test]
    fn rows_are_sorted_by_time_stably_however_far_out_of_order() {
        let nearly = |i: i64| i / 3 + [0, 2, -1, 0, 1][(i % 5) as usize];
        type Shape = (&'static str, fn(i64) -> i64);
        let shapes: [Shape; 4] = [
            ("in order", |i| i / 4),
            ("nearly in order, with ties", nearly),
            ("reversed (the fallback)", |i| -i / 2),
            ("one far behind every 50", |i| {
                if i % 50 == 49 { i - 400 } else { i }
            }),
        ];
        for (shape, at_ms) in shapes {
            for n in [0, 1, 2, 511, 512, 4_096] {
                // The ranges tell rows of one millisecond apart.
                let mut rows: Vec<(i64, std::ops::Range<usize>)> =
                    (0..n).map(|i| (at_ms(i as i64), i..i + 1)).collect();
                let mut expected = rows.clone();
                expected.sort_by_key(|(at_ms, _)| *at_ms);
                sort_by_time(&mut rows);
                assert_eq!(rows, expected, "{shape}, {n} rows");
            }
        }
    }
}
