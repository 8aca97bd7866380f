//! Storage: one code path over SQLite (embedded default) and PostgreSQL (production).
//!
//! Each service owns its data. On SQLite it gets its own file, `data_dir/<service>.db`;
//! on PostgreSQL its own schema, named after the service, in the shared database. Its
//! migrations (`migrations/<service>/{postgres,sqlite}`) run at start; on PostgreSQL the
//! migrator holds an advisory lock, so replicas starting together apply them once.
//!
//! Queries go through `sqlx::Any`, so services write their SQL once. The rules that keep
//! one SQL text valid on both backends:
//! - placeholders are `$1, $2, …` and first appear in ascending order (SQLite numbers
//!   `$N` parameters by first appearance);
//! - columns hold only TEXT, BLOB/BYTEA, BIGINT/INTEGER (times as Unix seconds, flags as
//!   0/1) — the types `Any` maps on both sides;
//! - name the columns; no `SELECT *` (boulder's rule: a column added later must not change
//!   what old code reads).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use pnc_proto::error::PncError;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::component::Component;

mod reads;

use reads::KeptConnections;
pub use reads::{Columns, InlineRow, Param, ReadConnection, ReadRow, Reader};

/// Which database a service keeps its data in.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// One SQLite file per service in this directory.
    Sqlite { dir: std::path::PathBuf },
    /// A PostgreSQL database; each service uses its own schema in it.
    Postgres { url: String },
}

impl std::fmt::Debug for StorageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageLocation::Sqlite { dir } => write!(f, "Sqlite({})", dir.display()),
            StorageLocation::Postgres { url } => {
                write!(f, "Postgres({})", crate::config::redact_url(url))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A service's migrations for both backends, embedded at compile time with
/// `sqlx::migrate!("../../migrations/<service>/postgres")` and `…/sqlite`.
pub struct Migrations {
    pub postgres: &'static Migrator,
    pub sqlite: &'static Migrator,
}

/// A connection pool to one service's data.
#[derive(Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: inline connections kept for hot reads (see [`Database::reads`]).
    kept_for_reads: Option<Arc<KeptConnections>>,
}

