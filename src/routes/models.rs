//! `GET /api/models`: providers, the models keygate has a price for, with
//! list prices and where each price came from (built in, checked on a
//! given day against a given page, or the price file), each provider's
//! default model, and the models that answered without a price. No auth.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app_state::AppState;
use crate::domain::ProviderKind;
use crate::pricing::{PriceEntry, Rates, per_million};

pub async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let table = state.prices.table();
    let unpriced = state.prices.unpriced().list(&table);
    let mut providers = BTreeMap::new();
    for &provider in ProviderKind::ALL.iter().filter(|p| !p.is_search()) {
        let models: Vec<Value> = table
            .entries()
            .iter()
            .filter(|entry| entry.provider == provider)
            .map(model_view)
            .collect();
        let unpriced: Vec<&str> = unpriced
            .iter()
            .filter(|seen| seen.provider == provider)
            .map(|seen| seen.model.as_str())
            .collect();
        providers.insert(
            provider.as_str(),
            json!({
                "default_model": provider.default_model(),
                "models": models,
                "unpriced_models": unpriced,
            }),
        );
    }
    Json(json!({
        "providers": providers,
        "unpriced_models": unpriced,
        "unpriced_models_not_listed": state.prices.unpriced().overflow(),
    }))
}

fn model_view(entry: &PriceEntry) -> Value {
    let price = entry.price;
    let mut pricing = rates_view(&price.rates);
    if let Some(long) = price.long_context {
        pricing["long_context"] = rates_view(&long.rates);
        pricing["long_context"]["above_prompt_tokens"] = json!(long.above_tokens);
    }
    pricing["unit"] = json!("USD per million tokens");
    pricing["source"] = json!(entry.origin);
    pricing["checked"] = json!(entry.checked);
    pricing["reference"] = json!(entry.source);
    json!({
        "id": entry.id,
        "name": entry.name,
        "aliases": entry.aliases,
        "pricing": pricing,
    })
}

fn rates_view(rates: &Rates) -> Value {
    json!({
        "input": per_million(rates.input),
        "output": per_million(rates.output),
        "cache_write_5m": per_million(rates.cache_write_5m),
        "cache_write_1h": per_million(rates.cache_write_1h),
        "cache_read": per_million(rates.cache_read),
    })
}
