//! `POST /v1/ocpp/get-certificate-status` answered from the gateway's answer cache without
//! the generic middleware, for the one case that matters for throughput: a station or CPO
//! asking again for a status the gateway already holds.
//!
//! The lean path answers only when everything is ordinary: a token that the gateway has
//! already verified (its verified-token cache) or, without a token, a client certificate on
//! the HTTPS edge; a station-side role; a plain JSON body of the expected shape that parses
//! under the same types and checks as the handler's; and a fresh cached answer. Anything else
//! (no credentials, an unverified or expired token, another role, another content type,
//! malformed JSON, a value the handler answers `Failed`, a cache miss) is passed to the
//! router unchanged, so every
//! answer other than a cached `Accepted` is the generic path's own. A cached `Accepted` keeps
//! what the generic middleware gives it: the `x-request-id` header (the caller's UUID or a
//! fresh one), the per-route request count and latency, and the request log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pnc_common::grpc::REQUEST_ID_HEADER;
use pnc_proto::principal::Role;
use tower::ServiceExt;

use crate::auth::{TokenAuthority, presented_token};
use crate::error::ErrorBody;
use crate::routes::ocpp_ocsp::{
    GetCertificateStatusRequest, cert_id_of, json_response, status_cache_key,
};
use crate::routes::ocsp::{AnswerCache, read_body, unix_now, within};
use crate::state::AppState;
use crate::tls::ClientCertificate;

pub const PATH: &str = "/v1/ocpp/get-certificate-status";
/// Bodies larger than this go to the router (a request is about 300 bytes).
const MAX_LEAN_BODY_BYTES: usize = 8 * 1024;

/// What the lean GetCertificateStatus path needs.
pub struct StatusFastPath {
    tokens: TokenAuthority,
    answers: AnswerCache,
    max_body_bytes: usize,
    deadline: Duration,
    /// The generic path's per-route metrics, as handles registered once.
    accepted: metrics::Counter,
    duration: metrics::Histogram,
}

impl StatusFastPath {
    pub fn new(state: &AppState) -> Arc<StatusFastPath> {
        let _ = pnc_common::telemetry::metrics_handle();
        let route = PATH;
        Arc::new(StatusFastPath {
            tokens: state.tokens.clone(),
            answers: state.ocsp_answers.clone(),
            max_body_bytes: state.config.http.max_body_bytes.min(MAX_LEAN_BODY_BYTES),
            deadline: Duration::from_millis(state.config.http.request_timeout_ms),
            accepted: metrics::counter!(
                "pnc_http_requests_total",
                "method" => "POST",
                "route" => route,
                "status" => "200"
            ),
            duration: metrics::histogram!(
                "pnc_http_request_duration_seconds",
                "method" => "POST",
                "route" => route
            ),
        })
    }

    /// The cached answer, or the router's.
    pub async fn serve(&self, request: Request, router: Router) -> Response {
        let started = Instant::now();
        if !self.may_take(request.headers()) {
            return pass_on(router, request).await;
        }
        // The extractor's order: a presented token, else a client certificate (HTTPS edge).
        let principal = match presented_token(request.headers()) {
            Some(token) => self.tokens.already_verified(token).await,
            None => request
                .extensions()
                .get::<ClientCertificate>()
                .map(ClientCertificate::principal),
        };
        let Some(principal) = principal else {
            return pass_on(router, request).await;
        };
        let station_side = matches!(
            Role::try_from(principal.role),
            Ok(Role::Cpo | Role::Charger | Role::Admin)
        );
        if !station_side {
            return pass_on(router, request).await;
        }
        let (parts, body) = request.into_parts();
        let body = match within(self.deadline, read_body(body, self.max_body_bytes)).await {
            Some(Some(body)) => body,
            Some(None) => {
                // A stream that broke (the declared length was checked): a 400 as the JSON
                // extractor gives (without its inner error text), with a trace ID.
                let trace_id = trace_id_of(&parts.headers);
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "cannot read the request body",
                    trace_id,
                );
            }
            None => {
                let trace_id = trace_id_of(&parts.headers);
                return error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    "request took too long",
                    trace_id,
                );
            }
        };
        match self.cached_answer(&body).await {
            Some(answer) => self.accepted(&parts.headers, answer, started),
            None => pass_on(router, Request::from_parts(parts, Body::from(body))).await,
        }
    }

    /// Whether the lean path may read this request at all: plain JSON with a declared
    /// length within its limit.
    fn may_take(&self, headers: &HeaderMap) -> bool {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        declared.is_some_and(|length| length <= self.max_body_bytes)
            && headers.get(header::CONTENT_TYPE).is_some_and(is_plain_json)
    }

    /// The cached `Accepted` JSON for a well-formed request body.
    async fn cached_answer(&self, body: &[u8]) -> Option<Bytes> {
        let request: GetCertificateStatusRequest = serde_json::from_slice(body).ok()?;
        let data = request.ocsp_request_data;
        let cert_id = cert_id_of(
            &data.hash_algorithm,
            &data.issuer_name_hash,
            &data.issuer_key_hash,
            &data.serial_number,
        )
        .ok()?;
        let key = status_cache_key(&cert_id, &data.responder_url);
        let hit = self.answers.get(&key, unix_now()).await?;
        Some(hit.body.clone())
    }

    fn accepted(&self, headers: &HeaderMap, answer: Bytes, started: Instant) -> Response {
        let trace_id = trace_id_of(headers);
        let mut response = json_response(answer);
        if let Ok(value) = HeaderValue::from_str(&trace_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let elapsed = started.elapsed();
        self.accepted.increment(1);
        self.duration.record(elapsed.as_secs_f64());
        let span = tracing::info_span!("http", method = "POST", path = PATH, trace_id = %trace_id);
        if !span.is_disabled() {
            span.in_scope(|| {
                tracing::info!(
                    status = 200u16,
                    latency_ms = elapsed.as_secs_f64() * 1e3,
                    "request"
                );
            });
        }
        response
    }
}

