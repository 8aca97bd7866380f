//! OCPP-shaped OCSP for CSMSs: 2.0.1 GetCertificateStatus (M06), 2.1
//! GetCertificateChainStatus, and the contract check of C07 Authorize. Open to CPO tokens
//! and to stations authenticated by client certificate; field names and enums as in
//! specs/ocpp-2.0.1 (docs/ecosystem-apis.md §4, §5, §7, §8).
//!
//! Bad values (hex, lengths, algorithms) are answered in OCPP's terms (`Failed` with a
//! statusInfo reason code) so a CSMS can pass the answer on; malformed JSON is a 400.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_proto::common::v1::Certificate as CertificateMessage;
use pnc_proto::ocsp::v1::{
    AuthorizeRequest, CertId, CertStatus, ContractCertificateStatus, GetStatusRequest,
    HashAlgorithm,
};
use pnc_proto::principal::Role;
use serde::{Deserialize, Serialize};
use tonic::Code;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::ocsp::{CachedAnswer, unix_now};
use crate::state::{AppState, request_as};

/// OCPP 2.0.1 limit on `ocspResult` (GetCertificateStatusResponse).
const MAX_OCSP_RESULT_CHARS: usize = 5500;
/// OCPP 2.0.1 limit on the PEM `certificate` of AuthorizeRequest (5500), with room for 2.1.
const MAX_CERTIFICATE_CHARS: usize = 10_000;

/// OCPP OCSPRequestDataType.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OcspRequestData {
    /// `SHA256`, `SHA384` or `SHA512`.
    pub hash_algorithm: String,
    /// Hex; ≤ 128 characters.
    pub issuer_name_hash: String,
    pub issuer_key_hash: String,
    /// Hex, without leading zeros; ≤ 40 characters.
    pub serial_number: String,
    #[serde(rename = "responderURL", default)]
    pub responder_url: String,
}

/// OCPP CertificateHashDataType.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateHashData {
    pub hash_algorithm: String,
    pub issuer_name_hash: String,
    pub issuer_key_hash: String,
    pub serial_number: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetCertificateStatusRequest {
    pub ocsp_request_data: OcspRequestData,
}

/// OCPP StatusInfoType.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusInfo {
    /// ≤ 20 characters.
    pub reason_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetCertificateStatusResponse {
    /// `Accepted` (always with `ocspResult`) or `Failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_info: Option<StatusInfo>,
    /// Base64 DER OCSPResponse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsp_result: Option<String>,
}

/// Why a status could not be given, in OCPP reason codes (≤ 20 characters).
fn failure(reason_code: &str, additional_info: impl Into<String>) -> GetCertificateStatusResponse {
    let mut info: String = additional_info.into();
    info.truncate(512);
    GetCertificateStatusResponse {
        status: "Failed".to_string(),
        status_info: Some(StatusInfo {
            reason_code: reason_code.to_string(),
            additional_info: Some(info),
        }),
        ocsp_result: None,
    }
}

fn parse_hex(field: &str, value: &str, max_chars: usize) -> Result<Vec<u8>, String> {
    let value = value.trim();
    if value.is_empty() || value.len() > max_chars {
        return Err(format!("{field} must be 1 to {max_chars} hex characters"));
    }
    let digits = value.as_bytes();
    // The serial number may have an odd number of digits (no leading zeros, §4.1): the
    // first then stands for a byte of its own.
    let (lone, pairs) = digits.split_at(digits.len() % 2);
    let mut bytes = Vec::with_capacity(digits.len().div_ceil(2));
    // Each digit's value, or NOT_HEX; OR-ed together, one bad digit marks them all.
    let mut seen = 0u8;
    for &character in lone {
        let digit = HEX_VALUE[usize::from(character)];
        seen |= digit;
        bytes.push(digit);
    }
    for pair in pairs.chunks_exact(2) {
        let (high, low) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        seen |= high | low;
        bytes.push(high << 4 | low);
    }
    if seen & NOT_HEX != 0 {
        return Err(format!("{field} is not hex"));
    }
    Ok(bytes)
}

