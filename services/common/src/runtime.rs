//! What a component gets to start with, how it reports that it runs, and shutdown.
//!
//! Every service crate exposes `start(ComponentContext) -> RunningComponent`: it opens
//! its storage, binds its gRPC port and serves in a task. `pnc serve` starts all of them
//! in one process (each on an ephemeral loopback port, wired to each other through the
//! config), `pnc serve --only X` starts one, and the test sandbox starts them in-process.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::component::Component;
use crate::config::Config;
use crate::db::StorageLocation;
use crate::grpc::{self, GrpcChannel};
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
}

impl ComponentContext {
    /// A channel to another component, at the URL the config names for it.
    pub fn connect(&self, callee: Component) -> anyhow::Result<GrpcChannel> {
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
