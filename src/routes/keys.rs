//! Live key management (behind `auth::require_admin`): add, list, change,
//! delete and check a provider's keys without a restart. Every change is
//! written to the database first, then told to the pool, so what is served
//! and what survives a restart never disagree.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;

use crate::app_state::AppState;
use crate::domain::key_fields::{CacheScope, KeyLabel, KeySecret, KeySpec, KeyWeight};
use crate::domain::{KeyId, ProviderKind};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::key_check::{KeyCheck, check_keys};
use crate::keypool::KeyStatus;
use crate::routes::key_views::{AddedKey, CheckResults, CheckedKey, DeletedKey, KeyList, KeyView};
use crate::routes::pool_for;
use crate::vault::{KeyChanges, VaultError};

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a JSON object with \"key\" and optional \"label\", \"weight\", \"scope\""
)]
pub struct NewKey {
    key: String,
    label: Option<String>,
    weight: Option<u32>,
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a JSON object with \"label\", \"weight\", \"enabled\" or \"scope\""
)]
pub struct KeyChange {
    label: Option<String>,
    weight: Option<u32>,
    enabled: Option<bool>,
    /// A cache scope; `""` makes the key its own scope again.
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TestQuery {
    key: Option<String>,
}

/// `POST /api/keypool/{provider}/keys`
pub async fn create_key(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<Response, ApiError> {
    let (kind, pool) = pool_for(&state, &provider)?;
    let key = KeySecret::parse(SecretString::from(body.key))
        .map_err(|e| ApiError::bad_request(format!("key: {e}")))?;
    let spec = KeySpec {
        label: body.label.as_deref().map(parse_label).transpose()?,
        weight: Some(body.weight.map_or(Ok(KeyWeight::DEFAULT), parse_weight)?),
        scope: body.scope.as_deref().map(parse_scope).transpose()?,
        secret: key,
    };
    let entry = match state.vault.add(kind, &spec).await {
        Ok(entry) => entry,
        Err(VaultError::Duplicate) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict_error",
                format!("this key is already stored for {kind}"),
            ));
        }
        Err(error) => return Err(storage_error(error)),
    };
    tracing::info!(provider = %kind, key = %entry.id, "admin added a key");
    let warning = foreign_key_warning(kind, &spec.secret);
    if let Some(warning) = &warning {
        tracing::warn!(provider = %kind, key = %entry.id, "{warning}");
    }
    let response = (StatusCode::CREATED, Json(AddedKey::new(&entry, warning))).into_response();
    pool.add_key(entry);
    announce(&state);
    Ok(response)
}

/// `GET /api/keypool/{provider}/keys`: every stored key, masked, with its
/// current state.
pub async fn list_keys(
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Response, ApiError> {
    let (kind, pool) = pool_for(&state, &provider)?;
    let rows = state.vault.list(kind).await.map_err(storage_error)?;
    let status = pool.status()?;
    let keys = rows
        .iter()
        .map(|row| KeyView::new(row, find(&status.keys, &row.id)))
        .collect();
    Ok(Json(KeyList {
        provider: kind,
        keys,
    })
    .into_response())
}

/// `PATCH /api/keypool/{provider}/keys/{id}`
pub async fn update_key(
    State(state): State<AppState>,
    Path((provider, id)): Path<(String, String)>,
    ApiJson(change): ApiJson<KeyChange>,
) -> Result<Response, ApiError> {
    let (kind, pool) = pool_for(&state, &provider)?;
    if change.label.is_none()
        && change.weight.is_none()
        && change.enabled.is_none()
        && change.scope.is_none()
    {
        return Err(ApiError::bad_request(
            "send at least one of \"label\", \"weight\", \"enabled\", \"scope\"",
        ));
    }
    let label = change.label.as_deref().map(parse_label).transpose()?;
    let weight = change.weight.map(parse_weight).transpose()?;
    // An empty scope clears it: the key is its own scope again.
    let scope = match change.scope.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(text) => Some(Some(parse_scope(text)?)),
    };
    let edit = KeyChanges {
        name: label.as_ref(),
        weight,
        enabled: change.enabled,
        scope: scope.as_ref().map(Option::as_ref),
    };
    let row = state
        .vault
        .update(kind, &id, edit)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| no_such_key(kind, &id))?;
    let key = KeyId::new(id.as_str());
    pool.update_key(
        &key,
        label.map(|l| Some(l.into_string())),
        weight.map(KeyWeight::get),
        change.enabled,
    );
    if scope.is_some() {
        pool.set_scope(&key, row.cache_scope.as_deref().map(Arc::from));
    }
    tracing::info!(provider = %kind, key = %key, "admin changed a key");
    announce(&state);
    let status = pool.status()?;
    Ok(Json(KeyView::new(&row, find(&status.keys, &row.id))).into_response())
}

