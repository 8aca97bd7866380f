//! OCSP messages (RFC 6960 §4): requests in, responses out, upstream responses checked.
//!
//! Requests are parsed here (the openssl crate cannot list a request's CertIDs); responses
//! for pnc's own CAs are written here and signed through the pki `Signer`; responses from
//! upstream responders are parsed here and their signature and delegation are verified by
//! OpenSSL's `OCSP_basic_verify` against the known issuer only.

use openssl::ocsp::{OcspFlag, OcspResponse};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use pnc_pki::{SignatureAlgorithm, Signer};
use sha1::{Digest, Sha1};

use crate::cert_id::{CertId, CertIdError, subject_public_key_bits};
use crate::der::{self, DerError, Reader, explicit, implicit, oid};

/// How far a thisUpdate may lie in the future (clock skew between pnc and a responder).
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// RFC 6960 §4.2.1 OCSPResponseStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

impl ResponseStatus {
    pub fn from_code(code: u8) -> Option<ResponseStatus> {
        match code {
            0 => Some(ResponseStatus::Successful),
            1 => Some(ResponseStatus::MalformedRequest),
            2 => Some(ResponseStatus::InternalError),
            3 => Some(ResponseStatus::TryLater),
            5 => Some(ResponseStatus::SigRequired),
            6 => Some(ResponseStatus::Unauthorized),
            _ => None,
        }
    }

    /// The unsigned OCSPResponse carrying only this status (RFC 6960 §2.3).
    pub fn error_response(self) -> Vec<u8> {
        der::sequence(&[&der::enumerated(self as u8)])
    }
}

/// A certificate's status as an OCSP response states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    /// Revocation time (unix seconds) and RFC 5280 CRLReason, when given.
    Revoked {
        revoked_at: i64,
        reason: Option<u8>,
    },
    Unknown,
}

/// A parsed OCSPRequest: the one CertID asked about and the nonce, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspQuestion {
    pub cert_id: CertId,
    pub nonce: Option<Vec<u8>>,
}

/// Why a request is refused with `malformedRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    CertId(#[from] CertIdError),
    #[error(transparent)]
    Der(#[from] DerError),
    #[error("exactly one certificate per request is answered (RFC 5019 §2.1.1)")]
    NotOneCertificate,
}

impl From<RequestError> for pnc_common::PncError {
    fn from(error: RequestError) -> pnc_common::PncError {
        pnc_common::PncError::invalid(error.to_string())
    }
}

/// Parses a DER OCSPRequest. Signed requests are accepted and their signature ignored
/// (pnc does not require them, RFC 6960 §4.1.2).
pub fn parse_request(der_bytes: &[u8]) -> Result<OcspQuestion, RequestError> {
    let request = der::parse_single(der_bytes, der::TAG_SEQUENCE, "OCSPRequest")?;
    let mut request_fields = request.reader();
    let tbs = request_fields.read(der::TAG_SEQUENCE, "tbsRequest")?;
    request_fields.read_optional(explicit(0))?;
    request_fields.finish("OCSPRequest has extra fields")?;

    let mut tbs_fields = tbs.reader();
    if let Some(version) = tbs_fields.read_optional(explicit(0))? {
        let value = der::parse_single(version.content, der::TAG_INTEGER, "version")?;
        if value.content != [0] {
            return Err(DerError("unsupported request version").into());
        }
    }
    tbs_fields.read_optional(explicit(1))?;
    let list = tbs_fields.read(der::TAG_SEQUENCE, "requestList")?;
    let extensions = tbs_fields.read_optional(explicit(2))?;
    tbs_fields.finish("tbsRequest has extra fields")?;

    let mut requests = list.reader();
    let single = requests.read(der::TAG_SEQUENCE, "Request")?;
    if !requests.is_empty() {
        return Err(RequestError::NotOneCertificate);
    }
    let mut single_fields = single.reader();
    let cert_id_element = single_fields.read(der::TAG_SEQUENCE, "reqCert")?;
    single_fields.read_optional(explicit(0))?;
    single_fields.finish("Request has extra fields")?;
    let cert_id = CertId::from_element(&cert_id_element)?;

    let mut nonce = None;
    if let Some(extensions) = extensions {
        let list = der::parse_single(extensions.content, der::TAG_SEQUENCE, "extensions")?;
        let mut entries = list.reader();
        while !entries.is_empty() {
            let extension = entries.read(der::TAG_SEQUENCE, "extension")?;
            let mut fields = extension.reader();
            let id = fields.read(der::TAG_OID, "extnID")?;
            fields.read_optional(der::TAG_BOOLEAN)?;
            let value = fields.read(der::TAG_OCTET_STRING, "extnValue")?;
            fields.finish("extension has extra fields")?;
            if id.content == oid::OCSP_NONCE {
                // RFC 8954 §2.1: 1 to 32 octets.
                if value.content.is_empty() || value.content.len() > 34 {
                    return Err(DerError("nonce length").into());
                }
                nonce = Some(value.content.to_vec());
            }
        }
    }
    Ok(OcspQuestion { cert_id, nonce })
}

