//! What prompt caching saved, per group of `GET /api/usage`: what the
//! cache reads would have cost as plain input, minus what they cost, at
//! list prices (a model without a price saves nothing known). Prices are
//! per model, so the groups are summed per provider and model first
//! (`totals_with_savings`).

use std::collections::BTreeMap;

use crate::domain::ProviderKind;
use crate::pricing::PriceTable;
use crate::store::usage::{DimValue, Dimension, GroupTotals, UsageFilter, totals};
use crate::store::{Store, StoreError};

/// Totals per group of `group_by`, and the nano-dollars prompt caching
/// saved per group (groups without cache reads are left out of the map).
///
/// One query, grouped by provider and model as well when `group_by` does
/// not name both: the finer groups are priced, then folded into the groups
/// asked for. (A second query for the prices, as before, doubled the time
/// of a day's `group_by=key,hour` over a million rows whenever any request
/// had read a cache.)
pub async fn totals_with_savings(
    store: &Store,
    prices: &PriceTable,
    filter: &UsageFilter,
    group_by: &[Dimension],
) -> Result<GroupsAndSavings, StoreError> {
    let mut dimensions = group_by.to_vec();
    for priced_by in [Dimension::Provider, Dimension::Model] {
        if !dimensions.contains(&priced_by) {
            dimensions.push(priced_by);
        }
    }
    let finer = totals(store, filter, &dimensions).await?;
    let savings = savings_of(prices, &dimensions, group_by.len(), &finer);
    if dimensions.len() == group_by.len() {
        return Ok((finer, savings));
    }
    let mut groups: BTreeMap<Vec<DimValue>, GroupTotals> = BTreeMap::new();
    for (values, group) in &finer {
        groups
            .entry(values[..group_by.len()].to_vec())
            .or_default()
            .merge(group);
    }
    Ok((groups.into_iter().collect(), savings))
}

/// The groups of `GET /api/usage` in order, and each one's saving.
pub type GroupsAndSavings = (
    Vec<(Vec<DimValue>, GroupTotals)>,
    BTreeMap<Vec<DimValue>, u64>,
);

