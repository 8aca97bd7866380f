//! The car plugs in: the charger's CertificateInstallationReq reaches pnc through its CSMS
//! and pnc answers with the EXI the charger hands to the EV (iso15118-notes §1, §9).
//!
//! - `POST /v1/ocpp/get-15118-ev-certificate`: OCPP `Get15118EVCertificate` shape;
//! - `POST /v1/ccp/signedContractData`: OPCP CCP `getSignedContractData`;
//! - `POST /opnc/v1/ccp/signedcontractdata`: the OPNC equivalent.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_common::{ErrorKind, PncError};
use pnc_proto::principal::Role;
use pnc_proto::provisioning::v1::{InstallRequest, InstallResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::cps::{
    ISO2_NAMESPACE, base64_field, check_namespace, cps_chains, distinguished_name,
};
use crate::state::{AppState, request_as};

/// OCPP 2.1 allows 11000 base64 characters of `exiRequest` (ecosystem-apis §5).
const MAX_EXI_REQUEST_BYTES: usize = 8250;
/// OCPP 2.0.1's `exiResponse` limit in base64 characters (notes §10.2).
const OCPP_201_MAX_EXI_RESPONSE_CHARS: usize = 5600;

async fn install(
    state: &AppState,
    caller: &Authenticated,
    exi_request: Vec<u8>,
    schema_namespace: &str,
    action: &str,
) -> Result<InstallResponse, ApiError> {
    Ok(state
        .provisioning()
        .install(request_as(
            &caller.0,
            InstallRequest {
                exi_request,
                schema_namespace: schema_namespace.to_string(),
                action: action.to_string(),
            },
        ))
        .await?
        .into_inner())
}

/// OCPP `Get15118EVCertificateRequest` (2.0.1, plus the 2.1 fields).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Get15118EvCertificateRequest {
    pub iso15118_schema_version: String,
    /// `Install` or `Update`.
    pub action: String,
    /// Base64 of the EV's EXI request.
    pub exi_request: String,
    #[serde(default)]
    pub maximum_contract_certificate_chains: Option<u32>,
    #[serde(default, rename = "prioritizedEMAIDs")]
    pub prioritized_emaids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusInfo {
    /// At most 20 characters.
    pub reason_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<String>,
}

/// OCPP `Get15118EVCertificateResponse` (2.0.1, plus 2.1's `remainingContracts`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Get15118EvCertificateResponse {
    /// `Accepted` whenever `exiResponse` carries an ISO answer, positive or negative.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_info: Option<StatusInfo>,
    /// Base64 of the EXI answer; empty only when no ISO answer could be built.
    pub exi_response: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_contracts: Option<u32>,
}

/// OCPP 2.1's copies of the -20 request's MaximumContractCertificateChains and
/// PrioritizedEMAIDs (ecosystem-apis §7): checked for shape; the EV's EXI request governs.
fn check_ocpp21_fields(body: &Get15118EvCertificateRequest) -> Result<(), ApiError> {
    if body
        .maximum_contract_certificate_chains
        .is_some_and(|maximum| maximum > u32::from(u8::MAX))
    {
        return Err(ApiError::bad_request(
            "maximumContractCertificateChains is larger than 255",
        ));
    }
    if let Some(emaids) = &body.prioritized_emaids
        && (emaids.is_empty() || emaids.len() > 8 || emaids.iter().any(|emaid| emaid.len() > 255))
    {
        return Err(ApiError::bad_request(
            "prioritizedEMAIDs holds 1 to 8 identifiers of at most 255 characters",
        ));
    }
    Ok(())
}

fn reason_code(text: &str) -> String {
    text.chars().take(20).collect()
}

/// OCPP's reasonCode holds 20 characters; the ISO ResponseCode goes there in short form and
/// in full into additionalInfo.
fn iso_reason_code(response_code: &str) -> String {
    match response_code {
        "FAILED" => "Failed".to_string(),
        "FAILED_NoCertificateAvailable" => "NoCertificate".to_string(),
        other => reason_code(other.strip_prefix("FAILED_").unwrap_or(other)),
    }
}

fn additional_info(text: &str) -> Option<String> {
    Some(text.chars().take(512).collect::<String>()).filter(|text| !text.is_empty())
}

