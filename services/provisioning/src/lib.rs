//! The provisioning service: the registration authority and the CA. It answers EVs
//! (CertificateInstallation/Update), issues contract certificates and signs contract data
//! with the CPS key, holding every signing key behind the pki crate's `Signer`.

mod service;

use pnc_common::Component;
use pnc_common::db::{Database, Migrations};
use pnc_common::grpc::GrpcServer;
use pnc_common::runtime::{ComponentContext, RunningComponent};
use pnc_proto::provisioning::v1::provisioning_server::ProvisioningServer;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &sqlx::migrate!("../../migrations/provisioning/postgres"),
    sqlite: &sqlx::migrate!("../../migrations/provisioning/sqlite"),
};

/// Opens storage, binds the gRPC port and serves until `context.shutdown` fires.
pub async fn start(context: ComponentContext) -> anyhow::Result<RunningComponent> {
    let database = Database::open(Component::Provisioning, &context.storage, &MIGRATIONS).await?;
    let server = GrpcServer::bind(Component::Provisioning, context.listen).await?;
    let local_addr = server.local_addr()?;
    let routes = tonic::service::Routes::new(ProvisioningServer::new(service::ProvisioningService));
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
    tracing::info!(%local_addr, "provisioning listening");
    Ok(RunningComponent {
        component: Component::Provisioning,
        local_addr,
        task,
    })
}
