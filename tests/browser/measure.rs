//! The figures the README gives for the dashboard, measured and printed (not
//! asserted: timings depend on the machine): with 100 keys and 30 days of
//! generated ledger history, how long the page takes to be usable, how long
//! a 30-day range takes to draw, and what one live refresh costs keygate.
//!
//! `cargo test --release --test browser -- --ignored --nocapture measure`

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::driver::Browser;
use crate::helpers::{ADMIN_KEY, TestApp};
use crate::page::key_ids;
use crate::scene::{history, record};

const KEYS: usize = 100;
const DAYS: i64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver; prints figures for the README"]
async fn measure_page_load_and_refresh_cost() {
    let app = TestApp::configured(KEYS, |env| env.set("USAGE_QUEUE_CAPACITY", "10000")).await;
    let ids = key_ids(&app, "anthropic").await;
    // Live state: every key has served, so each row has latency and headroom.
    for _ in 0..2 * KEYS {
        app.hello().await;
    }
    let rows = history(&ids, DAYS * 24, 3.0);
    let generated = rows.len();
    let started = Instant::now();
    record(&app, rows).await;
    println!(
        "ledger: {generated} generated requests over {DAYS} days for {KEYS} keys, stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    refresh_cost(&app).await;
    usage_query_cost(&app).await;
    page_load(&app).await;
}

/// The requests the page makes every few seconds, timed from a client on
/// the same machine (an upper bound of keygate's own time).
async fn refresh_cost(app: &TestApp) {
    let paths = [
        "/api/keypool/stats",
        "/api/keypool/anthropic/status",
        "/api/alerts",
    ];
    let mut times = Vec::new();
    let mut bytes = 0;
    for round in 0..220 {
        let started = Instant::now();
        for path in paths {
            let response = app
                .client
                .get(format!("{}{path}", app.address))
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .unwrap();
            let body = response.bytes().await.unwrap();
            if round == 0 {
                bytes += body.len();
            }
        }
        // The first rounds warm up connections and caches.
        if round >= 20 {
            times.push(started.elapsed());
        }
    }
    let cpu_before = process_cpu();
    let rounds_for_cpu = 200;
    for _ in 0..rounds_for_cpu {
        for path in paths {
            let response = app
                .client
                .get(format!("{}{path}", app.address))
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .unwrap();
            response.bytes().await.unwrap();
        }
    }
    let cpu = (process_cpu() - cpu_before) / rounds_for_cpu;
    times.sort();
    println!(
        "live refresh ({} requests, {bytes} bytes with {KEYS} keys): median {:.2} ms, p95 {:.2} ms \
         wall time; {:.2} ms of CPU per refresh (keygate and this test's client together)",
        paths.len(),
        ms(times[times.len() / 2]),
        ms(times[times.len() * 95 / 100]),
        ms(cpu),
    );
}

/// The usage queries the page makes for each range.
async fn usage_query_cost(app: &TestApp) {
    for (range, bucket) in [("24h", "hour"), ("7d", "day"), ("30d", "day")] {
        let queries = [
            format!("/api/usage?from={range}&group_by=key,{bucket}"),
            format!("/api/usage?from={range}&group_by=model,{bucket}"),
            format!("/api/usage?from={range}&group_by=provider"),
        ];
        let started = Instant::now();
        let mut groups = 0;
        for query in &queries {
            let body: Value = app.admin_get(query).await;
            groups += body["groups"].as_array().unwrap().len();
        }
        println!(
            "usage for {range}: 3 queries, {groups} groups, {:.1} ms",
            ms(started.elapsed())
        );
    }
}

/// Time from navigation to the first full picture (pools, alerts, charts,
/// totals), with the admin key already in the tab, then the 30-day range.
async fn page_load(app: &TestApp) {
    let browser = Browser::start(1280, 900).await;
    let url = format!("{}/dashboard", app.address);
    browser.goto(&url).await;
    browser
        .js(
            "sessionStorage.setItem('keygate.adminKey', arguments[0]);",
            vec![json!(ADMIN_KEY)],
        )
        .await;
    let mut loads = Vec::new();
    let mut lives = Vec::new();
    for _ in 0..5 {
        browser.goto(&url).await;
        browser
            .wait_for("the first full picture", "document.body.dataset.ready")
            .await;
        let ready = browser
            .js(
                "return [Number(document.body.dataset.liveReady), Number(document.body.dataset.ready)];",
                vec![],
            )
            .await;
        lives.push(ready[0].as_f64().unwrap());
        loads.push(ready[1].as_f64().unwrap());
    }
    let rows = browser
        .js(
            "return document.querySelectorAll('#pools tbody tr').length;",
            vec![],
        )
        .await;
    let mut ranges = Vec::new();
    for _ in 0..3 {
        browser
            .js(
                "const r = document.getElementById('range');
                 r.value = r.value === '30d' ? '24h' : '30d';
                 r.dispatchEvent(new Event('change'));
                 document.body.dataset.usageLoads = '0';",
                vec![],
            )
            .await;
        browser
            .wait_for(
                "the range redrawn",
                "document.body.dataset.usageLoads === '1'",
            )
            .await;
        let value = browser.js("return [document.getElementById('range').value, Number(document.body.dataset.usageMs)];", vec![]).await;
        if value[0] == json!("30d") {
            ranges.push(value[1].as_f64().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loads.sort_by(f64::total_cmp);
    lives.sort_by(f64::total_cmp);
    println!(
        "page load ({rows} key rows): navigation to pools and overview drawn in {:.0} ms median \
         (runs: {lives:?}); to everything incl. 24 h charts and totals in {:.0} ms median (runs: {loads:?})",
        lives[lives.len() / 2],
        loads[loads.len() / 2]
    );
    println!("switching to 30 days (fetch and draw): {ranges:?} ms");
    browser.close().await;
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// User plus system CPU time of this process (keygate runs in it).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15 of stat(5), in clock ticks (100 Hz).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}
