//! CPS: contract data signed by pnc's Certificate Provisioning Service, after OPCP
//! `cps.v1.json` (ecosystem-apis §2.8).
//!
//! - `PUT /v1/cps/generate/signedContractData`: pnc issues the contract (generate mode);
//! - `PUT /v1/cps/contractData/signed`, `PUT /v1/cps/signedContractData`,
//!   `PUT /v1/cps/forward/signedContractData`: the eMSP's own PKI, pnc signs (and stores);
//! - `GET /cps/signer`: the CPS certificates, so an eMSP can pick the V2G root.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_common::ids::{Emaid, Pcid};
use pnc_proto::common::v1::Certificate as ProtoCertificate;
use pnc_proto::principal::Role;
use pnc_proto::provisioning::v1::{
    ContractResponse, GenerateContractRequest, ListCpsChainsRequest, SignContractDataRequest,
    SignedContractDataView,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::{AppState, request_as};

/// The only namespace pnc signs for today.
pub const ISO2_NAMESPACE: &str = "urn:iso:15118:2:2013:MsgDef";
/// ISO 15118-2 caps certificates at 800 bytes of DER [V2G2-010]; OPCP's `maxLength: 800`
/// is applied to the decoded DER (ecosystem-apis §2.12).
pub const MAX_CERTIFICATE_DER: usize = 800;

/// The names callers use for ISO 15118-20 (notes §2).
pub(crate) const ISO20_NAMESPACES: [&str; 3] = [
    "urn:iso:std:iso:15118:-20:CommonMessages",
    "urn:iso:15118:20:2022:MsgDef",
    "urn:iso:15118:20:2020:MsgDef",
];

pub(crate) fn check_namespace(namespace: &str) -> Result<(), ApiError> {
    match namespace.trim() {
        "" | ISO2_NAMESPACE => Ok(()),
        "urn:iso:std:iso:15118:-20:CommonMessages"
        | "urn:iso:15118:20:2022:MsgDef"
        | "urn:iso:15118:20:2020:MsgDef" => Err(ApiError::bad_request(
            "xsdMsgDefNamespace: ISO 15118-20 is supported in generate mode and for installation requests only",
        )),
        other => Err(ApiError::bad_request(format!(
            "xsdMsgDefNamespace `{}` is not an ISO 15118 namespace",
            other.chars().take(80).collect::<String>()
        ))),
    }
}

pub(crate) fn base64_field(
    field: &str,
    value: &str,
    max_decoded: usize,
) -> Result<Vec<u8>, ApiError> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Reject before decoding what cannot fit (4 characters per 3 bytes).
    if compact.len() > max_decoded.div_ceil(3) * 4 + 4 {
        return Err(ApiError::bad_request(format!(
            "{field} is larger than {max_decoded} bytes"
        )));
    }
    let bytes = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| ApiError::bad_request(format!("{field} is not valid base64")))?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(format!("{field} is empty")));
    }
    if bytes.len() > max_decoded {
        return Err(ApiError::bad_request(format!(
            "{field} is larger than {max_decoded} bytes"
        )));
    }
    Ok(bytes)
}

pub(crate) fn certificate_field(field: &str, value: &str) -> Result<ProtoCertificate, ApiError> {
    let der = base64_field(field, value, MAX_CERTIFICATE_DER)?;
    if openssl::x509::X509::from_der(&der).is_err() {
        return Err(ApiError::bad_request(format!(
            "{field} is not a DER X.509 certificate"
        )));
    }
    Ok(ProtoCertificate { der })
}

/// OPCP types the fingerprint as a UUID (a rootCertificateId) while Hubject sends a SHA-256
/// hex string; both are accepted (ecosystem-apis §2.12).
pub(crate) fn root_selector(value: Option<&str>) -> Result<String, ApiError> {
    let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
        return Ok(String::new());
    };
    let is_hex_fingerprint = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex_fingerprint || uuid::Uuid::parse_str(value).is_ok() {
        Ok(value.to_string())
    } else {
        Err(ApiError::bad_request(
            "cpsV2GRootCertificateFingerprint must be a SHA-256 hex fingerprint or a rootCertificateId",
        ))
    }
}

pub(crate) fn parse_emaid(value: &str) -> Result<Emaid, ApiError> {
    Emaid::parse(value).map_err(|error| ApiError::bad_request(format!("emaid : {error}")))
}

pub(crate) fn parse_pcid(value: &str) -> Result<Pcid, ApiError> {
    Pcid::parse(value).map_err(|error| ApiError::bad_request(format!("pcid : {error}")))
}

