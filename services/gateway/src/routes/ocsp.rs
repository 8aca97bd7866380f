//! RFC 6960 OCSP over HTTP (`GET /ocsp/{base64}`, `POST /ocsp`) and the CRLs of pnc's own
//! CAs (`GET /crl/{file}`): public, like any OCSP responder, so chargers and CSMSs can use
//! pnc as their OCSP source directly (OPCP §2.10: "an RFC 6960 responder without
//! authentication").
//!
//! Answers carry `Cache-Control: max-age` up to nextUpdate, `ETag`, `Last-Modified` and
//! `Expires` (RFC 5019 §6.2). Successful answers are kept in a small read-through cache
//! keyed by the request DER, for at most `ocsp.gateway_answer_cache_seconds` and never past
//! nextUpdate: a cached answer then costs no gRPC hop.
//!
//! `/ocsp` is the one public endpoint that must be as cheap as a static file, so its
//! routes ([`fast_routes`]) are merged into the gateway *outside* the generic middleware:
//! no trace ID draw, no span, no per-route metric labels, no deadline timer. What a cached
//! answer needs is kept: a bounded body, static counters, a deadline that is armed only when
//! the request has to wait (a slow body, a cache miss), and OCSP error statuses as DER
//! (see BENCHMARKS-ocsp.md).

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use pnc_common::grpc::GrpcChannel;
use pnc_proto::ocsp::v1::ocsp_client::OcspClient;
use pnc_proto::ocsp::v1::{GetCrlRequest, RespondRequest};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// Larger OCSP requests are answered malformedRequest without reading them (a single
/// CertID with a nonce is < 200 bytes).
const MAX_OCSP_REQUEST_BYTES: usize = 8 * 1024;
/// OCSPResponse `malformedRequest` (RFC 6960 §4.2.1).
const MALFORMED_REQUEST: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x01];
/// OCSPResponse `internalError`.
const INTERNAL_ERROR: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x02];
/// OCSPResponse `tryLater`.
const TRY_LATER: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x03];
const OCSP_RESPONSE: HeaderValue = HeaderValue::from_static("application/ocsp-response");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// A final answer as the gateway sends it, with the headers that do not change while it is
/// cached built once.
#[derive(Debug)]
pub struct CachedAnswer {
    pub body: Bytes,
    pub this_update: i64,
    pub next_update: i64,
    /// Quoted hex SHA-256 of the body.
    pub etag: HeaderValue,
    last_modified: Option<HeaderValue>,
    expires: Option<HeaderValue>,
}

impl CachedAnswer {
    pub fn new(body: Bytes, this_update: i64, next_update: i64) -> CachedAnswer {
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(&body)));
        CachedAnswer {
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
            last_modified: http_date(this_update),
            expires: http_date(next_update),
            body,
            this_update,
            next_update,
        }
    }

    /// The HTTP answer at `now`: only `max-age` depends on the time.
    fn to_response(&self, now: i64) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        let headers = response.headers_mut();
        *headers = HeaderMap::with_capacity(6);
        headers.insert(header::CONTENT_TYPE, OCSP_RESPONSE);
        headers.insert(
            header::CACHE_CONTROL,
            cache_control((self.next_update - now).max(0)),
        );
        headers.insert(header::ETAG, self.etag.clone());
        if let Some(value) = &self.last_modified {
            headers.insert(header::LAST_MODIFIED, value.clone());
        }
        if let Some(value) = &self.expires {
            headers.insert(header::EXPIRES, value.clone());
        }
        response
    }
}

