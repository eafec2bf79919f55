//! PostgreSQL for the tests: a fresh database per test on the server this
//! machine runs (`KEYGATE_TEST_POSTGRES`, else 127.0.0.1:5432 as `postgres`
//! with trust auth), dropped when its guard is, even when the test failed;
//! and `CutProxy`, a TCP proxy between keygate and the server that a test
//! can cut and restore to play a network outage.

use std::sync::Arc;

use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The server, without a database name.
pub fn server_url() -> String {
    std::env::var("KEYGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// The server's address, for the proxy.
fn server_address() -> String {
    let url = server_url();
    let authority = url.split("://").nth(1).unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    host.split('/').next().unwrap_or_default().to_string()
}

pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = format!("keygate_test_{}", hex_id());
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .expect("the test PostgreSQL server answers");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let _ = admin.close().await;
        let url = format!("{}/{name}", server_url());
        Self { name, url }
    }

    /// A pool on the database that bypasses any proxy, for checks.
    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url).await.unwrap()
    }

    /// The database's URL through `proxy`.
    pub fn url_via(&self, proxy: &CutProxy) -> String {
        let url = server_url();
        let (scheme, rest) = url.split_once("://").unwrap();
        let user = rest.rsplit_once('@').map_or("", |(user, _)| user);
        format!("{scheme}://{user}@127.0.0.1:{}/{}", proxy.port, self.name)
    }
}

fn hex_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..12].to_string()
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
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                sqlx::query(&sql).execute(&mut admin).await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// A TCP proxy to the PostgreSQL server on a port of its own. `cut` closes
/// every connection through it and refuses new ones until `restore`.
pub struct CutProxy {
    pub port: u16,
    cut: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = watch::channel(false);
        let cut = Arc::new(cut);
        let target = server_address();
        let watcher = cut.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *watcher.borrow() {
                    drop(client); // refused while cut
                    continue;
                }
                let mut cut = watcher.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { port, cut, task }
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