pub(crate) fn parse_time(field: &str, value: &str) -> Result<i64, ApiError> {
    use time::format_description::well_known::Rfc3339;
    let value = value.trim();
    if let Ok(moment) = time::OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(moment.unix_timestamp());
    }
    // A bare date means its midnight UTC.
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &date_format)
        .map(|date| date.midnight().assume_utc().unix_timestamp())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "The {field} does not match the specification (RFC 3339 date-time)"
            ))
        })
}

/// OPCP `SignedContractDataResponse` (and the deprecated `CreateSignedContractDataResponse`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedContractDataResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcid: Option<String>,
    pub emaid: String,
    pub xsd_msg_def_namespace: String,
    /// Base64 of the CPS's XML `V2G_Message` (signed CertificateInstallationRes, no SessionID).
    pub signed_data: String,
    /// Lower-case hex SHA-256 of the V2G root of the CPS chain.
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: String,
    pub cps_root_distinguished_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<String>,
}

fn signed_response(
    response: ContractResponse,
    meta_data: Option<String>,
) -> Result<SignedContractDataResponse, ApiError> {
    let contract = response.contract.unwrap_or_default();
    let view: SignedContractDataView =
        response.signed.into_iter().next().ok_or_else(|| {
            ApiError::from(pnc_common::PncError::internal("no signed contract data"))
        })?;
    let signed = view.signed_data.unwrap_or_default();
    Ok(SignedContractDataResponse {
        pcid: Some(contract.pcid).filter(|pcid| !pcid.is_empty()),
        emaid: contract.emaid,
        // -20 data is marked by its schema (registry contracts.proto).
        xsd_msg_def_namespace: if signed.schema_namespace.is_empty() {
            ISO2_NAMESPACE.to_string()
        } else {
            "urn:iso:15118:20:2022:MsgDef".to_string()
        },
        signed_data: STANDARD.encode(view.signed_xml.as_bytes()),
        cps_v2g_root_certificate_fingerprint: signed.v2g_root_fingerprint.to_ascii_lowercase(),
        cps_root_distinguished_name: view.v2g_root_distinguished_name,
        meta_data,
    })
}

/// OPCP `GenerateSignedContractDataRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerateSignedContractDataRequest {
    /// RFC 3339; may lie in the past.
    pub contract_begins: String,
    pub contract_ends: String,
    pub emaid: String,
    pub pcid: String,
    #[serde(default)]
    pub xsd_msg_def_namespace: Option<String>,
    #[serde(default)]
    pub subscription_url: Option<String>,
    #[serde(default)]
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
    #[serde(default)]
    pub meta_data: Option<String>,
}

/// Generate mode: pnc issues the contract key and certificate under its MO Sub-CA, seals the
/// key to the vehicle, signs with every CPS chain and stores the contract. The same PCID and
/// eMAID replace the contract.
#[utoipa::path(
    put,
    path = "/v1/cps/generate/signedContractData",
    tag = "cps",
    request_body = GenerateSignedContractDataRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Contract generated, signed and stored", body = SignedContractDataResponse),
        (status = 400, description = "Malformed eMAID or PCID, unknown PCID, contract in the past", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not an eMSP of this eMAID's provider", body = crate::error::ErrorBody),
    )
)]
pub async fn generate_signed_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<GenerateSignedContractDataRequest>,
) -> Result<(StatusCode, Json<SignedContractDataResponse>), ApiError> {
    caller.require_role(&[Role::Emsp])?;
    // Generate mode serves -20 vehicles too: the registered provisioning key decides.
    let namespace = body.xsd_msg_def_namespace.as_deref().unwrap_or_default();
    if !ISO20_NAMESPACES.contains(&namespace.trim()) {
        check_namespace(namespace)?;
    }
    let emaid = parse_emaid(&body.emaid)?;
    let pcid = parse_pcid(&body.pcid)?;
    let request = GenerateContractRequest {
        emaid: emaid.as_str().to_string(),
        pcid: pcid.as_str().to_string(),
        contract_begins: parse_time("contractBegins", &body.contract_begins)?,
        contract_ends: parse_time("contractEnds", &body.contract_ends)?,
        cps_v2g_root_fingerprint: root_selector(
            body.cps_v2g_root_certificate_fingerprint.as_deref(),
        )?,
        mo_root_fingerprint: String::new(),
    };
    let response = state
        .provisioning()
        .generate_contract(request_as(&caller.0, request))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(signed_response(response, body.meta_data)?),
    ))
}

