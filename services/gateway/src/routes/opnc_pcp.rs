//! OPNC v1 PCP (`/opnc/v1/pcp/…`, ecosystem-apis §3.2) and the OPNC routing headers every
//! OPNC route reads.
//!
//! pnc is the pool the request is for, so it never forwards: the `OPNC-to-party-*`
//! headers are validated and logged, and `OPNC-from-party-*`, when sent, must name a party
//! the caller may act for (an OEM's WMI, an eMSP's provider ID, a CPO's operator ID).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_common::ids::{OperatorId, ProviderId, Wmi};
use pnc_proto::principal::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::pcp::{fetch, put_request, remove};
use crate::state::{AppState, request_as};

const PARTY_TYPES: [&str; 7] = ["emsp", "cpo", "oem", "pki", "cps", "pcp", "ccp"];

/// The four optional `OPNC-*-party-*` headers, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingHeaders {
    pub from_party_type: Option<String>,
    pub from_party_id: Option<String>,
    pub to_party_type: Option<String>,
    pub to_party_id: Option<String>,
}

fn header(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| ApiError::bad_request(format!("{name} is not ASCII")))?
                .trim();
            if text.is_empty() || text.len() > 128 {
                return Err(ApiError::bad_request(format!(
                    "{name} must be 1 to 128 characters"
                )));
            }
            Ok(Some(text.to_string()))
        }
    }
}

fn party_type(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = header(headers, name)? else {
        return Ok(None);
    };
    let lower = value.to_ascii_lowercase();
    if !PARTY_TYPES.contains(&lower.as_str()) {
        return Err(ApiError::bad_request(format!(
            "{name} must be one of {}",
            PARTY_TYPES.join(", ")
        )));
    }
    Ok(Some(lower))
}

impl RoutingHeaders {
    /// Reads the headers and checks the sender against the caller's scope.
    pub fn check(headers: &HeaderMap, caller: &Authenticated) -> Result<RoutingHeaders, ApiError> {
        let routing = RoutingHeaders {
            from_party_type: party_type(headers, "opnc-from-party-type")?,
            from_party_id: header(headers, "opnc-from-party-id")?,
            to_party_type: party_type(headers, "opnc-to-party-type")?,
            to_party_id: header(headers, "opnc-to-party-id")?,
        };
        if let (Some(kind), Some(id)) = (&routing.from_party_type, &routing.from_party_id) {
            let principal = &caller.0;
            let allowed = match (kind.as_str(), caller.role()) {
                (_, Role::Admin) => true,
                ("oem", Role::Oem) => Wmi::parse(id).is_ok_and(|wmi| {
                    principal
                        .wmis
                        .iter()
                        .any(|granted| granted.eq_ignore_ascii_case(wmi.as_str()))
                }),
                ("emsp", Role::Emsp) => ProviderId::parse(id).is_ok_and(|provider| {
                    principal
                        .provider_ids
                        .iter()
                        .any(|granted| ProviderId::parse(granted).is_ok_and(|g| g == provider))
                }),
                ("cpo", Role::Cpo) => OperatorId::parse(id).is_ok_and(|operator| {
                    principal
                        .operator_ids
                        .iter()
                        .any(|granted| OperatorId::parse(granted).is_ok_and(|g| g == operator))
                }),
                _ => false,
            };
            if !allowed {
                return Err(ApiError::forbidden(format!(
                    "OPNC-from-party {kind}/{id} is not a party this client may act for"
                )));
            }
        }
        if routing.to_party_type.is_some() || routing.to_party_id.is_some() {
            tracing::debug!(
                to_type = ?routing.to_party_type,
                to_id = ?routing.to_party_id,
                "opnc request addressed to a party; pnc answers as the pool, no forwarding"
            );
        }
        Ok(routing)
    }
}

/// OPNC `certificateChain`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateChain {
    pub certificate: Option<String>,
    pub sub_ca1_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_ca2_certificate: Option<String>,
}

/// OPNC `provisioningCertificateChainData`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningCertificateChainData {
    pub provisioning_certificate_chain: Option<CertificateChain>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xsd_msg_def_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_issuer_serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2g_root_authority_key_identifiers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_authority_key_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_pcid: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetProvisioningCertificateResponse {
    pub provisioning_certificate: ProvisioningCertificateChainData,
}

