//! The root pool's table.

use pnc_common::PncError;
use pnc_common::db::{Database, map_sqlx_error, unix_now};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// One root of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoot {
    pub sha256_fingerprint: String,
    pub root_type: String,
    pub der: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct RootStore {
    database: Database,
}

impl RootStore {
    pub fn new(database: Database) -> RootStore {
        RootStore { database }
    }

    /// Roots of one type (`V2G`, `MO`, …), or all.
    pub async fn list(&self, root_type: Option<&str>) -> Result<Vec<StoredRoot>, PncError> {
        let rows = match root_type {
            Some(root_type) => {
                sqlx::query(
                    "SELECT sha256_fingerprint, root_type, der FROM roots \
                     WHERE root_type = $1 ORDER BY added_at, sha256_fingerprint",
                )
                .bind(root_type)
                .fetch_all(self.database.pool())
                .await
            }
            None => {
                sqlx::query(
                    "SELECT sha256_fingerprint, root_type, der FROM roots \
                     ORDER BY added_at, sha256_fingerprint",
                )
                .fetch_all(self.database.pool())
                .await
            }
        }
        .map_err(map_sqlx_error)?;
        rows.iter()
            .map(|row| {
                Ok(StoredRoot {
                    sha256_fingerprint: row.try_get(0).map_err(map_sqlx_error)?,
                    root_type: row.try_get(1).map_err(map_sqlx_error)?,
                    der: row.try_get(2).map_err(map_sqlx_error)?,
                })
            })
            .collect()
    }

    /// Adds a root the caller has already checked; adding the same root twice is a no-op.
    pub async fn insert_checked(
        &self,
        root_type: &str,
        der: &[u8],
        subject: &str,
        serial_hex: &str,
        not_before: i64,
        not_after: i64,
    ) -> Result<String, PncError> {
        let fingerprint = hex::encode_upper(Sha256::digest(der));
        sqlx::query(
            "INSERT INTO roots (sha256_fingerprint, root_type, der, subject, serial_hex, \
             not_before, not_after, ctl_tags, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, '[]', $8) \
             ON CONFLICT (sha256_fingerprint) DO NOTHING",
        )
        .bind(&fingerprint)
        .bind(root_type)
        .bind(der)
        .bind(subject)
        .bind(serial_hex)
        .bind(not_before)
        .bind(not_after)
        .bind(unix_now())
        .execute(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        Ok(fingerprint)
    }
}