/// `DELETE /api/keypool/{provider}/keys/{id}`: a request in flight on the
/// key still finishes; no new one gets it.
pub async fn delete_key(
    State(state): State<AppState>,
    Path((provider, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (kind, pool) = pool_for(&state, &provider)?;
    if !state.vault.remove(kind, &id).await.map_err(storage_error)? {
        return Err(no_such_key(kind, &id));
    }
    let key = KeyId::new(id.as_str());
    pool.remove_key(&key);
    announce(&state);
    tracing::info!(provider = %kind, key = %key, "admin deleted a key");
    Ok(Json(DeletedKey {
        id: &id,
        deleted: true,
    })
    .into_response())
}

/// `POST /api/keypool/{provider}/test[?key=ID]`: checks keys with a cheap
/// upstream call; rejected keys become `invalid`, `invalid` keys that pass
/// come back.
pub async fn test_keys(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(query): Query<TestQuery>,
) -> Result<Response, ApiError> {
    let (kind, pool) = pool_for(&state, &provider)?;
    let keys = match &query.key {
        Some(id) => vec![
            state
                .vault
                .open_one(kind, id)
                .await
                .map_err(storage_error)?
                .ok_or_else(|| no_such_key(kind, id))?,
        ],
        None => state.vault.load(kind).await.map_err(storage_error)?,
    };
    let results = check_keys(
        &state.upstreams,
        kind,
        keys,
        state.key_test_timeout,
        |_, _| {},
    )
    .await;
    for (entry, check, limits) in &results {
        if !limits.is_empty() {
            pool.observe(&entry.id, *limits);
        }
        match check {
            KeyCheck::Ok => pool.set_invalid(&entry.id, None),
            KeyCheck::Invalid { reason, .. } => pool.set_invalid(&entry.id, Some(reason.clone())),
            KeyCheck::Unreachable { .. } => {}
        }
    }
    let results = results
        .iter()
        .map(|(entry, check, limits)| CheckedKey {
            check,
            headroom: (!limits.is_empty()).then_some(limits),
            id: &entry.id,
            label: entry.label(),
        })
        .collect();
    Ok(Json(CheckResults {
        provider: kind,
        results,
    })
    .into_response())
}

/// Tells the other replicas of a cluster the stored keys changed, after the
/// write: they reload from the store at once.
fn announce(state: &AppState) {
    if let Some(cluster) = &state.cluster {
        cluster.announce_keys_changed();
    }
}

fn find<'a>(keys: &'a [KeyStatus], id: &str) -> Option<&'a KeyStatus> {
    keys.iter().find(|k| k.id.as_str() == id)
}

/// A warning when `key` looks like another provider's key.
pub fn foreign_key_warning(provider: ProviderKind, key: &KeySecret) -> Option<String> {
    use secrecy::ExposeSecret;
    provider
        .foreign_key_owner(key.secret().expose_secret())
        .map(|owner| {
            format!("this key looks like a key for {owner}, but was added to the {provider} pool; it will be sent to {provider}")
        })
}

fn parse_label(label: &str) -> Result<KeyLabel, ApiError> {
    KeyLabel::parse(label).map_err(|e| ApiError::bad_request(format!("label: {e}")))
}

fn parse_scope(scope: &str) -> Result<CacheScope, ApiError> {
    CacheScope::parse(scope).map_err(|e| ApiError::bad_request(format!("scope: {e}")))
}

fn parse_weight(weight: u32) -> Result<KeyWeight, ApiError> {
    KeyWeight::parse(weight).map_err(|e| ApiError::bad_request(format!("weight: {e}")))
}

fn no_such_key(provider: ProviderKind, id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no {provider} key with id {:?}",
        id.chars().take(64).collect::<String>()
    ))
}

fn storage_error(error: VaultError) -> ApiError {
    ApiError::unavailable("the key store is unavailable; nothing was changed")
        .caused_by(error.to_string())
}
