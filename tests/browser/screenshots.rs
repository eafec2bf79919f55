//! Screenshots of the dashboard for the README (`docs/dashboard-*.png`), at
//! a laptop's width and a phone's, of a pool in a plausible state: named
//! keys, one resting after a rate limit, one rejected, one disabled, live
//! traffic through the fake upstream and a day of generated ledger history.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_KEY, Canned, TestApp};
use crate::page::{key_ids, signed_in};
use crate::scene::{history, record};

const LABELS: [&str; 6] = [
    "prod-primary",
    "prod-secondary",
    "batch-jobs",
    "eu-team",
    "research",
    "staging",
];

async fn patch(app: &TestApp, provider: &str, id: &str, body: serde_json::Value) {
    let response = app
        .client
        .patch(format!("{}/api/keypool/{provider}/keys/{id}", app.address))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn scene() -> TestApp {
    let app = TestApp::configured_both(6, 2, |env| env.set("USAGE_QUEUE_CAPACITY", "10000")).await;
    let ids = key_ids(&app, "anthropic").await;
    for (id, label) in ids.iter().zip(LABELS) {
        patch(&app, "anthropic", id, json!({ "label": label })).await;
    }
    let openai = key_ids(&app, "openai").await;
    patch(
        &app,
        "openai",
        &openai[0],
        json!({ "label": "openai-main", "weight": 3 }),
    )
    .await;
    patch(&app, "anthropic", &ids[0], json!({ "weight": 4 })).await;
    app.upstream.always(
        app.key(3),
        Canned::error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        )
        .header("retry-after", "240"),
    );
    app.upstream.always(
        app.key(4),
        Canned::error(401, "authentication_error", "invalid x-api-key"),
    );
    for _ in 0..40 {
        app.hello().await;
    }
    patch(&app, "anthropic", &ids[5], json!({ "enabled": false })).await;
    record(&app, history(&ids[..5], 24, 6.0)).await;
    app
}

fn docs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name)
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn saves_desktop_and_phone_screenshots() {
    let app = scene().await;
    std::fs::create_dir_all(docs("")).unwrap();
    for (width, height, name) in [
        (1280, 2400, "dashboard-desktop.png"),
        (375, 812, "dashboard-phone.png"),
    ] {
        let browser = signed_in(&app, width, height).await;
        browser
            .wait_for(
                "the charts",
                "document.querySelectorAll('#chart-requests rect.cbar').length > 0",
            )
            .await;
        let inner = browser.js("return window.innerWidth;", vec![]).await;
        assert_eq!(inner, json!(width), "viewport width");
        // Nothing wider than the screen: no sideways scrolling on a phone.
        let overflow = browser
            .js(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await;
        assert_eq!(overflow, json!(0), "the page is wider than {width} px");
        browser.screenshot(&docs(name)).await;
        browser.close().await;
    }
}
