//! keygate's own share of a search answer: the median time of a search
//! through keygate minus the median time of the same search made directly
//! against the fake SerpApi. A measurement, not a timed test: it prints and
//! asserts nothing about time. Its own test binary, so no test's log
//! capture slows keygate down. Run it with
//! `cargo test --release --test search_overhead -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/fake_search.rs"]
#[allow(dead_code)]
mod fake_search;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use keygate::config::Config;
use keygate::startup::Application;

use fake_search::{FakeSearch, SERPAPI};

const ROUNDS: usize = 2000;
const KEY: &str = "serpmeasure9f3c1ab79f3c1ab79f3c1ab79f3c1ab79f3c1ab7";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement that prints; run it on purpose"]
async fn search_overhead() {
    let fake = FakeSearch::start().await;
    let data = tempfile::tempdir().unwrap();
    let vars: HashMap<&str, String> = HashMap::from([
        ("PORT", "0".to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/keygate.db", data.path().display()),
        ),
        (
            "ENCRYPTION_KEY",
            "4f1c2a9be07d3856c1aa0e9f7b62d4e8a3c5f0917d2e6b8a4c1f3e5d7b9a0c2e".to_string(),
        ),
        ("SERPAPI_KEY", KEY.to_string()),
        ("SERPAPI_BASE_URL", fake.url.clone()),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let app = Application::build(config).await.unwrap();
    let address = format!("http://{}", app.local_addr());
    tokio::spawn(async move {
        let _ = app.run_until_stopped(std::future::pending::<()>()).await;
    });

    let client = reqwest::Client::new();
    let direct = format!(
        "{}{SERPAPI}?engine=google&q=overhead&num=10&start=0&api_key={KEY}",
        fake.url
    );
    let through = format!("{address}/api/search?q=overhead&provider=serpapi");
    let time = |url: String| {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let answer = client.get(url).send().await.unwrap();
            assert_eq!(answer.status(), 200);
            answer.bytes().await.unwrap();
            started.elapsed()
        }
    };
    for _ in 0..200 {
        time(direct.clone()).await;
        time(through.clone()).await;
    }
    let (mut alone, mut via) = (Vec::new(), Vec::new());
    // Interleaved, so drift on a shared machine hits both alike.
    for _ in 0..ROUNDS {
        alone.push(time(direct.clone()).await);
        via.push(time(through.clone()).await);
    }
    let (alone, via) = (median(alone), median(via));
    println!(
        "search median over {ROUNDS} interleaved rounds: direct {:.1} µs, through keygate \
         {:.1} µs, keygate's share {:.1} µs",
        alone.as_secs_f64() * 1e6,
        via.as_secs_f64() * 1e6,
        via.saturating_sub(alone).as_secs_f64() * 1e6,
    );
}
