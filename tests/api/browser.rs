//! What a web page can do with keygate from a visitor's browser: send only
//! JSON bodies (a browser posts text/plain and forms cross-origin without
//! asking), reach it only under a loopback or allowed host name (DNS
//! rebinding), and read answers only from the origins CORS admits.

use reqwest::{Method, Response};
use serde_json::Value;

use crate::helpers::{ADMIN_KEY, TestApp, error_of};

const HELLO: &str = r#"{"messages":[{"role":"user","content":"Hello!"}]}"#;

async fn post_typed(app: &TestApp, path: &str, content_type: &str) -> Response {
    app.post(path)
        .header("content-type", content_type)
        .body(HELLO)
        .send()
        .await
        .unwrap()
}

async fn chat_with_host(app: &TestApp, host: &str) -> Response {
    app.post("/api/chat")
        .header("host", host)
        .header("content-type", "application/json")
        .body(HELLO)
        .send()
        .await
        .unwrap()
}

/// A preflight from `origin` for a POST (or `method`) carrying `headers`.
async fn preflight(app: &TestApp, path: &str, origin: &str, headers: &str) -> Response {
    app.client
        .request(Method::OPTIONS, format!("{}{path}", app.address))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

fn allowed_origin(response: &Response) -> Option<&str> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

fn allowed_headers(response: &Response) -> String {
    response
        .headers()
        .get("access-control-allow-headers")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default()
}

async fn chat_from(app: &TestApp, origin: &str) -> Response {
    app.post("/api/chat")
        .header("origin", origin)
        .header("content-type", "application/json")
        .body(HELLO)
        .send()
        .await
        .unwrap()
}

// ---------------------------------------------------------------- body type

#[tokio::test]
async fn only_json_or_untyped_bodies_are_read() {
    let app = TestApp::with_keys(1).await;
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
    ] {
        let response = post_typed(&app, "/api/chat", content_type).await;
        assert_eq!(response.status(), 415, "{content_type}");
        let (error_type, message) = error_of(response).await;
        assert_eq!(error_type, "invalid_request_error");
        assert!(
            message.contains("-H 'content-type: application/json'"),
            "{message}"
        );
    }
    assert_eq!(
        app.upstream.calls().len(),
        0,
        "no refused body went upstream"
    );

    let response = post_typed(&app, "/api/chat", "application/json; charset=utf-8").await;
    assert_eq!(response.status(), 200);
    // No content type at all: curl without -H, scripts, the Node backend's clients.
    let response = app.post("/api/chat").body(HELLO).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.upstream.calls().len(), 2);
}

#[tokio::test]
async fn the_415_speaks_the_route_dialect() {
    let app = TestApp::with_both(1, 1).await;
    let response = post_typed(&app, "/v1/chat/completions", "text/plain").await;
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"].get("param").is_some(),
        "OpenAI's shape: {body}"
    );
    let response = post_typed(&app, "/v1/messages", "text/plain").await;
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "Anthropic's shape: {body}");
    assert_eq!(app.upstream.calls().len(), 0);
}

/// A page can post an untyped body (a Blob or an ArrayBuffer) without a
/// preflight; the browser names the page in `Origin`.
#[tokio::test]
async fn an_untyped_body_from_a_foreign_page_is_415() {
    let app = TestApp::with_keys(1).await;
    let response = app
        .post("/api/chat")
        .header("origin", "https://evil.example")
        .body(HELLO)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(app.upstream.calls().len(), 0);
    let response = app
        .post("/api/chat")
        .header("origin", "http://localhost:5173")
        .body(HELLO)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

// ---------------------------------------------------------------- Host

#[tokio::test]
async fn on_loopback_only_loopback_host_names_are_answered() {
    let app = TestApp::with_keys(1).await;
    let port = app.address.rsplit(':').next().unwrap().to_string();
    for host in [
        "localhost:3001".to_string(),
        "localhost".to_string(),
        format!("127.0.0.1:{port}"),
        "[::1]:3001".to_string(),
    ] {
        let response = chat_with_host(&app, &host).await;
        assert_eq!(response.status(), 200, "{host}");
    }

    let response = chat_with_host(&app, "evil.example").await;
    assert_eq!(response.status(), 421);
    let (error_type, message) = error_of(response).await;
    assert_eq!(error_type, "misdirected_request");
    assert!(message.contains("ALLOWED_HOSTS"), "{message}");
    // Preflights too: nothing is answered to a rebound name.
    let response = app
        .client
        .request(Method::OPTIONS, format!("{}/api/chat", app.address))
        .header("host", "evil.example:3001")
        .header("origin", "http://evil.example:3001")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 421);
    assert_eq!(
        app.upstream.calls().len(),
        4,
        "only the loopback names went upstream"
    );
}

