//! PCP: the provisioning certificate pool (`/v1/oem/provCerts`), after OPCP `pcp.v1.json`
//! (ecosystem-apis §2.7). OEMs write the PCIDs of their WMIs; eMSPs read a PCID they know.
//!
//! The old and new field names (`vehicleCertificate`/`provisioningCertificate`,
//! `subCA1Certificate`/`subCa1Certificate`) and MaEVe's singular
//! `v2gRootAuthorityKeyIdentifier` are all accepted; unknown fields are ignored.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_common::ids::Pcid;
use pnc_proto::common::v1::Certificate as ProtoCertificate;
use pnc_proto::principal::Role;
use pnc_proto::registry::v1::{
    DeleteProvisioningCertificateRequest, GetProvisioningCertificateRequest,
    ProvisioningCertificate, PutProvisioningCertificateRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::{AppState, request_as};

/// [V2G2-010]: OPCP's `maxLength: 800` applies to the decoded DER (ecosystem-apis §2.12).
pub const MAX_CERTIFICATE_DER: usize = 800;

/// A base64 DER certificate field, decoded with the problem named.
pub fn certificate_field(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(ApiError::bad_request(format!("{field} is empty")));
    }
    if compact.len() > MAX_CERTIFICATE_DER.div_ceil(3) * 4 + 4 {
        return Err(ApiError::bad_request(format!(
            "{field} is larger than {MAX_CERTIFICATE_DER} bytes of DER"
        )));
    }
    let der = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| ApiError::bad_request(format!("{field} is not valid base64")))?;
    if der.len() > MAX_CERTIFICATE_DER {
        return Err(ApiError::bad_request(format!(
            "{field} is larger than {MAX_CERTIFICATE_DER} bytes of DER"
        )));
    }
    openssl::x509::X509::from_der(&der)
        .map_err(|_| ApiError::bad_request(format!("Invalid certificate format on {field}")))?;
    Ok(der)
}

/// A PCID path segment.
pub fn pcid_param(value: &str) -> Result<Pcid, ApiError> {
    Pcid::parse(value).map_err(|error| ApiError::bad_request(error.to_string()))
}

/// OPCP `ProvisioningCertificate` (the PUT body).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningCertificateBody {
    /// Sub-CA 1, base64 DER (also `subCa1Certificate`).
    #[serde(rename = "subCA1Certificate", alias = "subCa1Certificate")]
    pub sub_ca1_certificate: Option<String>,
    /// Sub-CA 2, base64 DER (also `subCa2Certificate`); absent for one-level chains.
    #[serde(rename = "subCA2Certificate", alias = "subCa2Certificate")]
    pub sub_ca2_certificate: Option<String>,
    /// The OEM provisioning certificate, base64 DER (also `provisioningCertificate`).
    #[serde(alias = "provisioningCertificate")]
    pub vehicle_certificate: Option<String>,
    pub xsd_msg_def_namespace: Option<String>,
    /// AKIs of the V2G roots in the EV, hex with ':'.
    pub v2g_root_authority_key_identifiers: Option<Vec<String>>,
    /// MaEVe's singular form (a string or a list).
    #[schema(value_type = Option<String>)]
    pub v2g_root_authority_key_identifier: Option<serde_json::Value>,
    pub previous_pcid: Option<String>,
}

/// OPCP `ProvisioningCertificateData`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningCertificateData {
    #[serde(rename = "subCA1Certificate")]
    pub sub_ca1_certificate: String,
    #[serde(rename = "subCA2Certificate", skip_serializing_if = "Option::is_none")]
    pub sub_ca2_certificate: Option<String>,
    pub vehicle_certificate: String,
    pub xsd_msg_def_namespace: String,
    pub root_issuer_distinguished_name: String,
    pub root_issuer_serial_number: String,
    pub v2g_root_authority_key_identifiers: Vec<String>,
    /// The singular form OPCP's response example carries: the first of the list, or empty.
    pub v2g_root_authority_key_identifier: String,
    pub root_authority_key_identifier: String,
    pub fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_pcid: Option<String>,
}

