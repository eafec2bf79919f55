//! The dashboard in a real browser: headless Chromium driven over WebDriver
//! (`driver`), against keygate started in-process on port 0 with a fake
//! upstream (the `TestApp` of `tests/api`). These tests need `chromium` and
//! `chromedriver` installed, so they are ignored by a plain `cargo test`;
//! `.ci/run` installs both and runs `cargo test --test browser -- --ignored`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;

mod dashboard;
mod driver;
mod measure;
mod page;
mod scene;
mod screenshots;
