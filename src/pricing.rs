//! List prices per million tokens and the cost of one answer. Models are
//! matched by the longest id prefix that ends at a `-` boundary (so dated
//! snapshots and `-latest` aliases find their family, but `claude-opus-4-6`
//! is not priced as `claude-opus-4`); an unknown model is still served and
//! gets no cost. Sources: ../shared/docs/protocols.md (c).
//!
//! Prices are stored as integer nano-dollars per token ($/MTok × 1000), so
//! the arithmetic is exact and only the final division rounds.

use crate::domain::{ProviderKind, Usage};
use serde::Serialize;

/// Nano-dollars per token, i.e. USD per million tokens × 1000.
#[derive(Debug, Clone, Copy)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub cache_read: u64,
}

pub struct ModelPrice {
    pub provider: ProviderKind,
    /// The id listed by `GET /api/models`.
    pub id: &'static str,
    pub name: &'static str,
    /// Further prefixes that resolve to this entry (aliases, families).
    pub aliases: &'static [&'static str],
    /// Release date (`YYYY-MM-DD`), for the `/v1/models` listings.
    pub released: &'static str,
    pub price: Price,
}

const fn anthropic(
    id: &'static str,
    name: &'static str,
    aliases: &'static [&'static str],
    [input, output, cache_write_5m, cache_write_1h, cache_read]: [u64; 5],
) -> ModelPrice {
    let released = match id.split_at_checked(id.len() - 8) {
        // Anthropic ids end in their release date, YYYYMMDD; listed as is.
        Some((_, date)) => date,
        None => "",
    };
    ModelPrice {
        provider: ProviderKind::Anthropic,
        id,
        name,
        aliases,
        released,
        price: Price {
            input,
            output,
            cache_write_5m,
            cache_write_1h,
            cache_read,
        },
    }
}

/// OpenAI bills no cache writes; cached input has its own price.
const fn openai(
    id: &'static str,
    name: &'static str,
    released: &'static str,
    [input, cached, output]: [u64; 3],
) -> ModelPrice {
    ModelPrice {
        provider: ProviderKind::OpenAI,
        id,
        name,
        aliases: &[],
        released,
        price: Price {
            input,
            output,
            cache_write_5m: 0,
            cache_write_1h: 0,
            cache_read: cached,
        },
    }
}

