//! RCP: the root certificate pool after OPCP `rcp.v1.json` (`/v1/root/...`).
//!
//! Every authenticated role reads (a CPO installs V2G roots in its chargers; MaEVe and
//! CitrineOS read only `RootCertificateCollection.rootCertificates[].caCertificate`);
//! only admins write. The JSON field names are OPCP's, including its capitalised
//! wrapper keys. The truststore checks every certificate; this module only parses.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use pnc_proto::common::v1::Certificate;
use pnc_proto::truststore::v1::{GetRootRequest, ListRootsRequest, PutRootRequest, Root, RootType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::{AppState, request_as};

/// OPCP limits base64 certificate strings to 800 characters; the ecosystem applies the
/// limit to the decoded DER, which is the ISO 15118 certificate limit [V2G2-010].
pub const OPCP_MAX_CERTIFICATE_DER_BYTES: usize = 800;
/// The base64 text of a certificate is refused beyond this many characters, before decoding.
const MAX_CERTIFICATE_TEXT_CHARS: usize = 24 * 1024;

/// An authenticated admin: 401 without valid credentials, 403 for any other role, both
/// before the body is read.
#[derive(Debug, Clone)]
pub struct Admin(pub Authenticated);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let caller = Authenticated::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}

/// Decodes a certificate given as base64 DER (whitespace and missing padding tolerated)
/// or as PEM; `field` names the JSON field in errors.
pub fn decode_certificate(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    if text.len() > MAX_CERTIFICATE_TEXT_CHARS {
        return Err(ApiError::bad_request(format!("{field} is too long")));
    }
    let body: String = match text.find("-----BEGIN CERTIFICATE-----") {
        Some(start) => {
            let rest = &text[start + "-----BEGIN CERTIFICATE-----".len()..];
            let end = rest.find("-----END CERTIFICATE-----").ok_or_else(|| {
                ApiError::bad_request(format!("{field} is PEM without an END line"))
            })?;
            rest[..end].to_string()
        }
        None => text.to_string(),
    };
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(ApiError::bad_request(format!("{field} is empty")));
    }
    let der = STANDARD
        .decode(&compact)
        .or_else(|_| STANDARD_NO_PAD.decode(&compact))
        .map_err(|_| ApiError::bad_request(format!("{field} is not valid base64")))?;
    if der.first() != Some(&0x30) {
        return Err(ApiError::bad_request(format!(
            "{field} is not a DER certificate"
        )));
    }
    Ok(der)
}

/// A root type as OPCP and OPNC spell it, in any case: `MO` (OPNC `eMSP`), `V2G`, `OEM`,
/// `PE`, plus pnc's `CSMS` and `MANUFACTURER`.
pub fn parse_root_type(name: &str) -> Option<RootType> {
    match name.trim().to_ascii_uppercase().as_str() {
        "V2G" => Some(RootType::V2g),
        "MO" | "EMSP" => Some(RootType::Mo),
        "OEM" => Some(RootType::Oem),
        "PE" => Some(RootType::Pe),
        "CSMS" => Some(RootType::Csms),
        "MANUFACTURER" => Some(RootType::Manufacturer),
        _ => None,
    }
}

pub fn opcp_root_type_name(root_type: RootType) -> &'static str {
    match root_type {
        RootType::V2g => "V2G",
        RootType::Mo => "MO",
        RootType::Oem => "OEM",
        RootType::Pe => "PE",
        RootType::Csms => "CSMS",
        RootType::Manufacturer => "MANUFACTURER",
        RootType::Unspecified => "UNKNOWN",
    }
}

/// The roles OPCP's RCP knows. CSMS and manufacturer roots are pnc's own extension; they
/// are listed only when asked for by type, so a CSMS that installs every listed root as a
/// V2G root in its chargers never installs a TLS root.
pub const OPCP_ROOT_TYPES: [RootType; 4] =
    [RootType::V2g, RootType::Mo, RootType::Oem, RootType::Pe];

pub fn root_types_of(root: &Root) -> Vec<RootType> {
    let mut types: Vec<RootType> = root
        .root_types
        .iter()
        .filter_map(|value| RootType::try_from(*value).ok())
        .collect();
    if types.is_empty() {
        types.push(RootType::try_from(root.root_type).unwrap_or(RootType::Unspecified));
    }
    types
}

/// RFC 3339 in UTC with a `Z`, as OPCP's examples (`2019-01-10T12:54:26Z`).
pub fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The ISO 15118 version a root's key belongs to: P-256 anchors ISO 15118-2, P-521 and
/// Ed448 ISO 15118-20. Other keys (CSMS TLS roots) name none.
pub fn xsd_msg_def_namespace(key_algorithm: &str) -> Option<&'static str> {
    match key_algorithm {
        "secp256r1" => Some("urn:iso:15118:2:2013:MsgDef"),
        "secp521r1" | "ed448" => Some("urn:iso:15118:20:2022:MsgDef"),
        _ => None,
    }
}