/// A contract installation in OCPP terms, for CSMSs that forward `Get15118EVCertificate`.
#[utoipa::path(
    post,
    path = "/v1/ocpp/get-15118-ev-certificate",
    tag = "ev",
    request_body = Get15118EvCertificateRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An ISO answer (Accepted, positive or negative) or Failed when none could be built", body = Get15118EvCertificateResponse),
        (status = 400, description = "Malformed JSON or base64", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a CPO or charging station", body = crate::error::ErrorBody),
    )
)]
pub async fn get_15118_ev_certificate(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<Get15118EvCertificateRequest>,
) -> Result<Json<Get15118EvCertificateResponse>, ApiError> {
    caller.require_role(&[Role::Cpo, Role::Charger])?;
    answer_get_15118_ev_certificate(&state, &caller, body)
        .await
        .map(Json)
}

async fn answer_get_15118_ev_certificate(
    state: &AppState,
    caller: &Authenticated,
    body: Get15118EvCertificateRequest,
) -> Result<Get15118EvCertificateResponse, ApiError> {
    if body.iso15118_schema_version.len() > 50 {
        return Err(ApiError::bad_request(
            "iso15118SchemaVersion is longer than 50 characters",
        ));
    }
    let exi_request = base64_field("exiRequest", &body.exi_request, MAX_EXI_REQUEST_BYTES)?;
    check_ocpp21_fields(&body)?;
    let failed = |reason: &str, info: &str| Get15118EvCertificateResponse {
        status: "Failed".to_string(),
        status_info: Some(StatusInfo {
            reason_code: reason_code(reason),
            additional_info: additional_info(info),
        }),
        exi_response: String::new(),
        remaining_contracts: None,
    };
    if !matches!(body.action.as_str(), "Install" | "Update") {
        return Err(ApiError::bad_request(format!(
            "action `{}` is neither Install nor Update",
            body.action.chars().take(20).collect::<String>()
        )));
    }
    let answer = match install(
        state,
        caller,
        exi_request,
        &body.iso15118_schema_version,
        &body.action,
    )
    .await
    {
        Ok(answer) => answer,
        // No ISO answer can be built without a decodable request (no SessionID).
        Err(error)
            if error.status == StatusCode::BAD_REQUEST
                || error.status == StatusCode::PAYLOAD_TOO_LARGE =>
        {
            let info = error.messages.join("; ");
            return Ok(failed("InvalidEXI", &info));
        }
        Err(error) => return Err(error),
    };
    let exi_response = STANDARD.encode(&answer.exi_response);
    let status_info = if answer.response_code != "OK" {
        Some(StatusInfo {
            reason_code: iso_reason_code(&answer.response_code),
            additional_info: additional_info(&format!(
                "{}: {}",
                answer.response_code, answer.failure_reason
            )),
        })
    } else if exi_response.len() > OCPP_201_MAX_EXI_RESPONSE_CHARS {
        // The answer fits OCPP 2.1 (17000) but not 2.0.1's schema; say so (notes §10.2).
        Some(StatusInfo {
            reason_code: "ExiResponseTooLarge".chars().take(20).collect(),
            additional_info: Some(format!(
                "exiResponse has {} base64 characters; OCPP 2.0.1 allows {OCPP_201_MAX_EXI_RESPONSE_CHARS}",
                exi_response.len()
            )),
        })
    } else {
        None
    };
    Ok(Get15118EvCertificateResponse {
        status: "Accepted".to_string(),
        status_info,
        exi_response,
        remaining_contracts: Some(answer.remaining_contracts),
    })
}

