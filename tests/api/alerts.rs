//! Alerts end to end: keygate driven into each condition by a fake upstream,
//! its messages caught by a webhook receiver and an SMTP sink. Each
//! condition is announced once per dedup window and closed by a recovery
//! message; a dead channel never slows or fails a request; no message
//! carries key material or a channel's secret.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::alert_sinks::{
    Mail, SilentWebhook, SmtpSink, WEBHOOK_TOKEN, WebhookReceiver, dead_url, wait_until,
};
use crate::helpers::{ADMIN_KEY, Canned, TestApp, TestEnv, captured_logs};

/// Watching every 50 ms, retrying fast, giving up on an attempt after 1 s.
fn alerting(env: TestEnv, webhooks: &[&str], smtp: Option<&SmtpSink>) -> TestEnv {
    let env = env
        .set("ALERT_CHECK_SECS", "0.05")
        .set("ALERT_TIMEOUT_SECS", "1")
        .set("ALERT_RETRY_DELAY_SECS", "0.05")
        .set("ALERT_WEBHOOK_URLS", &json!(webhooks).to_string());
    match smtp {
        Some(sink) => env
            .set("SMTP_URL", &format!("smtp://127.0.0.1:{}", sink.port))
            .set("ALERT_EMAIL_FROM", "keygate <keygate@example.com>")
            .set(
                "ALERT_EMAIL_TO",
                r#"["ops@example.com", "oncall@example.com"]"#,
            ),
        None => env,
    }
}

async fn open_alerts(app: &TestApp) -> Value {
    app.admin_get("/api/alerts").await
}

