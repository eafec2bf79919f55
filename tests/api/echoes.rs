//! Upstreams that echo the key they were sent, in every way one can: as an
//! error type, an OpenAI code, inside the message without its prefix or
//! upper-cased, in an HTML error page, in a stream's error event, in the
//! headers passed on, in a key check's answer. No fragment of 8 or more
//! characters of any key may reach a client, an admin view, a log line or
//! the database.

use std::time::Duration;

use fake_upstream::SseFrame;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, Canned, TestApp, captured_logs};

/// Every 8-character window of `key` past its known prefix, lower-cased
/// (the prefix and the last four characters are what a masked form shows).
fn fragments(key: &str) -> Vec<String> {
    let prefix = ["sk-ant-api03-", "sk-proj-"]
        .iter()
        .find(|p| key.starts_with(*p))
        .map_or(0, |p| p.len());
    let core = &key[prefix..];
    (0..=core.len() - 8)
        .map(|i| core[i..i + 8].to_lowercase())
        .collect()
}

fn leaks(haystack: &str, keys: &[String]) -> Vec<String> {
    let haystack = haystack.to_lowercase();
    keys.iter()
        .flat_map(|key| fragments(key))
        .filter(|fragment| haystack.contains(fragment.as_str()))
        .collect()
}

/// The ways an upstream echoes `key` in an error message.
fn echo(key: &str) -> String {
    let bare = key
        .trim_start_matches("sk-ant-api03-")
        .trim_start_matches("sk-proj-");
    format!(
        "bad key {key}; bare {bare}; LOUD {}; part {}",
        key.to_uppercase(),
        &bare[2..14]
    )
}

async fn text_of(response: reqwest::Response) -> String {
    let head = format!("{} {:?}", response.status(), response.headers());
    format!("{head} {}", response.text().await.unwrap())
}