/// A DER OCSPRequest for one CertID, without nonce (what pnc sends upstream: a cached
/// response is shared by every caller, so a nonce could not be honoured anyway).
pub fn build_request(cert_id: &CertId) -> Vec<u8> {
    let single = der::sequence(&[&cert_id.to_der()]);
    let list = der::sequence(&[&single]);
    let tbs = der::sequence(&[&list]);
    der::sequence(&[&tbs])
}

fn signature_algorithm_identifier(algorithm: SignatureAlgorithm) -> Vec<u8> {
    // RFC 5758 §3.2: ECDSA AlgorithmIdentifiers have no parameters.
    let identifier = match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => oid::ECDSA_WITH_SHA256,
        SignatureAlgorithm::EcdsaP521Sha512 => oid::ECDSA_WITH_SHA512,
    };
    der::sequence(&[&der::tlv(der::TAG_OID, identifier)])
}

/// Signs `tbs` and wraps it as `SEQUENCE { tbs, algorithm, BIT STRING signature, extra }`.
pub fn sign_structure(
    tbs: &[u8],
    signer: &dyn Signer,
    extra: &[&[u8]],
) -> Result<Vec<u8>, pnc_pki::SignerError> {
    let signature = signer.sign(tbs)?;
    let algorithm = signature_algorithm_identifier(signer.algorithm());
    let bits = der::bit_string(&signature);
    let mut parts: Vec<&[u8]> = vec![tbs, &algorithm, &bits];
    parts.extend_from_slice(extra);
    Ok(der::sequence(&parts))
}

/// What a signed answer states.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: CertStatus,
    pub this_update: i64,
    pub next_update: i64,
    pub produced_at: i64,
}

/// A successful OCSPResponse for `cert_id`, signed by `signer` whose certificate
/// (`signer_certificate`, a delegated OCSP signer or the CA itself) is included so clients
/// can check the delegation (RFC 6960 §4.2.2.2). The responder is named by key hash.
pub fn build_signed_response(
    cert_id: &CertId,
    answer: &Answer,
    signer: &dyn Signer,
    signer_certificate: &pnc_pki::Certificate,
) -> Result<Vec<u8>, pnc_pki::SignerError> {
    let status = match answer.status {
        CertStatus::Good => der::tlv(implicit(0), &[]),
        CertStatus::Revoked { revoked_at, reason } => {
            let time = der::generalized_time(revoked_at);
            match reason {
                Some(reason) => {
                    let reason = der::tlv(explicit(0), &der::enumerated(reason));
                    der::constructed(explicit(1), &[&time, &reason])
                }
                None => der::constructed(explicit(1), &[&time]),
            }
        }
        CertStatus::Unknown => der::tlv(implicit(2), &[]),
    };
    let single = der::sequence(&[
        &cert_id.to_der(),
        &status,
        &der::generalized_time(answer.this_update),
        &der::tlv(explicit(0), &der::generalized_time(answer.next_update)),
    ]);
    let key_bits = subject_public_key_bits(signer_certificate.public_key_spki_der())
        .map_err(|error| pnc_pki::SignerError::InvalidPublicKey(error.to_string()))?;
    let responder_id = der::tlv(explicit(2), &der::octet_string(&Sha1::digest(key_bits)));
    let response_data = der::sequence(&[
        &responder_id,
        &der::generalized_time(answer.produced_at),
        &der::sequence(&[&single]),
    ]);
    let certs = der::tlv(explicit(0), &der::sequence(&[signer_certificate.der()]));
    let basic = sign_structure(&response_data, signer, &[&certs])?;
    let response_bytes = der::sequence(&[
        &der::tlv(der::TAG_OID, oid::OCSP_BASIC),
        &der::octet_string(&basic),
    ]);
    Ok(der::sequence(&[
        &der::enumerated(ResponseStatus::Successful as u8),
        &der::tlv(explicit(0), &response_bytes),
    ]))
}

