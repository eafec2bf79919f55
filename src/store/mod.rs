//! Everything SQL. `Store` opens the SQLite database (created if missing,
//! WAL, busy timeout, foreign keys) and runs the embedded migrations; one
//! file per table holds its queries.
//!
//! - `keys`: `api_keys`, the sealed keys and their names, weights, switches.
//! - `pool_state`: `key_state` and `provider_stats`, the pools' saved state.
//! - `usage`: the usage ledger's rows and hourly rollups.

pub mod keys;
pub mod pool_state;
pub mod usage;

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating the file and its folder if needed) and migrates.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL, NORMAL cannot corrupt the file; a power cut may lose the
            // last commits, which an application crash does not.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Rows a query's worker thread may read ahead of its caller
            // (sqlx's default is 50). With a short buffer, a long result
            // such as the usage ledger's rollups wakes the worker and the
            // caller about once per row: profiled on a day's usage totals,
            // the wake-ups took about a fifth of the CPU, and under a tenth
            // with 1024.
            .row_buffer_size(1024);
        if let Some(parent) = options
            .get_filename()
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|e| open_error(sqlx::Error::Io(e)))?;
        }
        owner_only(options.get_filename()).map_err(|e| open_error(sqlx::Error::Io(e)))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let filled = usage::backfill_rollups(&pool).await?;
        if filled > 0 {
            tracing::info!(
                rows = filled,
                "usage ledger: daily rollups filled from hourly ones"
            );
        }
        Ok(Self { pool })
    }

    /// The pool of connections, for the query modules.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The database holds sealed keys, saved state and usage: readable
/// by its owner only. The file is created 0600 before SQLite opens it, and
/// SQLite gives its `-wal` and `-shm` files the database file's mode; files
/// left 0644 by an older keygate are tightened.
fn owner_only(database: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if database.as_os_str().is_empty() || database.as_os_str() == ":memory:" {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(database)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = database.as_os_str().to_owned();
        path.push(suffix);
        let path = std::path::PathBuf::from(path);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}
