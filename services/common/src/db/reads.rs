//! Reads on a hot path, written once for both drivers.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every statement is
//! two thread hand-offs, and on a busy 2-core machine each wake-up pre-empts a tokio
//! worker: the EV installation's context read was a quarter of its CPU. On SQLite a
//! [`ReadConnection`] therefore reads with rusqlite, on the libsqlite3 that sqlx links,
//! inline on the caller's thread: a lookup by key in a file the page cache holds takes
//! microseconds, less than one hand-off. It never waits for a lock on that thread: the
//! connection's busy timeout is zero, and a statement that meets a lock (rare in WAL
//! mode, where readers do not wait for the writer) is run again on the pool, whose worker
//! thread may wait. On PostgreSQL it is a pooled sqlx connection.
//!
//! Code that maps rows takes any [`Reader`] and any [`Columns`], so the same mapping serves
//! the hot path and every other caller (sqlx rows on pool and transaction connections).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use pnc_proto::error::PncError;
use rusqlite::types::Value;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Row};

use super::map_sqlx_error;

/// A value bound to a statement's next `$N`.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Text(&'a str),
    Blob(&'a [u8]),
    Int(i64),
}

/// A row's columns by name, whichever driver read it.
pub trait Columns: Sync {
    fn int(&self, column: &str) -> Result<i64, PncError>;
    fn text(&self, column: &str) -> Result<String, PncError>;
    /// `None` for NULL, as a LEFT JOIN yields.
    fn optional_text(&self, column: &str) -> Result<Option<String>, PncError>;
    fn blob(&self, column: &str) -> Result<Vec<u8>, PncError>;
}

/// Something that runs a SELECT with bound parameters and returns its rows.
pub trait Reader: Send {
    type Row: Columns + Send;

    fn select<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> impl Future<Output = Result<Vec<Self::Row>, PncError>> + Send + 'a;
}

impl Columns for AnyRow {
    fn int(&self, column: &str) -> Result<i64, PncError> {
        self.try_get(column).map_err(map_sqlx_error)
    }

    fn text(&self, column: &str) -> Result<String, PncError> {
        self.try_get(column).map_err(map_sqlx_error)
    }

    fn optional_text(&self, column: &str) -> Result<Option<String>, PncError> {
        self.try_get(column).map_err(map_sqlx_error)
    }

    fn blob(&self, column: &str) -> Result<Vec<u8>, PncError> {
        self.try_get(column).map_err(map_sqlx_error)
    }
}

impl Reader for AnyConnection {
    type Row = AnyRow;

    fn select<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> impl Future<Output = Result<Vec<AnyRow>, PncError>> + Send + 'a {
        let mut query = sqlx::query::<Any>(sql);
        for param in params {
            query = match *param {
                Param::Text(text) => query.bind(text),
                Param::Blob(blob) => query.bind(blob),
                Param::Int(int) => query.bind(int),
            };
        }
        async move { query.fetch_all(self).await.map_err(map_sqlx_error) }
    }
}

impl Reader for PoolConnection<Any> {
    type Row = AnyRow;

    fn select<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> impl Future<Output = Result<Vec<AnyRow>, PncError>> + Send + 'a {
        (**self).select(sql, params)
    }
}

/// A row read inline with rusqlite: the statement's column names and the row's values.
#[derive(Debug, Clone)]
pub struct InlineRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl InlineRow {
    fn value(&self, column: &str) -> Result<&Value, PncError> {
        self.columns
            .iter()
            .position(|name| name == column)
            .map(|index| &self.values[index])
            .ok_or_else(|| {
                tracing::error!(
                    column,
                    "a statement does not return the column its caller reads"
                );
                PncError::internal("storage error")
            })
    }
}

fn wrong_type(column: &str, wanted: &str, found: &Value) -> PncError {
    tracing::error!(column, wanted, found = ?found.data_type(), "unexpected column type");
    PncError::internal("storage error")
}

impl Columns for InlineRow {
    fn int(&self, column: &str) -> Result<i64, PncError> {
        match self.value(column)? {
            Value::Integer(int) => Ok(*int),
            other => Err(wrong_type(column, "integer", other)),
        }
    }

    fn text(&self, column: &str) -> Result<String, PncError> {
        self.optional_text(column)?
            .ok_or_else(|| wrong_type(column, "text", &Value::Null))
    }

    fn optional_text(&self, column: &str) -> Result<Option<String>, PncError> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text.clone())),
            other => Err(wrong_type(column, "text", other)),
        }
    }

    fn blob(&self, column: &str) -> Result<Vec<u8>, PncError> {
        match self.value(column)? {
            Value::Blob(blob) => Ok(blob.clone()),
            other => Err(wrong_type(column, "blob", other)),
        }
    }
}

/// A row of a [`ReadConnection`].
pub enum ReadRow {
    Pooled(AnyRow),
    Inline(InlineRow),
}

impl Columns for ReadRow {
    fn int(&self, column: &str) -> Result<i64, PncError> {
        match self {
            ReadRow::Pooled(row) => row.int(column),
            ReadRow::Inline(row) => row.int(column),
        }
    }

    fn text(&self, column: &str) -> Result<String, PncError> {
        match self {
            ReadRow::Pooled(row) => row.text(column),
            ReadRow::Inline(row) => row.text(column),
        }
    }

    fn optional_text(&self, column: &str) -> Result<Option<String>, PncError> {
        match self {
            ReadRow::Pooled(row) => row.optional_text(column),
            ReadRow::Inline(row) => row.optional_text(column),
        }
    }

