//! The ocsp service: the stapling cache for certificates of known issuers and the
//! responder for pnc's own CAs.
//!
//! - [`der`], [`cert_id`], [`codec`]: OCSP and CRL encoding, request parsing, upstream
//!   response verification;
//! - [`engine`]: the cache (memory + tables), single flight, refresh, own answers;
//! - [`own`]: pnc's CAs, their OCSP signers and CRLs;
//! - [`upstream`]: the HTTP client for upstream responders;
//! - [`store`]: the ocsp tables;
//! - [`prefetch`]: the background refresher;
//! - [`authorize`]: OCPP C07 contract checks;
//! - [`service`]: the gRPC face.

pub mod authorize;
pub mod cert_id;
pub mod codec;
pub mod der;
pub mod engine;
pub mod own;
pub mod prefetch;
pub mod service;
pub mod store;
pub mod upstream;

use std::sync::Arc;

use pnc_common::Component;
use pnc_common::db::{Database, Migrations};
use pnc_common::grpc::GrpcServer;
use pnc_common::runtime::{ComponentContext, RunningComponent};
use pnc_proto::ocsp::v1::ocsp_server::OcspServer;
use pnc_proto::registry::v1::contracts_client::ContractsClient;
use pnc_proto::registry::v1::issued_certificates_client::IssuedCertificatesClient;
use pnc_proto::truststore::v1::trust_store_client::TrustStoreClient;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &sqlx::migrate!("../../migrations/ocsp/postgres"),
    sqlite: &sqlx::migrate!("../../migrations/ocsp/sqlite"),
};

/// Opens storage, binds the gRPC port and serves until `context.shutdown` fires.
pub async fn start(context: ComponentContext) -> anyhow::Result<RunningComponent> {
    let database = Database::open(Component::Ocsp, &context.storage, &MIGRATIONS).await?;
    let server = GrpcServer::bind(Component::Ocsp, context.listen).await?;
    let local_addr = server.local_addr()?;
    let registry = context.connect(Component::Registry)?;
    let downstream = engine::Downstream {
        truststore: TrustStoreClient::new(context.connect(Component::Truststore)?),
        issued: IssuedCertificatesClient::new(registry.clone()),
        contracts: ContractsClient::new(registry),
    };
    let engine = Arc::new(engine::Engine::new(
        &context.config,
        store::ResponseStore::new(database.clone()),
        downstream,
    )?);
    tokio::spawn(prefetch::run(engine.clone(), context.shutdown.clone()));
    let routes = tonic::service::Routes::new(OcspServer::new(service::OcspService::new(engine)));
    let task = tokio::spawn(server.serve(routes, &context, Some(database)));
    tracing::info!(%local_addr, "ocsp listening");
    Ok(RunningComponent {
        component: Component::Ocsp,
        local_addr,
        task,
    })
}