/// `max-age=N, public, no-transform, must-revalidate`, formatted on the stack.
fn cache_control(max_age: i64) -> HeaderValue {
    const PREFIX: &[u8] = b"max-age=";
    const SUFFIX: &[u8] = b", public, no-transform, must-revalidate";
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = max_age.max(0) as u64;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut buffer = [0u8; PREFIX.len() + 20 + SUFFIX.len()];
    let mut length = 0;
    for part in [PREFIX, &digits[start..], SUFFIX] {
        buffer[length..length + part.len()].copy_from_slice(part);
        length += part.len();
    }
    HeaderValue::from_bytes(&buffer[..length]).unwrap_or(NO_STORE)
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

    /// A fresh answer for `key` (looked up by slice, so a request needs no owned key).
    pub async fn get(&self, key: &[u8], now: i64) -> Option<Arc<CachedAnswer>> {
        let hit = self.cache.as_ref()?.get(key).await?;
        (now < hit.next_update).then_some(hit)
    }

    /// Keeps `answer` under a copy of `key`: the key may be a slice of a connection's read
    /// buffer, which the cache must not keep alive.
    pub async fn insert(&self, key: &[u8], answer: Arc<CachedAnswer>) {
        if let Some(cache) = &self.cache
            && answer.next_update > unix_now()
        {
            cache.insert(Bytes::copy_from_slice(key), answer).await;
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

/// An OCSP error status (or any answer not to be cached by HTTP caches).
fn uncacheable(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, OCSP_RESPONSE);
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    response
}

fn error_status(body: &'static [u8]) -> Response {
    uncacheable(StatusCode::OK, Bytes::from_static(body))
}

/// Runs `future` and gives up after `limit`; the timer is armed only if the future does
/// not finish on its first poll, so a request that never waits never touches the timer
/// wheel.
pub(crate) async fn within<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|context| {
        if let Poll::Ready(output) = future.as_mut().poll(context) {
            return Poll::Ready(Some(output));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(context) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Request counts of `/ocsp`: handles registered once, so a request costs one atomic add
/// (no label strings, no registry look-up).
#[derive(Clone)]
struct OcspCounters {
    hit: metrics::Counter,
    miss: metrics::Counter,
    error: metrics::Counter,
}

impl OcspCounters {
    fn register() -> OcspCounters {
        // The recorder must exist before handles are taken, or they would record nowhere.
        let _ = pnc_common::telemetry::metrics_handle();
        let counter = |result: &'static str| metrics::counter!("pnc_ocsp_http_requests_total", "result" => result);
        OcspCounters {
            hit: counter("hit"),
            miss: counter("miss"),
            error: counter("error"),
        }
    }
}

/// What the `/ocsp` routes need, and nothing else (a handler clones one `Arc`).
pub struct OcspFastPath {
    answers: AnswerCache,
    ocsp: GrpcChannel,
    deadline: Duration,
    counters: OcspCounters,
}

impl OcspFastPath {
    pub fn new(state: &AppState) -> Arc<OcspFastPath> {
        Arc::new(OcspFastPath {
            answers: state.ocsp_answers.clone(),
            ocsp: state.channels.ocsp.clone(),
            deadline: Duration::from_millis(state.config.http.request_timeout_ms),
            counters: OcspCounters::register(),
        })
    }

    /// Answers one DER OCSPRequest, from the gateway cache or the ocsp service.
    async fn answer(&self, request_der: &[u8]) -> Response {
        if request_der.is_empty() || request_der.len() > MAX_OCSP_REQUEST_BYTES {
            self.counters.error.increment(1);
            return error_status(&MALFORMED_REQUEST);
        }
        let now = unix_now();
        if let Some(hit) = self.answers.get(request_der, now).await {
            self.counters.hit.increment(1);
            return hit.to_response(now);
        }
        self.counters.miss.increment(1);
        let mut client = OcspClient::new(self.ocsp.clone());
        let call = client.respond(RespondRequest {
            ocsp_request_der: request_der.to_vec(),
        });
        let response = match within(self.deadline, call).await {
            Some(Ok(response)) => response.into_inner(),
            Some(Err(status)) => {
                tracing::warn!(error = %status.message(), "ocsp service unavailable");
                return error_status(if status.code() == tonic::Code::Unavailable {
                    &TRY_LATER
                } else {
                    &INTERNAL_ERROR
                });
            }
            None => {
                tracing::warn!("ocsp service did not answer in time");
                return error_status(&TRY_LATER);
            }
        };
        if response.next_update == 0 {
            // An error status (malformedRequest, unauthorized, tryLater): not cacheable.
            return uncacheable(StatusCode::OK, Bytes::from(response.ocsp_response_der));
        }
        let cached = Arc::new(CachedAnswer::new(
            Bytes::from(response.ocsp_response_der),
            response.this_update,
            response.next_update,
        ));
        self.answers.insert(request_der, cached.clone()).await;
        cached.to_response(unix_now())
    }

    async fn post(&self, request: Request) -> Response {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_OCSP_REQUEST_BYTES as u64) {
            self.counters.error.increment(1);
            return closing(error_status(&MALFORMED_REQUEST));
        }
        let body = read_body(request.into_body(), MAX_OCSP_REQUEST_BYTES);
        match within(self.deadline, body).await {
            Some(Some(der)) => self.answer(&der).await,
            Some(None) => {
                self.counters.error.increment(1);
                closing(error_status(&MALFORMED_REQUEST))
            }
            None => {
                self.counters.error.increment(1);
                closing(uncacheable(StatusCode::REQUEST_TIMEOUT, Bytes::new()))
            }
        }
    }

    async fn get(&self, request: Request) -> Response {
        let path = request.uri().path();
        let encoded = path.strip_prefix("/ocsp/").unwrap_or_default();
        match percent_decoded(encoded).and_then(|text| decode_get_path(&text)) {
            Some(der) => self.answer(&der).await,
            None => {
                self.counters.error.increment(1);
                error_status(&MALFORMED_REQUEST)
            }
        }
    }
}

/// The body, or None past `limit` bytes or on a broken stream. A body that arrives as one
/// frame (an OCSP request nearly always does) is kept as is, without a copy or a buffer list.
pub(crate) async fn read_body(body: Body, limit: usize) -> Option<Bytes> {
    use axum::body::HttpBody;
    let mut body = pin!(body);
    let mut first: Option<Bytes> = None;
    let mut joined: Option<bytes::BytesMut> = None;
    let mut length = 0usize;
    while let Some(frame) = std::future::poll_fn(|context| body.as_mut().poll_frame(context)).await
    {
        let Ok(data) = frame.ok()?.into_data() else {
            continue; // trailers
        };
        length += data.len();
        if length > limit {
            return None;
        }
        match (&mut first, &mut joined) {
            (None, None) => first = Some(data),
            (Some(_), None) => {
                let mut buffer = bytes::BytesMut::with_capacity(length);
                buffer.extend_from_slice(&first.take()?);
                buffer.extend_from_slice(&data);
                joined = Some(buffer);
            }
            (_, Some(buffer)) => buffer.extend_from_slice(&data),
        }
    }
    Some(match joined {
        Some(buffer) => buffer.freeze(),
        None => first.unwrap_or_default(),
    })
}

/// `%XX` escapes decoded (RFC 3986 §2.1); borrowed when there are none.
fn percent_decoded(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !text.contains('%') {
        return Some(std::borrow::Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let high = (hex[0] as char).to_digit(16)?;
            let low = (hex[1] as char).to_digit(16)?;
            decoded.push((high * 16 + low) as u8);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok().map(std::borrow::Cow::Owned)
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
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

/// 405 on `/ocsp` for other methods, in the gateway's error shape.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

/// The `/ocsp` routes, to be merged into the gateway's router after its generic layers
/// (lib.rs), so none of them run for OCSP.
pub fn fast_routes<S: Clone + Send + Sync + 'static>(fast: Arc<OcspFastPath>) -> Router<S> {
    let (for_post, for_get) = (fast.clone(), fast);
    // Services with their own (empty) state: a handler of the gateway's router would clone
    // the whole AppState for every request.
    Router::new()
        .route_service(
            "/ocsp",
            axum::routing::post(move |request: Request| ocsp_post(for_post.clone(), request))
                .fallback(method_not_allowed)
                .with_state::<()>(()),
        )
        .route_service(
            "/ocsp/{*request}",
            axum::routing::get(move |request: Request| ocsp_get(for_get.clone(), request))
                .fallback(method_not_allowed)
                .with_state::<()>(()),
        )
}

/// The listeners' service: `/ocsp` goes to the fast path before any route matching, OCPP
/// GetCertificateStatus to its lean path (routes::ocpp_fast, which hands anything but a
/// cached answer back to the router), everything else to the router. A cached answer then
/// also skips the route look-up, the per-route boxed service clone, request extensions and
/// the state clone that every handler of the router pays; the router serves the same routes
/// too (other methods, the OpenAPI document).
#[derive(Clone)]
pub struct OcspFirst {
    fast: Arc<OcspFastPath>,
    status: Arc<crate::routes::ocpp_fast::StatusFastPath>,
    router: Router,
}

impl OcspFirst {
    pub fn new(
        fast: Arc<OcspFastPath>,
        status: Arc<crate::routes::ocpp_fast::StatusFastPath>,
        router: Router,
    ) -> OcspFirst {
        OcspFirst {
            fast,
            status,
            router,
        }
    }
}

type FastFuture = std::pin::Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl tower::Service<Request> for OcspFirst {
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::Either<FastFuture, <Router as tower::Service<Request>>::Future>;

    fn poll_ready(&mut self, context: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<Request>::poll_ready(&mut self.router, context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let path = request.uri().path();
        let method = request.method();
        if path == "/ocsp" && method == Method::POST {
            let fast = self.fast.clone();
            return futures::future::Either::Left(Box::pin(
                async move { Ok(fast.post(request).await) },
            ));
        }
        if path.starts_with("/ocsp/") && method == Method::GET {
            let fast = self.fast.clone();
            return futures::future::Either::Left(Box::pin(
                async move { Ok(fast.get(request).await) },
            ));
        }
        if path == crate::routes::ocpp_fast::PATH && method == Method::POST {
            let (status, router) = (self.status.clone(), self.router.clone());
            return futures::future::Either::Left(Box::pin(async move {
                Ok(status.serve(request, router).await)
            }));
        }
        futures::future::Either::Right(self.router.call(request))
    }
}

/// RFC 6960 OCSP, GET form.
#[utoipa::path(
    get,
    path = "/ocsp/{request}",
    tag = "ocsp",
    params(("request" = String, Path, description = "base64 (standard or URL-safe) of a DER OCSPRequest, URL-encoded")),
    responses(
        (status = 200, description = "A DER OCSPResponse (application/ocsp-response); malformedRequest, unauthorized and tryLater are answers too", content_type = "application/ocsp-response"),
    )
)]
pub async fn ocsp_get(fast: Arc<OcspFastPath>, request: Request) -> Response {
    fast.get(request).await
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
pub async fn ocsp_post(fast: Arc<OcspFastPath>, request: Request) -> Response {
    fast.post(request).await
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

/// `response` with `Connection: close`, for answers given while (part of) the request body
/// is still unread: the connection cannot carry another request, and a client that reused
/// it would write into a socket the server is closing (RFC 9112, section 9.6).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
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
    fn ok_cache_control_formatted_on_the_stack() {
        assert_eq!(
            cache_control(0),
            HeaderValue::from_static("max-age=0, public, no-transform, must-revalidate")
        );
        assert_eq!(
            cache_control(86_400),
            HeaderValue::from_static("max-age=86400, public, no-transform, must-revalidate")
        );
        assert_eq!(cache_control(-5), cache_control(0));
        assert!(
            cache_control(i64::MAX)
                .to_str()
                .unwrap()
                .starts_with("max-age=9223372036854775807,")
        );
    }

    #[test]
    fn ok_percent_decoding() {
        assert_eq!(percent_decoded("MEUw").unwrap(), "MEUw");
        assert_eq!(percent_decoded("a%2Fb%2bc%3D").unwrap(), "a/b+c=");
        assert_eq!(percent_decoded("%2"), None);
        assert_eq!(percent_decoded("%zz"), None);
        assert_eq!(percent_decoded("%ff"), None, "not UTF-8");
    }

    #[tokio::test]
    async fn ok_body_in_one_or_many_frames_within_the_limit() {
        let one = Body::from(Bytes::from_static(b"0123456789"));
        assert_eq!(read_body(one, 10).await.unwrap(), "0123456789");
        let many = || {
            Body::from_stream(futures::stream::iter(
                ["01", "234", "56789"].map(|chunk| Ok::<_, std::io::Error>(Bytes::from(chunk))),
            ))
        };
        assert_eq!(read_body(many(), 10).await.unwrap(), "0123456789");
        assert_eq!(read_body(many(), 9).await, None);
        assert_eq!(read_body(Body::empty(), 10).await.unwrap(), "");
        let broken = Body::from_stream(futures::stream::iter([
            Ok(Bytes::from_static(b"01")),
            Err(std::io::Error::other("reset")),
        ]));
        assert_eq!(read_body(broken, 10).await, None);
    }

    #[tokio::test]
    async fn ok_deadline_only_for_waiting_futures() {
        assert_eq!(within(Duration::from_millis(1), async { 7 }).await, Some(7));
        assert_eq!(
            within(Duration::from_millis(10), std::future::pending::<()>()).await,
            None
        );
    }

    #[test]
    fn ok_http_date() {
        assert_eq!(
            http_date(784_111_777).unwrap(),
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT")
        );
    }
}
