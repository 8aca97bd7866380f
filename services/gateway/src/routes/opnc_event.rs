//! OPNC v1 event subscriptions (`/opnc/v1/event/endpoints`, ecosystem-apis §3.2, §3.3).
//! The service base already ends in `/opnc/v1/event` and the paths repeat it, so both the
//! single and the doubled form are served. Event names may use OPNC's `emsp.*` spelling.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use pnc_proto::registry::v1::{
    ListWebhookEndpointsRequest, UpdateWebhookEndpointRequest, WebhookEndpointId,
};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::routes::opnc_pcp::RoutingHeaders;
use crate::routes::webhooks::{EndpointRequest, EndpointResponse, endpoint_input};
use crate::state::{AppState, request_as};
use pnc_proto::principal::Role;

fn require_subscriber(caller: &Authenticated, headers: &HeaderMap) -> Result<(), ApiError> {
    caller.require_role(&[Role::Oem, Role::Emsp, Role::Cpo])?;
    RoutingHeaders::check(headers, caller)?;
    Ok(())
}

async fn create(
    state: AppState,
    caller: Authenticated,
    headers: HeaderMap,
    body: EndpointRequest,
) -> Result<(StatusCode, Json<EndpointResponse>), ApiError> {
    require_subscriber(&caller, &headers)?;
    let input = endpoint_input(body, true)?;
    let endpoint = state
        .webhooks()
        .create_endpoint(request_as(&caller.0, input))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(endpoint.into())))
}

async fn list(
    state: AppState,
    caller: Authenticated,
    headers: HeaderMap,
) -> Result<Json<Vec<EndpointResponse>>, ApiError> {
    require_subscriber(&caller, &headers)?;
    let endpoints = state
        .webhooks()
        .list_endpoints(request_as(&caller.0, ListWebhookEndpointsRequest {}))
        .await?
        .into_inner()
        .endpoints;
    Ok(Json(endpoints.into_iter().map(Into::into).collect()))
}

async fn get(
    state: AppState,
    caller: Authenticated,
    headers: HeaderMap,
    id: String,
) -> Result<Json<EndpointResponse>, ApiError> {
    require_subscriber(&caller, &headers)?;
    let endpoint = state
        .webhooks()
        .get_endpoint(request_as(&caller.0, WebhookEndpointId { id }))
        .await?
        .into_inner();
    Ok(Json(endpoint.into()))
}

async fn update(
    state: AppState,
    caller: Authenticated,
    headers: HeaderMap,
    id: String,
    body: EndpointRequest,
) -> Result<Json<EndpointResponse>, ApiError> {
    require_subscriber(&caller, &headers)?;
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

async fn delete(
    state: AppState,
    caller: Authenticated,
    headers: HeaderMap,
    id: String,
) -> Result<StatusCode, ApiError> {
    require_subscriber(&caller, &headers)?;
    state
        .webhooks()
        .delete_endpoint(request_as(&caller.0, WebhookEndpointId { id }))
        .await?;
    Ok(StatusCode::OK)
}

/// Subscribes a URL to events.
#[utoipa::path(post, path = "/opnc/v1/event/endpoints", tag = "opnc-event",
    request_body = EndpointRequest, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = EndpointResponse),
              (status = 400, description = "Bad URL or event", body = crate::error::ErrorBody)))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EndpointRequest>,
) -> Result<(StatusCode, Json<EndpointResponse>), ApiError> {
    create(state, caller, headers, body).await
}

/// The caller's endpoints.
#[utoipa::path(get, path = "/opnc/v1/event/endpoints", tag = "opnc-event",
    security(("bearer" = [])),
    responses((status = 200, description = "The endpoints", body = Vec<EndpointResponse>)))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
) -> Result<Json<Vec<EndpointResponse>>, ApiError> {
    list(state, caller, headers).await
}

/// One endpoint.
#[utoipa::path(get, path = "/opnc/v1/event/endpoints/{id}", tag = "opnc-event",
    params(("id" = String, Path, description = "Endpoint ID")), security(("bearer" = [])),
    responses((status = 200, description = "The endpoint", body = EndpointResponse),
              (status = 404, description = "Unknown", body = crate::error::ErrorBody)))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<EndpointResponse>, ApiError> {
    get(state, caller, headers, id).await
}

/// Changes an endpoint.
#[utoipa::path(put, path = "/opnc/v1/event/endpoints/{id}", tag = "opnc-event",
    params(("id" = String, Path, description = "Endpoint ID")), request_body = EndpointRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = EndpointResponse),
              (status = 404, description = "Unknown", body = crate::error::ErrorBody)))]
pub async fn update_endpoint(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EndpointRequest>,
) -> Result<Json<EndpointResponse>, ApiError> {
    update(state, caller, headers, id, body).await
}

/// Removes an endpoint.
#[utoipa::path(delete, path = "/opnc/v1/event/endpoints/{id}", tag = "opnc-event",
    params(("id" = String, Path, description = "Endpoint ID")), security(("bearer" = [])),
    responses((status = 200, description = "Deleted"),
              (status = 404, description = "Unknown", body = crate::error::ErrorBody)))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(state, caller, headers, id).await
}

/// The doubled form (service base + path, ecosystem-apis §3.3).
#[utoipa::path(post, path = "/opnc/v1/event/opnc/v1/event/endpoints", tag = "opnc-event",
    request_body = EndpointRequest, security(("bearer" = [])),
    responses((status = 201, description = "Created", body = EndpointResponse)))]
pub async fn create_endpoint_doubled(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EndpointRequest>,
) -> Result<(StatusCode, Json<EndpointResponse>), ApiError> {
    create(state, caller, headers, body).await
}

/// The doubled form.
#[utoipa::path(get, path = "/opnc/v1/event/opnc/v1/event/endpoints", tag = "opnc-event",
    security(("bearer" = [])),
    responses((status = 200, description = "The endpoints", body = Vec<EndpointResponse>)))]
pub async fn list_endpoints_doubled(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
) -> Result<Json<Vec<EndpointResponse>>, ApiError> {
    list(state, caller, headers).await
}

/// The doubled form.
#[utoipa::path(get, path = "/opnc/v1/event/opnc/v1/event/endpoints/{id}", tag = "opnc-event",
    params(("id" = String, Path, description = "Endpoint ID")), security(("bearer" = [])),
    responses((status = 200, description = "The endpoint", body = EndpointResponse)))]
pub async fn get_endpoint_doubled(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<EndpointResponse>, ApiError> {
    get(state, caller, headers, id).await
}

/// The doubled form.
#[utoipa::path(put, path = "/opnc/v1/event/opnc/v1/event/endpoints/{id}", tag = "opnc-event",
    params(("id" = String, Path, description = "Endpoint ID")), request_body = EndpointRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = EndpointResponse)))]
pub async fn update_endpoint_doubled(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EndpointRequest>,
) -> Result<Json<EndpointResponse>, ApiError> {
    update(state, caller, headers, id, body).await
}

/// The doubled form.
#[utoipa::path(delete, path = "/opnc/v1/event/opnc/v1/event/endpoints/{id}", tag = "opnc-event",
    params(("id" = String, Path, description = "Endpoint ID")), security(("bearer" = [])),
    responses((status = 200, description = "Deleted")))]
pub async fn delete_endpoint_doubled(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(state, caller, headers, id).await
}
