//! The stapling cache and the responder behind one call: "what is the status of this
//! CertID?".
//!
//! - pnc's own CAs are answered from the registry's issuance records, signed by the CA's
//!   delegated OCSP signer and reused for `own_answer_reuse_seconds`;
//! - any other issuer must be known to the truststore; its responses come from the AIA
//!   OCSP URLs of the known CA (or of the certificate in question, when the caller has it)
//!   and are verified before they are kept, in memory and in the ocsp tables;
//! - a response is refreshed when half of its thisUpdate → nextUpdate window has passed,
//!   with one upstream fetch per CertID at a time (single flight), and the last good
//!   response is served until its nextUpdate while the upstream fails.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use pnc_common::config::OcspConfig;
use pnc_common::db::unix_now;
use pnc_common::grpc::GrpcChannel;
use pnc_common::{ErrorKind, PncError};
use pnc_pki::Certificate;
use pnc_proto::registry::v1::contracts_client::ContractsClient;
use pnc_proto::registry::v1::issued_certificates_client::IssuedCertificatesClient;
use pnc_proto::registry::v1::{GetIssuedRequest, IssuedStatus, get_issued_request};
use pnc_proto::truststore::v1::trust_store_client::TrustStoreClient;
use pnc_proto::truststore::v1::{
    CertIdIssuer, FindIssuerRequest, KnownCa, ListKnownCasRequest, find_issuer_request,
};

use crate::cert_id::{CertId, HashAlgorithm};
use crate::codec::{self, Answer, CertStatus};
use crate::own::{OwnCa, OwnPki, OwnPkiLoader};
use crate::store::{ResponseStore, StoredResponse};
use crate::upstream::{UpstreamClient, normalize_url};

/// How long the list of known CAs is reused for SHA-384/512 CertIDs and prefetching.
const KNOWN_CAS_TTL: Duration = Duration::from_secs(30);

/// Where a cached answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Own,
    Upstream,
}

/// A response ready to serve.
#[derive(Debug)]
pub struct Cached {
    pub der: Bytes,
    pub answer: Answer,
    /// From here on the response is refreshed (served meanwhile while still valid).
    pub refresh_at: i64,
    /// The responder URLs a caller may name for this CertID (normalised).
    pub allowed_urls: Arc<Vec<String>>,
    pub source: Source,
}

/// Why no response can be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("{0}")]
    Malformed(String),
    #[error("the certificate's issuer is not known to pnc")]
    UnknownIssuer,
    #[error("the responder URL is not one of the known issuer's OCSP responders")]
    ResponderNotAllowed,
    #[error("no valid OCSP response available: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StatusError> for PncError {
    fn from(error: StatusError) -> PncError {
        let kind = match &error {
            StatusError::Malformed(_) => ErrorKind::InvalidArgument,
            StatusError::UnknownIssuer => ErrorKind::NotFound,
            StatusError::ResponderNotAllowed => ErrorKind::PermissionDenied,
            StatusError::Unavailable(_) => ErrorKind::Unavailable,
            StatusError::Internal(_) => ErrorKind::Internal,
        };
        PncError::new(kind, error.to_string())
    }
}

/// Which responder answers a CertID.
enum Resolution {
    Own {
        pki: Arc<OwnPki>,
        ca: Arc<OwnCa>,
    },
    Upstream {
        issuers: Vec<Certificate>,
        urls: Vec<String>,
    },
}

impl Resolution {
    fn allowed_urls(&self) -> Vec<String> {
        match self {
            Resolution::Own { pki, .. } => normalize_url(&pki.ocsp_url).into_iter().collect(),
            Resolution::Upstream { urls, .. } => urls.clone(),
        }
    }
}

type SharedFetch = Shared<BoxFuture<'static, Result<Arc<Cached>, StatusError>>>;

struct NextUpdateExpiry;

impl moka::Expiry<CertId, Arc<Cached>> for NextUpdateExpiry {
    fn expire_after_create(
        &self,
        _key: &CertId,
        value: &Arc<Cached>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let remaining = value.answer.next_update - unix_now();
        Some(Duration::from_secs(remaining.max(0) as u64))
    }

