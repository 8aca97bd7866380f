//! `pnc`: one binary for every component and the operator's tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pnc_common::cli::{EXIT_CONFIG, EXIT_START, ServeArgs, storage_of};
use pnc_proto::principal::Role;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "pnc",
    version,
    about = "Open ISO 15118 Plug & Charge backend",
    long_about = "pnc answers EVs' certificate requests, keeps the root pool, the OEM and eMSP \
                  registry and an OCSP cache. `pnc serve` runs everything in one process."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run pnc: every component in one process, or one with --only.
    Serve(ServeArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage API clients.
    #[command(subcommand)]
    Client(ClientCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (file, environment, flags) with secrets redacted.
    Print(ServeArgs),
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register an API client and print its credentials as JSON (the secret is shown once).
    Add(ClientAddArgs),
}

#[derive(clap::Args)]
struct ClientAddArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// A name for the client, e.g. the company.
    #[arg(long)]
    name: String,
    /// admin, oem, emsp, cpo or charger.
    #[arg(long)]
    role: String,
    /// A WMI an OEM client may act for (repeatable).
    #[arg(long = "wmi")]
    wmis: Vec<String>,
    /// A provider ID (e.g. DE-PNC) an eMSP client may act for (repeatable).
    #[arg(long = "provider-id")]
    provider_ids: Vec<String>,
    /// An operator ID (e.g. DE*PNC) a CPO client may act for (repeatable).
    #[arg(long = "operator-id")]
    operator_ids: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Config(ConfigCommand::Print(args)) => match args.load_config() {
            Ok(config) => {
                print!("{}", config.redacted());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("pnc: {error}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Client(ClientCommand::Add(args)) => client_add(args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|error| {
        eprintln!("pnc: cannot start the async runtime: {error}");
        ExitCode::from(EXIT_START)
    })
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match args.load_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("pnc: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(error) = storage_of(&config) {
        eprintln!("pnc: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    pnc_common::telemetry::init_logging(&config.log);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let started = match args.only {
            Some(component) => pnc::serve::start_one(component, config, shutdown.clone()).await,
            None => pnc::serve::start_all(config, shutdown.clone()).await,
        };
        let running = match started {
            Ok(running) => running,
            Err(error) => {
                shutdown.cancel();
                eprintln!("pnc: {error:#}");
                return ExitCode::from(EXIT_START);
            }
        };
        for component in &running.components {
            tracing::info!(component = %component.component, address = %component.local_addr, "started");
        }
        pnc_common::runtime::shutdown_signal().await;
        shutdown.cancel();
        match running.wait().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("pnc: {error:#}");
                ExitCode::from(EXIT_START)
            }
        }
    })
}

fn client_add(args: ClientAddArgs) -> ExitCode {
    let config = match args.serve.load_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("pnc: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let Some(role) = Role::from_name(&args.role) else {
        eprintln!(
            "pnc: unknown role `{}`; expected admin, oem, emsp, cpo or charger",
            args.role
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    let storage = match storage_of(&config) {
        Ok(storage) => storage,
        Err(error) => {
            eprintln!("pnc: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let database = match pnc_registry::open_database(&storage).await {
            Ok(database) => database,
            Err(error) => {
                eprintln!("pnc: {error:#}");
                return ExitCode::from(EXIT_START);
            }
        };
        let store = pnc_registry::clients::ClientStore::new(database);
        let created = store
            .create(pnc_registry::clients::NewClient {
                name: args.name,
                role,
                wmis: args.wmis,
                provider_ids: args.provider_ids,
                operator_ids: args.operator_ids,
            })
            .await;
        match created {
            Ok(credentials) => {
                println!(
                    "{}",
                    serde_json::json!({
                        "client_id": credentials.client_id,
                        "client_secret": credentials.client_secret,
                    })
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("pnc: {}", error.message);
                ExitCode::from(match error.kind {
                    pnc_common::ErrorKind::InvalidArgument => EXIT_CONFIG,
                    _ => EXIT_START,
                })
            }
        }
    })
}
