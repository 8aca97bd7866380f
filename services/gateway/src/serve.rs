//! The edge's connection loop, one for the plain and the HTTPS listener: accept, hand each
//! connection to hyper with the edge's limits, drain on shutdown.
//!
//! `axum::serve` has no limit on how long a client may take to send a request's headers,
//! so a client that opens connections and sends nothing (or a byte a minute) holds them,
//! and their memory, forever. Here hyper's HTTP/1 header-read timeout bounds that: it runs
//! from the moment a connection waits for a request's head, idle keep-alive included, and
//! closes the connection when the head is not complete in time. The body and the handler
//! are bounded by `http.request_timeout_ms`, as before.
//!
//! HTTP/2 (on HTTPS) has no such timer. Here the wait for a connection's first byte is
//! bounded, for both protocols, by [`FirstByteDeadline`], and an HTTP/2 connection that has
//! had no request in flight for the same time is shut down gracefully (GOAWAY): its client
//! reconnects when it has something to ask, as it would after a load balancer's idle
//! timeout.
//!
//! Connections open at once are capped (`http.max_connections`, over all listeners): one
//! beyond the cap is closed as soon as it is accepted. Waiting in the kernel's backlog
//! instead would leave its client to time out, where a refused one can try another replica
//! at once.
//!
//! The protocol is known before the first byte: HTTP/1.1 on the plain listener, and on
//! HTTPS what ALPN chose. Sniffing for HTTP/2's preface instead (hyper-util's `auto`) would
//! wait for the client's first bytes with no timeout at all, so the plain listener does
//! not take cleartext HTTP/2 (h2c), which no client of the edge speaks.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::routes::ocsp::OcspFirst;
use crate::tls::ClientCertificate;

/// What a listener does with a connection before HTTP: nothing (plain), or a TLS handshake
/// that yields the stream, the client's certificate and the protocol ALPN chose; `None`
/// drops the connection.
pub trait Handshake: Clone + Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = Option<Accepted<Self::Stream>>> + Send;
}

/// A connection ready for HTTP.
pub struct Accepted<S> {
    pub stream: S,
    pub client_certificate: Option<ClientCertificate>,
    pub http2: bool,
}

/// Plain HTTP: the TCP stream as it is.
#[derive(Clone, Copy)]
pub struct Plain;

impl Handshake for Plain {
    type Stream = TcpStream;
    async fn handshake(&self, stream: TcpStream, _peer: SocketAddr) -> Option<Accepted<TcpStream>> {
        Some(Accepted {
            stream,
            client_certificate: None,
            http2: false,
        })
    }
}

/// How long a connection may take to deliver a request's head (`http.header_read_timeout_ms`),
/// and how many may be open at once (`http.max_connections`).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    /// A permit per open connection, shared by every listener of the process.
    pub open_connections: Arc<Semaphore>,
}

impl ConnectionLimits {
    pub fn new(header_read_timeout: Duration, max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout,
            open_connections: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
        }
    }
}

/// An open connection's permit, counted in `pnc_http_connections_open` while it lives.
struct OpenConnection {
    _permit: OwnedSemaphorePermit,
    open: metrics::Gauge,
}