    fn expire_after_update(
        &self,
        key: &CertId,
        value: &Arc<Cached>,
        updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, value, updated_at)
    }
}

/// The clients the engine calls.
#[derive(Debug, Clone)]
pub struct Downstream {
    pub truststore: TrustStoreClient<GrpcChannel>,
    pub issued: IssuedCertificatesClient<GrpcChannel>,
    /// Contract look-ups for OCPP C07 (authorize).
    pub contracts: ContractsClient<GrpcChannel>,
}

pub struct Engine {
    config: OcspConfig,
    memory: moka::future::Cache<CertId, Arc<Cached>>,
    inflight: Mutex<HashMap<CertId, SharedFetch>>,
    background: Mutex<HashSet<CertId>>,
    known_cas: tokio::sync::Mutex<Option<(Instant, Arc<Vec<KnownCa>>)>>,
    operator_urls: Vec<String>,
    store: ResponseStore,
    pub own: OwnPkiLoader,
    upstream: UpstreamClient,
    downstream: Downstream,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// Checks a caller's responder hint; the normalised hint when it is allowed.
fn check_hint(
    allowed: &[String],
    operator_urls: &[String],
    hint: Option<&str>,
) -> Result<Option<String>, StatusError> {
    let Some(hint) = hint.map(str::trim).filter(|hint| !hint.is_empty()) else {
        return Ok(None);
    };
    let normalized = normalize_url(hint).ok_or(StatusError::ResponderNotAllowed)?;
    if allowed.contains(&normalized) || operator_urls.contains(&normalized) {
        Ok(Some(normalized))
    } else {
        Err(StatusError::ResponderNotAllowed)
    }
}

/// Whether `issuer` signed `certificate` (names match and the signature verifies).
pub fn issued_by(certificate: &Certificate, issuer: &Certificate) -> bool {
    if !certificate.issuer().matches(issuer.subject()) {
        return false;
    }
    let verify = || -> Result<bool, openssl::error::ErrorStack> {
        let certificate = openssl::x509::X509::from_der(certificate.der())?;
        let issuer = openssl::x509::X509::from_der(issuer.der())?;
        let key = issuer.public_key()?;
        certificate.verify(&key)
    };
    verify().unwrap_or(false)
}

fn refresh_point(answer: &Answer) -> i64 {
    // Half of the validity window (issue 6: not a fixed margin).
    answer.this_update + (answer.next_update - answer.this_update) / 2
}

impl Engine {
    pub fn new(
        config: &pnc_common::Config,
        store: ResponseStore,
        downstream: Downstream,
    ) -> anyhow::Result<Engine> {
        let ocsp = config.ocsp.clone();
        let memory = moka::future::Cache::builder()
            .max_capacity(ocsp.cache_capacity)
            .expire_after(NextUpdateExpiry)
            .build();
        let operator_urls = ocsp
            .allowed_responder_urls
            .iter()
            .filter_map(|url| normalize_url(url))
            .collect();
        Ok(Engine {
            upstream: UpstreamClient::new(&ocsp)?,
            config: ocsp,
            memory,
            inflight: Mutex::new(HashMap::new()),
            background: Mutex::new(HashSet::new()),
            known_cas: tokio::sync::Mutex::new(None),
            operator_urls,
            store,
            own: OwnPkiLoader::new(config),
            downstream,
        })
    }

    /// A valid response for `cert_id`. `hint` is the caller's responder URL, `certificate`
    /// the certificate in question when the caller has it.
    pub async fn status(
        self: &Arc<Self>,
        cert_id: &CertId,
        hint: Option<&str>,
        certificate: Option<&Certificate>,
    ) -> Result<Arc<Cached>, StatusError> {
        let now = unix_now();
        if let Some(hit) = self.memory.get(cert_id).await
            && now < hit.answer.next_update
            && check_hint(&hit.allowed_urls, &self.operator_urls, hint).is_ok()
        {
            if now < hit.refresh_at {
                return Ok(hit);
            }
            if hit.source == Source::Upstream {
                self.refresh_in_background(cert_id.clone());
                return Ok(hit);
            }
        }
        let resolution = Arc::new(self.resolve(cert_id, certificate).await?);
        let preferred = check_hint(&resolution.allowed_urls(), &self.operator_urls, hint)?;
        self.single_flight(cert_id, resolution, preferred).await
    }