#[tokio::test]
async fn no_echo_of_any_key_reaches_clients_admins_logs_or_disk() {
    let app = TestApp::configured_both(1, 1, |env| env.set("STATE_FLUSH_SECS", "0.1")).await;
    let anthropic = app.key(0).to_string();
    let openai = app.openai_key(0).to_string();
    // A key that looks like no provider's: only the scrubber's memory of
    // the pool's keys can catch it.
    let plain = "AKIAplainKEY0123456789abcdefQRSTuvwx".to_string();
    let added = app
        .client
        .post(format!("{}/api/keypool/anthropic/keys", app.address))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"key": plain}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let keys = vec![anthropic.clone(), openai.clone(), plain.clone()];
    let mut seen = String::new();
    let chat = json!({"messages": [{"role": "user", "content": "Hi"}]});
    let openai_chat =
        json!({"provider": "openai", "messages": [{"role": "user", "content": "Hi"}]});
    let messages = json!({"model": "claude-sonnet-4-20250514", "max_tokens": 10,
                          "messages": [{"role": "user", "content": "Hi"}]});
    let completions = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
    let claude_completions = json!({"model": "claude-sonnet-4-20250514", "messages": [{"role": "user", "content": "Hi"}]});

    // 1. A 400 whose error type, code and message carry the key, on all
    //    five ways in (the request's fault: passed to the client as is).
    for key in [&anthropic, &plain] {
        let canned = Canned::json(
            400,
            json!({"type": "error", "error": {"type": key, "message": echo(key)}}),
        );
        app.upstream
            .queue(key, [canned.clone(), canned.clone(), canned]);
    }
    let canned = Canned::openai_error(400, &openai, Some(&openai), &echo(&openai));
    app.upstream.queue(&openai, [canned.clone(), canned]);
    for (path, body) in [
        ("/api/chat", &chat),
        ("/api/chat", &chat),
        ("/v1/messages", &messages),
        ("/v1/messages", &messages),
        ("/v1/chat/completions", &claude_completions),
        ("/v1/chat/completions", &claude_completions),
        ("/api/chat", &openai_chat),
        ("/v1/chat/completions", &completions),
    ] {
        let response = app.post(path).json(body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        seen.push_str(&text_of(response).await);
    }

    // 2. An HTML 502 page and a 500 with the key in the message (the
    //    provider's fault: retried, then summarised to the client).
    for key in [&anthropic, &plain] {
        app.upstream.queue(
            key,
            [
                Canned::raw(
                    502,
                    "text/html",
                    format!("<html><h1>Bad gateway</h1>{}</html>", echo(key)),
                ),
                Canned::error(500, key, &echo(key)),
            ],
        );
    }
    for _ in 0..2 {
        seen.push_str(&text_of(app.chat(chat.clone()).await).await);
    }

    // 3. Headers passed on to the client.
    for key in [&anthropic, &plain] {
        let reply = fake_upstream::anthropic_message("ok", "claude-sonnet-4-20250514");
        app.upstream.queue(
            key,
            [Canned::json(200, reply)
                .header("request-id", key)
                .header("anthropic-ratelimit-requests-remaining", &key[5..20])],
        );
    }
    for _ in 0..2 {
        let response = app
            .post("/v1/messages")
            .json(&messages)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        seen.push_str(&text_of(response).await);
    }

    // 4. A stream whose error event (after the content started) echoes it.
    for key in [&anthropic, &plain] {
        let mut frames = fake_upstream::anthropic_stream_frames(&["Hel"]);
        frames.truncate(4);
        frames.push(SseFrame::event(
            "error",
            json!({"type": "error", "error": {"type": key, "message": echo(key)}}).to_string(),
        ));
        app.upstream.queue(key, [Canned::sse(frames)]);
    }
    let mut streamed = messages.clone();
    streamed["stream"] = json!(true);
    for _ in 0..2 {
        seen.push_str(
            &text_of(
                app.post("/v1/messages")
                    .json(&streamed)
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        );
    }
    let mut frames = fake_upstream::openai_stream_frames(&["Hel"], false);
    frames.truncate(2);
    frames.push(SseFrame::data(
        json!({"error": {"message": echo(&openai), "type": openai, "code": openai, "param": openai}})
            .to_string(),
    ));
    app.upstream.queue(&openai, [Canned::sse(frames)]);
    let mut streamed = completions.clone();
    streamed["stream"] = json!(true);
    seen.push_str(
        &text_of(
            app.post("/v1/chat/completions")
                .json(&streamed)
                .send()
                .await
                .unwrap(),
        )
        .await,
    );

    // 5. Key checks whose answer echoes the key.
    for key in [&anthropic, &plain] {
        app.upstream
            .queue(key, [Canned::error(503, key, &echo(key))]);
    }
    app.upstream.queue(
        &openai,
        [Canned::openai_error(
            401,
            &openai,
            Some(&openai),
            &echo(&openai),
        )],
    );
    for provider in ["anthropic", "openai"] {
        let response = app
            .client
            .post(format!("{}/api/keypool/{provider}/test", app.address))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        seen.push_str(&text_of(response).await);
    }

    // What admins see, then what was saved.
    for path in [
        "/api/keypool/stats",
        "/api/keypool/anthropic/status",
        "/api/keypool/openai/status",
    ] {
        let status: Value = app.admin_get(path).await;
        seen.push_str(&status.to_string());
    }
    assert!(
        seen.contains("[redacted]"),
        "the echoes were there to scrub: {seen}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut disk = String::new();
    for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e != "key") {
            disk.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    assert!(disk.contains("redacted"), "the state was saved");

    let found = leaks(&seen, &keys);
    assert!(
        found.is_empty(),
        "key fragments reached a client or admin: {found:?}\n{seen}"
    );
    let found = leaks(&disk, &keys);
    assert!(
        found.is_empty(),
        "key fragments reached the database: {found:?}"
    );
    let found = leaks(&captured_logs(), &keys);
    assert!(
        found.is_empty(),
        "key fragments reached the logs: {found:?}"
    );
}
