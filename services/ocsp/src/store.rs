//! The ocsp service's tables: verified upstream responses, one row per CertID.

use pnc_common::PncError;
use pnc_common::db::{Database, map_sqlx_error};
use sqlx::Row;

use crate::cert_id::{CertId, HashAlgorithm};

/// A stored response.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub cert_id: CertId,
    pub der: Vec<u8>,
    pub this_update: i64,
    pub next_update: i64,
    pub produced_at: i64,
    pub refresh_at: i64,
    pub responder_url: String,
}

#[derive(Debug, Clone)]
pub struct ResponseStore {
    database: Database,
}

const COLUMNS: &str = "hash_algorithm, issuer_name_hash, issuer_key_hash, serial, response_der, \
                       this_update, next_update, produced_at, refresh_at, responder_url";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Option<StoredResponse>, sqlx::Error> {
    let algorithm: String = row.try_get("hash_algorithm")?;
    let Some(algorithm) = HashAlgorithm::from_name(&algorithm) else {
        return Ok(None);
    };
    let serial: Vec<u8> = row.try_get("serial")?;
    let Ok(cert_id) = CertId::new(
        algorithm,
        row.try_get("issuer_name_hash")?,
        row.try_get("issuer_key_hash")?,
        &serial,
    ) else {
        return Ok(None);
    };
    Ok(Some(StoredResponse {
        cert_id,
        der: row.try_get("response_der")?,
        this_update: row.try_get("this_update")?,
        next_update: row.try_get("next_update")?,
        produced_at: row.try_get("produced_at")?,
        refresh_at: row.try_get("refresh_at")?,
        responder_url: row.try_get("responder_url")?,
    }))
}

impl ResponseStore {
    pub fn new(database: Database) -> ResponseStore {
        ResponseStore { database }
    }

    pub async fn get(&self, cert_id: &CertId) -> Result<Option<StoredResponse>, PncError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM ocsp_responses WHERE cert_id = $1"
        ))
        .bind(cert_id.key())
        .fetch_optional(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        match row {
            Some(row) => from_row(&row).map_err(map_sqlx_error),
            None => Ok(None),
        }
    }

    /// Keeps `response` unless a newer one (by thisUpdate) is stored already, e.g. by
    /// another replica.
    pub async fn upsert(&self, response: &StoredResponse, fetched_at: i64) -> Result<(), PncError> {
        let cert_id = &response.cert_id;
        sqlx::query(
            "INSERT INTO ocsp_responses (cert_id, hash_algorithm, issuer_name_hash, \
             issuer_key_hash, serial, response_der, this_update, next_update, produced_at, \
             refresh_at, responder_url, fetched_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (cert_id) DO UPDATE SET response_der = excluded.response_der, \
             this_update = excluded.this_update, next_update = excluded.next_update, \
             produced_at = excluded.produced_at, refresh_at = excluded.refresh_at, \
             responder_url = excluded.responder_url, fetched_at = excluded.fetched_at \
             WHERE ocsp_responses.this_update <= excluded.this_update",
        )
        .bind(cert_id.key())
        .bind(cert_id.hash_algorithm().name())
        .bind(cert_id.issuer_name_hash())
        .bind(cert_id.issuer_key_hash())
        .bind(cert_id.serial_magnitude())
        .bind(response.der.as_slice())
        .bind(response.this_update)
        .bind(response.next_update)
        .bind(response.produced_at)
        .bind(response.refresh_at)
        .bind(response.responder_url.as_str())
        .bind(fetched_at)
        .execute(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        Ok(())
    }

    /// Responses whose refresh point has passed and that are still worth refreshing
    /// (not past nextUpdate by more than a day: nobody asked for them since).
    pub async fn due_for_refresh(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<StoredResponse>, PncError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM ocsp_responses WHERE refresh_at <= $1 AND next_update > $2 \
             ORDER BY refresh_at LIMIT $3"
        ))
        .bind(now)
        .bind(now - 86_400)
        .bind(i64::from(limit))
        .fetch_all(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        let mut responses = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(response) = from_row(row).map_err(map_sqlx_error)? {
                responses.push(response);
            }
        }
        Ok(responses)
    }
}