/// Why an upstream response was not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("responder answered with status {0:?}")]
    Status(Option<ResponseStatus>),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("the response does not answer for the requested CertID")]
    CertIdMismatch,
    #[error("signature or responder delegation does not verify: {0}")]
    Signature(String),
    #[error("thisUpdate lies in the future")]
    FutureThisUpdate,
    #[error("the response has no nextUpdate, so it cannot be cached")]
    NoNextUpdate,
    #[error("nextUpdate is not after thisUpdate")]
    BadValidityWindow,
    #[error("the response expired at its nextUpdate")]
    Expired,
}

impl From<DerError> for VerifyError {
    fn from(error: DerError) -> VerifyError {
        VerifyError::Malformed(error.to_string())
    }
}

/// A response that passed every check, with what it says about the certificate.
#[derive(Debug, Clone)]
pub struct VerifiedResponse {
    pub der: Vec<u8>,
    pub answer: Answer,
}

struct ParsedSingle {
    cert_id: Result<CertId, CertIdError>,
    status: CertStatus,
    this_update: i64,
    next_update: Option<i64>,
}

fn parse_single_response(reader: &mut Reader<'_>) -> Result<ParsedSingle, VerifyError> {
    let single = reader.read(der::TAG_SEQUENCE, "SingleResponse")?;
    let mut fields = single.reader();
    let cert_id_element = fields.read(der::TAG_SEQUENCE, "certID")?;
    let status_element = fields.read_any()?;
    let status = match status_element.tag {
        0x80 => CertStatus::Good,
        0xa1 => {
            let mut info = status_element.reader();
            let time = info.read(der::TAG_GENERALIZED_TIME, "revocationTime")?;
            let reason = match info.read_optional(explicit(0))? {
                Some(wrapper) => {
                    let value = der::parse_single(wrapper.content, der::TAG_ENUMERATED, "reason")?;
                    value.content.first().copied()
                }
                None => None,
            };
            CertStatus::Revoked {
                revoked_at: der::parse_generalized_time(time.content)?,
                reason,
            }
        }
        0x82 => CertStatus::Unknown,
        _ => return Err(VerifyError::Malformed("unknown certStatus".into())),
    };
    let this_update = fields.read(der::TAG_GENERALIZED_TIME, "thisUpdate")?;
    let next_update = match fields.read_optional(explicit(0))? {
        Some(wrapper) => {
            let time = der::parse_single(wrapper.content, der::TAG_GENERALIZED_TIME, "nextUpdate")?;
            Some(der::parse_generalized_time(time.content)?)
        }
        None => None,
    };
    Ok(ParsedSingle {
        cert_id: CertId::from_element(&cert_id_element),
        status,
        this_update: der::parse_generalized_time(this_update.content)?,
        next_update,
    })
}

/// What a successful OCSPResponse says, without checking its signature: for reading
/// back responses pnc stored or built itself.
pub fn read_answer(der_bytes: &[u8], cert_id: &CertId) -> Result<Answer, VerifyError> {
    let response = der::parse_single(der_bytes, der::TAG_SEQUENCE, "OCSPResponse")?;
    let mut fields = response.reader();
    let status = fields.read(der::TAG_ENUMERATED, "responseStatus")?;
    let status = match status.content {
        [code] => ResponseStatus::from_code(*code),
        _ => None,
    };
    if status != Some(ResponseStatus::Successful) {
        return Err(VerifyError::Status(status));
    }
    let bytes = fields.read(explicit(0), "responseBytes")?;
    fields.finish("OCSPResponse has extra fields")?;
    let response_bytes = der::parse_single(bytes.content, der::TAG_SEQUENCE, "ResponseBytes")?;
    let mut response_bytes = response_bytes.reader();
    let response_type = response_bytes.read(der::TAG_OID, "responseType")?;
    if response_type.content != oid::OCSP_BASIC {
        return Err(VerifyError::Malformed("not a basic OCSP response".into()));
    }
    let basic_octets = response_bytes.read(der::TAG_OCTET_STRING, "response")?;
    let basic = der::parse_single(basic_octets.content, der::TAG_SEQUENCE, "BasicOCSPResponse")?;
    let mut basic_fields = basic.reader();
    let data = basic_fields.read(der::TAG_SEQUENCE, "tbsResponseData")?;
    let mut data_fields = data.reader();
    data_fields.read_optional(explicit(0))?;
    let responder = data_fields.read_any()?;
    if responder.tag != explicit(1) && responder.tag != explicit(2) {
        return Err(VerifyError::Malformed("responderID".into()));
    }
    let produced_at = data_fields.read(der::TAG_GENERALIZED_TIME, "producedAt")?;
    let produced_at = der::parse_generalized_time(produced_at.content)?;
    let responses = data_fields.read(der::TAG_SEQUENCE, "responses")?;
    let mut responses = responses.reader();
    while !responses.is_empty() {
        let single = parse_single_response(&mut responses)?;
        if single.cert_id.as_ref() != Ok(cert_id) {
            continue;
        }
        let next_update = single.next_update.ok_or(VerifyError::NoNextUpdate)?;
        return Ok(Answer {
            status: single.status,
            this_update: single.this_update,
            next_update,
            produced_at,
        });
    }
    Err(VerifyError::CertIdMismatch)
}

