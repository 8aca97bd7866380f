//! The registry service: the records. API clients, OEMs and their WMIs, eMSPs and their
//! provider IDs, provisioning certificates, contracts and signed contract data, issued
//! certificates, webhooks and the audit log. Like boulder's storage authority it decides
//! nothing beyond integrity.

pub mod access;
pub mod audit;
pub mod ca;
pub mod clients;
pub mod contracts;
mod core;
pub mod events;
mod installation;
pub mod issued;
pub mod pcp;
pub mod signed;
pub mod webhooks;

pub use crate::core::{ISO2_NAMESPACE, ISO20_NAMESPACE, RegistryCore, normalise_namespace};

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
    ))
    .add_service(
        pnc_proto::registry::v1::issued_certificates_server::IssuedCertificatesServer::new(
            issued::IssuedCertificatesService::new(issued::IssuedStore::new(database.clone())),
        ),
    );
    let core = RegistryCore::new(
        database.clone(),
        context.config.registry.clone(),
        context.connect(Component::Truststore)?,
        context.validity_clock.clone(),
    );
    let routes = routes
        .add_service(
            pnc_proto::registry::v1::contracts_server::ContractsServer::new(
                contracts::ContractsService::new(core.clone()),
            ),
        )
        .add_service(
            pnc_proto::registry::v1::provisioning_certificates_server::ProvisioningCertificatesServer::new(
                pcp::ProvisioningCertificatesService::new(core.clone()),
            ),
        )
        .add_service(pnc_proto::registry::v1::webhooks_server::WebhooksServer::new(
            webhooks::WebhooksService::new(core.clone()),
        ))
        .add_service(
            pnc_proto::registry::v1::contract_data_pool_server::ContractDataPoolServer::new(
                signed::ContractDataPoolService::new(core.clone()),
            ),
        );
    let dispatcher = webhooks::Dispatcher::new(core)?;
    tokio::spawn(dispatcher.run(context.shutdown.clone()));
    let task = tokio::spawn(server.serve(routes, &context, Some(database)));
    tracing::info!(%local_addr, "registry listening");
    Ok(RunningComponent {
        component: Component::Registry,
        local_addr,
        task,
    })
}

/// `pnc audit verify`: checks the registry's audit chain.
pub async fn verify_audit_log(storage: &StorageLocation) -> anyhow::Result<audit::Verdict> {
    let database = open_database(storage).await?;
    Ok(audit::verify(&database).await?)
}
