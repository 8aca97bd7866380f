//! Webhook subscriptions (`/v1/webhook/endpoints`), after OPCP `webhooks.v1.json`
//! (ecosystem-apis §2.11), plus the delivery log of an endpoint.
//!
//! An endpoint receives the events its owner may see: OEMs the contract events of their
//! WMIs, eMSPs those of their provider IDs, everyone the root events. Deliveries are
//! signed with `X-Hubject-Signature: sha256=<HMAC-SHA256(body, secret)>`; the secret is
//! shown once, in the answer to the POST.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use pnc_proto::principal::Role;
use pnc_proto::registry::v1::{
    ListWebhookDeliveriesRequest, ListWebhookEndpointsRequest, UpdateWebhookEndpointRequest,
    WebhookDelivery, WebhookEndpoint, WebhookEndpointId, WebhookEndpointInput,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::{AppState, request_as};

/// `EndpointRequest` / `EndpointUpdateRequest`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRequest {
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    pub api_version: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// `enabled` or `disabled`.
    pub status: Option<String>,
    /// OPNC: only events of these WMIs (an OEM's own).
    pub wmi: Option<Vec<String>>,
}

/// `EndpointResponse`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointResponse {
    pub id: String,
    pub api_version: String,
    pub created: i64,
    pub description: String,
    pub enabled_events: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub status: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub provider_ids: Vec<String>,
    pub wmis: Vec<String>,
    pub user_role: String,
    pub user_name: String,
}

impl From<WebhookEndpoint> for EndpointResponse {
    fn from(endpoint: WebhookEndpoint) -> EndpointResponse {
        EndpointResponse {
            id: endpoint.id,
            api_version: endpoint.api_version,
            created: endpoint.created,
            description: endpoint.description,
            enabled_events: endpoint.enabled_events,
            metadata: serde_json::from_str(&endpoint.metadata_json)
                .unwrap_or_else(|_| serde_json::json!({})),
            status: endpoint.status,
            url: endpoint.url,
            secret: (!endpoint.secret.is_empty()).then_some(endpoint.secret),
            provider_ids: endpoint.provider_ids,
            wmis: endpoint.wmis,
            user_role: endpoint.user_role.to_ascii_uppercase(),
            user_name: endpoint.user_name,
        }
    }
}

/// One attempt record of the delivery log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryResponse {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub last_status_code: i32,
    pub last_error: String,
    pub created: i64,
    pub next_attempt: i64,
    pub delivered: i64,
    /// The JSON body as sent (and signed).
    pub body: String,
}

impl From<WebhookDelivery> for DeliveryResponse {
    fn from(delivery: WebhookDelivery) -> DeliveryResponse {
        DeliveryResponse {
            id: delivery.id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: delivery.status,
            attempts: delivery.attempts,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error,
            created: delivery.created_at,
            next_attempt: delivery.next_attempt_at,
            delivered: delivery.delivered_at,
            body: delivery.body,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveryQuery {
    /// At most this many, newest first (default and cap 200).
    pub limit: Option<u32>,
}

/// The body as the registry's input; `url` is required, `enabledEvents` on creation.
pub fn endpoint_input(
    body: EndpointRequest,
    creating: bool,
) -> Result<WebhookEndpointInput, ApiError> {
    let url = body
        .url
        .filter(|url| !url.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("url is required"))?;
    let enabled_events = body.enabled_events.unwrap_or_default();
    if creating && enabled_events.is_empty() {
        return Err(ApiError::bad_request("enabledEvents is required"));
    }
    let metadata_json = match body.metadata {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(value @ serde_json::Value::Object(_)) => value.to_string(),
        Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
    };
    Ok(WebhookEndpointInput {
        url,
        enabled_events,
        api_version: body.api_version.unwrap_or_else(|| "v1".to_string()),
        description: body.description.unwrap_or_default(),
        metadata_json,
        status: body.status.unwrap_or_default(),
        wmi_filter: body.wmi.unwrap_or_default(),
    })
}

fn require_subscriber(caller: &Authenticated) -> Result<(), ApiError> {
    caller.require_role(&[Role::Oem, Role::Emsp, Role::Cpo])
}

/// Subscribes a URL to events.
#[utoipa::path(
    post,
    path = "/v1/webhook/endpoints",
    tag = "webhooks",
    request_body = EndpointRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the secret is shown only here", body = EndpointResponse),
        (status = 400, description = "Bad URL or unknown event type", body = crate::error::ErrorBody),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
        (status = 403, description = "Chargers cannot subscribe", body = crate::error::ErrorBody),
    )
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(body): ApiJson<EndpointRequest>,
) -> Result<(StatusCode, Json<EndpointResponse>), ApiError> {
    require_subscriber(&caller)?;
    let input = endpoint_input(body, true)?;
    let endpoint = state
        .webhooks()
        .create_endpoint(request_as(&caller.0, input))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(endpoint.into())))
}

