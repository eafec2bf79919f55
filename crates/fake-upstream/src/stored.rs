//! What the fake keeps between calls: stored responses, batches and files
//! (`batches`), each visible only to the key that created it, as the real
//! APIs keep them per organisation. Another key gets the API's 404, which
//! is what keygate must never let happen.

use std::collections::HashMap;

use axum::http::Method;
use serde_json::{Value, json};

use super::canned::Canned;
use super::responses::{created, new_response, not_found};

/// Most resources kept; past it the oldest are forgotten, so a long run
/// of the standalone fake stays bounded.
const MAX_ITEMS: usize = 10_000;

#[derive(Default)]
pub(super) struct Stored {
    items: HashMap<String, Item>,
    /// Ids in creation order, for forgetting the oldest.
    order: std::collections::VecDeque<String>,
}

pub(super) struct Item {
    key: String,
    pub object: Value,
    /// A file's bytes; a batch's requests (one JSON value per line).
    pub content: Vec<u8>,
    /// How often the resource was read: a batch ends at its first poll.
    pub polls: u32,
}

impl Stored {
    pub(super) fn put(&mut self, key: &str, object: Value) {
        self.put_with(key, object, Vec::new());
    }

    pub(super) fn put_with(&mut self, key: &str, object: Value, content: Vec<u8>) {
        let Some(id) = object["id"].as_str().map(str::to_string) else {
            return;
        };
        if self.order.len() == MAX_ITEMS
            && let Some(oldest) = self.order.pop_front()
        {
            self.items.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.items.insert(
            id,
            Item {
                key: key.to_string(),
                object,
                content,
                polls: 0,
            },
        );
    }

    /// The object `id`, if `key` created it.
    fn owned(&mut self, key: &str, id: &str) -> Option<&mut Value> {
        self.item(key, id).map(|item| &mut item.object)
    }

    /// The resource `id`, if `key` created it.
    pub(super) fn item(&mut self, key: &str, id: &str) -> Option<&mut Item> {
        self.items.get_mut(id).filter(|item| item.key == key)
    }

    pub(super) fn remove(&mut self, id: &str) {
        self.items.remove(id);
    }

    /// `key`'s resources whose `field` is `value` (OpenAI's `object`,
    /// Anthropic's `type`), oldest first.
    pub(super) fn listed(&self, key: &str, field: &str, value: &str) -> Vec<Value> {
        self.order
            .iter()
            .filter_map(|id| self.items.get(id))
            .filter(|item| item.key == key && item.object[field] == value)
            .map(|item| item.object.clone())
            .collect()
    }

    /// `POST /v1/responses` by `key`.
    pub(super) fn create_response(&mut self, key: &str, request: &Value) -> Canned {
        if let Some(previous) = request["previous_response_id"].as_str()
            && self.owned(key, previous).is_none()
        {
            return not_found(
                "Previous response",
                previous,
                Some("previous_response_not_found"),
                Some("previous_response_id"),
            );
        }
        let response = new_response(request);
        if response["store"].as_bool() != Some(false) {
            self.put(key, response.clone());
        }
        created(&response, request["stream"].as_bool() == Some(true))
    }

    /// `GET`/`DELETE /v1/responses/{id}` and `POST …/{id}/cancel` by `key`.
    pub(super) fn on_response(&mut self, key: &str, method: &Method, path: &str) -> Canned {
        let rest = path.trim_start_matches("/v1/responses/");
        let (id, cancel) = match rest.split_once('/') {
            Some((id, "cancel")) => (id, true),
            _ => (rest, false),
        };
        let Some(object) = self.owned(key, id) else {
            return not_found("Response", id, None, None);
        };
        if cancel {
            object["status"] = json!("cancelled");
            return Canned::json(200, object.clone());
        }
        if method == Method::DELETE {
            self.items.remove(id);
            return Canned::json(
                200,
                json!({"id": id, "object": "response.deleted", "deleted": true}),
            );
        }
        Canned::json(200, object.clone())
    }
}