/// OCPP 1.6 `DataTransfer`, as the PnC application note uses it: `data` is a string holding
/// the OCPP 2.0.1 message as JSON (ecosystem-apis §6.1).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataTransferRequest {
    pub vendor_id: String,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataTransferResponse {
    /// `Accepted`, `Rejected`, `UnknownMessageId` or `UnknownVendorId`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// The vendor ID of the OCA's PnC application note for OCPP 1.6.
const PNC_VENDOR_ID: &str = "org.openchargealliance.iso15118pnc";

/// `Get15118EVCertificate` for OCPP 1.6 chargers, carried in `DataTransfer`.
#[utoipa::path(
    post,
    path = "/v1/ocpp16/data-transfer",
    tag = "ev",
    request_body = DataTransferRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The DataTransfer answer; for Get15118EVCertificate its data is the OCPP 2.0.1 response as JSON", body = DataTransferResponse),
        (status = 400, description = "Malformed JSON (outer or inner) or base64", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a CPO or charging station", body = crate::error::ErrorBody),
    )
)]
pub async fn ocpp16_data_transfer(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<DataTransferRequest>,
) -> Result<Json<DataTransferResponse>, ApiError> {
    caller.require_role(&[Role::Cpo, Role::Charger])?;
    let unanswered = |status: &str| {
        Ok(Json(DataTransferResponse {
            status: status.to_string(),
            data: None,
        }))
    };
    if body.vendor_id != PNC_VENDOR_ID {
        return unanswered("UnknownVendorId");
    }
    if body.message_id.as_deref() != Some("Get15118EVCertificate") {
        return unanswered("UnknownMessageId");
    }
    let inner: Get15118EvCertificateRequest =
        serde_json::from_str(body.data.as_deref().unwrap_or_default()).map_err(|error| {
            ApiError::bad_request(format!(
                "data is not a Get15118EVCertificate request: {error}"
            ))
        })?;
    let answer = answer_get_15118_ev_certificate(&state, &caller, inner).await?;
    let data = serde_json::to_string(&answer).map_err(|error| {
        ApiError::from(pnc_common::PncError::internal(format!(
            "cannot serialise the answer: {error}"
        )))
    })?;
    Ok(Json(DataTransferResponse {
        status: "Accepted".to_string(),
        data: Some(data),
    }))
}

