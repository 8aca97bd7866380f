//! CharIN OPNC v1 RCP (`/opnc/v1/rcp/rootcertificates`): the same pool as OPCP's RCP in
//! OPNC's shapes (ecosystem-apis §3): the collection is an array under
//! `rootCertificateCollection`, one root is wrapped in the misspelt key `roootCertificate`,
//! a root lists all its roles (`rootTypeList`, `eMSP` for MO) and CTLs (`rootCtlList`).
//!
//! The optional routing headers (`OPNC-from-party-type`, `…-id`, `OPNC-to-party-type`,
//! `…-id`) are validated and logged. pnc answers from its own pool: it does not forward to
//! other pools yet.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use pnc_proto::truststore::v1::{Root, RootType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::roots::{
    self, Admin, OPCP_MAX_CERTIFICATE_DER_BYTES, RootCertV2, decode_certificate, parse_root_type,
    root_types_of,
};
use crate::state::AppState;

const PARTY_TYPES: [&str; 7] = ["emsp", "cpo", "oem", "pki", "cps", "pcp", "ccp"];

/// OPNC's routing headers, validated.
#[derive(Debug, Clone, Default)]
pub struct OpncRouting {
    pub from_party_type: Option<String>,
    pub from_party_id: Option<String>,
    pub to_party_type: Option<String>,
    pub to_party_id: Option<String>,
}

fn header(parts: &Parts, name: &str) -> Result<Option<String>, ApiError> {
    match parts.headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|value| Some(value.trim().to_string()))
            .map_err(|_| ApiError::bad_request(format!("{name} is not ASCII"))),
    }
}

/// A party ID fits its type: a SHA-256 fingerprint for PKIs and CPSs, an alphanumeric ID
/// (WMI, provider ID, operator ID, with OPNC's optional separators) otherwise.
fn check_party(
    type_header: &str,
    party_type: Option<&str>,
    id_header: &str,
    party_id: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(party_type) = party_type
        && !PARTY_TYPES.contains(&party_type.to_ascii_lowercase().as_str())
    {
        return Err(ApiError::bad_request(format!(
            "{type_header} `{party_type}` is not one of {}",
            PARTY_TYPES.join(", ")
        )));
    }
    let Some(party_id) = party_id else {
        return Ok(());
    };
    let is_fingerprint_party = party_type
        .map(str::to_ascii_lowercase)
        .is_some_and(|party_type| party_type == "pki" || party_type == "cps");
    let valid = if is_fingerprint_party {
        party_id.len() == 64 && party_id.bytes().all(|byte| byte.is_ascii_hexdigit())
    } else {
        (1..=64).contains(&party_id.len())
            && party_id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'*')
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{id_header} `{party_id}` is not a valid party ID for its type"
        )))
    }
}

impl FromRequestParts<AppState> for OpncRouting {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<OpncRouting, ApiError> {
        let routing = OpncRouting {
            from_party_type: header(parts, "opnc-from-party-type")?,
            from_party_id: header(parts, "opnc-from-party-id")?,
            to_party_type: header(parts, "opnc-to-party-type")?,
            to_party_id: header(parts, "opnc-to-party-id")?,
        };
        check_party(
            "OPNC-from-party-type",
            routing.from_party_type.as_deref(),
            "OPNC-from-party-id",
            routing.from_party_id.as_deref(),
        )?;
        check_party(
            "OPNC-to-party-type",
            routing.to_party_type.as_deref(),
            "OPNC-to-party-id",
            routing.to_party_id.as_deref(),
        )?;
        if routing.to_party_type.is_some() || routing.from_party_type.is_some() {
            tracing::debug!(
                from_type = routing.from_party_type.as_deref().unwrap_or(""),
                from_id = routing.from_party_id.as_deref().unwrap_or(""),
                to_type = routing.to_party_type.as_deref().unwrap_or(""),
                to_id = routing.to_party_id.as_deref().unwrap_or(""),
                "opnc routing headers (answered locally)"
            );
        }
        Ok(routing)
    }
}

fn opnc_root_type_name(root_type: RootType) -> &'static str {
    match root_type {
        RootType::Mo => "eMSP",
        other => roots::opcp_root_type_name(other),
    }
}

fn opnc_ctl_name(tag: &str) -> Option<&'static str> {
    match tag {
        "european" => Some("European CTL"),
        "american" => Some("American CTL"),
        _ => None,
    }
}

