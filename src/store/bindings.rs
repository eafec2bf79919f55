//! Queries on `resource_bindings`: which key created each resource that
//! only its creator can see (see `domain::resource`). A row is written when
//! the resource is made, read by every later call naming it, deleted when
//! the resource is, and pruned once its lifetime is over.

use super::{Store, StoreError, on_pool};
use crate::domain::{KeyId, ProviderKind, ResourceBinding};

/// Records (or renews) `binding`, and drops bindings whose resources have
/// expired by `now_ms` (an indexed delete, so each write stays cheap and
/// the table never outgrows the resources alive).
pub async fn record(
    store: &Store,
    binding: &ResourceBinding,
    now_ms: i64,
) -> Result<(), StoreError> {
    let upsert = "INSERT INTO resource_bindings \
         (provider, resource_id, kind, key_id, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (provider, resource_id) DO UPDATE SET kind = excluded.kind, \
         key_id = excluded.key_id, created_at_ms = excluded.created_at_ms, \
         expires_at_ms = excluded.expires_at_ms";
    let prune = "DELETE FROM resource_bindings WHERE expires_at_ms <= $1";
    on_pool!(store, |pool, Db| {
        sqlx::query(prune).bind(now_ms).execute(pool).await?;
        sqlx::query(upsert)
            .bind(binding.provider.as_str())
            .bind(binding.resource_id.as_str())
            .bind(binding.kind.as_str())
            .bind(binding.key_id.as_str())
            .bind(now_ms)
            .bind(binding.expires_at_ms)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// The binding of `resource_id`, unless its resource has expired by
/// `now_ms`.
pub async fn find(
    store: &Store,
    provider: ProviderKind,
    resource_id: &str,
    now_ms: i64,
) -> Result<Option<ResourceBinding>, StoreError> {
    let sql = "SELECT kind, key_id, expires_at_ms FROM resource_bindings \
               WHERE provider = $1 AND resource_id = $2 AND expires_at_ms > $3";
    let row: Option<(String, String, i64)> = on_pool!(store, |pool, Db| {
        sqlx::query_as(sql)
            .bind(provider.as_str())
            .bind(resource_id)
            .bind(now_ms)
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.and_then(|(kind, key_id, expires_at_ms)| {
        Some(ResourceBinding {
            provider,
            resource_id: resource_id.to_string(),
            kind: kind.parse().ok()?,
            key_id: KeyId::new(key_id),
            expires_at_ms,
        })
    }))
}

/// Forgets `resource_id` (its resource was deleted upstream).
pub async fn forget(
    store: &Store,
    provider: ProviderKind,
    resource_id: &str,
) -> Result<(), StoreError> {
    let sql = "DELETE FROM resource_bindings WHERE provider = $1 AND resource_id = $2";
    on_pool!(store, |pool, Db| {
        sqlx::query(sql)
            .bind(provider.as_str())
            .bind(resource_id)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ResourceKind;

    fn binding(id: &str, key: &str, kind: ResourceKind, expires_at_ms: i64) -> ResourceBinding {
        ResourceBinding {
            provider: ProviderKind::OpenAI,
            resource_id: id.into(),
            kind,
            key_id: KeyId::new(key),
            expires_at_ms,
        }
    }

    #[tokio::test]
    async fn bindings_are_found_until_they_expire_or_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/k.db", dir.path().display()))
            .await
            .unwrap();
        let response = binding("resp_1", "key_a", ResourceKind::Response, 2_000);
        record(&store, &response, 1_000).await.unwrap();
        let found = find(&store, ProviderKind::OpenAI, "resp_1", 1_500)
            .await
            .unwrap();
        assert_eq!(found, Some(response.clone()));
        assert_eq!(
            find(&store, ProviderKind::Anthropic, "resp_1", 1_500)
                .await
                .unwrap(),
            None,
            "ids are per provider"
        );
        assert_eq!(
            find(&store, ProviderKind::OpenAI, "resp_1", 2_000)
                .await
                .unwrap(),
            None
        );
        // A later write prunes what has expired, and renews what it names.
        let file = binding("file_1", "key_b", ResourceKind::File, 9_000);
        record(&store, &file, 2_500).await.unwrap();
        record(
            &store,
            &binding("file_1", "key_c", ResourceKind::File, 9_000),
            2_600,
        )
        .await
        .unwrap();
        let found = find(&store, ProviderKind::OpenAI, "file_1", 3_000)
            .await
            .unwrap();
        assert_eq!(found.map(|b| b.key_id), Some(KeyId::new("key_c")));
        forget(&store, ProviderKind::OpenAI, "file_1")
            .await
            .unwrap();
        assert_eq!(
            find(&store, ProviderKind::OpenAI, "file_1", 3_000)
                .await
                .unwrap(),
            None
        );
    }
}
