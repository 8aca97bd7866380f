//! `POST /oauth/token`: OAuth2 client credentials, as Hubject OPCP defines it
//! (`accessToken.v1.json`). JSON and form-encoded bodies are both accepted (CitrineOS
//! posts a form). Errors use OAuth2's `{error, error_description}`, not OPCP's body.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pnc_proto::registry::v1::AuthenticateClientRequest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::scope_string;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The stage URL in Hubject's API; accepted and not checked.
    pub audience: Option<String>,
    pub grant_type: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub scope: String,
    pub expires_in: u64,
    pub token_type: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    pub error: String,
    pub error_description: String,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(OAuthError {
            error: error.to_string(),
            error_description: description.to_string(),
        }),
    )
        .into_response()
}

/// Issue an access token for client credentials.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "auth",
    request_body(content = TokenRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "Missing or malformed fields", body = OAuthError),
        (status = 401, description = "Unknown client or wrong secret", body = OAuthError),
    )
)]
pub async fn issue_token(State(state): State<AppState>, request: Request) -> Response {
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let body = match Bytes::from_request(request, &state).await {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return oauth_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "body too large",
            );
        }
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "unreadable body",
            );
        }
    };
    let parsed: Result<TokenRequest, String> = if form {
        serde_urlencoded::from_bytes(&body).map_err(|error| error.to_string())
    } else {
        serde_json::from_slice(&body).map_err(|error| error.to_string())
    };
    let token_request = match parsed {
        Ok(token_request) => token_request,
        Err(error) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("cannot parse the request: {error}"),
            );
        }
    };
    match token_request.grant_type.as_deref() {
        Some("client_credentials") | None => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            );
        }
    }
    let (Some(client_id), Some(client_secret)) =
        (token_request.client_id, token_request.client_secret)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and client_secret are required",
        );
    };
    let answer = state
        .client_registry()
        .authenticate_client(AuthenticateClientRequest {
            client_id,
            client_secret,
        })
        .await;
    let authenticated = match answer {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret",
            );
        }
        Err(status) => return crate::error::ApiError::from(status).into_response(),
    };
    let Some(principal) = authenticated.principal else {
        return crate::error::ApiError::from(pnc_common::PncError::internal(
            "registry answered without a principal",
        ))
        .into_response();
    };
    let role = pnc_proto::principal::Role::try_from(principal.role)
        .unwrap_or(pnc_proto::principal::Role::Unspecified);
    match state.tokens.issue(&principal, &authenticated.name) {
        Ok(access_token) => Json(TokenResponse {
            access_token,
            scope: scope_string(role),
            expires_in: state.tokens.ttl_seconds(),
            token_type: "Bearer".to_string(),
        })
        .into_response(),
        Err(error) => crate::error::ApiError::from(pnc_common::PncError::internal(format!(
            "cannot sign token: {error}"
        )))
        .into_response(),
    }
}
