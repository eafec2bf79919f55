//! No search key shows anywhere after any failure class: upstreams echo
//! the key back (whole and inside URLs), and afterwards the answers, logs,
//! admin views, metrics, ledger rows and the database file are searched.

use serde_json::json;

use crate::fake_search::{ACCOUNT, BRAVE, GOOGLE, Reply, SERPAPI};
use crate::search_app::{SearchApp, core};
use crate::search_rules::{daily_quota, google_error, serpapi_account};

/// Upstreams that echo the key back, inside URLs and whole, for every
/// failure class; afterwards no part of any key shows in any answer, log
/// line, admin answer, metric, ledger row or the database file.
#[tokio::test]
async fn no_search_key_shows_anywhere_after_any_failure_class() {
    let s = SearchApp::configured(3, 3, 2, |env| env.set("SEARCH_CACHE_SECS", "0")).await;
    let echo = |key: &str, base: &str| {
        format!("failed GET {base}/search.json?engine=google&api_key={key}&q=x (key {key})")
    };
    let url = s.fake.url.clone();
    s.fake.always(
        SERPAPI,
        &s.serp[0],
        Reply::new(401, json!({"error": echo(&s.serp[0], &url)})),
    );
    s.fake.always(
        SERPAPI,
        &s.serp[1],
        Reply::new(429, json!({"error": echo(&s.serp[1], &url)})),
    );
    s.fake.always(ACCOUNT, &s.serp[1], serpapi_account(0, 0));
    s.fake.always(
        SERPAPI,
        &s.serp[2],
        Reply::new(503, json!({"error": echo(&s.serp[2], &url)})),
    );
    s.fake.always(
        GOOGLE,
        &s.google[0],
        google_error(
            403,
            "PERMISSION_DENIED",
            &echo(&s.google[0], &url),
            "forbidden",
        ),
    );
    s.fake.always(GOOGLE, &s.google[1], daily_quota(9));
    s.fake.always(
        GOOGLE,
        &s.google[2],
        google_error(
            400,
            "INVALID_ARGUMENT",
            &echo(&s.google[2], &url),
            "badRequest",
        ),
    );
    s.fake.always(
        BRAVE,
        &s.brave[0],
        Reply::new(401, json!({"error": {"detail": echo(&s.brave[0], &url)}})),
    );
    s.fake.always(
        BRAVE,
        &s.brave[1],
        Reply::new(429, json!({"error": {"detail": echo(&s.brave[1], &url)}}))
            .header("x-ratelimit-limit", "1, 10")
            .header("x-ratelimit-remaining", "0, 0")
            .header("x-ratelimit-reset", "1, 100"),
    );
    let mut answers = String::new();
    for provider in ["serpapi", "google_cse", "brave", "auto"] {
        for _ in 0..3 {
            let (_, _, answer) = s.search(json!({"q": "leak", "provider": provider})).await;
            answers.push_str(&answer.to_string());
        }
    }
    for provider in ["serpapi", "google_cse", "brave"] {
        let check = s
            .app
            .post(&format!("/api/keypool/{provider}/test"))
            .bearer_auth(crate::helpers::ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        answers.push_str(&check);
    }
    // Let the state saver and the ledger write what they hold.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let seen = s.everything_shown(&answers).await;
    for key in s.serp.iter().chain(&s.google).chain(&s.brave) {
        assert!(!seen.contains(core(key)), "a key's middle showed up");
        assert!(
            !seen.contains(&key[..key.len() - 4]),
            "a key's head showed up"
        );
    }
    assert!(!seen.contains("api_key=serp"), "a key in a URL showed up");
    assert!(!seen.contains("key=AIza"));
}