/// OPCP `GetSignedContractDataRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetSignedContractDataRequest {
    /// Base64 of the EV's EXI CertificateInstallationReq message.
    pub certificate_installation_req: String,
    pub xsd_msg_def_namespace: String,
    #[serde(default)]
    pub metadata: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageDef {
    /// Base64 of the EXI CertificateInstallationRes message.
    pub certificate_installation_res: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emaid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmaidContent {
    pub message_def: MessageDef,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CcpResponse {
    pub emaid_content: Vec<EmaidContent>,
}

/// OPCP `GetSignedContractDataResponse`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GetSignedContractDataResponse {
    #[serde(rename = "CCPResponse")]
    pub ccp_response: CcpResponse,
}

/// OPCP's `alwaysReturnEXI` header, default true.
fn always_return_exi(headers: &HeaderMap) -> bool {
    headers
        .get("alwaysReturnEXI")
        .and_then(|value| value.to_str().ok())
        .map(|value| !value.trim().eq_ignore_ascii_case("false"))
        .unwrap_or(true)
}

fn failure_status(response_code: &str) -> StatusCode {
    match response_code {
        "FAILED_NoCertificateAvailable"
        | "FAILED_ContractCanceled"
        | "WARNING_NoContractMatchingPCIDFound"
        | "WARNING_NoCertificateAvailable" => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// CCP requests may name ISO 15118-20 (its installation is answered like -2's); anything
/// else must be an ISO 15118 namespace pnc knows.
fn check_ccp_namespace(namespace: &str) -> Result<(), ApiError> {
    if crate::routes::cps::ISO20_NAMESPACES.contains(&namespace.trim()) {
        return Ok(());
    }
    check_namespace(namespace)
}

/// The CPO flow of OPCP (ecosystem-apis §2.9): the EV's request in, the default contract's
/// EXI answer out. Without a contract: 404 carrying the failure EXI (`alwaysReturnEXI`).
#[utoipa::path(
    post,
    path = "/v1/ccp/signedContractData",
    tag = "ccp",
    request_body = GetSignedContractDataRequest,
    params(("alwaysReturnEXI" = Option<bool>, Header, description = "Answer failures with an EXI failure response too (default true)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contract's EXI answer", body = GetSignedContractDataResponse),
        (status = 400, description = "Malformed input", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a CPO", body = crate::error::ErrorBody),
        (status = 404, description = "No contract (or another ISO failure); with alwaysReturnEXI the body still carries the failure EXI", body = GetSignedContractDataResponse),
    )
)]
pub async fn get_signed_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GetSignedContractDataRequest>,
) -> Result<Response, ApiError> {
    caller.require_role(&[Role::Cpo, Role::Charger])?;
    check_ccp_namespace(&body.xsd_msg_def_namespace)?;
    let exi_request = base64_field(
        "certificateInstallationReq",
        &body.certificate_installation_req,
        MAX_EXI_REQUEST_BYTES,
    )?;
    let answer = install(
        &state,
        &caller,
        exi_request,
        &body.xsd_msg_def_namespace,
        "Install",
    )
    .await?;
    let content = CcpResponse {
        emaid_content: vec![EmaidContent {
            message_def: MessageDef {
                certificate_installation_res: STANDARD.encode(&answer.exi_response),
                emaid: Some(answer.emaid.clone()).filter(|emaid| !emaid.is_empty()),
                meta_data: body.metadata.clone(),
                cps_v2g_root_certificate_fingerprint: Some(
                    answer.v2g_root_fingerprint.to_ascii_lowercase(),
                )
                .filter(|fingerprint| !fingerprint.is_empty()),
            },
        }],
    };
    let body = GetSignedContractDataResponse {
        ccp_response: content,
    };
    if answer.response_code == "OK" {
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    if always_return_exi(&headers) {
        // OPCP documents the failure EXI only on 404; every ISO failure travels that way.
        return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
    }
    let message = if answer.failure_reason.is_empty() {
        answer.response_code.clone()
    } else {
        format!("{}: {}", answer.response_code, answer.failure_reason)
    };
    Err(ApiError::new(
        failure_status(&answer.response_code),
        message,
    ))
}

/// One entry of OPNC's `signedContractDataCollection`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncSignedContractData {
    pub certificate_installation_res: String,
    pub emaid: String,
    pub pcid: String,
    pub xsd_msg_def_namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cps_root_distinguished_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncSignedContractDataCollection {
    pub signed_contract_data_collection: Vec<OpncSignedContractData>,
}

/// OPNC CCP `getSignedContractDataByCertificateInstallationReqV1`: same headers and body as
/// OPCP's, answered as a `signedContractDataCollection`.
#[utoipa::path(
    post,
    path = "/opnc/v1/ccp/signedcontractdata",
    tag = "opnc-ccp",
    request_body = GetSignedContractDataRequest,
    params(("alwaysReturnEXI" = Option<bool>, Header, description = "Answer failures with an EXI failure response too (default true)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The contract's EXI answer", body = OpncSignedContractDataCollection),
        (status = 400, description = "Malformed input", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a CPO", body = crate::error::ErrorBody),
        (status = 404, description = "No contract; with alwaysReturnEXI the body carries the failure EXI", body = OpncSignedContractDataCollection),
    )
)]
pub async fn opnc_get_signed_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GetSignedContractDataRequest>,
) -> Result<Response, ApiError> {
    caller.require_role(&[Role::Cpo, Role::Charger])?;
    check_ccp_namespace(&body.xsd_msg_def_namespace)?;
    let exi_request = base64_field(
        "certificateInstallationReq",
        &body.certificate_installation_req,
        MAX_EXI_REQUEST_BYTES,
    )?;
    let answer = install(
        &state,
        &caller,
        exi_request,
        &body.xsd_msg_def_namespace,
        "Install",
    )
    .await?;
    let root_distinguished_name = if answer.v2g_root_fingerprint.is_empty() {
        None
    } else {
        cps_chains(&state, &caller)
            .await?
            .into_iter()
            .find(|chain| {
                chain
                    .root_fingerprint
                    .eq_ignore_ascii_case(&answer.v2g_root_fingerprint)
            })
            .map(|chain| distinguished_name(&chain.root))
    };
    let collection = OpncSignedContractDataCollection {
        signed_contract_data_collection: vec![OpncSignedContractData {
            certificate_installation_res: STANDARD.encode(&answer.exi_response),
            emaid: answer.emaid.clone(),
            pcid: answer.pcid.clone(),
            // OPNC names -20 `urn:iso:15118:20:2020:MsgDef` (ecosystem-apis, OPNC table).
            xsd_msg_def_namespace: if crate::routes::cps::ISO20_NAMESPACES
                .contains(&body.xsd_msg_def_namespace.trim())
            {
                "urn:iso:15118:20:2020:MsgDef".to_string()
            } else {
                ISO2_NAMESPACE.to_string()
            },
            meta_data: body.metadata.clone(),
            cps_v2g_root_certificate_fingerprint: Some(
                answer.v2g_root_fingerprint.to_ascii_lowercase(),
            )
            .filter(|fingerprint| !fingerprint.is_empty()),
            cps_root_distinguished_name: root_distinguished_name,
        }],
    };
    if answer.response_code == "OK" {
        return Ok((StatusCode::OK, Json(collection)).into_response());
    }
    if always_return_exi(&headers) {
        return Ok((StatusCode::NOT_FOUND, Json(collection)).into_response());
    }
    Err(ApiError::from(PncError::new(
        if failure_status(&answer.response_code) == StatusCode::NOT_FOUND {
            ErrorKind::NotFound
        } else {
            ErrorKind::InvalidArgument
        },
        format!("{}: {}", answer.response_code, answer.failure_reason),
    )))
}

