//! The ocsp service: the stapling cache for certificates of known issuers and the
//! responder for pnc's own CAs.

mod service;

use pnc_common::Component;
use pnc_common::db::{Database, Migrations};
use pnc_common::grpc::GrpcServer;
use pnc_common::runtime::{ComponentContext, RunningComponent};
use pnc_proto::ocsp::v1::ocsp_server::OcspServer;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &sqlx::migrate!("../../migrations/ocsp/postgres"),
    sqlite: &sqlx::migrate!("../../migrations/ocsp/sqlite"),
};

/// Opens storage, binds the gRPC port and serves until `context.shutdown` fires.
pub async fn start(context: ComponentContext) -> anyhow::Result<RunningComponent> {
    let database = Database::open(Component::Ocsp, &context.storage, &MIGRATIONS).await?;
    let server = GrpcServer::bind(Component::Ocsp, context.listen).await?;
    let local_addr = server.local_addr()?;
    let routes = tonic::service::Routes::new(OcspServer::new(service::OcspService));
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
    tracing::info!(%local_addr, "ocsp listening");
    Ok(RunningComponent {
        component: Component::Ocsp,
        local_addr,
        task,
    })
}
