//! The ledger routes' query strings, parsed once into typed queries
//! (`UsageQuery`, `PageQuery`). Every refusal names the parameter and what
//! it accepts, for the route's 400.
//!
//! Times are RFC 3339 (`2026-01-15T10:00:00Z`, `…+02:00`), `now`, or a time
//! ago (`30m`, `24h`, `7d`); ranges are `[from, to)`. A parameter given
//! empty counts as not given, so a form's blank filter means "all".

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use crate::domain::ProviderKind;
use crate::store::usage::{DAY_MS, Dimension, PagePosition, UsageFilter};

/// How far back `from` reaches when not given: a day before `to`.
pub const DEFAULT_SPAN_MS: i64 = DAY_MS;
/// Rows per page when `limit` is not given, and the most allowed.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;
/// Most dimensions in one `group_by`.
pub const MAX_GROUPINGS: usize = 2;

/// A parameter the route cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub param: String,
    pub problem: String,
}

impl ParamError {
    fn new(param: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.param, self.problem)
    }
}

/// `GET /api/usage`: totals over a range, in up to two groupings.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageQuery {
    pub filter: UsageFilter,
    pub group_by: Vec<Dimension>,
}

/// `GET /api/usage/requests`: one page of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PageQuery {
    pub filter: UsageFilter,
    pub after: Option<PagePosition>,
    pub limit: u32,
}

const FILTERS: [&str; 5] = ["from", "to", "provider", "model", "key"];

impl UsageQuery {
    pub fn parse(params: &[(String, String)], now_ms: i64) -> Result<Self, ParamError> {
        let given = collect(params, &["group_by"])?;
        Ok(Self {
            filter: filter(&given, now_ms)?,
            group_by: given
                .get("group_by")
                .map_or(Ok(Vec::new()), |text| group_by(text))?,
        })
    }
}

impl PageQuery {
    pub fn parse(params: &[(String, String)], now_ms: i64) -> Result<Self, ParamError> {
        let given = collect(params, &["cursor", "limit"])?;
        Ok(Self {
            filter: filter(&given, now_ms)?,
            after: given.get("cursor").map(|c| cursor(c)).transpose()?,
            limit: given.get("limit").map_or(Ok(DEFAULT_LIMIT), |l| limit(l))?,
        })
    }
}

/// The parameters by name; refuses unknown names and repeats.
fn collect<'a>(
    params: &'a [(String, String)],
    own: &[&'static str],
) -> Result<HashMap<&'static str, &'a str>, ParamError> {
    let accepted: Vec<&'static str> = FILTERS.iter().chain(own).copied().collect();
    let mut given = HashMap::new();
    for (name, value) in params {
        let Some(&known) = accepted.iter().find(|a| **a == name) else {
            return Err(ParamError::new(
                shorten(name),
                format!("unknown parameter; accepted: {}", accepted.join(", ")),
            ));
        };
        if value.is_empty() {
            continue;
        }
        if given.insert(known, value.as_str()).is_some() {
            return Err(ParamError::new(known, "given more than once"));
        }
    }
    Ok(given)
}

fn filter(given: &HashMap<&'static str, &str>, now_ms: i64) -> Result<UsageFilter, ParamError> {
    let time = |name: &'static str| given.get(name).map(|t| parse_time(name, t, now_ms));
    let to_ms = time("to").transpose()?.unwrap_or(now_ms);
    let from_ms = time("from")
        .transpose()?
        .unwrap_or(to_ms.saturating_sub(DEFAULT_SPAN_MS));
    if from_ms >= to_ms {
        return Err(ParamError::new(
            "from",
            format!(
                "must be before to ({} is not before {})",
                rfc3339_ms(from_ms),
                rfc3339_ms(to_ms)
            ),
        ));
    }
    let provider = given
        .get("provider")
        .map(|p| p.parse::<ProviderKind>())
        .transpose()
        .map_err(|e| ParamError::new("provider", e.to_string()))?;
    Ok(UsageFilter {
        from_ms,
        to_ms,
        provider,
        model: given.get("model").map(|m| m.to_string()),
        key: given.get("key").map(|k| k.to_string()),
    })
}

