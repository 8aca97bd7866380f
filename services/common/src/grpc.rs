//! gRPC between pnc's components: one server builder and one client builder, so every
//! service gets the same mTLS, caller allowlist, health service, request-ID propagation
//! and per-RPC metrics.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::component::Component;
use crate::config::GrpcConfig;
use crate::db::Database;
use crate::tls::InternalTls;

/// The request ID header carried across HTTP and gRPC.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    /// The ID of the request being served; outgoing gRPC calls carry it on.
    pub static REQUEST_ID: String;
}

/// The current request ID, if this task serves one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A channel to another service that carries the request ID along.
pub type GrpcChannel = InterceptedService<Channel, PropagateRequestId>;

/// Adds the current request ID to outgoing calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateRequestId;

impl tonic::service::Interceptor for PropagateRequestId {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(id) = current_request_id()
            && let Ok(value) = id.parse()
        {
            request.metadata_mut().insert(REQUEST_ID_HEADER, value);
        }
        Ok(request)
    }
}

/// HTTP/2 flow-control windows of the internal channels. With h2's 64 KiB defaults the
/// receiver sends a WINDOW_UPDATE frame every few installation answers (~5 KB each); with
/// these it is rare. Memory is not reserved up front: a window is only a credit.
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;
const STREAM_WINDOW: u32 = 1024 * 1024;

/// A lazily connecting mTLS channel to `url` (`https://host:port`). The first call
/// connects; a service that is down makes calls fail fast with `Unavailable`.
pub fn connect(
    url: &str,
    tls: &InternalTls,
    config: &GrpcConfig,
) -> Result<GrpcChannel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(url.to_string())?
        .tls_config(tls.client_config())?
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .tcp_nodelay(true)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .initial_stream_window_size(STREAM_WINDOW)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(InterceptedService::new(
        endpoint.connect_lazy(),
        PropagateRequestId,
    ))
}

/// A gRPC server for one component, bound but not yet serving.
pub struct GrpcServer {
    component: Component,
    listener: TcpListener,
}

impl GrpcServer {
    pub async fn bind(component: Component, addr: SocketAddr) -> std::io::Result<GrpcServer> {
        let listener = TcpListener::bind(addr).await?;
        Ok(GrpcServer {
            component,
            listener,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `routes` (plus the standard health service) until `shutdown` fires, then
    /// lets in-flight calls finish. With a `database`, the health service reports
    /// NOT_SERVING while the database does not answer.
    pub async fn serve(
        self,
        routes: Routes,
        tls: &InternalTls,
        database: Option<Database>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        if let Some(database) = database {
            tokio::spawn(watch_database(
                database,
                health_reporter.clone(),
                shutdown.clone(),
            ));
        }
        let routes = routes.add_service(health_service);
        let component = self.component;
        tonic::transport::Server::builder()
            .tls_config(tls.server_config())?
            .tcp_nodelay(true)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .initial_stream_window_size(STREAM_WINDOW)
            .layer(ComponentLayer { component })
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                // TCP_NODELAY on every accepted connection: the builder's tcp_nodelay only
                // applies to listeners tonic binds itself, and Nagle plus delayed ACKs cost
                // about 40 ms per call otherwise.
                tonic::transport::server::TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                shutdown.cancelled_owned(),
            )
            .await?;
        tracing::info!(component = %component, "grpc server stopped");
        Ok(())
    }
}

async fn watch_database(
    database: Database,
    reporter: tonic_health::server::HealthReporter,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(2));
    let mut was_serving = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let serving = tokio::time::timeout(Duration::from_secs(2), database.ping())
            .await
            .is_ok_and(|result| result.is_ok());
        if serving != was_serving {
            let status = if serving {
                tracing::info!("database answers again");
                tonic_health::ServingStatus::Serving
            } else {
                tracing::warn!("database does not answer; reporting not serving");
                tonic_health::ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            was_serving = serving;
        }
    }
}

/// Checks the caller against the component's allowlist, sets up the request span and
/// request ID, and records per-RPC metrics.
#[derive(Debug, Clone, Copy)]
struct ComponentLayer {
    component: Component,
}

impl<S> Layer<S> for ComponentLayer {
    type Service = ComponentService<S>;