/// OPCP `ContractData` (current sign endpoint).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractData {
    pub contract_certificate: String,
    pub contract_sub_ca1_certificate: String,
    #[serde(default)]
    pub contract_sub_ca2_certificate: Option<String>,
    /// Base64, 48 bytes: IV ‖ ciphertext.
    pub contract_signature_encrypted_private_key: String,
    /// Base64, 65 bytes: 04 ‖ X ‖ Y.
    #[serde(rename = "dHpublickey", alias = "dhPublicKey", alias = "dHPublicKey")]
    pub dh_public_key: String,
}

/// OPCP `SignedContractDataRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedContractDataRequest {
    pub contract_data: ContractData,
    #[serde(default)]
    pub pcid: Option<String>,
    pub xsd_msg_def_namespace: String,
    #[serde(default)]
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
    #[serde(default)]
    pub meta_data: Option<String>,
    /// pnc extension (not in OPCP): SHA-256 hex of the DER of the contract certificate
    /// this chain renews. The key material must then be sealed to that old certificate's
    /// key [V2G2-821]; the result is stored as its pending renewal, answered to the EV's
    /// CertificateUpdateReq, instead of as installation data.
    #[serde(default)]
    pub renews_contract_certificate_fingerprint: Option<String>,
}

/// The pnc extension field `renewsContractCertificateFingerprint`: empty, or 64 hex.
pub(crate) fn renewal_selector(value: Option<&str>) -> Result<String, ApiError> {
    let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
        return Ok(String::new());
    };
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(ApiError::bad_request(
            "renewsContractCertificateFingerprint must be the SHA-256 hex fingerprint of the renewed contract certificate",
        ))
    }
}

pub(crate) fn contract_chain(
    leaf: &str,
    sub_ca_2: Option<&str>,
    sub_ca_1: Option<&str>,
) -> Result<Vec<ProtoCertificate>, ApiError> {
    let mut chain = vec![certificate_field("contractCertificate", leaf)?];
    if let Some(sub_ca_2) = sub_ca_2.filter(|value| !value.trim().is_empty()) {
        chain.push(certificate_field("contractSubCa2Certificate", sub_ca_2)?);
    }
    if let Some(sub_ca_1) = sub_ca_1.filter(|value| !value.trim().is_empty()) {
        chain.push(certificate_field("contractSubCa1Certificate", sub_ca_1)?);
    }
    Ok(chain)
}

/// The eMAID is the contract certificate's CN [V2G2-108].
pub(crate) fn emaid_of_leaf(leaf: &ProtoCertificate) -> Result<Emaid, ApiError> {
    let certificate = pnc_pki::Certificate::from_der(&leaf.der)
        .map_err(|error| ApiError::bad_request(format!("contractCertificate: {error}")))?;
    let common_name = certificate
        .common_name()
        .ok_or_else(|| ApiError::bad_request("contractCertificate has no CN (the eMAID)"))?;
    Emaid::parse(common_name).map_err(|error| {
        ApiError::bad_request(format!("contractCertificate CN is not an eMAID: {error}"))
    })
}

/// eMSP PKI mode: pnc's CPS signs the eMSP's contract data; with a PCID the result is also
/// stored in the contract pool. With `renewsContractCertificateFingerprint` (pnc extension)
/// it is stored as the renewal of that contract certificate for CertificateUpdate.
#[utoipa::path(
    put,
    path = "/v1/cps/contractData/signed",
    tag = "cps",
    request_body = SignedContractDataRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Signed (and stored when a PCID is given)", body = SignedContractDataResponse),
        (status = 400, description = "Malformed input or a chain that does not reach a registered MO root", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not an eMSP of this eMAID's provider", body = crate::error::ErrorBody),
    )
)]
pub async fn sign_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<SignedContractDataRequest>,
) -> Result<(StatusCode, Json<SignedContractDataResponse>), ApiError> {
    caller.require_role(&[Role::Emsp])?;
    check_namespace(&body.xsd_msg_def_namespace)?;
    let data = &body.contract_data;
    let chain = contract_chain(
        &data.contract_certificate,
        data.contract_sub_ca2_certificate.as_deref(),
        Some(&data.contract_sub_ca1_certificate),
    )?;
    let emaid = emaid_of_leaf(&chain[0])?;
    let pcid = body
        .pcid
        .as_deref()
        .filter(|pcid| !pcid.trim().is_empty())
        .map(parse_pcid)
        .transpose()?;
    let renews = renewal_selector(body.renews_contract_certificate_fingerprint.as_deref())?;
    let request = SignContractDataRequest {
        emaid: emaid.as_str().to_string(),
        store: pcid.is_some() || !renews.is_empty(),
        renews_contract_certificate_fingerprint: renews,
        pcid: pcid
            .map(|pcid| pcid.as_str().to_string())
            .unwrap_or_default(),
        contract_chain: chain,
        encrypted_private_key: base64_field(
            "contractSignatureEncryptedPrivateKey",
            &data.contract_signature_encrypted_private_key,
            48,
        )?,
        dh_public_key: base64_field("dHpublickey", &data.dh_public_key, 65)?,
        cps_v2g_root_fingerprint: root_selector(
            body.cps_v2g_root_certificate_fingerprint.as_deref(),
        )?,
    };
    let response = state
        .provisioning()
        .sign_contract_data(request_as(&caller.0, request))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(signed_response(response, body.meta_data)?),
    ))
}