/// The PRAGMAs of every SQLite connection. WAL lets readers run beside the one writer;
/// busy_timeout makes a second writer (e.g. `pnc client add` while the server runs) wait
/// instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                              PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Errors while opening a database. Start-up turns them into a clear message and a
/// non-zero exit.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot reach the {backend:?} database for {service}: {source}")]
    Connect {
        service: Component,
        backend: Backend,
        source: sqlx::Error,
    },
    #[error("migrations of {service} failed: {source}")]
    Migrate {
        service: Component,
        source: sqlx::migrate::MigrateError,
    },
    #[error("cannot create the data directory {dir}: {source}")]
    DataDir {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Database {
    /// Opens (creating if needed) the service's database and applies its migrations.
    pub async fn open(
        service: Component,
        location: &StorageLocation,
        migrations: &Migrations,
    ) -> Result<Database, OpenError> {
        sqlx::any::install_default_drivers();
        match location {
            StorageLocation::Sqlite { dir } => Self::open_sqlite(service, dir, migrations).await,
            StorageLocation::Postgres { url } => {
                Self::open_postgres(service, url, migrations).await
            }
        }
    }

    async fn open_sqlite(
        service: Component,
        dir: &Path,
        migrations: &Migrations,
    ) -> Result<Database, OpenError> {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::DataDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let file = dir.join(format!("{}.db", service.name()));
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let connect_error = |source| OpenError::Connect {
            service,
            backend: Backend::Sqlite,
            source,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            // A local file does not drop connections: the ping before every acquire was a
            // round trip to the connection's worker thread for nothing.
            .test_before_acquire(false)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    connection.execute(SQLITE_PRAGMAS).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(connect_error)?;
        migrations
            .sqlite
            .run(&pool)
            .await
            .map_err(|source| OpenError::Migrate { service, source })?;
        Ok(Database {
            pool,
            backend: Backend::Sqlite,
            kept_for_reads: Some(Arc::new(KeptConnections::new(&file))),
        })
    }

    async fn open_postgres(
        service: Component,
        url: &str,
        migrations: &Migrations,
    ) -> Result<Database, OpenError> {
        let connect_error = |source| OpenError::Connect {
            service,
            backend: Backend::Postgres,
            source,
        };
        let schema = service.name();
        // The schema must exist before a connection can put it on its search path.
        {
            let bootstrap = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(connect_error)?;
            // Two replicas may race here; IF NOT EXISTS can still collide on the catalog's
            // unique index, so a duplicate-schema error counts as success.
            if let Err(error) = bootstrap
                .execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                .await
            {
                let duplicate = error
                    .as_database_error()
                    .and_then(|db| db.code())
                    .is_some_and(|code| code == "23505" || code == "42P06");
                if !duplicate {
                    return Err(connect_error(error));
                }
            }
            bootstrap.close().await;
        }
        let search_path = format!("SET search_path TO {schema}");
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            // sqlx pings every pooled connection before handing it out: a second round
            // trip per query (a look-up's p99 was dominated by it). A dead connection fails
            // its query instead (I/O error: Unavailable) and is dropped from the pool.
            .test_before_acquire(false)
            .after_connect(move |connection, _| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    connection.execute(search_path.as_str()).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(connect_error)?;
        migrations
            .postgres
            .run(&pool)
            .await
            .map_err(|source| OpenError::Migrate { service, source })?;
        Ok(Database {
            pool,
            backend: Backend::Postgres,
            kept_for_reads: None,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// One pooled connection, for several statements in a row: on SQLite every acquire is
    /// a hand-off to the pool's worker, so a request's reads share one.
    pub async fn connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, PncError> {
        self.pool.acquire().await.map_err(map_sqlx_error)
    }

    /// A connection for a request's reads on a hot path: on SQLite an inline one (rusqlite
    /// on the caller's thread, no worker hand-offs; see [`reads`]), on PostgreSQL a pooled
    /// one. Only for SELECTs: it is read-only on SQLite.
    pub async fn reads(&self) -> Result<ReadConnection, PncError> {
        ReadConnection::open(&self.pool, self.kept_for_reads.as_ref()).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers, for health checks.
    pub async fn ping(&self) -> Result<(), PncError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(map_sqlx_error)
    }
}

impl StorageLocation {
    /// SQLite in `data_dir` unless a database URL is given.
    pub fn from_config(
        database_url: Option<&str>,
        data_dir: &Path,
    ) -> Result<StorageLocation, String> {
        match database_url {
            None => Ok(StorageLocation::Sqlite {
                dir: data_dir.to_path_buf(),
            }),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StorageLocation::Postgres {
                    url: url.to_string(),
                })
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                Ok(StorageLocation::Sqlite {
                    dir: std::path::PathBuf::from_str(path).map_err(|e| e.to_string())?,
                })
            }
            Some(url) => Err(format!(
                "database_url must start with postgres:// (got `{}`)",
                crate::config::redact_url(url)
            )),
        }
    }
}

/// Maps a storage error to the error the caller sees: constraint violations are the
/// caller's problem, anything else means the database is not usable right now.
pub fn map_sqlx_error(error: sqlx::Error) -> PncError {
    match &error {
        sqlx::Error::RowNotFound => PncError::not_found("no such record"),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            PncError::already_exists("a record with this identity exists already")
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => PncError::new(
            pnc_proto::error::ErrorKind::FailedPrecondition,
            "a referenced record does not exist",
        ),
        // Connection-level SQLSTATEs: connection exceptions (08), the server shutting down
        // or refusing (57P0x), resources exhausted (53), the database gone (3D000).
        sqlx::Error::Database(db)
            if db.code().is_some_and(|code| {
                code.starts_with("08")
                    || code.starts_with("57P0")
                    || code.starts_with("53")
                    || code == "3D000"
            }) =>
        {
            tracing::warn!(error = %error, "database unavailable");
            PncError::unavailable("the database is unavailable")
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => {
            tracing::warn!(error = %error, "database unavailable");
            PncError::unavailable("the database is unavailable")
        }
        _ => {
            tracing::error!(error = %error, "database error");
            PncError::internal("storage error")
        }
    }
}

/// Seconds since the Unix epoch, the time format of every table.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

    async fn sqlite(dir: &Path) -> Database {
        let migrations = Migrations {
            postgres: &NO_MIGRATIONS,
            sqlite: &NO_MIGRATIONS,
        };
        let location = StorageLocation::Sqlite {
            dir: dir.to_path_buf(),
        };
        let database = Database::open(Component::Registry, &location, &migrations)
            .await
            .expect("open SQLite");
        sqlx::query("CREATE TABLE records (id BIGINT PRIMARY KEY, name TEXT NOT NULL)")
            .execute(database.pool())
            .await
            .expect("create table");
        database
    }

    async fn count(reader: &mut impl Reader) -> i64 {
        let rows = reader
            .select("SELECT COUNT(*) AS n FROM records", &[])
            .await
            .expect("count");
        rows[0].int("n").expect("n")
    }

    #[tokio::test]
    async fn inline_reads_see_every_commit_and_refuse_writes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = sqlite(dir.path()).await;

        let mut reads = database.reads().await.expect("read connection");
        assert!(reads.is_inline());
        assert_eq!(count(&mut reads).await, 0);
        // A commit through the pool is visible to the inline connection's next statement.
        sqlx::query("INSERT INTO records (id, name) VALUES (1, 'a')")
            .execute(database.pool())
            .await
            .expect("insert");
        assert_eq!(count(&mut reads).await, 1);

        let write = reads
            .select(
                "INSERT INTO records (id, name) VALUES (2, 'b') RETURNING id",
                &[],
            )
            .await;
        assert!(write.is_err(), "a read connection must not write");
        drop(reads);
        assert_eq!(count(&mut *database.connection().await.unwrap()).await, 1);
    }

    #[tokio::test]
    async fn inline_and_pooled_rows_read_the_same() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = sqlite(dir.path()).await;
        sqlx::query("INSERT INTO records (id, name) VALUES (7, 'seven'), (8, 'eight')")
            .execute(database.pool())
            .await
            .expect("insert");
        let sql = "SELECT r.id, r.name, CAST(r.name AS BLOB) AS raw, other.name AS missing \
                   FROM records r LEFT JOIN records other ON other.id = r.id + 100 \
                   WHERE r.id = $1 OR r.name = $2 ORDER BY r.id";
        let params = [Param::Int(8), Param::Text("seven")];
        let inline = database.reads().await.unwrap().select(sql, &params).await;
        let pooled = (*database.connection().await.unwrap())
            .select(sql, &params)
            .await;
        let (inline, pooled) = (inline.expect("inline"), pooled.expect("pooled"));
        assert!(matches!(inline[0], ReadRow::Inline(_)));
        assert_eq!(inline.len(), 2);
        assert_eq!(pooled.len(), 2);
        for (inline, pooled) in inline.iter().zip(&pooled) {
            assert_eq!(inline.int("id").unwrap(), pooled.int("id").unwrap());
            assert_eq!(inline.text("name").unwrap(), pooled.text("name").unwrap());
            assert_eq!(inline.blob("raw").unwrap(), pooled.blob("raw").unwrap());
            assert_eq!(inline.optional_text("missing").unwrap(), None);
            assert_eq!(pooled.optional_text("missing").unwrap(), None);
        }
        assert_eq!(inline[0].text("name").unwrap(), "seven");
        // A wrong column or type is an error, not a panic or a default.
        assert!(inline[0].int("name").is_err());
        assert!(inline[0].text("nope").is_err());
        assert!(inline[0].text("missing").is_err());
        // As many parameters as placeholders, or nothing runs.
        let short = database
            .reads()
            .await
            .unwrap()
            .select(sql, &params[..1])
            .await;
        assert!(short.is_err());
    }

    #[tokio::test]
    async fn a_locked_database_is_read_on_the_pool_not_waited_for_inline() {
        // A file in rollback-journal mode, where a writer's exclusive lock keeps readers
        // out (in WAL mode this is rare: recovery, another process's exclusive mode).
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("locked.db");
        let holder = rusqlite::Connection::open(&file).unwrap();
        holder
            .execute_batch(
                "PRAGMA journal_mode = DELETE; \
                 CREATE TABLE records (id BIGINT PRIMARY KEY, name TEXT NOT NULL); \
                 INSERT INTO records (id, name) VALUES (1, 'a');",
            )
            .unwrap();
        // As `Database::connect` does: without it the test passes only after another
        // test in the process has installed the drivers.
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    connection.execute("PRAGMA busy_timeout = 5000").await?;
                    Ok(())
                })
            })
            .connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        drop(pool.acquire().await.unwrap());
        let kept = Arc::new(KeptConnections::new(&file));

        holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
        let mut reads = ReadConnection::open(&pool, Some(&kept)).await.unwrap();
        assert!(reads.is_inline());
        let started = std::time::Instant::now();
        let read = tokio::spawn(async move { count(&mut reads).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !read.is_finished(),
            "the statement waits on the pool, not fails inline"
        );
        holder.execute_batch("COMMIT;").unwrap();
        assert_eq!(read.await.unwrap(), 1);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn kept_connections_are_reused_and_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = sqlite(dir.path()).await;
        let kept = database.kept_for_reads.clone().expect("SQLite keeps reads");

        drop(database.reads().await.unwrap());
        drop(database.reads().await.unwrap());
        assert_eq!(kept.counts(), (1, 1), "the first one came back");

        let mut held = Vec::new();
        for _ in 0..reads::MAX_KEPT_CONNECTIONS + 2 {
            held.push(database.reads().await.unwrap());
        }
        let pooled = held.iter().filter(|read| !read.is_inline()).count();
        assert_eq!(pooled, 2, "past the bound reads use the pool");
        assert_eq!(kept.counts(), (reads::MAX_KEPT_CONNECTIONS, 0));
        for read in &mut held {
            assert_eq!(count(read).await, 0);
        }
        drop(held);
        assert_eq!(
            kept.counts(),
            (reads::MAX_KEPT_CONNECTIONS, reads::MAX_KEPT_CONNECTIONS)
        );
    }
}
