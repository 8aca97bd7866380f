//! RFC 6960 OCSP over HTTP (`GET /ocsp/{base64}`, `POST /ocsp`) and the CRLs of pnc's own
//! CAs (`GET /crl/{file}`): public, like any OCSP responder, so chargers and CSMSs can use
//! pnc as their OCSP source directly (OPCP §2.10: "an RFC 6960 responder without
//! authentication").
//!
//! Answers carry `Cache-Control: max-age` up to nextUpdate, `ETag` and `Last-Modified`
//! (cfssl's responder does the same). Successful answers are kept in a small read-through
//! cache keyed by the request bytes, for at most `ocsp.gateway_answer_cache_seconds` and
//! never past nextUpdate: a cached answer then costs no gRPC hop (see BENCHMARKS-ocsp.md).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use pnc_proto::ocsp::v1::{GetCrlRequest, RespondRequest};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// Larger OCSP requests are answered malformedRequest without a gRPC call.
const MAX_OCSP_REQUEST_BYTES: usize = 8 * 1024;
/// OCSPResponse `malformedRequest` (RFC 6960 §4.2.1).
const MALFORMED_REQUEST: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x01];
/// OCSPResponse `internalError`.
const INTERNAL_ERROR: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x02];
/// OCSPResponse `tryLater`.
const TRY_LATER: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x03];

/// A final answer as the gateway sends it.
#[derive(Debug)]
pub struct CachedAnswer {
    pub body: Bytes,
    pub this_update: i64,
    pub next_update: i64,
    /// Quoted hex SHA-256 of the body.
    pub etag: HeaderValue,
}

impl CachedAnswer {
    pub fn new(body: Bytes, this_update: i64, next_update: i64) -> CachedAnswer {
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(&body)));
        CachedAnswer {
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
            body,
            this_update,
            next_update,
        }
    }
}

struct AnswerExpiry {
    max_seconds: u64,
}

impl moka::Expiry<Bytes, Arc<CachedAnswer>> for AnswerExpiry {
    fn expire_after_create(
        &self,
        _key: &Bytes,
        value: &Arc<CachedAnswer>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let remaining = (value.next_update - unix_now()).max(0) as u64;
        Some(Duration::from_secs(remaining.min(self.max_seconds)))
    }
}

/// The gateway's read-through cache of final OCSP answers, keyed by request bytes
/// (prefixed per endpoint). Disabled when `ocsp.gateway_answer_cache_seconds` is 0.
#[derive(Clone)]
pub struct AnswerCache {
    cache: Option<moka::future::Cache<Bytes, Arc<CachedAnswer>>>,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AnswerCache")
            .field("enabled", &self.cache.is_some())
            .finish()
    }
}

impl AnswerCache {
    pub fn new(config: &pnc_common::config::OcspConfig) -> AnswerCache {
        let max_seconds = config.gateway_answer_cache_seconds;
        let cache = (max_seconds > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(config.cache_capacity)
                .expire_after(AnswerExpiry { max_seconds })
                .build()
        });
        AnswerCache { cache }
    }

    pub async fn get(&self, key: &Bytes) -> Option<Arc<CachedAnswer>> {
        let hit = self.cache.as_ref()?.get(key).await?;
        (unix_now() < hit.next_update).then_some(hit)
    }

    pub async fn insert(&self, key: Bytes, answer: Arc<CachedAnswer>) {
        if let Some(cache) = &self.cache
            && answer.next_update > unix_now()
        {
            cache.insert(key, answer).await;
        }
    }
}

pub fn unix_now() -> i64 {
    pnc_common::db::unix_now()
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7).
pub fn http_date(unix_seconds: i64) -> Option<HeaderValue> {
    let time = time::OffsetDateTime::from_unix_timestamp(unix_seconds).ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    HeaderValue::from_str(&time.format(&format).ok()?).ok()
}

fn ocsp_response(answer: Option<&CachedAnswer>, error_body: &'static [u8]) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ocsp-response"),
    );
    let Some(answer) = answer else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return (StatusCode::OK, headers, Bytes::from_static(error_body)).into_response();
    };
    let max_age = (answer.next_update - unix_now()).max(0);
    if let Ok(value) = HeaderValue::from_str(&format!(
        "max-age={max_age}, public, no-transform, must-revalidate"
    )) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    headers.insert(header::ETAG, answer.etag.clone());
    if let Some(value) = http_date(answer.this_update) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    if let Some(value) = http_date(answer.next_update) {
        headers.insert(header::EXPIRES, value);
    }
    (StatusCode::OK, headers, answer.body.clone()).into_response()
}

