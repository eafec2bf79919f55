//! Each search provider's failure rules against the fake search server:
//! what happens to the key, what the client gets, which calls are made.

use serde_json::{Value, json};

use crate::fake_search::{ACCOUNT, BRAVE, GOOGLE, Reply, SERPAPI};
use crate::search_app::SearchApp;

pub fn serpapi_account(left: u64, this_hour: u64) -> Reply {
    Reply::new(
        200,
        json!({"api_key": "echoed", "total_searches_left": left, "plan_searches_left": left,
               "searches_per_month": 100, "this_hour_searches": this_hour,
               "account_rate_limit_per_hour": 50, "plan_renewal_date": "2099-01-01"}),
    )
}

pub fn google_error(code: u16, status: &str, message: &str, reason: &str) -> Reply {
    Reply::new(
        code,
        json!({"error": {"code": code, "message": message, "status": status,
                         "errors": [{"message": message, "domain": "global", "reason": reason}]}}),
    )
}

pub fn daily_quota(project: u64) -> Reply {
    google_error(
        429,
        "RESOURCE_EXHAUSTED",
        &format!(
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per day' of service \
             'customsearch.googleapis.com' for consumer 'project_number:{project}'."
        ),
        "rateLimitExceeded",
    )
}

fn counts(key: &Value) -> (u64, u64, u64) {
    (
        key["requests"].as_u64().unwrap(),
        key["successes"].as_u64().unwrap(),
        key["failures"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn serpapi_401_makes_the_key_invalid_and_the_next_key_answers() {
    let s = SearchApp::start(2, 0, 0).await;
    s.fake.always(
        SERPAPI,
        &s.serp[0],
        Reply::new(401, json!({"error": "Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key"})),
    );
    let (status, _, answer) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer["attempts"], 2);
    let (status, _, _) = s.search(json!({"q": "b"})).await;
    assert_eq!(status, 200);
    let bad = s.key("serpapi", &s.serp[0]).await;
    assert_eq!(bad["state"], "invalid");
    assert_eq!(counts(&bad), (1, 0, 1));
    assert_eq!(counts(&s.key("serpapi", &s.serp[1]).await), (2, 2, 0));
    assert_eq!(s.fake.calls(SERPAPI, &s.serp[0]), 1);
    assert_eq!(
        s.fake.calls(ACCOUNT, &s.serp[0]),
        0,
        "only a 429 asks the account"
    );
}

#[tokio::test]
async fn serpapi_429_with_the_month_spent_rests_until_the_plan_renews() {
    let s = SearchApp::start(2, 0, 0).await;
    s.fake.always(
        SERPAPI,
        &s.serp[0],
        Reply::new(
            429,
            json!({"error": "Your account has run out of searches."}),
        ),
    );
    s.fake.always(ACCOUNT, &s.serp[0], serpapi_account(0, 3));
    let (status, _, answer) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200, "{answer:#}");
    let spent = s.key("serpapi", &s.serp[0]).await;
    assert_eq!(spent["state"], "cooling_down");
    // Until 2099-01-01: decades, not the 15-minute cap of chat cooldowns.
    assert!(
        spent["cooldown_remaining_secs"].as_u64().unwrap() > 365 * 86_400,
        "{spent:#}"
    );
    assert_eq!(counts(&spent), (1, 0, 1));
    assert_eq!(spent["rate_limits"]["month"]["remaining"], 0);
    assert_eq!(s.fake.calls(ACCOUNT, &s.serp[0]), 1);
    for _ in 0..3 {
        s.search(json!({"q": "b"})).await;
    }
    assert_eq!(
        s.fake.calls(SERPAPI, &s.serp[0]),
        1,
        "a spent key is not asked again"
    );
}

#[tokio::test]
async fn serpapi_429_at_the_hourly_limit_rests_until_the_hour_turns() {
    let s = SearchApp::start(2, 0, 0).await;
    s.fake.always(
        SERPAPI,
        &s.serp[0],
        Reply::new(429, json!({"error": "hourly searches limit"})),
    );
    s.fake.always(ACCOUNT, &s.serp[0], serpapi_account(80, 50));
    let (status, _, _) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200);
    let limited = s.key("serpapi", &s.serp[0]).await;
    assert_eq!(limited["state"], "cooling_down");
    let rest = limited["cooldown_remaining_secs"].as_u64().unwrap();
    assert!((1..=3600).contains(&rest), "{rest}");
    assert_eq!(limited["rate_limits"]["requests"]["remaining"], 0);
}

