//! The truststore service: the root pool (V2G, MO, OEM, PE, CSMS and manufacturer roots)
//! and the intermediate CAs pnc knows. It answers "which anchors for this use" and "who
//! issued this", keeps an outbox of pool events for the registry's webhook dispatcher, and
//! calls no other service.
//!
//! Layout: [`inspect`] reads and checks certificates, [`store`] owns the tables,
//! `service` is the gRPC face, `expiry` the background watch.

mod expiry;
pub mod inspect;
mod service;
pub mod store;

use std::time::Duration;

use pnc_common::Component;
use pnc_common::db::{Database, Migrations};
use pnc_common::grpc::GrpcServer;
use pnc_common::runtime::{ComponentContext, RunningComponent};
use pnc_proto::truststore::v1::trust_store_server::TrustStoreServer;

pub use service::{CTL_TAGS, root_message, root_type_name};

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &sqlx::migrate!("../../migrations/truststore/postgres"),
    sqlite: &sqlx::migrate!("../../migrations/truststore/sqlite"),
};

/// Opens the truststore's database (applying migrations).
pub async fn open_database(context: &ComponentContext) -> anyhow::Result<Database> {
    Ok(Database::open(Component::Truststore, &context.storage, &MIGRATIONS).await?)
}

/// Opens storage, starts the expiry watch, binds the gRPC port and serves until
/// `context.shutdown` fires.
pub async fn start(context: ComponentContext) -> anyhow::Result<RunningComponent> {
    let database = open_database(&context).await?;
    let server = GrpcServer::bind(Component::Truststore, context.listen).await?;
    let local_addr = server.local_addr()?;
    let store = store::RootStore::new(database.clone());
    let interval = Duration::from_secs(
        context
            .config
            .truststore
            .expiry_watch_interval_seconds
            .max(1),
    );
    tokio::spawn(expiry::watch(
        store.clone(),
        interval,
        context.validity_clock.clone(),
        context.shutdown.clone(),
    ));
    let routes = tonic::service::Routes::new(TrustStoreServer::new(
        service::TrustStoreService::new(store, context.validity_clock.clone()),
    ));
    let task = tokio::spawn(server.serve(routes, &context, Some(database)));
    tracing::info!(%local_addr, "truststore listening");
    Ok(RunningComponent {
        component: Component::Truststore,
        local_addr,
        task,
    })
}
