//! The gateway: pnc's only HTTP edge.
//!
//! It authenticates (access tokens from `/oauth/token`, later mTLS client certificates),
//! checks role and scope, turns each request into one typed gRPC call, and maps errors
//! back to OPCP's `{errorMessages, traceId}` body. Layout: [`routes`] holds one module
//! per API family; [`auth`], [`error`], [`extract`] and [`context`] are the cross-cutting
//! parts every route uses.

pub mod auth;
pub mod context;
pub mod error;
pub mod extract;
pub mod routes;
pub mod serve;
pub mod state;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pnc_common::Component;
use pnc_common::runtime::{ComponentContext, RunningComponent};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::TokenAuthority;
use crate::error::ApiError;
use crate::state::{AppState, Channels};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pnc",
        description = "Open ISO 15118 Plug & Charge backend: OPCP v1, OPNC v1, OCPP-shaped JSON and OCSP"
    ),
    paths(routes::ocsp::ocsp_post, routes::ocsp::ocsp_get),
    modifiers(&SecurityAddon)
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The router with every route, and the OpenAPI document generated from the handlers.
pub fn router(state: AppState) -> Router {
    let ocsp_fast_path = routes::ocsp::OcspFastPath::new(&state);
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::oauth::issue_token))
        .routes(routes!(routes::system::healthz))
        .routes(routes!(routes::system::metrics))
        .routes(routes!(routes::ocsp::get_crl))
        .routes(routes!(routes::ocpp_ocsp::get_certificate_status))
        .routes(routes!(routes::ocpp_ocsp::get_certificate_chain_status))
        .routes(routes!(routes::ocpp_ocsp::authorize))
        .routes(routes!(routes::roots::list_roots, routes::roots::put_root))
        .routes(routes!(routes::roots::get_root, routes::roots::delete_root))
        .routes(routes!(routes::roots::get_ctl))
        .routes(routes!(
            routes::opnc_rcp::list_root_certificates,
            routes::opnc_rcp::put_root_certificate
        ))
        .routes(routes!(
            routes::opnc_rcp::get_root_certificate,
            routes::opnc_rcp::delete_root_certificate
        ))
        .routes(routes!(routes::trust::add_intermediate))
        .routes(routes!(routes::trust::list_known_cas))
        .routes(routes!(routes::cps::generate_signed_contract_data))
        .routes(routes!(routes::cps::sign_contract_data))
        .routes(routes!(routes::cps::create_signed_contract_data))
        .routes(routes!(routes::cps::forward_signed_contract_data))
        .routes(routes!(routes::cps::get_cps_signer))
        .routes(routes!(routes::ev::get_15118_ev_certificate))
        .routes(routes!(routes::ev::ocpp16_data_transfer))
        .routes(routes!(
            routes::ev::get_signed_contract_data,
            routes::ccp::add_signed_contract_data
        ))
        .routes(routes!(
            routes::ev::opnc_get_signed_contract_data,
            routes::opnc_ccp::add_signed_contract_data
        ))
        .routes(routes!(routes::ev::provide_signed_contract_data))
        .routes(routes!(routes::ev::opnc_provide_signed_contract_data))
        .routes(routes!(routes::opnc_cps::generate_and_sign))
        .routes(routes!(routes::opnc_cps::sign))
        .routes(routes!(routes::opnc_cps::cps_certificates))
        .routes(routes!(routes::pcp::put_provisioning_certificate))
        .routes(routes!(
            routes::pcp::get_provisioning_certificate,
            routes::pcp::delete_provisioning_certificate
        ))
        .routes(routes!(routes::pcp::lookup_vehicle))
        .routes(routes!(routes::ccp::lookup_contract))
        .routes(routes!(
            routes::ccp::contracts_of_vehicle,
            routes::ccp::delete_contract
        ))
        .routes(routes!(routes::ccp::set_default))
        .routes(routes!(
            routes::webhooks::create_endpoint,
            routes::webhooks::list_endpoints
        ))
        .routes(routes!(
            routes::webhooks::get_endpoint,
            routes::webhooks::update_endpoint,
            routes::webhooks::delete_endpoint
        ))
        .routes(routes!(routes::webhooks::list_deliveries))
        .routes(routes!(routes::opnc_pcp::put_provisioning_certificate))
        .routes(routes!(
            routes::opnc_pcp::get_provisioning_certificate,
            routes::opnc_pcp::delete_provisioning_certificate
        ))
        .routes(routes!(routes::opnc_pcp::lookup_vehicle))
        .routes(routes!(routes::opnc_ccp::contracts_by_emaid))
        .routes(routes!(routes::opnc_ccp::contracts_by_pcid))
        .routes(routes!(routes::opnc_ccp::delete_contract))
        .routes(routes!(routes::opnc_ccp::set_default))
        .routes(routes!(
            routes::opnc_event::create_endpoint,
            routes::opnc_event::list_endpoints
        ))
        .routes(routes!(
            routes::opnc_event::get_endpoint,
            routes::opnc_event::update_endpoint,
            routes::opnc_event::delete_endpoint
        ))
        .routes(routes!(
            routes::opnc_event::create_endpoint_doubled,
            routes::opnc_event::list_endpoints_doubled
        ))
        .routes(routes!(
            routes::opnc_event::get_endpoint_doubled,
            routes::opnc_event::update_endpoint_doubled,
            routes::opnc_event::delete_endpoint_doubled
        ))
        .split_for_parts();
    let openapi_json = Arc::new(
        openapi
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_string()),
    );
    let max_body_bytes = state.config.http.max_body_bytes;
    let request_timeout = Duration::from_millis(state.config.http.request_timeout_ms);
    api.route(
        "/openapi.json",
        axum::routing::get(move || {
            let openapi_json = openapi_json.clone();
            async move {
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    openapi_json.as_str().to_string(),
                )
            }
        }),
    )
    .fallback(|| async { ApiError::not_found("no such endpoint") })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this endpoint",
        )
    })
    .route_layer(axum::middleware::from_fn(context::route_metrics))
    .layer(DefaultBodyLimit::max(max_body_bytes))
    .layer(axum::middleware::from_fn(move |request, next| {
        reject_oversized(request, next, max_body_bytes)
    }))
    .layer(axum::middleware::from_fn(move |request, next| {
        deadline(request, next, request_timeout)
    }))
    .layer(axum::middleware::from_fn(context::request_context))
    // After the layers, so they do not wrap it: see routes::ocsp.
    .merge(routes::ocsp::fast_routes(ocsp_fast_path))
    .with_state(state)
}

