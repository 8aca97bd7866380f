//! CCP contract management, after OPCP `ccp.v1.json` (ecosystem-apis §2.9): cancel a
//! contract, pick a PCID's default, and look contracts up by eMAID (eMSP) or by PCID (OEM).
//! The CPO flow (`POST /v1/ccp/signedContractData`) lives in `ev.rs`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_common::ids::{Emaid, Pcid};
use pnc_proto::principal::Role;
use pnc_proto::registry::v1::{
    CancelContractRequest, Contract, ListContractsRequest, SetDefaultContractRequest,
    list_contracts_request,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::pcp::pcid_param;
use crate::state::{AppState, request_as};

pub const ISO2_NAMESPACE: &str = "urn:iso:15118:2:2013:MsgDef";

pub fn emaid_param(value: &str) -> Result<Emaid, ApiError> {
    Emaid::parse(value).map_err(|error| ApiError::bad_request(error.to_string()))
}

/// OPCP's fingerprint parameters carry a UUID pattern but SHA-256 hex in practice
/// (ecosystem-apis §2.12): accept 64 hex characters (with or without ':').
pub fn fingerprint_param(value: Option<&str>) -> Result<String, ApiError> {
    let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
        return Ok(String::new());
    };
    let compact: String = value.chars().filter(|c| *c != ':').collect();
    if compact.len() != 64 || !compact.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "cpsV2GRootCertificateFingerprint must be a SHA-256 fingerprint (64 hex characters)",
        ));
    }
    Ok(compact.to_ascii_uppercase())
}

/// Query of the look-ups.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct LookupQuery {
    pub xsd_msg_def_namespace: Option<String>,
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
}

/// One entry of `XMLContracts`: a contract under one V2G root.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct XmlContract {
    pub pcid: String,
    pub emaid: String,
    pub xsd_msg_def_namespace: String,
    /// Base64 DER of the contract leaf.
    pub contract_certificate: String,
    pub default_contract: bool,
    /// In OPCP's example, not its schema: 1 for the vehicle's default contract, 2 otherwise.
    pub priority: u32,
    pub cert_valid_from: String,
    pub cert_valid_to: String,
    #[serde(rename = "cpsRootCertificateDN")]
    pub cps_root_certificate_dn: String,
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LookupContractResponse {
    #[serde(rename = "XMLContracts")]
    pub xml_contracts: Vec<XmlContract>,
}

pub fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// One row per (contract, V2G root), as OPCP lists them.
pub fn flatten(contracts: Vec<Contract>) -> Vec<XmlContract> {
    let mut rows = Vec::new();
    for contract in contracts {
        let leaf = STANDARD.encode(
            contract
                .contract_chain
                .first()
                .map(|c| c.der.as_slice())
                .unwrap_or_default(),
        );
        for signed in &contract.signed_data {
            rows.push(XmlContract {
                pcid: contract.pcid.clone(),
                emaid: contract.emaid.clone(),
                // -20 data is marked by its schema (registry contracts.proto).
                xsd_msg_def_namespace: if signed.schema_namespace.is_empty() {
                    ISO2_NAMESPACE.to_string()
                } else {
                    "urn:iso:15118:20:2022:MsgDef".to_string()
                },
                contract_certificate: leaf.clone(),
                default_contract: contract.is_default,
                priority: if contract.is_default { 1 } else { 2 },
                cert_valid_from: rfc3339(contract.certificate_not_before),
                cert_valid_to: rfc3339(contract.certificate_not_after),
                cps_root_certificate_dn: signed.v2g_root_distinguished_name.clone(),
                cps_v2g_root_certificate_fingerprint: signed
                    .v2g_root_fingerprint
                    .to_ascii_lowercase(),
            });
        }
    }
    rows
}

fn check_namespace(query: &LookupQuery) -> Result<(), ApiError> {
    match query.xsd_msg_def_namespace.as_deref().map(str::trim) {
        None | Some("") | Some(ISO2_NAMESPACE) => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "xsdMsgDefNamespace `{}`: pnc stores ISO 15118-2 contract data only",
            other.chars().take(80).collect::<String>()
        ))),
    }
}

pub async fn list(
    state: &AppState,
    caller: &Authenticated,
    selector: list_contracts_request::Selector,
    fingerprint: String,
) -> Result<Vec<Contract>, ApiError> {
    Ok(state
        .contracts()
        .list_contracts(request_as(
            &caller.0,
            ListContractsRequest {
                selector: Some(selector),
                v2g_root_fingerprint: fingerprint,
            },
        ))
        .await?
        .into_inner()
        .contracts)
}