/// Newest first per provider, as a model picker would show them.
pub static PRICES: &[ModelPrice] = &[
    anthropic(
        "claude-opus-4-5-20251101",
        "Claude Opus 4.5",
        &["claude-opus-4-5"],
        [5000, 25000, 6250, 10000, 500],
    ),
    anthropic(
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        &["claude-haiku-4-5"],
        [1000, 5000, 1250, 2000, 100],
    ),
    anthropic(
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        &["claude-sonnet-4-5"],
        [3000, 15000, 3750, 6000, 300],
    ),
    anthropic(
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        &["claude-opus-4-1"],
        [15000, 75000, 18750, 30000, 1500],
    ),
    anthropic(
        "claude-opus-4-20250514",
        "Claude Opus 4",
        &["claude-opus-4-0"],
        [15000, 75000, 18750, 30000, 1500],
    ),
    anthropic(
        "claude-sonnet-4-20250514",
        "Claude Sonnet 4",
        &["claude-sonnet-4-0"],
        [3000, 15000, 3750, 6000, 300],
    ),
    anthropic(
        "claude-3-7-sonnet-20250219",
        "Claude 3.7 Sonnet",
        &["claude-3-7-sonnet"],
        [3000, 15000, 3750, 6000, 300],
    ),
    anthropic(
        "claude-3-5-sonnet-20241022",
        "Claude 3.5 Sonnet",
        &["claude-3-5-sonnet"],
        [3000, 15000, 3750, 6000, 300],
    ),
    anthropic(
        "claude-3-5-haiku-20241022",
        "Claude 3.5 Haiku",
        &["claude-3-5-haiku"],
        [800, 4000, 1000, 1600, 80],
    ),
    anthropic(
        "claude-3-opus-20240229",
        "Claude 3 Opus",
        &["claude-3-opus"],
        [15000, 75000, 18750, 30000, 1500],
    ),
    anthropic(
        "claude-3-sonnet-20240229",
        "Claude 3 Sonnet",
        &["claude-3-sonnet"],
        [3000, 15000, 3750, 6000, 300],
    ),
    anthropic(
        "claude-3-haiku-20240307",
        "Claude 3 Haiku",
        &["claude-3-haiku"],
        [250, 1250, 300, 500, 30],
    ),
    openai("gpt-4.1", "GPT-4.1", "2025-04-14", [2000, 500, 8000]),
    openai(
        "gpt-4.1-mini",
        "GPT-4.1 mini",
        "2025-04-14",
        [400, 100, 1600],
    ),
    openai("gpt-4.1-nano", "GPT-4.1 nano", "2025-04-14", [100, 25, 400]),
    openai("o3", "o3", "2025-04-16", [2000, 500, 8000]),
    openai("o4-mini", "o4-mini", "2025-04-16", [1100, 275, 4400]),
    openai("o3-mini", "o3-mini", "2025-01-31", [1100, 550, 4400]),
    openai("gpt-4o", "GPT-4o", "2024-05-13", [2500, 1250, 10000]),
    // The first GPT-4o snapshot kept its launch price.
    openai(
        "gpt-4o-2024-05-13",
        "GPT-4o (2024-05-13)",
        "2024-05-13",
        [5000, 5000, 15000],
    ),
    openai("gpt-4o-mini", "GPT-4o mini", "2024-07-18", [150, 75, 600]),
    // Embeddings: input tokens only, no cached price.
    openai(
        "text-embedding-3-large",
        "text-embedding-3-large",
        "2024-01-25",
        [130, 130, 0],
    ),
    openai(
        "text-embedding-3-small",
        "text-embedding-3-small",
        "2024-01-25",
        [20, 20, 0],
    ),
    openai(
        "text-embedding-ada-002",
        "text-embedding-ada-002",
        "2022-12-15",
        [100, 100, 0],
    ),
];

/// The price entry for `model`, by longest prefix at a `-` boundary.
pub fn find(provider: ProviderKind, model: &str) -> Option<&'static ModelPrice> {
    PRICES
        .iter()
        .filter(|entry| entry.provider == provider)
        .filter_map(|entry| {
            std::iter::once(entry.id)
                .chain(entry.aliases.iter().copied())
                .filter(|prefix| matches_prefix(model, prefix))
                .map(str::len)
                .max()
                .map(|len| (len, entry))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, entry)| entry)
}

fn matches_prefix(model: &str, prefix: &str) -> bool {
    model
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
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

/// Input-side and output-side cost in nano-dollars, exact.
fn nanos(price: &Price, usage: &Usage) -> (u64, u64) {
    let cache_5m = usage
        .cache_creation_input_tokens
        .saturating_sub(usage.cache_creation_1h_tokens);
    let input = usage.input_tokens * price.input
        + cache_5m * price.cache_write_5m
        + usage.cache_creation_1h_tokens * price.cache_write_1h
        + usage.cache_read_input_tokens * price.cache_read;
    (input, usage.output_tokens * price.output)
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
        total: usd(input_nanos + output_nanos),
        currency: "USD",
    }
}

/// Cost of `usage` in nano-dollars, priced as `BilledUsage::new` prices it
/// (the answering model, else the requested one); 0 when neither has a
/// price. The usage ledger sums these, so its totals are exact.
pub fn cost_nanos(provider: ProviderKind, answered: &str, requested: &str, usage: &Usage) -> u64 {
    find(provider, answered)
        .or_else(|| find(provider, requested))
        .map_or(0, |entry| {
            let (input, output) = nanos(&entry.price, usage);
            input + output
        })
}

