//! What a rebuilt request may contain (`keygate::limits`): past a limit,
//! `/api/chat` and a `claude-` model on `/v1/chat/completions` answer a 400
//! that names it and nothing reaches the upstream; at the limits, the
//! request is served.

use keygate::limits::{
    MAX_BLOCKS_PER_MESSAGE, MAX_CONTENT_BLOCKS, MAX_DEPTH, MAX_MESSAGES, MAX_STOP_SEQUENCES,
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_of};

/// The two routes that rebuild a body, with what each needs besides
/// `messages`.
const ROUTES: [(&str, &str); 2] = [
    ("/api/chat", r#"{"max_tokens":16,"#),
    (
        "/v1/chat/completions",
        r#"{"model":"claude-sonnet-4-20250514","max_tokens":16,"#,
    ),
];

/// `n` comma-separated copies of `item`.
fn repeat(item: &str, n: usize) -> String {
    vec![item; n].join(",")
}

/// A user message of `blocks` one-letter text blocks.
fn message_of_blocks(blocks: usize) -> String {
    format!(
        r#"{{"role":"user","content":[{}]}}"#,
        repeat(r#"{"type":"text","text":"a"}"#, blocks)
    )
}

/// JSON nested `levels` deep counting the body's own object.
fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels - 1), "]".repeat(levels - 1))
}

async fn send(app: &TestApp, route: &str, body: String) -> reqwest::Response {
    app.post(route)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Each body (`messages` and more, after the route's own fields) is a 400
/// with `expected` on both routes, and reaches no upstream.
async fn refused(cases: &[(String, String)]) {
    let app = TestApp::with_keys(1).await;
    for (route, head) in ROUTES {
        for (fields, expected) in cases {
            let response = send(&app, route, format!("{head}{fields}}}")).await;
            assert_eq!(response.status(), 400, "{route}: {expected}");
            let (error_type, message) = error_of(response).await;
            assert_eq!(error_type, "invalid_request_error");
            assert_eq!(&message, expected, "{route}");
        }
    }
    assert!(app.upstream.calls().is_empty());
}

#[tokio::test]
async fn too_many_messages_is_400_naming_the_limit() {
    let one = r#"{"role":"user","content":"hi"}"#;
    refused(&[(
        format!(r#""messages":[{}]"#, repeat(one, MAX_MESSAGES + 1)),
        format!("messages: at most {MAX_MESSAGES} messages are accepted"),
    )])
    .await;
}

#[tokio::test]
async fn too_many_content_blocks_in_a_message_or_in_all_is_400() {
    let per_message = message_of_blocks(MAX_BLOCKS_PER_MESSAGE);
    let full = MAX_CONTENT_BLOCKS / MAX_BLOCKS_PER_MESSAGE;
    refused(&[
        (
            format!(
                r#""messages":[{},{}]"#,
                message_of_blocks(1),
                message_of_blocks(MAX_BLOCKS_PER_MESSAGE + 1)
            ),
            format!(
                "messages[1].content: at most {MAX_BLOCKS_PER_MESSAGE} content blocks per message are accepted"
            ),
        ),
        (
            format!(
                r#""messages":[{},{}]"#,
                repeat(&per_message, full),
                message_of_blocks(1)
            ),
            format!("messages: at most {MAX_CONTENT_BLOCKS} content blocks in all are accepted"),
        ),
    ])
    .await;
}

#[tokio::test]
async fn json_nested_too_deep_is_400() {
    refused(&[(
        format!(
            r#""metadata":{},"messages":[{}]"#,
            nested(MAX_DEPTH + 1),
            message_of_blocks(1)
        ),
        format!("request body: JSON nested more than {MAX_DEPTH} levels deep is not accepted"),
    )])
    .await;
}

#[tokio::test]
async fn too_many_stop_sequences_is_400() {
    let stops = format!("[{}]", repeat(r#""END""#, MAX_STOP_SEQUENCES + 1));
    let messages = format!(r#""messages":[{}]"#, message_of_blocks(1));
    refused(&[
        (
            format!(r#""stop_sequences":{stops},{messages}"#),
            format!("stop_sequences: at most {MAX_STOP_SEQUENCES} stop sequences are accepted"),
        ),
        (
            format!(r#""stop":{stops},{messages}"#),
            format!("stop: at most {MAX_STOP_SEQUENCES} stop sequences are accepted"),
        ),
    ])
    .await;
}

#[tokio::test]
async fn a_request_at_every_limit_is_served() {
    let app = TestApp::with_keys(1).await;
    let messages = format!(
        "{},{}",
        message_of_blocks(MAX_BLOCKS_PER_MESSAGE),
        repeat(r#"{"role":"assistant","content":"ok"}"#, MAX_MESSAGES - 1)
    );
    for (route, head) in ROUTES {
        let body = format!(
            r#"{head}"metadata":{},"messages":[{messages}]}}"#,
            nested(MAX_DEPTH)
        );
        let response = send(&app, route, body).await;
        assert_eq!(response.status(), 200, "{route}");
    }
    let calls = app.upstream.calls();
    assert_eq!(calls.len(), 2);
    // /api/chat passes the blocks through as sent; the translation joins the
    // text parts of a message.
    let blocks = &calls[0].body["messages"][0]["content"];
    assert_eq!(blocks.as_array().unwrap().len(), MAX_BLOCKS_PER_MESSAGE);
    assert_eq!(blocks[0], json!({"type": "text", "text": "a"}));
    let text = "a".repeat(MAX_BLOCKS_PER_MESSAGE);
    assert_eq!(calls[1].body["messages"][0]["content"], Value::from(text));
    for call in &calls {
        assert_eq!(
            call.body["messages"].as_array().unwrap().len(),
            MAX_MESSAGES
        );
    }
}
