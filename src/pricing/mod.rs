//! List prices and the cost of one answer.
//!
//! - `built_in`: the compiled-in table, each row with the day its price was
//!   last checked and the page it was checked against.
//! - `table`: `PriceTable`, the built-in rows with a price file's rows over
//!   them, and the family lookup (dated and suffixed ids find their
//!   family's price); `Prices`, the handle requests read it through.
//! - `file`: reading `PRICES_FILE`, in LiteLLM's format or keygate's own.
//! - `watch`: reloading the price file when it changes or on SIGHUP.
//! - `unpriced`: the models answered without a price, bounded, each warned
//!   about once.
//!
//! Prices are stored as integer nano-dollars per token ($/MTok × 1000), so
//! the arithmetic is exact and only the final division rounds.

mod built_in;
mod file;
mod table;
mod unpriced;
mod watch;

pub use built_in::{BUILT_IN, BuiltInPrice};
pub use file::{PriceFileError, read_price_file};
pub use table::{Origin, PriceEntry, PriceTable, Prices};
pub use unpriced::{MAX_UNPRICED_MODELS, UnpricedModel, UnpricedModels};
pub use watch::PriceFileWatch;

use crate::domain::Usage;
use serde::Serialize;

/// Nano-dollars per token, i.e. USD per million tokens × 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub cache_read: u64,
}

/// Higher rates for a request whose prompt is long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongContext {
    /// Prompt tokens (plain input, cache writes and cache reads) past which
    /// the whole request is billed at `rates`.
    pub above_tokens: u64,
    pub rates: Rates,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub rates: Rates,
    pub long_context: Option<LongContext>,
}

impl Price {
    /// The rates `usage` is billed at. Past a long-context threshold both
    /// providers bill every token of that request, output included, at the
    /// higher rates, not just the tokens beyond the threshold.
    pub fn rates_for(&self, usage: &Usage) -> &Rates {
        let prompt = usage
            .input_tokens
            .saturating_add(usage.cache_creation_input_tokens)
            .saturating_add(usage.cache_read_input_tokens);
        match &self.long_context {
            Some(long) if prompt > long.above_tokens => &long.rates,
            _ => &self.rates,
        }
    }
}

/// Cost of one answer in USD.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Cost {
    /// Everything on the input side: plain, cache writes and cache reads.
    pub input: f64,
    pub output: f64,
    pub total: f64,
    pub currency: &'static str,
}

/// Input-side and output-side cost in nano-dollars, exact. Token counts
/// come from a half-trusted upstream, so the sums saturate rather than
/// overflow.
fn nanos(price: &Price, usage: &Usage) -> (u64, u64) {
    let rates = price.rates_for(usage);
    let cache_5m = usage
        .cache_creation_input_tokens
        .saturating_sub(usage.cache_creation_1h_tokens);
    let input = [
        (usage.input_tokens, rates.input),
        (cache_5m, rates.cache_write_5m),
        (usage.cache_creation_1h_tokens, rates.cache_write_1h),
        (usage.cache_read_input_tokens, rates.cache_read),
    ]
    .iter()
    .fold(0u64, |sum, (tokens, rate)| {
        sum.saturating_add(tokens.saturating_mul(*rate))
    });
    (input, usage.output_tokens.saturating_mul(rates.output))
}

/// Nano-dollars as US dollars, for display.
pub fn usd(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

pub fn cost(price: &Price, usage: &Usage) -> Cost {
    let (input_nanos, output_nanos) = nanos(price, usage);
    Cost {
        input: usd(input_nanos),
        output: usd(output_nanos),
        total: usd(input_nanos.saturating_add(output_nanos)),
        currency: "USD",
    }
}

/// Cost of `usage` at `price`, in nano-dollars.
pub fn total_nanos(price: &Price, usage: &Usage) -> u64 {
    let (input, output) = nanos(price, usage);
    input.saturating_add(output)
}

/// Usage as keygate reports it, with its total and what it cost. This is
/// the one place an answer's usage is priced, for every route, streamed or
/// not, so the same upstream reply is always given the same cost.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct BilledUsage {
    #[serde(flatten)]
    pub usage: Usage,
    pub total_tokens: u64,
    #[serde(skip)]
    pub cost: Option<Cost>,
}

impl BilledUsage {
    /// Prices `usage` by the model that answered; when the upstream names a
    /// model keygate has no price for (a new dated snapshot, say), by the
    /// model that was asked for.
    pub fn new(
        prices: &PriceTable,
        provider: crate::domain::ProviderKind,
        answered: &str,
        requested: &str,
        usage: Usage,
    ) -> Self {
        Self {
            usage,
            total_tokens: usage.total_tokens(),
            cost: prices
                .price_of(provider, answered, requested)
                .map(|price| cost(price, &usage)),
        }
    }
}

/// $/MTok as the models endpoint shows it.
pub fn per_million(nanos_per_token: u64) -> f64 {
    nanos_per_token as f64 / 1000.0
}

#[cfg(test)]
mod tests;