/// The contracts of an eMAID (its eMSP), any spelling of the eMAID.
#[utoipa::path(
    get,
    path = "/v1/ccp/lookupContract/{emaid}",
    tag = "ccp",
    params(("emaid" = String, Path, description = "eMAID, with or without hyphens and check digit"), LookupQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contracts", body = LookupContractResponse),
        (status = 400, description = "Malformed eMAID", body = crate::error::ErrorBody),
        (status = 403, description = "Not the eMSP of this eMAID", body = crate::error::ErrorBody),
        (status = 404, description = "No contract", body = crate::error::ErrorBody),
    )
)]
pub async fn lookup_contract(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(emaid): Path<String>,
    Query(query): Query<LookupQuery>,
) -> Result<Json<LookupContractResponse>, ApiError> {
    caller.require_role(&[Role::Emsp])?;
    let emaid = emaid_param(&emaid)?;
    check_namespace(&query)?;
    let fingerprint = fingerprint_param(query.cps_v2g_root_certificate_fingerprint.as_deref())?;
    let contracts = list(
        &state,
        &caller,
        list_contracts_request::Selector::Emaid(emaid.as_str().to_string()),
        fingerprint,
    )
    .await?;
    if contracts.is_empty() {
        return Err(ApiError::not_found(format!(
            "no contract for eMAID {emaid}"
        )));
    }
    Ok(Json(LookupContractResponse {
        xml_contracts: flatten(contracts),
    }))
}

/// The contracts on a vehicle (its OEM).
#[utoipa::path(
    get,
    path = "/v1/ccp/signedContractData/{key}",
    tag = "ccp",
    params(("key" = String, Path, description = "The PCID (17 or 18 letters or digits)"), LookupQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contracts", body = LookupContractResponse),
        (status = 400, description = "Malformed PCID", body = crate::error::ErrorBody),
        (status = 403, description = "Not the OEM of this WMI", body = crate::error::ErrorBody),
    )
)]
pub async fn contracts_of_vehicle(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(pcid): Path<String>,
    Query(query): Query<LookupQuery>,
) -> Result<Json<LookupContractResponse>, ApiError> {
    caller.require_role(&[Role::Oem])?;
    let pcid = pcid_param(&pcid)?;
    check_namespace(&query)?;
    let fingerprint = fingerprint_param(query.cps_v2g_root_certificate_fingerprint.as_deref())?;
    let contracts = list(
        &state,
        &caller,
        list_contracts_request::Selector::Pcid(pcid.as_str().to_string()),
        fingerprint,
    )
    .await?;
    Ok(Json(LookupContractResponse {
        xml_contracts: flatten(contracts),
    }))
}

/// Cancels an eMAID's contracts (its eMSP). pnc-issued contract certificates are revoked
/// first; `X-Skip-Revocation: true` skips that (test environments).
#[utoipa::path(
    delete,
    path = "/v1/ccp/signedContractData/{key}",
    tag = "ccp",
    params(
        ("key" = String, Path, description = "The eMAID (OPCP names the same path segment PCID for GET and eMAID for DELETE)"),
        ("X-Skip-Revocation" = Option<bool>, Header, description = "Do not revoke (tests)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled"),
        (status = 400, description = "Malformed eMAID", body = crate::error::ErrorBody),
        (status = 403, description = "Not the eMSP of this eMAID", body = crate::error::ErrorBody),
        (status = 404, description = "No contract", body = crate::error::ErrorBody),
    )
)]
pub async fn delete_contract(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(emaid): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    cancel(&state, &caller, &emaid, None, &headers).await?;
    Ok(StatusCode::OK)
}

pub async fn cancel(
    state: &AppState,
    caller: &Authenticated,
    emaid: &str,
    pcid: Option<&Pcid>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    caller.require_role(&[Role::Emsp])?;
    let emaid = emaid_param(emaid)?;
    let skip_revocation = match headers
        .get("x-skip-revocation")
        .map(|value| value.to_str().unwrap_or("").trim().to_ascii_lowercase())
    {
        None => false,
        Some(value) if value == "true" => true,
        Some(value) if value == "false" || value.is_empty() => false,
        Some(_) => {
            return Err(ApiError::bad_request(
                "X-Skip-Revocation must be true or false",
            ));
        }
    };
    state
        .contracts()
        .cancel_contract(request_as(
            &caller.0,
            CancelContractRequest {
                emaid: emaid.as_str().to_string(),
                pcid: pcid
                    .map(|pcid| pcid.as_str().to_string())
                    .unwrap_or_default(),
                skip_revocation,
            },
        ))
        .await?;
    Ok(())
}

