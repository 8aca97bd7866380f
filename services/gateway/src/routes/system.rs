//! Operational endpoints: health, metrics, the OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pnc_common::Component;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    /// Each service and whether it answered its gRPC health check.
    pub services: std::collections::BTreeMap<String, String>,
}

/// 200 when every service answers its gRPC health check; 503 naming those that do not.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "system",
    responses(
        (status = 200, description = "Every service is serving", body = Health),
        (status = 503, description = "Some services are not serving", body = crate::error::ErrorBody),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let checks = Component::SERVICES.map(|component| {
        let channel = state.channels.of(component).cloned();
        async move {
            let result = match channel {
                Some(channel) => tokio::time::timeout(
                    Duration::from_secs(2),
                    pnc_common::grpc::check_health(channel),
                )
                .await
                .unwrap_or_else(|_| Err("no answer within 2 s".to_string())),
                None => Err("no channel".to_string()),
            };
            (component, result)
        }
    });
    let results = futures::future::join_all(checks).await;
    let failing: Vec<String> = results
        .iter()
        .filter_map(|(component, result)| {
            result
                .as_ref()
                .err()
                .map(|error| format!("{component}: {error}"))
        })
        .collect();
    if !failing.is_empty() {
        return ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            messages: failing,
        }
        .into_response();
    }
    Json(Health {
        status: "ok".to_string(),
        services: results
            .into_iter()
            .map(|(component, _)| (component.name().to_string(), "serving".to_string()))
            .collect(),
    })
    .into_response()
}

/// Prometheus text exposition of this process's metrics.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
pub async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        pnc_common::telemetry::metrics_handle().render(),
    )
        .into_response()
}
