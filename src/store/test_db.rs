//! A fresh PostgreSQL database per test, on the server the tests use
//! (`KEYGATE_TEST_POSTGRES`, else 127.0.0.1:5432 as `postgres` with trust
//! auth), dropped when the guard is, even when the test failed.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The server, without a database name.
pub fn server_url() -> String {
    std::env::var("KEYGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = format!("keygate_test_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .expect("the test PostgreSQL server answers");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("a test database is created");
        let _ = admin.close().await;
        let url = format!("{}/{name}", server_url());
        Self { name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs in async tests: the database is dropped from a thread
        // of its own with its own runtime. FORCE ends the connections the
        // test's pools still hold.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let admin_url = format!("{}/postgres", server_url());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                sqlx::query(&sql).execute(&mut admin).await?;
                admin.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}
