//! `GET /api/models`: providers, their models with list prices, and each
//! provider's default model, for the frontend's model picker. No auth.

use std::collections::BTreeMap;

use axum::Json;
use serde_json::{Value, json};

use crate::domain::ProviderKind;
use crate::pricing::{PRICES, per_million};

pub async fn list_models() -> Json<Value> {
    let mut providers = BTreeMap::new();
    for &provider in ProviderKind::ALL.iter().filter(|p| !p.is_search()) {
        let models: Vec<Value> = PRICES
            .iter()
            .filter(|entry| entry.provider == provider)
            .map(|entry| {
                let p = entry.price;
                json!({
                    "id": entry.id,
                    "name": entry.name,
                    "aliases": entry.aliases,
                    "pricing": {
                        "unit": "USD per million tokens",
                        "input": per_million(p.input),
                        "output": per_million(p.output),
                        "cache_write_5m": per_million(p.cache_write_5m),
                        "cache_write_1h": per_million(p.cache_write_1h),
                        "cache_read": per_million(p.cache_read),
                    },
                })
            })
            .collect();
        providers.insert(
            provider.as_str(),
            json!({ "default_model": provider.default_model(), "models": models }),
        );
    }
    Json(json!({ "providers": providers }))
}
