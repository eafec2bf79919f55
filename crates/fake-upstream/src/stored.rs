//! What the fake keeps between calls: stored responses (and, later,
//! batches and files), each visible only to the key that created it, as
//! the real APIs keep them per organisation. Another key gets the API's
//! 404, which is what keygate must never let happen.

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

struct Item {
    key: String,
    object: Value,
}

impl Stored {
    fn put(&mut self, key: &str, object: Value) {
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
            },
        );
    }

    /// The object `id`, if `key` created it.
    fn owned(&mut self, key: &str, id: &str) -> Option<&mut Value> {
        self.items
            .get_mut(id)
            .filter(|item| item.key == key)
            .map(|item| &mut item.object)
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
