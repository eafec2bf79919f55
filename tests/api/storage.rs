//! What is on disk: keys sealed at rest, no duplicates across restarts, a
//! wrong or generated master key, and tampering.

use std::os::unix::fs::PermissionsExt;

use keygate::startup::Application;
use sqlx::{Row, SqlitePool};

use crate::helpers::{FakeUpstream, OTHER_MASTER_KEY, TestApp, TestEnv, planted_key, secret_core};

async fn rows(env: &TestEnv) -> Vec<(String, String)> {
    let pool = SqlitePool::connect(&env.vars["DATABASE_URL"])
        .await
        .unwrap();
    let rows = sqlx::query("SELECT id, sealed_key FROM api_keys ORDER BY rowid")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect();
    pool.close().await;
    rows
}

async fn build_error(env: &TestEnv) -> String {
    match Application::build(env.config()).await {
        Ok(_) => panic!("keygate started but should have refused"),
        Err(error) => error.to_string(),
    }
}

fn keys_json(keys: &[String]) -> String {
    serde_json::to_string(keys).unwrap()
}

#[tokio::test]
async fn keys_are_sealed_at_rest_and_never_written_in_clear() {
    let app = TestApp::with_keys(2).await;
    assert_eq!(app.hello().await.status(), 200);
    let mut found_files = 0;
    for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        found_files += 1;
        for key in &app.keys {
            let haystack = String::from_utf8_lossy(&bytes);
            assert!(!haystack.contains(key.as_str()), "a key is stored in clear");
            assert!(
                !haystack.contains(secret_core(key)),
                "a key's body is stored in clear"
            );
        }
    }
    assert!(found_files >= 1);
}

#[tokio::test]
async fn restarts_import_new_keys_without_duplicating_old_ones() {
    let upstream = FakeUpstream::start().await;
    let first = vec![planted_key("a"), planted_key("b")];
    let env = TestEnv::new(&upstream, &first);
    drop(Application::build(env.config()).await.unwrap());
    let before = rows(&env).await;
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|(_, sealed)| sealed.starts_with("v1:")));
    let pool = SqlitePool::connect(&env.vars["DATABASE_URL"])
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    pool.close().await;

    drop(Application::build(env.config()).await.unwrap());
    assert_eq!(rows(&env).await, before, "a restart changes nothing");

    let more = vec![planted_key("a"), planted_key("b"), planted_key("c")];
    let env = env.set("ANTHROPIC_API_KEYS", &keys_json(&more));
    drop(Application::build(env.config()).await.unwrap());
    let after = rows(&env).await;
    assert_eq!(after.len(), 3);
    assert_eq!(after[..2], before[..], "existing keys keep their ids");
}

#[tokio::test]
async fn a_wrong_encryption_key_refuses_to_start_and_touches_nothing() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[planted_key("a"), planted_key("b")]);
    drop(Application::build(env.config()).await.unwrap());
    let before = rows(&env).await;

    let env = env.set("ENCRYPTION_KEY", OTHER_MASTER_KEY).set(
        "ANTHROPIC_API_KEYS",
        &keys_json(&[planted_key("a"), planted_key("new")]),
    );
    let message = build_error(&env).await;
    assert!(
        message.contains("2 of 2 stored keys cannot be decrypted with the current ENCRYPTION_KEY"),
        "{message}"
    );
    assert_eq!(rows(&env).await, before, "the refused start wrote nothing");
}

#[tokio::test]
async fn a_tampered_ciphertext_refuses_to_start() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[planted_key("a")]);
    drop(Application::build(env.config()).await.unwrap());
    let (id, sealed) = rows(&env).await.remove(0);
    // Flip one hex digit of the ciphertext (fourth field).
    let mut fields: Vec<String> = sealed.split(':').map(String::from).collect();
    let flipped = if fields[3].starts_with('0') { "1" } else { "0" };
    fields[3].replace_range(0..1, flipped);
    let pool = SqlitePool::connect(&env.vars["DATABASE_URL"])
        .await
        .unwrap();
    sqlx::query("UPDATE api_keys SET sealed_key = ? WHERE id = ?")
        .bind(fields.join(":"))
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let message = build_error(&env).await;
    assert!(
        message.contains("failed their integrity check"),
        "{message}"
    );
}

#[tokio::test]
async fn without_encryption_key_one_is_generated_privately_and_reused() {
    let upstream = FakeUpstream::start().await;
    let env = TestEnv::new(&upstream, &[planted_key("a")]).unset("ENCRYPTION_KEY");
    drop(Application::build(env.config()).await.unwrap());
    let key_file = env.data_dir.path().join("encryption.key");
    let metadata = std::fs::metadata(&key_file).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let contents = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(contents.trim().len(), 64);
    // The second start reads the same file and can open the stored key.
    drop(Application::build(env.config()).await.unwrap());
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), contents);
    assert!(
        crate::helpers::captured_logs().contains("ENCRYPTION_KEY is not set: generated a new one")
    );
}

#[tokio::test]
async fn the_database_files_are_readable_by_their_owner_only() {
    let app = TestApp::with_keys(1).await;
    assert_eq!(app.hello().await.status(), 200);
    let mut checked = 0;
    for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("keygate.db") {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} is {mode:o}");
            checked += 1;
        }
    }
    assert!(checked >= 2, "the database and its WAL were checked");
}

#[tokio::test]
async fn an_explicitly_empty_client_key_list_is_logged_as_open() {
    let _app = TestApp::configured(1, |env| env.set("GATEWAY_API_KEYS", "[]")).await;
    assert!(
        crate::helpers::captured_logs()
            .contains("GATEWAY_API_KEYS is an empty list: the proxy routes are open to any client")
    );
}