#[tokio::test]
async fn a_burst_of_serpapi_429s_asks_the_account_endpoint_once() {
    let s = SearchApp::configured(1, 0, 0, |env| env.set("MAX_ATTEMPTS", "1")).await;
    s.fake.always(
        SERPAPI,
        &s.serp[0],
        Reply::new(429, json!({"error": "limit"})),
    );
    // The account sees no limit reached: the default cooldown applies, and
    // the key is asked about once however many 429s arrive together.
    s.fake.always(ACCOUNT, &s.serp[0], serpapi_account(80, 10));
    let burst = (0..6).map(|i| s.search(json!({"q": format!("q{i}")})));
    let answers = futures::future::join_all(burst).await;
    assert!(answers.iter().all(|(status, _, _)| *status == 429));
    assert!(s.fake.calls(SERPAPI, &s.serp[0]) >= 1);
    assert_eq!(s.fake.calls(ACCOUNT, &s.serp[0]), 1);
}

#[tokio::test]
async fn a_serpapi_200_with_an_error_and_no_results_is_an_empty_answer() {
    let s = SearchApp::start(1, 0, 0).await;
    s.fake.always(
        SERPAPI,
        &s.serp[0],
        Reply::new(
            200,
            json!({"search_metadata": {"status": "Success"},
                               "error": "Google hasn't returned any results for this query."}),
        ),
    );
    let (status, _, answer) = s.search(json!({"q": "zxqv"})).await;
    assert_eq!(status, 200);
    assert_eq!(answer["results"], json!([]));
    assert_eq!(counts(&s.key("serpapi", &s.serp[0]).await), (1, 1, 0));
}

#[tokio::test]
async fn google_daily_quota_rests_until_midnight_pacific_and_project_keys_together() {
    let s = SearchApp::configured(0, 3, 0, |env| env.set("MAX_ATTEMPTS", "3")).await;
    s.fake
        .queue(GOOGLE, &s.google[0], [daily_quota(42), daily_quota(42)]);
    s.fake.queue(GOOGLE, &s.google[1], [daily_quota(42)]);
    s.fake.always(GOOGLE, &s.google[2], daily_quota(77));
    let (status, retry_after, _) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 429);
    let retry: u64 = retry_after.unwrap().parse().unwrap();
    assert!(
        retry <= 25 * 3600,
        "until the next Pacific midnight: {retry}"
    );
    for key in &s.google {
        let status = s.key("google_cse", key).await;
        assert_eq!(status["state"], "cooling_down");
        let rest = status["cooldown_remaining_secs"].as_u64().unwrap();
        assert!((1..=25 * 3600).contains(&rest), "{rest}");
        assert_eq!(counts(&status), (1, 0, 1));
    }
    // keygate now knows keys 0 and 1 share project 42. After a reset,
    // key 0 meets the quota again: key 1 rests with it, unasked.
    let reset = s
        .app
        .post("/api/keypool/google_cse/reset")
        .bearer_auth(crate::helpers::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let (status, _, answer) = s.search(json!({"q": "b"})).await;
    assert_eq!(status, 429, "{answer:#}");
    assert_eq!(s.fake.calls(GOOGLE, &s.google[0]), 2);
    assert_eq!(
        s.fake.calls(GOOGLE, &s.google[1]),
        1,
        "the project's other key is not asked"
    );
    let sibling = s.key("google_cse", &s.google[1]).await;
    assert_eq!(sibling["state"], "cooling_down");
}

#[tokio::test]
async fn google_per_minute_limit_is_a_short_rest() {
    let s = SearchApp::start(0, 2, 0).await;
    s.fake.queue(
        GOOGLE,
        &s.google[0],
        [google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'",
            "rateLimitExceeded",
        )],
    );
    let (status, _, _) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200);
    let key = s.key("google_cse", &s.google[0]).await;
    assert_eq!(key["state"], "cooling_down");
    assert!(key["cooldown_remaining_secs"].as_u64().unwrap() <= 60);
}

#[tokio::test]
async fn google_403_no_access_makes_the_key_invalid_with_the_reason() {
    let s = SearchApp::start(0, 2, 0).await;
    s.fake.always(
        GOOGLE,
        &s.google[0],
        google_error(
            403,
            "PERMISSION_DENIED",
            "This project does not have the access to Custom Search JSON API.",
            "forbidden",
        ),
    );
    let (status, _, _) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200);
    let key = s.key("google_cse", &s.google[0]).await;
    assert_eq!(key["state"], "invalid");
    assert!(
        key["invalid_reason"]
            .as_str()
            .unwrap()
            .contains("does not have the access")
    );
}

