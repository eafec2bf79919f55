//! `GET /v1/models` for the SDKs' `models.list()`: the models keygate
//! prices out of the box, in Anthropic's list shape when an Anthropic SDK asks (it sends
//! `anthropic-version`), else in OpenAI's (every model, since `claude-`
//! models are served on `/v1/chat/completions` too).

use axum::Json;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::domain::ProviderKind;
use crate::pricing::{BUILT_IN, BuiltInPrice};

pub async fn list_models(headers: HeaderMap) -> Json<Value> {
    if headers.contains_key("anthropic-version") {
        let data: Vec<Value> = BUILT_IN
            .iter()
            .filter(|m| m.provider == ProviderKind::Anthropic)
            .map(|m| {
                json!({"type": "model", "id": m.id, "display_name": m.name,
                       "created_at": format!("{}T00:00:00Z", iso_date(m))})
            })
            .collect();
        let first = data.first().map(|m| m["id"].clone());
        let last = data.last().map(|m| m["id"].clone());
        return Json(json!({"data": data, "has_more": false, "first_id": first, "last_id": last}));
    }
    let data: Vec<Value> = BUILT_IN
        .iter()
        .map(|m| {
            json!({"id": m.id, "object": "model", "created": unix_date(m),
                   "owned_by": m.provider.as_str()})
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}

/// `YYYY-MM-DD`, whether the table holds it so or as `YYYYMMDD`.
fn iso_date(model: &BuiltInPrice) -> String {
    let digits: String = model
        .released
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    match (digits.get(0..4), digits.get(4..6), digits.get(6..8)) {
        (Some(y), Some(m), Some(d)) => format!("{y}-{m}-{d}"),
        _ => "1970-01-01".into(),
    }
}

fn unix_date(model: &BuiltInPrice) -> u64 {
    humantime::parse_rfc3339(&format!("{}T00:00:00Z", iso_date(model)))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}