/// The caller's endpoints.
#[utoipa::path(
    get,
    path = "/v1/webhook/endpoints",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints", body = Vec<EndpointResponse>),
        (status = 401, description = "No valid token", body = crate::error::ErrorBody),
    )
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<Vec<EndpointResponse>>, ApiError> {
    require_subscriber(&caller)?;
    let endpoints = state
        .webhooks()
        .list_endpoints(request_as(&caller.0, ListWebhookEndpointsRequest {}))
        .await?
        .into_inner()
        .endpoints;
    Ok(Json(endpoints.into_iter().map(Into::into).collect()))
}

/// One endpoint (another client's is answered 404).
#[utoipa::path(
    get,
    path = "/v1/webhook/endpoints/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint ID")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoint", body = EndpointResponse),
        (status = 404, description = "No such endpoint of the caller", body = crate::error::ErrorBody),
    )
)]
pub async fn get_endpoint(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<EndpointResponse>, ApiError> {
    require_subscriber(&caller)?;
    let endpoint = state
        .webhooks()
        .get_endpoint(request_as(&caller.0, WebhookEndpointId { id }))
        .await?
        .into_inner();
    Ok(Json(endpoint.into()))
}

/// Changes an endpoint's URL, events, status or description.
#[utoipa::path(
    put,
    path = "/v1/webhook/endpoints/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint ID")),
    request_body = EndpointRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated", body = EndpointResponse),
        (status = 400, description = "Bad URL or unknown event type", body = crate::error::ErrorBody),
        (status = 404, description = "No such endpoint of the caller", body = crate::error::ErrorBody),
    )
)]
pub async fn update_endpoint(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EndpointRequest>,
) -> Result<Json<EndpointResponse>, ApiError> {
    require_subscriber(&caller)?;
    let input = endpoint_input(body, false)?;
    let endpoint = state
        .webhooks()
        .update_endpoint(request_as(
            &caller.0,
            UpdateWebhookEndpointRequest {
                id,
                endpoint: Some(input),
            },
        ))
        .await?
        .into_inner();
    Ok(Json(endpoint.into()))
}

/// Removes an endpoint and its pending deliveries.
#[utoipa::path(
    delete,
    path = "/v1/webhook/endpoints/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint ID")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted"),
        (status = 404, description = "No such endpoint of the caller", body = crate::error::ErrorBody),
    )
)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_subscriber(&caller)?;
    state
        .webhooks()
        .delete_endpoint(request_as(&caller.0, WebhookEndpointId { id }))
        .await?;
    Ok(StatusCode::OK)
}

/// The delivery log of an endpoint, newest first.
#[utoipa::path(
    get,
    path = "/v1/webhook/endpoints/{id}/deliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint ID"), DeliveryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The deliveries", body = Vec<DeliveryResponse>),
        (status = 404, description = "No such endpoint of the caller", body = crate::error::ErrorBody),
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    Query(query): Query<DeliveryQuery>,
) -> Result<Json<Vec<DeliveryResponse>>, ApiError> {
    require_subscriber(&caller)?;
    let deliveries = state
        .webhooks()
        .list_deliveries(request_as(
            &caller.0,
            ListWebhookDeliveriesRequest {
                endpoint_id: id,
                limit: query.limit.unwrap_or(0),
            },
        ))
        .await?
        .into_inner()
        .deliveries;
    Ok(Json(deliveries.into_iter().map(Into::into).collect()))
}
