//! gRPC between pnc's components: one server builder and one client builder, so every
//! service gets the same mTLS, caller allowlist, health service, request-ID propagation
//! and per-RPC metrics.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::component::Component;
use crate::config::GrpcConfig;
use crate::db::Database;
use crate::runtime::ComponentContext;
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

/// A channel to another component. Between processes it is a lazily connecting mTLS
/// channel; between components of one process it may instead call the callee's gRPC
/// service directly (see [`InProcessServices`]): the same protobuf messages, and the same
/// [`ComponentLayer`] on the callee's side (caller allowlist, request ID, span, metrics),
/// without TLS, HTTP/2 and sockets. Either way the current request ID travels along.
#[derive(Clone)]
pub struct GrpcChannel {
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Network(Channel),
    InProcess {
        callee: ComponentService<Routes>,
        /// Who calls: the callee's allowlist judges this, as it judges a peer certificate.
        caller: Component,
        /// The configured request timeout, which the network channel enforces itself.
        timeout: Duration,
    },
}

impl std::fmt::Debug for GrpcChannel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Network(channel) => formatter
                .debug_tuple("GrpcChannel::Network")
                .field(channel)
                .finish(),
            Transport::InProcess { callee, caller, .. } => formatter
                .debug_struct("GrpcChannel::InProcess")
                .field("callee", &callee.component)
                .field("caller", caller)
                .finish(),
        }
    }
}

impl GrpcChannel {
    /// Whether calls stay in this process (no TLS, no sockets).
    pub fn is_in_process(&self) -> bool {
        matches!(self.transport, Transport::InProcess { .. })
    }
}

/// The caller of an in-process call. Only [`GrpcChannel`] sets it, and nothing outside this
/// module can make one; a request from the network never carries it (extensions are not
/// sent over the wire), so a network peer's identity still comes from its certificate only.
#[derive(Debug, Clone, Copy)]
struct InProcessCaller(Component);

impl Service<http::Request<tonic::body::Body>> for GrpcChannel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::codegen::StdError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.transport {
            Transport::Network(channel) => channel.poll_ready(cx).map_err(Into::into),
            Transport::InProcess { callee, .. } => {
                Service::<http::Request<tonic::body::Body>>::poll_ready(callee, cx)
                    .map_err(|never| match never {})
            }
        }
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some(id) = current_request_id()
            && let Ok(value) = http::HeaderValue::from_str(&id)
        {
            request.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        match &mut self.transport {
            Transport::Network(channel) => {
                let response = channel.call(request);
                Box::pin(async move { response.await.map_err(Into::into) })
            }
            Transport::InProcess {
                callee,
                caller,
                timeout,
            } => {
                request.extensions_mut().insert(InProcessCaller(*caller));
                let response = tokio::time::timeout(*timeout, callee.call(request));
                Box::pin(async move {
                    match response.await {
                        Ok(Ok(response)) => Ok(response),
                        Ok(Err(never)) => match never {},
                        // What the network channel's timeout reports, so clients map it alike.
                        Err(_elapsed) => Err(tonic::TimeoutExpired(()).into()),
                    }
                })
            }
        }
    }
}

/// The gRPC services of the components running in this process. Each registers its routes
/// when it starts; components started after it (callers start after their callees) get
/// in-process channels to it from [`InProcessServices::channel`].
#[derive(Debug, Clone, Default)]
pub struct InProcessServices {
    services: Arc<Mutex<HashMap<Component, ComponentService<Routes>>>>,
}

impl InProcessServices {
    pub fn new() -> InProcessServices {
        InProcessServices::default()
    }

    /// Makes `routes` callable in-process as `component`, behind the same
    /// [`ComponentLayer`] the network server puts in front of them.
    pub fn register(&self, component: Component, routes: Routes) {
        let service = ComponentLayer { component }.layer(routes.prepare());
        self.services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(component, service);
    }

