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
//! HTTP/2 (on HTTPS) has no such timer, so the wait for a connection's first byte is
//! bounded here, for both protocols, by [`FirstByteDeadline`].
//!
//! The protocol is known before the first byte: HTTP/1.1 on the plain listener, and on
//! HTTPS what ALPN chose. Sniffing for HTTP/2's preface instead (hyper-util's `auto`) would
//! wait for the client's first bytes with no timeout at all, so the plain listener does
//! not take cleartext HTTP/2 (h2c), which no client of the edge speaks.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
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

/// How long a connection may take to deliver a request's head (`http.header_read_timeout_ms`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
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
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let http1 = Arc::new(builder.clone().http1_only());
    let http2 = Arc::new(builder.http2_only());
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
        // Answers are small; do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let (handshake, app) = (handshake.clone(), app.clone());
        let (http1, http2) = (http1.clone(), http2.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some(Accepted {
                stream,
                client_certificate,
                http2: negotiated_http2,
            }) = handshake.handshake(stream, peer).await
            else {
                return;
            };
            let builder = if negotiated_http2 { http2 } else { http1 };
            let stream = FirstByteDeadline::new(stream, limits.header_read_timeout);
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    if let Some(certificate) = &client_certificate {
                        request.extensions_mut().insert(certificate.clone());
                    }
                    app.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            // Not `serve_connection_with_upgrades`: it sniffs for HTTP/2 whatever the builder
            // says, and the edge has no route that upgrades (no WebSocket).
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the grace period");
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
