//! Outlier ejection seen from outside: a key that answers every request
//! with a 500 while its siblings succeed stops getting traffic after a few
//! faults, no client request fails for it, and it comes back through one
//! probe once it recovers. When every key fails, none is ejected.

use std::time::Duration;

use futures::StreamExt;

use crate::helpers::{Canned, TestApp};

#[tokio::test]
async fn a_key_that_always_fails_gets_at_most_ten_of_600_concurrent_requests() {
    let app = TestApp::with_keys(4).await;
    app.upstream.always(
        app.key(0),
        Canned::error(500, "api_error", "internal server error"),
    );
    let statuses: Vec<u16> = futures::stream::iter(0..600)
        .map(|_| async { app.hello().await.status().as_u16() })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let bad_calls = app.upstream.calls_with(app.key(0));
    assert!(bad_calls <= 10, "the failing key got {bad_calls} calls");
    let key = app.key_status(0).await;
    assert_eq!(key["state"], "ejected", "{key}");
    assert_eq!(key["ejections"], 1);
    assert!(key["ejection"]["returns_in_secs"].as_u64().unwrap() <= 30);
    assert_eq!(key["ejection"]["reason"], "internal server error");
    let stats = app.admin_get("/api/keypool/stats").await;
    assert_eq!(
        stats["providers"]["anthropic"]["ejected_keys"], 1,
        "{stats}"
    );
}

#[tokio::test]
async fn a_recovered_key_is_back_in_rotation_after_its_probe() {
    let app = TestApp::configured(3, |env| env.set("OUTLIER_EJECTION_SECS", "0.3")).await;
    app.upstream.queue(
        app.key(0),
        (0..5).map(|_| Canned::error(503, "api_error", "unavailable")),
    );
    for _ in 0..15 {
        assert_eq!(app.hello().await.status(), 200);
    }
    assert_eq!(app.key_status(0).await["state"], "ejected");
    assert_eq!(app.upstream.calls_with(app.key(0)), 5);
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..9 {
        assert_eq!(app.hello().await.status(), 200);
    }
    let key = app.key_status(0).await;
    assert_eq!(key["state"], "active", "{key}");
    assert!(key["ejection"].is_null());
    assert_eq!(
        app.upstream.calls_with(app.key(0)),
        5 + 3,
        "back in the round-robin"
    );
}

#[tokio::test]
async fn when_every_key_fails_none_is_ejected_and_the_answer_is_overloaded() {
    let app = TestApp::with_keys(3).await;
    for i in 0..3 {
        app.upstream.always(
            app.key(i),
            Canned::error(500, "api_error", "internal server error"),
        );
    }
    for _ in 0..10 {
        assert_eq!(app.hello().await.status(), 503);
    }
    let status = app.status().await;
    for key in status["keys"].as_array().unwrap() {
        assert_eq!(key["state"], "active", "{key}");
        assert_eq!(key["ejections"], 0);
    }
}