/// 413 before reading a body whose declared length is over the limit.
async fn reject_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    max_body_bytes: usize,
) -> axum::response::Response {
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body_bytes as u64) {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            .into_response();
    }
    next.run(request).await
}

/// 504 for a request that takes longer than the configured deadline.
async fn deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    timeout: Duration,
) -> axum::response::Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "request took too long").into_response()
        }
    }
}

/// The plain HTTP listener: one on the shared runtime, or one per server thread.
enum PlainListeners {
    Shared(TcpListener),
    /// `http.server_threads` listeners on one address (SO_REUSEPORT), a thread each, each
    /// thread with a current-thread runtime: a connection lives on one thread, so serving
    /// it needs no hand-off between threads, and an idle thread sleeps in its own epoll.
    /// On a 2-core machine that shares its cores with a load generator, the shared
    /// runtime's two workers served cached OCSP answers at p99 4.2–4.7 ms, a single worker
    /// at p99 1 ms (services/ocsp/BENCHMARKS-ocsp.md); this keeps the single loop's economy
    /// on every core. Calls to other components, timers and blocking
    /// work run on the serving thread's runtime; background work stays on the shared one.
    Threads(Vec<std::net::TcpListener>),
}

impl PlainListeners {
    async fn bind(listen: SocketAddr, threads: usize) -> std::io::Result<PlainListeners> {
        if threads == 0 {
            return Ok(PlainListeners::Shared(TcpListener::bind(listen).await?));
        }
        let mut address = listen;
        let mut listeners = Vec::with_capacity(threads);
        for _ in 0..threads {
            let socket = match address {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.bind(address)?;
            let listener = socket.listen(1024)?;
            // Port 0: the first listener's port is everyone's.
            address = listener.local_addr()?;
            listeners.push(listener.into_std()?);
        }
        Ok(PlainListeners::Threads(listeners))
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            PlainListeners::Shared(listener) => listener.local_addr(),
            PlainListeners::Threads(listeners) => listeners
                .first()
                .ok_or_else(|| std::io::Error::other("no HTTP listener"))?
                .local_addr(),
        }
    }

