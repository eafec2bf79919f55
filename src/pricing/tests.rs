use super::*;
use crate::domain::ProviderKind::{self, Anthropic, OpenAI};

fn usage(input: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        ..Usage::default()
    }
}

fn table() -> PriceTable {
    PriceTable::built_in()
}

/// $/MTok (input, output) of the row that prices `model`.
fn per_mtok(provider: ProviderKind, model: &str) -> Option<(f64, f64)> {
    table().find(provider, model).map(|entry| {
        (
            per_million(entry.price.rates.input),
            per_million(entry.price.rates.output),
        )
    })
}

fn name_of(provider: ProviderKind, model: &str) -> Option<String> {
    table()
        .find(provider, model)
        .map(|entry| entry.name.clone())
}

#[test]
fn worked_example_from_the_issue() {
    let cost = table()
        .cost_of(Anthropic, "claude-sonnet-4-20250514", &usage(25, 86))
        .unwrap();
    assert_eq!(cost.input, 0.000075);
    assert_eq!(cost.output, 0.00129);
    assert_eq!(cost.total, 0.001365);
}

#[test]
fn claude_code_default_model_is_priced_out_of_the_box() {
    let cost = table()
        .cost_of(Anthropic, "claude-opus-4-8", &usage(1000, 1000))
        .unwrap();
    // 1000 × $5 + 1000 × $25 per million
    assert_eq!(cost.total, 0.03);
    let table = table();
    let entry = table.find(Anthropic, "claude-opus-4-8").unwrap();
    assert_eq!(entry.origin, Origin::BuiltIn);
    assert_eq!(entry.checked.as_deref(), Some("2026-11-30"));
    assert!(entry.source.starts_with("https://"), "{}", entry.source);
}

#[test]
fn every_current_anthropic_family_resolves_dated_and_suffixed_ids() {
    for (model, name) in [
        ("claude-fable-5-1", "Claude Fable 5.1"),
        ("claude-fable-5-1-20260901", "Claude Fable 5.1"),
        ("claude-fable-5-latest", "Claude Fable 5"),
        ("claude-opus-5-5-20260922", "Claude Opus 5.5"),
        ("claude-opus-5-20260724", "Claude Opus 5"),
        ("claude-opus-4-8-20260528", "Claude Opus 4.8"),
        ("claude-opus-4-7-latest", "Claude Opus 4.7"),
        ("claude-opus-4-6-20260101", "Claude Opus 4.6"),
        ("claude-opus-4-5", "Claude Opus 4.5"),
        ("claude-sonnet-5-5-20260928", "Claude Sonnet 5.5"),
        ("claude-sonnet-5-latest", "Claude Sonnet 5"),
        ("claude-sonnet-4-6-20260201", "Claude Sonnet 4.6"),
        ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
        ("claude-haiku-5-5-20261007", "Claude Haiku 5.5"),
        ("claude-haiku-4-5-latest", "Claude Haiku 4.5"),
        ("claude-3-5-sonnet-20240620", "Claude 3.5 Sonnet"),
        ("claude-3-5-haiku-latest", "Claude 3.5 Haiku"),
    ] {
        assert_eq!(name_of(Anthropic, model).as_deref(), Some(name), "{model}");
    }
}