/// The -20 schema namespace provisioning names its -20 answers by.
const ISO20_SCHEMA_NAMESPACE: &str = "urn:iso:std:iso:15118:-20:CommonMessages";

/// Query of OPCP `provideSignedContractData` and OPNC `GET /signedcontractdata/{emaid}/{pcid}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ProvideQuery {
    /// Hex SessionID to put into the message (at most 8 bytes, exactly 8 for a -20
    /// contract); absent: zeros.
    #[serde(rename = "sessionID", alias = "sessionId")]
    pub session_id: Option<String>,
    #[serde(rename = "xsdMsgDefNamespace")]
    pub xsd_msg_def_namespace: Option<String>,
    /// SHA-256 hex of the V2G root (or its rootCertificateId).
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
}

async fn render_contract(
    state: &AppState,
    caller: &Authenticated,
    emaid: &str,
    pcid: &str,
    query: &ProvideQuery,
) -> Result<InstallResponse, ApiError> {
    use crate::routes::cps::{parse_emaid, parse_pcid, root_selector};
    // A named namespace asks for that form only; none: the form the contract has.
    let namespace = query.xsd_msg_def_namespace.as_deref().unwrap_or_default();
    let schema_namespace = if crate::routes::cps::ISO20_NAMESPACES.contains(&namespace.trim()) {
        ISO20_SCHEMA_NAMESPACE.to_string()
    } else {
        check_namespace(namespace)?;
        match namespace.trim() {
            "" => String::new(),
            _ => ISO2_NAMESPACE.to_string(),
        }
    };
    let emaid = parse_emaid(emaid)?;
    let pcid = parse_pcid(pcid)?;
    let session_id = match query.session_id.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(text) => hex::decode(text)
            .ok()
            .filter(|bytes| bytes.len() <= 8)
            .ok_or_else(|| ApiError::bad_request("sessionID must be hex of at most 8 bytes"))?,
    };
    let mut root = root_selector(query.cps_v2g_root_certificate_fingerprint.as_deref())?;
    if uuid::Uuid::parse_str(&root).is_ok() {
        // OPCP's schema names the root by its rootCertificateId.
        root = state
            .truststore()
            .get_root(request_as(
                &caller.0,
                pnc_proto::truststore::v1::GetRootRequest { id: root.clone() },
            ))
            .await?
            .into_inner()
            .sha256_fingerprint;
    }
    Ok(state
        .provisioning()
        .render_contract(request_as(
            &caller.0,
            pnc_proto::provisioning::v1::RenderContractRequest {
                emaid: emaid.as_str().to_string(),
                pcid: pcid.as_str().to_string(),
                session_id,
                v2g_root_fingerprint: root,
                schema_namespace,
            },
        ))
        .await?
        .into_inner())
}

/// OPCP `ProvideSignedContractData` response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvideSignedContractDataResponse {
    pub certificate_installation_res: String,
    pub xsd_msg_def_namespace: String,
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: String,
}

/// The namespace OPCP (`urn:iso:15118:20:2022:MsgDef`) or OPNC (`...:20:2020:...`) names an
/// answer's standard by.
fn answer_namespace(answer: &InstallResponse, iso20_namespace: &str) -> String {
    if answer.schema_namespace == ISO20_SCHEMA_NAMESPACE {
        iso20_namespace.to_string()
    } else {
        ISO2_NAMESPACE.to_string()
    }
}

