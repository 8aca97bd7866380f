//! Every certificate pnc issued, with its revocation status (`pnc.registry.v1.IssuedCertificates`).
//!
//! The ocsp service answers for pnc's own CAs from these records and builds their CRLs from
//! them. Records are keyed by (issuer SKI, serial), as cfssl keys its certificate records;
//! the SHA-1 hash of the issuer's key is kept beside it so that a record can be found from
//! an RFC 6960 CertID alone. Serials are stored as big-endian magnitudes without sign
//! padding, the form `pnc_pki::Certificate::serial` gives.

use pnc_common::PncError;
use pnc_common::db::{Database, map_sqlx_error, unix_now};
use pnc_proto::common::v1::Certificate as CertificateMessage;
use pnc_proto::principal::{Role, from_metadata};
use pnc_proto::registry::v1::issued_certificates_server::IssuedCertificates;
use pnc_proto::registry::v1::{
    GetIssuedRequest, IssuedCertificate, IssuedStatus, ListIssuedRequest, ListIssuedResponse,
    ListRevokedRequest, ListRevokedResponse, RecordIssuedRequest, RevokeRequest,
    get_issued_request,
};
use sha1::{Digest, Sha1};
use sqlx::Row;
use sqlx::any::AnyRow;
use tonic::{Request, Response, Status};

/// The largest page [`IssuedStore::list_issued`] returns.
pub const MAX_PAGE: u32 = 1000;

/// RFC 5280 §5.3.1 CRLReason codes pnc accepts (7 is not used).
const VALID_REASONS: [i32; 10] = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10];

/// What the store needs of a certificate and its issuer, checked once.
#[derive(Debug, Clone)]
pub struct NewIssued {
    pub certificate_der: Vec<u8>,
    pub issuer_key_id: Vec<u8>,
    pub issuer_key_hash_sha1: Vec<u8>,
    pub serial: Vec<u8>,
    pub not_after: i64,
    pub profile: String,
}

impl NewIssued {
    /// Parses the certificate and its issuer and checks that one issued the other (by name
    /// and key identifier; the signature was made by pnc's own CA moments ago).
    pub fn from_certificates(
        certificate_der: &[u8],
        issuer_der: &[u8],
        profile: &str,
    ) -> Result<NewIssued, PncError> {
        let certificate = pnc_pki::Certificate::from_der(certificate_der)
            .map_err(|error| PncError::invalid(format!("certificate: {error}")))?;
        let issuer = pnc_pki::Certificate::from_der(issuer_der)
            .map_err(|error| PncError::invalid(format!("issuer certificate: {error}")))?;
        if !certificate.issuer().matches(issuer.subject()) {
            return Err(PncError::invalid(
                "the certificate's issuer name is not the issuer certificate's subject",
            ));
        }
        let issuer_key_id = issuer
            .subject_key_identifier()
            .ok_or_else(|| PncError::invalid("the issuer certificate has no subjectKeyIdentifier"))?
            .to_vec();
        if let Some(authority_key_id) = certificate.authority_key_identifier()
            && authority_key_id != issuer_key_id.as_slice()
        {
            return Err(PncError::invalid(
                "the certificate's authorityKeyIdentifier is not the issuer's key identifier",
            ));
        }
        let profile = profile.trim();
        if profile.is_empty() || profile.len() > 64 {
            return Err(PncError::invalid("profile must be 1 to 64 characters"));
        }
        if certificate.serial().is_empty() || certificate.serial().len() > 20 {
            return Err(PncError::invalid("serial number must be 1 to 20 bytes"));
        }
        Ok(NewIssued {
            certificate_der: certificate_der.to_vec(),
            issuer_key_hash_sha1: issuer_key_hash_sha1(issuer.public_key_spki_der())?,
            issuer_key_id,
            serial: certificate.serial().to_vec(),
            not_after: certificate.not_after().unix_timestamp(),
            profile: profile.to_string(),
        })
    }
}

/// SHA-1 of the value of the subjectPublicKey BIT STRING (RFC 6960 §4.1.1 issuerKeyHash).
pub fn issuer_key_hash_sha1(spki_der: &[u8]) -> Result<Vec<u8>, PncError> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|error| PncError::invalid(format!("issuer public key: {error}")))?;
    Ok(Sha1::digest(&spki.subject_public_key.data).to_vec())
}

const COLUMNS: &str = "certificate_der, issuer_key_id, serial, profile, not_after, revoked, \
                       revoked_at, revocation_reason, issuer_key_hash_sha1";

