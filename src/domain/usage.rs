//! Token counts: what one answer used (`Usage`), and what one stream frame
//! reports of it (`UsagePatch`, cumulative, so the latest value wins).

use serde::Serialize;

/// Token counts as the upstream reported them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens not served from or written to a cache.
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_creation_input_tokens: u64,
    /// Of the cache writes, those with a one-hour lifetime (priced higher).
    #[serde(skip)]
    pub cache_creation_1h_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: u64,
    /// Of the output tokens, those the model spent reasoning (OpenAI's
    /// o-series). A part of `output_tokens`, not an addition: they are
    /// billed as output and priced there, so nothing adds them again.
    #[serde(skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
            + self.output_tokens
    }
}

/// Token counts a frame reports. Providers send cumulative totals, so the
/// latest value of each field wins.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UsagePatch {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_creation_1h_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    pub fn apply(&mut self, patch: &UsagePatch) {
        let set = |field: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *field = value;
            }
        };
        set(&mut self.input_tokens, patch.input_tokens);
        set(&mut self.output_tokens, patch.output_tokens);
        set(
            &mut self.cache_creation_input_tokens,
            patch.cache_creation_input_tokens,
        );
        set(
            &mut self.cache_creation_1h_tokens,
            patch.cache_creation_1h_tokens,
        );
        set(
            &mut self.cache_read_input_tokens,
            patch.cache_read_input_tokens,
        );
        set(&mut self.reasoning_tokens, patch.reasoning_tokens);
    }
}
