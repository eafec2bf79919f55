//! The route side of resources bound to their key: finding the key a named
//! resource belongs to before a call, and recording the key that made one
//! after it. A resource keygate has no record of is refused with a clear
//! 404 rather than sent with some pool key: another key cannot see it, and
//! the upstream's 404 would blame the wrong thing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;

use crate::app_state::AppState;
use crate::domain::{KeyId, ProviderKind, ResourceBinding, ResourceKind};
use crate::error::ApiError;
use crate::providers::BoundResource;
use crate::store::bindings;

/// Longest resource id accepted; real ids are about 30 to 60 characters.
const MAX_ID_LEN: usize = 200;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// `id` if it can be a resource id: it goes into an upstream path, so
/// nothing that could change the path (`/`, `..`, `?`, `%`) gets through.
pub fn checked_id(id: &str) -> Result<&str, ApiError> {
    let fits = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if fits {
        Ok(id)
    } else {
        Err(ApiError::bad_request(format!(
            "invalid resource id: expected at most {MAX_ID_LEN} letters, digits, '_' or '-'"
        )))
    }
}

/// The key `id` belongs to, for a call that names it.
pub async fn bound_to(
    state: &AppState,
    provider: ProviderKind,
    id: &str,
) -> Result<BoundResource, ApiError> {
    let id = checked_id(id)?;
    let found = bindings::find(state.vault.store(), provider, id, now_ms())
        .await
        .map_err(|e| {
            ApiError::unavailable("cannot read which key owns the resource; retry later")
                .caused_by(e.to_string())
        })?;
    match found {
        Some(binding) => Ok(BoundResource {
            id: Arc::from(id),
            key: binding.key_id,
        }),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!(
                "{id} is not known to keygate: only resources created through keygate (and, \
                 for responses, stored) can be reached, until their lifetime ends"
            ),
        )),
    }
}

/// Records that `key` created `id`. A failure is logged, not answered:
/// the resource exists and was paid for; only later calls naming it will
/// be refused.
pub async fn remember(
    state: &AppState,
    provider: ProviderKind,
    kind: ResourceKind,
    id: &str,
    key: &KeyId,
    expires_at_ms: Option<i64>,
) {
    let Ok(id) = checked_id(id) else {
        tracing::warn!(
            kind = kind.as_str(),
            "the upstream named a resource with an unusable id"
        );
        return;
    };
    let now = now_ms();
    let lifetime = kind.lifetime(provider);
    let binding = ResourceBinding {
        provider,
        resource_id: id.to_string(),
        kind,
        key_id: key.clone(),
        expires_at_ms: expires_at_ms.unwrap_or_else(|| now.saturating_add(millis(lifetime))),
    };
    if let Err(error) = bindings::record(state.vault.store(), &binding, now).await {
        tracing::warn!(%error, kind = kind.as_str(), key = %key, "cannot record which key owns a resource");
    }
}

/// Forgets `id` once the upstream deleted it.
pub async fn forget(state: &AppState, provider: ProviderKind, id: &str) {
    if let Err(error) = bindings::forget(state.vault.store(), provider, id).await {
        tracing::warn!(%error, "cannot forget a deleted resource");
    }
}

/// The ids an answer names: its own, and for a batch the files it wrote.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AnswerIds {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub output_file_id: Option<String>,
    #[serde(default)]
    pub error_file_id: Option<String>,
    /// A file's own expiry (seconds since the epoch), when it has one;
    /// other resources' are text, or mean something else.
    #[serde(default)]
    expires_at: Option<serde_json::Value>,
}

impl AnswerIds {
    /// Reads the ids of a JSON answer; nothing for any other body.
    pub fn of(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// A file's own expiry, in ms since the epoch, when it names one.
    pub fn file_expiry_ms(&self) -> Option<i64> {
        self.expires_at
            .as_ref()
            .and_then(serde_json::Value::as_i64)
            .map(|secs| secs.saturating_mul(1000))
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_whatever_else_the_answer_holds() {
        let batch = AnswerIds::of(
            br#"{"id":"msgbatch_1","type":"message_batch","expires_at":"2026-12-01T00:00:00Z"}"#,
        );
        assert_eq!(batch.id.as_deref(), Some("msgbatch_1"));
        assert_eq!(batch.file_expiry_ms(), None);
        let file = AnswerIds::of(br#"{"id":"file-1","object":"file","expires_at":1700000000}"#);
        assert_eq!(file.file_expiry_ms(), Some(1_700_000_000_000));
        assert_eq!(AnswerIds::of(b"not json").id, None);
    }

    #[test]
    fn ids_that_could_change_the_upstream_path_are_refused() {
        assert!(checked_id("resp_67ccd2bed1ec8190b14f964abc054267").is_ok());
        assert!(checked_id("file-abc123").is_ok());
        for bad in [
            "",
            "../v1/models",
            "a/b",
            "a?b=1",
            "a%2Fb",
            &"x".repeat(201),
        ] {
            assert!(checked_id(bad).is_err(), "{bad}");
        }
    }
}
