//! `/api/search` end to end against fake SerpApi, Google and Brave
//! servers: the normalised answer, bad input, the `auto` order, the 429
//! when every pool is out, the cache, the admin routes, metrics and ledger
//! for search pools, key checks with headroom, and no key anywhere.

use serde_json::{Value, json};

use crate::fake_search::{ACCOUNT, BRAVE, FakeSearch, GOOGLE, Reply, SERPAPI};
use crate::helpers::{ADMIN_KEY, TestApp};
use crate::search_app::{SearchApp, core, google_key, serp_key};

#[tokio::test]
async fn each_provider_answers_in_one_shape() {
    let s = SearchApp::start(1, 1, 1).await;
    for provider in ["serpapi", "google_cse", "brave"] {
        let (status, _, answer) = s
            .search(json!({"q": "rust gateway", "provider": provider, "num": 5, "start": 10}))
            .await;
        assert_eq!(status, 200, "{answer:#}");
        assert_eq!(answer["provider"], provider);
        assert_eq!(answer["query"], "rust gateway");
        assert_eq!(answer["attempts"], 1);
        assert_eq!(answer["cached"], false);
        assert!(answer["key_id"].as_str().unwrap().starts_with("key_"));
        assert!(answer["search_time_ms"].as_f64().unwrap() >= 0.0);
        let first = &answer["results"][0];
        assert_eq!(first["position"], 11, "{answer:#}");
        for field in ["title", "url", "snippet", "display_url"] {
            assert!(first[field].is_string(), "{field} in {answer:#}");
        }
    }
    let (_, _, serp) = s.search(json!({"q": "x", "provider": "serpapi"})).await;
    assert_eq!(serp["total_results"], 4200);
    assert_eq!(serp["results"][0]["display_url"], "one.example › a");
    assert_eq!(serp["results"][1]["display_url"], "two.example/b");
    let (_, _, google) = s.search(json!({"q": "x", "provider": "google_cse"})).await;
    assert_eq!(
        google["total_results"], 1234,
        "a number, not Google's string"
    );
    let (_, _, brave) = s.search(json!({"q": "x", "provider": "brave"})).await;
    assert_eq!(brave["total_results"], Value::Null);
    assert_eq!(brave["results"][0]["snippet"], "brave first");

    let get: Value = s
        .app
        .get("/api/search?q=hello%20world&provider=brave&num=3")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(get["query"], "hello world");
    assert_eq!(get["provider"], "brave");
}

#[tokio::test]
async fn bad_input_gets_a_400_naming_the_problem() {
    let s = SearchApp::start(1, 0, 0).await;
    for (body, names) in [
        (json!({}), "q:"),
        (json!({"q": "  "}), "q:"),
        (json!({"q": "x", "num": 11}), "num:"),
        (json!({"q": "x", "num": 0}), "num:"),
        (json!({"q": "x", "num": 10, "start": 95}), "start:"),
        (json!({"q": "x", "provider": "openai"}), "provider:"),
        (json!({"q": "x", "provider": "bing"}), "provider:"),
        (json!({"q": "x", "safe": "sometimes"}), "safe:"),
        (json!({"q": "x", "country": "usa"}), "country:"),
        (json!({"q": "x", "num": "ten"}), "num"),
    ] {
        let (status, _, answer) = s.search(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer:#}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{body}: {message}");
    }
    let get = s.app.get("/api/search?num=3").send().await.unwrap();
    assert_eq!(get.status(), 400);
    let get = s.app.get("/api/search?q=x&num=many").send().await.unwrap();
    assert_eq!(get.status(), 400);
    assert!(
        s.fake.all_calls().is_empty(),
        "no upstream call for bad input"
    );
}

#[tokio::test]
async fn auto_follows_search_providers_and_moves_on_when_a_pool_is_out() {
    let s = SearchApp::configured(1, 0, 1, |env| {
        env.set("SEARCH_PROVIDERS", r#"["brave","serpapi"]"#)
    })
    .await;
    // Brave's month is spent: its one key rests, auto moves to SerpApi.
    s.fake.always(
        BRAVE,
        &s.brave[0],
        Reply::new(
            429,
            json!({"error": {"code": "RATE_LIMITED", "detail": "over"}}),
        )
        .header("x-ratelimit-limit", "1, 2000")
        .header("x-ratelimit-remaining", "0, 0")
        .header("x-ratelimit-reset", "1, 600000"),
    );
    let (status, _, first) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200, "{first:#}");
    assert_eq!(first["provider"], "serpapi");
    let (status, _, second) = s.search(json!({"q": "b", "provider": "auto"})).await;
    assert_eq!(status, 200);
    assert_eq!(second["provider"], "serpapi");
    assert_eq!(
        s.fake.calls(BRAVE, &s.brave[0]),
        1,
        "a resting pool is not asked"
    );
    assert_eq!(s.fake.calls(SERPAPI, &s.serp[0]), 2);
    let brave = s.key("brave", &s.brave[0]).await;
    assert_eq!(brave["state"], "cooling_down");
    assert!(brave["cooldown_remaining_secs"].as_u64().unwrap() > 500_000);
    assert_eq!(
        (brave["requests"].clone(), brave["failures"].clone()),
        (json!(1), json!(1))
    );

    // Only Google asked for, and none configured: a clear 503.
    let (status, _, answer) = s.search(json!({"q": "a", "provider": "google_cse"})).await;
    assert_eq!(status, 503, "{answer:#}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GOOGLE_CSE_KEY")
    );
}