/// `RootCertV2` of OPCP.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootCertV2 {
    /// The pool's UUID of the root.
    pub root_certificate_id: String,
    /// The subject, RFC 4514 order (informative).
    pub distinguished_name: String,
    /// `MO`, `V2G`, `OEM` or `PE` (pnc adds `CSMS` and `MANUFACTURER`).
    pub root_type: String,
    /// Base64 DER.
    pub ca_certificate: String,
    pub common_name: String,
    /// Base64 of the subjectKeyIdentifier (OPCP's name for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_authority_key_identifier: Option<String>,
    /// Hex of the subjectKeyIdentifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_authority_key_identifier_hex: Option<String>,
    /// Lower-case hex serial number.
    pub root_issuer_serial_number: String,
    pub valid_from: String,
    pub valid_to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint: String,
    /// Lower-case hex SHA-1 of the DER.
    pub fingerprint_sha1: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xsd_msg_def_namespace: Option<String>,
    /// The key's curve: `secp256r1`, `secp521r1`, `ed448` (or `secp384r1`, `ed25519`, `rsa`).
    pub signature_algorithm: String,
}

impl RootCertV2 {
    /// `root` as OPCP shows it, with `root_type` as the role it is listed under.
    pub fn from_root(root: &Root, root_type: RootType) -> RootCertV2 {
        let ski = (!root.subject_key_identifier.is_empty()).then_some(&root.subject_key_identifier);
        RootCertV2 {
            root_certificate_id: root.id.clone(),
            distinguished_name: root.distinguished_name.clone(),
            root_type: opcp_root_type_name(root_type).to_string(),
            ca_certificate: STANDARD.encode(
                root.certificate
                    .as_ref()
                    .map(|certificate| certificate.der.as_slice())
                    .unwrap_or_default(),
            ),
            common_name: root.common_name.clone(),
            root_authority_key_identifier: ski.map(|ski| STANDARD.encode(ski)),
            root_authority_key_identifier_hex: ski.map(hex::encode),
            root_issuer_serial_number: root.serial_hex.to_ascii_lowercase(),
            valid_from: rfc3339(root.not_before),
            valid_to: rfc3339(root.not_after),
            organization_name: (!root.organization_name.is_empty())
                .then(|| root.organization_name.clone()),
            fingerprint: root.sha256_fingerprint.to_ascii_lowercase(),
            fingerprint_sha1: root.sha1_fingerprint.to_ascii_lowercase(),
            xsd_msg_def_namespace: xsd_msg_def_namespace(&root.key_algorithm).map(str::to_string),
            signature_algorithm: root.key_algorithm.clone(),
        }
    }

    /// As listed without a filter: under its first OPCP role, or its first role.
    fn primary(root: &Root) -> RootCertV2 {
        let types = root_types_of(root);
        let root_type = types
            .iter()
            .copied()
            .find(|root_type| OPCP_ROOT_TYPES.contains(root_type))
            .or_else(|| types.first().copied())
            .unwrap_or(RootType::Unspecified);
        RootCertV2::from_root(root, root_type)
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootCertificateCollection {
    pub root_certificates: Vec<RootCertV2>,
}

/// `GetAllRootCertsResponseV1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GetAllRootCertsResponse {
    #[serde(rename = "RootCertificateCollection")]
    pub root_certificate_collection: RootCertificateCollection,
}

/// `GetRootCertResponseV1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RootResponse {
    #[serde(rename = "RootResponse")]
    pub root_response: RootCertV2,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct RootFilter {
    /// `mo`, `v2g`, `oem` or `pe` (any case; pnc adds `csms` and `manufacturer`).
    pub root_type: Option<String>,
}

/// The body of `PUT /v1/root/rootCerts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PutRootBody {
    /// Base64 DER (PEM is accepted too).
    #[serde(
        alias = "cacertificate",
        alias = "CaCertificate",
        alias = "certificate"
    )]
    pub ca_certificate: String,
    /// `MO`, `V2G`, `OEM` or `PE`, any case; `eMSP` means `MO`.
    #[serde(alias = "roottype", alias = "RootType")]
    pub root_type: String,
}