    fn serve(
        self,
        app: routes::ocsp::OcspFirst,
        limits: serve::ConnectionLimits,
        shutdown: CancellationToken,
        grace: Duration,
    ) -> std::io::Result<JoinHandle<anyhow::Result<()>>> {
        let serve_plain = move |listener, app, shutdown| {
            serve::serve(listener, serve::Plain, app, limits.clone(), shutdown, grace)
        };
        let listeners = match self {
            PlainListeners::Shared(listener) => {
                return Ok(tokio::spawn(async move {
                    serve_plain(listener, app, shutdown).await;
                    Ok(())
                }));
            }
            PlainListeners::Threads(listeners) => listeners,
        };
        let mut stopped = Vec::with_capacity(listeners.len());
        for (index, listener) in listeners.into_iter().enumerate() {
            let (app, shutdown) = (app.clone(), shutdown.clone());
            let serve_plain = serve_plain.clone();
            let (done, finished) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name(format!("pnc-http-{index}"))
                .spawn(move || {
                    let result = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(anyhow::Error::from)
                        .and_then(|runtime| {
                            runtime.block_on(async move {
                                let listener = TcpListener::from_std(listener)?;
                                serve_plain(listener, app, shutdown).await;
                                Ok(())
                            })
                        });
                    let _ = done.send(result);
                })?;
            stopped.push(finished);
        }
        Ok(tokio::spawn(async move {
            for finished in stopped {
                finished
                    .await
                    .map_err(|_| anyhow::anyhow!("an HTTP server thread panicked"))??;
            }
            Ok(())
        }))
    }
}

/// Binds the HTTP listener and serves until `context.shutdown` fires; in-flight requests
/// then get `http.shutdown_grace_ms` to finish.
pub async fn start(context: ComponentContext) -> anyhow::Result<RunningComponent> {
    let config = context.config.clone();
    let tokens = TokenAuthority::load_or_create(
        config.auth.token_signing_key_file.as_deref(),
        &config.data_dir,
        &config.auth.issuer,
        config.auth.token_ttl_seconds,
    )?;
    let state = AppState {
        config: config.clone(),
        tokens,
        channels: Channels::connect(&context)?,
        ocsp_answers: routes::ocsp::AnswerCache::new(&config.ocsp),
    };
    // Install the recorder before the first request records anything.
    let _ = pnc_common::telemetry::metrics_handle();
    let ocsp_fast_path = routes::ocsp::OcspFastPath::new(&state);
    let status_fast_path = routes::ocpp_fast::StatusFastPath::new(&state);
    let app = routes::ocsp::OcspFirst::new(ocsp_fast_path, status_fast_path, router(state));
    let plain = PlainListeners::bind(context.listen, config.http.server_threads).await?;
    let local_addr = plain.local_addr()?;
    let shutdown = context.shutdown.clone();
    let grace = Duration::from_millis(config.http.shutdown_grace_ms);
    let limits = serve::ConnectionLimits::new(
        Duration::from_millis(config.http.header_read_timeout_ms),
        config.http.max_connections,
    );
    if let Some(tls_listen) = config.http.tls.listen {
        let tls_config = tls::server_config(&config.http.tls)?;
        let tls_listener = TcpListener::bind(tls_listen).await?;
        tracing::info!(address = %tls_listener.local_addr()?, "gateway listening for https (mTLS)");
        let handshake = tls::TlsHandshake::new(tls_config);
        tokio::spawn(serve::serve(
            tls_listener,
            handshake,
            app.clone(),
            limits.clone(),
            shutdown.clone(),
            grace,
        ));
    }
    let task = plain.serve(app, limits, shutdown, grace)?;
    tracing::info!(%local_addr, "gateway listening");
    Ok(RunningComponent {
        component: Component::Gateway,
        local_addr,
        task,
    })
}