/// Sums the saving of each of `groups` (grouped by `dimensions`, provider
/// and model among them) into its group of the first `kept` dimensions.
fn savings_of(
    prices: &PriceTable,
    dimensions: &[Dimension],
    kept: usize,
    groups: &[(Vec<DimValue>, GroupTotals)],
) -> BTreeMap<Vec<DimValue>, u64> {
    let position = |wanted| dimensions.iter().position(|d| *d == wanted);
    let (Some(provider_at), Some(model_at)) =
        (position(Dimension::Provider), position(Dimension::Model))
    else {
        return BTreeMap::new();
    };
    let mut savings = BTreeMap::new();
    for (values, group) in groups {
        if group.tokens.cache_read == 0 {
            continue;
        }
        let name = |at: usize| match &values[at] {
            DimValue::Name(Some(name)) => Some(name.as_str()),
            _ => None,
        };
        let saved_per_token = name(provider_at)
            .and_then(|provider| provider.parse::<ProviderKind>().ok())
            .zip(name(model_at))
            .and_then(|(provider, model)| prices.find(provider, model))
            .map_or(0, |entry| {
                let rates = &entry.price.rates;
                rates.input.saturating_sub(rates.cache_read)
            });
        *savings.entry(values[..kept].to_vec()).or_default() +=
            group.tokens.cache_read.saturating_mul(saved_per_token);
    }
    savings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::usage::TokenTotals;

    fn group(provider: &str, model: &str, cache_read: u64) -> (Vec<DimValue>, GroupTotals) {
        let name = |text: &str| DimValue::Name(Some(text.to_string()));
        let totals = GroupTotals {
            tokens: TokenTotals {
                cache_read,
                ..TokenTotals::default()
            },
            ..GroupTotals::default()
        };
        (vec![name(provider), name(model)], totals)
    }

    #[test]
    fn reads_save_the_input_price_less_the_read_price_of_their_model() {
        let dimensions = [Dimension::Provider, Dimension::Model];
        let groups = [
            // Sonnet 4: $3 input, $0.30 cache reads per million tokens.
            group("anthropic", "claude-sonnet-4-20250514", 1_000_000),
            // gpt-4o: $2.50 input, $1.25 cached.
            group("openai", "gpt-4o", 2_000_000),
            group("anthropic", "claude-unknown-model", 1_000_000),
        ];
        let by_provider = savings_of(&PriceTable::built_in(), &dimensions, 1, &groups);
        let anthropic = DimValue::Name(Some("anthropic".into()));
        let openai = DimValue::Name(Some("openai".into()));
        assert_eq!(by_provider[&vec![anthropic]], 2_700_000_000);
        assert_eq!(by_provider[&vec![openai]], 2_500_000_000);
        assert_eq!(
            savings_of(&PriceTable::built_in(), &dimensions, 0, &groups)[&vec![]],
            5_200_000_000
        );
    }

    /// Rows of two providers, three models, three keys and a few outcomes,
    /// some with cache reads, over two hours.
    fn rows(now_ms: i64) -> Vec<crate::domain::UsageRow> {
        use crate::domain::{Usage, UsageRow};
        let models = [
            (ProviderKind::Anthropic, "claude-sonnet-4-20250514"),
            (ProviderKind::Anthropic, "claude-haiku-4-5"),
            (ProviderKind::OpenAI, "gpt-4o"),
        ];
        (0..600u64)
            .map(|i| {
                let (provider, model) = models[(i % 3) as usize];
                let failed = i % 7 == 0;
                UsageRow {
                    at_ms: now_ms - 2 * 3_600_000 + (i as i64) * 11_000,
                    request_id: format!("req-{i}"),
                    route: "/v1/messages",
                    provider: Some(provider),
                    model_requested: Some(model.to_string()),
                    model_answered: None,
                    key_id: Some(format!("key_{}", i % 4)),
                    attempts: 1,
                    keys_tried: vec![format!("key_{}", i % 4)],
                    status: if failed { 429 } else { 200 },
                    error_class: failed.then(|| "rate_limit_error".to_string()),
                    usage: Usage {
                        input_tokens: 10 + i,
                        output_tokens: 20,
                        cache_read_input_tokens: if i % 2 == 0 { 1_000 } else { 0 },
                        ..Usage::default()
                    },
                    cost_nanos: 100 + i,
                    latency_us: 1_000 + 37 * i,
                    ttft_us: None,
                    client_key: None,
                    unpriced: false,
                    cache_scope: None,
                }
            })
            .collect()
    }

    #[tokio::test]
    async fn the_folded_groups_are_the_groups_a_query_by_them_returns() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        let now = crate::ledger::now_ms();
        crate::store::usage::write_batch(&store, &rows(now))
            .await
            .unwrap();
        let filter = UsageFilter {
            from_ms: now - 3 * 3_600_000,
            to_ms: now,
            provider: None,
            model: None,
            key: None,
        };
        let prices = PriceTable::built_in();
        for group_by in [
            vec![],
            vec![Dimension::Key],
            vec![Dimension::Key, Dimension::Hour],
            vec![Dimension::Status],
            vec![Dimension::Model],
            vec![Dimension::Model, Dimension::Provider],
        ] {
            let (groups, savings) = totals_with_savings(&store, &prices, &filter, &group_by)
                .await
                .unwrap();
            let direct = totals(&store, &filter, &group_by).await.unwrap();
            assert!(!groups.is_empty(), "{group_by:?}");
            assert_eq!(groups, direct, "grouped by {group_by:?}");
            let saved: u64 = savings.values().sum();
            // 100 Sonnet 4 rows read 1,000 tokens each, saving $2.70 per
            // million; 100 gpt-4o rows, $1.25; Haiku's 100 rows, $0.90.
            assert_eq!(
                saved,
                270_000_000 + 125_000_000 + 90_000_000,
                "{group_by:?}"
            );
        }
    }
}
