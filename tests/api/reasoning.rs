//! Reasoning tokens of OpenAI's reasoning models, on the Responses API and
//! chat completions, plain and streamed: recorded in each ledger row,
//! summed by `/api/usage` and counted by `/metrics` as a part of the
//! output tokens, and priced once, as output.

use fake_upstream::{OUTPUT_TOKENS, REASONING_TOKENS};
use serde_json::{Value, json};

use crate::helpers::{TestApp, sse_frames};
use crate::ledger_rows::rows;
use crate::metrics::{scrape, value};

/// Sends `body` to `path` and reads the whole answer.
async fn call(app: &TestApp, path: &str, body: Value) {
    let stream = body["stream"] == true;
    let response = app.post(path).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path} {body}");
    if stream {
        assert!(!sse_frames(response).await.is_empty());
    } else {
        response.bytes().await.unwrap();
    }
}

/// Nano-dollars of one default answer (25 in, 86 out) at `input` and
/// `output` nano-dollars a token: reasoning is inside the 86.
fn cost(input: u64, output: u64) -> u64 {
    25 * input + OUTPUT_TOKENS * output
}

#[tokio::test]
async fn reasoning_tokens_are_recorded_as_a_part_of_the_output_and_priced_once() {
    let app = TestApp::with_both(0, 1).await;
    let input = "Think, then say hello";
    call(
        &app,
        "/v1/responses",
        json!({"model": "o4-mini", "input": input}),
    )
    .await;
    call(
        &app,
        "/v1/responses",
        json!({"model": "o3", "input": input, "stream": true}),
    )
    .await;
    let messages = json!([{"role": "user", "content": input}]);
    call(
        &app,
        "/v1/chat/completions",
        json!({"model": "o4-mini", "messages": messages}),
    )
    .await;
    // keygate asks the stream for its usage chunk itself.
    call(
        &app,
        "/v1/chat/completions",
        json!({"model": "o3", "messages": messages, "stream": true}),
    )
    .await;
    call(
        &app,
        "/v1/chat/completions",
        json!({"model": "gpt-4o-mini", "messages": messages}),
    )
    .await;

    // o4-mini: $1.10 in, $4.40 out; o3: $2 in, $8 out; gpt-4o-mini: $0.15
    // in, $0.60 out per million tokens.
    let (o4_mini, o3, gpt_4o_mini) = (cost(1100, 4400), cost(2000, 8000), cost(150, 600));
    let rows = rows(&app, 5).await;
    for row in &rows {
        let (reasoning, cost_nanos) = match row["model_answered"].as_str().unwrap() {
            "o4-mini" => (REASONING_TOKENS, o4_mini),
            "o3" => (REASONING_TOKENS, o3),
            _ => (0, gpt_4o_mini),
        };
        assert_eq!(row["tokens"]["output"], OUTPUT_TOKENS, "{row}");
        assert_eq!(row["tokens"]["reasoning"], reasoning, "{row}");
        assert_eq!(row["cost_nanos"], cost_nanos, "{row}");
    }

    let by_model = app.admin_get("/api/usage?group_by=model").await;
    let group = |model: &str| -> Value {
        by_model["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"]["model"] == model)
            .unwrap_or_else(|| panic!("no {model} in {by_model}"))
            .clone()
    };
    let o3_group = group("o3");
    assert_eq!(o3_group["requests"], 2);
    assert_eq!(o3_group["tokens"]["output"], 2 * OUTPUT_TOKENS);
    assert_eq!(o3_group["tokens"]["reasoning"], 2 * REASONING_TOKENS);
    assert_eq!(o3_group["cost_nanos"], 2 * o3);
    assert_eq!(group("gpt-4o-mini")["tokens"]["reasoning"], 0);
    let total = &app.admin_get("/api/usage").await["groups"][0];
    assert_eq!(total["tokens"]["output"], 5 * OUTPUT_TOKENS);
    assert_eq!(total["tokens"]["reasoning"], 4 * REASONING_TOKENS);
    assert_eq!(total["cost_nanos"], 2 * o4_mini + 2 * o3 + gpt_4o_mini);

    let key_id = rows[0]["key_id"].as_str().unwrap();
    let text = scrape(&app).await;
    let tokens = |model: &str, kind: &str| {
        value(
            &text,
            &format!(
                r#"keygate_tokens_total{{provider="openai",model="{model}",key_id="{key_id}",kind="{kind}"}}"#
            ),
        )
    };
    for model in ["o3", "o4-mini"] {
        assert_eq!(
            tokens(model, "reasoning"),
            Some(2.0 * REASONING_TOKENS as f64)
        );
        assert_eq!(tokens(model, "output"), Some(2.0 * OUTPUT_TOKENS as f64));
    }
    assert_eq!(tokens("gpt-4o-mini", "reasoning"), None);
    // The cost counter holds the output price of 86 tokens, not of 86 + 64.
    assert_eq!(
        value(
            &text,
            &format!(r#"keygate_cost_usd_total{{provider="openai",model="o3",key_id="{key_id}"}}"#)
        ),
        Some(2.0 * o3 as f64 / 1e9)
    );
}
