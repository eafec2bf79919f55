//! Resources bound to the key that created them: a stored response is
//! reached (retrieved, deleted, cancelled, continued with
//! `previous_response_id`) through that key alone, across restarts. When
//! that key is cooling the answer is 429 with `Retry-After`; when it is
//! gone, a 410 that says why; another key is never tried, and a key is
//! never shown.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, Canned, TestApp, secret_core};

/// Creates a stored response; its id and the id of the key that made it.
async fn stored_response(app: &TestApp) -> (String, String) {
    let response = app
        .post("/v1/responses")
        .json(&json!({"model": "gpt-4.1-mini", "input": "Remember me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let key = response.headers()["x-keygate-key"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    (body["id"].as_str().unwrap().to_string(), key)
}

async fn openai_key_ids(app: &TestApp) -> Vec<String> {
    app.admin_get("/api/keypool/openai/status").await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect()
}

/// The planted secret behind key id `key`.
async fn secret_of(app: &TestApp, key: &str) -> String {
    let index = openai_key_ids(app)
        .await
        .iter()
        .position(|id| id == key)
        .unwrap();
    app.openai_key(index).to_string()
}

async fn follow_up(app: &TestApp, previous: &str) -> reqwest::Response {
    app.post("/v1/responses")
        .json(&json!({"model": "gpt-4.1-mini", "input": "And then?", "previous_response_id": previous}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn follow_ups_retrieval_and_deletion_use_the_creating_key_while_others_are_healthy() {
    let app = TestApp::with_both(0, 3).await;
    let (id, key) = stored_response(&app).await;
    let secret = secret_of(&app, &key).await;
    for _ in 0..4 {
        let response = follow_up(&app, &id).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-keygate-key"], key.as_str());
    }
    let fetched = app
        .get(&format!("/v1/responses/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    let body: Value = fetched.json().await.unwrap();
    assert_eq!(body["id"], id.as_str());
    let cancelled = app
        .post(&format!("/v1/responses/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let deleted = app
        .client
        .delete(format!("{}/v1/responses/{id}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(deleted.json::<Value>().await.unwrap()["deleted"], true);
    // 1 creation, 4 follow-ups, get, cancel, delete: all with that key.
    assert_eq!(app.upstream.calls().len(), 8);
    assert_eq!(app.upstream.calls_with(&secret), 8);

    // Deleted, the response is no longer known: keygate says so itself.
    let gone = app
        .get(&format!("/v1/responses/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let body: Value = gone.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not known to keygate")
    );
    assert_eq!(app.upstream.calls().len(), 8, "no key was asked");
}

#[tokio::test]
async fn a_cooling_creator_key_answers_429_with_retry_after_and_no_other_key_is_tried() {
    let app = TestApp::with_both(0, 3).await;
    let (id, key) = stored_response(&app).await;
    let secret = secret_of(&app, &key).await;
    app.upstream.queue(
        &secret,
        [Canned::openai_error(
            429,
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached",
        )
        .header("retry-after", "30")],
    );
    let before = app.upstream.calls().len();
    let response = follow_up(&app, &id).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&id) && message.contains("cooling"),
        "{message}"
    );
    assert_eq!(
        app.upstream.calls().len(),
        before + 1,
        "only the creator was asked, once"
    );

    // While it cools, calls naming the response wait for it, not for others.
    let response = app
        .get(&format!("/v1/responses/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(app.upstream.calls().len(), before + 1);
    // Other work still rotates over the healthy keys.
    let (_, other) = stored_response(&app).await;
    assert_ne!(other, key);
}

#[tokio::test]
async fn a_deleted_creator_key_makes_its_responses_answer_410_saying_why() {
    let app = TestApp::with_both(0, 2).await;
    let (id, key) = stored_response(&app).await;
    let secret = secret_of(&app, &key).await;
    let deleted = app
        .client
        .delete(format!("{}/api/keypool/openai/keys/{key}", app.address))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let before = app.upstream.calls().len();
    for response in [
        app.get(&format!("/v1/responses/{id}"))
            .send()
            .await
            .unwrap(),
        follow_up(&app, &id).await,
    ] {
        assert_eq!(response.status(), 410);
        let text = response.text().await.unwrap();
        assert!(
            !text.contains(secret_core(&secret)),
            "the key leaked: {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&key) && message.contains("deleted"),
            "{message}"
        );
    }
    assert_eq!(app.upstream.calls().len(), before, "no other key was tried");
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_refused_before_any_upstream_call() {
    let app = TestApp::with_both(0, 1).await;
    let unknown = follow_up(&app, "resp_never_made_here").await;
    assert_eq!(unknown.status(), 404);
    let malformed = app
        .get("/v1/responses/..%2Fv1%2Fmodels")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(app.upstream.calls().is_empty());
}

#[tokio::test]
async fn a_binding_survives_a_restart_and_responses_stored_false_are_not_bound() {
    let app = TestApp::with_both(0, 3).await;
    let (id, key) = stored_response(&app).await;
    let unstored = app
        .post("/v1/responses")
        .json(&json!({"model": "gpt-4.1-mini", "input": "Forget me", "store": false}))
        .send()
        .await
        .unwrap();
    let unstored_id = unstored.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let app = app.restart().await;
    for _ in 0..3 {
        let response = app
            .get(&format!("/v1/responses/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-keygate-key"], key.as_str());
    }
    let response = app
        .get(&format!("/v1/responses/{unstored_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_streamed_response_is_bound_to_the_key_that_streamed_it() {
    let app = TestApp::with_both(0, 3).await;
    let response = app
        .post("/v1/responses")
        .json(&json!({"model": "gpt-4.1-mini", "input": "Stream me", "stream": true}))
        .send()
        .await
        .unwrap();
    let key = response.headers()["x-keygate-key"]
        .to_str()
        .unwrap()
        .to_string();
    let frames = crate::helpers::sse_frames(response).await;
    let created: Value = serde_json::from_str(&frames[0].data).unwrap();
    let id = created["response"]["id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let fetched = app
            .get(&format!("/v1/responses/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(fetched.status(), 200);
        assert_eq!(fetched.headers()["x-keygate-key"], key.as_str());
    }
}

#[tokio::test]
async fn on_postgresql_a_binding_survives_a_restart_too() {
    let database = crate::pg_support::TestDatabase::create().await;
    let app = TestApp::configured_both(0, 3, |env| env.set("DATABASE_URL", &database.url)).await;
    let (id, key) = stored_response(&app).await;
    let app = app.restart().await;
    for _ in 0..3 {
        let response = follow_up(&app, &id).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-keygate-key"], key.as_str());
    }
}