fn group_by(text: &str) -> Result<Vec<Dimension>, ParamError> {
    let accepted = || {
        Dimension::ALL
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut dimensions = Vec::new();
    for name in text.split(',').map(str::trim) {
        let dimension: Dimension = name.parse().map_err(|()| {
            ParamError::new(
                "group_by",
                format!(
                    "unknown grouping {:?}; accepted: {}, or two of them joined by a comma \
                     (e.g. key,hour)",
                    shorten(name),
                    accepted()
                ),
            )
        })?;
        if dimensions.contains(&dimension) {
            return Err(ParamError::new(
                "group_by",
                format!("{} is given twice", dimension.as_str()),
            ));
        }
        dimensions.push(dimension);
    }
    if dimensions.len() > MAX_GROUPINGS {
        return Err(ParamError::new(
            "group_by",
            format!(
                "at most {MAX_GROUPINGS} groupings (e.g. key,hour); got {}",
                dimensions.len()
            ),
        ));
    }
    Ok(dimensions)
}

fn limit(text: &str) -> Result<u32, ParamError> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ParamError::new(
                "limit",
                format!(
                    "expected a whole number from 1 to {MAX_LIMIT}, got {:?}",
                    shorten(text)
                ),
            )
        })
}

/// Opaque to clients: the position of a page's last row, as hex.
pub fn encode_cursor(position: PagePosition) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&position.at_ms.to_be_bytes());
    bytes[8..].copy_from_slice(&position.id.to_be_bytes());
    hex::encode(bytes)
}

fn cursor(text: &str) -> Result<PagePosition, ParamError> {
    let bytes: [u8; 16] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            ParamError::new(
                "cursor",
                "not a cursor from this route; pass next_cursor as it was given",
            )
        })?;
    let (at, id) = bytes.split_at(8);
    let word = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or_default());
    Ok(PagePosition {
        at_ms: word(at),
        id: word(id),
    })
}

/// A time parameter in ms since the epoch.
fn parse_time(param: &'static str, text: &str, now_ms: i64) -> Result<i64, ParamError> {
    let refused = || {
        ParamError::new(
            param,
            format!(
                "expected an RFC 3339 time (2026-01-15T10:00:00Z, 2026-01-15T12:00:00+02:00), \
                 now, or a time ago such as 30m, 24h, 7d; got {:?}",
                shorten(text)
            ),
        )
    };
    if text == "now" {
        return Ok(now_ms);
    }
    if let Some(ago) = time_ago_ms(text) {
        return ago.map(|ms| now_ms.saturating_sub(ms)).ok_or_else(refused);
    }
    rfc3339(text).ok_or_else(refused)
}

/// `Some(Some(ms))` for `30m`-like text, `Some(None)` for one that is too
/// large, `None` for other text.
fn time_ago_ms(text: &str) -> Option<Option<i64>> {
    let unit_ms = match text.chars().last()? {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => DAY_MS,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        digits
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ms)),
    )
}

