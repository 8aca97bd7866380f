//! RCP: the root pool (`/v1/root/rootCerts`), after OPCP `rcp.v1.json`.

use axum::Json;
use axum::extract::{Query, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_proto::truststore::v1::{ListRootsRequest, RootType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::{AppState, request_as};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub struct RootFilter {
    /// `mo`, `v2g`, `oem` or `pe` (any case).
    pub root_type: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootCertV2 {
    pub root_type: String,
    /// Base64 DER.
    pub ca_certificate: String,
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootCertificateCollection {
    pub root_certificates: Vec<RootCertV2>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GetAllRootCertsResponse {
    #[serde(rename = "RootCertificateCollection")]
    pub root_certificate_collection: RootCertificateCollection,
}

fn parse_root_type(name: &str) -> Option<RootType> {
    match name.to_ascii_uppercase().as_str() {
        "V2G" => Some(RootType::V2g),
        "MO" => Some(RootType::Mo),
        "OEM" => Some(RootType::Oem),
        "PE" => Some(RootType::Pe),
        "CSMS" => Some(RootType::Csms),
        "MANUFACTURER" => Some(RootType::Manufacturer),
        _ => None,
    }
}

fn root_type_name(root_type: i32) -> &'static str {
    match RootType::try_from(root_type).unwrap_or(RootType::Unspecified) {
        RootType::V2g => "V2G",
        RootType::Mo => "MO",
        RootType::Oem => "OEM",
        RootType::Pe => "PE",
        RootType::Csms => "CSMS",
        RootType::Manufacturer => "MANUFACTURER",
        RootType::Unspecified => "UNKNOWN",
    }
}

/// Every root of the pool, optionally of one type.
#[utoipa::path(
    get,
    path = "/v1/root/rootCerts",
    tag = "rcp",
    params(RootFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The roots", body = GetAllRootCertsResponse),
        (status = 400, description = "Unknown root type", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
pub async fn list_roots(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(filter): Query<RootFilter>,
) -> Result<Json<GetAllRootCertsResponse>, ApiError> {
    let root_type = match filter.root_type.as_deref() {
        None | Some("") => RootType::Unspecified,
        Some(name) => parse_root_type(name)
            .ok_or_else(|| ApiError::bad_request(format!("unknown rootType `{name}`")))?,
    };
    let response = state
        .truststore()
        .list_roots(request_as(
            &caller.0,
            ListRootsRequest {
                root_type: root_type as i32,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    let root_certificates = response
        .roots
        .into_iter()
        .map(|root| RootCertV2 {
            root_type: root_type_name(root.root_type).to_string(),
            ca_certificate: STANDARD.encode(
                root.certificate
                    .map(|certificate| certificate.der)
                    .unwrap_or_default(),
            ),
            fingerprint: root.sha256_fingerprint.to_ascii_lowercase(),
        })
        .collect();
    Ok(Json(GetAllRootCertsResponse {
        root_certificate_collection: RootCertificateCollection { root_certificates },
    }))
}
