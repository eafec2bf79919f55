//! A headless Chromium for one test: chromedriver started on a free port,
//! a WebDriver session through `fantoccini`, a throwaway profile. Uses the
//! system's `chromium` and `chromedriver` (Debian's packages; `.ci/run`
//! installs them); nothing is downloaded. `CHROMIUM_BIN` and
//! `CHROMEDRIVER_BIN` override where they are.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

fn chromium_binary() -> PathBuf {
    if let Ok(path) = std::env::var("CHROMIUM_BIN") {
        return path.into();
    }
    // Debian's /usr/bin/chromium is a shell wrapper; the browser itself is
    // here.
    let real = PathBuf::from("/usr/lib/chromium/chromium");
    if real.exists() {
        real
    } else {
        PathBuf::from("chromium")
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A browser whose viewport is `width` × `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Self {
        let port = free_port();
        let driver_bin =
            std::env::var("CHROMEDRIVER_BIN").unwrap_or_else(|_| "chromedriver".into());
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            // Its own process group, so a failed test can stop the browser
            // with it (see Drop).
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {driver_bin}: {e} (apt-get install chromium-driver)")
            });
        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(&url).await;
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium_binary(),
                "args": [
                    "--headless=new",
                    // The tests run as root (CI), where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    "--disable-crash-reporter",
                    "--disable-breakpad",
                    "--no-first-run",
                    "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let mut capabilities = capabilities;
        // Desktop windows are at least 500 px wide; a phone is emulated
        // (viewport, touch, device pixel ratio).
        if width < 500 {
            capabilities["goog:chromeOptions"]["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2 }
            });
        }
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a WebDriver session");
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    /// Waits until the expression `condition` is truthy in the page.
    pub async fn wait_for(&self, what: &str, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let script = format!("return !!({condition});");
        loop {
            if self.client.execute(&script, vec![]).await.unwrap() == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self.text("body").await;
                panic!("timed out waiting for {what} ({condition}); the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible text of the first element matching `selector`.
    pub async fn text(&self, selector: &str) -> String {
        match self.client.find(Locator::Css(selector)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn type_into(&self, selector: &str, text: &str) {
        let element = self.client.find(Locator::Css(selector)).await.unwrap();
        element.clear().await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, selector: &str) {
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no {selector}: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test never reaches close(): stop chromedriver and the
        // browser it started, all of its process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

async fn wait_for_driver(url: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = client.get(format!("{url}/status")).send().await {
            let body: Value = response.json().await.unwrap_or_default();
            if body["value"]["ready"] == Value::Bool(true) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
