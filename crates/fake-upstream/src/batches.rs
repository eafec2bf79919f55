//! Batches and files as the fake serves them, each visible only to its
//! creating key (`stored`): Anthropic's message batches, and OpenAI's
//! files and batches. A batch is `in_progress` when created and has ended
//! by its first poll, with one successful answer per request: Anthropic's
//! as JSONL at `results_url`, OpenAI's in a new output file.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use uuid::Uuid;

use super::DEFAULT_TEXT;
use super::anthropic::{DEFAULT_ANTHROPIC_MODEL, anthropic_message};
use super::canned::Canned;
use super::openai::{DEFAULT_OPENAI_MODEL, openai_completion};
use super::responses::not_found;
use super::stored::Stored;

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn anthropic_not_found(id: &str) -> Canned {
    Canned::error(
        404,
        "not_found_error",
        &format!("No batch with id {id} was found."),
    )
}

fn jsonl(lines: &[Value]) -> Vec<u8> {
    lines
        .iter()
        .map(|line| format!("{line}\n"))
        .collect::<String>()
        .into_bytes()
}

impl Stored {
    /// `POST /v1/messages/batches`.
    pub(super) fn create_message_batch(&mut self, key: &str, request: &Value) -> Canned {
        let Some(requests) = request["requests"].as_array().filter(|r| !r.is_empty()) else {
            return Canned::error(400, "invalid_request_error", "requests: field required");
        };
        let now = SystemTime::now();
        let batch = json!({
            "id": format!("msgbatch_fake{}", Uuid::new_v4().simple()),
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {"processing": requests.len(), "succeeded": 0, "errored": 0,
                               "canceled": 0, "expired": 0},
            "ended_at": null,
            "created_at": rfc3339(now),
            "expires_at": rfc3339(now + Duration::from_secs(24 * 3600)),
            "archived_at": null,
            "cancel_initiated_at": null,
            "results_url": null
        });
        self.put_with(key, batch.clone(), jsonl(requests));
        Canned::json(200, batch)
    }

    /// Everything under `/v1/messages/batches` but creation; `base` is the
    /// fake's own URL, for `results_url`.
    pub(super) fn on_message_batch(
        &mut self,
        key: &str,
        method: &axum::http::Method,
        path: &str,
        base: &str,
    ) -> Canned {
        let rest = path
            .trim_start_matches("/v1/messages/batches")
            .trim_start_matches('/');
        if rest.is_empty() {
            let data = self.listed(key, "type", "message_batch");
            return Canned::json(
                200,
                json!({"data": data, "has_more": false,
                       "first_id": data.first().map(|b| b["id"].clone()),
                       "last_id": data.last().map(|b| b["id"].clone())}),
            );
        }
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        if method == axum::http::Method::DELETE {
            if self.item(key, id).is_none() {
                return anthropic_not_found(id);
            }
            self.remove(id);
            return Canned::json(200, json!({"id": id, "type": "message_batch_deleted"}));
        }
        let Some(item) = self.item(key, id) else {
            return anthropic_not_found(id);
        };
        match action {
            "results" if item.object["processing_status"] == "ended" => {
                let lines: Vec<Value> = String::from_utf8_lossy(&item.content)
                    .lines()
                    .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                    .map(|request| {
                        let model = request["params"]["model"]
                            .as_str()
                            .unwrap_or(DEFAULT_ANTHROPIC_MODEL);
                        json!({"custom_id": request["custom_id"],
                               "result": {"type": "succeeded",
                                          "message": anthropic_message(DEFAULT_TEXT, model)}})
                    })
                    .collect();
                Canned::raw(200, "application/binary", jsonl(&lines))
            }
            "results" => Canned::error(
                400,
                "invalid_request_error",
                "Batch results are not available until processing ends.",
            ),
            "cancel" => {
                item.object["processing_status"] = json!("canceling");
                item.object["cancel_initiated_at"] = json!(rfc3339(SystemTime::now()));
                Canned::json(200, item.object.clone())
            }
            _ => {
                item.polls += 1;
                if item.object["processing_status"] == "in_progress" {
                    let count = item.object["request_counts"]["processing"].clone();
                    item.object["processing_status"] = json!("ended");
                    item.object["ended_at"] = json!(rfc3339(SystemTime::now()));
                    item.object["request_counts"]["processing"] = json!(0);
                    item.object["request_counts"]["succeeded"] = count;
                    item.object["results_url"] =
                        json!(format!("{base}/v1/messages/batches/{id}/results"));
                }
                Canned::json(200, item.object.clone())
            }
        }
    }