#[tokio::test]
async fn every_pool_out_answers_429_with_retry_after_of_the_first_key_back() {
    let s = SearchApp::start(1, 0, 1).await;
    s.fake.always(
        BRAVE,
        &s.brave[0],
        Reply::new(429, json!({}))
            .header("x-ratelimit-limit", "1, 2000")
            .header("x-ratelimit-remaining", "0, 5")
            .header("x-ratelimit-reset", "30, 600000"),
    );
    s.fake.always(
        SERPAPI,
        &s.serp[0],
        Reply::new(429, json!({"error": "limit"})),
    );
    s.fake.always(
        ACCOUNT,
        &s.serp[0],
        Reply::new(
            200,
            json!({"total_searches_left": 10, "this_hour_searches": 50,
                   "account_rate_limit_per_hour": 50}),
        ),
    );
    let (status, retry_after, answer) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 429, "{answer:#}");
    let retry: u64 = retry_after.unwrap().parse().unwrap();
    assert!(
        retry <= 30,
        "the first key back is Brave's, in 30 s: {retry}"
    );
    // Again: nothing is called now, and the answer is the same.
    let (status, retry_after, _) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 429);
    assert!(retry_after.unwrap().parse::<u64>().unwrap() <= 30);
    assert_eq!(s.fake.calls(SERPAPI, &s.serp[0]), 1);
    assert_eq!(s.fake.calls(BRAVE, &s.brave[0]), 1);
}

#[tokio::test]
async fn the_cache_answers_identical_searches_without_an_upstream_search() {
    let s = SearchApp::configured(1, 0, 0, |env| env.set("SEARCH_CACHE_SECS", "60")).await;
    let (_, _, first) = s.search(json!({"q": "cached", "num": 4})).await;
    assert_eq!(first["cached"], false);
    let (status, _, again) = s.search(json!({"q": "cached", "num": 4})).await;
    assert_eq!(status, 200);
    assert_eq!(again["cached"], true);
    assert_eq!(again["results"], first["results"]);
    assert_eq!(s.fake.calls(SERPAPI, &s.serp[0]), 1);
    // Other parameters are another search.
    let (_, _, other) = s.search(json!({"q": "cached", "num": 5})).await;
    assert_eq!(other["cached"], false);
    assert_eq!(s.fake.calls(SERPAPI, &s.serp[0]), 2);
    let key = s.key("serpapi", &s.serp[0]).await;
    assert_eq!(
        key["requests"], 2,
        "a cached answer counts no upstream search"
    );
}

#[tokio::test]
async fn without_the_cache_every_search_reaches_the_provider() {
    let s = SearchApp::start(1, 0, 0).await;
    for _ in 0..2 {
        let (_, _, answer) = s.search(json!({"q": "same"})).await;
        assert_eq!(answer["cached"], false);
    }
    assert_eq!(s.fake.calls(SERPAPI, &s.serp[0]), 2);
}

