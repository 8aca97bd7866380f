//! The registry service: the records. API clients, OEMs and their WMIs, eMSPs and their
//! provider IDs, provisioning certificates, contracts and signed contract data, issued
//! certificates, webhooks and the audit log. Like boulder's storage authority it decides
//! nothing beyond integrity.

pub mod clients;

use pnc_common::Component;
use pnc_common::db::{Database, Migrations, StorageLocation};
use pnc_common::grpc::GrpcServer;
use pnc_common::runtime::{ComponentContext, RunningComponent};
use pnc_proto::registry::v1::client_registry_server::ClientRegistryServer;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &sqlx::migrate!("../../migrations/registry/postgres"),
    sqlite: &sqlx::migrate!("../../migrations/registry/sqlite"),
};

/// Opens the registry's database (applying migrations); also used by `pnc client add`.
pub async fn open_database(storage: &StorageLocation) -> anyhow::Result<Database> {
    Ok(Database::open(Component::Registry, storage, &MIGRATIONS).await?)
}

/// Opens storage, binds the gRPC port and serves until `context.shutdown` fires.
pub async fn start(context: ComponentContext) -> anyhow::Result<RunningComponent> {
    let database = open_database(&context.storage).await?;
    let server = GrpcServer::bind(Component::Registry, context.listen).await?;
    let local_addr = server.local_addr()?;
    let clients = clients::ClientStore::new(database.clone());
    let routes = tonic::service::Routes::new(ClientRegistryServer::new(
        clients::ClientRegistryService::new(clients),
    ));
    let task = tokio::spawn(async move {
        server
            .serve(
                routes,
                &context.tls,
                Some(database),
                context.shutdown.clone(),
            )
            .await
    });
    tracing::info!(%local_addr, "registry listening");
    Ok(RunningComponent {
        component: Component::Registry,
        local_addr,
        task,
    })
}