impl From<ProvisioningCertificate> for ProvisioningCertificateData {
    fn from(record: ProvisioningCertificate) -> ProvisioningCertificateData {
        let encode = |certificate: Option<&ProtoCertificate>| {
            STANDARD.encode(certificate.map(|c| c.der.as_slice()).unwrap_or_default())
        };
        // sub_cas are nearest first: [Sub-CA 2, Sub-CA 1] or [Sub-CA 1].
        let (sub_ca2, sub_ca1) = match record.sub_cas.as_slice() {
            [sub_ca2, sub_ca1] => (Some(encode(Some(sub_ca2))), encode(Some(sub_ca1))),
            [sub_ca1] => (None, encode(Some(sub_ca1))),
            _ => (None, String::new()),
        };
        ProvisioningCertificateData {
            sub_ca1_certificate: sub_ca1,
            sub_ca2_certificate: sub_ca2,
            vehicle_certificate: encode(record.certificate.as_ref()),
            xsd_msg_def_namespace: record.xsd_msg_def_namespace,
            root_issuer_distinguished_name: record.root_issuer_distinguished_name,
            root_issuer_serial_number: record.root_issuer_serial_number,
            v2g_root_authority_key_identifier: record
                .v2g_root_authority_key_identifiers
                .first()
                .cloned()
                .unwrap_or_default(),
            v2g_root_authority_key_identifiers: record.v2g_root_authority_key_identifiers,
            root_authority_key_identifier: record.root_authority_key_identifier,
            fingerprint: record.fingerprint,
            previous_pcid: (!record.previous_pcid.is_empty()).then_some(record.previous_pcid),
        }
    }
}

/// `{OEMMessage: ProvisioningCertificateData}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GetProvisioningCertificateResponse {
    #[serde(rename = "OEMMessage")]
    pub oem_message: ProvisioningCertificateData,
}

/// The PUT body as the registry's request: certificates decoded, spellings merged.
pub fn put_request(
    leaf: Option<&str>,
    sub_ca1: Option<&str>,
    sub_ca2: Option<&str>,
    namespace: Option<String>,
    akis: Vec<String>,
    previous_pcid: Option<String>,
    leaf_field: &str,
) -> Result<PutProvisioningCertificateRequest, ApiError> {
    let leaf = leaf.ok_or_else(|| ApiError::bad_request(format!("{leaf_field} is required")))?;
    let sub_ca1 = sub_ca1.ok_or_else(|| ApiError::bad_request("subCA1Certificate is required"))?;
    let certificate = certificate_field(leaf_field, leaf)?;
    let mut sub_cas = Vec::new();
    if let Some(sub_ca2) = sub_ca2.filter(|value| !value.trim().is_empty()) {
        sub_cas.push(ProtoCertificate {
            der: certificate_field("subCa2Certificate", sub_ca2)?,
        });
    }
    sub_cas.push(ProtoCertificate {
        der: certificate_field("subCa1Certificate", sub_ca1)?,
    });
    Ok(PutProvisioningCertificateRequest {
        certificate: Some(ProtoCertificate { der: certificate }),
        sub_cas,
        xsd_msg_def_namespace: namespace.unwrap_or_default(),
        v2g_root_authority_key_identifiers: akis,
        previous_pcid: previous_pcid.unwrap_or_default(),
    })
}