#[tokio::test]
async fn search_pools_have_status_stats_metrics_and_ledger_rows() {
    let s = SearchApp::start(2, 0, 1).await;
    let (status, _, _) = s.search(json!({"q": "a", "provider": "serpapi"})).await;
    assert_eq!(status, 200);
    let (status, _, _) = s.search(json!({"q": "b", "provider": "brave"})).await;
    assert_eq!(status, 200);
    let serp = s.status("serpapi").await;
    assert_eq!(serp["provider"], "serpapi");
    assert_eq!(serp["stats"]["total_keys"], 2);
    assert_eq!(serp["stats"]["total_requests"], 1);
    assert_eq!(serp["stats"]["successful_requests"], 1);
    let brave = s.key("brave", &s.brave[0]).await;
    assert_eq!(brave["successes"], 1);
    assert_eq!(
        brave["rate_limits"]["requests"]["remaining"], 19,
        "{brave:#}"
    );
    assert_eq!(brave["rate_limits"]["month"]["remaining"], 14000);
    let stats = s.app.admin_get("/api/keypool/stats").await;
    assert!(stats["providers"]["google_cse"].is_object(), "{stats:#}");
    let metrics = s.metrics().await;
    assert!(metrics.contains(r#"provider="serpapi""#), "{metrics}");
    assert!(metrics.contains(r#"provider="brave""#));
    let rows = s.rows(2).await;
    assert!(
        rows.iter().all(|r| r["route"] == "/api/search"),
        "{rows:#?}"
    );
    let providers: Vec<&str> = rows
        .iter()
        .map(|r| r["provider"].as_str().unwrap())
        .collect();
    assert!(providers.contains(&"serpapi") && providers.contains(&"brave"));
}

#[tokio::test]
async fn key_checks_read_serpapi_headroom_from_the_free_account_endpoint() {
    let s = SearchApp::configured(1, 0, 0, |env| env.set("KEY_STRATEGY", "headroom")).await;
    let answer: Value = s
        .app
        .post("/api/keypool/serpapi/test")
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let result = &answer["results"][0];
    assert_eq!(result["result"], "ok", "{answer:#}");
    assert_eq!(result["headroom"]["month"]["remaining"], 95);
    assert_eq!(result["headroom"]["requests"]["remaining"], 45);
    assert!(!answer.to_string().contains(core(&s.serp[0])));
    assert_eq!(s.fake.calls(ACCOUNT, &s.serp[0]), 1);
    assert_eq!(
        s.fake.calls(SERPAPI, &s.serp[0]),
        0,
        "the check spends no search"
    );
    let key = s.key("serpapi", &s.serp[0]).await;
    assert_eq!(key["rate_limits"]["month"]["remaining"], 95, "{key:#}");
    assert_eq!(key["rate_limits"]["requests"]["limit"], 50);
}

#[tokio::test]
async fn the_old_backend_env_keeps_working() {
    let fake = FakeSearch::start().await;
    let serp = serp_key("old");
    let google = google_key("old");
    let url = fake.url.clone();
    let (s, g) = (serp.clone(), google.clone());
    let app = TestApp::configured(0, move |env| {
        env.set("SERPAPI_KEY", &s)
            .set("GOOGLE_CSE_KEY", &g)
            .set("GOOGLE_CSE_CX", "abc123")
            .set("SERPAPI_BASE_URL", &url)
            .set("GOOGLE_CSE_BASE_URL", &url)
    })
    .await;
    for provider in ["serpapi", "google_cse"] {
        let response = app
            .post("/api/search")
            .json(&json!({"q": "x", "provider": provider}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{provider}");
    }
    assert_eq!(fake.calls(SERPAPI, &serp), 1);
    assert_eq!(fake.calls(GOOGLE, &google), 1);
}

#[tokio::test]
async fn chat_routes_refuse_a_search_provider() {
    let s = SearchApp::start(1, 0, 0).await;
    let response = s
        .app
        .chat(json!({"provider": "serpapi", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/search")
    );
    let models: Value = s
        .app
        .get("/api/models")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(models["providers"]["serpapi"].is_null());
}

#[tokio::test]
async fn search_needs_a_client_key_when_chat_does() {
    let s = SearchApp::configured(1, 0, 0, |env| {
        env.set("GATEWAY_API_KEYS", r#"["kg-client-key-0123456789"]"#)
    })
    .await;
    let refused = s.app.get("/api/search?q=x").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let allowed = s
        .app
        .get("/api/search?q=x")
        .header("x-api-key", "kg-client-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(s.fake.calls(SERPAPI, &s.serp[0]), 1);
}
