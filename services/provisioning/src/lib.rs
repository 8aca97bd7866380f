//! The provisioning service: the registration authority and the CA. It answers EVs
//! (CertificateInstallation), issues contract certificates and signs contract data with the
//! CPS key, holding every signing key behind the pki crate's `Signer`.
//!
//! - [`pki`]: pnc's own CA material (dev PKI, CPS chains, the contract-issuing MO Sub-CA);
//! - [`seed`]: registers pnc's roots and CAs with the truststore and registry at start;
//! - [`contract`]: issuing, sealing and signing contracts (CPU work);
//! - [`signed_data`]: the four signed elements, rendered as EXI or XML per request;
//! - [`root_ids`]: matching an EV's ListOfRootCertificateIDs to V2G roots;
//! - [`signed_data20`], [`contract20`], [`install20`]: the same for ISO 15118-20 (P-521,
//!   one SignedInstallationData per contract, several contracts per vehicle);
//! - [`install`]: the EV's CertificateInstallationReq → CertificateInstallationRes;
//! - [`oem_trust`]: the cached OEM trust view, validated Sub-CA paths, foreign OCSP status;
//! - [`update`]: the EV's CertificateUpdateReq → CertificateUpdateRes (renewal);
//! - [`service`]: the gRPC face and the RA decisions.

pub mod contract;
pub mod contract20;
pub mod install;
pub mod install20;
pub mod oem_trust;
pub mod pki;
pub mod root_ids;
pub mod seed;
pub mod service;
pub mod signed_data;
pub mod signed_data20;
pub mod update;

use std::sync::Arc;

use pnc_common::Component;
use pnc_common::db::{Database, Migrations};
use pnc_common::grpc::GrpcServer;
use pnc_common::runtime::{ComponentContext, RunningComponent};
use pnc_proto::ocsp::v1::ocsp_client::OcspClient;
use pnc_proto::provisioning::v1::provisioning_server::ProvisioningServer;
use pnc_proto::registry::v1::contracts_client::ContractsClient;
use pnc_proto::registry::v1::issued_certificates_client::IssuedCertificatesClient;
use pnc_proto::truststore::v1::trust_store_client::TrustStoreClient;

use crate::service::{Downstream, ProvisioningService};

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &sqlx::migrate!("../../migrations/provisioning/postgres"),
    sqlite: &sqlx::migrate!("../../migrations/provisioning/sqlite"),
};

/// Opens storage, loads (or on first start creates) pnc's PKI, binds the gRPC port and
/// serves until `context.shutdown` fires. Registering pnc's roots and CAs runs in the
/// background, so a truststore that is still starting does not hold this service up.
pub async fn start(context: ComponentContext) -> anyhow::Result<RunningComponent> {
    let database = Database::open(Component::Provisioning, &context.storage, &MIGRATIONS).await?;
    let config = context.config.clone();
    let holdings = Arc::new(
        tokio::task::spawn_blocking(move || pki::load_or_create(&config))
            .await
            .map_err(|error| anyhow::anyhow!("loading the pki stopped abnormally: {error}"))??,
    );
    let registry = context.connect(Component::Registry)?;
    let truststore = context.connect(Component::Truststore)?;
    let ocsp = context.connect(Component::Ocsp)?;
    let downstream = Downstream {
        contracts: ContractsClient::new(registry.clone()),
        issued: IssuedCertificatesClient::new(registry),
        truststore: TrustStoreClient::new(truststore),
    };
    tokio::spawn(seed::seed_until_done(
        holdings.clone(),
        downstream.truststore.clone(),
        downstream.issued.clone(),
        context.shutdown.clone(),
    ));
    let server = GrpcServer::bind(Component::Provisioning, context.listen).await?;
    let local_addr = server.local_addr()?;
    let own_cas: Vec<pnc_pki::Certificate> = pnc_pki::DevCert::ALL
        .iter()
        .chain(pnc_pki::DevCert::ISO20.iter())
        .map(|which| holdings.dev.certificate(*which).clone())
        .chain(
            holdings
                .extra_sub_cas
                .iter()
                .flat_map(|(sub_ca_1, sub_ca_2)| [sub_ca_1.clone(), sub_ca_2.clone()]),
        )
        .collect();
    let oem_trust = Arc::new(oem_trust::OemTrust::new(
        downstream.truststore.clone(),
        OcspClient::new(ocsp),
        own_cas,
    ));
    let routes = tonic::service::Routes::new(ProvisioningServer::new(ProvisioningService {
        holdings,
        downstream,
        enforce_emaid_check_digit: context.config.registry.enforce_emaid_check_digit,
        validity_clock: context.validity_clock.clone(),
        oem_trust,
        revocation_unavailable: context.config.pki.revocation_unavailable,
    }));
    let task = tokio::spawn(server.serve(routes, &context, Some(database)));
    tracing::info!(%local_addr, "provisioning listening");
    Ok(RunningComponent {
        component: Component::Provisioning,
        local_addr,
        task,
    })
}
