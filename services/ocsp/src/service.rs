//! The gRPC face of the OCSP service.

use std::sync::Arc;
use std::time::Duration;

use pnc_common::PncError;
use pnc_common::db::unix_now;
use pnc_pki::Certificate;
use pnc_proto::ocsp::v1::{
    AuthorizeRequest, AuthorizeResponse, CertId as CertIdMessage, CertStatus as CertStatusMessage,
    ContractCertificateStatus, GetCrlRequest, GetCrlResponse, GetStatusRequest, GetStatusResponse,
    HashAlgorithm as HashAlgorithmMessage, RespondRequest, RespondResponse, ocsp_server::Ocsp,
};
use pnc_proto::registry::v1::ListRevokedRequest;
use tonic::{Request, Response, Status};

use crate::authorize;
use crate::cert_id::{CertId, HashAlgorithm};
use crate::codec::{self, CertStatus, ResponseStatus};
use crate::engine::{Engine, StatusError};
use crate::own::{self, RevokedEntry};

/// Largest OCSPRequest accepted (a single CertID with a nonce is < 200 bytes).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Most certificates in one Authorize (OCPP allows 1..4 hash data; a chain has ≤ 4).
const MAX_AUTHORIZE_ITEMS: usize = 4;

#[derive(Debug, Clone)]
pub struct OcspService {
    engine: Arc<Engine>,
    crls: moka::future::Cache<String, Arc<GetCrlResponse>>,
}

impl OcspService {
    pub fn new(engine: Arc<Engine>) -> OcspService {
        let reuse = Duration::from_secs(engine.config().own_answer_reuse_seconds.max(1));
        OcspService {
            engine,
            crls: moka::future::Cache::builder()
                .max_capacity(64)
                .time_to_live(reuse)
                .build(),
        }
    }

    async fn build_crl(&self, file_name: &str) -> Result<GetCrlResponse, PncError> {
        let pki = self
            .engine
            .own
            .get()
            .await
            .ok_or_else(|| PncError::not_found("no such CRL"))?;
        let ca = pki
            .by_crl_file_name(file_name)
            .ok_or_else(|| PncError::not_found("no such CRL"))?;
        let revoked = self
            .engine
            .downstream()
            .issued
            .clone()
            .list_revoked(ListRevokedRequest {
                issuer_key_id: ca.key_id.clone(),
            })
            .await
            .map_err(PncError::from)?
            .into_inner()
            .revoked;
        let entries: Vec<RevokedEntry> = revoked
            .into_iter()
            .map(|record| RevokedEntry {
                serial_magnitude: record.serial,
                revoked_at: record.revoked_at,
                reason: record.revocation_reason,
            })
            .collect();
        let this_update = unix_now();
        let next_update = this_update + self.engine.config().crl_validity_seconds.max(60) as i64;
        let crl_der = own::build_crl(&ca, &entries, this_update, next_update)
            .map_err(|error| PncError::internal(format!("signing a CRL: {error}")))?;
        Ok(GetCrlResponse {
            crl_der,
            this_update,
            next_update,
        })
    }
}

/// The validated CertID of a gRPC message.
pub fn cert_id_from_message(message: &CertIdMessage) -> Result<CertId, PncError> {
    let algorithm = match HashAlgorithmMessage::try_from(message.hash_algorithm) {
        Ok(HashAlgorithmMessage::Sha1) => HashAlgorithm::Sha1,
        Ok(HashAlgorithmMessage::Sha256) => HashAlgorithm::Sha256,
        Ok(HashAlgorithmMessage::Sha384) => HashAlgorithm::Sha384,
        Ok(HashAlgorithmMessage::Sha512) => HashAlgorithm::Sha512,
        _ => return Err(PncError::invalid("unsupported hash algorithm")),
    };
    if message.serial.is_empty() {
        return Err(PncError::invalid("serial number is empty"));
    }
    CertId::new(
        algorithm,
        message.issuer_name_hash.clone(),
        message.issuer_key_hash.clone(),
        &message.serial,
    )
    .map_err(|error| PncError::invalid(error.to_string()))
}

fn error_response(status: ResponseStatus) -> RespondResponse {
    RespondResponse {
        ocsp_response_der: status.error_response(),
        this_update: 0,
        next_update: 0,
        produced_at: 0,
    }
}