    /// `POST /v1/files` with the uploaded `file` and its `purpose`.
    pub(super) fn create_file(
        &mut self,
        key: &str,
        filename: &str,
        purpose: &str,
        content: Vec<u8>,
    ) -> Canned {
        let file = file_object(filename, purpose, content.len());
        self.put_with(key, file.clone(), content);
        Canned::json(200, file)
    }

    /// Everything under `/v1/files` but uploads.
    pub(super) fn on_file(&mut self, key: &str, method: &axum::http::Method, path: &str) -> Canned {
        let rest = path.trim_start_matches("/v1/files").trim_start_matches('/');
        if rest.is_empty() {
            let data = self.listed(key, "object", "file");
            return Canned::json(
                200,
                json!({"object": "list", "data": data, "has_more": false}),
            );
        }
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(item) = self.item(key, id) else {
            return not_found("File", id, None, None);
        };
        if action == "content" {
            return Canned::raw(200, "application/octet-stream", item.content.clone());
        }
        if method == axum::http::Method::DELETE {
            self.remove(id);
            return Canned::json(200, json!({"id": id, "object": "file", "deleted": true}));
        }
        Canned::json(200, item.object.clone())
    }

    /// `POST /v1/batches`: its input file must be one of `key`'s.
    pub(super) fn create_batch(&mut self, key: &str, request: &Value) -> Canned {
        let input = request["input_file_id"].as_str().unwrap_or_default();
        let Some(file) = self.item(key, input) else {
            return not_found("File", input, None, Some("input_file_id"));
        };
        let total = String::from_utf8_lossy(&file.content).lines().count();
        let requests = file.content.clone();
        let batch = json!({
            "id": format!("batch_fake{}", Uuid::new_v4().simple()),
            "object": "batch",
            "endpoint": request["endpoint"],
            "errors": null,
            "input_file_id": input,
            "completion_window": request["completion_window"],
            "status": "validating",
            "output_file_id": null,
            "error_file_id": null,
            "created_at": unix(SystemTime::now()),
            "request_counts": {"total": total, "completed": 0, "failed": 0},
            "metadata": request.get("metadata").cloned().unwrap_or(Value::Null)
        });
        self.put_with(key, batch.clone(), requests);
        Canned::json(200, batch)
    }

    /// Everything under `/v1/batches` but creation.
    pub(super) fn on_batch(&mut self, key: &str, path: &str) -> Canned {
        let rest = path
            .trim_start_matches("/v1/batches")
            .trim_start_matches('/');
        if rest.is_empty() {
            let data = self.listed(key, "object", "batch");
            return Canned::json(
                200,
                json!({"object": "list", "data": data, "has_more": false}),
            );
        }
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(item) = self.item(key, id) else {
            return not_found("Batch", id, None, None);
        };
        if action == "cancel" {
            item.object["status"] = json!("cancelling");
            return Canned::json(200, item.object.clone());
        }
        item.polls += 1;
        if item.object["status"] != "validating" {
            return Canned::json(200, item.object.clone());
        }
        let lines: Vec<Value> = String::from_utf8_lossy(&item.content)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .map(|request| {
                let model = request["body"]["model"]
                    .as_str()
                    .unwrap_or(DEFAULT_OPENAI_MODEL);
                json!({"id": format!("batch_req_{}", Uuid::new_v4().simple()),
                       "custom_id": request["custom_id"],
                       "response": {"status_code": 200, "request_id": "req_fake",
                                    "body": openai_completion(DEFAULT_TEXT, model)},
                       "error": null})
            })
            .collect();
        let output = jsonl(&lines);
        let file = file_object("batch_output.jsonl", "batch_output", output.len());
        let count = lines.len();
        item.object["status"] = json!("completed");
        item.object["output_file_id"] = file["id"].clone();
        item.object["completed_at"] = json!(unix(SystemTime::now()));
        item.object["request_counts"]["completed"] = json!(count);
        let batch = item.object.clone();
        self.put_with(key, file, output);
        Canned::json(200, batch)
    }
}

fn file_object(filename: &str, purpose: &str, bytes: usize) -> Value {
    json!({
        "id": format!("file-fake{}", Uuid::new_v4().simple()),
        "object": "file",
        "bytes": bytes,
        "created_at": unix(SystemTime::now()),
        "expires_at": null,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "status_details": null
    })
}