/// OEM back-end delivery: the contract's answer for the vehicle, with the SessionID the OEM
/// back end passes on (ecosystem-apis §2.9): a -2 or -20 CertificateInstallationRes, as the
/// contract is (a -20 SessionID has exactly 8 bytes; RemainingContractCertificateChains 0).
#[utoipa::path(
    get,
    path = "/v1/ccp/provideSignedContractData/{emaid}/{pcid}",
    tag = "ccp",
    params(
        ("emaid" = String, Path, description = "eMAID, any equivalent spelling"),
        ("pcid" = String, Path, description = "PCID"),
        ProvideQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The EXI answer", body = ProvideSignedContractDataResponse),
        (status = 400, description = "Malformed input", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not this vehicle's OEM", body = crate::error::ErrorBody),
        (status = 404, description = "No such contract", body = crate::error::ErrorBody),
    )
)]
pub async fn provide_signed_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    axum::extract::Path((emaid, pcid)): axum::extract::Path<(String, String)>,
    axum::extract::Query(query): axum::extract::Query<ProvideQuery>,
) -> Result<Json<ProvideSignedContractDataResponse>, ApiError> {
    caller.require_role(&[Role::Oem, Role::Emsp])?;
    let answer = render_contract(&state, &caller, &emaid, &pcid, &query).await?;
    crate::routes::ccp::note_delivery_to_oem(
        &state,
        &caller,
        &answer.emaid,
        &answer.pcid,
        &answer.v2g_root_fingerprint,
    )
    .await;
    Ok(Json(ProvideSignedContractDataResponse {
        certificate_installation_res: STANDARD.encode(&answer.exi_response),
        xsd_msg_def_namespace: answer_namespace(&answer, "urn:iso:15118:20:2022:MsgDef"),
        cps_v2g_root_certificate_fingerprint: answer.v2g_root_fingerprint.to_ascii_lowercase(),
    }))
}

/// OPNC's OEM back-end delivery, as a `signedContractDataCollection`.
#[utoipa::path(
    get,
    path = "/opnc/v1/ccp/signedcontractdata/{emaid}/{pcid}",
    tag = "opnc-ccp",
    params(
        ("emaid" = String, Path, description = "eMAID, any equivalent spelling"),
        ("pcid" = String, Path, description = "PCID"),
        ProvideQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The EXI answer", body = OpncSignedContractDataCollection),
        (status = 400, description = "Malformed input", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not this vehicle's OEM", body = crate::error::ErrorBody),
        (status = 404, description = "No such contract", body = crate::error::ErrorBody),
    )
)]
pub async fn opnc_provide_signed_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    _routing: crate::routes::opnc_rcp::OpncRouting,
    axum::extract::Path((emaid, pcid)): axum::extract::Path<(String, String)>,
    axum::extract::Query(query): axum::extract::Query<ProvideQuery>,
) -> Result<Json<OpncSignedContractDataCollection>, ApiError> {
    caller.require_role(&[Role::Oem, Role::Emsp])?;
    let answer = render_contract(&state, &caller, &emaid, &pcid, &query).await?;
    crate::routes::ccp::note_delivery_to_oem(
        &state,
        &caller,
        &answer.emaid,
        &answer.pcid,
        &answer.v2g_root_fingerprint,
    )
    .await;
    let root_distinguished_name = cps_chains(&state, &caller)
        .await?
        .into_iter()
        .find(|chain| {
            chain
                .root_fingerprint
                .eq_ignore_ascii_case(&answer.v2g_root_fingerprint)
        })
        .map(|chain| distinguished_name(&chain.root));
    Ok(Json(OpncSignedContractDataCollection {
        signed_contract_data_collection: vec![OpncSignedContractData {
            certificate_installation_res: STANDARD.encode(&answer.exi_response),
            xsd_msg_def_namespace: answer_namespace(&answer, "urn:iso:15118:20:2020:MsgDef"),
            emaid: answer.emaid,
            pcid: answer.pcid,
            meta_data: None,
            cps_v2g_root_certificate_fingerprint: Some(
                answer.v2g_root_fingerprint.to_ascii_lowercase(),
            ),
            cps_root_distinguished_name: root_distinguished_name,
        }],
    }))
}
