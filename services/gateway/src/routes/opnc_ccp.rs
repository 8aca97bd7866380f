//! OPNC v1 CCP contract management (`/opnc/v1/ccp/…`, ecosystem-apis §3.2): cancel, set
//! default (eMAID before PCID in the path), and the contract look-ups returning
//! `contractDataCollection`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use pnc_proto::principal::Role;
use pnc_proto::registry::v1::list_contracts_request;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::ccp::{
    LookupQuery, XmlContract, cancel, emaid_param, fingerprint_param, flatten, list, make_default,
};
use crate::routes::opnc_pcp::RoutingHeaders;
use crate::routes::pcp::pcid_param;
use crate::state::AppState;

/// OPNC `contractCertificateData`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractCertificateData {
    pub pcid: String,
    pub emaid: String,
    pub xsd_msg_def_namespace: String,
    pub contract_certificate: String,
    pub default_contract: bool,
    pub cert_valid_from: String,
    pub cert_valid_to: String,
    #[serde(rename = "cpsV2GRootDistinguishedName")]
    pub cps_v2g_root_distinguished_name: String,
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: String,
}

impl From<XmlContract> for ContractCertificateData {
    fn from(row: XmlContract) -> ContractCertificateData {
        ContractCertificateData {
            pcid: row.pcid,
            emaid: row.emaid,
            xsd_msg_def_namespace: row.xsd_msg_def_namespace,
            contract_certificate: row.contract_certificate,
            default_contract: row.default_contract,
            cert_valid_from: row.cert_valid_from,
            cert_valid_to: row.cert_valid_to,
            cps_v2g_root_distinguished_name: row.cps_root_certificate_dn,
            cps_v2g_root_certificate_fingerprint: row.cps_v2g_root_certificate_fingerprint,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractDataCollection {
    pub contract_data_collection: Vec<ContractCertificateData>,
}

/// The contracts of an eMAID (its eMSP).
#[utoipa::path(
    get,
    path = "/opnc/v1/ccp/contractData/emaid/{emaid}",
    tag = "opnc-ccp",
    params(("emaid" = String, Path, description = "eMAID"), LookupQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contracts", body = ContractDataCollection),
        (status = 400, description = "Malformed eMAID", body = crate::error::ErrorBody),
        (status = 403, description = "Not the eMSP of this eMAID", body = crate::error::ErrorBody),
        (status = 404, description = "No contract", body = crate::error::ErrorBody),
    )
)]
pub async fn contracts_by_emaid(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(emaid): Path<String>,
    Query(query): Query<LookupQuery>,
) -> Result<Json<ContractDataCollection>, ApiError> {
    caller.require_role(&[Role::Emsp])?;
    RoutingHeaders::check(&headers, &caller)?;
    let emaid = emaid_param(&emaid)?;
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
    Ok(Json(ContractDataCollection {
        contract_data_collection: flatten(contracts).into_iter().map(Into::into).collect(),
    }))
}

/// The contracts on a vehicle (its OEM).
#[utoipa::path(
    get,
    path = "/opnc/v1/ccp/contractData/pcid/{pcid}",
    tag = "opnc-ccp",
    params(("pcid" = String, Path, description = "PCID"), LookupQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contracts", body = ContractDataCollection),
        (status = 400, description = "Malformed PCID", body = crate::error::ErrorBody),
        (status = 403, description = "Not the OEM of this WMI", body = crate::error::ErrorBody),
    )
)]
pub async fn contracts_by_pcid(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(pcid): Path<String>,
    Query(query): Query<LookupQuery>,
) -> Result<Json<ContractDataCollection>, ApiError> {
    caller.require_role(&[Role::Oem])?;
    RoutingHeaders::check(&headers, &caller)?;
    let pcid = pcid_param(&pcid)?;
    let fingerprint = fingerprint_param(query.cps_v2g_root_certificate_fingerprint.as_deref())?;
    let contracts = list(
        &state,
        &caller,
        list_contracts_request::Selector::Pcid(pcid.as_str().to_string()),
        fingerprint,
    )
    .await?;
    Ok(Json(ContractDataCollection {
        contract_data_collection: flatten(contracts).into_iter().map(Into::into).collect(),
    }))
}

/// Cancels an eMAID's contracts (`X-Skip-Revocation` as in OPCP).
#[utoipa::path(
    delete,
    path = "/opnc/v1/ccp/signedcontractdata/{emaid}",
    tag = "opnc-ccp",
    params(("emaid" = String, Path, description = "eMAID")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled"),
        (status = 403, description = "Not the eMSP of this eMAID", body = crate::error::ErrorBody),
        (status = 404, description = "No contract", body = crate::error::ErrorBody),
    )
)]
pub async fn delete_contract(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(emaid): Path<String>,
) -> Result<StatusCode, ApiError> {
    RoutingHeaders::check(&headers, &caller)?;
    cancel(&state, &caller, &emaid, None, &headers).await?;
    Ok(StatusCode::OK)
}

/// Makes a contract its vehicle's default.
#[utoipa::path(
    post,
    path = "/opnc/v1/ccp/signedcontractdata/{emaid}/{pcid}/setdefault",
    tag = "opnc-ccp",
    params(("emaid" = String, Path, description = "eMAID"), ("pcid" = String, Path, description = "PCID")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Default set"),
        (status = 403, description = "Not allowed", body = crate::error::ErrorBody),
        (status = 404, description = "No such contract", body = crate::error::ErrorBody),
    )
)]
pub async fn set_default(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path((emaid, pcid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    RoutingHeaders::check(&headers, &caller)?;
    make_default(&state, &caller, &pcid, &emaid).await?;
    Ok(StatusCode::OK)
}

/// OPNC `signedContractData`: the signed data to store, with the answer as EXI.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncAddSignedContractDataRequest {
    /// Base64 EXI of the signed CertificateInstallationRes.
    pub certificate_installation_res: String,
    pub emaid: String,
    pub pcid: String,
    pub xsd_msg_def_namespace: String,
    #[serde(default)]
    pub meta_data: Option<String>,
    #[serde(default)]
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
    /// Informative only.
    #[serde(default)]
    pub cps_root_distinguished_name: Option<String>,
}

/// Stores signed contract data (OPNC `addSignedContractDataV1`), verified like OPCP's.
#[utoipa::path(
    put,
    path = "/opnc/v1/ccp/signedcontractdata",
    tag = "opnc-ccp",
    request_body = OpncAddSignedContractDataRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Signed contract data added"),
        (status = 400, description = "Malformed, unsigned, badly signed, expired or foreign data", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not the eMSP of this eMAID", body = crate::error::ErrorBody),
        (status = 404, description = "The PCID is not in the pool", body = crate::error::ErrorBody),
    )
)]
pub async fn add_signed_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    crate::extract::ApiJson(body): crate::extract::ApiJson<OpncAddSignedContractDataRequest>,
) -> Result<StatusCode, ApiError> {
    RoutingHeaders::check(&headers, &caller)?;
    crate::routes::ccp::store_signed_contract_data(
        &state,
        &caller,
        crate::routes::ccp::SignedContractDataUpload {
            namespace: &body.xsd_msg_def_namespace,
            emaid: &body.emaid,
            pcid: &body.pcid,
            message_field: "certificateInstallationRes",
            message_base64: &body.certificate_installation_res,
            root_selector: body.cps_v2g_root_certificate_fingerprint.as_deref(),
        },
    )
    .await?;
    Ok(StatusCode::CREATED)
}
