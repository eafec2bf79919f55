//! Every other path under `/v1/`: a clear 404 that lists what keygate
//! serves, in the shape of the API the client speaks (Anthropic's when it
//! sends `anthropic-version`). keygate does not pass unknown families
//! through: most of them create resources it cannot bind to their key
//! (assistants, threads, vector stores, uploads, fine-tuning jobs), and
//! the rest cost money it could not count or price (images, audio,
//! legacy completions).

use axum::extract::Request;
use axum::response::Response;

use crate::error::{ApiError, Dialect};

/// The routes under `/v1/`, as the 404 lists them.
pub const SUPPORTED: &str = "POST /v1/messages, POST /v1/messages/count_tokens, \
     /v1/messages/batches (POST, GET; GET and DELETE {id}, GET {id}/results, POST {id}/cancel), \
     POST /v1/chat/completions, POST /v1/embeddings, \
     POST /v1/responses (GET and DELETE {id}, POST {id}/cancel), \
     /v1/files (POST, GET; GET and DELETE {id}, GET {id}/content), \
     /v1/batches (POST, GET; GET {id}, POST {id}/cancel), GET /v1/models";

pub async fn not_modelled(request: Request) -> Response {
    let dialect = if request.headers().contains_key("anthropic-version") {
        Dialect::Anthropic
    } else {
        Dialect::of_request(&request)
    };
    ApiError::not_found(format!(
        "{} {} is not a route keygate serves; under /v1/ it serves: {SUPPORTED}",
        request.method(),
        request.uri().path()
    ))
    .into_response_in(dialect)
}
