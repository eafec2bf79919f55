//! Cache-aware key affinity, end to end against the fake upstream's
//! per-organisation prompt cache: six keys in three cache scopes (listed
//! a, b, c, a, b, c, so round-robin changes scope every turn), and a
//! ten-turn conversation whose system prompt is long enough to cache.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, Canned, FakeUpstream, TestApp, TestEnv, planted_key};

const SCOPES: [&str; 3] = ["org-a", "org-b", "org-c"];
const TURNS: usize = 10;

/// keygate with six keys in three scopes, `KEY_AFFINITY=affinity`.
async fn three_scopes(affinity: &str) -> TestApp {
    let upstream = FakeUpstream::start().await;
    let keys: Vec<String> = (0..6).map(|i| planted_key(&format!("s{i}"))).collect();
    let items: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            upstream.assign_org(key, SCOPES[i % 3]);
            json!({"key": key, "scope": SCOPES[i % 3], "label": format!("key-{i}")})
        })
        .collect();
    let env = TestEnv::new(&upstream, &keys)
        .set("ANTHROPIC_API_KEYS", &Value::from(items).to_string())
        .set("KEY_AFFINITY", affinity);
    TestApp::start(env, upstream, keys).await
}

/// About 1,500 tokens: above Sonnet's 1,024-token minimum.
fn system_prompt() -> String {
    "You are a careful assistant who answers in full sentences. ".repeat(100)
}

/// One turn's answer: the scope of the key that served it and its cache use.
struct Turn {
    scope: String,
    read: u64,
    written: u64,
}

/// Runs a conversation of `turns` turns on `/v1/messages`, `before_turn`
/// called with each turn's number and the turns so far.
async fn converse(
    app: &TestApp,
    turns: usize,
    headers: &[(&str, &str)],
    mut before_turn: impl FnMut(usize, &[Turn]),
) -> Vec<Turn> {
    let scope_of = scopes_by_key_id(app).await;
    let system = system_prompt();
    let mut messages: Vec<Value> = Vec::new();
    let mut done = Vec::new();
    for turn in 0..turns {
        before_turn(turn, &done);
        messages
            .push(json!({"role": "user", "content": format!("Question {turn}: tell me more.")}));
        let mut request = app.post("/v1/messages").json(&json!({
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 100,
            "system": system,
            "messages": messages,
        }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "turn {turn}");
        let key_id = response.headers()["x-keygate-key"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = response.json().await.unwrap();
        messages.push(json!({"role": "assistant", "content": body["content"]}));
        done.push(Turn {
            scope: scope_of[&key_id].clone(),
            read: body["usage"]["cache_read_input_tokens"].as_u64().unwrap(),
            written: body["usage"]["cache_creation_input_tokens"]
                .as_u64()
                .unwrap(),
        });
    }
    done
}

async fn scopes_by_key_id(app: &TestApp) -> HashMap<String, String> {
    app.status().await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            let id = key["id"].as_str().unwrap().to_string();
            (id, key["scope"].as_str().unwrap().to_string())
        })
        .collect()
}

/// (turns that read a cache, turns that read their previous turn's whole
/// prompt, share of prompt tokens read from cache).
fn cache_figures(turns: &[Turn]) -> (usize, usize, f64) {
    let reads = turns.iter().filter(|t| t.read > 0).count();
    let warm = turns
        .windows(2)
        .filter(|pair| pair[1].read >= pair[0].read + pair[0].written)
        .count();
    let read: u64 = turns.iter().map(|t| t.read).sum();
    let all: u64 = turns.iter().map(|t| t.read + t.written).sum();
    (reads, warm, read as f64 / all as f64)
}