/// The deprecated contract-data shape (`contract-data` in cps.v1.json).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractSignatureCertChain {
    pub contract_signature_cert_chain_certificate: String,
    /// Sub-CA 2 first, then Sub-CA 1.
    pub contract_signature_cert_chain_sub_certificates: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyContractData {
    pub contract_signature_cert_chain: ContractSignatureCertChain,
    pub contract_signature_encrypted_private_key: String,
    #[serde(rename = "dHpublickey", alias = "dhPublicKey", alias = "dHPublicKey")]
    pub dh_public_key: String,
    pub emaid: String,
}

/// OPCP `CreateSignedContractDataRequest` (deprecated endpoints).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateSignedContractDataRequest {
    pub xsd_msg_def_namespace: String,
    pub contract_data: LegacyContractData,
    pub pcid: String,
    pub emaid: String,
    #[serde(default)]
    pub meta_data: Option<String>,
    #[serde(default)]
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: Option<String>,
}

fn legacy_request(
    body: &CreateSignedContractDataRequest,
    store: bool,
) -> Result<SignContractDataRequest, ApiError> {
    check_namespace(&body.xsd_msg_def_namespace)?;
    let emaid = parse_emaid(&body.emaid)?;
    if !parse_emaid(&body.contract_data.emaid)?.same_account(&emaid) {
        return Err(ApiError::bad_request(
            "emaid and contractData.emaid name different contracts",
        ));
    }
    let pcid = parse_pcid(&body.pcid)?;
    let chain_data = &body.contract_data.contract_signature_cert_chain;
    let subs = &chain_data.contract_signature_cert_chain_sub_certificates;
    if subs.is_empty() || subs.len() > 2 {
        return Err(ApiError::bad_request(
            "contractSignatureCertChainSubCertificates must hold one or two certificates",
        ));
    }
    let mut chain = vec![certificate_field(
        "contractSignatureCertChainCertificate",
        &chain_data.contract_signature_cert_chain_certificate,
    )?];
    for sub in subs {
        chain.push(certificate_field(
            "contractSignatureCertChainSubCertificates",
            sub,
        )?);
    }
    Ok(SignContractDataRequest {
        emaid: emaid.as_str().to_string(),
        pcid: pcid.as_str().to_string(),
        contract_chain: chain,
        encrypted_private_key: base64_field(
            "contractSignatureEncryptedPrivateKey",
            &body.contract_data.contract_signature_encrypted_private_key,
            48,
        )?,
        dh_public_key: base64_field("dHpublickey", &body.contract_data.dh_public_key, 65)?,
        cps_v2g_root_fingerprint: root_selector(
            body.cps_v2g_root_certificate_fingerprint.as_deref(),
        )?,
        store,
        renews_contract_certificate_fingerprint: String::new(),
    })
}

/// Deprecated: sign and return, nothing stored.
#[utoipa::path(
    put,
    path = "/v1/cps/signedContractData",
    tag = "cps",
    request_body = CreateSignedContractDataRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed", body = SignedContractDataResponse),
        (status = 400, description = "Malformed input or a foreign chain", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not an eMSP of this eMAID's provider", body = crate::error::ErrorBody),
    )
)]
pub async fn create_signed_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<CreateSignedContractDataRequest>,
) -> Result<Json<SignedContractDataResponse>, ApiError> {
    caller.require_role(&[Role::Emsp])?;
    let request = legacy_request(&body, false)?;
    let response = state
        .provisioning()
        .sign_contract_data(request_as(&caller.0, request))
        .await?
        .into_inner();
    let mut answer = signed_response(response, body.meta_data)?;
    answer.pcid = Some(body.pcid);
    Ok(Json(answer))
}

