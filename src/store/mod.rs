//! Everything SQL. `Store` holds the database: SQLite (the default, a file
//! created if missing, WAL, busy timeout, foreign keys) or PostgreSQL
//! (`DATABASE_URL=postgres://…`, shared by several replicas), each with its
//! own embedded migrations (`migrations/sqlite/`, `migrations/postgres/`)
//! describing the same tables. One file per table holds its queries.
//!
//! Both databases are driven by sqlx's native drivers, not `sqlx::Any`
//! (which drops SQLite's connection options and converts every value on the
//! way): a query function matches on the backend once per statement
//! (`on_pool!`, `on_tx!`) and its body is compiled for each, usually with
//! one SQL text, since sqlx's SQLite driver binds `$1` by number as
//! PostgreSQL does and `QueryBuilder` writes each one's placeholders. Where
//! the dialects differ, the text is chosen per backend next to the query.
//!
//! - `open`: connecting, migrating, and the URL as it may be printed.
//! - `keys`: `api_keys`, the sealed keys and their names, weights, switches.
//! - `pool_state`: `key_state` and `provider_stats`, the pools' saved state.
//! - `usage`: the usage ledger's rows and rollups.
//! - `bindings`: `resource_bindings`, the key each stored resource
//!   belongs to.
//! - `copy`: moving an installation from one database to another.

pub mod bindings;
pub mod copy;
pub mod keys;
mod open;
pub mod pool_state;
#[cfg(test)]
pub(crate) mod test_db;
pub mod usage;

pub use open::{is_postgres_url, redacted_url};

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `url` has its password masked (`redacted_url`).
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether trying again later may succeed: the database was
    /// unreachable, busy, or aborted the transaction to break a deadlock.
    /// Anything else (a constraint, a closed pool) fails the same way
    /// again.
    pub fn is_transient(&self) -> bool {
        let StoreError::Query(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(error) => {
                let code = error.code().unwrap_or_default();
                if error
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    // Connection exceptions (08…), shutting down or
                    // starting (57P0…), out of resources (53…),
                    // serialisation failure and deadlock.
                    code.starts_with("08")
                        || code.starts_with("57P0")
                        || code.starts_with("53")
                        || code == "40001"
                        || code == "40P01"
                } else {
                    // SQLite: BUSY (5) and LOCKED (6), with their extended
                    // codes.
                    code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
                }
            }
            _ => false,
        }
    }
}

/// The database behind a `Store`.
#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` on the store's pool: `$pool` is the backend's pool and
/// `$db` its sqlx database type (for `QueryBuilder::<$db>`). The body is
/// compiled once per backend.
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $db:ident| $body:expr) => {
        match $store.backend() {
            $crate::store::Backend::Sqlite($pool) => {
                #[allow(dead_code)]
                type $db = ::sqlx::Sqlite;
                $body
            }
            $crate::store::Backend::Postgres($pool) => {
                #[allow(dead_code)]
                type $db = ::sqlx::Postgres;
                $body
            }
        }
    };
}

/// Runs `$body` in a transaction (`$tx`: a `&mut Tx`): `$conn` is the
/// backend's `&mut Transaction` (`&mut **$conn` is its executor) and `$db`
/// its sqlx database type.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident, $db:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite($conn) => {
                #[allow(dead_code)]
                type $db = ::sqlx::Sqlite;
                $body
            }
            $crate::store::Tx::Postgres($conn) => {
                #[allow(dead_code)]
                type $db = ::sqlx::Postgres;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

/// An open transaction on either backend; dropped without `commit`, it
/// rolls back.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// SQLite only: the one connection `begin_write` uses. SQLite lets one
    /// writer in at a time anyway; on a connection of its own the writer's
    /// page cache survives from one transaction to the next. Taken from
    /// the shared pool, nearly every ledger batch ran on a connection
    /// another one had written behind, and SQLite threw its page cache
    /// away and read the pages again (about a tenth of the ledger's CPU in
    /// a profile under `keygate-bench`).
    sqlite_writer: Option<SqlitePool>,
}

impl Store {
    /// Opens and migrates the database `url` names: PostgreSQL for
    /// `postgres://` and `postgresql://`, else SQLite (creating the file
    /// and its folder if needed).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, true).await
    }

    /// `connect`, refusing to create a SQLite file that does not exist (a
    /// mistyped source of `keygate store copy`).
    pub async fn connect_existing(url: &str) -> Result<Self, StoreError> {
        Self::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        let store = if is_postgres_url(url) {
            Self {
                backend: Backend::Postgres(open::postgres(url).await?),
                sqlite_writer: None,
            }
        } else {
            let (pool, writer) = open::sqlite(url, create).await?;
            Self {
                backend: Backend::Sqlite(pool),
                sqlite_writer: Some(writer),
            }
        };
        let filled = usage::backfill_rollups(&store).await?;
        if filled > 0 {
            tracing::info!(
                rows = filled,
                "usage ledger: daily rollups filled from hourly ones"
            );
        }
        let packed = usage::pack_legacy_rows(&store).await?;
        if packed > 0 {
            tracing::info!(
                rows = packed,
                "usage ledger: rows of an earlier version packed into blocks"
            );
        }
        Ok(store)
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// A transaction for reads, or for writes that do not read first.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Backend::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A transaction that reads, then writes. SQLite takes its write lock
    /// at once (`BEGIN IMMEDIATE`): a deferred one would fail with
    /// SQLITE_BUSY if another writer committed between its read and its
    /// write. PostgreSQL locks rows as they are written; callers that must
    /// exclude other replicas take an advisory lock too.
    pub async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(pool) => {
                let writer = self.sqlite_writer.as_ref().unwrap_or(pool);
                Tx::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            Backend::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A read-only transaction whose statements all see one snapshot.
    /// SQLite's transactions do already; PostgreSQL's default (READ
    /// COMMITTED) takes a new snapshot per statement.
    pub async fn begin_snapshot(&self) -> Result<Tx, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Backend::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_or_busy_database_is_worth_a_retry() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(StoreError::Query(sqlx::Error::Io(io)).is_transient());
        assert!(StoreError::Query(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!StoreError::Query(sqlx::Error::PoolClosed).is_transient());
        assert!(!StoreError::Query(sqlx::Error::RowNotFound).is_transient());
    }

    #[tokio::test]
    async fn a_constraint_is_not_transient_and_a_busy_sqlite_is() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/k.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        let Backend::Sqlite(pool) = store.backend() else {
            unreachable!()
        };
        let duplicate = "INSERT INTO provider_stats (provider, data) VALUES ('a', '{}')";
        sqlx::query(duplicate).execute(pool).await.unwrap();
        let error = StoreError::from(sqlx::query(duplicate).execute(pool).await.unwrap_err());
        assert!(!error.is_transient(), "{error}");
        // A second writer while the first holds the lock, without waiting.
        let mut holder = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE provider_stats SET data = '[]'")
            .execute(&mut *holder)
            .await
            .unwrap();
        let mut other = pool.acquire().await.unwrap();
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut *other)
            .await
            .unwrap();
        let busy = sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *other)
            .await
            .unwrap_err();
        assert!(StoreError::from(busy).is_transient());
        holder.rollback().await.unwrap();
    }
}
