//! CORS: which web pages may read keygate's answers. The proxy routes admit
//! `CORS_ORIGINS` (by default pages served from this machine, on any port;
//! `"*"` admits every page); the admin routes admit only origins listed by
//! name, never `"*"`. A refused origin gets no `Access-Control-Allow-Origin`,
//! so the browser keeps the answer from the page and fails its preflights.
//!
//! CORS only stops reading. Requests a page can send without a preflight
//! are refused before they do anything by `browser_guard`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, header};
use tower_http::cors::{AllowHeaders, AllowOrigin, Any, CorsLayer};

use crate::domain::browser::CorsOrigins;

pub fn cors_layer(origins: Arc<CorsOrigins>) -> CorsLayer {
    CorsLayer::new()
        // Echoes an allowed origin; with `"*"` that is as open as a literal
        // `*` (no credentials are ever allowed), and it lets one layer tell
        // the admin routes apart.
        .allow_origin(AllowOrigin::predicate(move |origin, parts| {
            origin_allowed(&origins, origin, parts.uri.path())
        }))
        .allow_methods(Any)
        // Browsers never let `Access-Control-Allow-Headers: *` cover
        // `Authorization`, so a page sending a bearer failed its preflight:
        // allow whatever the preflight asks for, by name.
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            super::REQUEST_ID,
            HeaderName::from_static("x-keygate-attempts"),
            HeaderName::from_static("x-keygate-key"),
            header::RETRY_AFTER,
            HeaderName::from_static("request-id"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Whether a page at `origin` may call `path`.
pub(crate) fn origin_allowed(origins: &CorsOrigins, origin: &HeaderValue, path: &str) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if super::is_admin_path(path) {
        origins.allows_on_admin(origin)
    } else {
        origins.allows_on_proxy(origin)
    }
}
