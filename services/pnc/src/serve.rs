//! Starting pnc's components: all of them in one process, or one alone.

use std::net::SocketAddr;
use std::sync::Arc;

use pnc_common::Component;
use pnc_common::cli::{StartFn, context_for};
use pnc_common::config::{Config, SameProcessTransport};
use pnc_common::grpc::InProcessServices;
use pnc_common::runtime::RunningComponent;
use pnc_common::runtime::ValidityClock;
use pnc_common::tls::InternalCa;
use tokio_util::sync::CancellationToken;

/// The start function of each component.
pub fn start_fn(component: Component) -> StartFn {
    match component {
        Component::Truststore => |context| Box::pin(pnc_truststore::start(context)),
        Component::Registry => |context| Box::pin(pnc_registry::start(context)),
        Component::Ocsp => |context| Box::pin(pnc_ocsp::start(context)),
        Component::Provisioning => |context| Box::pin(pnc_provisioning::start(context)),
        Component::Gateway => |context| Box::pin(pnc_gateway::start(context)),
    }
}

/// Components running in this process.
#[derive(Debug)]
pub struct Running {
    pub components: Vec<RunningComponent>,
    /// The config the gateway runs with, service URLs filled in.
    pub config: Arc<Config>,
}

impl Running {
    pub fn address_of(&self, component: Component) -> Option<SocketAddr> {
        self.components
            .iter()
            .find(|running| running.component == component)
            .map(|running| running.local_addr)
    }

    /// Waits for every component to stop, reporting the first failure.
    pub async fn wait(self) -> anyhow::Result<()> {
        let mut first_error = None;
        for running in self.components {
            let component = running.component;
            if let Err(error) = running.wait().await {
                tracing::error!(%component, error = %error, "component failed");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Starts every service on an ephemeral loopback port and the gateway on
/// `config.listen`. By default (`grpc.same_process_transport = "in-process"`) the
/// components call each other's gRPC services directly: the same messages, allowlist,
/// request IDs and metrics as over the network, without TLS and sockets. With `"mtls"`
/// they call each other over loopback exactly as separate processes do.
pub async fn start_all(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    start_all_with_clock(config, shutdown, ValidityClock::system()).await
}

/// [`start_all`] with every component judging certificate validity at `validity_clock`
/// (tests replaying fixtures with fixed dates; production uses the system clock).
pub async fn start_all_with_clock(
    config: Config,
    shutdown: CancellationToken,
    validity_clock: ValidityClock,
) -> anyhow::Result<Running> {
    let ca = InternalCa::from_config(&config)?;
    let in_process = match config.grpc.same_process_transport {
        SameProcessTransport::InProcess => Some(InProcessServices::new()),
        SameProcessTransport::Mtls => None,
    };
    let mut config = config;
    let mut components = Vec::new();
    for component in Component::SERVICES {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut context = context_for(
            component,
            Arc::new(config.clone()),
            &ca,
            loopback,
            shutdown.clone(),
        )?;
        context.validity_clock = validity_clock.clone();
        context.in_process = in_process.clone();
        let running = start_fn(component)(context)
            .await
            .map_err(|error| error.context(format!("{component} failed to start")))?;
        config.services.set_url_of(component, running.url());
        components.push(running);
    }
    let config = Arc::new(config);
    let mut context = context_for(
        Component::Gateway,
        config.clone(),
        &ca,
        config.listen,
        shutdown.clone(),
    )?;
    context.validity_clock = validity_clock;
    context.in_process = in_process;
    let gateway = start_fn(Component::Gateway)(context)
        .await
        .map_err(|error| error.context("gateway failed to start"))?;
    components.push(gateway);
    Ok(Running { components, config })
}

/// Starts one component on its configured address.
pub async fn start_one(
    component: Component,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    let ca = InternalCa::from_config(&config)?;
    let listen = pnc_common::runtime::ComponentContext::default_listen(component, &config);
    let config = Arc::new(config);
    let context = context_for(component, config.clone(), &ca, listen, shutdown)?;
    let running = start_fn(component)(context)
        .await
        .map_err(|error| error.context(format!("{component} failed to start")))?;
    Ok(Running {
        components: vec![running],
        config,
    })
}
