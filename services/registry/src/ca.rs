//! CA certificates stored once (`ca_certificates`), keyed by SHA-256 fingerprint, and a
//! process-local cache of them. The mapping fingerprint → DER never changes, so the cache
//! is never stale; it is bounded and simply emptied when full.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use pnc_common::PncError;
use pnc_common::db::{Columns, Param, Reader, map_sqlx_error};
use pnc_proto::common::v1::Certificate as CertificateMessage;

use crate::pcp::sha256_hex_upper;

/// Far more than the CAs of any deployment; only a flood of distinct chains reaches it.
const MAX_CACHED: usize = 4096;

#[derive(Clone, Default)]
pub struct CaCertificates {
    cache: Arc<RwLock<HashMap<String, Arc<[u8]>>>>,
}

impl std::fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaCertificates").finish_non_exhaustive()
    }
}

/// Space-separated fingerprints, as the `*_fingerprints` columns hold them.
pub fn split_fingerprints(column: &str) -> Vec<&str> {
    column.split_ascii_whitespace().collect()
}

impl CaCertificates {
    fn cached(&self, fingerprint: &str) -> Option<Arc<[u8]>> {
        self.cache
            .read()
            .ok()
            .and_then(|cache| cache.get(fingerprint).cloned())
    }

    fn remember(&self, fingerprint: String, der: Arc<[u8]>) {
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(fingerprint, der);
        }
    }

    /// Stores a certificate (once) and returns its fingerprint.
    pub async fn store(
        &self,
        connection: &mut sqlx::AnyConnection,
        der: &[u8],
        now: i64,
    ) -> Result<String, PncError> {
        let fingerprint = sha256_hex_upper(der);
        if self.cached(&fingerprint).is_none() {
            sqlx::query(
                "INSERT INTO ca_certificates (fingerprint, der, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (fingerprint) DO NOTHING",
            )
            .bind(&fingerprint)
            .bind(der)
            .bind(now)
            .execute(&mut *connection)
            .await
            .map_err(map_sqlx_error)?;
            // Content-addressed: correct even if the transaction rolls back.
            self.remember(fingerprint.clone(), Arc::from(der));
        }
        Ok(fingerprint)
    }

    /// Stores each certificate and returns their fingerprints, space-separated.
    pub async fn store_all(
        &self,
        connection: &mut sqlx::AnyConnection,
        certificates: &[CertificateMessage],
        now: i64,
    ) -> Result<String, PncError> {
        let mut fingerprints = Vec::with_capacity(certificates.len());
        for certificate in certificates {
            fingerprints.push(self.store(connection, &certificate.der, now).await?);
        }
        Ok(fingerprints.join(" "))
    }

    /// The DER of a stored certificate.
    pub async fn der(
        &self,
        connection: &mut impl Reader,
        fingerprint: &str,
    ) -> Result<Arc<[u8]>, PncError> {
        if let Some(der) = self.cached(fingerprint) {
            return Ok(der);
        }
        let rows = connection
            .select(
                "SELECT der FROM ca_certificates WHERE fingerprint = $1",
                &[Param::Text(fingerprint)],
            )
            .await?;
        let row = rows.first().ok_or_else(|| {
            PncError::internal(format!(
                "stored chain names CA certificate {fingerprint}, which is not stored"
            ))
        })?;
        let der: Arc<[u8]> = Arc::from(row.blob("der")?);
        self.remember(fingerprint.to_string(), der.clone());
        Ok(der)
    }

    /// Appends the certificates named by a `*_fingerprints` column to `chain`.
    pub async fn extend_chain(
        &self,
        connection: &mut impl Reader,
        chain: &mut Vec<CertificateMessage>,
        fingerprints: &str,
    ) -> Result<(), PncError> {
        for fingerprint in split_fingerprints(fingerprints) {
            let der = self.der(connection, fingerprint).await?;
            chain.push(CertificateMessage { der: der.to_vec() });
        }
        Ok(())
    }
}