#[tokio::test]
async fn a_conversation_stays_on_its_cache_scope_and_reads_its_cache() {
    let app = three_scopes("scope").await;
    let turns = converse(&app, TURNS, &[], |_, _| {}).await;
    let (reads, warm, share) = cache_figures(&turns);
    println!(
        "affinity: {reads}/{TURNS} turns read the cache, {warm} read the previous turn's \
         whole prompt, {:.0} % of prompt tokens read from cache",
        share * 100.0
    );
    assert!(reads >= 9, "{reads} cache reads in {TURNS} turns");
    assert_eq!(warm, TURNS - 1);
    assert!(turns.iter().all(|t| t.scope == turns[0].scope));

    let rr = three_scopes("off").await;
    let turns = converse(&rr, TURNS, &[], |_, _| {}).await;
    let (rr_reads, rr_warm, rr_share) = cache_figures(&turns);
    println!(
        "round-robin: {rr_reads}/{TURNS} turns read the cache, {rr_warm} read the previous \
         turn's whole prompt, {:.0} % of prompt tokens read from cache",
        rr_share * 100.0
    );
    // Every turn lands in another scope than the one before: no turn
    // finds what its previous turn wrote, and each scope writes the
    // system prompt once.
    assert_eq!(rr_warm, 0);
    let full_writes = turns.iter().filter(|t| t.read == 0).count();
    assert_eq!(full_writes, SCOPES.len());
    assert!(rr_share < share);
}

#[tokio::test]
async fn a_rate_limited_scope_moves_the_conversation_once_and_it_stays() {
    let app = three_scopes("scope").await;
    let keys = app.keys.clone();
    let upstream = app.upstream.clone();
    let turns = converse(&app, TURNS, &[], |turn, done| {
        if turn == 3 {
            // The bound scope runs out of its rate limit mid-conversation.
            let bound = &done[0].scope;
            for (i, key) in keys.iter().enumerate() {
                if SCOPES[i % 3] == bound {
                    upstream.always(
                        key,
                        Canned::error(429, "rate_limit_error", "slow down")
                            .header("retry-after", "60"),
                    );
                }
            }
        }
    })
    .await;
    let scopes: Vec<&str> = turns.iter().map(|t| t.scope.as_str()).collect();
    let moves = scopes.windows(2).filter(|pair| pair[0] != pair[1]).count();
    assert_eq!(moves, 1, "{scopes:?}");
    assert_ne!(scopes[3], scopes[0], "{scopes:?}");
    // After the move the new scope's cache is written once, then read.
    assert!(turns[4..].iter().all(|t| t.read > 0));
}

#[tokio::test]
async fn short_prompts_still_spread_across_every_key() {
    let app = three_scopes("scope").await;
    for _ in 0..12 {
        let response = app
            .post("/v1/messages")
            .header("x-session-id", "one-session")
            .json(&json!({
                "model": "claude-sonnet-4-20250514",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "Hi"}],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let calls = app.upstream.calls_per_key();
    for key in &app.keys {
        assert_eq!(calls.get(key), Some(&2), "{calls:?}");
    }
}

#[tokio::test]
async fn a_session_header_keeps_requests_with_different_prompts_together() {
    let app = three_scopes("scope").await;
    let scope_of = scopes_by_key_id(&app).await;
    let mut scopes = Vec::new();
    for i in 0..6 {
        let response = app
            .post("/v1/messages")
            .header("x-claude-code-session-id", "cc-session-1")
            .json(&json!({
                "model": "claude-sonnet-4-20250514",
                "max_tokens": 10,
                "system": format!("{i} {}", system_prompt()),
                "messages": [{"role": "user", "content": "Hi"}],
            }))
            .send()
            .await
            .unwrap();
        let key = response.headers()["x-keygate-key"].to_str().unwrap();
        scopes.push(scope_of[key].clone());
    }
    assert!(scopes.iter().all(|s| *s == scopes[0]), "{scopes:?}");
}

#[tokio::test]
async fn scopes_are_set_on_add_changed_by_patch_and_shown() {
    let app = TestApp::with_keys(1).await;
    let unscoped = app.key_status(0).await;
    assert_eq!(
        unscoped["scope"], unscoped["id"],
        "a key without a scope is its own"
    );

    let added = app
        .post("/api/keypool/anthropic/keys")
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"key": planted_key("added"), "scope": " acme-prod "}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["scope"], "acme-prod");
    let id = added["id"].as_str().unwrap().to_string();

    let patch = |body: Value| {
        app.client
            .patch(format!("{}/api/keypool/anthropic/keys/{id}", app.address))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
    };
    let changed = patch(json!({"scope": "acme-staging"})).await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(
        changed.json::<Value>().await.unwrap()["scope"],
        "acme-staging"
    );
    assert_eq!(app.key_status(1).await["scope"], "acme-staging");

    let refused = patch(json!({"scope": "a\nb"})).await.unwrap();
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("scope"),
        "{error}"
    );
    assert_eq!(app.key_status(1).await["scope"], "acme-staging");

    let cleared = patch(json!({"scope": ""})).await.unwrap();
    assert_eq!(cleared.json::<Value>().await.unwrap()["scope"], id.as_str());

    // Stored: a restart keeps it.
    patch(json!({"scope": "acme-prod"})).await.unwrap();
    let app = app.restart().await;
    assert_eq!(app.key_status(1).await["scope"], "acme-prod");
}