/// Checks an upstream response before it is cached: a successful basic response, signed by
/// `issuer` or by a responder certificate `issuer` delegated with id-kp-OCSPSigning
/// (RFC 6960 §4.2.2.2, verified by OpenSSL with `issuer` as the only trust anchor), that
/// answers for `cert_id`, with thisUpdate ≤ now (+ skew) < nextUpdate.
pub fn verify_upstream(
    der_bytes: &[u8],
    cert_id: &CertId,
    issuer: &pnc_pki::Certificate,
    now: i64,
) -> Result<VerifiedResponse, VerifyError> {
    let answer = read_answer(der_bytes, cert_id)?;
    if answer.this_update > now + MAX_CLOCK_SKEW_SECONDS {
        return Err(VerifyError::FutureThisUpdate);
    }
    if answer.next_update <= answer.this_update {
        return Err(VerifyError::BadValidityWindow);
    }
    if answer.next_update <= now {
        return Err(VerifyError::Expired);
    }
    verify_signature(der_bytes, issuer).map_err(VerifyError::Signature)?;
    Ok(VerifiedResponse {
        der: der_bytes.to_vec(),
        answer,
    })
}

fn verify_signature(der_bytes: &[u8], issuer: &pnc_pki::Certificate) -> Result<(), String> {
    let error = |error: openssl::error::ErrorStack| error.to_string();
    let response = OcspResponse::from_der(der_bytes).map_err(error)?;
    let basic = response.basic().map_err(error)?;
    let issuer = X509::from_der(issuer.der()).map_err(error)?;
    let mut certs = Stack::new().map_err(error)?;
    certs.push(issuer.clone()).map_err(error)?;
    let mut store = X509StoreBuilder::new().map_err(error)?;
    store.add_cert(issuer).map_err(error)?;
    // The issuer is the anchor even when it is an intermediate: pnc trusts it because the
    // truststore knows it, not because of its own chain.
    store
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(error)?;
    let store = store.build();
    basic
        .verify(&certs, &store, OcspFlag::empty())
        .map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert_id::HashAlgorithm;

    fn cert_id() -> CertId {
        CertId::new(HashAlgorithm::Sha1, vec![3; 20], vec![4; 20], &[0x42]).unwrap()
    }

    #[test]
    fn ok_request_round_trip() {
        let request = build_request(&cert_id());
        let question = parse_request(&request).unwrap();
        assert_eq!(question.cert_id, cert_id());
        assert_eq!(question.nonce, None);
    }

    #[test]
    fn fail_two_certificates_or_garbage() {
        let single = der::sequence(&[&cert_id().to_der()]);
        let list = der::sequence(&[&single, &single]);
        let request = der::sequence(&[&der::sequence(&[&list])]);
        assert_eq!(
            parse_request(&request),
            Err(RequestError::NotOneCertificate)
        );
        assert!(parse_request(b"").is_err());
        assert!(parse_request(&[0x30, 0x00]).is_err());
        assert!(parse_request(&[0xff; 64]).is_err());
        let mut trailing = build_request(&cert_id());
        trailing.push(0);
        assert!(parse_request(&trailing).is_err());
    }

    #[test]
    fn ok_error_responses_are_tiny() {
        assert_eq!(
            ResponseStatus::Unauthorized.error_response(),
            vec![0x30, 0x03, 0x0a, 0x01, 0x06]
        );
        assert_eq!(
            read_answer(&ResponseStatus::TryLater.error_response(), &cert_id()).unwrap_err(),
            VerifyError::Status(Some(ResponseStatus::TryLater))
        );
    }
}
