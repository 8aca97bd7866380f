//! The command-line surface shared by `pnc serve`, `pnc config print` and the per-service
//! binaries: the same flags, the same config loading, the same exit codes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::component::Component;
use crate::config::{Config, ConfigError};
use crate::db::StorageLocation;
use crate::runtime::{ComponentContext, RunningComponent, shutdown_signal};
use crate::tls::InternalCa;

/// Exit status for a configuration error (the field is named on stderr).
pub const EXIT_CONFIG: u8 = 2;
/// Exit status when start-up fails for another reason (database unreachable, port taken).
pub const EXIT_START: u8 = 1;

/// Flags of `pnc serve` and `pnc config print`. Each overrides the config file and the
/// environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded database, the internal CA and the dev PKI.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Address of the HTTP edge.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where a service run with `--only` listens for gRPC.
    #[arg(long, value_name = "ADDR")]
    pub grpc_listen: Option<SocketAddr>,
    /// Run one component: truststore, provisioning, ocsp, registry or gateway.
    #[arg(long, value_name = "COMPONENT")]
    pub only: Option<Component>,
    #[arg(long, value_name = "URL")]
    pub registry_url: Option<String>,
    #[arg(long, value_name = "URL")]
    pub truststore_url: Option<String>,
    #[arg(long, value_name = "URL")]
    pub ocsp_url: Option<String>,
    #[arg(long, value_name = "URL")]
    pub provisioning_url: Option<String>,
}

impl ServeArgs {
    /// File, then `PNC_…` environment, then these flags.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let env = std::env::vars().filter(|(name, _)| name != "PNC_CONFIG");
        let config_file = self
            .config
            .clone()
            .or_else(|| std::env::var_os("PNC_CONFIG").map(PathBuf::from));
        let mut config = Config::load(config_file.as_deref(), env)?;
        self.apply(&mut config);
        Ok(config)
    }

    pub fn apply(&self, config: &mut Config) {
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            config.database_url = Some(url.clone());
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(listen) = self.grpc_listen {
            config.grpc.listen = Some(listen);
        }
        let urls = [
            (Component::Registry, &self.registry_url),
            (Component::Truststore, &self.truststore_url),
            (Component::Ocsp, &self.ocsp_url),
            (Component::Provisioning, &self.provisioning_url),
        ];
        for (component, url) in urls {
            if let Some(url) = url {
                config.services.set_url_of(component, url.clone());
            }
        }
    }
}

/// The storage a config selects.
pub fn storage_of(config: &Config) -> Result<StorageLocation, ConfigError> {
    let url = config.effective_database_url()?;
    StorageLocation::from_config(url.as_deref(), &config.data_dir).map_err(|message| {
        ConfigError::Invalid {
            origin: "database_url".to_string(),
            message,
        }
    })
}

/// Builds the context for one component of this process.
pub fn context_for(
    component: Component,
    config: Arc<Config>,
    ca: &InternalCa,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<ComponentContext> {
    let storage = storage_of(&config)?;
    Ok(ComponentContext {
        component,
        tls: ca.issue(component)?,
        storage,
        listen,
        shutdown,
        config,
        validity_clock: crate::runtime::ValidityClock::system(),
        in_process: None,
    })
}

/// A component's start function.
pub type StartFn =
    fn(ComponentContext) -> Pin<Box<dyn Future<Output = anyhow::Result<RunningComponent>> + Send>>;

#[derive(clap::Parser)]
#[command(about = "Runs one pnc component")]
struct SingleArgs {
    #[command(flatten)]
    serve: ServeArgs,
}

/// `main` of a per-service binary: parse the serve flags, start `component`, run until
/// SIGTERM.
pub fn run_single(component: Component, start: StartFn) -> ExitCode {
    use clap::Parser;
    let args = SingleArgs::parse();
    let config = match args.serve.load_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("pnc: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    crate::telemetry::init_logging(&config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pnc: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_START);
        }
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let result = async {
            let ca = InternalCa::from_config(&config)?;
            let listen = ComponentContext::default_listen(component, &config);
            let context = context_for(component, Arc::new(config), &ca, listen, shutdown.clone())?;
            start(context).await
        }
        .await;
        let running = match result {
            Ok(running) => running,
            Err(error) => {
                eprintln!("pnc: {component} failed to start: {error:#}");
                return ExitCode::from(EXIT_START);
            }
        };
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = shutdown.cancelled() => {}
        }
        shutdown.cancel();
        match running.wait().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("pnc: {component}: {error:#}");
                ExitCode::from(EXIT_START)
            }
        }
    })
}