    /// Resolves the responder and fetches unless a fresh response is at hand (the
    /// prefetcher and background refreshes).
    pub async fn refresh(self: &Arc<Self>, cert_id: &CertId) -> Result<Arc<Cached>, StatusError> {
        let resolution = Arc::new(self.resolve(cert_id, None).await?);
        self.single_flight(cert_id, resolution, None).await
    }

    fn refresh_in_background(self: &Arc<Self>, cert_id: CertId) {
        {
            let mut background = self
                .background
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !background.insert(cert_id.clone()) {
                return;
            }
        }
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(error) = engine.refresh(&cert_id).await {
                tracing::warn!(cert_id = ?cert_id, error = %error, "background refresh failed");
            }
            engine
                .background
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&cert_id);
        });
    }

    async fn single_flight(
        self: &Arc<Self>,
        cert_id: &CertId,
        resolution: Arc<Resolution>,
        preferred: Option<String>,
    ) -> Result<Arc<Cached>, StatusError> {
        let shared = {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            match inflight.get(cert_id) {
                Some(existing) => existing.clone(),
                None => {
                    let engine = self.clone();
                    let id = cert_id.clone();
                    // A task of its own: a caller that gives up does not cancel the fetch
                    // the others wait for.
                    let task = tokio::spawn(async move {
                        let result = engine.fetch(&id, &resolution, preferred.as_deref()).await;
                        engine
                            .inflight
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&id);
                        result
                    });
                    let fetch: SharedFetch = async move {
                        task.await.unwrap_or_else(|error| {
                            Err(StatusError::Internal(format!("fetch task failed: {error}")))
                        })
                    }
                    .boxed()
                    .shared();
                    inflight.insert(cert_id.clone(), fetch.clone());
                    fetch
                }
            }
        };
        shared.await
    }

    async fn resolve(
        &self,
        cert_id: &CertId,
        certificate: Option<&Certificate>,
    ) -> Result<Resolution, StatusError> {
        if let Some(pki) = self.own.get().await
            && let Some(ca) = pki.find(cert_id)
        {
            return Ok(Resolution::Own { pki, ca });
        }
        let known = self.find_issuers(cert_id).await?;
        let mut issuers = Vec::new();
        let mut urls: Vec<String> = Vec::new();
        for known_ca in known {
            let Some(der) = known_ca.certificate.as_ref().map(|c| c.der.as_slice()) else {
                continue;
            };
            let Ok(issuer) = Certificate::from_der(der) else {
                continue;
            };
            // The truststore matched by hash; check it ourselves before trusting it.
            if !cert_id.names_issuer(&issuer) {
                continue;
            }
            for url in &known_ca.ocsp_urls {
                if let Some(url) = normalize_url(url)
                    && !urls.contains(&url)
                {
                    urls.push(url);
                }
            }
            issuers.push(issuer);
        }
        if issuers.is_empty() {
            return Err(StatusError::UnknownIssuer);
        }
        if let Some(certificate) = certificate
            && certificate.serial() == cert_id.serial_magnitude()
            && issuers.iter().any(|issuer| issued_by(certificate, issuer))
        {
            for url in certificate.ocsp_urls() {
                if let Some(url) = normalize_url(url)
                    && !urls.contains(&url)
                {
                    urls.push(url);
                }
            }
        }
        Ok(Resolution::Upstream { issuers, urls })
    }

    async fn find_issuers(&self, cert_id: &CertId) -> Result<Vec<KnownCa>, StatusError> {
        match cert_id.hash_algorithm() {
            HashAlgorithm::Sha1 | HashAlgorithm::Sha256 => {
                let request = FindIssuerRequest {
                    key: Some(find_issuer_request::Key::CertId(CertIdIssuer {
                        hash_algorithm: cert_id.hash_algorithm().name().to_string(),
                        issuer_name_hash: cert_id.issuer_name_hash().to_vec(),
                        issuer_key_hash: cert_id.issuer_key_hash().to_vec(),
                    })),
                };
                let response = self
                    .downstream
                    .truststore
                    .clone()
                    .find_issuer(request)
                    .await
                    .map_err(|status| {
                        StatusError::Unavailable(format!(
                            "truststore: {}",
                            PncError::from(status).message
                        ))
                    })?;
                Ok(response.into_inner().issuers)
            }
            // The truststore indexes SHA-1 and SHA-256 only; the rarer algorithms of OCPP
            // are matched against the list of known CAs.
            HashAlgorithm::Sha384 | HashAlgorithm::Sha512 => Ok(self
                .known_cas()
                .await?
                .iter()
                .filter(|known| {
                    known
                        .certificate
                        .as_ref()
                        .and_then(|c| Certificate::from_der(&c.der).ok())
                        .is_some_and(|issuer| cert_id.names_issuer(&issuer))
                })
                .cloned()
                .collect()),
        }
    }

    /// Every CA the truststore knows, reused for [`KNOWN_CAS_TTL`].
    pub async fn known_cas(&self) -> Result<Arc<Vec<KnownCa>>, StatusError> {
        let mut slot = self.known_cas.lock().await;
        if let Some((at, cas)) = slot.as_ref()
            && at.elapsed() < KNOWN_CAS_TTL
        {
            return Ok(cas.clone());
        }
        let response = self
            .downstream
            .truststore
            .clone()
            .list_known_cas(ListKnownCasRequest {})
            .await
            .map_err(|status| {
                StatusError::Unavailable(format!("truststore: {}", PncError::from(status).message))
            })?;
        let cas = Arc::new(response.into_inner().cas);
        *slot = Some((Instant::now(), cas.clone()));
        Ok(cas)
    }

    async fn fetch(
        &self,
        cert_id: &CertId,
        resolution: &Resolution,
        preferred: Option<&str>,
    ) -> Result<Arc<Cached>, StatusError> {
        match resolution {
            Resolution::Own { pki, ca } => self.answer_own(cert_id, pki, ca).await,
            Resolution::Upstream { issuers, urls } => {
                self.fetch_upstream(cert_id, issuers, urls, preferred).await
            }
        }
    }

    async fn answer_own(
        &self,
        cert_id: &CertId,
        pki: &OwnPki,
        ca: &OwnCa,
    ) -> Result<Arc<Cached>, StatusError> {
        let request = GetIssuedRequest {
            issuer: Some(get_issued_request::Issuer::IssuerKeyId(ca.key_id.clone())),
            serial: cert_id.serial_magnitude().to_vec(),
        };
        let status = match self.downstream.issued.clone().get_issued(request).await {
            Ok(record) => {
                let record = record.into_inner();
                if record.status == IssuedStatus::Revoked as i32 {
                    CertStatus::Revoked {
                        revoked_at: record.revoked_at,
                        reason: u8::try_from(record.revocation_reason).ok(),
                    }
                } else {
                    CertStatus::Good
                }
            }
            // RFC 6960 §2.2: "unknown" — pnc has no record of this serial.
            Err(status) if status.code() == tonic::Code::NotFound => CertStatus::Unknown,
            Err(status) => {
                return Err(StatusError::Unavailable(format!(
                    "registry: {}",
                    PncError::from(status).message
                )));
            }
        };
        let now = unix_now();
        let validity = self.config.own_response_validity_seconds.max(60) as i64;
        let answer = Answer {
            status,
            this_update: now,
            next_update: now + validity,
            produced_at: now,
        };
        let der = codec::build_signed_response(
            cert_id,
            &answer,
            ca.ocsp_signer.as_ref(),
            &ca.ocsp_signer_certificate,
        )
        .map_err(|error| StatusError::Internal(format!("signing: {error}")))?;
        let reuse = (self.config.own_answer_reuse_seconds as i64).min(validity / 2);
        let cached = Arc::new(Cached {
            der: Bytes::from(der),
            answer,
            refresh_at: now + reuse,
            allowed_urls: Arc::new(normalize_url(&pki.ocsp_url).into_iter().collect()),
            source: Source::Own,
        });
        self.memory.insert(cert_id.clone(), cached.clone()).await;
        Ok(cached)
    }

    async fn fetch_upstream(
        &self,
        cert_id: &CertId,
        issuers: &[Certificate],
        urls: &[String],
        preferred: Option<&str>,
    ) -> Result<Arc<Cached>, StatusError> {
        let now = unix_now();
        let allowed_urls = Arc::new(urls.to_vec());
        let mut fallback = self
            .memory
            .get(cert_id)
            .await
            .filter(|cached| now < cached.answer.next_update);
        if let Some(fresh) = fallback.as_ref().filter(|cached| now < cached.refresh_at) {
            return Ok(fresh.clone());
        }
        // Another replica, or this one before a restart, may hold a newer response.
        match self.store.get(cert_id).await {
            Ok(Some(stored)) if now < stored.next_update => {
                let newer = fallback
                    .as_ref()
                    .is_none_or(|cached| cached.answer.this_update < stored.this_update);
                if newer && let Ok(answer) = codec::read_answer(&stored.der, cert_id) {
                    let cached = Arc::new(Cached {
                        der: Bytes::from(stored.der),
                        answer,
                        refresh_at: stored.refresh_at,
                        allowed_urls: allowed_urls.clone(),
                        source: Source::Upstream,
                    });
                    if now < cached.refresh_at {
                        self.memory.insert(cert_id.clone(), cached.clone()).await;
                        return Ok(cached);
                    }
                    fallback = Some(cached);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "cannot read stored ocsp responses"),
        }

        let mut ordered: Vec<&str> = Vec::with_capacity(urls.len());
        if let Some(preferred) = preferred.filter(|url| urls.iter().any(|known| known == url)) {
            ordered.push(preferred);
        }
        ordered.extend(
            urls.iter()
                .map(String::as_str)
                .filter(|url| Some(*url) != preferred),
        );
        let request = codec::build_request(cert_id);
        let mut last_error = "no OCSP responder is known for this issuer".to_string();
        for url in ordered {
            metrics::counter!("pnc_ocsp_upstream_fetches_total").increment(1);
            let body = match self.upstream.fetch(url, request.clone()).await {
                Ok(body) => body,
                Err(error) => {
                    tracing::warn!(%url, error = %error, "ocsp upstream fetch failed");
                    last_error = format!("{url}: {error}");
                    continue;
                }
            };
            let now = unix_now();
            let verified = issuers
                .iter()
                .map(|issuer| codec::verify_upstream(&body, cert_id, issuer, now))
                .reduce(|first, next| first.or(next));
            match verified {
                Some(Ok(verified)) => {
                    let answer = verified.answer;
                    let stored = StoredResponse {
                        cert_id: cert_id.clone(),
                        der: verified.der,
                        this_update: answer.this_update,
                        next_update: answer.next_update,
                        produced_at: answer.produced_at,
                        refresh_at: refresh_point(&answer),
                        responder_url: url.to_string(),
                    };
                    if let Err(error) = self.store.upsert(&stored, now).await {
                        tracing::warn!(error = %error, "cannot persist an ocsp response");
                    }
                    let cached = Arc::new(Cached {
                        der: Bytes::from(stored.der),
                        answer,
                        refresh_at: stored.refresh_at,
                        allowed_urls,
                        source: Source::Upstream,
                    });
                    self.memory.insert(cert_id.clone(), cached.clone()).await;
                    return Ok(cached);
                }
                Some(Err(error)) => {
                    tracing::warn!(%url, error = %error, "ocsp upstream response rejected");
                    last_error = format!("{url}: {error}");
                }
                None => {}
            }
        }
        if let Some(fallback) = fallback.filter(|cached| unix_now() < cached.answer.next_update) {
            tracing::info!(cert_id = ?cert_id, "serving the last good ocsp response");
            self.memory.insert(cert_id.clone(), fallback.clone()).await;
            return Ok(fallback);
        }
        Err(StatusError::Unavailable(last_error))
    }

    /// Responses due for refresh, for the prefetcher.
    pub fn store(&self) -> &ResponseStore {
        &self.store
    }

    pub fn downstream(&self) -> &Downstream {
        &self.downstream
    }

    pub fn config(&self) -> &OcspConfig {
        &self.config
    }
}
