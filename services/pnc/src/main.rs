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
    /// Check the registry's hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Make and check ISO 15118 certificates.
    Pki(pnc_pki::cli::PkiArgs),
    /// Play the car: ask pnc for a contract and check the answer as an EV does.
    #[command(subcommand)]
    Ev(pnc::ev::EvCommand),
    /// Decode and encode EXI (ISO 15118-2, -20, xmldsig, AppProtocol).
    #[command(subcommand)]
    Exi(pnc_exi::cli::ExiArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (file, environment, flags) with secrets redacted.
    Print(ServeArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the whole chain; exit 1 naming the first broken entry.
    Verify(ServeArgs),
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

// glibc malloc/free was ~17 % of an installation's CPU; mimalloc is faster for the many
// small, short-lived allocations of a request (measured in docs/BENCHMARKS-install.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Audit(AuditCommand::Verify(args)) => audit_verify(args),
        Command::Pki(args) => pnc_pki::cli::run(args),
        Command::Exi(args) => pnc_exi::cli::run(args),
        Command::Ev(command) => pnc::ev::run(command),
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

fn audit_verify(args: ServeArgs) -> ExitCode {
    let storage = match args
        .load_config()
        .map_err(|error| error.to_string())
        .and_then(|config| storage_of(&config).map_err(|error| error.to_string()))
    {
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
    match runtime.block_on(pnc_registry::verify_audit_log(&storage)) {
        Ok(pnc_registry::audit::Verdict::Intact { entries }) => {
            println!("audit log intact: {entries} entries");
            ExitCode::SUCCESS
        }
        Ok(pnc_registry::audit::Verdict::Broken { sequence, reason }) => {
            eprintln!("audit log broken at entry {sequence}: {reason}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("pnc: {error:#}");
            ExitCode::from(EXIT_START)
        }
    }
}
