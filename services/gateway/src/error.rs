//! Errors at the edge, in OPCP's shape: `{"errorMessages": [...], "traceId": "<uuid>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pnc_common::{ErrorKind, PncError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::context::current_trace_id;

/// OPCP's error body, used by every endpoint except `/oauth/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// At least one human-readable message.
    pub error_messages: Vec<String>,
    /// The request's UUID; the server's log line for the request carries the same.
    pub trace_id: String,
}

/// An error response: an HTTP status and messages safe to show to the caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub messages: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            messages: vec![message.into()],
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

/// The HTTP status for each error kind.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::FailedPrecondition => StatusCode::CONFLICT,
        ErrorKind::CertificateExpired
        | ErrorKind::CertificateRevoked
        | ErrorKind::CertificateChain
        | ErrorKind::Signature
        | ErrorKind::ContractCanceled => StatusCode::BAD_REQUEST,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<PncError> for ApiError {
    fn from(error: PncError) -> ApiError {
        let status = http_status(error.kind);
        let message = match error.kind {
            // Details of internal errors stay in the log.
            ErrorKind::Internal => {
                tracing::error!(error = %error.message, "internal error");
                "internal error".to_string()
            }
            ErrorKind::Unavailable => {
                tracing::warn!(error = %error.message, "dependency unavailable");
                "service temporarily unavailable".to_string()
            }
            _ => error.message,
        };
        ApiError::new(status, message)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> ApiError {
        ApiError::from(PncError::from(status))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error_messages: if self.messages.is_empty() {
                vec![
                    self.status
                        .canonical_reason()
                        .unwrap_or("error")
                        .to_string(),
                ]
            } else {
                self.messages
            },
            trace_id: current_trace_id(),
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_a_client_or_server_error() {
        for kind in ErrorKind::ALL {
            let status = http_status(kind);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{kind}"
            );
        }
    }

    #[test]
    fn internal_details_do_not_leak() {
        let error = ApiError::from(PncError::internal("password=hunter2 in the DSN"));
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.messages, vec!["internal error".to_string()]);
    }
}