/// Makes a contract the vehicle's default (its OEM, or the contract's eMSP).
#[utoipa::path(
    post,
    path = "/v1/ccp/signedContractData/{pcid}/{emaid}/default",
    tag = "ccp",
    params(("pcid" = String, Path, description = "PCID"), ("emaid" = String, Path, description = "eMAID")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Default set"),
        (status = 400, description = "Malformed PCID or eMAID, or cancelled contract", body = crate::error::ErrorBody),
        (status = 403, description = "Not allowed", body = crate::error::ErrorBody),
        (status = 404, description = "No such contract", body = crate::error::ErrorBody),
    )
)]
pub async fn set_default(
    State(state): State<AppState>,
    caller: Authenticated,
    Path((pcid, emaid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    make_default(&state, &caller, &pcid, &emaid).await?;
    Ok(StatusCode::OK)
}

pub async fn make_default(
    state: &AppState,
    caller: &Authenticated,
    pcid: &str,
    emaid: &str,
) -> Result<(), ApiError> {
    caller.require_role(&[Role::Oem, Role::Emsp])?;
    let pcid = pcid_param(pcid)?;
    let emaid = emaid_param(emaid)?;
    state
        .contracts()
        .set_default_contract(request_as(
            &caller.0,
            SetDefaultContractRequest {
                pcid: pcid.as_str().to_string(),
                emaid: emaid.as_str().to_string(),
            },
        ))
        .await?;
    Ok(())
}

/// Signed contract data larger than this (base64-decoded) is not one answer.
const MAX_SIGNED_MESSAGE: usize = 24 * 1024;

/// OPCP CCP `SignedContractDataRequest`: contract data a CPS signed, to be stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddSignedContractDataRequest {
    pub xsd_msg_def_namespace: String,
    pub emaid: String,
    pub pcid: String,
    /// The signed V2G_Message with its CertificateInstallationRes, base64 (XML as the CPS
    /// returns it, or EXI).
    #[serde(rename = "signedContractDataXML")]
    pub signed_contract_data_xml: String,
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default)]
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
}

/// The fields of an OPCP or OPNC "add signed contract data" request.
pub struct SignedContractDataUpload<'a> {
    pub namespace: &'a str,
    pub emaid: &'a str,
    pub pcid: &'a str,
    /// The request's field name, for error messages.
    pub message_field: &'a str,
    pub message_base64: &'a str,
    pub root_selector: Option<&'a str>,
}

/// Checks the request's shape and has the registry verify and store the data.
pub async fn store_signed_contract_data(
    state: &AppState,
    caller: &Authenticated,
    upload: SignedContractDataUpload<'_>,
) -> Result<(), ApiError> {
    use crate::routes::cps::{
        base64_field, check_namespace, parse_emaid, parse_pcid, root_selector,
    };
    caller.require_role(&[Role::Emsp])?;
    check_namespace(upload.namespace)?;
    let emaid = parse_emaid(upload.emaid)?;
    let pcid = parse_pcid(upload.pcid)?;
    let selector = root_selector(upload.root_selector)?;
    let signed_message = base64_field(
        upload.message_field,
        upload.message_base64,
        MAX_SIGNED_MESSAGE,
    )?;
    pnc_proto::registry::v1::contract_data_pool_client::ContractDataPoolClient::new(
        state.channels.registry.clone(),
    )
    .store_signed_contract_data(request_as(
        &caller.0,
        pnc_proto::registry::v1::StoreSignedContractDataRequest {
            emaid: emaid.as_str().to_string(),
            pcid: pcid.as_str().to_string(),
            xsd_msg_def_namespace: upload.namespace.trim().to_string(),
            signed_message,
            cps_v2g_root_selector: selector,
        },
    ))
    .await?;
    Ok(())
}

/// A CPS's (or an eMSP's) signed contract data, stored for the OEM and CPO back ends. The
/// registry verifies the CPS signature and both chains before storing anything.
#[utoipa::path(
    put,
    path = "/v1/ccp/signedContractData",
    tag = "ccp",
    request_body = AddSignedContractDataRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored"),
        (status = 400, description = "Malformed, unsigned, badly signed, expired or foreign data", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not the eMSP of this eMAID", body = crate::error::ErrorBody),
        (status = 404, description = "The PCID is not in the pool", body = crate::error::ErrorBody),
    )
)]
pub async fn add_signed_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    crate::extract::ApiJson(body): crate::extract::ApiJson<AddSignedContractDataRequest>,
) -> Result<StatusCode, ApiError> {
    store_signed_contract_data(
        &state,
        &caller,
        SignedContractDataUpload {
            namespace: &body.xsd_msg_def_namespace,
            emaid: &body.emaid,
            pcid: &body.pcid,
            message_field: "signedContractDataXML",
            message_base64: &body.signed_contract_data_xml,
            root_selector: body.cps_v2g_root_certificate_fingerprint.as_deref(),
        },
    )
    .await?;
    Ok(StatusCode::CREATED)
}

/// After an OEM back end fetched a contract's signed data, the registry tells its eMSP
/// (`mo.contract.delivered.to.oem`). The data is already handed out, so a failure to
/// record the delivery is logged rather than failing the request.
pub async fn note_delivery_to_oem(
    state: &AppState,
    caller: &Authenticated,
    emaid: &str,
    pcid: &str,
    v2g_root_fingerprint: &str,
) {
    if caller.role() != Role::Oem {
        return;
    }
    let recorded = pnc_proto::registry::v1::contract_data_pool_client::ContractDataPoolClient::new(
        state.channels.registry.clone(),
    )
    .record_delivery_to_oem(request_as(
        &caller.0,
        pnc_proto::registry::v1::RecordDeliveryToOemRequest {
            emaid: emaid.to_string(),
            pcid: pcid.to_string(),
            v2g_root_fingerprint: v2g_root_fingerprint.to_string(),
        },
    ))
    .await;
    if let Err(status) = recorded {
        tracing::warn!(%emaid, %pcid, error = %status.message(), "delivery to the OEM not recorded");
    }
}
