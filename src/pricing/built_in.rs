//! The prices compiled into keygate, newest models first per provider, as a
//! model picker would show them. Every row names the page its price was
//! checked against and the day it was checked; a price file
//! (`PRICES_FILE`) overrides any of them without a release.
//!
//! Rows are USD per million tokens × 1000 (nano-dollars per token):
//! `[input, output, 5-minute cache write, 1-hour cache write, cache read]`.

use super::{LongContext, Price, Rates};
use crate::domain::ProviderKind;

/// One compiled-in row.
pub struct BuiltInPrice {
    pub provider: ProviderKind,
    /// The id listed by `GET /api/models`.
    pub id: &'static str,
    pub name: &'static str,
    /// Further prefixes that resolve to this entry (aliases, families).
    pub aliases: &'static [&'static str],
    /// Release date (`YYYY-MM-DD` or `YYYYMMDD`), for the `/v1/models`
    /// listings; empty when no source we checked gives it.
    pub released: &'static str,
    pub price: Price,
    /// The day the price was last compared with `source` (`YYYY-MM-DD`).
    pub checked: &'static str,
    pub source: &'static str,
}

const fn rates([input, output, cache_write_5m, cache_write_1h, cache_read]: [u64; 5]) -> Rates {
    Rates {
        input,
        output,
        cache_write_5m,
        cache_write_1h,
        cache_read,
    }
}

const fn row(
    provider: ProviderKind,
    id: &'static str,
    name: &'static str,
    aliases: &'static [&'static str],
    released: &'static str,
    prices: [u64; 5],
) -> BuiltInPrice {
    BuiltInPrice {
        provider,
        id,
        name,
        aliases,
        released,
        price: Price {
            rates: rates(prices),
            long_context: None,
        },
        checked: "",
        source: "",
    }
}

impl BuiltInPrice {
    const fn checked(self, checked: &'static str, source: &'static str) -> Self {
        Self {
            checked,
            source,
            ..self
        }
    }

    const fn long_context(mut self, above_tokens: u64, prices: [u64; 5]) -> Self {
        self.price.long_context = Some(LongContext {
            above_tokens,
            rates: rates(prices),
        });
        self
    }
}

const fn anthropic(
    id: &'static str,
    name: &'static str,
    aliases: &'static [&'static str],
    released: &'static str,
    prices: [u64; 5],
) -> BuiltInPrice {
    row(ProviderKind::Anthropic, id, name, aliases, released, prices)
}

/// OpenAI's older models bill no cache writes; cached input has its own
/// price. `[input, cached input, output]`.
const fn openai(
    id: &'static str,
    name: &'static str,
    released: &'static str,
    [input, cached, output]: [u64; 3],
) -> BuiltInPrice {
    row(
        ProviderKind::OpenAI,
        id,
        name,
        &[],
        released,
        [input, output, 0, 0, cached],
    )
}

const TODAY: &str = "2026-11-30";
/// Anthropic's pricing page: the model table (base input, 5m and 1h cache
/// writes, cache hits, output) and its long-context section.
const ANTHROPIC_PRICING: &str = "https://platform.claude.com/docs/en/about-claude/pricing";
const HAIKU_5_5_PAGE: &str = "https://platform.claude.com/docs/en/models/haiku-5-5/overview";
const OPUS_5_5_PAGE: &str = "https://platform.claude.com/docs/zh-CN/models/opus-5-5/overview";
const SONNET_5_PAGE: &str = "https://platform.claude.com/docs/zh-CN/models/sonnet-5/overview";
/// OpenAI's own pricing page was not among the pages the search tool
/// holds; these rows were checked against reports that quote it.
const OPENAI_GPT_6: &str = "https://docs.litellm.ai/blog/gpt_6_sol_luna";
const OPENAI_GPT_5_6: &str = "https://docs.laozhang.ai/en/announcements/gpt-5-6-pricing-2026-07.md";
const OPENAI_GPT_5_5: &str = "https://tokenmix.ai/blog/openai-api-cost-2026-gpt-5-5-5-4-nano-batch";
/// LiteLLM's price map as mirrored on 2026-07-24 (the newest copy the
/// search tool holds): it agrees with every OpenAI row below that it
/// lists, and gives GPT-5.4's and GPT-5.5's long-context rates.
const LITELLM_MAP: &str = "https://github.com/Wei-Shaw/model-price-repo/blob/f9ff147/model_prices_and_context_window.json";
/// OpenAI's embedding prices ($0.02, $0.13 and $0.10 per million input
/// tokens), as quoted from OpenAI's pricing page, verified May 2026.
const OPENAI_EMBEDDINGS: &str = "https://embeddingcost.com/openai";
/// Claude 3 Sonnet is on neither the current pricing page nor that map: its
/// row is carried over from keygate's first table (protocols.md (c)), and
/// the day it was checked is not recorded (`GET /api/models` shows `null`).
const FIRST_TABLE_DAY: &str = "";

