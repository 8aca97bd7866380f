//! What every handler can reach: clients of the services, the token authority, config.

use std::sync::Arc;

use pnc_common::Component;
use pnc_common::config::Config;
use pnc_common::grpc::GrpcChannel;
use pnc_common::runtime::ComponentContext;
use pnc_proto::ocsp::v1::ocsp_client::OcspClient;
use pnc_proto::provisioning::v1::provisioning_client::ProvisioningClient;
use pnc_proto::registry::v1::client_registry_client::ClientRegistryClient;
use pnc_proto::truststore::v1::trust_store_client::TrustStoreClient;

use crate::auth::TokenAuthority;

/// The gateway's shared state. Clients are cheap to clone (one HTTP/2 connection each).
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub tokens: TokenAuthority,
    pub channels: Channels,
    /// Final OCSP answers, read-through (routes::ocsp).
    pub ocsp_answers: crate::routes::ocsp::AnswerCache,
}

/// One channel per service, reused by every request.
#[derive(Debug, Clone)]
pub struct Channels {
    pub truststore: GrpcChannel,
    pub registry: GrpcChannel,
    pub ocsp: GrpcChannel,
    pub provisioning: GrpcChannel,
}

impl Channels {
    pub fn connect(context: &ComponentContext) -> anyhow::Result<Channels> {
        Ok(Channels {
            truststore: context.connect(Component::Truststore)?,
            registry: context.connect(Component::Registry)?,
            ocsp: context.connect(Component::Ocsp)?,
            provisioning: context.connect(Component::Provisioning)?,
        })
    }

    pub fn of(&self, component: Component) -> Option<&GrpcChannel> {
        match component {
            Component::Truststore => Some(&self.truststore),
            Component::Registry => Some(&self.registry),
            Component::Ocsp => Some(&self.ocsp),
            Component::Provisioning => Some(&self.provisioning),
            Component::Gateway => None,
        }
    }
}

impl AppState {
    pub fn client_registry(&self) -> ClientRegistryClient<GrpcChannel> {
        ClientRegistryClient::new(self.channels.registry.clone())
    }

    pub fn truststore(&self) -> TrustStoreClient<GrpcChannel> {
        TrustStoreClient::new(self.channels.truststore.clone())
    }

    pub fn ocsp(&self) -> OcspClient<GrpcChannel> {
        OcspClient::new(self.channels.ocsp.clone())
    }

    pub fn provisioning(&self) -> ProvisioningClient<GrpcChannel> {
        ProvisioningClient::new(self.channels.provisioning.clone())
    }

    pub fn contracts(
        &self,
    ) -> pnc_proto::registry::v1::contracts_client::ContractsClient<GrpcChannel> {
        pnc_proto::registry::v1::contracts_client::ContractsClient::new(
            self.channels.registry.clone(),
        )
    }

    pub fn provisioning_certificates(
        &self,
    ) -> pnc_proto::registry::v1::provisioning_certificates_client::ProvisioningCertificatesClient<GrpcChannel>
    {
        pnc_proto::registry::v1::provisioning_certificates_client::ProvisioningCertificatesClient::new(
            self.channels.registry.clone(),
        )
    }

    pub fn webhooks(
        &self,
    ) -> pnc_proto::registry::v1::webhooks_client::WebhooksClient<GrpcChannel> {
        pnc_proto::registry::v1::webhooks_client::WebhooksClient::new(
            self.channels.registry.clone(),
        )
    }
}

/// A gRPC request carrying the caller's principal.
pub fn request_as<T>(principal: &pnc_proto::principal::Principal, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    pnc_proto::principal::attach(request.metadata_mut(), principal);
    request
}