#[tokio::test]
async fn a_name_in_allowed_hosts_is_answered() {
    let app =
        TestApp::configured(1, |env| env.set("ALLOWED_HOSTS", r#"["keygate.internal"]"#)).await;
    let response = chat_with_host(&app, "keygate.internal:3001").await;
    assert_eq!(response.status(), 200);
    let response = chat_with_host(&app, "evil.example").await;
    assert_eq!(response.status(), 421);
}

#[tokio::test]
async fn on_every_interface_host_is_checked_only_with_allowed_hosts() {
    let app = TestApp::configured(1, |env| env.set("HOST", "0.0.0.0")).await;
    let response = chat_with_host(&app, "gateway.example").await;
    assert_eq!(response.status(), 200);
    let app = TestApp::configured(1, |env| {
        env.set("HOST", "0.0.0.0")
            .set("ALLOWED_HOSTS", r#"["gateway.example"]"#)
    })
    .await;
    assert_eq!(chat_with_host(&app, "gateway.example").await.status(), 200);
    assert_eq!(chat_with_host(&app, "evil.example").await.status(), 421);
}

// ---------------------------------------------------------------- CORS

#[tokio::test]
async fn by_default_pages_on_this_machine_are_admitted_and_others_not() {
    let app = TestApp::with_keys(1).await;
    let response = chat_from(&app, "http://localhost:5173").await;
    assert_eq!(response.status(), 200);
    assert_eq!(allowed_origin(&response), Some("http://localhost:5173"));
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_string();
    for name in ["x-request-id", "x-keygate-attempts", "retry-after"] {
        assert!(exposed.contains(name), "{exposed}");
    }

    let response = chat_from(&app, "https://evil.example").await;
    assert_eq!(allowed_origin(&response), None);
    let response = preflight(&app, "/api/chat", "https://evil.example", "content-type").await;
    assert_eq!(allowed_origin(&response), None);
}

#[tokio::test]
async fn a_preflight_for_a_bearer_from_an_admitted_page_is_allowed() {
    let app = TestApp::with_keys(1).await;
    let response = preflight(
        &app,
        "/v1/chat/completions",
        "http://127.0.0.1:5173",
        "authorization,content-type",
    )
    .await;
    assert!(response.status().is_success());
    assert_eq!(allowed_origin(&response), Some("http://127.0.0.1:5173"));
    assert!(
        allowed_headers(&response).contains("authorization"),
        "{}",
        allowed_headers(&response)
    );
}

#[tokio::test]
async fn a_star_opens_the_proxy_routes_but_not_the_admin_routes() {
    let app = TestApp::configured(1, |env| env.set("CORS_ORIGINS", r#"["*"]"#)).await;
    let page = "https://any-page.example";
    let response = chat_from(&app, page).await;
    assert_eq!(response.status(), 200);
    assert_eq!(allowed_origin(&response), Some(page));
    let response = app
        .get("/health")
        .header("origin", page)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&response), Some(page));

    let response = preflight(
        &app,
        "/v1/messages",
        page,
        "authorization,x-api-key,anthropic-version,content-type",
    )
    .await;
    assert_eq!(allowed_origin(&response), Some(page));
    let headers = allowed_headers(&response);
    assert!(headers.contains("authorization"), "{headers}");
    assert!(headers.contains("anthropic-version"), "{headers}");

    let response = preflight(
        &app,
        "/api/keypool/anthropic/keys",
        "https://evil.example",
        "authorization,content-type",
    )
    .await;
    assert_eq!(allowed_origin(&response), None);
    let response = app
        .get("/api/keypool/stats")
        .bearer_auth(ADMIN_KEY)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&response), None);
}

#[tokio::test]
async fn listed_origins_are_admitted_on_proxy_and_admin_routes_and_others_not() {
    let app = TestApp::configured(1, |env| {
        env.set("CORS_ORIGINS", r#"["https://app.example"]"#)
    })
    .await;
    let app_page = "https://app.example";
    assert_eq!(
        allowed_origin(&chat_from(&app, app_page).await),
        Some(app_page)
    );
    let response = preflight(
        &app,
        "/api/keypool/anthropic/keys",
        app_page,
        "authorization,content-type",
    )
    .await;
    assert_eq!(allowed_origin(&response), Some(app_page));
    assert!(allowed_headers(&response).contains("authorization"));
    let response = app
        .get("/api/keypool/stats")
        .bearer_auth(ADMIN_KEY)
        .header("origin", app_page)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(allowed_origin(&response), Some(app_page));

    for other in ["https://evil.example", "http://localhost:5173"] {
        assert_eq!(
            allowed_origin(&chat_from(&app, other).await),
            None,
            "{other}"
        );
        let response = preflight(&app, "/api/keypool/stats", other, "authorization").await;
        assert_eq!(allowed_origin(&response), None, "{other}");
    }
}