/// Adds or replaces a provisioning certificate (OEM of its WMI).
#[utoipa::path(
    put,
    path = "/opnc/v1/pcp/provisioningcertificates",
    tag = "opnc-pcp",
    request_body = ProvisioningCertificateChainData,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "Malformed, expired or foreign chain", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not an OEM of this WMI", body = crate::error::ErrorBody),
    )
)]
pub async fn put_provisioning_certificate(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ProvisioningCertificateChainData>,
) -> Result<StatusCode, ApiError> {
    caller.require_role(&[Role::Oem])?;
    RoutingHeaders::check(&headers, &caller)?;
    let chain = body
        .provisioning_certificate_chain
        .ok_or_else(|| ApiError::bad_request("provisioningCertificateChain is required"))?;
    let request = put_request(
        chain.certificate.as_deref(),
        chain.sub_ca1_certificate.as_deref(),
        chain.sub_ca2_certificate.as_deref(),
        body.xsd_msg_def_namespace,
        body.v2g_root_authority_key_identifiers.unwrap_or_default(),
        body.previous_pcid,
        "certificate",
    )?;
    state
        .provisioning_certificates()
        .put_provisioning_certificate(request_as(&caller.0, request))
        .await?;
    Ok(StatusCode::OK)
}

/// A PCID's provisioning certificate chain.
#[utoipa::path(
    get,
    path = "/opnc/v1/pcp/provisioningcertificates/{pcid}",
    tag = "opnc-pcp",
    params(("pcid" = String, Path, description = "PCID")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The chain", body = GetProvisioningCertificateResponse),
        (status = 400, description = "Malformed PCID", body = crate::error::ErrorBody),
        (status = 403, description = "Not allowed", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown PCID", body = crate::error::ErrorBody),
    )
)]
pub async fn get_provisioning_certificate(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(pcid): Path<String>,
) -> Result<Json<GetProvisioningCertificateResponse>, ApiError> {
    RoutingHeaders::check(&headers, &caller)?;
    let record = fetch(&state, &caller, &pcid).await?;
    let encode = |der: &[u8]| STANDARD.encode(der);
    let (sub_ca2, sub_ca1) = match record.sub_cas.as_slice() {
        [sub_ca2, sub_ca1] => (Some(encode(&sub_ca2.der)), Some(encode(&sub_ca1.der))),
        [sub_ca1] => (None, Some(encode(&sub_ca1.der))),
        _ => (None, None),
    };
    Ok(Json(GetProvisioningCertificateResponse {
        provisioning_certificate: ProvisioningCertificateChainData {
            provisioning_certificate_chain: Some(CertificateChain {
                certificate: record.certificate.as_ref().map(|c| encode(&c.der)),
                sub_ca1_certificate: sub_ca1,
                sub_ca2_certificate: sub_ca2,
            }),
            xsd_msg_def_namespace: Some(record.xsd_msg_def_namespace),
            root_issuer_serial_number: Some(record.root_issuer_serial_number),
            v2g_root_authority_key_identifiers: Some(record.v2g_root_authority_key_identifiers),
            root_authority_key_identifier: Some(record.root_authority_key_identifier),
            fingerprint: Some(record.fingerprint),
            previous_pcid: (!record.previous_pcid.is_empty()).then_some(record.previous_pcid),
        },
    }))
}

/// Removes a vehicle with its contracts.
#[utoipa::path(
    delete,
    path = "/opnc/v1/pcp/provisioningcertificates/{pcid}",
    tag = "opnc-pcp",
    params(("pcid" = String, Path, description = "PCID")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted"),
        (status = 403, description = "Not the OEM of this WMI", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown PCID", body = crate::error::ErrorBody),
    )
)]
pub async fn delete_provisioning_certificate(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(pcid): Path<String>,
) -> Result<StatusCode, ApiError> {
    RoutingHeaders::check(&headers, &caller)?;
    remove(&state, &caller, &pcid).await?;
    Ok(StatusCode::OK)
}

/// 200 when the vehicle is in the pool, 404 when not.
#[utoipa::path(
    get,
    path = "/opnc/v1/pcp/lookupvehicle/{pcid}",
    tag = "opnc-pcp",
    params(("pcid" = String, Path, description = "PCID")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Known"),
        (status = 404, description = "Unknown PCID", body = crate::error::ErrorBody),
    )
)]
pub async fn lookup_vehicle(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(pcid): Path<String>,
) -> Result<StatusCode, ApiError> {
    RoutingHeaders::check(&headers, &caller)?;
    fetch(&state, &caller, &pcid).await?;
    Ok(StatusCode::OK)
}
