//! Prices as an operator meets them: current models priced out of the box,
//! a LiteLLM price file pricing a model keygate has never heard of (in the
//! answer and the ledger), the file reloaded when it changes, a malformed
//! file refused at start and ignored at reload, and an unpriced model
//! counted, listed and warned about once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{FakeUpstream, TestApp, TestEnv, captured_logs};
use crate::ledger_rows::rows;
use crate::metrics::scrape;
use keygate::startup::Application;

/// A LiteLLM-format file pricing `model` at `input`/`output` USD per
/// token, with LiteLLM's `sample_spec` and a non-chat entry around it.
fn litellm_file(model: &str, input: f64, output: f64) -> String {
    json!({
        "sample_spec": {
            "max_tokens": "LEGACY parameter. set to max_output_tokens if provider specifies it.",
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
            "mode": "one of: chat, embedding, completion, image_generation"
        },
        "text-embedding-3-small": {
            "input_cost_per_token": 2e-8,
            "litellm_provider": "openai",
            "mode": "embedding"
        },
        model: {
            "input_cost_per_token": input,
            "output_cost_per_token": output,
            "cache_read_input_token_cost": input / 10.0,
            "cache_creation_input_token_cost": input * 1.25,
            "litellm_provider": "anthropic",
            "max_input_tokens": 1_000_000,
            "mode": "chat",
            "supports_prompt_caching": true
        }
    })
    .to_string()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// keygate with one key and `file` as its price file (in its data
/// folder), checked for changes every 50 ms.
async fn start_with_prices(file: &str) -> (TestApp, PathBuf) {
    let app = TestApp::configured(1, |env| {
        let path = env.data_dir.path().join("prices.json");
        write(&path, file);
        env.set("PRICES_FILE", &path.display().to_string())
            .set("PRICES_POLL_SECS", "0.05")
    })
    .await;
    let path = app.data_dir.path().join("prices.json");
    (app, path)
}

/// `/api/chat` with `model`; the fake upstream answers as that model with
/// 25 input and 86 output tokens.
async fn chat(app: &TestApp, model: &str) -> Value {
    let response = app
        .chat(json!({"messages": [{"role": "user", "content": "Hi"}], "model": model}))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn models(app: &TestApp) -> Value {
    app.get("/api/models")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `/api/models` entry for `id`.
async fn listed(app: &TestApp, provider: &str, id: &str) -> Option<Value> {
    models(app).await["providers"][provider]["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
}

#[tokio::test]
async fn claude_code_default_model_is_priced_out_of_the_box() {
    let app = TestApp::with_keys(1).await;
    let answer = chat(&app, "claude-opus-4-8").await;
    // 25 × $5 + 86 × $25 per million.
    assert_eq!(answer["cost"]["total"], 0.002275, "{answer}");
    let row = &rows(&app, 1).await[0];
    assert_eq!(row["cost_nanos"], 2_275_000);
    assert_eq!(row["unpriced"], false);
    let entry = listed(&app, "anthropic", "claude-opus-4-8").await.unwrap();
    assert_eq!(entry["pricing"]["input"], 5.0);
    assert_eq!(entry["pricing"]["source"], "built in");
    assert_eq!(entry["pricing"]["checked"], "2026-11-30");
    assert!(
        entry["pricing"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
}

#[tokio::test]
async fn a_litellm_price_file_prices_a_model_keygate_never_heard_of() {
    let (app, _path) = start_with_prices(&litellm_file("claude-nova-1", 2e-6, 1e-5)).await;
    let answer = chat(&app, "claude-nova-1").await;
    // 25 × $2 + 86 × $10 per million.
    assert_eq!(answer["cost"]["total"], 0.00091, "{answer}");
    let row = &rows(&app, 1).await[0];
    assert_eq!(
        (row["cost_nanos"].clone(), row["unpriced"].clone()),
        (json!(910_000), json!(false))
    );
    let entry = listed(&app, "anthropic", "claude-nova-1").await.unwrap();
    assert_eq!(entry["pricing"]["source"], "price file");
    assert_eq!(entry["pricing"]["cache_read"], 0.2);
    assert!(entry["pricing"]["checked"].is_string(), "{entry}");
    // The built-in prices are still there beside it.
    assert!(listed(&app, "anthropic", "claude-opus-4-8").await.is_some());
    // The file's embedding entry is skipped: the built-in row prices it.
    let embedding = listed(&app, "openai", "text-embedding-3-small")
        .await
        .unwrap();
    assert_eq!(embedding["pricing"]["source"], "built in");
}

/// Waits until `/api/models` prices `id` at `input` $/MTok.
async fn until_input_price(app: &TestApp, id: &str, input: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = listed(app, "anthropic", id)
            .await
            .map(|m| m["pricing"]["input"].clone());
        if now == Some(json!(input)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} still at {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_price_file_is_reloaded_when_it_changes() {
    let (app, path) = start_with_prices(&litellm_file("claude-nova-2", 2e-6, 1e-5)).await;
    write(&path, &litellm_file("claude-nova-2", 4e-6, 2e-5));
    until_input_price(&app, "claude-nova-2", 4.0).await;
    let answer = chat(&app, "claude-nova-2").await;
    // 25 × $4 + 86 × $20 per million.
    assert_eq!(answer["cost"]["total"], 0.00182, "{answer}");
}

#[tokio::test]
async fn sighup_reloads_the_price_file() {
    // Checked for changes only hourly: the reload comes from the signal.
    let app = TestApp::configured(1, |env| {
        let path = env.data_dir.path().join("prices.json");
        write(&path, &litellm_file("claude-nova-4", 2e-6, 1e-5));
        env.set("PRICES_FILE", &path.display().to_string())
            .set("PRICES_POLL_SECS", "3600")
    })
    .await;
    let path = app.data_dir.path().join("prices.json");
    write(&path, &litellm_file("claude-nova-4", 3e-6, 1e-5));
    let pid = std::process::id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    until_input_price(&app, "claude-nova-4", 3.0).await;
}

#[tokio::test]
async fn a_bad_reload_keeps_the_last_good_prices() {
    let (app, path) = start_with_prices(&litellm_file("claude-nova-3", 2e-6, 1e-5)).await;
    write(
        &path,
        "{\n  \"claude-nova-3\": {\"litellm_provider\": \"anthropic\",\n    \"input_cost_per_token\": \"cheap\"}\n}",
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !captured_logs().contains("claude-nova-3.input_cost_per_token") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload error logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains("claude-nova-3.input_cost_per_token"))
        .unwrap();
    assert!(
        line.contains("line 3") && line.contains("last good prices stay"),
        "{line}"
    );
    let answer = chat(&app, "claude-nova-3").await;
    assert_eq!(answer["cost"]["total"], 0.00091, "{answer}");
}

#[tokio::test]
async fn a_malformed_price_file_is_refused_at_start_with_its_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.json");
    write(
        &path,
        "{\"models\": [\n  {\"provider\": \"anthropic\", \"id\": \"claude-nova\",\n   \"input\": 3, \"output\": \"15\"}\n]}",
    );
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[]).set("PRICES_FILE", &path.display().to_string());
    let Err(error) = Application::build(env.config()).await else {
        panic!("keygate started with a malformed price file");
    };
    let message = error.to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("models[0].output"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[tokio::test]
async fn an_unknown_model_is_counted_listed_and_warned_about_once() {
    let app = TestApp::with_keys(1).await;
    for _ in 0..2 {
        let answer = chat(&app, "claude-unheard-of-7").await;
        assert_eq!(answer["cost"], Value::Null, "{answer}");
        assert_eq!(answer["usage"]["output_tokens"], 86);
    }
    let metrics = scrape(&app).await;
    let series =
        r#"keygate_unpriced_requests_total{provider="anthropic",model="claude-unheard-of-7"} 2"#;
    assert!(metrics.contains(series), "{metrics}");
    let listed = &models(&app).await["providers"]["anthropic"]["unpriced_models"];
    assert_eq!(listed, &json!(["claude-unheard-of-7"]));
    let status = app.admin_get("/api/keypool/anthropic/status").await;
    assert_eq!(status["unpriced_models"][0]["model"], "claude-unheard-of-7");
    assert_eq!(status["unpriced_models"][0]["requests"], 2);
    let rows = rows(&app, 2).await;
    assert!(
        rows.iter()
            .all(|row| row["unpriced"] == true && row["cost_nanos"] == 0)
    );
    let warnings = captured_logs()
        .lines()
        .filter(|l| {
            l.contains("WARN") && l.contains("claude-unheard-of-7") && l.contains("no price")
        })
        .count();
    assert_eq!(warnings, 1);
    // A priced model beside it is not listed.
    chat(&app, "claude-opus-4-8").await;
    let listed = &models(&app).await["unpriced_models"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}
