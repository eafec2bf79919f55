//! LiteLLM's `model_prices_and_context_window.json` entries: which are
//! read (chat and responses models of Anthropic and OpenAI) and how their
//! per-token prices become a row.

use serde::Deserialize;

use super::PerToken;
use crate::domain::ProviderKind;
use crate::pricing::{LongContext, Origin, Price, PriceEntry, Rates};

/// The two fields that decide whether a LiteLLM entry is read at all,
/// taken loosely: `sample_spec` holds prose in them.
#[derive(Deserialize, Default)]
pub(super) struct LiteLlmHead {
    litellm_provider: Option<serde_json::Value>,
    mode: Option<serde_json::Value>,
}

impl LiteLlmHead {
    pub(super) fn provider(&self) -> Option<ProviderKind> {
        let chat = match self.mode.as_ref() {
            None => true,
            Some(mode) => matches!(mode.as_str(), Some("chat" | "responses")),
        };
        let provider = match self.litellm_provider.as_ref()?.as_str()? {
            "anthropic" => ProviderKind::Anthropic,
            "openai" => ProviderKind::OpenAI,
            _ => return None,
        };
        chat.then_some(provider)
    }
}

#[derive(Deserialize)]
pub(super) struct LiteLlmEntry {
    input_cost_per_token: Option<PerToken>,
    output_cost_per_token: Option<PerToken>,
    cache_read_input_token_cost: Option<PerToken>,
    cache_creation_input_token_cost: Option<PerToken>,
    cache_creation_input_token_cost_above_1hr: Option<PerToken>,
    input_cost_per_token_above_200k_tokens: Option<PerToken>,
    output_cost_per_token_above_200k_tokens: Option<PerToken>,
    cache_read_input_token_cost_above_200k_tokens: Option<PerToken>,
    cache_creation_input_token_cost_above_200k_tokens: Option<PerToken>,
    cache_creation_input_token_cost_above_1hr_above_200k_tokens: Option<PerToken>,
    input_cost_per_token_above_272k_tokens: Option<PerToken>,
    output_cost_per_token_above_272k_tokens: Option<PerToken>,
    cache_read_input_token_cost_above_272k_tokens: Option<PerToken>,
    cache_creation_input_token_cost_above_272k_tokens: Option<PerToken>,
}

impl LiteLlmEntry {
    /// `None` for an entry without both an input and an output price.
    pub(super) fn into_entry(
        self,
        provider: ProviderKind,
        name: &str,
        changed: Option<&str>,
    ) -> Option<PriceEntry> {
        let input = self.input_cost_per_token?.0;
        let output = self.output_cost_per_token?.0;
        let or = |price: Option<PerToken>, default: u64| price.map_or(default, |p| p.0);
        let write_5m = or(self.cache_creation_input_token_cost, input);
        let rates = Rates {
            input,
            output,
            cache_write_5m: write_5m,
            cache_write_1h: or(self.cache_creation_input_token_cost_above_1hr, write_5m),
            cache_read: or(self.cache_read_input_token_cost, input),
        };
        // LiteLLM prices long prompts past 200K tokens (Anthropic) or past
        // 272K (OpenAI), each in fields of their own.
        let long = |above_tokens: u64,
                    input: Option<PerToken>,
                    output_long: Option<PerToken>,
                    write_long: Option<PerToken>,
                    write_1h_long: Option<PerToken>,
                    read_long: Option<PerToken>| {
            input.map(|long_input| {
                let write = or(write_long, rates.cache_write_5m);
                LongContext {
                    above_tokens,
                    rates: Rates {
                        input: long_input.0,
                        output: or(output_long, output),
                        cache_write_5m: write,
                        cache_write_1h: or(write_1h_long, write),
                        cache_read: or(read_long, rates.cache_read),
                    },
                }
            })
        };
        let long_context = long(
            200_000,
            self.input_cost_per_token_above_200k_tokens,
            self.output_cost_per_token_above_200k_tokens,
            self.cache_creation_input_token_cost_above_200k_tokens,
            self.cache_creation_input_token_cost_above_1hr_above_200k_tokens,
            self.cache_read_input_token_cost_above_200k_tokens,
        )
        .or_else(|| {
            long(
                272_000,
                self.input_cost_per_token_above_272k_tokens,
                self.output_cost_per_token_above_272k_tokens,
                self.cache_creation_input_token_cost_above_272k_tokens,
                None,
                self.cache_read_input_token_cost_above_272k_tokens,
            )
        });
        // LiteLLM names some models `anthropic/claude-…`; upstreams answer
        // with the bare id.
        let id = name
            .strip_prefix(&format!("{}/", provider.as_str()))
            .unwrap_or(name)
            .to_string();
        Some(PriceEntry {
            provider,
            name: id.clone(),
            id,
            aliases: Vec::new(),
            price: Price {
                rates,
                long_context,
            },
            origin: Origin::PriceFile,
            checked: changed.map(str::to_string),
            source: "PRICES_FILE".into(),
        })
    }
}
