//! The bare forwarder baseline: axum + reqwest, no features. It replaces the
//! client's credential with a fixed key, sends the request to the upstream
//! and streams the answer back chunk by chunk. Whatever keygate costs beyond
//! this is the price of its features.

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

struct Forwarder {
    client: reqwest::Client,
    upstream: String,
}

/// Serves on `listener`, forwarding every request to `upstream`.
pub async fn serve(listener: TcpListener, upstream: String) -> io::Result<()> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .map_err(io::Error::other)?;
    let app = Router::new()
        .fallback(forward)
        .with_state(Arc::new(Forwarder { client, upstream }));
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

async fn forward(State(forwarder): State<Arc<Forwarder>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    headers.remove(header::HOST);
    headers.remove(header::AUTHORIZATION);
    headers.remove("x-api-key");
    if parts.uri.path() == "/v1/messages" {
        headers.insert("x-api-key", HeaderValue::from_static("sk-ant-forwarder"));
    } else {
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-forwarder"),
        );
    }
    let sent = forwarder
        .client
        .request(parts.method, format!("{}{path}", forwarder.upstream))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if name != header::TRANSFER_ENCODING && name != header::CONNECTION {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(upstream.bytes_stream()))
        .unwrap_or_else(|error| (StatusCode::BAD_GATEWAY, error.to_string()).into_response())
}