/// Lists the pool's roots of `root_type` (all OPCP types when unspecified), in use only.
pub async fn list_pool(
    state: &AppState,
    caller: &Authenticated,
    root_type: RootType,
) -> Result<Vec<Root>, ApiError> {
    let response = state
        .truststore()
        .list_roots(request_as(
            &caller.0,
            ListRootsRequest {
                root_type: root_type as i32,
                ..ListRootsRequest::default()
            },
        ))
        .await?
        .into_inner();
    Ok(response
        .roots
        .into_iter()
        .filter(|root| {
            root_type != RootType::Unspecified
                || root_types_of(root)
                    .iter()
                    .any(|held| OPCP_ROOT_TYPES.contains(held))
        })
        .collect())
}

/// One root in use by its ID; revoked roots are gone for API readers (404).
pub async fn get_pool_root(
    state: &AppState,
    caller: &Authenticated,
    id: String,
) -> Result<Root, ApiError> {
    let root = state
        .truststore()
        .get_root(request_as(&caller.0, GetRootRequest { id }))
        .await?
        .into_inner();
    if root.revoked {
        return Err(ApiError::not_found(
            "Root certificate with the given ID is not found",
        ));
    }
    Ok(root)
}

/// Adds a root through the truststore, which checks it.
pub async fn put_pool_root(
    state: &AppState,
    caller: &Authenticated,
    der: Vec<u8>,
    root_types: &[RootType],
    ctl_tags: Vec<String>,
) -> Result<Root, ApiError> {
    let Some((first, additional)) = root_types.split_first() else {
        return Err(ApiError::bad_request("rootType is missing"));
    };
    Ok(state
        .truststore()
        .put_root(request_as(
            &caller.0,
            PutRootRequest {
                certificate: Some(Certificate { der }),
                root_type: *first as i32,
                ctl_tags,
                additional_root_types: additional.iter().map(|t| *t as i32).collect(),
            },
        ))
        .await?
        .into_inner())
}

pub async fn delete_pool_root(
    state: &AppState,
    caller: &Authenticated,
    id: String,
) -> Result<Root, ApiError> {
    Ok(state
        .truststore()
        .delete_root(request_as(&caller.0, GetRootRequest { id }))
        .await?
        .into_inner())
}

fn filter_type(name: Option<&str>) -> Result<RootType, ApiError> {
    match name.map(str::trim) {
        None | Some("") => Ok(RootType::Unspecified),
        Some(name) => parse_root_type(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown rootType `{name}`; expected mo, v2g, oem or pe"
            ))
        }),
    }
}

/// getAllRootCerts: every root of the pool in use, optionally of one type.
#[utoipa::path(
    get,
    path = "/v1/root/rootCerts",
    tag = "rcp",
    params(RootFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The roots", body = GetAllRootCertsResponse),
        (status = 400, description = "Unknown root type", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub async fn list_roots(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(filter): Query<RootFilter>,
) -> Result<Json<GetAllRootCertsResponse>, ApiError> {
    let root_type = filter_type(filter.root_type.as_deref())?;
    let roots = list_pool(&state, &caller, root_type).await?;
    let root_certificates = roots
        .iter()
        .map(|root| match root_type {
            RootType::Unspecified => RootCertV2::primary(root),
            listed_as => RootCertV2::from_root(root, listed_as),
        })
        .collect();
    Ok(Json(GetAllRootCertsResponse {
        root_certificate_collection: RootCertificateCollection { root_certificates },
    }))
}

/// getRootCert: one root by its rootCertificateId (or SHA-256 fingerprint).
#[utoipa::path(
    get,
    path = "/v1/root/rootCerts/{rootCertificateId}",
    tag = "rcp",
    params(("rootCertificateId" = String, Path, description = "The root's UUID or hex SHA-256 fingerprint")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The root", body = RootResponse),
        (status = 400, description = "Malformed ID", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such root", body = ErrorBody),
    )
)]
pub async fn get_root(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(root_certificate_id): Path<String>,
) -> Result<Json<RootResponse>, ApiError> {
    let root = get_pool_root(&state, &caller, root_certificate_id).await?;
    Ok(Json(RootResponse {
        root_response: RootCertV2::primary(&root),
    }))
}

/// saveRootCa (admin): adds a root after the truststore checked self-signature, CA flags,
/// validity and hash algorithm. Adding the same root again changes nothing.
#[utoipa::path(
    put,
    path = "/v1/root/rootCerts",
    tag = "rcp",
    request_body = PutRootBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The root is in the pool", body = RootResponse),
        (status = 400, description = "The certificate is not an acceptable root (the message names why)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn put_root(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<PutRootBody>,
) -> Result<Json<RootResponse>, ApiError> {
    let root_type = parse_root_type(&body.root_type).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown rootType `{}`; expected MO, V2G, OEM or PE",
            body.root_type
        ))
    })?;
    let der = decode_certificate("caCertificate", &body.ca_certificate)?;
    if OPCP_ROOT_TYPES.contains(&root_type) && der.len() > OPCP_MAX_CERTIFICATE_DER_BYTES {
        return Err(ApiError::bad_request(format!(
            "caCertificate is {} bytes of DER; ISO 15118 certificates are at most \
             {OPCP_MAX_CERTIFICATE_DER_BYTES} [V2G2-010]",
            der.len()
        )));
    }
    let root = put_pool_root(&state, &caller, der, &[root_type], Vec::new()).await?;
    Ok(Json(RootResponse {
        root_response: RootCertV2::from_root(&root, root_type),
    }))
}