#[tokio::test]
async fn google_bad_key_is_invalid() {
    let s = SearchApp::start(0, 2, 0).await;
    s.fake.always(
        GOOGLE,
        &s.google[0],
        Reply::new(400, json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}})),
    );
    let (status, _, _) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200);
    assert_eq!(s.key("google_cse", &s.google[0]).await["state"], "invalid");
}

#[tokio::test]
async fn google_invalid_cx_is_a_503_configuration_error_blaming_no_key() {
    let s = SearchApp::start(0, 2, 0).await;
    for key in &s.google {
        s.fake.always(
            GOOGLE,
            key,
            google_error(
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                "badRequest",
            ),
        );
    }
    let (status, _, answer) = s.search(json!({"q": "a", "provider": "google_cse"})).await;
    assert_eq!(status, 503, "{answer:#}");
    assert_eq!(answer["error"]["type"], "configuration_error");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GOOGLE_CSE_CX")
    );
    for key in &s.google {
        let status = s.key("google_cse", key).await;
        assert_eq!(status["state"], "active", "{status:#}");
        assert_eq!(status["failures"], 0);
    }
    assert_eq!(
        s.fake.calls(GOOGLE, &s.google[0]) + s.fake.calls(GOOGLE, &s.google[1]),
        1,
        "a configuration fault is not retried on other keys"
    );
}

#[tokio::test]
async fn brave_headers_set_headroom_and_the_per_second_reset_sets_the_rest() {
    let s = SearchApp::start(0, 0, 2).await;
    s.fake.queue(
        BRAVE,
        &s.brave[0],
        [Reply::new(429, json!({"type": "ErrorResponse", "error": {"code": "RATE_LIMITED", "detail": "Request rate limit exceeded"}}))
            .header("x-ratelimit-limit", "1, 15000")
            .header("x-ratelimit-remaining", "0, 14000")
            .header("x-ratelimit-reset", "7, 1419704")],
    );
    let (status, _, answer) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200);
    assert_eq!(answer["attempts"], 2);
    let limited = s.key("brave", &s.brave[0]).await;
    assert_eq!(limited["state"], "cooling_down");
    let rest = limited["cooldown_remaining_secs"].as_u64().unwrap();
    assert!(
        (1..=7).contains(&rest),
        "the per-second window's reset: {rest}"
    );
    assert_eq!(
        limited["rate_limits"]["requests"]["remaining"], 0,
        "{limited:#}"
    );
    assert_eq!(limited["rate_limits"]["month"]["remaining"], 14000);
    let fine = s.key("brave", &s.brave[1]).await;
    assert_eq!(fine["rate_limits"]["month"]["remaining"], 14000, "{fine:#}");
    assert_eq!(counts(&fine), (1, 1, 0));
}

#[tokio::test]
async fn brave_invalid_token_is_an_invalid_key() {
    let s = SearchApp::start(0, 0, 2).await;
    s.fake.always(
        BRAVE,
        &s.brave[0],
        Reply::new(422, json!({"type": "ErrorResponse", "error": {"code": "SUBSCRIPTION_TOKEN_INVALID", "detail": "The provided subscription token is invalid."}})),
    );
    let (status, _, _) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200);
    assert_eq!(s.key("brave", &s.brave[0]).await["state"], "invalid");
}

#[tokio::test]
async fn a_spent_month_outlives_a_restart() {
    let mut s = SearchApp::start(2, 0, 0).await;
    s.fake.always(
        SERPAPI,
        &s.serp[0],
        Reply::new(
            429,
            json!({"error": "Your account has run out of searches."}),
        ),
    );
    s.fake.always(ACCOUNT, &s.serp[0], serpapi_account(0, 0));
    let (status, _, _) = s.search(json!({"q": "a"})).await;
    assert_eq!(status, 200);
    s.app = s.app.restart().await;
    let spent = s.key("serpapi", &s.serp[0]).await;
    assert_eq!(spent["state"], "cooling_down", "{spent:#}");
    assert!(spent["cooldown_remaining_secs"].as_u64().unwrap() > 365 * 86_400);
    let (status, _, answer) = s.search(json!({"q": "b"})).await;
    assert_eq!(status, 200);
    assert_eq!(answer["attempts"], 1);
    assert_eq!(s.fake.calls(SERPAPI, &s.serp[0]), 1);
}