/// `RootCertificateV1` of OPNC.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootCertificateV1 {
    pub root_certificate_id: String,
    pub distinguished_name: String,
    /// `European CTL`, `American CTL`, or `No CTL`.
    pub root_ctl_list: Vec<String>,
    /// `eMSP`, `V2G`, `OEM`, `PE` (pnc adds `CSMS`, `MANUFACTURER`).
    pub root_type_list: Vec<String>,
    /// The first of `rootTypeList` (the schema requires `rootType`).
    pub root_type: String,
    /// Base64 DER.
    pub ca_certificate: String,
    pub common_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_authority_key_identifier: Option<String>,
    pub root_issuer_serial_number: String,
    pub valid_from: String,
    pub valid_to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// Lower-case hex SHA-256.
    pub fingerprint: String,
}

impl RootCertificateV1 {
    fn from_root(root: &Root) -> RootCertificateV1 {
        let types = root_types_of(root);
        let opcp = RootCertV2::from_root(
            root,
            types.first().copied().unwrap_or(RootType::Unspecified),
        );
        let mut ctls: Vec<String> = root
            .ctl_tags
            .iter()
            .filter_map(|tag| opnc_ctl_name(tag))
            .map(str::to_string)
            .collect();
        if ctls.is_empty() {
            ctls.push("No CTL".to_string());
        }
        let type_names: Vec<String> = types
            .iter()
            .map(|root_type| opnc_root_type_name(*root_type).to_string())
            .collect();
        RootCertificateV1 {
            root_certificate_id: opcp.root_certificate_id,
            distinguished_name: opcp.distinguished_name,
            root_ctl_list: ctls,
            root_type: type_names.first().cloned().unwrap_or_default(),
            root_type_list: type_names,
            ca_certificate: opcp.ca_certificate,
            common_name: opcp.common_name,
            root_authority_key_identifier: opcp.root_authority_key_identifier,
            root_issuer_serial_number: opcp.root_issuer_serial_number,
            valid_from: opcp.valid_from,
            valid_to: opcp.valid_to,
            organization_name: opcp.organization_name,
            fingerprint: opcp.fingerprint,
        }
    }
}

/// `GetRootCertificatesResponseV1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetRootCertificatesResponse {
    pub root_certificate_collection: Vec<RootCertificateV1>,
}

/// `GetRootCertificateResponseV1`, with the specification's spelling `roootCertificate`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GetRootCertificateResponse {
    #[serde(rename = "roootCertificate")]
    pub root_certificate: RootCertificateV1,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct PkiTypeFilter {
    /// `emsp`, `v2g`, `oem` or `pe`.
    pub pki_type: Option<String>,
}

/// The body of `PUT /opnc/v1/rcp/rootcertificates`: a root object. Fields the pool derives
/// from the certificate (names, dates, fingerprints) are ignored when sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PutRootCertificateBody {
    /// Base64 DER (PEM accepted).
    pub ca_certificate: String,
    /// `eMSP`, `V2G`, `OEM`, `PE`; one root may serve several roles.
    #[serde(default)]
    pub root_type_list: Vec<String>,
    /// A single role, when `rootTypeList` is absent.
    #[serde(default)]
    pub root_type: Option<String>,
    /// `European CTL`, `American CTL`, `No CTL`.
    #[serde(default)]
    pub root_ctl_list: Vec<String>,
}

fn parse_ctl(name: &str) -> Result<Option<String>, ApiError> {
    match name.trim().to_ascii_lowercase().as_str() {
        "european ctl" | "european" => Ok(Some("european".to_string())),
        "american ctl" | "american" => Ok(Some("american".to_string())),
        "no ctl" | "none" => Ok(None),
        _ => Err(ApiError::bad_request(format!(
            "unknown rootCtlList entry `{name}`; expected European CTL, American CTL or No CTL"
        ))),
    }
}

/// GetRootCertificates: the roots in use, optionally of one PKI type.
#[utoipa::path(
    get,
    path = "/opnc/v1/rcp/rootcertificates",
    tag = "opnc-rcp",
    params(PkiTypeFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The roots", body = GetRootCertificatesResponse),
        (status = 400, description = "Unknown pkiType or invalid routing header", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub async fn list_root_certificates(
    State(state): State<AppState>,
    caller: Authenticated,
    _routing: OpncRouting,
    Query(filter): Query<PkiTypeFilter>,
) -> Result<Json<GetRootCertificatesResponse>, ApiError> {
    let root_type = match filter.pki_type.as_deref().map(str::trim) {
        None | Some("") => RootType::Unspecified,
        Some(name) => parse_root_type(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown pkiType `{name}`; expected emsp, v2g, oem or pe"
            ))
        })?,
    };
    let roots = roots::list_pool(&state, &caller, root_type).await?;
    Ok(Json(GetRootCertificatesResponse {
        root_certificate_collection: roots.iter().map(RootCertificateV1::from_root).collect(),
    }))
}

