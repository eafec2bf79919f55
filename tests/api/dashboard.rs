//! `GET /dashboard` as a browser receives it: public, embedded, and under
//! headers that keep script to its own files and the page out of frames.
//! (What the page does is tested in a real browser: `tests/browser`.)

use reqwest::Response;

use crate::helpers::TestApp;

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

fn assert_strict(response: &Response) {
    let policy = header(response, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
    assert!(!policy.contains("unsafe-"), "{policy}");
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "x-frame-options"), "DENY");
}

#[tokio::test]
async fn the_page_is_public_and_served_under_strict_headers() {
    let app = TestApp::with_keys(1).await;
    let response = app.get("/dashboard").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    assert_strict(&response);
    let html = response.text().await.unwrap();
    assert!(html.contains("<script type=\"module\" src=\"/dashboard/app.js\"></script>"));
    // The data stays behind the admin key.
    let data = app.get("/api/keypool/stats").send().await.unwrap();
    assert_eq!(data.status(), 401);
}

#[tokio::test]
async fn every_file_the_page_names_is_embedded_with_its_type() {
    let app = TestApp::with_keys(1).await;
    for (file, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let response = app.get(&format!("/dashboard/{file}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{file}");
        assert_eq!(header(&response, "content-type"), content_type, "{file}");
        assert_strict(&response);
    }
    for missing in [
        "/dashboard/nope.js",
        "/dashboard/..%2FCargo.toml",
        "/dashboard/app.js/x",
    ] {
        let response = app.get(missing).send().await.unwrap();
        assert_eq!(response.status(), 404, "{missing}");
    }
}
