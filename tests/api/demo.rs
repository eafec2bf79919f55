//! `keygate demo` in-process: its simulated pool shows every state within
//! seconds: the rejected key turns invalid, the rate-limiting key cools
//! down, traffic succeeds through the healthy keys, and a temporary data
//! directory is gone after it stops.

use std::time::Duration;

use keygate::demo::{self, DemoOptions, Pace};
use serde_json::Value;

async fn status(client: &reqwest::Client, base: &str, admin: &str, provider: &str) -> Value {
    client
        .get(format!("{base}/api/keypool/{provider}/status"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn state_of<'a>(status: &'a Value, suffix: &str) -> &'a str {
    status["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["masked"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no key ending {suffix}: {status}"))["state"]
        .as_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_rotation_cooldowns_and_a_rejected_key_without_a_real_key() {
    let demo = demo::start(DemoOptions {
        host: "127.0.0.1".into(),
        port: 0,
        data: None,
        pace: Pace {
            every: 5..30,
            in_flight: 8,
        },
    })
    .await
    .unwrap();
    let base = format!("http://{}", demo.address);
    let admin = demo.admin_key.clone();
    let data_dir = demo.data_dir.clone();
    assert!(data_dir.join("keygate.db").exists());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(demo.serve(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let mut seen_cooling = false;
    loop {
        let anthropic = status(&client, &base, &admin, "anthropic").await;
        seen_cooling |= state_of(&anthropic, "RATE") == "cooling_down";
        let served = anthropic["stats"]["successful_requests"].as_u64().unwrap();
        if seen_cooling && state_of(&anthropic, "DEAD") == "invalid" && served >= 10 {
            assert_eq!(state_of(&anthropic, "HLT1"), "active");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo did not show its states in time: {anthropic}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let openai = status(&client, &base, &admin, "openai").await;
    assert!(
        openai["stats"]["total_requests"].as_u64().unwrap() > 0,
        "{openai}"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert!(
        !data_dir.exists(),
        "the temporary data directory is removed"
    );
}