#[tonic::async_trait]
impl Ocsp for OcspService {
    async fn respond(
        &self,
        request: Request<RespondRequest>,
    ) -> Result<Response<RespondResponse>, Status> {
        let request = request.into_inner();
        if request.ocsp_request_der.len() > MAX_REQUEST_BYTES {
            return Ok(Response::new(error_response(
                ResponseStatus::MalformedRequest,
            )));
        }
        let question = match codec::parse_request(&request.ocsp_request_der) {
            Ok(question) => question,
            Err(error) => {
                tracing::debug!(error = %error, "malformed ocsp request");
                return Ok(Response::new(error_response(
                    ResponseStatus::MalformedRequest,
                )));
            }
        };
        let response = match self.engine.status(&question.cert_id, None, None).await {
            Ok(cached) => RespondResponse {
                ocsp_response_der: cached.der.to_vec(),
                this_update: cached.answer.this_update,
                next_update: cached.answer.next_update,
                produced_at: cached.answer.produced_at,
            },
            Err(error) => {
                tracing::debug!(cert_id = ?question.cert_id, error = %error, "no ocsp answer");
                error_response(match error {
                    StatusError::Malformed(_) => ResponseStatus::MalformedRequest,
                    // RFC 6960 §2.3: "unauthorized" when the responder is not authoritative.
                    StatusError::UnknownIssuer | StatusError::ResponderNotAllowed => {
                        ResponseStatus::Unauthorized
                    }
                    StatusError::Unavailable(_) => ResponseStatus::TryLater,
                    StatusError::Internal(_) => ResponseStatus::InternalError,
                })
            }
        };
        Ok(Response::new(response))
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let request = request.into_inner();
        let cert_id = request
            .cert_id
            .as_ref()
            .ok_or_else(|| PncError::invalid("cert_id is missing"))
            .and_then(cert_id_from_message)?;
        let certificate = match request.certificate.filter(|c| !c.der.is_empty()) {
            Some(certificate) => Some(
                Certificate::from_der(&certificate.der)
                    .map_err(|error| PncError::invalid(format!("certificate: {error}")))?,
            ),
            None => None,
        };
        let hint = Some(request.responder_url_hint.as_str()).filter(|hint| !hint.is_empty());
        let cached = self
            .engine
            .status(&cert_id, hint, certificate.as_ref())
            .await
            .map_err(PncError::from)?;
        let (status, revoked_at, revocation_reason) = match cached.answer.status {
            CertStatus::Good => (CertStatusMessage::Good, 0, 0),
            CertStatus::Revoked { revoked_at, reason } => (
                CertStatusMessage::Revoked,
                revoked_at,
                reason.map(i32::from).unwrap_or(0),
            ),
            CertStatus::Unknown => (CertStatusMessage::Unknown, 0, 0),
        };
        Ok(Response::new(GetStatusResponse {
            ocsp_response_der: cached.der.to_vec(),
            status: status as i32,
            this_update: cached.answer.this_update,
            next_update: cached.answer.next_update,
            produced_at: cached.answer.produced_at,
            revoked_at,
            revocation_reason,
        }))
    }

    async fn get_crl(
        &self,
        request: Request<GetCrlRequest>,
    ) -> Result<Response<GetCrlResponse>, Status> {
        let file_name = request.into_inner().file_name;
        if file_name.len() > 100 {
            return Err(PncError::not_found("no such CRL").into());
        }
        let crl = self
            .crls
            .try_get_with(file_name.clone(), async {
                self.build_crl(&file_name).await.map(Arc::new)
            })
            .await
            .map_err(|error: Arc<PncError>| (*error).clone())?;
        Ok(Response::new((*crl).clone()))
    }

    async fn authorize(
        &self,
        request: Request<AuthorizeRequest>,
    ) -> Result<Response<AuthorizeResponse>, Status> {
        let request = request.into_inner();
        if request.chain.len() > MAX_AUTHORIZE_ITEMS
            || request.hash_data.len() > MAX_AUTHORIZE_ITEMS
        {
            return Err(PncError::invalid("at most 4 certificates or hash data").into());
        }
        let verdict = if !request.chain.is_empty() {
            let mut chain = Vec::with_capacity(request.chain.len());
            for certificate in &request.chain {
                match Certificate::from_der(&certificate.der) {
                    Ok(certificate) => chain.push(certificate),
                    Err(error) => {
                        return Ok(Response::new(AuthorizeResponse {
                            certificate_status: ContractCertificateStatus::CertChainError as i32,
                            detail: format!("certificate does not parse: {error}"),
                            id_token_status: String::new(),
                        }));
                    }
                }
            }
            let verdict = authorize::check_chain(&self.engine, &chain, &request.id_token).await;
            if verdict.status == ContractCertificateStatus::Accepted {
                // check_chain made sure the CN is the idToken (when one was sent).
                let emaid = chain[0].common_name().unwrap_or_default();
                authorize::check_contract(
                    &self.engine,
                    emaid,
                    authorize::ContractLeaf::Certificate(&chain[0]),
                )
                .await?
            } else {
                verdict
            }
        } else if !request.hash_data.is_empty() {
            let hash_data = request
                .hash_data
                .iter()
                .map(cert_id_from_message)
                .collect::<Result<Vec<_>, _>>()?;
            let verdict = authorize::check_hash_data(&self.engine, &hash_data).await;
            if verdict.status == ContractCertificateStatus::Accepted {
                authorize::check_contract(
                    &self.engine,
                    &request.id_token,
                    authorize::ContractLeaf::HashData(&hash_data[0]),
                )
                .await?
            } else {
                verdict
            }
        } else {
            authorize::Verdict {
                status: ContractCertificateStatus::NoCertificateAvailable,
                detail: "neither a certificate chain nor hash data".to_string(),
                id_token_status: "",
            }
        };
        Ok(Response::new(AuthorizeResponse {
            certificate_status: verdict.status as i32,
            detail: verdict.detail,
            id_token_status: verdict.id_token_status.to_string(),
        }))
    }
}