/// Cost of `usage` on `model`, or `None` for a model with no known price.
pub fn cost_of(provider: ProviderKind, model: &str, usage: &Usage) -> Option<Cost> {
    find(provider, model).map(|entry| cost(&entry.price, usage))
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
    pub fn new(provider: ProviderKind, answered: &str, requested: &str, usage: Usage) -> Self {
        Self {
            usage,
            total_tokens: usage.total_tokens(),
            cost: cost_of(provider, answered, &usage)
                .or_else(|| cost_of(provider, requested, &usage)),
        }
    }
}

/// $/MTok as the models endpoint shows it.
pub fn per_million(nanos_per_token: u64) -> f64 {
    nanos_per_token as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            ..Usage::default()
        }
    }

    #[test]
    fn worked_example_from_the_issue() {
        let cost = cost_of(
            ProviderKind::Anthropic,
            "claude-sonnet-4-20250514",
            &usage(25, 86),
        )
        .unwrap();
        assert_eq!(cost.input, 0.000075);
        assert_eq!(cost.output, 0.00129);
        assert_eq!(cost.total, 0.001365);
    }

    #[test]
    fn old_backend_models_are_priced() {
        let per_mtok = |model: &str| {
            let entry = find(ProviderKind::Anthropic, model).unwrap();
            (
                per_million(entry.price.input),
                per_million(entry.price.output),
            )
        };
        assert_eq!(per_mtok("claude-3-5-sonnet-20240620"), (3.0, 15.0));
        assert_eq!(per_mtok("claude-3-opus-20240229"), (15.0, 75.0));
        assert_eq!(per_mtok("claude-3-sonnet-20240229"), (3.0, 15.0));
        assert_eq!(per_mtok("claude-3-haiku-20240307"), (0.25, 1.25));
        assert_eq!(per_mtok("claude-sonnet-4-0"), (3.0, 15.0));
        assert_eq!(per_mtok("claude-3-5-haiku-latest"), (0.8, 4.0));
    }

    #[test]
    fn prefixes_match_only_at_boundaries() {
        assert!(find(ProviderKind::Anthropic, "claude-opus-4-6").is_none());
        assert!(find(ProviderKind::Anthropic, "claude-3-opusx").is_none());
        assert!(find(ProviderKind::Anthropic, "gpt-4o").is_none());
        assert_eq!(
            find(ProviderKind::Anthropic, "claude-opus-4-1")
                .unwrap()
                .name,
            "Claude Opus 4.1"
        );
    }

    #[test]
    fn openai_models_are_priced_with_cached_input() {
        let usage = Usage {
            input_tokens: 600,
            output_tokens: 100,
            cache_read_input_tokens: 400,
            ..Usage::default()
        };
        let cost = cost_of(ProviderKind::OpenAI, "gpt-4o-mini-2024-07-18", &usage).unwrap();
        // 600×0.15 + 400×0.075 = 120; 100×0.6 = 60 ($/MTok·tokens)
        assert_eq!((cost.input, cost.output), (0.00012, 0.00006));
        assert_eq!(
            find(ProviderKind::OpenAI, "gpt-4o-2024-08-06")
                .unwrap()
                .name,
            "GPT-4o"
        );
        assert_eq!(
            find(ProviderKind::OpenAI, "gpt-4o-2024-05-13")
                .unwrap()
                .price
                .input,
            5000
        );
        assert_eq!(
            find(ProviderKind::OpenAI, "o3-mini").unwrap().name,
            "o3-mini"
        );
        assert!(find(ProviderKind::OpenAI, "claude-sonnet-4-0").is_none());
    }

    #[test]
    fn cache_tokens_use_their_own_prices() {
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 0,
            cache_creation_input_tokens: 3000,
            cache_creation_1h_tokens: 1000,
            cache_read_input_tokens: 10_000,
        };
        let cost = cost_of(ProviderKind::Anthropic, "claude-sonnet-4-5", &usage).unwrap();
        // 1000×3 + 2000×3.75 + 1000×6 + 10000×0.3 = 19,500 $/MTok·tokens
        assert_eq!(cost.input, 0.0195);
    }
}
