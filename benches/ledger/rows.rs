//! Generated ledger rows with a realistic spread: 20 keys (12 Anthropic, 8
//! OpenAI), 5 models with uneven shares, mostly successes with a few
//! rate limits, client hang-ups, failures and refusals, log-normal
//! latencies, priced with keygate's own price list. Rows come in arrival
//! order with up to a second of jitter, as a day of traffic is recorded.

use keygate::domain::{ProviderKind, Usage, UsageRow};
use keygate::pricing::PriceTable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ANTHROPIC_KEYS: usize = 12;
const KEYS: usize = 20;

/// (provider, requested model, answered model, share in percent)
const MODELS: [(ProviderKind, &str, &str, u32); 5] = [
    (
        ProviderKind::Anthropic,
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        45,
    ),
    (
        ProviderKind::Anthropic,
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        25,
    ),
    (
        ProviderKind::Anthropic,
        "claude-opus-4-1",
        "claude-opus-4-1-20250805",
        5,
    ),
    (ProviderKind::OpenAI, "gpt-4o", "gpt-4o-2024-08-06", 15),
    (
        ProviderKind::OpenAI,
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        10,
    ),
];

/// (status, error class, share in tenths of a percent)
const OUTCOMES: [(u16, Option<&str>, u32); 6] = [
    (200, None, 920),
    (429, Some("rate_limit_error"), 30),
    (499, Some("client_closed"), 15),
    (400, Some("invalid_request_error"), 15),
    (500, Some("api_error"), 10),
    // A stream that failed after it began keeps its 200.
    (200, Some("api_error"), 10),
];

pub struct RowMaker {
    rng: StdRng,
    first_ms: i64,
    span_ms: i64,
    count: u64,
    made: u64,
    client_keys: Vec<String>,
    prices: PriceTable,
}

impl RowMaker {
    /// `count` rows spread over `[first_ms, first_ms + span_ms)`.
    pub fn new(seed: u64, first_ms: i64, span_ms: i64, count: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let client_keys = (0..5)
            .map(|_| format!("{:016x}", rng.r#gen::<u64>()))
            .collect();
        Self {
            rng,
            first_ms,
            span_ms,
            count,
            made: 0,
            client_keys,
            prices: PriceTable::built_in(),
        }
    }

    /// The next row, or `None` once `count` were made.
    pub fn next_row(&mut self) -> Option<UsageRow> {
        if self.made == self.count {
            return None;
        }
        let slot = self.span_ms as f64 * self.made as f64 / self.count as f64;
        self.made += 1;
        let at_ms = (self.first_ms + slot as i64 + self.rng.gen_range(0..1_000))
            .min(self.first_ms + self.span_ms - 1);
        Some(self.row_at(at_ms))
    }

    /// A row at `at_ms`.
    pub fn row_at(&mut self, at_ms: i64) -> UsageRow {
        let rng = &mut self.rng;
        let (provider, requested, answered, _) = pick(rng, &MODELS, |m| m.3);
        let key = match provider {
            ProviderKind::Anthropic => rng.gen_range(0..ANTHROPIC_KEYS),
            // The models table holds chat providers only.
            _ => rng.gen_range(ANTHROPIC_KEYS..KEYS),
        };
        let (status, error_class, _) = pick(rng, &OUTCOMES, |o| o.2);
        let answered_whole = status == 200 && error_class.is_none();
        let usage = if status == 200 {
            Usage {
                input_tokens: rng.gen_range(100..20_000),
                output_tokens: rng.gen_range(10..2_000),
                cache_read_input_tokens: if rng.gen_bool(0.4) {
                    rng.gen_range(0..50_000)
                } else {
                    0
                },
                cache_creation_input_tokens: if rng.gen_bool(0.1) {
                    rng.gen_range(0..5_000)
                } else {
                    0
                },
                cache_creation_1h_tokens: 0,
                reasoning_tokens: 0,
            }
        } else {
            Usage::default()
        };
        let latency_us = lognormal(rng, 1_500_000.0, 0.8).max(1_000.0) as u64;
        let attempts = if status == 429 { 3 } else { 1 };
        let key_id = format!("key_{key:02}");
        let keys_tried = (0..attempts)
            .map(|i| format!("key_{:02}", (key + i) % KEYS))
            .collect();
        UsageRow {
            at_ms,
            request_id: uuid::Uuid::new_v4().to_string(),
            route: match provider {
                ProviderKind::Anthropic => "/v1/messages",
                _ => "/v1/chat/completions",
            },
            provider: Some(provider),
            model_requested: Some(requested.to_string()),
            model_answered: (status == 200).then(|| answered.to_string()),
            key_id: Some(key_id),
            attempts: attempts as u32,
            keys_tried,
            status,
            error_class: error_class.map(str::to_string),
            cost_nanos: self
                .prices
                .cost_nanos(provider, answered, requested, &usage)
                .unwrap_or(0),
            usage,
            latency_us,
            ttft_us: (answered_whole && rng.gen_bool(0.7))
                .then(|| (latency_us as f64 * rng.gen_range(0.05..0.3)) as u64),
            client_key: Some(self.client_keys[rng.gen_range(0..5)].clone()),
            unpriced: false,
            cache_scope: None,
        }
    }
}

/// An item drawn by its weight.
fn pick<T: Copy>(rng: &mut StdRng, items: &[T], weight: impl Fn(&T) -> u32) -> T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut ticket = rng.gen_range(0..total);
    for item in items {
        if ticket < weight(item) {
            return *item;
        }
        ticket -= weight(item);
    }
    items[items.len() - 1]
}

/// A log-normal draw with median `median` (Box–Muller for the normal).
fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.r#gen());
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    median * (sigma * normal).exp()
}
