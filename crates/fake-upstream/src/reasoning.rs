//! Reasoning tokens: OpenAI's reasoning models report, of their output
//! tokens, how many the model spent reasoning (protocols.md sections (b)
//! and (d)). Default answers to such requests report [`REASONING_TOKENS`]
//! of their [`OUTPUT_TOKENS`](super::OUTPUT_TOKENS); others report 0, as
//! the API does for models that do not reason.

use serde_json::Value;

/// Of the output tokens, those a default answer to a reasoning request
/// reports as reasoning.
pub const REASONING_TOKENS: u64 = 64;

/// The reasoning tokens a default answer to `request` (chat completions
/// or Responses) reports: [`REASONING_TOKENS`] for an o-series model
/// (`o1`, `o3`, `o4-mini`, …) or a request that asks for reasoning
/// (`reasoning_effort` on chat completions, `reasoning` on Responses).
pub(super) fn reasoning_tokens(request: &Value) -> u64 {
    let model = request["model"].as_str().unwrap_or_default();
    let o_series = model
        .strip_prefix('o')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    let asked = !request["reasoning_effort"].is_null() || !request["reasoning"].is_null();
    if o_series || asked {
        REASONING_TOKENS
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reasoning_models_and_requests_for_reasoning_report_it() {
        for reasoning in [
            json!({"model": "o3"}),
            json!({"model": "o4-mini"}),
            json!({"model": "gpt-5", "reasoning_effort": "low"}),
            json!({"model": "gpt-5", "reasoning": {"effort": "medium"}}),
        ] {
            assert_eq!(
                reasoning_tokens(&reasoning),
                REASONING_TOKENS,
                "{reasoning}"
            );
        }
        for plain in [
            json!({"model": "gpt-4o-mini"}),
            json!({"model": "omni"}),
            json!({}),
        ] {
            assert_eq!(reasoning_tokens(&plain), 0, "{plain}");
        }
    }
}