    fn blob(&self, column: &str) -> Result<Vec<u8>, PncError> {
        match self {
            ReadRow::Pooled(row) => row.blob(column),
            ReadRow::Inline(row) => row.blob(column),
        }
    }
}

/// Inline SQLite connections, kept between requests: opening one costs more than the
/// statements a request runs on it. `query_only` makes sure nothing writes through them.
pub(super) struct KeptConnections {
    file: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// How many exist, idle or lent out.
    opened: Mutex<usize>,
}

/// More readers at once than a 2-core machine runs (a read holds its thread, so at most
/// one per tokio worker is busy); past it reads use the pool.
pub(super) const MAX_KEPT_CONNECTIONS: usize = 4;

impl KeptConnections {
    pub(super) fn new(file: &Path) -> KeptConnections {
        KeptConnections {
            file: file.to_path_buf(),
            idle: Mutex::default(),
            opened: Mutex::new(0),
        }
    }

    /// An idle kept connection, a new one while fewer than the bound exist, else `None`.
    fn take(&self) -> Result<Option<rusqlite::Connection>, rusqlite::Error> {
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
        let connected = rusqlite::Connection::open_with_flags(
            &self.file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|connection| {
            // busy_timeout 0: a lock is handed to the pool, never waited for inline.
            connection.execute_batch("PRAGMA busy_timeout = 0; PRAGMA query_only = ON;")?;
            Ok(connection)
        });
        if connected.is_err() {
            *self.opened.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        }
        connected.map(Some)
    }

    fn give_back(&self, connection: rusqlite::Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }

    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        (
            *self.opened.lock().unwrap_or_else(PoisonError::into_inner),
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
        )
    }
}

/// A connection for a request's reads, from [`super::Database::reads`]: SELECTs only.
pub struct ReadConnection {
    held: Held,
}

enum Held {
    Pooled(PoolConnection<Any>),
    Inline {
        /// `Some` until dropped.
        connection: Option<rusqlite::Connection>,
        kept: Arc<KeptConnections>,
        /// Where a statement that meets a lock runs instead.
        pool: AnyPool,
    },
}

impl ReadConnection {
    /// An inline connection on SQLite while fewer than the bound are lent out.
    pub(super) async fn open(
        pool: &AnyPool,
        kept: Option<&Arc<KeptConnections>>,
    ) -> Result<ReadConnection, PncError> {
        if let Some(kept) = kept {
            match kept.take() {
                Ok(Some(connection)) => {
                    return Ok(ReadConnection {
                        held: Held::Inline {
                            connection: Some(connection),
                            kept: kept.clone(),
                            pool: pool.clone(),
                        },
                    });
                }
                Ok(None) => {}
                // The pool can still read: an inline connection is an optimisation.
                Err(error) => {
                    tracing::warn!(%error, "cannot open an inline SQLite read connection")
                }
            }
        }
        let connection = pool.acquire().await.map_err(map_sqlx_error)?;
        Ok(ReadConnection {
            held: Held::Pooled(connection),
        })
    }

    /// Whether statements run inline (SQLite) rather than on a pooled connection.
    pub fn is_inline(&self) -> bool {
        matches!(self.held, Held::Inline { .. })
    }
}

impl Drop for ReadConnection {
    fn drop(&mut self) {
        if let Held::Inline {
            connection, kept, ..
        } = &mut self.held
            && let Some(connection) = connection.take()
        {
            kept.give_back(connection);
        }
    }
}

impl Reader for ReadConnection {
    type Row = ReadRow;

    async fn select<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> Result<Vec<ReadRow>, PncError> {
        let pool = match &mut self.held {
            Held::Pooled(connection) => {
                let rows = connection.select(sql, params).await?;
                return Ok(rows.into_iter().map(ReadRow::Pooled).collect());
            }
            Held::Inline {
                connection, pool, ..
            } => {
                let Some(connection) = connection.as_ref() else {
                    return Err(PncError::internal("read connection already returned"));
                };
                match fetch_inline(connection, sql, params) {
                    Ok(rows) => return Ok(rows.into_iter().map(ReadRow::Inline).collect()),
                    Err(error) if is_locked(&error) => pool.clone(),
                    Err(error) => {
                        tracing::error!(%error, "database error");
                        return Err(PncError::internal("storage error"));
                    }
                }
            }
        };
        let mut connection = pool.acquire().await.map_err(map_sqlx_error)?;
        let rows = connection.select(sql, params).await?;
        Ok(rows.into_iter().map(ReadRow::Pooled).collect())
    }
}

fn is_locked(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Runs one SELECT on the caller's thread. Statements are prepared once per connection.
fn fetch_inline(
    connection: &rusqlite::Connection,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<InlineRow>, rusqlite::Error> {
    let mut statement = connection.prepare_cached(sql)?;
    if statement.parameter_count() != params.len() {
        return Err(rusqlite::Error::InvalidParameterCount(
            params.len(),
            statement.parameter_count(),
        ));
    }
    // `$N` placeholders are numbered by first appearance, as the SQL rules in `db` require.
    for (index, param) in params.iter().enumerate() {
        match *param {
            Param::Text(text) => statement.raw_bind_parameter(index + 1, text)?,
            Param::Blob(blob) => statement.raw_bind_parameter(index + 1, blob)?,
            Param::Int(int) => statement.raw_bind_parameter(index + 1, int)?,
        }
    }
    let columns: Arc<[String]> = statement
        .column_names()
        .into_iter()
        .map(String::from)
        .collect();
    let mut rows = statement.raw_query();
    let mut read = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|index| row.get::<_, Value>(index))
            .collect::<Result<Vec<_>, _>>()?;
        read.push(InlineRow {
            columns: columns.clone(),
            values,
        });
    }
    Ok(read)
}