    /// An in-process channel from `caller` to `callee`, if `callee` runs in this process.
    pub fn channel(
        &self,
        caller: Component,
        callee: Component,
        config: &GrpcConfig,
    ) -> Option<GrpcChannel> {
        let services = self
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let callee = services.get(&callee)?.clone();
        Some(GrpcChannel {
            transport: Transport::InProcess {
                callee,
                caller,
                timeout: Duration::from_millis(config.request_timeout_ms),
            },
        })
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
    Ok(GrpcChannel {
        transport: Transport::Network(endpoint.connect_lazy()),
    })
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

    /// Serves `routes` (plus the standard health service) until the component's shutdown
    /// fires, then lets in-flight calls finish. With a `database`, the health service
    /// reports NOT_SERVING while the database does not answer. When the context has
    /// [`InProcessServices`], the routes are registered there before this returns, so
    /// components started next can call them in-process; the network port serves too.
    pub fn serve(
        self,
        routes: Routes,
        context: &ComponentContext,
        database: Option<Database>,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        // The empty service name (the whole server) starts as SERVING.
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        let routes = routes.add_service(health_service);
        if let Some(in_process) = &context.in_process {
            in_process.register(self.component, routes.clone());
        }
        let component = self.component;
        let tls = context.tls.clone();
        let shutdown = context.shutdown.clone();
        async move {
            if let Some(database) = database {
                tokio::spawn(watch_database(
                    database,
                    health_reporter.clone(),
                    shutdown.clone(),
                ));
            }
            tonic::transport::Server::builder()
                .tls_config(tls.server_config())?
                .tcp_nodelay(true)
                .initial_connection_window_size(CONNECTION_WINDOW)
                .initial_stream_window_size(STREAM_WINDOW)
                .layer(ComponentLayer { component })
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    // TCP_NODELAY on every accepted connection: the builder's tcp_nodelay
                    // only applies to listeners tonic binds itself, and Nagle plus delayed
                    // ACKs cost about 40 ms per call otherwise.
                    tonic::transport::server::TcpIncoming::from(self.listener)
                        .with_nodelay(Some(true)),
                    shutdown.cancelled_owned(),
                )
                .await?;
            tracing::info!(component = %component, "grpc server stopped");
            Ok(())
        }
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
        let caller = match request.extensions().get::<InProcessCaller>() {
            Some(InProcessCaller(caller)) => Some(*caller),
            None => request
                .extensions()
                .get::<TlsInfo>()
                .and_then(|info| info.peer_certs())
                .and_then(|certs| certs.first().map(|cert| component_of_peer_cached(cert)))
                .flatten(),
        };
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    /// Stands in for the health service: answers NOT_FOUND naming the request ID it runs
    /// under, or never answers.
    #[derive(Clone)]
    struct EchoRequestId {
        hang: bool,
    }

    impl tonic::server::NamedService for EchoRequestId {
        const NAME: &'static str = "grpc.health.v1.Health";
    }

    impl Service<http::Request<tonic::body::Body>> for EchoRequestId {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
            let hang = self.hang;
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                let id = current_request_id().unwrap_or_default();
                Ok(tonic::Status::not_found(format!("request id {id}")).into_http())
            })
        }
    }

    fn with_health(component: Component) -> InProcessServices {
        let services = InProcessServices::new();
        let (_, health) = tonic_health::server::health_reporter();
        services.register(component, Routes::new(health));
        services
    }

    #[tokio::test]
    async fn fail_in_process_caller_outside_the_allowlist_is_refused() {
        // Provisioning only accepts the gateway, in-process as over mTLS.
        let services = with_health(Component::Provisioning);
        let config = GrpcConfig::default();
        for caller in [Component::Registry, Component::Ocsp, Component::Truststore] {
            let channel = services
                .channel(caller, Component::Provisioning, &config)
                .expect("provisioning is registered");
            let error = check_health(channel).await.unwrap_err();
            assert_eq!(
                error,
                format!("provisioning does not accept calls from {caller}")
            );
        }
    }

    #[tokio::test]
    async fn ok_in_process_caller_on_the_allowlist_is_served() {
        let services = with_health(Component::Provisioning);
        let channel = services
            .channel(
                Component::Gateway,
                Component::Provisioning,
                &GrpcConfig::default(),
            )
            .expect("provisioning is registered");
        assert!(channel.is_in_process());
        check_health(channel).await.unwrap();
    }

    #[test]
    fn ok_unregistered_callee_has_no_in_process_channel() {
        let services = with_health(Component::Registry);
        assert!(
            services
                .channel(
                    Component::Gateway,
                    Component::Truststore,
                    &GrpcConfig::default()
                )
                .is_none()
        );
    }

    #[tokio::test]
    async fn ok_in_process_call_carries_the_request_id() {
        let services = InProcessServices::new();
        services.register(
            Component::Registry,
            Routes::new(EchoRequestId { hang: false }),
        );
        let channel = services
            .channel(
                Component::Provisioning,
                Component::Registry,
                &GrpcConfig::default(),
            )
            .unwrap();
        let error = REQUEST_ID
            .scope("trace-42".to_string(), check_health(channel))
            .await
            .unwrap_err();
        assert_eq!(error, "request id trace-42");
    }

    #[tokio::test]
    async fn fail_in_process_call_past_the_request_timeout() {
        let services = InProcessServices::new();
        services.register(
            Component::Registry,
            Routes::new(EchoRequestId { hang: true }),
        );
        let config = GrpcConfig {
            request_timeout_ms: 50,
            ..GrpcConfig::default()
        };
        let channel = services
            .channel(Component::Provisioning, Component::Registry, &config)
            .unwrap();
        let status = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap_err();
        // As the network channel reports its timeout.
        assert_eq!(status.code(), tonic::Code::Cancelled, "{status:?}");
        assert_eq!(status.message(), "Timeout expired");
    }
}