#[test]
fn every_openai_family_resolves_dated_ids() {
    for (model, name) in [
        ("gpt-6-sol", "GPT-6 Sol"),
        ("gpt-6-sol-2026-09-22", "GPT-6 Sol"),
        ("gpt-6-luna-2026-09-22", "GPT-6 Luna"),
        ("gpt-5.6-terra-2026-07-09", "GPT-5.6 Terra"),
        ("gpt-5.6-luna", "GPT-5.6 Luna"),
        ("gpt-5.5-2026-04-23", "GPT-5.5"),
        ("gpt-5.4-2026-03-05", "GPT-5.4"),
        ("gpt-5.4-mini-2026-03-17", "GPT-5.4 mini"),
        ("gpt-5.4-nano", "GPT-5.4 nano"),
        ("gpt-4.1-2025-04-14", "GPT-4.1"),
        ("gpt-4.1-mini-2025-04-14", "GPT-4.1 mini"),
        ("o3-2025-04-16", "o3"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("o3-mini", "o3-mini"),
        ("gpt-4o-2024-08-06", "GPT-4o"),
        ("gpt-4o-mini-2024-07-18", "GPT-4o mini"),
    ] {
        assert_eq!(name_of(OpenAI, model).as_deref(), Some(name), "{model}");
    }
    // The first GPT-4o snapshot kept its launch price.
    assert_eq!(per_mtok(OpenAI, "gpt-4o-2024-05-13"), Some((5.0, 15.0)));
}

#[test]
fn another_model_is_never_priced_as_its_neighbour() {
    for (provider, model) in [
        // A later version is not the earlier family.
        (Anthropic, "claude-opus-5-6"),
        (Anthropic, "claude-opus-4-9"),
        (Anthropic, "claude-3-opusx"),
        // A variant word names another model.
        (OpenAI, "gpt-5.4-pro"),
        (OpenAI, "gpt-5.5-pro-2026-04-23"),
        (OpenAI, "gpt-4o-audio-preview"),
        (OpenAI, "gpt-6-sol-codex"),
        // Providers do not share rows.
        (Anthropic, "gpt-4o"),
        (OpenAI, "claude-sonnet-4-0"),
    ] {
        assert_eq!(name_of(provider, model), None, "{model}");
    }
}

#[test]
fn old_backend_models_keep_their_prices() {
    assert_eq!(
        per_mtok(Anthropic, "claude-3-opus-20240229"),
        Some((15.0, 75.0))
    );
    assert_eq!(
        per_mtok(Anthropic, "claude-3-sonnet-20240229"),
        Some((3.0, 15.0))
    );
    assert_eq!(
        per_mtok(Anthropic, "claude-3-haiku-20240307"),
        Some((0.25, 1.25))
    );
    assert_eq!(per_mtok(Anthropic, "claude-sonnet-4-0"), Some((3.0, 15.0)));
}

#[test]
fn openai_models_are_priced_with_cached_input() {
    let usage = Usage {
        input_tokens: 600,
        output_tokens: 100,
        cache_read_input_tokens: 400,
        ..Usage::default()
    };
    let cost = table()
        .cost_of(OpenAI, "gpt-4o-mini-2024-07-18", &usage)
        .unwrap();
    // 600×0.15 + 400×0.075 = 120; 100×0.6 = 60 ($/MTok·tokens)
    assert_eq!((cost.input, cost.output), (0.00012, 0.00006));
}

#[test]
fn reasoning_tokens_are_priced_once_as_the_output_they_are_part_of() {
    let plain = usage(1000, 500);
    let reasoned = Usage {
        reasoning_tokens: 400,
        ..plain
    };
    let cost = |usage: &Usage| table().cost_nanos(OpenAI, "o3", "", usage);
    // o3: $2 in, $8 out per million: 1000×2000 + 500×8000 nano-dollars.
    assert_eq!(cost(&reasoned), Some(6_000_000));
    assert_eq!(cost(&reasoned), cost(&plain));
}

#[test]
fn cache_tokens_use_their_own_prices() {
    let usage = Usage {
        input_tokens: 1000,
        output_tokens: 0,
        cache_creation_input_tokens: 3000,
        cache_creation_1h_tokens: 1000,
        cache_read_input_tokens: 10_000,
        reasoning_tokens: 0,
    };
    let cost = table()
        .cost_of(Anthropic, "claude-sonnet-4-5", &usage)
        .unwrap();
    // 1000×3 + 2000×3.75 + 1000×6 + 10000×0.3 = 19,500 $/MTok·tokens
    assert_eq!(cost.input, 0.0195);
}

#[test]
fn a_long_prompt_bills_the_whole_request_at_the_long_context_rates() {
    let at = |input: u64, cached: u64| {
        let usage = Usage {
            input_tokens: input,
            output_tokens: 1000,
            cache_read_input_tokens: cached,
            ..Usage::default()
        };
        table()
            .cost_of(Anthropic, "claude-haiku-5-5", &usage)
            .unwrap()
    };
    // At the threshold: 100,000 × $0.10 + 1000 × $0.50 per million.
    assert_eq!(at(100_000, 0).total, 0.0105);
    // Past it (cache reads count toward the prompt): every token at the
    // higher rates, output too: 60,000 × 0.5 + 50,000 × 0.05 + 1000 × 2.5.
    assert_eq!(at(60_000, 50_000).total, 0.035);
    let sonnet = Usage {
        input_tokens: 250_000,
        output_tokens: 1000,
        ..Usage::default()
    };
    let cost = table()
        .cost_of(Anthropic, "claude-sonnet-4-5-20250929", &sonnet)
        .unwrap();
    // 250,000 × $6 + 1000 × $22.50 per million.
    assert_eq!(cost.total, 1.5225);
}

#[test]
fn hostile_token_counts_saturate_instead_of_overflowing() {
    let usage = usage(u64::MAX, u64::MAX);
    let nanos = table().cost_nanos(Anthropic, "claude-opus-4-8", "", &usage);
    assert_eq!(nanos, Some(u64::MAX));
}

#[test]
fn a_price_file_row_overrides_the_built_in_one_and_adds_new_ones() {
    let row = |id: &str, input: u64| PriceEntry {
        provider: Anthropic,
        id: id.into(),
        name: id.into(),
        aliases: Vec::new(),
        price: Price {
            rates: Rates {
                input,
                output: input,
                cache_write_5m: input,
                cache_write_1h: input,
                cache_read: input,
            },
            long_context: None,
        },
        origin: Origin::PriceFile,
        checked: None,
        source: "PRICES_FILE".into(),
    };
    let table = PriceTable::with_file(vec![row("claude-opus-4-8", 7000), row("claude-nova", 1)]);
    let opus = table.find(Anthropic, "claude-opus-4-8-20260528").unwrap();
    assert_eq!(
        (opus.origin, opus.price.rates.input),
        (Origin::PriceFile, 7000)
    );
    let listed = table
        .entries()
        .iter()
        .filter(|entry| entry.id == "claude-opus-4-8")
        .count();
    assert_eq!(listed, 1, "the built-in row is replaced, not listed twice");
    assert_eq!(
        table
            .find(Anthropic, "claude-nova-20261201")
            .map(|e| e.id.as_str()),
        Some("claude-nova")
    );
    assert_eq!(
        table.find(Anthropic, "claude-sonnet-4-0").unwrap().origin,
        Origin::BuiltIn
    );
}

/// `find` by its definition: every entry's every prefix scanned, the
/// longest match kept, the first entry on a tie.
fn find_by_scanning(table: &PriceTable, provider: ProviderKind, model: &str) -> Option<String> {
    let mut best: Option<(usize, &PriceEntry)> = None;
    for entry in table.entries().iter().filter(|e| e.provider == provider) {
        for prefix in std::iter::once(&entry.id).chain(&entry.aliases) {
            if table::in_family(model, prefix) && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), entry));
            }
        }
    }
    best.map(|(_, entry)| entry.name.clone())
}

#[test]
fn the_prefix_index_finds_what_a_scan_of_every_entry_finds() {
    let table = table();
    let suffixes = [
        "",
        "-20260901",
        "-latest",
        "-pro",
        "-mini",
        "-5",
        "-5-5",
        "-v2",
        "-",
        "x",
    ];
    let mut checked = 0;
    for entry in table.entries() {
        for prefix in std::iter::once(&entry.id).chain(&entry.aliases) {
            for suffix in suffixes {
                let model = format!("{prefix}{suffix}");
                for provider in [Anthropic, OpenAI] {
                    assert_eq!(
                        table.find(provider, &model).map(|e| e.name.clone()),
                        find_by_scanning(&table, provider, &model),
                        "{provider:?} {model}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} models checked");
}
