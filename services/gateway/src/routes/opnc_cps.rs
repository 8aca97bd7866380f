//! OPNC v1 CPS (`/opnc/v1/cps/…`, ecosystem-apis §3.2): the same operations as OPCP's CPS,
//! with OPNC's bodies — signed contract data travels as the EXI `certificateInstallationRes`
//! (SessionID 00) instead of Hubject's XML — and OPNC's routing headers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_proto::principal::Role;
use pnc_proto::provisioning::v1::{
    ContractResponse, GenerateContractRequest, SignContractDataRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::cps::{
    ISO2_NAMESPACE, base64_field, check_namespace, contract_chain, cps_chains, distinguished_name,
    emaid_of_leaf, parse_emaid, parse_pcid, parse_time, rfc3339, root_selector,
};
use crate::routes::opnc_rcp::OpncRouting;
use crate::state::{AppState, request_as};

/// OPNC `CertificateChainV1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncCertificateChain {
    pub certificate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_ca1_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_ca2_certificate: Option<String>,
}

/// OPNC `SignedContractDataV1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncSignedContractData {
    /// Base64 of the EXI CertificateInstallationRes message (SessionID 00).
    pub certificate_installation_res: String,
    pub emaid: String,
    pub pcid: String,
    pub xsd_msg_def_namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<String>,
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: String,
    pub cps_root_distinguished_name: String,
}

/// OPNC `SignContractDataResV1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncSignContractDataResponse {
    pub signed_contract_data: OpncSignedContractData,
}

fn opnc_response(
    response: ContractResponse,
    meta_data: Option<String>,
) -> Result<OpncSignContractDataResponse, ApiError> {
    let contract = response.contract.unwrap_or_default();
    let view =
        response.signed.into_iter().next().ok_or_else(|| {
            ApiError::from(pnc_common::PncError::internal("no signed contract data"))
        })?;
    let signed = view.signed_data.unwrap_or_default();
    Ok(OpncSignContractDataResponse {
        signed_contract_data: OpncSignedContractData {
            certificate_installation_res: STANDARD.encode(&view.certificate_installation_res),
            emaid: contract.emaid,
            pcid: contract.pcid,
            xsd_msg_def_namespace: ISO2_NAMESPACE.to_string(),
            meta_data,
            cps_v2g_root_certificate_fingerprint: signed.v2g_root_fingerprint.to_ascii_lowercase(),
            cps_root_distinguished_name: view.v2g_root_distinguished_name,
        },
    })
}

/// OPNC `GenerateAndSignContractDataReqV1`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncGenerateAndSignRequest {
    pub contract_begins: String,
    pub contract_ends: String,
    pub emaid: String,
    pub pcid: String,
    pub xsd_msg_def_namespace: String,
    #[serde(default)]
    pub subscription_url: Option<String>,
    #[serde(default, rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
    /// The eMSP root the contract must chain to.
    #[serde(default)]
    pub mo_root_certificate_fingerprint: Option<String>,
    #[serde(default)]
    pub meta_data: Option<String>,
}

/// Generate mode (OPCP's `generate/signedContractData`).
#[utoipa::path(
    put,
    path = "/opnc/v1/cps/contractData/generateandsign",
    tag = "opnc-cps",
    request_body = OpncGenerateAndSignRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Contract generated, signed and stored", body = OpncSignContractDataResponse),
        (status = 400, description = "Malformed input, unknown PCID, contract in the past", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not an eMSP of this eMAID's provider", body = crate::error::ErrorBody),
    )
)]
pub async fn generate_and_sign(
    State(state): State<AppState>,
    caller: Authenticated,
    _routing: OpncRouting,
    ApiJson(body): ApiJson<OpncGenerateAndSignRequest>,
) -> Result<(StatusCode, Json<OpncSignContractDataResponse>), ApiError> {
    caller.require_role(&[Role::Emsp])?;
    check_namespace(&body.xsd_msg_def_namespace)?;
    let emaid = parse_emaid(&body.emaid)?;
    let pcid = parse_pcid(&body.pcid)?;
    let mo_root_fingerprint = match body
        .mo_root_certificate_fingerprint
        .as_deref()
        .map(str::trim)
    {
        None | Some("") => String::new(),
        Some(value) if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            value.to_string()
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "moRootCertificateFingerprint must be a SHA-256 hex fingerprint",
            ));
        }
    };
    let request = GenerateContractRequest {
        emaid: emaid.as_str().to_string(),
        pcid: pcid.as_str().to_string(),
        contract_begins: parse_time("contractBegins", &body.contract_begins)?,
        contract_ends: parse_time("contractEnds", &body.contract_ends)?,
        cps_v2g_root_fingerprint: root_selector(
            body.cps_v2g_root_certificate_fingerprint.as_deref(),
        )?,
        mo_root_fingerprint,
    };
    let response = state
        .provisioning()
        .generate_contract(request_as(&caller.0, request))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(opnc_response(response, body.meta_data)?),
    ))
}

/// OPNC `contractCertificateBundleV1`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncContractCertificateBundle {
    pub pcid: String,
    pub emaid: String,
    pub contract_certificate_chain: OpncCertificateChain,
    pub contract_signature_encrypted_private_key: String,
    #[serde(rename = "dHpublickey", alias = "dhPublicKey", alias = "dHPublicKey")]
    pub dh_public_key: String,
}

