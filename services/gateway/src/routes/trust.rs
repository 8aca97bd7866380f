//! Known CAs (`/v1/trust/...`): admins register the intermediate CAs of foreign PKIs so
//! pnc can build chains and find OCSP responders for them. A CA enters only when it
//! chains to a root of the pool.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_proto::common::v1::Certificate;
use pnc_proto::truststore::v1::{
    AddIntermediateRequest, KnownCa, KnownCaSource, ListKnownCasRequest, RootType,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::roots::{Admin, decode_certificate, opcp_root_type_name};
use crate::state::{AppState, request_as};

/// The body of `POST /v1/trust/intermediates`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddIntermediateBody {
    /// Base64 DER (PEM accepted).
    pub certificate: String,
}

/// A CA pnc knows.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnownCaBody {
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint: String,
    /// `ROOT_POOL`, `REGISTERED_INTERMEDIATE`, `SEEN_IN_VALIDATED_CHAIN` or `PNC_CA`.
    pub source: String,
    /// For pool roots, their type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_type: Option<String>,
    /// AIA OCSP URLs of the CA's certificate.
    pub ocsp_urls: Vec<String>,
    /// Base64 DER.
    pub certificate: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnownCaResponse {
    pub known_ca: KnownCaBody,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnownCasResponse {
    pub known_cas: Vec<KnownCaBody>,
}

fn known_ca_body(ca: KnownCa) -> KnownCaBody {
    let source = KnownCaSource::try_from(ca.source)
        .unwrap_or(KnownCaSource::Unspecified)
        .as_str_name()
        .trim_start_matches("KNOWN_CA_SOURCE_")
        .to_string();
    let root_type = RootType::try_from(ca.root_type)
        .ok()
        .filter(|root_type| *root_type != RootType::Unspecified)
        .map(|root_type| opcp_root_type_name(root_type).to_string());
    KnownCaBody {
        fingerprint: ca.sha256_fingerprint.to_ascii_lowercase(),
        source,
        root_type,
        ocsp_urls: ca.ocsp_urls,
        certificate: STANDARD.encode(
            ca.certificate
                .map(|certificate| certificate.der)
                .unwrap_or_default(),
        ),
    }
}

/// Registers an intermediate CA (admin). 400 names why it is refused, e.g. that it does
/// not chain to a root of the pool.
#[utoipa::path(
    post,
    path = "/v1/trust/intermediates",
    tag = "trust",
    request_body = AddIntermediateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The CA is known", body = KnownCaResponse),
        (status = 400, description = "Not an acceptable CA (the message names why)", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn add_intermediate(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<AddIntermediateBody>,
) -> Result<(StatusCode, Json<KnownCaResponse>), ApiError> {
    let der = decode_certificate("certificate", &body.certificate)?;
    let known = state
        .truststore()
        .add_intermediate(request_as(
            &caller.0,
            AddIntermediateRequest {
                certificate: Some(Certificate { der }),
                source: KnownCaSource::RegisteredIntermediate as i32,
            },
        ))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(KnownCaResponse {
            known_ca: known_ca_body(known),
        }),
    ))
}

/// Every CA pnc knows: pool roots, registered and seen intermediates, pnc's own CAs (admin).
#[utoipa::path(
    get,
    path = "/v1/trust/known-cas",
    tag = "trust",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The known CAs", body = KnownCasResponse),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn list_known_cas(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<KnownCasResponse>, ApiError> {
    let response = state
        .truststore()
        .list_known_cas(request_as(&caller.0, ListKnownCasRequest {}))
        .await?
        .into_inner();
    Ok(Json(KnownCasResponse {
        known_cas: response.cas.into_iter().map(known_ca_body).collect(),
    }))
}
