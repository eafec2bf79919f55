//! keygate's own share of a search answer: the median time of a search
//! through keygate minus the median time of the same search made directly
//! against the fake provider. A measurement, not a timed test: it prints
//! and asserts nothing about time. Run it with
//! `cargo test --release --test api search_overhead -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use crate::fake_search::SERPAPI;
use crate::search::SearchApp;

const ROUNDS: usize = 2000;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement that prints; run it on purpose"]
async fn search_overhead() {
    let s = SearchApp::start(4, 0, 0).await;
    let client = reqwest::Client::new();
    let direct_url = format!(
        "{}{SERPAPI}?engine=google&q=overhead&num=10&start=0&api_key={}",
        s.fake.url, s.serp[0]
    );
    let through = s
        .app
        .get("/api/search?q=overhead&provider=serpapi")
        .build()
        .unwrap();
    let through_url = through.url().clone();
    // Warm both paths (connections, caches).
    for _ in 0..200 {
        client
            .get(&direct_url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        client
            .get(through_url.clone())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let mut direct = Vec::with_capacity(ROUNDS);
    let mut gateway = Vec::with_capacity(ROUNDS);
    // Interleaved, so drift on a shared machine hits both alike.
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let answer = client.get(&direct_url).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        answer.bytes().await.unwrap();
        direct.push(started.elapsed());

        let started = Instant::now();
        let answer = client.get(through_url.clone()).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        answer.bytes().await.unwrap();
        gateway.push(started.elapsed());
    }
    let (direct, gateway) = (median(direct), median(gateway));
    println!(
        "search median: direct {:.1} µs, through keygate {:.1} µs, keygate's share {:.1} µs \
         ({ROUNDS} interleaved rounds)",
        direct.as_secs_f64() * 1e6,
        gateway.as_secs_f64() * 1e6,
        gateway.saturating_sub(direct).as_secs_f64() * 1e6,
    );
}