/// Registers or replaces the provisioning certificate of a vehicle (OEM, its WMIs).
#[utoipa::path(
    put,
    path = "/v1/oem/provCerts",
    tag = "pcp",
    request_body = ProvisioningCertificateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored", body = ProvisioningCertificateData),
        (status = 400, description = "Malformed, expired or foreign chain, CN not a PCID", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not an OEM of this WMI", body = crate::error::ErrorBody),
    )
)]
pub async fn put_provisioning_certificate(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<ProvisioningCertificateBody>,
) -> Result<Json<ProvisioningCertificateData>, ApiError> {
    caller.require_role(&[Role::Oem])?;
    let mut akis = body.v2g_root_authority_key_identifiers.unwrap_or_default();
    match body.v2g_root_authority_key_identifier {
        Some(serde_json::Value::String(single)) => akis.push(single),
        Some(serde_json::Value::Array(list)) => akis.extend(
            list.into_iter()
                .filter_map(|value| value.as_str().map(str::to_string)),
        ),
        _ => {}
    }
    let request = put_request(
        body.vehicle_certificate.as_deref(),
        body.sub_ca1_certificate.as_deref(),
        body.sub_ca2_certificate.as_deref(),
        body.xsd_msg_def_namespace,
        akis,
        body.previous_pcid,
        "vehicleCertificate",
    )?;
    let record = state
        .provisioning_certificates()
        .put_provisioning_certificate(request_as(&caller.0, request))
        .await?
        .into_inner();
    Ok(Json(record.into()))
}

/// The provisioning certificate of a PCID (its OEM, or an eMSP that knows the PCID).
#[utoipa::path(
    get,
    path = "/v1/oem/provCerts/{pcid}",
    tag = "pcp",
    params(("pcid" = String, Path, description = "17 or 18 letters or digits")),
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
    Path(pcid): Path<String>,
) -> Result<Json<GetProvisioningCertificateResponse>, ApiError> {
    let record = fetch(&state, &caller, &pcid).await?;
    Ok(Json(GetProvisioningCertificateResponse {
        oem_message: record.into(),
    }))
}

pub async fn fetch(
    state: &AppState,
    caller: &Authenticated,
    pcid: &str,
) -> Result<ProvisioningCertificate, ApiError> {
    caller.require_role(&[Role::Oem, Role::Emsp])?;
    let pcid = pcid_param(pcid)?;
    Ok(state
        .contracts()
        .get_provisioning_certificate(request_as(
            &caller.0,
            GetProvisioningCertificateRequest {
                pcid: pcid.as_str().to_string(),
            },
        ))
        .await?
        .into_inner())
}

/// Removes a vehicle with its contracts; pnc-issued contract certificates are revoked.
#[utoipa::path(
    delete,
    path = "/v1/oem/provCerts/{pcid}",
    tag = "pcp",
    params(("pcid" = String, Path, description = "17 or 18 letters or digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted"),
        (status = 400, description = "Malformed PCID", body = crate::error::ErrorBody),
        (status = 403, description = "Not the OEM of this WMI", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown PCID", body = crate::error::ErrorBody),
    )
)]
pub async fn delete_provisioning_certificate(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(pcid): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove(&state, &caller, &pcid).await?;
    Ok(StatusCode::OK)
}

pub async fn remove(state: &AppState, caller: &Authenticated, pcid: &str) -> Result<(), ApiError> {
    caller.require_role(&[Role::Oem])?;
    let pcid = pcid_param(pcid)?;
    state
        .provisioning_certificates()
        .delete_provisioning_certificate(request_as(
            &caller.0,
            DeleteProvisioningCertificateRequest {
                pcid: pcid.as_str().to_string(),
            },
        ))
        .await?;
    Ok(())
}

/// 200 when the vehicle is in the pool, 404 when not.
#[utoipa::path(
    get,
    path = "/v1/oem/provCerts/lookupVehicle/{pcid}",
    tag = "pcp",
    params(("pcid" = String, Path, description = "17 or 18 letters or digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Known"),
        (status = 400, description = "Malformed PCID", body = crate::error::ErrorBody),
        (status = 403, description = "Not allowed", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown PCID", body = crate::error::ErrorBody),
    )
)]
pub async fn lookup_vehicle(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(pcid): Path<String>,
) -> Result<StatusCode, ApiError> {
    fetch(&state, &caller, &pcid).await?;
    Ok(StatusCode::OK)
}
