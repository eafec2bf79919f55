//! Batches and files pass through and stay with the key that made them:
//! an Anthropic message batch is created, polled and its results fetched
//! through its creating key, across a restart; an OpenAI file is uploaded
//! (multipart) and a batch made from it runs on the uploading key, whose
//! output file is read through that key too. Paths keygate does not model
//! get a 404 listing what it serves.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const BOUNDARY: &str = "keygate-test-boundary";

/// A multipart form as the SDKs send it: `purpose` and `file`.
fn upload_form(purpose: &str, filename: &str, content: &str) -> String {
    format!(
        "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n\
         --{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         content-type: application/jsonl\r\n\r\n{content}\r\n--{BOUNDARY}--\r\n"
    )
}

async fn upload(app: &TestApp, content: &str) -> reqwest::Response {
    app.post("/v1/files")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(upload_form("batch", "requests.jsonl", content))
        .send()
        .await
        .unwrap()
}

fn key_of(response: &reqwest::Response) -> String {
    response.headers()["x-keygate-key"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_message_batch_is_created_polled_and_fetched_through_its_key_across_a_restart() {
    let app = TestApp::with_keys(3).await;
    let request = json!({"requests": [
        {"custom_id": "a", "params": {"model": "claude-sonnet-4-20250514", "max_tokens": 16,
                                       "messages": [{"role": "user", "content": "Hi"}]}},
        {"custom_id": "b", "params": {"model": "claude-sonnet-4-20250514", "max_tokens": 16,
                                       "messages": [{"role": "user", "content": "Ho"}]}}]});
    let created = app
        .post("/v1/messages/batches")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let key = key_of(&created);
    let batch: Value = created.json().await.unwrap();
    let id = batch["id"].as_str().unwrap().to_string();
    assert_eq!(batch["processing_status"], "in_progress");

    let app = app.restart().await;
    for _ in 0..3 {
        // Unbound, three polls would go round the three keys.
        let polled = app
            .get(&format!("/v1/messages/batches/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(polled.status(), 200, "{:?}", polled.text().await);
        assert_eq!(key_of(&polled), key);
        let batch: Value = polled.json().await.unwrap();
        assert_eq!(batch["processing_status"], "ended");
        assert_eq!(
            batch["results_url"],
            format!("/v1/messages/batches/{id}/results"),
            "the results are fetched through keygate"
        );
    }
    let results = app
        .get(&format!("/v1/messages/batches/{id}/results"))
        .send()
        .await
        .unwrap();
    assert_eq!(results.status(), 200);
    assert_eq!(key_of(&results), key);
    let text = results.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["custom_id"], "a");
    assert_eq!(lines[1]["result"]["type"], "succeeded");
    let deleted = app
        .client
        .delete(format!("{}/v1/messages/batches/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let calls = app.upstream.calls();
    let secret = calls[0].key.clone();
    assert!(
        calls.iter().all(|c| c.key == secret),
        "one key served the batch throughout"
    );
    let gone = app
        .get(&format!("/v1/messages/batches/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["type"], "error", "Anthropic's error shape");
}

#[tokio::test]
async fn a_file_is_uploaded_and_used_by_a_batch_on_the_uploading_key() {
    let app = TestApp::with_both(0, 3).await;
    let requests = [
        json!({"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}}),
        json!({"custom_id": "r2", "method": "POST", "url": "/v1/chat/completions",
               "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Ho"}]}}),
    ];
    let content: String = requests.iter().map(|r| format!("{r}\n")).collect();
    let uploaded = upload(&app, &content).await;
    assert_eq!(uploaded.status(), 200);
    let key = key_of(&uploaded);
    let file: Value = uploaded.json().await.unwrap();
    assert_eq!(file["purpose"], "batch");
    assert_eq!(file["bytes"], content.len());
    let file_id = file["id"].as_str().unwrap();
    assert_eq!(app.upstream.calls()[0].body["bytes"], content.len());

    let created = app
        .post("/v1/batches")
        .json(
            &json!({"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                      "completion_window": "24h"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status(),
        200,
        "the batch runs on the key that has the file"
    );
    assert_eq!(key_of(&created), key);
    let batch_id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let polled = app
        .get(&format!("/v1/batches/{batch_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(key_of(&polled), key);
    let batch: Value = polled.json().await.unwrap();
    assert_eq!(batch["status"], "completed");
    let output = batch["output_file_id"].as_str().unwrap();
    let fetched = app
        .get(&format!("/v1/files/{output}/content"))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(key_of(&fetched), key);
    let lines: Vec<Value> = fetched
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["response"]["status_code"], 200);
    let calls = app.upstream.calls();
    assert!(
        calls.iter().all(|c| c.key == calls[0].key),
        "one key throughout"
    );

    // A batch naming a file keygate never saw is refused before any call.
    let before = app.upstream.calls().len();
    let unknown = app
        .post("/v1/batches")
        .json(
            &json!({"input_file_id": "file-elsewhere", "endpoint": "/v1/chat/completions",
                      "completion_window": "24h"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.upstream.calls().len(), before);
}

#[tokio::test]
async fn a_form_is_refused_anywhere_but_the_upload_route_and_unknown_paths_list_the_routes() {
    let app = TestApp::with_both(1, 1).await;
    let form = app
        .post("/v1/responses")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(upload_form("batch", "x.jsonl", "{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let unknown = app
        .post("/v1/assistants")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("/v1/assistants") && message.contains("POST /v1/responses"),
        "{message}"
    );
    let anthropic = app
        .get("/v1/skills")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 404);
    assert_eq!(anthropic.json::<Value>().await.unwrap()["type"], "error");
    assert!(app.upstream.calls().is_empty());
}
