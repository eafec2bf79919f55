//! `SearchQuery`: one search as `/api/search` accepts it, checked once, so
//! provider modules only translate it.

/// SafeSearch: `off` or `active` (the providers' common ground).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SafeSearch {
    Off,
    Active,
}

impl SafeSearch {
    /// The value SerpApi's and Google's `safe` parameter takes.
    pub fn as_str(self) -> &'static str {
        match self {
            SafeSearch::Off => "off",
            SafeSearch::Active => "active",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchQuery {
    pub q: String,
    /// Results wanted, 1 to 10.
    pub num: u32,
    /// 0-based offset of the first result.
    pub start: u32,
    /// Two-letter country code, lower case (`us`).
    pub country: Option<String>,
    /// Language code (`en`, `pt-br`).
    pub language: Option<String>,
    pub safe: Option<SafeSearch>,
}

/// What is wrong with a search, naming the field.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {problem}")]
pub struct QueryError {
    pub field: &'static str,
    pub problem: String,
}

fn wrong(field: &'static str, problem: impl Into<String>) -> QueryError {
    QueryError {
        field,
        problem: problem.into(),
    }
}

/// The most results any provider serves for one query (Google: `start +
/// num` may not pass 100).
pub const MAX_RESULTS: u32 = 100;
const MAX_QUERY_CHARS: usize = 2048;

impl SearchQuery {
    pub fn parse(
        q: Option<String>,
        num: Option<u32>,
        start: Option<u32>,
        country: Option<String>,
        language: Option<String>,
        safe: Option<String>,
    ) -> Result<Self, QueryError> {
        let q = q.unwrap_or_default().trim().to_string();
        if q.is_empty() {
            return Err(wrong("q", "must not be empty"));
        }
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(wrong("q", format!("at most {MAX_QUERY_CHARS} characters")));
        }
        let num = num.unwrap_or(10);
        if !(1..=10).contains(&num) {
            return Err(wrong("num", format!("must be 1 to 10, got {num}")));
        }
        let start = start.unwrap_or(0);
        if start + num > MAX_RESULTS {
            return Err(wrong(
                "start",
                format!("start + num may not exceed {MAX_RESULTS} (got {start} + {num})"),
            ));
        }
        let country = code("country", country, 2, 2)?;
        let language = code("language", language, 2, 7)?;
        let safe = match safe.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("off") => Some(SafeSearch::Off),
            Some("active" | "on" | "strict" | "moderate") => Some(SafeSearch::Active),
            Some(other) => {
                return Err(wrong(
                    "safe",
                    format!(
                        "use off or active, got {:?}",
                        other.chars().take(16).collect::<String>()
                    ),
                ));
            }
        };
        Ok(Self {
            q,
            num,
            start,
            country,
            language,
            safe,
        })
    }
}

/// A short code of letters (and `-`), lower-cased; empty means absent.
fn code(
    field: &'static str,
    value: Option<String>,
    min: usize,
    max: usize,
) -> Result<Option<String>, QueryError> {
    let Some(value) = value.map(|v| v.trim().to_ascii_lowercase()) else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    let fits = (min..=max).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    if !fits {
        return Err(wrong(
            field,
            format!(
                "expected a code like {}",
                if max == 2 { "us" } else { "en" }
            ),
        ));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str, num: Option<u32>, start: Option<u32>) -> Result<SearchQuery, QueryError> {
        SearchQuery::parse(Some(q.into()), num, start, None, None, None)
    }

    #[test]
    fn bad_input_names_the_field() {
        assert_eq!(parse(" ", None, None).unwrap_err().field, "q");
        assert_eq!(parse("x", Some(0), None).unwrap_err().field, "num");
        assert_eq!(parse("x", Some(11), None).unwrap_err().field, "num");
        assert_eq!(parse("x", Some(10), Some(91)).unwrap_err().field, "start");
        assert!(parse("x", Some(10), Some(90)).is_ok());
        let bad_safe =
            SearchQuery::parse(Some("x".into()), None, None, None, None, Some("x".into()));
        assert_eq!(bad_safe.unwrap_err().field, "safe");
        let bad_country =
            SearchQuery::parse(Some("x".into()), None, None, Some("usa".into()), None, None);
        assert_eq!(bad_country.unwrap_err().field, "country");
    }

    #[test]
    fn defaults_are_ten_results_from_the_first() {
        let query = parse("rust", None, None).unwrap();
        assert_eq!((query.num, query.start), (10, 0));
    }
}