fn from_row(row: &AnyRow) -> Result<IssuedCertificate, sqlx::Error> {
    let revoked: i64 = row.try_get("revoked")?;
    Ok(IssuedCertificate {
        certificate: Some(CertificateMessage {
            der: row.try_get("certificate_der")?,
        }),
        issuer_key_id: row.try_get("issuer_key_id")?,
        serial: row.try_get("serial")?,
        profile: row.try_get("profile")?,
        not_after: row.try_get("not_after")?,
        status: if revoked != 0 {
            IssuedStatus::Revoked
        } else {
            IssuedStatus::Good
        } as i32,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get::<i64, _>("revocation_reason")? as i32,
        issuer_key_hash_sha1: row.try_get("issuer_key_hash_sha1")?,
    })
}

/// Strips sign padding so that `00 8F` and `8F` name the same serial.
fn normalized_serial(serial: &[u8]) -> Vec<u8> {
    let first = serial
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(serial.len());
    serial[first..].to_vec()
}

/// The issued-certificate records.
#[derive(Debug, Clone)]
pub struct IssuedStore {
    database: Database,
}

impl IssuedStore {
    pub fn new(database: Database) -> IssuedStore {
        IssuedStore { database }
    }

    /// Records a certificate in its own transaction. Idempotent: recording the same
    /// certificate again returns the stored record.
    pub async fn record(&self, issued: &NewIssued) -> Result<IssuedCertificate, PncError> {
        let mut transaction = self.database.pool().begin().await.map_err(map_sqlx_error)?;
        let record = record_in(&mut transaction, issued).await?;
        transaction.commit().await.map_err(map_sqlx_error)?;
        Ok(record)
    }

    /// Revokes one certificate; a second revocation keeps the first reason and time.
    pub async fn revoke(
        &self,
        issuer_key_id: &[u8],
        serial: &[u8],
        reason: i32,
    ) -> Result<IssuedCertificate, PncError> {
        if !VALID_REASONS.contains(&reason) {
            return Err(PncError::invalid(format!(
                "{reason} is not an RFC 5280 CRLReason code"
            )));
        }
        let serial = normalized_serial(serial);
        let mut transaction = self.database.pool().begin().await.map_err(map_sqlx_error)?;
        let updated = sqlx::query(
            "UPDATE issued_certificates SET revoked = 1, revoked_at = $1, revocation_reason = $2 \
             WHERE issuer_key_id = $3 AND serial = $4 AND revoked = 0",
        )
        .bind(unix_now())
        .bind(i64::from(reason))
        .bind(issuer_key_id)
        .bind(&serial)
        .execute(&mut *transaction)
        .await
        .map_err(map_sqlx_error)?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM issued_certificates WHERE issuer_key_id = $1 AND serial = $2"
        ))
        .bind(issuer_key_id)
        .bind(&serial)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(map_sqlx_error)?
        .ok_or_else(|| PncError::not_found("pnc did not issue this certificate"))?;
        transaction.commit().await.map_err(map_sqlx_error)?;
        if updated.rows_affected() > 0 {
            tracing::info!(serial = %hex::encode(&serial), reason, "certificate revoked");
        }
        from_row(&row).map_err(map_sqlx_error)
    }

    /// One record, by issuer SKI or issuer key hash (SHA-1), and serial.
    pub async fn get(
        &self,
        issuer: &get_issued_request::Issuer,
        serial: &[u8],
    ) -> Result<IssuedCertificate, PncError> {
        let serial = normalized_serial(serial);
        let (column, value) = match issuer {
            get_issued_request::Issuer::IssuerKeyId(key_id) => ("issuer_key_id", key_id),
            get_issued_request::Issuer::IssuerKeyHashSha1(hash) => ("issuer_key_hash_sha1", hash),
        };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM issued_certificates WHERE {column} = $1 AND serial = $2"
        ))
        .bind(value.as_slice())
        .bind(&serial)
        .fetch_optional(self.database.pool())
        .await
        .map_err(map_sqlx_error)?
        .ok_or_else(|| PncError::not_found("pnc did not issue this certificate"))?;
        from_row(&row).map_err(map_sqlx_error)
    }

    /// Revoked, unexpired certificates of one issuer, by serial.
    pub async fn list_revoked(
        &self,
        issuer_key_id: &[u8],
    ) -> Result<Vec<IssuedCertificate>, PncError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM issued_certificates \
             WHERE issuer_key_id = $1 AND revoked = 1 AND not_after >= $2 ORDER BY serial"
        ))
        .bind(issuer_key_id)
        .bind(unix_now())
        .fetch_all(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        rows.iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(map_sqlx_error)
    }

    /// Unexpired certificates of one issuer after `after_serial`, by serial.
    pub async fn list_issued(
        &self,
        issuer_key_id: &[u8],
        after_serial: &[u8],
        limit: u32,
    ) -> Result<Vec<IssuedCertificate>, PncError> {
        let limit = if limit == 0 || limit > MAX_PAGE {
            MAX_PAGE
        } else {
            limit
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM issued_certificates \
             WHERE issuer_key_id = $1 AND serial > $2 AND not_after >= $3 \
             ORDER BY serial LIMIT $4"
        ))
        .bind(issuer_key_id)
        .bind(after_serial)
        .bind(unix_now())
        .bind(i64::from(limit))
        .fetch_all(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        rows.iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(map_sqlx_error)
    }
}