impl OpenConnection {
    fn new(permit: OwnedSemaphorePermit, open: metrics::Gauge) -> OpenConnection {
        open.increment(1.0);
        OpenConnection {
            _permit: permit,
            open,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

/// Serves `app` on the connections `listener` accepts until `shutdown`, then gives open
/// connections `grace` to finish their requests.
pub async fn serve<H: Handshake>(
    listener: TcpListener,
    handshake: H,
    app: OcspFirst,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let connections = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let http1 = Arc::new(builder.clone().http1_only());
    let http2 = Arc::new(builder.http2_only());
    let open = metrics::gauge!("pnc_http_connections_open");
    let refused = metrics::counter!("pnc_http_connections_refused_total");
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: let connections close first.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limits.open_connections.clone().try_acquire_owned() else {
            refused.increment(1);
            tracing::debug!(%peer, "connection closed: http.max_connections are open");
            drop(stream);
            continue;
        };
        let connection_open = OpenConnection::new(permit, open.clone());
        // Answers are small; do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let (handshake, app, shutdown) = (handshake.clone(), app.clone(), shutdown.clone());
        let (http1, http2) = (http1.clone(), http2.clone());
        let idle_limit = limits.header_read_timeout;
        connections.spawn(async move {
            let _connection_open = connection_open;
            let Some(Accepted {
                stream,
                client_certificate,
                http2: negotiated_http2,
            }) = handshake.handshake(stream, peer).await
            else {
                return;
            };
            let io = TokioIo::new(FirstByteDeadline::new(stream, idle_limit));
            let answer = move |mut request: hyper::Request<hyper::body::Incoming>| {
                if let Some(certificate) = &client_certificate {
                    request.extensions_mut().insert(certificate.clone());
                }
                app.clone().oneshot(request.map(axum::body::Body::new))
            };
            // Not `serve_connection_with_upgrades`: it sniffs for HTTP/2 whatever the builder
            // says, and the edge has no route that upgrades (no WebSocket).
            if negotiated_http2 {
                let activity = Arc::new(Activity::default());
                let tracked = activity.clone();
                let service = hyper::service::service_fn(move |request| {
                    let in_flight = InFlight::start(tracked.clone());
                    let response = answer(request);
                    async move {
                        let response = response.await;
                        drop(in_flight);
                        response
                    }
                });
                let connection = http2.serve_connection(io, service);
                let idle = activity.idle_for(idle_limit);
                drive(connection, peer, &shutdown, idle, idle_limit).await;
            } else {
                let connection = http1.serve_connection(io, hyper::service::service_fn(answer));
                // HTTP/1's header-read timeout bounds its idle time.
                drive(
                    connection,
                    peer,
                    &shutdown,
                    std::future::pending(),
                    idle_limit,
                )
                .await;
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the grace period");
    }
}

/// Runs `connection` to its end, shutting it down gracefully (in-flight requests finish,
/// HTTP/2 sends GOAWAY) once `shutdown` fires or the connection has been `idle`. After an
/// idle shutdown the client gets `linger` to let the connection close (HTTP/2 waits for the
/// client's answer to a PING) before it is dropped.
async fn drive<C>(
    connection: C,
    peer: SocketAddr,
    shutdown: &CancellationToken,
    idle: impl Future<Output = ()>,
    linger: Duration,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let report = |ended: Result<(), C::Error>| {
        if let Err(error) = ended {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    };
    let mut connection = std::pin::pin!(connection);
    let mut idle = std::pin::pin!(idle);
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            ended = connection.as_mut() => return report(ended),
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = idle.as_mut(), if !closing => {
                tracing::debug!(%peer, "idle connection shut down");
                connection.as_mut().graceful_shutdown();
                match tokio::time::timeout(linger, connection.as_mut()).await {
                    Ok(ended) => return report(ended),
                    Err(_) => {
                        tracing::debug!(%peer, "idle connection did not close: dropped");
                        return;
                    }
                }
            }
        }
    }
}

/// The requests an HTTP/2 connection is answering, so that it can be closed once it has
/// answered none for a while.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    changed: Notify,
}

impl Activity {
    /// Completes once no request has been in flight for `limit`.
    async fn idle_for(self: Arc<Activity>, limit: Duration) {
        loop {
            // Registered before the count is read, so no change in between is missed.
            let changed = self.changed.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(limit) => return,
                    _ = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

/// One request in flight on an [`Activity`], until dropped.
struct InFlight(Arc<Activity>);

// The idle timer waits only for the count to leave or reach zero, so only those changes
// wake it; a busy connection's other requests pass without a notification.
impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        if activity.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            activity.changed.notify_waiters();
        }
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

/// A stream whose first read fails with `TimedOut` if no byte arrives within `limit`; reads
/// after the first byte are the stream's own.
struct FirstByteDeadline<S> {
    stream: S,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> FirstByteDeadline<S> {
    fn new(stream: S, limit: Duration) -> FirstByteDeadline<S> {
        FirstByteDeadline {
            stream,
            deadline: Some(Box::pin(tokio::time::sleep(limit))),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstByteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buffer.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(context, buffer) {
            Poll::Ready(result) => {
                if buffer.filled().len() > before {
                    this.deadline = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(context).is_ready());
                if expired {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no request within http.header_read_timeout_ms",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstByteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, bytes)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}