/// deleteRootCa (admin): retires a root (root.cert.revoked). Dependent contracts and
/// provisioning certificates are not touched (OPCP: no cascade).
#[utoipa::path(
    delete,
    path = "/v1/root/rootCerts/{rootCertificateId}",
    tag = "rcp",
    params(("rootCertificateId" = String, Path, description = "The root's UUID or hex SHA-256 fingerprint")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The root was retired", body = RootResponse),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such root in use", body = ErrorBody),
    )
)]
pub async fn delete_root(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(root_certificate_id): Path<String>,
) -> Result<Json<RootResponse>, ApiError> {
    let root = delete_pool_root(&state, &caller, root_certificate_id).await?;
    Ok(Json(RootResponse {
        root_response: RootCertV2::primary(&root),
    }))
}

/// `GetCertificateTrustList` as pnc answers it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CertificateTrustList {
    /// Absent: no party signs V2G CTLs yet (OPCP: "not yet defined"), and pnc does not
    /// pretend to; the list is the pool's own view.
    #[serde(rename = "signerCertificate", skip_serializing_if = "Option::is_none")]
    pub signer_certificate: Option<String>,
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    #[serde(rename = "CTL")]
    pub ctl: CtlContent,
}

/// The pool's roots in use, grouped by the CTL that recognises them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CtlContent {
    pub european: Vec<RootCertV2>,
    pub american: Vec<RootCertV2>,
    /// Roots on no CTL.
    pub none: Vec<RootCertV2>,
}

/// GetCertificateTrustList: the roots in use grouped by CTL tag, unsigned.
#[utoipa::path(
    get,
    path = "/v1/root/ctl",
    tag = "rcp",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The pool's roots by CTL (unsigned: the ecosystem has not defined a CTL signer)", body = CertificateTrustList),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub async fn get_ctl(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<CertificateTrustList>, ApiError> {
    let roots = list_pool(&state, &caller, RootType::Unspecified).await?;
    let mut ctl = CtlContent {
        european: Vec::new(),
        american: Vec::new(),
        none: Vec::new(),
    };
    for root in &roots {
        let listed = RootCertV2::primary(root);
        let mut placed = false;
        for tag in &root.ctl_tags {
            match tag.as_str() {
                "european" => ctl.european.push(listed.clone()),
                "american" => ctl.american.push(listed.clone()),
                _ => continue,
            }
            placed = true;
        }
        if !placed {
            ctl.none.push(listed);
        }
    }
    Ok(Json(CertificateTrustList {
        signer_certificate: None,
        time_stamp: rfc3339(pnc_common::db::unix_now()),
        ctl,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_root_types_in_any_spelling() {
        assert_eq!(parse_root_type("mo"), Some(RootType::Mo));
        assert_eq!(parse_root_type("eMSP"), Some(RootType::Mo));
        assert_eq!(parse_root_type(" V2G "), Some(RootType::V2g));
        assert_eq!(parse_root_type("pe"), Some(RootType::Pe));
        assert_eq!(parse_root_type("tls"), None);
    }

    #[test]
    fn ok_rfc3339_like_opcp_examples() {
        assert_eq!(rfc3339(1_547_124_866), "2019-01-10T12:54:26Z");
        assert_eq!(rfc3339(253_402_300_740), "9999-12-31T23:59:00Z");
    }

    #[test]
    fn ok_certificate_as_base64_or_pem() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let base64 = STANDARD.encode(&der);
        assert_eq!(decode_certificate("x", &base64).expect("base64"), der);
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64
        );
        assert_eq!(decode_certificate("x", &pem).expect("pem"), der);
        assert_eq!(
            decode_certificate("x", base64.trim_end_matches('=')).expect("no padding"),
            der
        );
    }

    #[test]
    fn fail_certificate_text() {
        assert!(decode_certificate("x", "").is_err());
        assert!(decode_certificate("x", "not base64!").is_err());
        // Valid base64 of something that is not a DER SEQUENCE.
        assert!(decode_certificate("x", "aGVsbG8=").is_err());
    }
}