/// Records a certificate inside the caller's transaction (the registry's PutContract writes
/// the contract and its issued-certificate record in one transaction).
pub async fn record_in(
    connection: &mut sqlx::AnyConnection,
    issued: &NewIssued,
) -> Result<IssuedCertificate, PncError> {
    sqlx::query(
        "INSERT INTO issued_certificates (issuer_key_id, serial, issuer_key_hash_sha1, \
         certificate_der, profile, not_after, issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (issuer_key_id, serial) DO NOTHING",
    )
    .bind(issued.issuer_key_id.as_slice())
    .bind(issued.serial.as_slice())
    .bind(issued.issuer_key_hash_sha1.as_slice())
    .bind(issued.certificate_der.as_slice())
    .bind(issued.profile.as_str())
    .bind(issued.not_after)
    .bind(unix_now())
    .execute(&mut *connection)
    .await
    .map_err(map_sqlx_error)?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM issued_certificates WHERE issuer_key_id = $1 AND serial = $2"
    ))
    .bind(issued.issuer_key_id.as_slice())
    .bind(issued.serial.as_slice())
    .fetch_one(&mut *connection)
    .await
    .map_err(map_sqlx_error)?;
    let stored = from_row(&row).map_err(map_sqlx_error)?;
    let same = stored
        .certificate
        .as_ref()
        .is_some_and(|certificate| certificate.der == issued.certificate_der);
    if !same {
        return Err(PncError::already_exists(
            "another certificate with this issuer and serial is recorded",
        ));
    }
    Ok(stored)
}

/// The gRPC face. Writes come from pnc's services (no principal) or an admin; reads are
/// open to every internal caller (the mTLS allowlist already limits who connects).
#[derive(Debug, Clone)]
pub struct IssuedCertificatesService {
    store: IssuedStore,
}

impl IssuedCertificatesService {
    pub fn new(store: IssuedStore) -> IssuedCertificatesService {
        IssuedCertificatesService { store }
    }
}

fn require_service_or_admin<T>(request: &Request<T>) -> Result<(), PncError> {
    match from_metadata(request.metadata()) {
        None => Ok(()),
        Some(principal) if principal.role == Role::Admin as i32 => Ok(()),
        Some(_) => Err(PncError::permission_denied(
            "only pnc's services and admins may change issuance records",
        )),
    }
}

fn certificate_der(
    certificate: Option<CertificateMessage>,
    what: &str,
) -> Result<Vec<u8>, PncError> {
    certificate
        .map(|certificate| certificate.der)
        .filter(|der| !der.is_empty())
        .ok_or_else(|| PncError::invalid(format!("{what} is missing")))
}

#[tonic::async_trait]
impl IssuedCertificates for IssuedCertificatesService {
    async fn record_issued(
        &self,
        request: Request<RecordIssuedRequest>,
    ) -> Result<Response<IssuedCertificate>, Status> {
        require_service_or_admin(&request)?;
        let request = request.into_inner();
        let certificate = certificate_der(request.certificate, "certificate")?;
        let issuer = certificate_der(request.issuer, "issuer")?;
        let issued = NewIssued::from_certificates(&certificate, &issuer, &request.profile)?;
        Ok(Response::new(self.store.record(&issued).await?))
    }

    async fn revoke(
        &self,
        request: Request<RevokeRequest>,
    ) -> Result<Response<IssuedCertificate>, Status> {
        require_service_or_admin(&request)?;
        let request = request.into_inner();
        Ok(Response::new(
            self.store
                .revoke(&request.issuer_key_id, &request.serial, request.reason)
                .await?,
        ))
    }

    async fn get_issued(
        &self,
        request: Request<GetIssuedRequest>,
    ) -> Result<Response<IssuedCertificate>, Status> {
        let request = request.into_inner();
        let issuer = request
            .issuer
            .ok_or_else(|| PncError::invalid("issuer key id or key hash is missing"))?;
        Ok(Response::new(
            self.store.get(&issuer, &request.serial).await?,
        ))
    }

    async fn list_revoked(
        &self,
        request: Request<ListRevokedRequest>,
    ) -> Result<Response<ListRevokedResponse>, Status> {
        let request = request.into_inner();
        let revoked = self.store.list_revoked(&request.issuer_key_id).await?;
        Ok(Response::new(ListRevokedResponse { revoked }))
    }

    async fn list_issued(
        &self,
        request: Request<ListIssuedRequest>,
    ) -> Result<Response<ListIssuedResponse>, Status> {
        let request = request.into_inner();
        let issued = self
            .store
            .list_issued(&request.issuer_key_id, &request.after_serial, request.limit)
            .await?;
        Ok(Response::new(ListIssuedResponse { issued }))
    }
}