/// Marks a character that is not a hex digit in [`HEX_VALUE`].
const NOT_HEX: u8 = 0x80;
/// The value of each hex digit, either case; [`NOT_HEX`] for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut index = 0;
    while index < 10 {
        table[b'0' as usize + index] = index as u8;
        index += 1;
    }
    let mut index = 0;
    while index < 6 {
        table[b'a' as usize + index] = 10 + index as u8;
        table[b'A' as usize + index] = 10 + index as u8;
        index += 1;
    }
    table
};

/// The CertID of OCPP hash data, checked the way the ocsp service will check it again.
pub(crate) fn cert_id_of(
    hash_algorithm: &str,
    issuer_name_hash: &str,
    issuer_key_hash: &str,
    serial_number: &str,
) -> Result<CertId, String> {
    let (algorithm, length) = match hash_algorithm {
        "SHA256" => (HashAlgorithm::Sha256, 32),
        "SHA384" => (HashAlgorithm::Sha384, 48),
        "SHA512" => (HashAlgorithm::Sha512, 64),
        other => return Err(format!("unsupported hashAlgorithm `{other}`")),
    };
    let issuer_name_hash = parse_hex("issuerNameHash", issuer_name_hash, 128)?;
    let issuer_key_hash = parse_hex("issuerKeyHash", issuer_key_hash, 128)?;
    if issuer_name_hash.len() != length || issuer_key_hash.len() != length {
        return Err(format!(
            "issuerNameHash and issuerKeyHash must be {length} bytes for {hash_algorithm}"
        ));
    }
    let serial = parse_hex("serialNumber", serial_number, 40)?;
    Ok(CertId {
        hash_algorithm: algorithm as i32,
        issuer_name_hash,
        issuer_key_hash,
        serial,
    })
}

/// The answer cache's key of a GetCertificateStatus: every field that decides the answer,
/// the responder hint included (shared with the lean path, routes::ocpp_fast).
/// `gcs|{algorithm}|{name hash}|{key hash}|{serial}|{responder URL}`, hex in lower case, built
/// in one buffer.
pub(crate) fn status_cache_key(cert_id: &CertId, responder_url: &str) -> Bytes {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let responder_url = responder_url.trim();
    let hashes = [
        &cert_id.issuer_name_hash,
        &cert_id.issuer_key_hash,
        &cert_id.serial,
    ];
    let hex_length: usize = hashes.iter().map(|bytes| 2 * bytes.len() + 1).sum();
    let mut key = Vec::with_capacity(16 + hex_length + responder_url.len());
    key.extend_from_slice(b"gcs|");
    // Into the buffer directly (writing to a Vec cannot fail).
    let _ = std::io::Write::write_fmt(&mut key, format_args!("{}", cert_id.hash_algorithm));
    for bytes in hashes {
        key.push(b'|');
        for byte in bytes {
            key.push(DIGITS[usize::from(byte >> 4)]);
            key.push(DIGITS[usize::from(byte & 0x0f)]);
        }
    }
    key.push(b'|');
    key.extend_from_slice(responder_url.as_bytes());
    Bytes::from(key)
}

/// An `Accepted` answer, serialized once: the gateway's cache keeps these bytes, so a cached
/// answer is sent as it is (by the handler and by routes::ocpp_fast alike).
pub(crate) fn accepted_json(ocsp_result: String) -> Bytes {
    let answer = GetCertificateStatusResponse {
        status: "Accepted".to_string(),
        status_info: None,
        ocsp_result: Some(ocsp_result),
    };
    // Serializing strings into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(&answer).unwrap_or_default())
}