#[tokio::test]
async fn a_scope_given_in_the_environment_reaches_a_key_stored_before() {
    let upstream = FakeUpstream::start().await;
    let keys = vec![planted_key("env0")];
    let mut app = TestApp::start(
        TestEnv::new(&upstream, &keys),
        upstream.clone(),
        keys.clone(),
    )
    .await;
    let id = app.key_status(0).await["id"].clone();
    assert_eq!(app.key_status(0).await["scope"], id);
    app.shutdown().await;
    let mut env = TestEnv::new(&upstream, &keys);
    env.vars = app.env_vars().clone();
    env.data_dir = app.data_dir.clone();
    let items = json!([{"key": keys[0], "scope": "acme-prod", "weight": 4}]);
    let env = env.set("ANTHROPIC_API_KEYS", &items.to_string());
    let app = TestApp::start(env, upstream, keys).await;
    let key = app.key_status(0).await;
    assert_eq!(
        (&key["id"], &key["scope"], &key["weight"]),
        (&id, &json!("acme-prod"), &json!(4))
    );

    let bad = json!([{"key": "sk-ant-secret-in-env", "scope": "a\nb"}]);
    let env = TestEnv::new(&app.upstream, &[]).set("ANTHROPIC_API_KEYS", &bad.to_string());
    let error = match keygate::config::Config::from_lookup(|name| env.vars.get(name).cloned()) {
        Ok(_) => panic!("a bad scope was accepted"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("scope"), "{error}");
    assert!(!error.contains("secret-in-env"), "{error}");
}

#[tokio::test]
async fn cache_reads_are_counted_per_scope_and_their_saving_reported() {
    let app = three_scopes("scope").await;
    let turns = converse(&app, 4, &[], |_, _| {}).await;
    let scope = &turns[0].scope;
    let read: u64 = turns.iter().map(|t| t.read).sum();

    let metrics = crate::metrics::scrape(&app).await;
    let hits = format!("scope=\"{scope}\"");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keygate_cache_requests_total")
                && l.contains(&hits)
                && l.contains("kind=\"hit\"")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keygate_cache_hit_ratio")
                && l.contains(&hits)
                && l.ends_with(" 0.75")),
        "{metrics}"
    );

    // Sonnet 4: input $3/M, cache reads $0.30/M: each read token saved $2.70/M.
    let usage = wait_for_usage(&app, "/api/usage?group_by=scope").await;
    let group = usage["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"]["scope"] == scope.as_str())
        .unwrap()
        .clone();
    assert_eq!(group["tokens"]["cache_read"], read);
    assert_eq!(group["cache_saved_nanos"], read * 2_700);

    // Each recorded request names its key's scope.
    let page = app.admin_get("/api/usage/requests").await;
    let rows = page["requests"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().all(|row| row["cache_scope"] == scope.as_str()),
        "{page}"
    );
}

/// `/api/usage` at `path` once the ledger has written every row.
async fn wait_for_usage(app: &TestApp, path: &str) -> Value {
    for _ in 0..100 {
        let usage = app.admin_get(path).await;
        let requests: u64 = usage["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["requests"].as_u64().unwrap())
            .sum();
        if requests >= 4 {
            return usage;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the ledger did not record the requests");
}
