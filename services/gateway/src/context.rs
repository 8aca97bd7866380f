//! Per-request context: the trace ID, its log span, and one log line per request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use pnc_common::grpc::{REQUEST_ID, REQUEST_ID_HEADER};
use tracing::Instrument;

/// The trace ID of the request this task serves (a fresh one outside a request).
pub fn current_trace_id() -> String {
    pnc_common::grpc::current_request_id().unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Gives every request a UUID trace ID (the caller's `x-request-id` if it is a UUID),
/// runs it inside a span carrying that ID, passes the ID on to gRPC calls, returns it in
/// `x-request-id`, and logs one line per request.
pub async fn request_context(request: Request, next: Next) -> Response {
    let trace_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| uuid::Uuid::parse_str(value).ok())
        .unwrap_or_else(uuid::Uuid::new_v4)
        .to_string();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span = tracing::info_span!("http", %method, %path, trace_id = %trace_id);
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(trace_id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                latency_ms = elapsed.as_secs_f64() * 1e3,
                "request"
            );
        } else {
            tracing::info!(
                status = status.as_u16(),
                latency_ms = elapsed.as_secs_f64() * 1e3,
                "request"
            );
        }
    });
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Per-route request counts and latencies; a route layer, so the label is the route
/// template (`/v1/oem/provCerts/{pcid}`), never the raw path.
pub async fn route_metrics(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method.clone()),
        ("route", route.clone()),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("pnc_http_requests_total", &labels).increment(1);
    metrics::histogram!("pnc_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
