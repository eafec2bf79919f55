//! Reading `PRICES_FILE`, a JSON file in one of two forms:
//!
//! - LiteLLM's `model_prices_and_context_window.json`, as it is: an object
//!   of model name → entry with per-token USD prices
//!   (`input_cost_per_token`, `output_cost_per_token`,
//!   `cache_read_input_token_cost`, `cache_creation_input_token_cost`, the
//!   `_above_1hr`, `_above_200k_tokens` and `_above_272k_tokens` variants)
//!   and `litellm_provider`. Batch, flex and priority prices are not read:
//!   keygate bills the standard tier.
//!   Entries of other providers, of modes other than chat and responses
//!   (embeddings, images, audio...) and LiteLLM's `sample_spec` are
//!   skipped unread, so nothing in them can break the file.
//! - keygate's own: `{"models": [{"provider", "id", "input", "output",
//!   ...}]}` with USD per million tokens; `id` prices its whole family
//!   (dated snapshots, `-latest`), as the built-in ids do.
//!
//! A file that cannot be read is refused with the line, column and field
//! at fault.

use std::path::Path;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{LongContext, Origin, Price, PriceEntry, Rates};
use crate::domain::ProviderKind;
use litellm::{LiteLlmEntry, LiteLlmHead};

mod litellm;

/// Largest price file read (LiteLLM's whole file is about 1.5 MB).
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// The most a token may cost, in USD: anything dearer is a typo (a price
/// per million written as a price per token).
const MAX_USD_PER_TOKEN: f64 = 0.01;

#[derive(Debug, thiserror::Error)]
pub enum PriceFileError {
    #[error("cannot read the price file {path}: {problem}")]
    Read { path: String, problem: String },
    #[error("price file {path}, line {line}, column {column}, at {field}: {message}")]
    Malformed {
        path: String,
        line: usize,
        column: usize,
        /// The path of the field at fault, e.g. `models[2].input`.
        field: String,
        message: String,
    },
}

/// The rows of the price file at `path`.
pub fn read_price_file(path: &Path) -> Result<Vec<PriceEntry>, PriceFileError> {
    let shown = path.display().to_string();
    let read_error = |problem: String| PriceFileError::Read {
        path: shown.clone(),
        problem,
    };
    let metadata = std::fs::metadata(path).map_err(|e| read_error(e.to_string()))?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(read_error(format!(
            "{} bytes, more than the {MAX_FILE_BYTES} read",
            metadata.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
    let changed = metadata.modified().ok().map(day_of);
    parse_price_file(&text, changed.as_deref()).map_err(|fault| PriceFileError::Malformed {
        path: shown,
        line: fault.line,
        column: fault.column,
        field: fault.field,
        message: fault.message,
    })
}

/// Where a file went wrong.
#[derive(Debug, PartialEq)]
pub struct Fault {
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

/// The rows of a price file's `text`; `changed` (`YYYY-MM-DD`) is the day
/// the file was changed, the `checked` day of rows that give none.
pub fn parse_price_file(text: &str, changed: Option<&str>) -> Result<Vec<PriceEntry>, Fault> {
    let top: std::collections::BTreeMap<String, &RawValue> = parse_at(text, text, "")?;
    let keygate_form = top
        .get("models")
        .is_some_and(|models| models.get().trim_start().starts_with('['));
    if keygate_form {
        let file: KeygateFile = parse_at(text, text, "")?;
        return Ok(file
            .models
            .into_iter()
            .map(|row| row.into_entry(changed))
            .collect());
    }
    let mut entries = Vec::new();
    for (name, raw) in top {
        let head: LiteLlmHead = serde_json::from_str(raw.get()).unwrap_or_default();
        let Some(provider) = head.provider() else {
            continue;
        };
        let entry: LiteLlmEntry = parse_at(text, raw.get(), &name)?;
        if let Some(entry) = entry.into_entry(provider, &name, changed) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// Deserialises `part`, a slice of `whole`, reporting a fault by its line
/// and column in `whole` and its field path under `under`.
fn parse_at<'a, T: Deserialize<'a>>(whole: &str, part: &'a str, under: &str) -> Result<T, Fault> {
    let mut deserializer = serde_json::Deserializer::from_str(part);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| fault(whole, part, under, &error.path().to_string(), error.inner()))?;
    deserializer
        .end()
        .map_err(|error| fault(whole, part, under, ".", &error))?;
    Ok(value)
}

fn fault(whole: &str, part: &str, under: &str, path: &str, inner: &serde_json::Error) -> Fault {
    // `part` borrows from `whole`: its offset gives the line it starts on.
    let offset = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    let before = whole.get(..offset).unwrap_or_default();
    let start_line = before.matches('\n').count();
    let start_column = before.len() - before.rfind('\n').map_or(0, |at| at + 1);
    let column = if inner.line() <= 1 {
        start_column + inner.column()
    } else {
        inner.column()
    };
    let field = match (under.is_empty(), path) {
        (true, _) => path.to_string(),
        (false, ".") => under.to_string(),
        (false, _) => format!("{under}.{path}"),
    };
    Fault {
        line: start_line + inner.line().max(1),
        column,
        field,
        message: strip_position(&inner.to_string()),
    }
}

/// serde_json's message without its own " at line L column C", which
/// would count from the start of an entry, not of the file.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// `YYYY-MM-DD` of a time, in UTC.
fn day_of(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .take(10)
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeygateFile {
    models: Vec<KeygateRow>,
}

/// USD per million tokens, checked to be a price.
#[derive(Clone, Copy)]
struct PerMillion(u64);

impl<'de> Deserialize<'de> for PerMillion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        price(deserializer, 1e6).map(PerMillion)
    }
}

/// USD per token, checked to be a price.
#[derive(Clone, Copy)]
pub(super) struct PerToken(pub(super) u64);

impl<'de> Deserialize<'de> for PerToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        price(deserializer, 1.0).map(PerToken)
    }
}

/// A price in USD per `tokens` tokens, as nano-dollars per token.
fn price<'de, D: serde::Deserializer<'de>>(deserializer: D, tokens: f64) -> Result<u64, D::Error> {
    let usd = f64::deserialize(deserializer)?;
    nanos_per_token(usd / tokens).map_err(serde::de::Error::custom)
}

fn nanos_per_token(usd: f64) -> Result<u64, String> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(format!("{usd} is not a price"));
    }
    if usd > MAX_USD_PER_TOKEN {
        return Err(format!(
            "${:.2} per million tokens is more than any model costs",
            usd * 1e6
        ));
    }
    Ok((usd * 1e9).round() as u64)
}