/// Answers one DER OCSPRequest, from the gateway cache or the ocsp service.
async fn answer(state: &AppState, request_der: Bytes) -> Response {
    if request_der.is_empty() || request_der.len() > MAX_OCSP_REQUEST_BYTES {
        return ocsp_response(None, &MALFORMED_REQUEST);
    }
    if let Some(hit) = state.ocsp_answers.get(&request_der).await {
        return ocsp_response(Some(&hit), &[]);
    }
    let response = match state
        .ocsp()
        .respond(RespondRequest {
            ocsp_request_der: request_der.to_vec(),
        })
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => {
            tracing::warn!(error = %status.message(), "ocsp service unavailable");
            let body: &'static [u8] = if status.code() == tonic::Code::Unavailable {
                &TRY_LATER
            } else {
                &INTERNAL_ERROR
            };
            return ocsp_response(None, body);
        }
    };
    if response.next_update == 0 {
        // An error status (malformedRequest, unauthorized, tryLater): not cacheable.
        let body = Bytes::from(response.ocsp_response_der);
        let mut http = (StatusCode::OK, body).into_response();
        http.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/ocsp-response"),
        );
        http.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return http;
    }
    let cached = Arc::new(CachedAnswer::new(
        Bytes::from(response.ocsp_response_der),
        response.this_update,
        response.next_update,
    ));
    state.ocsp_answers.insert(request_der, cached.clone()).await;
    ocsp_response(Some(&cached), &[])
}

/// Decodes the GET form: base64 of the DER request, URL-encoded (RFC 6960 Appendix A.1);
/// standard and URL-safe alphabets, with or without padding, are accepted.
fn decode_get_path(raw: &str) -> Option<Vec<u8>> {
    let text = raw.trim_start_matches('/');
    if text.is_empty() || text.len() > MAX_OCSP_REQUEST_BYTES * 2 {
        return None;
    }
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .ok()
}

/// RFC 6960 OCSP, GET form.
#[utoipa::path(
    get,
    path = "/ocsp/{*request}",
    tag = "ocsp",
    params(("request" = String, Path, description = "base64 (standard or URL-safe) of a DER OCSPRequest, URL-encoded")),
    responses(
        (status = 200, description = "A DER OCSPResponse (application/ocsp-response); malformedRequest, unauthorized and tryLater are answers too", content_type = "application/ocsp-response"),
    )
)]
pub async fn ocsp_get(State(state): State<AppState>, Path(request): Path<String>) -> Response {
    match decode_get_path(&request) {
        Some(der) => answer(&state, Bytes::from(der)).await,
        None => ocsp_response(None, &MALFORMED_REQUEST),
    }
}

/// RFC 6960 OCSP, POST form (`Content-Type: application/ocsp-request`).
#[utoipa::path(
    post,
    path = "/ocsp",
    tag = "ocsp",
    request_body(content = Vec<u8>, content_type = "application/ocsp-request", description = "A DER OCSPRequest"),
    responses(
        (status = 200, description = "A DER OCSPResponse", content_type = "application/ocsp-response"),
    )
)]
pub async fn ocsp_post(State(state): State<AppState>, body: Bytes) -> Response {
    answer(&state, body).await
}

/// The CRL of one of pnc's CAs, at the path its certificates name in their CRL
/// distribution point (`{public_base_url}/crl/{ca}.crl`).
#[utoipa::path(
    get,
    path = "/crl/{file}",
    tag = "ocsp",
    params(("file" = String, Path, description = "e.g. mo-sub-ca-2.crl")),
    responses(
        (status = 200, description = "A DER CRL", content_type = "application/pkix-crl"),
        (status = 404, description = "No such CRL", body = crate::error::ErrorBody),
    )
)]
pub async fn get_crl(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    if file.len() > 100 || !file.ends_with(".crl") {
        return Err(ApiError::not_found("no such CRL"));
    }
    let crl = state
        .ocsp()
        .get_crl(GetCrlRequest { file_name: file })
        .await?
        .into_inner();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pkix-crl"),
    );
    let max_age = (crl.next_update - unix_now()).clamp(0, 60);
    if let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}, public, no-transform")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if let Some(value) = http_date(crl.this_update) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    Ok((StatusCode::OK, headers, Bytes::from(crl.crl_der)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_get_path_in_every_base64_form() {
        let der = vec![0x30, 0xfb, 0xff, 0x3e, 0x01];
        for text in [
            STANDARD.encode(&der),
            URL_SAFE.encode(&der),
            URL_SAFE_NO_PAD.encode(&der),
        ] {
            assert_eq!(decode_get_path(&text), Some(der.clone()), "{text}");
        }
        assert_eq!(decode_get_path("!!!"), None);
        assert_eq!(decode_get_path(""), None);
    }

    #[test]
    fn ok_http_date() {
        assert_eq!(
            http_date(784_111_777).unwrap(),
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT")
        );
    }
}
