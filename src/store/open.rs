//! Opening either database and running its migrations, and the form of a
//! database URL that may be printed (no password).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use super::StoreError;

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` with its password (`user:password@`, `?password=`) replaced by
/// `***`, for error messages and logs.
pub fn redacted_url(url: &str) -> String {
    let mut text = url.to_string();
    if let Some(scheme_end) = text.find("://") {
        let rest = scheme_end + 3;
        let authority_end = text[rest..]
            .find(['/', '?', '#'])
            .map_or(text.len(), |i| rest + i);
        if let Some(at) = text[rest..authority_end].rfind('@').map(|i| rest + i)
            && let Some(colon) = text[rest..at].find(':').map(|i| rest + i)
        {
            text.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(query_start) = text.find('?') {
        let (head, query) = text.split_at(query_start + 1);
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                    format!("{name}=***")
                }
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        text = format!("{head}{query}");
    }
    text
}

fn open_error(url: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |source| StoreError::Open {
        url: redacted_url(url),
        source,
    }
}

/// The writer connection's page cache, in KiB (negative, as SQLite takes
/// it): 256 KB instead of SQLite's 2 MB. The ledger writer appends blocks,
/// whose pages it never reads again, and rereads only the few rollup rows a
/// batch touches: under `keygate-bench` (`--compare --together`) the
/// smaller cache cost no measurable CPU and took 1-1.5 MB off keygate's
/// peak RSS (the hot path's target is 30 MB, ledger on). The shared pool's
/// connections, which serve the admin routes' reads, keep SQLite's 2 MB.
const WRITER_CACHE_SIZE: &str = "-256";

/// Opens (creating the file and its folder if needed and `create`) and
/// migrates; returns the shared pool and the writer's own one-connection
/// pool (`Store::sqlite_writer`).
pub(super) async fn sqlite(
    url: &str,
    create: bool,
) -> Result<(SqlitePool, SqlitePool), StoreError> {
    let open_error = open_error(url);
    let options = SqliteConnectOptions::from_str(url)
        .map_err(&open_error)?
        .create_if_missing(create)
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
    if !create && !options.get_filename().exists() {
        return Err(open_error(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such database file",
        ))));
    }
    if let Some(parent) = options
        .get_filename()
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|e| open_error(sqlx::Error::Io(e)))?;
    }
    owner_only(options.get_filename()).map_err(|e| open_error(sqlx::Error::Io(e)))?;
    // sqlx pings a pooled connection before handing it out, by default: a
    // round trip to the connection's thread that only a network database
    // needs (SQLite runs in this process). The ledger writer takes its
    // connection a few times a second.
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await
        .map_err(&open_error)?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(options.pragma("cache_size", WRITER_CACHE_SIZE))
        .await
        .map_err(&open_error)?;
    Ok((pool, writer))
}

/// Connects and migrates (sqlx's migrator holds an advisory lock, so
/// replicas starting together migrate once).
pub(super) async fn postgres(url: &str) -> Result<PgPool, StoreError> {
    let open_error = open_error(url);
    let options = PgConnectOptions::from_str(url)
        .map_err(&open_error)?
        .application_name("keygate");
    let pool = PgPoolOptions::new()
        .max_connections(5)
        // sqlx waits 30 s by default for a connection. While the database
        // is unreachable, an admin call should fail within seconds, and the
        // background writers retry on their own schedule.
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(&open_error)?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_writer_connection_has_the_small_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/keygate.db", dir.path().display());
        let (pool, writer) = sqlite(&url, true).await.unwrap();
        let cache_size = |pool: SqlitePool| async move {
            sqlx::query_scalar::<_, i64>("PRAGMA cache_size")
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        assert_eq!(cache_size(writer).await, -256);
        assert_eq!(cache_size(pool).await, -2000, "SQLite's default");
    }

    #[test]
    fn passwords_are_masked_wherever_the_url_carries_them() {
        assert_eq!(
            redacted_url("postgres://keygate:s3cret@db:5432/keygate"),
            "postgres://keygate:***@db:5432/keygate"
        );
        assert_eq!(
            redacted_url("postgresql://u:p%40ss@db/k?sslmode=require&password=two"),
            "postgresql://u:***@db/k?sslmode=require&password=***"
        );
        for plain in [
            "postgres://keygate@db/keygate",
            "sqlite://data/keygate.db",
            "sqlite:k.db?mode=rwc",
        ] {
            assert_eq!(redacted_url(plain), plain);
        }
    }
}