/// A day, `YYYY-MM-DD`.
struct Day(String);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339(&format!("{text}T00:00:00Z"))
            .map(|_| Day(text))
            .map_err(|_| serde::de::Error::custom("expected a day as YYYY-MM-DD"))
    }
}

/// A chat provider named in a price file.
struct ChatProvider(ProviderKind);

impl<'de> Deserialize<'de> for ChatProvider {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.parse::<ProviderKind>() {
            Ok(provider) if !provider.is_search() => Ok(ChatProvider(provider)),
            _ => Err(serde::de::Error::custom(
                "expected a chat provider: \"anthropic\" or \"openai\"",
            )),
        }
    }
}

/// A row's rates from its USD-per-million prices. Cache tokens without a
/// price of their own are billed as plain input (and 1-hour writes as
/// 5-minute ones): never less than the file says, never made up.
fn rates(
    input: PerMillion,
    output: PerMillion,
    cache_write_5m: Option<PerMillion>,
    cache_write_1h: Option<PerMillion>,
    cache_read: Option<PerMillion>,
) -> Rates {
    let write_5m = cache_write_5m.map_or(input.0, |p| p.0);
    Rates {
        input: input.0,
        output: output.0,
        cache_write_5m: write_5m,
        cache_write_1h: cache_write_1h.map_or(write_5m, |p| p.0),
        cache_read: cache_read.map_or(input.0, |p| p.0),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeygateLongContext {
    above_tokens: u64,
    input: PerMillion,
    output: PerMillion,
    cache_write_5m: Option<PerMillion>,
    cache_write_1h: Option<PerMillion>,
    cache_read: Option<PerMillion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeygateRow {
    provider: ChatProvider,
    id: String,
    name: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    input: PerMillion,
    output: PerMillion,
    cache_write_5m: Option<PerMillion>,
    cache_write_1h: Option<PerMillion>,
    cache_read: Option<PerMillion>,
    long_context: Option<KeygateLongContext>,
    checked: Option<Day>,
}

impl KeygateRow {
    fn into_entry(self, changed: Option<&str>) -> PriceEntry {
        let long_context = self.long_context.map(|long| LongContext {
            above_tokens: long.above_tokens,
            rates: rates(
                long.input,
                long.output,
                long.cache_write_5m,
                long.cache_write_1h,
                long.cache_read,
            ),
        });
        PriceEntry {
            provider: self.provider.0,
            name: self.name.unwrap_or_else(|| self.id.clone()),
            id: self.id,
            aliases: self.aliases,
            price: Price {
                rates: rates(
                    self.input,
                    self.output,
                    self.cache_write_5m,
                    self.cache_write_1h,
                    self.cache_read,
                ),
                long_context,
            },
            origin: Origin::PriceFile,
            checked: self
                .checked
                .map(|day| day.0)
                .or(changed.map(str::to_string)),
            source: "PRICES_FILE".into(),
        }
    }
}

#[cfg(test)]
mod tests;
