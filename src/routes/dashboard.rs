//! `GET /dashboard`: the operator's page, served by the binary itself. Its
//! files (`assets/dashboard/`) are compiled in, so keygate needs no CDN, no
//! Node.js and no files beside it. The page is public; every figure on it
//! comes from the admin routes, which it calls with the admin key the
//! operator types in (kept in the tab's `sessionStorage`, sent as a header).
//!
//! Every answer here carries the same strict headers: a Content-Security-
//! Policy that admits only this origin's own script and style files (no
//! inline script, no `eval`, nothing from elsewhere), that forbids framing
//! (`frame-ancestors 'none'`, with `X-Frame-Options` for old browsers) and
//! form posts; `nosniff`, so a file is never run as something it is not;
//! and no referrer, so the admin pages' URLs do not leak.

use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// One embedded file, served at `/dashboard/<name>`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../assets/dashboard/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page's files. The script is split by purpose into ES modules, which
/// the browser fetches from here (`script-src 'self'`).
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("login.js", JS),
    asset!("overview.js", JS),
    asset!("keys.js", JS),
    asset!("key_actions.js", JS),
    asset!("usage.js", JS),
    asset!("chart.js", JS),
    asset!("requests.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

/// `connect-src 'self'`: the page talks to this keygate only. `img-src`
/// admits the page's own icon; the charts are SVG built in the DOM.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// `GET /dashboard`
pub async fn dashboard_page() -> Response {
    serve("index.html")
}

/// `GET /dashboard/{file}`: one of the page's files; anything else is 404.
pub async fn dashboard_asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        return ApiError::not_found("no such dashboard file").into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Revalidate every time: a new binary must never run with the last
    // one's script (the files are small and served from memory).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

const SECURITY_HEADERS: [(HeaderName, &str); 6] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
];

/// The bytes every file of the page adds to the binary.
pub fn embedded_bytes() -> usize {
    ASSETS.iter().map(|asset| asset.body.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

    #[test]
    fn the_page_weighs_under_300_kb() {
        assert!(embedded_bytes() < 300 * 1024, "{} bytes", embedded_bytes());
    }

    #[test]
    fn the_page_runs_no_inline_script_and_loads_nothing_from_elsewhere() {
        for asset in ASSETS {
            // The SVG namespace is a name, not a place anything is loaded from.
            let text = String::from_utf8_lossy(asset.body).replace(SVG_NAMESPACE, "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{} names another origin",
                asset.name
            );
            if asset.name.ends_with(".js") {
                // Ways a string becomes markup or code.
                for sink in [
                    ".innerHTML",
                    ".outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                    "eval(",
                    "new Function",
                ] {
                    assert!(!text.contains(sink), "{} uses {sink}", asset.name);
                }
            }
        }
        let html = String::from_utf8_lossy(ASSETS[0].body);
        for script in html.split("<script").skip(1) {
            let (attributes, rest) = script.split_once('>').unwrap_or_default();
            assert!(attributes.contains("src="), "inline script in index.html");
            assert!(
                rest.trim_start().starts_with("</script>"),
                "inline script in index.html"
            );
        }
        assert!(!html.contains(" style="), "inline style in index.html");
        assert!(
            !has_handler_attribute(&html),
            "inline event handler in index.html"
        );
    }

    /// An attribute such as ` onclick=`.
    fn has_handler_attribute(html: &str) -> bool {
        html.match_indices(" on").any(|(at, _)| {
            let name: String = html[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            html[at + 1 + name.len()..].starts_with('=')
        })
    }
}