/// Polls `GET /api/alerts` until `done` holds for its body.
async fn wait_for_alerts(app: &TestApp, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + crate::alert_sinks::DEADLINE;
    loop {
        let body = open_alerts(app).await;
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `GET /api/alerts` until `done` holds for its `open` list.
async fn wait_for_open(app: &TestApp, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let body = wait_for_alerts(app, what, |body| {
        done(
            body["open"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
    })
    .await;
    body["open"].as_array().cloned().unwrap_or_default()
}

/// Polls until the delivery counters are `expected`.
async fn wait_for_deliveries(app: &TestApp, expected: Value) {
    wait_for_alerts(app, &format!("deliveries {expected}"), |body| {
        body["deliveries"] == expected
    })
    .await;
}

/// No run of 8 characters of any planted key's secret middle (past its
/// `sk-ant-api03-` prefix, before the last four a masked form shows) is in
/// `text`, and neither is the webhook URL's token.
fn assert_clean(app: &TestApp, text: &str) {
    for key in &app.keys {
        let middle = &key[13..key.len() - 4];
        for start in 0..=middle.len() - 8 {
            let piece = &middle[start..start + 8];
            assert!(!text.contains(piece), "key material {piece:?} in {text}");
        }
    }
    assert!(!text.contains(WEBHOOK_TOKEN), "webhook token in {text}");
}

fn assert_all_clean(app: &TestApp, hook: &WebhookReceiver, mails: &[Mail]) {
    for body in hook.bodies() {
        assert_clean(app, &body.to_string());
    }
    for mail in mails {
        assert_clean(app, &mail.data);
        assert_clean(app, &mail.body());
    }
}

#[tokio::test]
async fn every_key_unavailable_is_announced_once_per_window_and_closed_by_its_recovery() {
    let hook = WebhookReceiver::start().await;
    let smtp = SmtpSink::start().await;
    let app = TestApp::configured(2, |env| {
        alerting(env, &[&hook.url], Some(&smtp))
            .set("KEY_COOLDOWN_SECS", "1")
            .set("KEY_COOLDOWN_MAX_SECS", "2")
    })
    .await;
    let slow_down =
        || [Canned::error(429, "rate_limit_error", "slow down").header("retry-after", "1")];
    for i in 0..2 {
        app.upstream.queue(app.key(i), slow_down());
    }
    assert_eq!(app.hello().await.status(), 429);

    const ALERT: &str = "ALERT: every anthropic key is unavailable";
    const RECOVERED: &str = "RECOVERED: anthropic has keys available again";
    let alert = wait_until("the alert", || hook.texts_with(ALERT), |t| t.len() == 1).await;
    assert!(
        alert[0].contains("none of its 2 keys can serve: 2 cooling down"),
        "{}",
        alert[0]
    );
    assert!(alert[0].contains("Expected back at"), "{}", alert[0]);

    // The keys come back after their second: the recovery closes it.
    wait_until(
        "the recovery",
        || hook.texts_with(RECOVERED),
        |t| t.len() == 1,
    )
    .await;
    wait_for_open(&app, "nothing open", <[Value]>::is_empty).await;

    // It happens again inside the window: seen, held back, no message.
    for i in 0..2 {
        app.upstream.queue(app.key(i), slow_down());
    }
    assert_eq!(app.hello().await.status(), 429);
    let open = wait_for_open(&app, "the condition again", |open| !open.is_empty()).await;
    assert_eq!(open[0]["event"], "all_keys_unavailable");
    assert_eq!(open[0]["announced"], false, "{open:?}");
    wait_for_open(&app, "the keys back", <[Value]>::is_empty).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.texts_with(ALERT).len(), 1, "{:?}", hook.bodies());
    assert_eq!(hook.texts_with(RECOVERED).len(), 1, "{:?}", hook.bodies());

    // The same two messages by e-mail, to both recipients.
    wait_until("two e-mails", || smtp.mails(), |m| m.len() >= 2).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("[keygate] ALERT: every anthropic key is unavailable")
    );
    assert_eq!(
        mails[1].header("Subject").as_deref(),
        Some("[keygate] RECOVERED: anthropic has keys available again")
    );
    assert_eq!(mails[0].from, "<keygate@example.com>");
    assert_eq!(mails[0].to, ["<ops@example.com>", "<oncall@example.com>"]);
    let body = mails[0].body();
    assert!(body.contains("event: all_keys_unavailable"), "{body}");
    assert!(body.contains("provider: anthropic"), "{body}");
    assert_all_clean(&app, &hook, &mails);
    wait_for_deliveries(&app, json!({"sent": 4, "failed": 0, "dropped": 0})).await;
}

#[tokio::test]
async fn an_invalid_key_is_named_by_id_once_in_the_json_format_and_its_revival_closes_it() {
    let hook = WebhookReceiver::start().await;
    let smtp = SmtpSink::start().await;
    let app = TestApp::configured(2, |env| {
        alerting(env, &[&hook.url], Some(&smtp)).set("ALERT_WEBHOOK_FORMAT", "json")
    })
    .await;
    let rejected = || {
        [Canned::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        )]
    };
    app.upstream.queue(app.key(0), rejected());
    assert_eq!(app.hello().await.status(), 200);
    let key = app.key_status(0).await;
    assert_eq!(key["state"], "invalid");
    let id = key["id"].as_str().unwrap().to_string();

    let alerts = wait_until("the alert", || hook.events("key_invalid"), |a| a.len() == 1).await;
    let alert = &alerts[0];
    assert_eq!(alert["provider"], "anthropic");
    assert_eq!(alert["key_id"], id.as_str());
    assert_eq!(alert["key"], key["masked"]);
    assert_eq!(alert["condition"], "key_invalid");
    let reason = alert["reason"].as_str().unwrap();
    assert!(reason.starts_with("invalid x-api-key"), "{reason}");
    let since = alert["since"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(since).is_ok(), "{since}");
    assert!(
        alert["until"].is_null(),
        "an invalid key does not come back by itself"
    );

    // Still invalid, more requests: no second message.
    for _ in 0..4 {
        assert_eq!(app.hello().await.status(), 200);
    }
    let open = open_alerts(&app).await;
    assert_eq!(open["open"][0]["key_id"], id.as_str(), "{open}");
    assert_eq!(open["open"][0]["announced"], true, "{open}");
    assert_eq!(open["channels"].as_array().unwrap().len(), 2, "{open}");

    // A check brings it back: the recovery message closes the condition.
    let checked = app
        .post(&format!("/api/keypool/anthropic/test?key={id}"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    let recovered = wait_until(
        "the recovery",
        || hook.events("recovered"),
        |r| r.len() == 1,
    )
    .await;
    assert_eq!(recovered[0]["condition"], "key_invalid");
    assert_eq!(recovered[0]["key_id"], id.as_str());
    assert_eq!(recovered[0]["since"], alert["since"]);
    assert!(recovered[0]["until"].is_string());

    // Rejected again inside the window: open, held back, no message.
    app.upstream.queue(app.key(0), rejected());
    for _ in 0..2 {
        assert_eq!(app.hello().await.status(), 200);
    }
    let open = wait_for_open(&app, "the key invalid again", |open| !open.is_empty()).await;
    assert_eq!(open[0]["announced"], false, "{open:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.events("key_invalid").len(), 1, "{:?}", hook.bodies());

    let mails = wait_until("two e-mails", || smtp.mails(), |m| m.len() >= 2).await;
    assert_eq!(
        mails[0].header("Subject").unwrap(),
        format!("[keygate] ALERT: anthropic key {id} is invalid")
    );
    assert!(mails[0].body().contains(key["masked"].as_str().unwrap()));
    assert_all_clean(&app, &hook, &smtp.mails());
}

#[tokio::test]
async fn a_key_ejected_a_second_time_is_announced_and_its_passing_probe_closes_it() {
    let hook = WebhookReceiver::start().await;
    let app = TestApp::configured(3, |env| {
        alerting(env, &[&hook.url], None)
            .set("ALERT_WEBHOOK_FORMAT", "json")
            .set("OUTLIER_EJECTION_SECS", "0.3")
    })
    .await;
    // Five faults eject it; the sixth fails its probe: ejected again. Then
    // it answers normally.
    app.upstream.queue(
        app.key(0),
        (0..6).map(|_| Canned::error(500, "api_error", "internal server error")),
    );
    let app = &app;
    let calls_on_key_0 = |n: usize| async move {
        let deadline = Instant::now() + crate::alert_sinks::DEADLINE;
        while app.upstream.calls_with(app.key(0)) < n {
            assert_eq!(app.hello().await.status(), 200);
            assert!(Instant::now() < deadline, "key 0 never got call {n}");
        }
    };
    calls_on_key_0(5).await;
    assert_eq!(app.key_status(0).await["ejections"], 1);
    // One ejection is not an alert.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(hook.bodies().is_empty(), "{:?}", hook.bodies());

    tokio::time::sleep(Duration::from_millis(200)).await;
    calls_on_key_0(6).await;
    let key = app.key_status(0).await;
    assert_eq!(key["ejections"], 2, "{key}");
    let alerts = wait_until(
        "the alert",
        || hook.events("key_ejected_repeatedly"),
        |a| a.len() == 1,
    )
    .await;
    assert_eq!(alerts[0]["key_id"], key["id"]);
    assert!(
        alerts[0]["reason"]
            .as_str()
            .unwrap()
            .contains("ejected 2 times"),
        "{}",
        alerts[0]
    );
    assert!(alerts[0]["until"].is_string(), "{}", alerts[0]);

    // Its rest over, its probe passes: back in rotation, recovered.
    tokio::time::sleep(Duration::from_millis(650)).await;
    calls_on_key_0(7).await;
    let recovered = wait_until(
        "the recovery",
        || hook.events("recovered"),
        |r| r.len() == 1,
    )
    .await;
    assert_eq!(recovered[0]["condition"], "key_ejected_repeatedly");
    assert_eq!(hook.events("key_ejected_repeatedly").len(), 1);
    assert_all_clean(app, &hook, &[]);
}

#[tokio::test]
async fn an_overloaded_provider_is_announced_and_recovers_when_keys_succeed_again() {
    let hook = WebhookReceiver::start().await;
    let app = TestApp::configured(3, |env| {
        alerting(env, &[&hook.url], None).set("ALERT_WEBHOOK_FORMAT", "json")
    })
    .await;
    for i in 0..3 {
        app.upstream.queue(
            app.key(i),
            [Canned::error(529, "overloaded_error", "Overloaded")],
        );
    }
    assert_eq!(app.hello().await.status(), 503);
    let alerts = wait_until(
        "the alert",
        || hook.events("provider_overloaded"),
        |a| a.len() == 1,
    )
    .await;
    assert_eq!(alerts[0]["provider"], "anthropic");
    assert!(alerts[0]["key_id"].is_null());
    assert!(
        alerts[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("3 of 3 usable keys met upstream errors"),
        "{}",
        alerts[0]
    );
    for _ in 0..3 {
        assert_eq!(app.hello().await.status(), 200);
    }
    let recovered = wait_until(
        "the recovery",
        || hook.events("recovered"),
        |r| r.len() == 1,
    )
    .await;
    assert_eq!(recovered[0]["condition"], "provider_overloaded");
    assert_eq!(hook.events("provider_overloaded").len(), 1);
}

#[tokio::test]
async fn dead_webhooks_neither_slow_nor_fail_requests_and_their_failures_are_counted() {
    let hook = WebhookReceiver::start().await;
    let silent = SilentWebhook::start().await;
    let dead = dead_url().await;
    let app = TestApp::configured(2, |env| {
        alerting(env, &[&silent.url, &dead, &hook.url], None).set("ALERT_RETRIES", "1")
    })
    .await;
    app.upstream.queue(
        app.key(0),
        [Canned::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        )],
    );
    assert_eq!(app.hello().await.status(), 200);
    // The good webhook gets its message while the others hang or refuse.
    wait_until("the good webhook", || hook.bodies(), |b| !b.is_empty()).await;
    let started = Instant::now();
    for _ in 0..30 {
        let sent = Instant::now();
        assert_eq!(app.hello().await.status(), 200);
        let took = sent.elapsed();
        assert!(took < Duration::from_millis(500), "a request took {took:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "30 requests took {:?}",
        started.elapsed()
    );
    // The silent one: two attempts of 1 s each; the dead one refuses.
    wait_for_deliveries(&app, json!({"sent": 1, "failed": 2, "dropped": 0})).await;
    assert_eq!(silent.connections(), 2, "one attempt and one retry");
    let metrics = crate::metrics::scrape(&app).await;
    for line in [
        "keygate_alerts_sent_total 1",
        "keygate_alerts_failed_total 2",
        "keygate_alerts_dropped_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    let logs = captured_logs();
    assert!(
        logs.contains("alert not delivered"),
        "the failure is logged"
    );
    assert!(!logs.contains(WEBHOOK_TOKEN), "a webhook URL was logged");
}

#[tokio::test]
async fn alerts_beyond_a_full_queue_are_dropped_and_counted() {
    let silent = SilentWebhook::start().await;
    let app = TestApp::configured(2, |env| {
        alerting(env, &[&silent.url], None)
            .set("ALERT_QUEUE_SIZE", "1")
            .set("ALERT_RETRIES", "0")
            .set("ALERT_TIMEOUT_SECS", "0.5")
    })
    .await;
    // Three alerts (two keys invalid, then none left) while the only
    // channel hangs on the first: one waits in the queue, the rest drop.
    for i in 0..2 {
        app.upstream.queue(
            app.key(i),
            [Canned::error(
                401,
                "authentication_error",
                "invalid x-api-key",
            )],
        );
    }
    assert_eq!(app.hello().await.status(), 503);
    let body = wait_for_alerts(&app, "every alert failed or dropped", |body| {
        let d = &body["deliveries"];
        d["failed"].as_u64().unwrap() + d["dropped"].as_u64().unwrap() == 3
    })
    .await;
    assert!(
        body["deliveries"]["dropped"].as_u64().unwrap() >= 1,
        "{body}"
    );
    assert_eq!(body["deliveries"]["sent"], 0, "{body}");
    assert_eq!(body["open"].as_array().unwrap().len(), 3, "{body}");
}

#[tokio::test]
async fn the_test_route_reports_each_channel_without_secrets() {
    let hook = WebhookReceiver::start().await;
    let silent = SilentWebhook::start().await;
    let smtp = SmtpSink::start().await;
    let app = TestApp::configured(1, |env| {
        alerting(env, &[&hook.url, &silent.url], Some(&smtp)).set(
            "SMTP_URL",
            &format!("smtp://alice:s3cret-PASS@127.0.0.1:{}", smtp.port),
        )
    })
    .await;
    let started = Instant::now();
    let response = app
        .post("/api/alerts/test")
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "one bounded attempt each"
    );
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(WEBHOOK_TOKEN) && !text.contains("s3cret-PASS"),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["ok"], false, "{body}");
    let results = body["channels"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{body}");
    let webhook_origin = hook.url.split("/services").next().unwrap();
    assert_eq!(
        results[0]["channel"],
        format!("webhook 1 ({webhook_origin})")
    );
    assert_eq!(results[0]["ok"], true, "{body}");
    assert!(results[0].get("error").is_none());
    assert_eq!(results[1]["ok"], false, "{body}");
    assert!(
        results[1]["error"].as_str().unwrap().contains("timed out")
            || results[1]["error"].as_str().unwrap().contains("no answer"),
        "{body}"
    );
    assert_eq!(
        results[2]["channel"],
        format!("email (smtp://127.0.0.1:{})", smtp.port)
    );
    assert_eq!(results[2]["ok"], true, "{body}");

    assert!(
        hook.bodies()[0]["text"]
            .as_str()
            .unwrap()
            .contains("test message")
    );
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("[keygate] test message")
    );
    assert!(
        smtp.lines()
            .iter()
            .any(|l| l.to_ascii_uppercase().starts_with("AUTH")),
        "the credentials were presented: {:?}",
        smtp.lines()
    );
    // Tests are not deliveries.
    assert_eq!(open_alerts(&app).await["deliveries"]["sent"], 0);
    assert!(!captured_logs().contains("s3cret-PASS"));
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_reported_without_its_password() {
    let closed = dead_url().await;
    let port = closed
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let app = TestApp::configured(1, |env| {
        env.set("ALERT_TIMEOUT_SECS", "1")
            .set(
                "SMTP_URL",
                &format!("smtp://bob:hunter2-PASS@127.0.0.1:{port}"),
            )
            .set("ALERT_EMAIL_FROM", "keygate@example.com")
            .set("ALERT_EMAIL_TO", "ops@example.com")
    })
    .await;
    let response = app
        .post("/api/alerts/test")
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["channels"][0]["ok"], false, "{body}");
    assert!(body["channels"][0]["error"].is_string(), "{body}");
    assert!(!captured_logs().contains("hunter2"));
}

#[tokio::test]
async fn without_channels_the_test_route_says_how_to_configure_them() {
    let app = TestApp::with_keys(1).await;
    let response = app
        .post("/api/alerts/test")
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    for variable in [
        "ALERT_WEBHOOK_URLS",
        "SMTP_URL",
        "ALERT_EMAIL_FROM",
        "ALERT_EMAIL_TO",
    ] {
        assert!(message.contains(variable), "{message}");
    }
    let list = open_alerts(&app).await;
    assert_eq!(
        list,
        json!({"open": [], "channels": [], "deliveries": {"sent": 0, "failed": 0, "dropped": 0}})
    );
}

#[tokio::test]
async fn the_alert_routes_need_the_admin_key() {
    let app = TestApp::with_keys(1).await;
    for (method, path) in [("GET", "/api/alerts"), ("POST", "/api/alerts/test")] {
        let request = match method {
            "GET" => app.get(path),
            _ => app.post(path),
        };
        assert_eq!(
            request.send().await.unwrap().status(),
            401,
            "{method} {path}"
        );
        let request = match method {
            "GET" => app.get(path),
            _ => app.post(path),
        };
        let wrong = request.bearer_auth("not-the-admin-key-at-all").send();
        assert_eq!(wrong.await.unwrap().status(), 401, "{method} {path}");
    }
}

#[tokio::test]
async fn the_alert_routes_are_admin_routes_for_cors_too() {
    let app = TestApp::configured(1, |env| env.set("CORS_ORIGINS", r#"["*"]"#)).await;
    let page = "https://any-page.example";
    let response = app
        .get("/api/alerts")
        .bearer_auth(ADMIN_KEY)
        .header("origin", page)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "\"*\" must not open an admin route"
    );
    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/alerts/test", app.address),
        )
        .header("origin", page)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // The proxy routes stay open to it.
    let health = app
        .get("/health")
        .header("origin", page)
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.headers()["access-control-allow-origin"]
            .to_str()
            .unwrap(),
        page
    );
}