/// Deprecated: sign and store.
#[utoipa::path(
    put,
    path = "/v1/cps/forward/signedContractData",
    tag = "cps",
    request_body = CreateSignedContractDataRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Signed and stored"),
        (status = 400, description = "Malformed input or a foreign chain", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Not an eMSP of this eMAID's provider", body = crate::error::ErrorBody),
    )
)]
pub async fn forward_signed_contract_data(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<CreateSignedContractDataRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    caller.require_role(&[Role::Emsp])?;
    let request = legacy_request(&body, true)?;
    state
        .provisioning()
        .sign_contract_data(request_as(&caller.0, request))
        .await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({}))))
}

/// One CPS certificate, after OPCP `cpsSigner-data`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpsSignerData {
    pub cps_distinguished_name: String,
    pub cps_certificate: String,
    pub valid_from: String,
    pub valid_to: String,
    pub organization_name: String,
    #[serde(rename = "cpsV2GRootCertificateFingerprint")]
    pub cps_v2g_root_certificate_fingerprint: String,
    pub cps_root_distinguished_name: String,
    pub cps_sub_ca1_certificate: String,
    pub cps_sub_ca2_certificate: String,
    pub xsd_msg_def_namespace: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetAllCpsSignerResponse {
    pub cps_certificates: Vec<CpsSignerData>,
}

/// The CPS chains pnc signs with, one per V2G root, parsed for the OPCP view.
pub(crate) struct CpsChainView {
    pub leaf: pnc_pki::Certificate,
    pub sub_ca_2: pnc_pki::Certificate,
    pub sub_ca_1: pnc_pki::Certificate,
    pub root: pnc_pki::Certificate,
    pub root_fingerprint: String,
}

pub(crate) async fn cps_chains(
    state: &AppState,
    caller: &Authenticated,
) -> Result<Vec<CpsChainView>, ApiError> {
    let chains = state
        .provisioning()
        .list_cps_chains(request_as(&caller.0, ListCpsChainsRequest {}))
        .await?
        .into_inner()
        .chains;
    let parse = |der: &[u8]| {
        pnc_pki::Certificate::from_der(der)
            .map_err(|_| ApiError::from(pnc_common::PncError::internal("unparseable CPS chain")))
    };
    chains
        .into_iter()
        .map(|chain| {
            let [leaf, sub_ca_2, sub_ca_1] = chain.chain.as_slice() else {
                return Err(ApiError::from(pnc_common::PncError::internal(
                    "a CPS chain must hold three certificates",
                )));
            };
            Ok(CpsChainView {
                leaf: parse(&leaf.der)?,
                sub_ca_2: parse(&sub_ca_2.der)?,
                sub_ca_1: parse(&sub_ca_1.der)?,
                root: parse(&chain.v2g_root.unwrap_or_default().der)?,
                root_fingerprint: chain.v2g_root_fingerprint.to_ascii_lowercase(),
            })
        })
        .collect()
}

pub(crate) fn rfc3339(moment: time::OffsetDateTime) -> String {
    moment
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// RFC 4514 order (last RDN first), as OPCP's DN examples.
pub(crate) fn distinguished_name(certificate: &pnc_pki::Certificate) -> String {
    let mut parts: Vec<String> = Vec::new();
    for rdn in certificate.subject().rdns().iter().rev() {
        for attribute in rdn {
            let name = match attribute.oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.8" => "ST",
                "0.9.2342.19200300.100.1.25" => "DC",
                other => other,
            };
            parts.push(format!("{name}={}", attribute.value.replace(',', "\\,")));
        }
    }
    parts.join(",")
}

/// The CPS certificates an eMSP can choose a V2G root by (OPCP `GET /cps/signer`).
#[utoipa::path(
    get,
    path = "/cps/signer",
    tag = "cps",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The CPS certificates", body = GetAllCpsSignerResponse),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
pub async fn get_cps_signer(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<GetAllCpsSignerResponse>, ApiError> {
    let cps_certificates = cps_chains(&state, &caller)
        .await?
        .into_iter()
        .map(|chain| CpsSignerData {
            cps_distinguished_name: distinguished_name(&chain.leaf),
            cps_certificate: STANDARD.encode(chain.leaf.der()),
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
            cps_root_distinguished_name: distinguished_name(&chain.root),
            cps_sub_ca1_certificate: STANDARD.encode(chain.sub_ca_1.der()),
            cps_sub_ca2_certificate: STANDARD.encode(chain.sub_ca_2.der()),
            xsd_msg_def_namespace: ISO2_NAMESPACE.to_string(),
        })
        .collect();
    Ok(Json(GetAllCpsSignerResponse { cps_certificates }))
}