async fn pass_on(router: Router, request: Request) -> Response {
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// `application/json`, alone or with `charset=utf-8`: spellings axum's JSON extractor
/// accepts too. Any other goes to the router, which decides.
fn is_plain_json(content_type: &HeaderValue) -> bool {
    let Some(parameters) = content_type.as_bytes().strip_prefix(b"application/json") else {
        return false;
    };
    match parameters.strip_prefix(b";") {
        None => parameters.is_empty(),
        Some(parameter) => parameter
            .trim_ascii()
            .eq_ignore_ascii_case(b"charset=utf-8"),
    }
}

/// The caller's `x-request-id` if it is a UUID, else a fresh v4 UUID (as the generic
/// middleware does), drawn from the thread's RNG instead of a system call.
fn trace_id_of(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| uuid::Uuid::parse_str(value).ok())
        .unwrap_or_else(|| uuid::Builder::from_random_bytes(rand::random()).into_uuid())
        .to_string()
}

/// An error in OPCP's shape with `trace_id` in the body and in `x-request-id`.
fn error_response(status: StatusCode, message: &str, trace_id: String) -> Response {
    let header = HeaderValue::from_str(&trace_id).ok();
    let body = ErrorBody {
        error_messages: vec![message.to_string()],
        trace_id,
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(value) = header {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::http::Method;
    use pnc_common::Component;
    use pnc_proto::principal::Principal;
    use serde_json::{Value, json};

    use super::*;
    use crate::routes::ocsp::{CachedAnswer, OcspFastPath, OcspFirst};
    use crate::state::Channels;

    const NAME_HASH: &str = "8f2e7b0a4c1d6e5f8f2e7b0a4c1d6e5f8f2e7b0a4c1d6e5f8f2e7b0a4c1d6e5f";
    const KEY_HASH: &str = "1a2b3c4d5e6f70811a2b3c4d5e6f70811a2b3c4d5e6f70811a2b3c4d5e6f7081";
    const CACHED_RESULT: &str = "MAMKAQE+/w==";

    /// A gateway whose services are unreachable: what is not in its caches fails as the
    /// generic path makes it fail.
    fn state(dir: &Path) -> AppState {
        let config = Arc::new(pnc_common::Config {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        });
        let tls = pnc_common::tls::InternalCa::load_or_create(&dir.join("ca"))
            .expect("internal CA")
            .issue(Component::Gateway)
            .expect("identity");
        let nowhere =
            pnc_common::grpc::connect("https://127.0.0.1:1", &tls, &config.grpc).expect("channel");
        AppState {
            tokens: TokenAuthority::load_or_create(None, dir, "pnc-test", 600).expect("tokens"),
            channels: Channels {
                truststore: nowhere.clone(),
                registry: nowhere.clone(),
                ocsp: nowhere.clone(),
                provisioning: nowhere,
            },
            ocsp_answers: AnswerCache::new(&config.ocsp),
            config,
        }
    }

    /// The answer for serial 3001 with the responder hint of [`hash_data`], in the cache.
    async fn cache_answer(state: &AppState) {
        let cached = cert_id_of("SHA256", NAME_HASH, KEY_HASH, "3001").unwrap();
        state
            .ocsp_answers
            .insert(
                &status_cache_key(&cached, "http://ocsp.example/"),
                Arc::new(CachedAnswer::new(
                    crate::routes::ocpp_ocsp::accepted_json(CACHED_RESULT.to_string()),
                    unix_now() - 10,
                    unix_now() + 3600,
                )),
            )
            .await;
    }

    async fn token(state: &AppState, role: Role, verified: bool) -> String {
        let principal = Principal {
            client_id: format!("client-{}", role.name()),
            role: role as i32,
            ..Default::default()
        };
        let token = state.tokens.issue(&principal, "test").expect("token");
        if verified {
            state.tokens.verify_cached(&token).await.expect("verified");
        }
        token
    }

    fn hash_data(serial: &str) -> Value {
        json!({"ocspRequestData": {"hashAlgorithm": "SHA256", "issuerNameHash": NAME_HASH,
            "issuerKeyHash": KEY_HASH, "serialNumber": serial, "responderURL": " http://ocsp.example/ "}})
    }

    fn request(token: Option<&str>, content_type: &str, body: impl ToString) -> Request {
        let bytes = Bytes::from(body.to_string());
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(PATH)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, bytes.len());
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        builder.body(Body::from(bytes)).unwrap()
    }

    fn copy(request: &Request, body: &Bytes) -> Request {
        let mut copy = Request::builder()
            .method(request.method())
            .uri(request.uri())
            .body(Body::from(body.clone()))
            .unwrap();
        *copy.headers_mut() = request.headers().clone();
        copy
    }

    /// Status, content type, the body with its trace ID taken out (checked against
    /// `x-request-id` first), and the `x-request-id`.
    async fn outcome(response: Response) -> (StatusCode, String, Value, String) {
        let status = response.status();
        let header_of = |name| {
            response
                .headers()
                .get(name)
                .map(|value: &HeaderValue| value.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        let content_type = header_of(header::CONTENT_TYPE.as_str());
        let request_id = header_of(REQUEST_ID_HEADER);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut body: Value =
            serde_json::from_slice(&bytes).unwrap_or(Value::String(format!("{bytes:?}")));
        if let Some(trace_id) = body.as_object_mut().and_then(|body| body.remove("traceId")) {
            assert_eq!(trace_id, request_id.as_str(), "traceId is x-request-id");
        }
        assert!(uuid::Uuid::parse_str(&request_id).is_ok(), "{request_id}");
        (status, content_type, body, request_id)
    }

    /// Every case gets the same answer from the plain listener's service (lean path first)
    /// as from the router alone (generic path); the lean path answers only the cached ones.
    #[tokio::test]
    async fn lean_path_answers_as_the_generic_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path());
        cache_answer(&state).await;
        let generic = crate::router(state.clone());
        let lean = StatusFastPath::new(&state);
        let plain = OcspFirst::new(OcspFastPath::new(&state), lean.clone(), generic.clone());
        // The lean path's own decision: a teapot says it passed the request on.
        let teapot = Router::new().fallback(|| async { StatusCode::IM_A_TEAPOT });

        let cpo = token(&state, Role::Cpo, true).await;
        let charger = token(&state, Role::Charger, true).await;
        let admin = token(&state, Role::Admin, true).await;
        let oem = token(&state, Role::Oem, true).await;
        let unverified = token(&state, Role::Cpo, false).await;
        let json = "application/json";
        let body = |value: &Value| value.to_string();
        let cases: Vec<(&str, Request, bool)> = vec![
            (
                "ok/cached-cpo",
                request(Some(&cpo), json, body(&hash_data("3001"))),
                true,
            ),
            (
                "ok/cached-charger",
                request(Some(&charger), json, body(&hash_data("3001"))),
                true,
            ),
            (
                "ok/cached-admin-upper-case-hex",
                request(
                    Some(&admin),
                    "application/json; charset=utf-8",
                    body(&hash_data("3001")).replace(NAME_HASH, &NAME_HASH.to_uppercase()),
                ),
                true,
            ),
            (
                "ok/unknown-fields-ignored",
                request(
                    Some(&cpo),
                    json,
                    body(&json!({
                "ocspRequestData": hash_data("3001")["ocspRequestData"], "customData": {"vendorId": "x"}})),
                ),
                true,
            ),
            (
                "ok/not-cached",
                request(Some(&cpo), json, body(&hash_data("3002"))),
                false,
            ),
            (
                "ok/unverified-token",
                request(Some(&unverified), json, body(&hash_data("3001"))),
                false,
            ),
            (
                "fail/missing-token",
                request(None, json, body(&hash_data("3001"))),
                false,
            ),
            (
                "fail/forged-token",
                request(Some("e30.e30.AAAA"), json, body(&hash_data("3001"))),
                false,
            ),
            (
                "fail/wrong-role",
                request(Some(&oem), json, body(&hash_data("3001"))),
                false,
            ),
            (
                "fail/malformed-json",
                request(Some(&cpo), json, "{\"ocspRequestData\": {"),
                false,
            ),
            (
                "fail/trailing-bytes",
                request(Some(&cpo), json, body(&hash_data("3001")) + "x"),
                false,
            ),
            (
                "fail/missing-fields",
                request(Some(&cpo), json, "{\"ocspRequestData\": {}}"),
                false,
            ),
            (
                "fail/wrong-type",
                request(Some(&cpo), json, "{\"ocspRequestData\": []}"),
                false,
            ),
            (
                "fail/bad-hex",
                request(Some(&cpo), json, body(&hash_data("30zz"))),
                false,
            ),
            (
                "fail/wrong-content-type",
                request(Some(&cpo), "text/plain", body(&hash_data("3001"))),
                false,
            ),
            ("fail/empty-body", request(Some(&cpo), json, ""), false),
        ];
        for (case, request, lean_answers) in cases {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let request = Request::from_parts(parts, Body::empty());
            let decided = lean.serve(copy(&request, &bytes), teapot.clone()).await;
            assert_eq!(
                decided.status() != StatusCode::IM_A_TEAPOT,
                lean_answers,
                "{case}: answered by the lean path"
            );
            let via_plain =
                outcome(plain.clone().oneshot(copy(&request, &bytes)).await.unwrap()).await;
            let via_router = outcome(
                generic
                    .clone()
                    .oneshot(copy(&request, &bytes))
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(via_plain.0, via_router.0, "{case}: status");
            assert_eq!(via_plain.1, via_router.1, "{case}: content type");
            assert_eq!(via_plain.2, via_router.2, "{case}: body");
            if lean_answers {
                assert_eq!(via_plain.0, StatusCode::OK, "{case}");
                assert_eq!(
                    via_plain.2,
                    json!({"status": "Accepted", "ocspResult": CACHED_RESULT}),
                    "{case}"
                );
            }
        }
    }

    #[tokio::test]
    async fn ok_caller_request_id_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path());
        cache_answer(&state).await;
        let lean = StatusFastPath::new(&state);
        let cpo = token(&state, Role::Cpo, true).await;
        let mut request = request(
            Some(&cpo),
            "application/json",
            hash_data("3001").to_string(),
        );
        let trace_id = "5f0c6a52-8a3e-4a43-9c1e-1f1d1a9b3c11";
        request
            .headers_mut()
            .insert(REQUEST_ID_HEADER, HeaderValue::from_static(trace_id));
        let teapot = Router::new().fallback(|| async { StatusCode::IM_A_TEAPOT });
        let response = lean.serve(request, teapot).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[REQUEST_ID_HEADER], trace_id);
    }

    /// A station authenticated by its certificate on the HTTPS edge (no token) gets the
    /// cached answer from the lean path, as the router would give it.
    #[tokio::test]
    async fn ok_client_certificate_on_the_https_edge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path());
        cache_answer(&state).await;
        let with_certificate = || {
            let mut request = request(None, "application/json", hash_data("3001"));
            request
                .extensions_mut()
                .insert(ClientCertificate(Arc::new(b"station certificate".to_vec())));
            request
        };
        let teapot = Router::new().fallback(|| async { StatusCode::IM_A_TEAPOT });
        let lean = StatusFastPath::new(&state);
        let answered = outcome(lean.serve(with_certificate(), teapot).await).await;
        let generic = crate::router(state.clone());
        let routed = outcome(generic.oneshot(with_certificate()).await.unwrap()).await;
        assert_eq!(answered.0, StatusCode::OK);
        assert_eq!(
            answered.2,
            json!({"status": "Accepted", "ocspResult": CACHED_RESULT})
        );
        assert_eq!(
            (answered.0, answered.1, answered.2),
            (routed.0, routed.1, routed.2)
        );
    }

    #[test]
    fn ok_plain_json_spellings() {
        for (value, plain) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("application/json;charset=UTF-8", true),
            ("application/jsonx", false),
            ("application/json; boundary=x", false),
            ("text/json", false),
        ] {
            assert_eq!(
                is_plain_json(&HeaderValue::from_static(value)),
                plain,
                "{value}"
            );
        }
    }
}