pub static BUILT_IN: &[BuiltInPrice] = &[
    // Fable 5.1's cache hits are $0.25, not the usual 0.1 × input (a
    // footnote on the pricing page).
    anthropic(
        "claude-fable-5-1",
        "Claude Fable 5.1",
        &[],
        "",
        [10_000, 50_000, 12_500, 20_000, 250],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-fable-5",
        "Claude Fable 5",
        &[],
        "",
        [10_000, 50_000, 12_500, 20_000, 1000],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-opus-5-5",
        "Claude Opus 5.5",
        &[],
        "",
        [4000, 20_000, 5000, 8000, 200],
    )
    .checked(TODAY, OPUS_5_5_PAGE),
    anthropic(
        "claude-opus-5",
        "Claude Opus 5",
        &[],
        "2026-07-24",
        [5000, 25_000, 6250, 10_000, 500],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    // Claude Code 2.1's default model.
    anthropic(
        "claude-opus-4-8",
        "Claude Opus 4.8",
        &[],
        "2026-05-28",
        [5000, 25_000, 6250, 10_000, 500],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-opus-4-7",
        "Claude Opus 4.7",
        &[],
        "2026-04-16",
        [5000, 25_000, 6250, 10_000, 500],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-opus-4-6",
        "Claude Opus 4.6",
        &[],
        "2026-02-05",
        [5000, 25_000, 6250, 10_000, 500],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-opus-4-5-20251101",
        "Claude Opus 4.5",
        &["claude-opus-4-5"],
        "20251101",
        [5000, 25_000, 6250, 10_000, 500],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    // The model page (stored before 2026-10-07) still says $0.20 for
    // cache hits; the cut to $0.10 that day is reported by several
    // trackers that re-read the pricing page (claudit 1.9.2, PromptFuel
    // 1.0.23, synaps' table of the page). The newer figure is used.
    anthropic(
        "claude-sonnet-5-5",
        "Claude Sonnet 5.5",
        &[],
        "",
        [2000, 10_000, 2500, 4000, 100],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-sonnet-5",
        "Claude Sonnet 5",
        &[],
        "",
        [2000, 10_000, 2500, 4000, 200],
    )
    .checked(TODAY, SONNET_5_PAGE),
    // Sonnet 4.6 and later bill their 1M context at the flat rate.
    anthropic(
        "claude-sonnet-4-6",
        "Claude Sonnet 4.6",
        &[],
        "",
        [3000, 15_000, 3750, 6000, 300],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    // Haiku 5.5 is priced by prompt length: past 100,000 prompt tokens
    // every token of the request costs five times as much.
    anthropic(
        "claude-haiku-5-5",
        "Claude Haiku 5.5",
        &[],
        "2026-10-07",
        [100, 500, 125, 200, 10],
    )
    .long_context(100_000, [500, 2500, 625, 1000, 50])
    .checked(TODAY, HAIKU_5_5_PAGE),
    anthropic(
        "claude-haiku-4-5-20251001",
        "Claude Haiku 4.5",
        &["claude-haiku-4-5"],
        "20251001",
        [1000, 5000, 1250, 2000, 100],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    // Sonnet 4 and 4.5 with the 1M-context beta: prompts over 200K input
    // tokens are billed $6 in / $22.50 out; the cache rates there are the
    // page's multipliers (1.25×, 2×, 0.1×) of $6.
    anthropic(
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        &["claude-sonnet-4-5"],
        "20250929",
        [3000, 15_000, 3750, 6000, 300],
    )
    .long_context(200_000, [6000, 22_500, 7500, 12_000, 600])
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        &["claude-opus-4-1"],
        "20250805",
        [15_000, 75_000, 18_750, 30_000, 1500],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-opus-4-20250514",
        "Claude Opus 4",
        &["claude-opus-4-0"],
        "20250514",
        [15_000, 75_000, 18_750, 30_000, 1500],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-sonnet-4-20250514",
        "Claude Sonnet 4",
        &["claude-sonnet-4-0"],
        "20250514",
        [3000, 15_000, 3750, 6000, 300],
    )
    .long_context(200_000, [6000, 22_500, 7500, 12_000, 600])
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-3-7-sonnet-20250219",
        "Claude 3.7 Sonnet",
        &["claude-3-7-sonnet"],
        "20250219",
        [3000, 15_000, 3750, 6000, 300],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-3-5-sonnet-20241022",
        "Claude 3.5 Sonnet",
        &["claude-3-5-sonnet"],
        "20241022",
        [3000, 15_000, 3750, 6000, 300],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-3-5-haiku-20241022",
        "Claude 3.5 Haiku",
        &["claude-3-5-haiku"],
        "20241022",
        [800, 4000, 1000, 1600, 80],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-3-opus-20240229",
        "Claude 3 Opus",
        &["claude-3-opus"],
        "20240229",
        [15_000, 75_000, 18_750, 30_000, 1500],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    anthropic(
        "claude-3-sonnet-20240229",
        "Claude 3 Sonnet",
        &["claude-3-sonnet"],
        "20240229",
        [3000, 15_000, 3750, 6000, 300],
    )
    .checked(
        FIRST_TABLE_DAY,
        "https://docs.anthropic.com/en/docs/about-claude/pricing",
    ),
    anthropic(
        "claude-3-haiku-20240307",
        "Claude 3 Haiku",
        &["claude-3-haiku"],
        "20240307",
        [250, 1250, 300, 500, 30],
    )
    .checked(TODAY, ANTHROPIC_PRICING),
    // GPT-6 Sol and Luna bill cache writes, and past 272K input tokens
    // input and cache rates double and output goes to 1.5×. GPT-6 Astra
    // and GPT-6.1 Sol are left out: no price for them was found that two
    // sources agree on (use PRICES_FILE).
    row(
        ProviderKind::OpenAI,
        "gpt-6-sol",
        "GPT-6 Sol",
        &[],
        "2026-09-22",
        [2000, 10_000, 2500, 2500, 200],
    )
    .long_context(272_000, [4000, 15_000, 5000, 5000, 400])
    .checked(TODAY, OPENAI_GPT_6),
    row(
        ProviderKind::OpenAI,
        "gpt-6-luna",
        "GPT-6 Luna",
        &[],
        "2026-09-22",
        [100, 500, 125, 125, 10],
    )
    .long_context(272_000, [200, 750, 250, 250, 20])
    .checked(TODAY, OPENAI_GPT_6),
    // GPT-5.6 Terra and Luna after the 2026-07-30 cut (LiteLLM's map of
    // 2026-07-24 still has the old $2.50/$15 and $1/$6). Their cache-write
    // and long-context rates after the cut were not found, so neither is
    // here. GPT-5.6 Sol (and the `gpt-5.6` alias) is left out: its sources
    // disagree ($5/$30 or $4/$20).
    openai(
        "gpt-5.6-terra",
        "GPT-5.6 Terra",
        "2026-07-09",
        [2000, 200, 12_000],
    )
    .checked(TODAY, OPENAI_GPT_5_6),
    openai(
        "gpt-5.6-luna",
        "GPT-5.6 Luna",
        "2026-07-09",
        [200, 20, 1200],
    )
    .checked(TODAY, OPENAI_GPT_5_6),
    // Past 272K input tokens: input and cached input double, output 1.5×.
    openai("gpt-5.5", "GPT-5.5", "2026-04-23", [5000, 500, 30_000])
        .long_context(272_000, [10_000, 45_000, 0, 0, 1000])
        .checked(TODAY, OPENAI_GPT_5_5),
    openai("gpt-5.4", "GPT-5.4", "2026-03-05", [2500, 250, 15_000])
        .long_context(272_000, [5000, 22_500, 0, 0, 500])
        .checked(TODAY, OPENAI_GPT_5_5),
    openai("gpt-5.4-mini", "GPT-5.4 mini", "", [750, 75, 4500]).checked(TODAY, OPENAI_GPT_5_5),
    openai("gpt-5.4-nano", "GPT-5.4 nano", "", [200, 20, 1250]).checked(TODAY, OPENAI_GPT_5_5),
    openai("gpt-4.1", "GPT-4.1", "2025-04-14", [2000, 500, 8000]).checked(TODAY, LITELLM_MAP),
    openai(
        "gpt-4.1-mini",
        "GPT-4.1 mini",
        "2025-04-14",
        [400, 100, 1600],
    )
    .checked(TODAY, LITELLM_MAP),
    openai("gpt-4.1-nano", "GPT-4.1 nano", "2025-04-14", [100, 25, 400])
        .checked(TODAY, LITELLM_MAP),
    openai("o3", "o3", "2025-04-16", [2000, 500, 8000]).checked(TODAY, LITELLM_MAP),
    openai("o4-mini", "o4-mini", "2025-04-16", [1100, 275, 4400]).checked(TODAY, LITELLM_MAP),
    openai("o3-mini", "o3-mini", "2025-01-31", [1100, 550, 4400]).checked(TODAY, LITELLM_MAP),
    openai("gpt-4o", "GPT-4o", "2024-05-13", [2500, 1250, 10_000]).checked(TODAY, LITELLM_MAP),
    // The first GPT-4o snapshot kept its launch price.
    openai(
        "gpt-4o-2024-05-13",
        "GPT-4o (2024-05-13)",
        "2024-05-13",
        [5000, 5000, 15_000],
    )
    .checked(TODAY, LITELLM_MAP),
    openai("gpt-4o-mini", "GPT-4o mini", "2024-07-18", [150, 75, 600]).checked(TODAY, LITELLM_MAP),
    // Embeddings: input tokens only (no cached price, no output).
    openai(
        "text-embedding-3-large",
        "text-embedding-3-large",
        "2024-01-25",
        [130, 130, 0],
    )
    .checked(TODAY, OPENAI_EMBEDDINGS),
    openai(
        "text-embedding-3-small",
        "text-embedding-3-small",
        "2024-01-25",
        [20, 20, 0],
    )
    .checked(TODAY, OPENAI_EMBEDDINGS),
    openai(
        "text-embedding-ada-002",
        "text-embedding-ada-002",
        "2022-12-15",
        [100, 100, 0],
    )
    .checked(TODAY, OPENAI_EMBEDDINGS),
];
