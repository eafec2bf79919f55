//! What prompt caching saved, per group of `GET /api/usage`: what the
//! cache reads would have cost as plain input, minus what they cost, at
//! list prices (a model without a price saves nothing known). Prices are
//! per model, so the groups are summed per provider and model first.

use std::collections::BTreeMap;

use crate::domain::ProviderKind;
use crate::pricing;
use crate::store::usage::{DimValue, Dimension, UsageFilter, totals};
use crate::store::{Store, StoreError};

/// Nano-dollars saved per group of `group_by` (groups without cache reads
/// are left out).
pub async fn cache_savings(
    store: &Store,
    filter: &UsageFilter,
    group_by: &[Dimension],
) -> Result<BTreeMap<Vec<DimValue>, u64>, StoreError> {
    let mut dimensions = group_by.to_vec();
    for priced_by in [Dimension::Provider, Dimension::Model] {
        if !dimensions.contains(&priced_by) {
            dimensions.push(priced_by);
        }
    }
    let position = |wanted| dimensions.iter().position(|d| *d == wanted);
    let (Some(provider_at), Some(model_at)) =
        (position(Dimension::Provider), position(Dimension::Model))
    else {
        return Ok(BTreeMap::new());
    };
    let mut savings = BTreeMap::new();
    for (values, group) in totals(store, filter, &dimensions).await? {
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
            .and_then(|(provider, model)| pricing::find(provider, model))
            .map_or(0, |entry| {
                entry.price.input.saturating_sub(entry.price.cache_read)
            });
        *savings
            .entry(values[..group_by.len()].to_vec())
            .or_default() += group.tokens.cache_read.saturating_mul(saved_per_token);
    }
    Ok(savings)
}