/// RFC 3339 with `Z` or a `±HH:MM` offset (a bare time is refused: it
/// would be read in an unknown zone). humantime reads the date and time as
/// UTC; the offset is applied here.
fn rfc3339(text: &str) -> Option<i64> {
    let (local, offset_ms) = if let Some(utc) = text.strip_suffix(['Z', 'z']) {
        (utc, 0)
    } else {
        let split = text.len().checked_sub(6)?;
        let (local, offset) = (text.get(..split)?, text.get(split..)?.as_bytes());
        let sign = match offset[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits = |a: u8, b: u8| -> Option<i64> {
            Some(i64::from(
                (a as char).to_digit(10)? * 10 + (b as char).to_digit(10)?,
            ))
        };
        if offset[3] != b':' {
            return None;
        }
        let (hours, minutes) = (digits(offset[1], offset[2])?, digits(offset[4], offset[5])?);
        if hours > 23 || minutes > 59 {
            return None;
        }
        (local, sign * (hours * 60 + minutes) * 60_000)
    };
    // humantime also takes a space for the T; RFC 3339 takes `T` or `t`.
    let local = local.to_ascii_uppercase();
    if local.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let as_utc = humantime::parse_rfc3339_weak(&local).ok()?;
    let ms = i64::try_from(as_utc.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    Some(ms - offset_ms)
}

/// `ms` as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

/// `ms` (a whole hour or day) as RFC 3339 UTC in seconds.
pub fn rfc3339_secs(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Echoes of client text are cut short.
fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-15T10:30:00Z
    const NOW: i64 = 1_768_473_000_000;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn usage(pairs: &[(&str, &str)]) -> Result<UsageQuery, ParamError> {
        UsageQuery::parse(&params(pairs), NOW)
    }

    fn refusal(pairs: &[(&str, &str)]) -> ParamError {
        usage(pairs).unwrap_err()
    }

    #[test]
    fn defaults_are_the_last_day_in_one_total() {
        let query = usage(&[]).unwrap();
        assert_eq!(query.filter.from_ms, NOW - DAY_MS);
        assert_eq!(query.filter.to_ms, NOW);
        assert!(query.group_by.is_empty());
        // Blank filters, as a form sends them, are no filters.
        let blank = usage(&[("provider", ""), ("model", ""), ("group_by", "")]).unwrap();
        assert_eq!(blank, query);
        // Without from, the range is the day before to.
        let earlier = usage(&[("to", "2d")]).unwrap();
        assert_eq!(earlier.filter.from_ms, NOW - 3 * DAY_MS);
    }

    #[test]
    fn times_are_rfc3339_now_or_a_time_ago() {
        let query = usage(&[("from", "30m"), ("to", "now")]).unwrap();
        assert_eq!(query.filter.from_ms, NOW - 30 * 60_000);
        assert_eq!(query.filter.to_ms, NOW);
        for (text, ms) in [
            ("7d", NOW - 7 * DAY_MS),
            ("24h", NOW - DAY_MS),
            ("90s", NOW - 90_000),
            ("2026-01-14T10:30:00Z", NOW - DAY_MS),
            ("2026-01-14t10:30:00.250z", NOW - DAY_MS + 250),
            ("2026-01-14T12:30:00+02:00", NOW - DAY_MS),
            ("2026-01-14T05:00:00-05:30", NOW - DAY_MS),
        ] {
            assert_eq!(
                usage(&[("from", text)]).unwrap().filter.from_ms,
                ms,
                "{text}"
            );
        }
        for bad in [
            "yesterday",
            "2026-01-14T10:30:00",
            "2026-01-14 10:30:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-14T10:30:00+2:00",
            "h",
            "-5m",
            "99999999999999999999d",
        ] {
            let error = refusal(&[("from", bad)]);
            assert_eq!(error.param, "from", "{bad}");
            assert!(error.problem.contains("RFC 3339"), "{error}");
        }
    }

    #[test]
    fn from_must_come_before_to() {
        let error = refusal(&[("from", "1h"), ("to", "2h")]);
        assert_eq!(error.param, "from");
        assert!(error.problem.contains("must be before to"), "{error}");
        assert_eq!(refusal(&[("from", "now")]).param, "from");
    }

    #[test]
    fn one_or_two_known_groupings() {
        let query = usage(&[("group_by", "key,hour")]).unwrap();
        assert_eq!(query.group_by, [Dimension::Key, Dimension::Hour]);
        let query = usage(&[("group_by", "model")]).unwrap();
        assert_eq!(query.group_by, [Dimension::Model]);
        let unknown = refusal(&[("group_by", "team")]);
        assert_eq!(unknown.param, "group_by");
        assert!(
            unknown
                .problem
                .contains("key, model, provider, status, hour, day"),
            "{unknown}"
        );
        let three = refusal(&[("group_by", "key,model,hour")]);
        assert!(three.problem.contains("at most 2"), "{three}");
        let twice = refusal(&[("group_by", "key,key")]);
        assert!(twice.problem.contains("twice"), "{twice}");
    }

    #[test]
    fn filters_are_checked_and_unknown_parameters_named() {
        let query = usage(&[
            ("provider", "openai"),
            ("model", "gpt-4o"),
            ("key", "key_1"),
        ]);
        let filter = query.unwrap().filter;
        assert_eq!(filter.provider, Some(ProviderKind::OpenAI));
        assert_eq!(filter.model.as_deref(), Some("gpt-4o"));
        assert_eq!(filter.key.as_deref(), Some("key_1"));
        let provider = refusal(&[("provider", "mistral")]);
        assert_eq!(provider.param, "provider");
        assert!(provider.problem.contains("anthropic, openai"), "{provider}");
        let unknown = refusal(&[("groupby", "key")]);
        assert_eq!(unknown.param, "groupby");
        assert!(unknown.problem.contains("group_by"), "{unknown}");
        assert_eq!(refusal(&[("key", "a"), ("key", "b")]).param, "key");
        // The page route's parameters are not the totals route's.
        assert_eq!(refusal(&[("limit", "5")]).param, "limit");
    }

    #[test]
    fn pages_take_a_limit_and_the_cursor_they_gave() {
        let page = |pairs: &[(&str, &str)]| PageQuery::parse(&params(pairs), NOW);
        assert_eq!(page(&[]).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(page(&[("limit", "500")]).unwrap().limit, 500);
        for bad in ["0", "501", "ten", "-1"] {
            let error = page(&[("limit", bad)]).unwrap_err();
            assert_eq!(error.param, "limit");
            assert!(error.problem.contains("1 to 500"), "{error}");
        }
        let position = PagePosition {
            at_ms: NOW - 5,
            id: 12_345,
        };
        let cursor = encode_cursor(position);
        assert_eq!(page(&[("cursor", &cursor)]).unwrap().after, Some(position));
        for bad in ["abc", "zz", &cursor[..30]] {
            assert_eq!(page(&[("cursor", bad)]).unwrap_err().param, "cursor");
        }
        assert_eq!(page(&[("group_by", "key")]).unwrap_err().param, "group_by");
    }
}