/// OPNC `SignContractDataRequestV1`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncSignContractDataRequest {
    pub contract_certificate_bundle: OpncContractCertificateBundle,
    pub xsd_msg_def_namespace: String,
    #[serde(default, rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
    /// pnc extension (not in OPNC), as on the OPCP sign endpoint: the SHA-256 hex of the
    /// contract certificate this bundle renews; its key is sealed to that certificate.
    #[serde(default)]
    pub renews_contract_certificate_fingerprint: Option<String>,
}

/// eMSP PKI mode: pnc's CPS signs the eMSP's contract data and stores it for the PCID.
#[utoipa::path(
    put,
    path = "/opnc/v1/cps/contractData/sign",
    tag = "opnc-cps",
    request_body = OpncSignContractDataRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Signed and stored", body = OpncSignContractDataResponse),
        (status = 400, description = "Malformed input or a chain that does not reach a registered MO root", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not an eMSP of this eMAID's provider", body = crate::error::ErrorBody),
    )
)]
pub async fn sign(
    State(state): State<AppState>,
    caller: Authenticated,
    _routing: OpncRouting,
    ApiJson(body): ApiJson<OpncSignContractDataRequest>,
) -> Result<(StatusCode, Json<OpncSignContractDataResponse>), ApiError> {
    caller.require_role(&[Role::Emsp])?;
    check_namespace(&body.xsd_msg_def_namespace)?;
    let bundle = &body.contract_certificate_bundle;
    let chain = contract_chain(
        &bundle.contract_certificate_chain.certificate,
        bundle
            .contract_certificate_chain
            .sub_ca2_certificate
            .as_deref(),
        bundle
            .contract_certificate_chain
            .sub_ca1_certificate
            .as_deref(),
    )?;
    let emaid = parse_emaid(&bundle.emaid)?;
    if !emaid_of_leaf(&chain[0])?.same_account(&emaid) {
        return Err(ApiError::bad_request(
            "the contract certificate's CN is not the bundle's eMAID",
        ));
    }
    let pcid = parse_pcid(&bundle.pcid)?;
    let request = SignContractDataRequest {
        emaid: emaid.as_str().to_string(),
        pcid: pcid.as_str().to_string(),
        contract_chain: chain,
        encrypted_private_key: base64_field(
            "contractSignatureEncryptedPrivateKey",
            &bundle.contract_signature_encrypted_private_key,
            48,
        )?,
        dh_public_key: base64_field("dHpublickey", &bundle.dh_public_key, 65)?,
        cps_v2g_root_fingerprint: root_selector(
            body.cps_v2g_root_certificate_fingerprint.as_deref(),
        )?,
        store: true,
        renews_contract_certificate_fingerprint: crate::routes::cps::renewal_selector(
            body.renews_contract_certificate_fingerprint.as_deref(),
        )?,
    };
    let response = state
        .provisioning()
        .sign_contract_data(request_as(&caller.0, request))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(opnc_response(response, None)?)))
}

/// OPNC `CpsCertificateChainDataV1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncCpsCertificateData {
    pub cps_distinguished_name: String,
    pub cps_certificate_chain: OpncCertificateChain,
    pub valid_from: String,
    pub valid_to: String,
    pub organization_name: String,
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: String,
    #[serde(rename = "cpsV2GRootDistinguishedName")]
    pub cps_v2g_root_distinguished_name: String,
    pub xsd_msg_def_namespace: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpncCpsCertificates {
    pub cps_certificate_data_collection: Vec<OpncCpsCertificateData>,
}

/// The CPS certificates, one chain per V2G root (OPCP's `GET /cps/signer`).
#[utoipa::path(
    get,
    path = "/opnc/v1/cps/cpsCertificates",
    tag = "opnc-cps",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The CPS certificate chains", body = OpncCpsCertificates),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
pub async fn cps_certificates(
    State(state): State<AppState>,
    caller: Authenticated,
    _routing: OpncRouting,
) -> Result<Json<OpncCpsCertificates>, ApiError> {
    let collection = cps_chains(&state, &caller)
        .await?
        .into_iter()
        .map(|chain| OpncCpsCertificateData {
            cps_distinguished_name: distinguished_name(&chain.leaf),
            cps_certificate_chain: OpncCertificateChain {
                certificate: STANDARD.encode(chain.leaf.der()),
                sub_ca1_certificate: Some(STANDARD.encode(chain.sub_ca_1.der())),
                sub_ca2_certificate: Some(STANDARD.encode(chain.sub_ca_2.der())),
            },
            valid_from: rfc3339(chain.leaf.not_before()),
            valid_to: rfc3339(chain.leaf.not_after()),
            organization_name: chain
                .leaf
                .subject()
                .values("2.5.4.10")
                .next()
                .unwrap_or_default()
                .to_string(),
            cps_v2g_root_certificate_fingerprint: chain.root_fingerprint,
            cps_v2g_root_distinguished_name: distinguished_name(&chain.root),
            xsd_msg_def_namespace: ISO2_NAMESPACE.to_string(),
        })
        .collect();
    Ok(Json(OpncCpsCertificates {
        cps_certificate_data_collection: collection,
    }))
}
