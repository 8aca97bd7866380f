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

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pnc_proto::error::PncError;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};

use crate::component::Component;

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
    /// SQLite only: connections kept for hot reads (see [`Database::reads`]).
    kept_for_reads: Option<Arc<KeptConnections>>,
}

/// The PRAGMAs of every SQLite connection. WAL lets readers run beside the one writer;
/// busy_timeout makes a second writer (e.g. `pnc client add` while the server runs) wait
/// instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                              PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// SQLite connections outside the pool, for hot paths that only read. The pool pings a
/// SQLite connection when it is acquired and again when it is released, and each ping is a
/// round trip to the connection's worker thread, as costly as a statement: an EV
/// installation's three reads made five hand-offs. A local file cannot drop a connection
/// the way a server can, so these are kept without pings; `query_only` makes sure nothing
/// writes through them (a write or a transaction left open would outlive the request).
struct KeptConnections {
    url: String,
    idle: Mutex<Vec<AnyConnection>>,
    /// How many exist, idle or lent out.
    opened: Mutex<usize>,
}

/// More readers at once than a 2-core machine runs; past it reads use the pool.
const MAX_KEPT_CONNECTIONS: usize = 4;

impl KeptConnections {
    /// An idle kept connection, a new one while fewer than the bound exist, else `None`.
    async fn take(&self) -> Result<Option<AnyConnection>, sqlx::Error> {
        if let Some(connection) = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            return Ok(Some(connection));
        }
        {
            let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
            if *opened >= MAX_KEPT_CONNECTIONS {
                return Ok(None);
            }
            *opened += 1;
        }
        let connected = async {
            let mut connection = AnyConnection::connect(&self.url).await?;
            connection
                .execute(format!("{SQLITE_PRAGMAS} PRAGMA query_only = ON;").as_str())
                .await?;
            Ok(connection)
        }
        .await;
        if connected.is_err() {
            *self.opened.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        }
        connected.map(Some)
    }

    fn give_back(&self, connection: AnyConnection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }
}

/// A connection for reads only, from [`Database::reads`]: use it for SELECTs, never for a
/// transaction or a write.
pub struct ReadConnection {
    held: Option<Held>,
    kept: Option<Arc<KeptConnections>>,
}

enum Held {
    Pooled(PoolConnection<Any>),
    Kept(AnyConnection),
}

impl Deref for ReadConnection {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self.held.as_ref() {
            Some(Held::Pooled(connection)) => connection,
            Some(Held::Kept(connection)) => connection,
            None => unreachable!("a ReadConnection holds its connection until dropped"),
        }
    }
}

impl DerefMut for ReadConnection {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self.held.as_mut() {
            Some(Held::Pooled(connection)) => connection,
            Some(Held::Kept(connection)) => connection,
            None => unreachable!("a ReadConnection holds its connection until dropped"),
        }
    }
}

impl Drop for ReadConnection {
    fn drop(&mut self) {
        if let (Some(Held::Kept(connection)), Some(kept)) = (self.held.take(), &self.kept) {
            kept.give_back(connection);
        }
    }
}

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
            kept_for_reads: Some(Arc::new(KeptConnections {
                url,
                idle: Mutex::default(),
                opened: Mutex::new(0),
            })),
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

    /// A connection for a request's reads on a hot path: on SQLite one kept outside the
    /// pool (no ping on acquire and release, see [`KeptConnections`]), on PostgreSQL a pooled
    /// one. Only for SELECTs: it is read-only on SQLite.
    pub async fn reads(&self) -> Result<ReadConnection, PncError> {
        if let Some(kept) = &self.kept_for_reads
            && let Some(connection) = kept.take().await.map_err(map_sqlx_error)?
        {
            return Ok(ReadConnection {
                held: Some(Held::Kept(connection)),
                kept: Some(kept.clone()),
            });
        }
        Ok(ReadConnection {
            held: Some(Held::Pooled(self.connection().await?)),
            kept: None,
        })
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
    use sqlx::Row;

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

    async fn count(connection: &mut AnyConnection) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM records")
            .fetch_one(connection)
            .await
            .expect("count")
            .get("n")
    }

    #[tokio::test]
    async fn kept_read_connections_see_every_commit_and_refuse_writes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = sqlite(dir.path()).await;

        let mut reads = database.reads().await.expect("read connection");
        assert!(matches!(reads.held, Some(Held::Kept(_))));
        assert_eq!(count(&mut reads).await, 0);
        // A commit through the pool is visible to the kept connection's next statement.
        sqlx::query("INSERT INTO records (id, name) VALUES (1, 'a')")
            .execute(database.pool())
            .await
            .expect("insert");
        assert_eq!(count(&mut reads).await, 1);

        let write = sqlx::query("INSERT INTO records (id, name) VALUES (2, 'b')")
            .execute(&mut *reads)
            .await;
        assert!(write.is_err(), "a read connection must not write");
        drop(reads);
        assert_eq!(count(&mut database.connection().await.unwrap()).await, 1);
    }

    #[tokio::test]
    async fn kept_connections_are_reused_and_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = sqlite(dir.path()).await;
        let kept = database.kept_for_reads.clone().expect("SQLite keeps reads");

        drop(database.reads().await.unwrap());
        drop(database.reads().await.unwrap());
        assert_eq!(*kept.opened.lock().unwrap(), 1, "the first one came back");

        let mut held = Vec::new();
        for _ in 0..MAX_KEPT_CONNECTIONS + 2 {
            held.push(database.reads().await.unwrap());
        }
        let pooled = held
            .iter()
            .filter(|read| matches!(read.held, Some(Held::Pooled(_))))
            .count();
        assert_eq!(pooled, 2, "past the bound reads use the pool");
        assert_eq!(*kept.opened.lock().unwrap(), MAX_KEPT_CONNECTIONS);
        for read in &mut held {
            assert_eq!(count(read).await, 0);
        }
        drop(held);
        assert_eq!(kept.idle.lock().unwrap().len(), MAX_KEPT_CONNECTIONS);
    }
}