/// A JSON body as it is, with the content type `Json` gives.
pub(crate) fn json_response(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn require_station_side(caller: &Authenticated) -> Result<(), ApiError> {
    caller.require_role(&[Role::Cpo, Role::Charger])
}

/// Maps an ocsp service error to an OCPP failure.
fn status_failure(status: &tonic::Status) -> GetCertificateStatusResponse {
    let error = pnc_common::PncError::from(status.clone());
    match status.code() {
        Code::InvalidArgument => failure("FormatViolation", error.message),
        Code::NotFound => failure("UnknownIssuer", error.message),
        Code::PermissionDenied => failure("ResponderNotAllowed", error.message),
        Code::Unavailable | Code::DeadlineExceeded => failure("OcspUnavailable", error.message),
        _ => failure("InternalError", "internal error"),
    }
}

/// OCPP 2.0.1 GetCertificateStatus: the OCSP response for one certificate of a charger's
/// chain. `Accepted` always carries `ocspResult`.
#[utoipa::path(
    post,
    path = "/v1/ocpp/get-certificate-status",
    tag = "ocpp",
    request_body = GetCertificateStatusRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Accepted with ocspResult, or Failed with statusInfo", body = GetCertificateStatusResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a CPO or station", body = crate::error::ErrorBody),
    )
)]
pub async fn get_certificate_status(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<GetCertificateStatusRequest>,
) -> Result<Response, ApiError> {
    require_station_side(&caller)?;
    let data = request.ocsp_request_data;
    let cert_id = match cert_id_of(
        &data.hash_algorithm,
        &data.issuer_name_hash,
        &data.issuer_key_hash,
        &data.serial_number,
    ) {
        Ok(cert_id) => cert_id,
        Err(message) => return Ok(Json(failure("FormatViolation", message)).into_response()),
    };
    let key = status_cache_key(&cert_id, &data.responder_url);
    if let Some(hit) = state.ocsp_answers.get(&key, unix_now()).await {
        return Ok(json_response(hit.body.clone()));
    }
    let response = state
        .ocsp()
        .get_status(request_as(
            &caller.0,
            GetStatusRequest {
                cert_id: Some(cert_id),
                responder_url_hint: data.responder_url.trim().to_string(),
                certificate: None,
            },
        ))
        .await;
    let response = match response {
        Ok(response) => response.into_inner(),
        Err(status) => return Ok(Json(status_failure(&status)).into_response()),
    };
    if response.ocsp_response_der.is_empty() {
        return Ok(Json(failure("OcspUnavailable", "no OCSP response")).into_response());
    }
    let encoded = STANDARD.encode(&response.ocsp_response_der);
    if encoded.len() > MAX_OCSP_RESULT_CHARS {
        return Ok(Json(failure(
            "ResultTooLarge",
            format!("the OCSP response exceeds OCPP's {MAX_OCSP_RESULT_CHARS} characters"),
        ))
        .into_response());
    }
    let answer = accepted_json(encoded);
    state
        .ocsp_answers
        .insert(
            &key,
            Arc::new(CachedAnswer::new(
                answer.clone(),
                response.this_update,
                response.next_update,
            )),
        )
        .await;
    Ok(json_response(answer))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatusRequestInfo {
    pub certificate_hash_data: CertificateHashData,
    /// `OCSP` or `CRL`.
    pub source: String,
    /// 1..5 URLs from the certificate (OCSP responders or CRL distribution points).
    #[serde(default)]
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetCertificateChainStatusRequest {
    /// 1..4 certificates.
    pub certificate_status_requests: Vec<CertificateStatusRequestInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    pub certificate_hash_data: CertificateHashData,
    pub source: String,
    /// `Good`, `Revoked`, `Unknown` or `Failed`.
    pub status: String,
    /// RFC 3339; when the verdict should be asked for again.
    pub next_update: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetCertificateChainStatusResponse {
    pub certificate_status: Vec<CertificateStatus>,
}

fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|time| {
            time.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// OCPP 2.1 GetCertificateChainStatus: a verdict with freshness per certificate, from the
/// same cache as GetCertificateStatus. Both sources are answered from pnc's status cache
/// (for pnc's own CAs the CRL and the OCSP answers come from the same issuance records);
/// a failed check is `Failed` with a nextUpdate a minute ahead.
#[utoipa::path(
    post,
    path = "/v1/ocpp/get-certificate-chain-status",
    tag = "ocpp",
    request_body = GetCertificateChainStatusRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One verdict per certificate", body = GetCertificateChainStatusResponse),
        (status = 400, description = "Malformed request", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a CPO or station", body = crate::error::ErrorBody),
    )
)]
pub async fn get_certificate_chain_status(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<GetCertificateChainStatusRequest>,
) -> Result<Json<GetCertificateChainStatusResponse>, ApiError> {
    require_station_side(&caller)?;
    let requests = request.certificate_status_requests;
    if requests.is_empty() || requests.len() > 4 {
        return Err(ApiError::bad_request(
            "certificateStatusRequests must hold 1 to 4 entries",
        ));
    }
    let mut verdicts = Vec::with_capacity(requests.len());
    for item in requests {
        if item.source != "OCSP" && item.source != "CRL" {
            return Err(ApiError::bad_request("source must be OCSP or CRL"));
        }
        if item.urls.len() > 5 || item.urls.iter().any(|url| url.len() > 2000) {
            return Err(ApiError::bad_request(
                "at most 5 urls of at most 2000 characters",
            ));
        }
        let hash = &item.certificate_hash_data;
        let failed = |hash: CertificateHashData, source: String| CertificateStatus {
            certificate_hash_data: hash,
            source,
            status: "Failed".to_string(),
            next_update: rfc3339(unix_now() + 60),
        };
        let cert_id = match cert_id_of(
            &hash.hash_algorithm,
            &hash.issuer_name_hash,
            &hash.issuer_key_hash,
            &hash.serial_number,
        ) {
            Ok(cert_id) => cert_id,
            Err(_) => {
                verdicts.push(failed(item.certificate_hash_data, item.source));
                continue;
            }
        };
        // OCSP URLs are hints for the responder; CRL URLs are not OCSP responders.
        let hints: Vec<String> = if item.source == "OCSP" && !item.urls.is_empty() {
            item.urls.clone()
        } else {
            vec![String::new()]
        };
        let mut outcome = None;
        for hint in hints {
            let response = state
                .ocsp()
                .get_status(request_as(
                    &caller.0,
                    GetStatusRequest {
                        cert_id: Some(cert_id.clone()),
                        responder_url_hint: hint,
                        certificate: None,
                    },
                ))
                .await;
            match response {
                Ok(response) => {
                    outcome = Some(response.into_inner());
                    break;
                }
                // Another of the station's URLs may be a known responder.
                Err(status) if status.code() == Code::PermissionDenied => continue,
                Err(_) => break,
            }
        }
        verdicts.push(match outcome {
            Some(response) => CertificateStatus {
                certificate_hash_data: item.certificate_hash_data,
                source: item.source,
                status: match CertStatus::try_from(response.status) {
                    Ok(CertStatus::Good) => "Good",
                    Ok(CertStatus::Revoked) => "Revoked",
                    Ok(CertStatus::Unknown) => "Unknown",
                    _ => "Failed",
                }
                .to_string(),
                next_update: rfc3339(response.next_update),
            },
            None => failed(item.certificate_hash_data, item.source),
        });
    }
    Ok(Json(GetCertificateChainStatusResponse {
        certificate_status: verdicts,
    }))
}

/// OCPP IdTokenType.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdToken {
    /// ≤ 36 characters (an eMAID for contracts).
    pub id_token: String,
    #[serde(rename = "type")]
    pub token_type: String,
}

/// The subset of OCPP AuthorizeRequest that decides the contract check.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeContractRequest {
    pub id_token: IdToken,
    /// PEM contract chain, leaf first (sent when the station cannot check it itself).
    #[serde(default)]
    pub certificate: Option<String>,
    /// 1..4 OCSPRequestDataType of the contract chain.
    #[serde(default)]
    pub iso15118_certificate_hash_data: Vec<OcspRequestData>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdTokenInfo {
    /// `Accepted`, `Invalid`, `Expired`, `Blocked`, …
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeContractResponse {
    pub id_token_info: IdTokenInfo,
    /// `Accepted`, `SignatureError`, `CertificateExpired`, `CertificateRevoked`,
    /// `NoCertificateAvailable`, `CertChainError` or `ContractCancelled`.
    pub certificate_status: String,
}

/// OCPP C07 certificateStatus and the idTokenInfo.status C07.FR.13/15/17 pair with it.
fn c07_pair(status: ContractCertificateStatus) -> (&'static str, &'static str) {
    match status {
        ContractCertificateStatus::Accepted => ("Accepted", "Accepted"),
        ContractCertificateStatus::CertificateExpired => ("CertificateExpired", "Expired"),
        ContractCertificateStatus::CertificateRevoked => ("CertificateRevoked", "Invalid"),
        ContractCertificateStatus::SignatureError => ("SignatureError", "Invalid"),
        ContractCertificateStatus::NoCertificateAvailable => ("NoCertificateAvailable", "Invalid"),
        ContractCertificateStatus::ContractCancelled => ("ContractCancelled", "Blocked"),
        ContractCertificateStatus::CertChainError | ContractCertificateStatus::Unspecified => {
            ("CertChainError", "Invalid")
        }
    }
}

/// OCPP C07 for CSMSs: checks the contract chain (or, without one, its hash data) and
/// answers certificateStatus with the matching idTokenInfo.status.
#[utoipa::path(
    post,
    path = "/v1/ocpp/authorize",
    tag = "ocpp",
    request_body = AuthorizeContractRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contract check", body = AuthorizeContractResponse),
        (status = 400, description = "Malformed request", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a CPO or station", body = crate::error::ErrorBody),
    )
)]
pub async fn authorize(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<AuthorizeContractRequest>,
) -> Result<Json<AuthorizeContractResponse>, ApiError> {
    require_station_side(&caller)?;
    if request.id_token.id_token.len() > 36 {
        return Err(ApiError::bad_request(
            "idToken must be at most 36 characters",
        ));
    }
    if request.iso15118_certificate_hash_data.len() > 4 {
        return Err(ApiError::bad_request(
            "iso15118CertificateHashData holds at most 4 entries",
        ));
    }
    let mut chain = Vec::new();
    if let Some(pem) = request
        .certificate
        .as_deref()
        .filter(|pem| !pem.trim().is_empty())
    {
        if pem.len() > MAX_CERTIFICATE_CHARS {
            return Err(ApiError::bad_request("certificate is too long"));
        }
        let certificates = openssl::x509::X509::stack_from_pem(pem.as_bytes())
            .map_err(|_| ApiError::bad_request("certificate is not a PEM certificate chain"))?;
        if certificates.is_empty() || certificates.len() > 4 {
            return Err(ApiError::bad_request(
                "certificate must hold 1 to 4 PEM certificates",
            ));
        }
        for certificate in certificates {
            let der = certificate
                .to_der()
                .map_err(|_| ApiError::bad_request("certificate does not encode"))?;
            chain.push(CertificateMessage { der });
        }
    }
    let mut hash_data = Vec::new();
    if chain.is_empty() {
        for data in &request.iso15118_certificate_hash_data {
            match cert_id_of(
                &data.hash_algorithm,
                &data.issuer_name_hash,
                &data.issuer_key_hash,
                &data.serial_number,
            ) {
                Ok(cert_id) => hash_data.push(cert_id),
                Err(message) => return Err(ApiError::bad_request(message)),
            }
        }
    }
    let response = state
        .ocsp()
        .authorize(request_as(
            &caller.0,
            AuthorizeRequest {
                chain,
                hash_data,
                id_token: request.id_token.id_token.clone(),
            },
        ))
        .await?
        .into_inner();
    let status = ContractCertificateStatus::try_from(response.certificate_status)
        .unwrap_or(ContractCertificateStatus::CertChainError);
    if status != ContractCertificateStatus::Accepted {
        tracing::info!(detail = %response.detail, "contract check failed");
    }
    let (certificate_status, token_status) = c07_pair(status);
    // C07.FR.13: with ContractCancelled, the token's own status (Blocked, Expired, Unknown).
    let token_status = match response.id_token_status.as_str() {
        "" => token_status.to_string(),
        given => given.to_string(),
    };
    Ok(Json(AuthorizeContractResponse {
        id_token_info: IdTokenInfo {
            status: token_status,
        },
        certificate_status: certificate_status.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_hash_data_with_odd_serial() {
        let id = cert_id_of("SHA256", &"ab".repeat(32), &"CD".repeat(32), "1F2").unwrap();
        assert_eq!(id.serial, vec![0x01, 0xf2]);
        assert_eq!(id.issuer_key_hash, vec![0xcd; 32]);
    }

    #[test]
    fn ok_hex_as_the_hex_crate_reads_it() {
        for (value, expected) in [
            ("00ff", Some(vec![0x00, 0xff])),
            ("AbCd", Some(vec![0xab, 0xcd])),
            ("1f2", Some(vec![0x01, 0xf2])),
            ("7", Some(vec![0x07])),
            (" 0a ", Some(vec![0x0a])),
            ("0g", None),
            ("g", None),
            ("+1", None),
            ("0x10", None),
            ("é1", None),
        ] {
            assert_eq!(parse_hex("field", value, 40).ok(), expected, "{value}");
            if let Some(expected) = &expected {
                let trimmed = value.trim();
                let padded = if trimmed.len() % 2 == 1 {
                    format!("0{trimmed}")
                } else {
                    trimmed.to_string()
                };
                assert_eq!(&hex::decode(padded).unwrap(), expected, "{value}");
            }
        }
        // Every pair of ASCII characters, and each beside a multi-byte character.
        for first in 0u8..128 {
            for second in 0u8..128 {
                let pair = String::from_utf8(vec![first, second]).expect("ascii");
                if pair.trim() != pair {
                    continue;
                }
                assert_eq!(
                    parse_hex("field", &pair, 40).ok(),
                    hex::decode(&pair).ok(),
                    "{pair:?}"
                );
                let wide = format!("{pair}\u{e9}");
                assert_eq!(parse_hex("field", &wide, 40).ok(), None, "{wide:?}");
            }
        }
        assert_eq!(
            parse_hex("serialNumber", "zz", 40).unwrap_err(),
            "serialNumber is not hex"
        );
        assert_eq!(
            parse_hex("serialNumber", "", 40).unwrap_err(),
            "serialNumber must be 1 to 40 hex characters"
        );
    }

    #[test]
    fn ok_cache_key_as_formatted_before() {
        let id = cert_id_of("SHA384", &"aB".repeat(48), &"09".repeat(48), "1F2").unwrap();
        let formatted = format!(
            "gcs|{}|{}|{}|{}|{}",
            id.hash_algorithm,
            hex::encode(&id.issuer_name_hash),
            hex::encode(&id.issuer_key_hash),
            hex::encode(&id.serial),
            "http://ocsp.example/x"
        );
        assert_eq!(
            status_cache_key(&id, " http://ocsp.example/x\t"),
            Bytes::from(formatted)
        );
    }

    #[test]
    fn ok_cached_answer_is_what_json_sends() {
        let answer = GetCertificateStatusResponse {
            status: "Accepted".to_string(),
            status_info: None,
            ocsp_result: Some("MAMKAQE=".to_string()),
        };
        assert_eq!(
            accepted_json("MAMKAQE=".to_string()),
            serde_json::to_vec(&answer).unwrap()
        );
    }

    #[test]
    fn fail_bad_hash_data() {
        assert!(cert_id_of("SHA1", &"ab".repeat(20), &"ab".repeat(20), "01").is_err());
        assert!(cert_id_of("SHA256", &"ab".repeat(20), &"ab".repeat(32), "01").is_err());
        assert!(cert_id_of("SHA256", &"zz".repeat(32), &"ab".repeat(32), "01").is_err());
        assert!(cert_id_of("SHA256", &"ab".repeat(32), &"ab".repeat(32), "").is_err());
        assert!(
            cert_id_of(
                "SHA256",
                &"ab".repeat(32),
                &"ab".repeat(32),
                &"1".repeat(41)
            )
            .is_err()
        );
    }
}
