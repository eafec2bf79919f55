//! `RequestLogLayer`: starts the `RequestLog` of every proxied request and
//! keeps it until the client has the last byte of the answer. It sits
//! outside the guards (Host, body type and size, client key), so a refused
//! request leaves its row too, and holds the log in the response body, so a
//! stream is recorded when it ends or when its client hangs up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderName, Method};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tower::{Layer, Service};

use crate::auth::presented_client_key;
use crate::domain::ClientKeys;
use crate::error::ErrorClass;
use crate::observe::{Observer, RequestLog};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The routes whose requests are recorded: those that reach an upstream,
/// by their route's name (a resource's id is not part of it).
fn logged_route(path: &str) -> Option<&'static str> {
    match path {
        "/api/chat" => Some("/api/chat"),
        "/v1/messages" => Some("/v1/messages"),
        "/v1/messages/count_tokens" => Some("/v1/messages/count_tokens"),
        "/v1/chat/completions" => Some("/v1/chat/completions"),
        "/v1/embeddings" => Some("/v1/embeddings"),
        "/v1/responses" => Some("/v1/responses"),
        "/api/search" => Some("/api/search"),
        _ => resource_route(path),
    }
}

/// The name of a route on resources, e.g. `/v1/responses/{id}`: the
/// family's root, then `{id}` for the id and any action after it.
fn resource_route(path: &str) -> Option<&'static str> {
    const FAMILIES: &[(&str, &[&str])] = &[
        (
            "/v1/responses",
            &["/v1/responses/{id}", "/v1/responses/{id}/cancel"],
        ),
        (
            "/v1/messages/batches",
            &[
                "/v1/messages/batches",
                "/v1/messages/batches/{id}",
                "/v1/messages/batches/{id}/results",
                "/v1/messages/batches/{id}/cancel",
            ],
        ),
        (
            "/v1/batches",
            &["/v1/batches", "/v1/batches/{id}", "/v1/batches/{id}/cancel"],
        ),
        (
            "/v1/files",
            &["/v1/files", "/v1/files/{id}", "/v1/files/{id}/content"],
        ),
    ];
    FAMILIES.iter().find_map(|(root, routes)| {
        let rest = path.strip_prefix(root)?;
        let shape = match rest.strip_prefix('/') {
            None if rest.is_empty() => root.to_string(),
            None => return None,
            Some(rest) => match rest.split_once('/') {
                None => format!("{root}/{{id}}"),
                Some((_, action)) => format!("{root}/{{id}}/{action}"),
            },
        };
        routes.iter().copied().find(|route| *route == shape)
    })
}

#[derive(Clone)]
pub struct RequestLogLayer {
    observer: Arc<Observer>,
    client_keys: Arc<ClientKeys>,
}

impl RequestLogLayer {
    pub fn new(observer: Arc<Observer>, client_keys: Arc<ClientKeys>) -> Self {
        Self {
            observer,
            client_keys,
        }
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLogService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequestLogService<S> {
    inner: S,
    layer: RequestLogLayer,
}

type BoxedFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<S> Service<Request> for RequestLogService<S>
where
    S: Service<Request, Response = Response> + Send,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxedFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let route = match logged_route(request.uri().path()) {
            Some(route) if request.method() != Method::OPTIONS => route,
            // Preflights and other routes are not client requests to log.
            _ => return Box::pin(self.inner.call(request)),
        };
        let headers = request.headers();
        let request_id = headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let client_key = if self.layer.client_keys.is_empty() {
            None
        } else {
            presented_client_key(headers).and_then(|key| self.layer.client_keys.fingerprint(key))
        };
        let log = RequestLog::start(self.layer.observer.clone(), route, request_id, client_key);
        request.extensions_mut().insert(log.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            log.responded(
                response.status().as_u16(),
                response.extensions().get::<ErrorClass>(),
            );
            // The body holds the log: the row is written when the last
            // byte is sent or the client goes.
            Ok(response.map(|body| Body::new(LoggedBody { body, _log: log })))
        })
    }
}

/// An answer's body holding its request's log. It passes the size on, so
/// an answer of known length keeps its `content-length`.
struct LoggedBody {
    body: Body,
    _log: RequestLog,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_on_resources_are_recorded_by_their_names_not_their_ids() {
        for (path, route) in [
            ("/v1/responses", Some("/v1/responses")),
            ("/v1/responses/resp_1", Some("/v1/responses/{id}")),
            (
                "/v1/responses/resp_1/cancel",
                Some("/v1/responses/{id}/cancel"),
            ),
            ("/v1/messages/batches", Some("/v1/messages/batches")),
            (
                "/v1/messages/batches/msgbatch_1/results",
                Some("/v1/messages/batches/{id}/results"),
            ),
            ("/v1/files/file-1/content", Some("/v1/files/{id}/content")),
            ("/v1/batches/batch_1", Some("/v1/batches/{id}")),
            ("/v1/responses/resp_1/other", None),
            ("/v1/filesystem", None),
            ("/v1/assistants", None),
        ] {
            assert_eq!(logged_route(path), route, "{path}");
        }
    }
}