/// GetRootCertificate: one root by its rootCertificateId.
#[utoipa::path(
    get,
    path = "/opnc/v1/rcp/rootcertificates/{rootCertificateId}",
    tag = "opnc-rcp",
    params(("rootCertificateId" = String, Path, description = "The root's UUID or hex SHA-256 fingerprint")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The root", body = GetRootCertificateResponse),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such root", body = ErrorBody),
    )
)]
pub async fn get_root_certificate(
    State(state): State<AppState>,
    caller: Authenticated,
    _routing: OpncRouting,
    Path(root_certificate_id): Path<String>,
) -> Result<Json<GetRootCertificateResponse>, ApiError> {
    let root = roots::get_pool_root(&state, &caller, root_certificate_id).await?;
    Ok(Json(GetRootCertificateResponse {
        root_certificate: RootCertificateV1::from_root(&root),
    }))
}

/// PutRootCertificate (admin): adds a root with its roles and CTLs.
#[utoipa::path(
    put,
    path = "/opnc/v1/rcp/rootcertificates",
    tag = "opnc-rcp",
    request_body = PutRootCertificateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The root is in the pool", body = GetRootCertificateResponse),
        (status = 400, description = "Not an acceptable root (the message names why)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn put_root_certificate(
    State(state): State<AppState>,
    Admin(caller): Admin,
    _routing: OpncRouting,
    ApiJson(body): ApiJson<PutRootCertificateBody>,
) -> Result<Json<GetRootCertificateResponse>, ApiError> {
    let names: Vec<&str> = if body.root_type_list.is_empty() {
        body.root_type.as_deref().into_iter().collect()
    } else {
        body.root_type_list.iter().map(String::as_str).collect()
    };
    if names.is_empty() {
        return Err(ApiError::bad_request("rootTypeList is missing"));
    }
    let mut root_types = Vec::new();
    for name in names {
        let root_type = parse_root_type(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown root type `{name}`; expected eMSP, V2G, OEM or PE"
            ))
        })?;
        if !root_types.contains(&root_type) {
            root_types.push(root_type);
        }
    }
    let mut ctl_tags = Vec::new();
    for name in &body.root_ctl_list {
        if let Some(tag) = parse_ctl(name)? {
            ctl_tags.push(tag);
        }
    }
    let der = decode_certificate("caCertificate", &body.ca_certificate)?;
    if der.len() > OPCP_MAX_CERTIFICATE_DER_BYTES {
        return Err(ApiError::bad_request(format!(
            "caCertificate is {} bytes of DER; ISO 15118 certificates are at most \
             {OPCP_MAX_CERTIFICATE_DER_BYTES} [V2G2-010]",
            der.len()
        )));
    }
    let root = roots::put_pool_root(&state, &caller, der, &root_types, ctl_tags).await?;
    Ok(Json(GetRootCertificateResponse {
        root_certificate: RootCertificateV1::from_root(&root),
    }))
}

/// DeleteRootCertificate (admin): retires a root (root.cert.revoked).
#[utoipa::path(
    delete,
    path = "/opnc/v1/rcp/rootcertificates/{rootCertificateId}",
    tag = "opnc-rcp",
    params(("rootCertificateId" = String, Path, description = "The root's UUID or hex SHA-256 fingerprint")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The root was retired", body = GetRootCertificateResponse),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such root in use", body = ErrorBody),
    )
)]
pub async fn delete_root_certificate(
    State(state): State<AppState>,
    Admin(caller): Admin,
    _routing: OpncRouting,
    Path(root_certificate_id): Path<String>,
) -> Result<Json<GetRootCertificateResponse>, ApiError> {
    let root = roots::delete_pool_root(&state, &caller, root_certificate_id).await?;
    Ok(Json(GetRootCertificateResponse {
        root_certificate: RootCertificateV1::from_root(&root),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_party_ids_by_type() {
        let fingerprint = "a".repeat(64);
        assert!(check_party("t", Some("pki"), "i", Some(&fingerprint)).is_ok());
        assert!(check_party("t", Some("oem"), "i", Some("WMI")).is_ok());
        assert!(check_party("t", Some("cpo"), "i", Some("DE*ICE")).is_ok());
        assert!(check_party("t", None, "i", None).is_ok());
    }

    #[test]
    fn fail_party_headers() {
        assert!(check_party("t", Some("bank"), "i", None).is_err());
        assert!(check_party("t", Some("cps"), "i", Some("WMI")).is_err());
        assert!(check_party("t", Some("emsp"), "i", Some("a b")).is_err());
    }

    #[test]
    fn ok_ctl_names() {
        assert_eq!(
            parse_ctl("European CTL").expect("eu"),
            Some("european".into())
        );
        assert_eq!(parse_ctl("No CTL").expect("none"), None);
        assert!(parse_ctl("Asian CTL").is_err());
    }
}
