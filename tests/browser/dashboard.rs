//! What an operator does on the dashboard, in a real browser.

use std::time::Duration;

use serde_json::{Value, json};

use crate::driver::Browser;
use crate::helpers::{ADMIN_KEY, Canned, TestApp, planted_key};
use crate::page::{exists, key_ids, row, signed_in};

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn signs_in_once_and_keeps_the_key_in_the_tab_only() {
    let app = TestApp::with_keys(2).await;
    let browser = signed_in(&app, 1280, 900).await;
    assert!(exists(&browser, "#app:not([hidden])").await);
    let kept = browser
        .js(
            "return [sessionStorage.getItem('keygate.adminKey'), document.cookie, location.href, localStorage.length];",
            vec![],
        )
        .await;
    assert_eq!(kept[0], json!(ADMIN_KEY), "the key is in sessionStorage");
    assert_eq!(kept[1], json!(""), "no cookie");
    assert!(
        !kept[2].as_str().unwrap().contains(ADMIN_KEY),
        "not in the URL"
    );
    assert_eq!(kept[3], json!(0), "nothing in localStorage");
    // A reload in the same tab does not ask again.
    browser.client.refresh().await.unwrap();
    browser
        .wait_for("the page after a reload", "document.body.dataset.ready")
        .await;
    assert!(exists(&browser, "#login[hidden]").await);
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn shows_each_pool_with_its_keys_and_states() {
    let app = TestApp::with_both(3, 1).await;
    let anthropic = key_ids(&app, "anthropic").await;
    let openai = key_ids(&app, "openai").await;
    let browser = signed_in(&app, 1280, 900).await;
    for id in &anthropic {
        let state = browser
            .text(&format!("{} .badge", row("anthropic", id)))
            .await;
        assert_eq!(state, "active");
    }
    assert!(exists(&browser, &row("openai", &openai[0])).await);
    let card = "#provider-cards [data-provider='anthropic']";
    for (state, count) in [("active", "3"), ("cooling_down", "0"), ("disabled", "0")] {
        let shown = browser.text(&format!("{card} .count.state-{state}")).await;
        assert_eq!(
            shown.split_whitespace().next(),
            Some(count),
            "{state}: {shown}"
        );
    }
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn adds_a_key_and_it_appears_without_its_secret() {
    let app = TestApp::with_keys(1).await;
    let browser = signed_in(&app, 1280, 900).await;
    let secret = planted_key("added");
    browser.type_into("#add-secret", &secret).await;
    browser.type_into("#add-label", "team-b backup").await;
    browser.click("#add-submit").await;
    browser
        .wait_for(
            "the new row",
            "[...document.querySelectorAll('#pools .key-label')].some(e => e.textContent === 'team-b backup')",
        )
        .await;
    let notice = browser.text("#notice").await;
    assert!(notice.contains("Added"), "{notice}");
    let leftovers = browser
        .js(
            "return [document.getElementById('add-secret').value, document.body.innerText.includes(arguments[0])];",
            vec![json!(secret)],
        )
        .await;
    assert_eq!(
        leftovers,
        json!(["", false]),
        "the secret is gone from the page"
    );
    assert_eq!(key_ids(&app, "anthropic").await.len(), 2);
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn disables_a_key_and_its_state_changes() {
    let app = TestApp::with_keys(2).await;
    let id = key_ids(&app, "anthropic").await[1].clone();
    let browser = signed_in(&app, 1280, 900).await;
    let selector = row("anthropic", &id);
    browser
        .click(&format!("{selector} button[data-action='toggle']"))
        .await;
    browser
        .wait_for(
            "the disabled state",
            &format!("document.querySelector(\"{selector} .badge\").textContent === 'disabled'"),
        )
        .await;
    let button = browser
        .text(&format!("{selector} button[data-action='toggle']"))
        .await;
    assert_eq!(button, "Enable");
    assert_eq!(app.status().await["keys"][1]["state"], "disabled");
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn shows_the_cooldown_countdown_of_a_rate_limited_key() {
    let app = TestApp::with_keys(2).await;
    app.upstream.always(
        app.key(0),
        Canned::error(429, "rate_limit_error", "rate limited").header("retry-after", "300"),
    );
    let browser = signed_in(&app, 1280, 900).await;
    for _ in 0..4 {
        assert_eq!(app.hello().await.status(), 200);
    }
    let id = key_ids(&app, "anthropic").await[0].clone();
    let selector = row("anthropic", &id);
    browser
        .wait_for(
            "the countdown",
            &format!("document.querySelector(\"{selector} .countdown.running\")"),
        )
        .await;
    assert_eq!(browser.text(&format!("{selector} .badge")).await, "cooling");
    let first = seconds(&browser.text(&format!("{selector} .countdown")).await);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let later = seconds(&browser.text(&format!("{selector} .countdown")).await);
    assert!(first > 200 && first <= 300, "{first}");
    assert!(later < first, "counts down: {first} then {later}");
    let next = browser
        .text("#provider-cards [data-provider='anthropic'] .figures")
        .await;
    assert!(next.contains("in 4:") || next.contains("in 5:"), "{next}");
    browser.close().await;
}

/// "4:59" → 299
fn seconds(text: &str) -> u64 {
    text.split(':')
        .map(|part| part.parse::<u64>().unwrap_or_else(|_| panic!("{text:?}")))
        .fold(0, |total, part| total * 60 + part)
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn draws_the_usage_chart_with_data() {
    let app = TestApp::with_keys(2).await;
    for _ in 0..6 {
        assert_eq!(app.hello().await.status(), 200);
    }
    wait_for_ledger(&app, 6).await;
    let browser = signed_in(&app, 1280, 900).await;
    browser
        .wait_for(
            "bars in the requests chart",
            "document.querySelectorAll('#chart-requests svg rect.cbar').length > 0",
        )
        .await;
    let drawn = browser
        .js(
            "const f = document.getElementById('chart-requests');
             return [Number(f.dataset.bars), f.querySelector('svg').getBBox().height,
                     document.querySelector('#chart-requests .legend').textContent];",
            vec![],
        )
        .await;
    assert!(drawn[0].as_u64().unwrap() >= 1, "{drawn}");
    assert!(drawn[1].as_f64().unwrap() > 0.0, "{drawn}");
    // Six requests, whichever keys served them.
    let totals = browser.text("#totals-key tbody").await;
    let served: u64 = totals
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    assert_eq!(served, 6, "{totals}");
    browser.close().await;
}

/// Until the ledger's writer has stored `n` requests.
pub async fn wait_for_ledger(app: &TestApp, n: u64) {
    for _ in 0..100 {
        let usage = app.admin_get("/api/usage").await;
        if usage["groups"][0]["requests"].as_u64() >= Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the ledger never recorded {n} requests");
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn a_label_written_as_html_is_shown_as_text_and_never_runs() {
    let app = TestApp::with_keys(1).await;
    let browser = signed_in(&app, 1280, 900).await;
    let labels = [
        "<img src=x onerror=alert(1)>",
        "<img src=x onerror=\"window.xssRan=1\"><script>window.xssRan=2</script>",
    ];
    for (i, label) in labels.iter().enumerate() {
        browser
            .type_into("#add-secret", &planted_key(&format!("xss{i}")))
            .await;
        browser.type_into("#add-label", label).await;
        browser.click("#add-submit").await;
        browser
            .wait_for(
                "the new row",
                &format!(
                    "document.querySelectorAll('#pools tbody tr').length === {}",
                    i + 2
                ),
            )
            .await;
    }
    // Give an image error handler every chance to run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "an alert opened"
    );
    let found = browser
        .js(
            "return [window.xssRan === undefined,
                     document.querySelectorAll('#app img, #app script, #notice img').length,
                     [...document.querySelectorAll('#pools .key-label')].map(e => e.textContent)];",
            vec![],
        )
        .await;
    assert_eq!(found[0], Value::Bool(true), "a handler ran");
    assert_eq!(found[1], json!(0), "the label became markup");
    let shown = found[2].as_array().unwrap();
    for label in labels {
        assert!(
            shown.contains(&json!(label)),
            "{label} not shown as text: {shown:?}"
        );
    }
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn a_wrong_admin_key_is_refused_with_a_clear_message() {
    let app = TestApp::with_keys(1).await;
    let browser = Browser::start(1280, 900).await;
    browser.goto(&format!("{}/dashboard", app.address)).await;
    browser
        .wait_for(
            "the sign-in form",
            "!document.getElementById('login').hidden",
        )
        .await;
    browser.type_into("#admin-key", "not-the-admin-key").await;
    browser.click("#login-submit").await;
    browser
        .wait_for(
            "the refusal",
            "document.getElementById('login-message').textContent.includes('Wrong admin key')",
        )
        .await;
    assert!(exists(&browser, "#app[hidden]").await);
    let kept = browser
        .js("return sessionStorage.getItem('keygate.adminKey');", vec![])
        .await;
    assert_eq!(kept, Value::Null);

    // A key kept from earlier in the tab that keygate no longer accepts
    // (say, after a restart with another one): asked for again.
    browser
        .js(
            "sessionStorage.setItem('keygate.adminKey', 'stale-key');",
            vec![],
        )
        .await;
    browser.client.refresh().await.unwrap();
    browser
        .wait_for(
            "the question again",
            "document.getElementById('login-message').textContent.includes('no longer accepts')",
        )
        .await;
    assert!(exists(&browser, "#app[hidden]").await);
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn without_an_admin_key_configured_the_page_says_how_to_enable_it() {
    let app = TestApp::configured(1, |env| env.unset("ADMIN_API_KEY")).await;
    let browser = Browser::start(1280, 900).await;
    browser.goto(&format!("{}/dashboard", app.address)).await;
    browser
        .wait_for(
            "the explanation",
            "!document.getElementById('disabled-help').hidden",
        )
        .await;
    let help = browser.text("#disabled-help").await;
    assert!(help.contains("ADMIN_API_KEY"), "{help}");
    assert!(exists(&browser, "#login-form[hidden]").await);
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn shows_the_alerts_that_are_open() {
    let app = TestApp::with_keys(2).await;
    app.upstream.always(
        app.key(0),
        Canned::error(401, "authentication_error", "invalid x-api-key"),
    );
    let browser = signed_in(&app, 1280, 900).await;
    for _ in 0..3 {
        app.hello().await;
    }
    browser
        .wait_for(
            "the open alert",
            "document.querySelector('#alerts .alert-item')",
        )
        .await;
    let alert = browser.text("#alerts .alert-item").await;
    assert!(alert.contains("key invalid"), "{alert}");
    assert!(alert.contains("Anthropic"), "{alert}");
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn edits_a_key_then_deletes_it_after_confirming() {
    let app = TestApp::with_keys(2).await;
    let id = key_ids(&app, "anthropic").await[0].clone();
    let browser = signed_in(&app, 1280, 900).await;
    let selector = row("anthropic", &id);
    browser
        .click(&format!("{selector} button[data-action='edit']"))
        .await;
    browser
        .wait_for("the edit dialog", "document.getElementById('dialog').open")
        .await;
    browser
        .type_into("#dialog-fields input[name='label']", "renamed")
        .await;
    browser
        .type_into("#dialog-fields input[name='weight']", "7")
        .await;
    browser.click("#dialog-ok").await;
    browser
        .wait_for(
            "the new label and weight",
            &format!(
                "document.querySelector(\"{selector} .key-label\").textContent === 'renamed' && \
                 document.querySelector(\"{selector} .col-weight\").textContent === '7'"
            ),
        )
        .await;
    let key = &app.status().await["keys"][0];
    assert_eq!(
        (key["label"].as_str(), key["weight"].as_u64()),
        (Some("renamed"), Some(7))
    );

    // Cancelling a deletion keeps the key; confirming removes it.
    browser
        .click(&format!("{selector} button[data-action='delete']"))
        .await;
    browser
        .wait_for("the confirmation", "document.getElementById('dialog').open")
        .await;
    browser.click("#dialog-cancel").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(key_ids(&app, "anthropic").await.len(), 2);
    browser
        .click(&format!("{selector} button[data-action='delete']"))
        .await;
    browser
        .wait_for("the confirmation", "document.getElementById('dialog').open")
        .await;
    browser.click("#dialog-ok").await;
    browser
        .wait_for(
            "the row to go",
            &format!("document.querySelector(\"{selector}\") === null"),
        )
        .await;
    let left = key_ids(&app, "anthropic").await;
    assert_eq!(left.len(), 1);
    assert!(!left.contains(&id));
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn tests_one_key_then_all_and_shows_each_result() {
    let app = TestApp::with_keys(2).await;
    let ids = key_ids(&app, "anthropic").await;
    let browser = signed_in(&app, 1280, 900).await;
    // One key: only that key is checked, and it passes.
    browser
        .click(&format!(
            "{} button[data-action='test']",
            row("anthropic", &ids[0])
        ))
        .await;
    browser
        .wait_for(
            "the one key's result",
            "document.querySelector('#notice .toast.ok')?.textContent.includes(': ok')",
        )
        .await;
    assert_eq!(app.upstream.calls().len(), 1, "one key checked");
    assert_eq!(app.upstream.calls()[0].path, "/v1/models");

    // All keys: the second is rejected upstream, and the page says so and
    // shows it invalid.
    app.upstream.queue(
        app.key(1),
        [Canned::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        )],
    );
    browser
        .click("[data-provider='anthropic'] button[data-action='test-all']")
        .await;
    browser
        .wait_for(
            "both results",
            "(document.querySelector('#notice .toast.ok')?.textContent || '').includes('invalid (invalid x-api-key)')",
        )
        .await;
    let notice = browser.text("#notice").await;
    assert_eq!(notice.matches(": ok").count(), 1, "{notice}");
    assert_eq!(app.upstream.calls().len(), 3, "both keys checked");
    let selector = row("anthropic", &ids[1]);
    browser
        .wait_for(
            "the invalid state",
            &format!("document.querySelector(\"{selector} .badge\").textContent === 'invalid'"),
        )
        .await;
    assert_eq!(app.status().await["keys"][1]["state"], "invalid");
    assert!(
        !notice.contains(app.key(1)),
        "the key itself is never shown"
    );
    browser.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromedriver; .ci/run runs them"]
async fn resets_a_pool_after_confirming_and_every_key_is_back() {
    let app = TestApp::with_keys(2).await;
    app.upstream.always(
        app.key(0),
        Canned::error(429, "rate_limit_error", "rate limited").header("retry-after", "300"),
    );
    for _ in 0..3 {
        assert_eq!(app.hello().await.status(), 200);
    }
    let id = key_ids(&app, "anthropic").await[0].clone();
    let selector = row("anthropic", &id);
    let browser = signed_in(&app, 1280, 900).await;
    browser
        .wait_for(
            "the cooling key",
            &format!("document.querySelector(\"{selector} .badge\").textContent === 'cooling'"),
        )
        .await;
    let reset = "[data-provider='anthropic'] button[data-action='reset']";
    // Cancelled: nothing changes.
    browser.click(reset).await;
    browser
        .wait_for("the confirmation", "document.getElementById('dialog').open")
        .await;
    browser.click("#dialog-cancel").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.status().await["keys"][0]["state"], "cooling_down");
    // Confirmed: the key is back and the counters start again.
    browser.click(reset).await;
    browser
        .wait_for("the confirmation", "document.getElementById('dialog').open")
        .await;
    browser.click("#dialog-ok").await;
    browser
        .wait_for(
            "the key back in the pool",
            &format!("document.querySelector(\"{selector} .badge\").textContent === 'active'"),
        )
        .await;
    let status = app.status().await;
    assert_eq!(status["keys"][0]["state"], "active");
    assert_eq!(status["keys"][0]["requests"], 0);
    assert!(
        browser
            .text("#notice")
            .await
            .contains("Reset the anthropic pool")
    );
    browser.close().await;
}
