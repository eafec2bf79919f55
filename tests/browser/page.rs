//! The dashboard as a test sees it: opening it, signing in, finding a key's
//! row.

use serde_json::Value;

use crate::driver::Browser;
use crate::helpers::{ADMIN_KEY, TestApp};

/// Opens the dashboard and signs in with the admin key; returns once the
/// first full picture is drawn.
pub async fn signed_in(app: &TestApp, width: u32, height: u32) -> Browser {
    let browser = Browser::start(width, height).await;
    browser.goto(&format!("{}/dashboard", app.address)).await;
    browser
        .wait_for(
            "the sign-in form",
            "!document.getElementById('login').hidden",
        )
        .await;
    browser.type_into("#admin-key", ADMIN_KEY).await;
    browser.click("#login-submit").await;
    browser
        .wait_for("the first full picture", "document.body.dataset.ready")
        .await;
    browser
}

/// The CSS selector of the row of the key with this id.
pub fn row(provider: &str, id: &str) -> String {
    format!("#pools tr[data-provider='{provider}'][data-key-id='{id}']")
}

/// The ids of a provider's keys, as the admin API lists them.
pub async fn key_ids(app: &TestApp, provider: &str) -> Vec<String> {
    let status = app
        .admin_get(&format!("/api/keypool/{provider}/status"))
        .await;
    status["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect()
}

/// Whether `selector` matches anything.
pub async fn exists(browser: &Browser, selector: &str) -> bool {
    browser
        .js(
            "return document.querySelector(arguments[0]) !== null;",
            vec![Value::String(selector.into())],
        )
        .await
        == Value::Bool(true)
}
