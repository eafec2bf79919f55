//! What prompt caching saved, per group of `GET /api/usage`: what the
//! cache reads would have cost as plain input, minus what they cost, at
//! list prices (a model without a price saves nothing known). Prices are
//! per model, so the groups are summed per provider and model first.

use std::collections::BTreeMap;

use crate::domain::ProviderKind;
use crate::pricing::PriceTable;
use crate::store::usage::{DimValue, Dimension, GroupTotals, UsageFilter, totals};
use crate::store::{Store, StoreError};

/// Nano-dollars saved per group of `group_by` (groups without cache reads
/// are left out), given the groups' `totals`. A second query, grouped by
/// provider and model too, is made only when some group read a cache and
/// the grouping does not already name both.
pub async fn cache_savings(
    store: &Store,
    prices: &PriceTable,
    filter: &UsageFilter,
    group_by: &[Dimension],
    totals_of_groups: &[(Vec<DimValue>, GroupTotals)],
) -> Result<BTreeMap<Vec<DimValue>, u64>, StoreError> {
    if totals_of_groups
        .iter()
        .all(|(_, group)| group.tokens.cache_read == 0)
    {
        return Ok(BTreeMap::new());
    }
    let priced = [Dimension::Provider, Dimension::Model];
    if priced.iter().all(|d| group_by.contains(d)) {
        return Ok(savings_of(
            prices,
            group_by,
            group_by.len(),
            totals_of_groups,
        ));
    }
    let mut dimensions = group_by.to_vec();
    for priced_by in priced {
        if !dimensions.contains(&priced_by) {
            dimensions.push(priced_by);
        }
    }
    let finer = totals(store, filter, &dimensions).await?;
    Ok(savings_of(prices, &dimensions, group_by.len(), &finer))
}

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
}
