//! What a component gets to start with, how it reports that it runs, and shutdown.
//!
//! Every service crate exposes `start(ComponentContext) -> RunningComponent`: it opens
//! its storage, binds its gRPC port and serves in a task. `pnc serve` starts all of them
//! in one process (each on an ephemeral loopback port too, but by default calling each
//! other in-process), `pnc serve --only X` starts one, and the test sandbox starts them
//! as `pnc serve` does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::component::Component;
use crate::config::Config;
use crate::db::StorageLocation;
use crate::grpc::{self, GrpcChannel, InProcessServices};
use crate::tls::InternalTls;

/// Everything a component needs to start.
#[derive(Debug, Clone)]
pub struct ComponentContext {
    pub component: Component,
    pub config: Arc<Config>,
    pub tls: InternalTls,
    pub storage: StorageLocation,
    /// Where to listen: gRPC for services, HTTP for the gateway.
    pub listen: SocketAddr,
    pub shutdown: CancellationToken,
    /// The time certificate validity is checked at.
    pub validity_clock: ValidityClock,
    /// The other components of this process that may be called without the network
    /// (`pnc serve` with `grpc.same_process_transport = "in-process"`); `None`: every call
    /// goes over mTLS.
    pub in_process: Option<InProcessServices>,
}

/// The moment certificate validity (notBefore/notAfter, root expiry) is judged at. In
/// production it is the system clock. A test may pin it to a moment when fixtures with
/// fixed dates (published example certificates) were valid, so they are checked for real
/// instead of with the checks switched off. Record timestamps, schedules and tokens always
/// use the system clock.
#[derive(Debug, Clone, Default)]
pub struct ValidityClock {
    pinned: Option<Arc<AtomicI64>>,
}

impl ValidityClock {
    pub fn system() -> ValidityClock {
        ValidityClock::default()
    }

    /// A clock that stays at `unix_seconds` until [`ValidityClock::set`] moves it.
    pub fn pinned_at(unix_seconds: i64) -> ValidityClock {
        ValidityClock {
            pinned: Some(Arc::new(AtomicI64::new(unix_seconds))),
        }
    }

    /// Moves a pinned clock (every component sharing it sees the change); `false` for the
    /// system clock, which cannot be moved.
    pub fn set(&self, unix_seconds: i64) -> bool {
        match &self.pinned {
            Some(pinned) => {
                pinned.store(unix_seconds, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Unix seconds.
    pub fn unix_now(&self) -> i64 {
        match &self.pinned {
            Some(pinned) => pinned.load(Ordering::SeqCst),
            None => crate::db::unix_now(),
        }
    }
}

impl ComponentContext {
    /// A channel to another component: in-process when it runs in this process and the
    /// context allows it, else mTLS to the URL the config names for it.
    pub fn connect(&self, callee: Component) -> anyhow::Result<GrpcChannel> {
        if let Some(channel) = self
            .in_process
            .as_ref()
            .and_then(|services| services.channel(self.component, callee, &self.config.grpc))
        {
            return Ok(channel);
        }
        let url = self.config.services.url_of(callee);
        grpc::connect(&url, &self.tls, &self.config.grpc)
            .map_err(|error| anyhow::anyhow!("invalid URL for {callee} ({url}): {error}"))
    }

    /// The address a service listens on when run alone.
    pub fn default_listen(component: Component, config: &Config) -> SocketAddr {
        match component {
            Component::Gateway => config.listen,
            _ => config.grpc.listen.unwrap_or_else(|| {
                SocketAddr::from((
                    [127, 0, 0, 1],
                    component.default_grpc_port().unwrap_or_default(),
                ))
            }),
        }
    }
}

/// A started component.
#[derive(Debug)]
pub struct RunningComponent {
    pub component: Component,
    pub local_addr: SocketAddr,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl RunningComponent {
    /// The `https://` URL other components reach this one at.
    pub fn url(&self) -> String {
        format!("https://{}", self.local_addr)
    }

    /// Waits until the component has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        match self.task.await {
            Ok(result) => result,
            Err(join_error) => Err(anyhow::anyhow!(
                "{} stopped abnormally: {join_error}",
                self.component
            )),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown requested");
}