    fn layer(&self, inner: S) -> ComponentService<S> {
        ComponentService {
            inner,
            component: self.component,
        }
    }
}

#[derive(Debug, Clone)]
struct ComponentService<S> {
    inner: S,
    component: Component,
}

type TlsInfo = tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ComponentService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let component = self.component;
        let method = request.uri().path().to_string();
        let caller = request
            .extensions()
            .get::<TlsInfo>()
            .and_then(|info| info.peer_certs())
            .and_then(|certs| certs.first().map(|cert| component_of_peer_cached(cert)))
            .flatten();
        let allowed = caller.is_some_and(|caller| component.allowed_callers().contains(&caller));
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|id| id.len() <= 128)
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let span = tracing::info_span!(
            "grpc",
            component = %component,
            method = %method,
            request_id = %request_id,
            caller = caller.map(Component::name).unwrap_or("unknown"),
        );

        if !allowed {
            tracing::warn!(parent: &span, "caller not allowed");
            let status = tonic::Status::permission_denied(format!(
                "{} does not accept calls from {}",
                component,
                caller.map(Component::name).unwrap_or("an unknown peer")
            ));
            record_rpc(component, &method, "7", Duration::ZERO);
            return Box::pin(async move { Ok(status.into_http()) });
        }

        // Take the service that was driven to readiness, leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            REQUEST_ID
                .scope(request_id, async move {
                    let started = Instant::now();
                    let result = inner.call(request).await;
                    let code = match &result {
                        // Errors travel as trailers-only responses: the status is a header.
                        Ok(response) => response
                            .headers()
                            .get("grpc-status")
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or("0")
                            .to_string(),
                        Err(_) => "transport".to_string(),
                    };
                    record_rpc(component, &method, &code, started.elapsed());
                    if code != "0" {
                        tracing::debug!(grpc_status = %code, "rpc failed");
                    }
                    result
                })
                .instrument(span),
        )
    }
}

/// Peers' components by their certificate's DER: the same few internal certificates present
/// themselves on every call, and parsing one per call was measurable per installation. The
/// key is the whole DER, so a different certificate is parsed (and judged) afresh.
fn component_of_peer_cached(cert_der: &[u8]) -> Option<Component> {
    /// More than pnc's components ever present; past it the cache starts over.
    const MAX_PEERS: usize = 32;
    static PEERS: std::sync::Mutex<Vec<(Vec<u8>, Option<Component>)>> =
        std::sync::Mutex::new(Vec::new());
    if let Ok(peers) = PEERS.lock()
        && let Some((_, component)) = peers.iter().find(|(der, _)| der.as_slice() == cert_der)
    {
        return *component;
    }
    let component = crate::tls::component_of_peer(cert_der);
    if let Ok(mut peers) = PEERS.lock() {
        if peers.len() >= MAX_PEERS {
            peers.clear();
        }
        peers.push((cert_der.to_vec(), component));
    }
    component
}

fn record_rpc(component: Component, method: &str, code: &str, elapsed: Duration) {
    let labels = [
        ("component", component.name().to_string()),
        ("method", method.to_string()),
        ("code", code.to_string()),
    ];
    metrics::counter!("pnc_grpc_requests_total", &labels).increment(1);
    if code != "0" {
        metrics::counter!("pnc_grpc_errors_total", &labels).increment(1);
    }
    metrics::histogram!(
        "pnc_grpc_request_duration_seconds",
        "component" => component.name(),
        "method" => method.to_string()
    )
    .record(elapsed.as_secs_f64());
}

/// Asks a component's standard health service whether it is serving.
pub async fn check_health(channel: GrpcChannel) -> Result<(), String> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| status.message().to_string())?;
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    if response.into_inner().status == serving {
        Ok(())
    } else {
        Err("not serving".to_string())
    }
}
