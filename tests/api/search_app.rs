//! `SearchApp`: keygate with planted search keys in front of one fake
//! search server (`fake_search`), and what the search tests read back:
//! key status, ledger rows, metrics, and every place a key could leak to.

use std::time::Duration;

use serde_json::Value;

use crate::fake_search::FakeSearch;
use crate::helpers::{TestApp, TestEnv, captured_logs};

pub fn serp_key(tag: &str) -> String {
    format!("serp{tag}{}", "9f3c1ab7".repeat(7))
}

pub fn google_key(tag: &str) -> String {
    format!("AIzaSy{tag}{}", "Qm7Rt2Kx".repeat(4))
}

pub fn brave_key(tag: &str) -> String {
    format!("BSA{tag}{}", "Lp4Wd8Zn".repeat(3))
}

/// keygate with `serp`, `google` and `brave` planted search keys in front
/// of one fake search server (and no chat keys).
pub struct SearchApp {
    pub app: TestApp,
    pub fake: FakeSearch,
    pub serp: Vec<String>,
    pub google: Vec<String>,
    pub brave: Vec<String>,
}

impl SearchApp {
    pub async fn start(serp: usize, google: usize, brave: usize) -> Self {
        Self::configured(serp, google, brave, |env| env).await
    }

    pub async fn configured(
        serp: usize,
        google: usize,
        brave: usize,
        adjust: impl FnOnce(TestEnv) -> TestEnv,
    ) -> Self {
        let fake = FakeSearch::start().await;
        let serp: Vec<String> = (0..serp).map(|i| serp_key(&format!("s{i}"))).collect();
        let google: Vec<String> = (0..google).map(|i| google_key(&format!("g{i}"))).collect();
        let brave: Vec<String> = (0..brave).map(|i| brave_key(&format!("b{i}"))).collect();
        let url = fake.url.clone();
        let lists = (
            serde_json::to_string(&serp).unwrap(),
            serde_json::to_string(&google).unwrap(),
            serde_json::to_string(&brave).unwrap(),
        );
        let app = TestApp::configured(0, move |env| {
            adjust(
                env.set("SERPAPI_KEYS", &lists.0)
                    .set("GOOGLE_CSE_KEYS", &lists.1)
                    .set("BRAVE_SEARCH_KEYS", &lists.2)
                    .set("GOOGLE_CSE_CX", "0123456789abcdef0")
                    .set("SERPAPI_BASE_URL", &url)
                    .set("GOOGLE_CSE_BASE_URL", &url)
                    .set("BRAVE_SEARCH_BASE_URL", &url)
                    .set("USAGE_FLUSH_SECS", "0.05"),
            )
        })
        .await;
        Self {
            app,
            fake,
            serp,
            google,
            brave,
        }
    }

    pub async fn search(&self, body: Value) -> (u16, Option<String>, Value) {
        let response = self
            .app
            .post("/api/search")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        (status, retry_after, serde_json::from_str(&text).unwrap())
    }

    pub async fn status(&self, provider: &str) -> Value {
        self.app
            .admin_get(&format!("/api/keypool/{provider}/status"))
            .await
    }

    /// The status entry of `key` (by its last four characters).
    pub async fn key(&self, provider: &str, key: &str) -> Value {
        let status = self.status(provider).await;
        let tail = &key[key.len() - 4..];
        status["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| {
                k["masked"].as_str().unwrap().ends_with(tail)
                    && self.index_of(provider, key) == self.index_in(&status, k)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no status for key in {status:#}"))
    }

    fn index_of(&self, provider: &str, key: &str) -> usize {
        let keys = match provider {
            "serpapi" => &self.serp,
            "google_cse" => &self.google,
            _ => &self.brave,
        };
        keys.iter().position(|k| k == key).unwrap()
    }

    fn index_in(&self, status: &Value, key: &Value) -> usize {
        status["keys"]
            .as_array()
            .unwrap()
            .iter()
            .position(|k| k == key)
            .unwrap()
    }

    /// The ledger's rows of the last hour, once there are `count`.
    pub async fn rows(&self, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let page = self
                .app
                .admin_get("/api/usage/requests?limit=500&from=1h")
                .await;
            let rows = page["requests"].as_array().cloned().unwrap_or_default();
            if rows.len() >= count {
                assert_eq!(rows.len(), count, "{rows:#?}");
                return rows;
            }
            assert!(tokio::time::Instant::now() < deadline, "rows: {rows:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        crate::metrics::scrape(&self.app).await
    }

    /// Every place a key could leak to, as one text: logs, the admin
    /// answers, metrics, the ledger's rows and the database file.
    pub async fn everything_shown(&self, answers: &str) -> String {
        let mut seen = answers.to_string();
        seen.push_str(&captured_logs());
        for provider in ["serpapi", "google_cse", "brave"] {
            seen.push_str(&self.status(provider).await.to_string());
        }
        seen.push_str(&self.app.admin_get("/api/keypool/stats").await.to_string());
        seen.push_str(&self.metrics().await);
        seen.push_str(
            &self
                .app
                .admin_get("/api/usage/requests?limit=500&from=1h")
                .await
                .to_string(),
        );
        for entry in std::fs::read_dir(self.app.data_dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            seen.push_str(&String::from_utf8_lossy(&bytes));
        }
        seen
    }
}

/// The middle of a key: what must never show (a masked label shows the
/// last four characters only).
pub fn core(key: &str) -> &str {
    &key[4..key.len() - 4]
}
