//! Generated ledger history, so the usage charts have something to draw:
//! requests spread over past hours with a daily rhythm, a few models, some
//! rate limits and overloads, and prices in the range of real ones.

use std::time::Duration;

use keygate::domain::{ProviderKind, Usage, UsageRow};
use keygate::ledger::now_ms;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::TestApp;

const HOUR_MS: i64 = 3_600_000;

/// Models with their prices in nano-dollars per token (input, output).
const MODELS: [(&str, u64, u64); 3] = [
    ("claude-sonnet-4-20250514", 3_000, 15_000),
    ("claude-haiku-4-5", 1_000, 5_000),
    ("claude-opus-4-1", 15_000, 75_000),
];

/// About `per_key_hour` requests for each key in each of the last `hours`
/// hours (busier in the afternoon than at night).
pub fn history(keys: &[String], hours: i64, per_key_hour: f64) -> Vec<UsageRow> {
    let mut rng = StdRng::seed_from_u64(12);
    let now = now_ms();
    let mut rows = Vec::new();
    for hour in (0..hours).rev() {
        let start = now - (hour + 1) * HOUR_MS;
        let hour_of_day = (start / HOUR_MS) % 24;
        let rhythm = 1.0 + 0.8 * ((hour_of_day as f64 - 9.0) / 24.0 * std::f64::consts::TAU).sin();
        for (k, key) in keys.iter().enumerate() {
            // Keys differ in how busy they are, so the charts have a top few.
            let share = per_key_hour * rhythm * (2.0 / (1.0 + k as f64 * 0.35));
            let count = share.floor() as u32 + u32::from(rng.gen_bool(share.fract()));
            for _ in 0..count {
                let at_ms = start + rng.gen_range(0..HOUR_MS);
                rows.push(row(&mut rng, at_ms, key, keys));
            }
        }
    }
    rows
}

fn row(rng: &mut StdRng, at_ms: i64, key: &str, keys: &[String]) -> UsageRow {
    // Mostly Sonnet, some Haiku, a little Opus.
    let (model, input_price, output_price) =
        MODELS[[0, 0, 0, 0, 0, 0, 1, 1, 1, 2][rng.gen_range(0..10)]];
    let input = rng.gen_range(200..4_000);
    let output = rng.gen_range(50..900);
    let roll = rng.gen_range(0..100);
    let (status, error_class) = match roll {
        0..=3 => (429, Some("rate_limit_error".to_string())),
        4 => (529, Some("overloaded_error".to_string())),
        _ => (200, None),
    };
    let failed_over = roll == 5 || roll == 6;
    let mut keys_tried = Vec::new();
    if failed_over {
        keys_tried.push(keys[rng.gen_range(0..keys.len())].clone());
    }
    if !keys_tried.contains(&key.to_string()) {
        keys_tried.push(key.to_string());
    }
    let ok = status == 200;
    UsageRow {
        at_ms,
        request_id: format!("req_{:016x}", rng.r#gen::<u64>()),
        route: "/v1/messages",
        provider: Some(ProviderKind::Anthropic),
        model_requested: Some(model.to_string()),
        model_answered: ok.then(|| model.to_string()),
        key_id: Some(key.to_string()),
        attempts: keys_tried.len() as u32,
        keys_tried,
        status,
        error_class,
        usage: if ok {
            Usage {
                input_tokens: input,
                output_tokens: output,
                ..Usage::default()
            }
        } else {
            Usage::default()
        },
        cost_nanos: if ok {
            input * input_price + output * output_price
        } else {
            0
        },
        latency_us: rng.gen_range(300_000..4_000_000),
        ttft_us: Some(rng.gen_range(150_000..900_000)),
        client_key: None,
        unpriced: false,
    }
}

/// Records `rows` through keygate's own ledger sink, in batches the queue
/// can hold, and waits until the writer has stored them all.
pub async fn record(app: &TestApp, rows: Vec<UsageRow>) {
    let counters = app.ledger.counters().clone();
    let mut target = counters.written();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<UsageRow> = rows.by_ref().take(2_000).collect();
        target += batch.len() as u64;
        for row in batch {
            app.ledger.record(row);
        }
        while counters.written() < target {
            assert_eq!(counters.dropped(), 0, "the ledger queue overflowed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
