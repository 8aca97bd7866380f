//! What the registry's services share: storage, settings, the truststore client and the
//! issued-certificate store.

use std::sync::Arc;

use pnc_common::PncError;
use pnc_common::config::RegistryConfig;
use pnc_common::db::Database;
use pnc_common::grpc::GrpcChannel;
use pnc_common::runtime::ValidityClock;
use pnc_proto::truststore::v1::trust_store_client::TrustStoreClient;

use crate::ca::CaCertificates;
use crate::issued::IssuedStore;

/// ISO 15118-2's message namespace, the default of every OPCP `xsdMsgDefNamespace`.
pub const ISO2_NAMESPACE: &str = "urn:iso:15118:2:2013:MsgDef";
/// The -20 namespace as RCP and webhooks write it; the EST/OPNC and schema spellings are
/// normalised to it (ecosystem-apis §2.12).
pub const ISO20_NAMESPACE: &str = "urn:iso:15118:20:2022:MsgDef";

/// Normalises an `xsdMsgDefNamespace`.
pub fn normalise_namespace(value: &str) -> Result<String, PncError> {
    match value.trim() {
        ISO2_NAMESPACE => Ok(ISO2_NAMESPACE.to_string()),
        ISO20_NAMESPACE
        | "urn:iso:15118:20:2020:MsgDef"
        | "urn:iso:std:iso:15118:-20:CommonMessages" => Ok(ISO20_NAMESPACE.to_string()),
        other => Err(PncError::invalid(format!(
            "unknown xsdMsgDefNamespace `{}`",
            other.chars().take(80).collect::<String>()
        ))),
    }
}

#[derive(Clone)]
pub struct RegistryCore {
    pub database: Database,
    pub config: Arc<RegistryConfig>,
    pub issued: IssuedStore,
    /// CA certificates of the stored chains, by fingerprint.
    pub cas: CaCertificates,
    /// The moment certificate validity is judged at (the system clock outside tests).
    pub validity_clock: ValidityClock,
    truststore_channel: GrpcChannel,
}

impl std::fmt::Debug for RegistryCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCore")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl RegistryCore {
    pub fn new(
        database: Database,
        config: RegistryConfig,
        truststore_channel: GrpcChannel,
        validity_clock: ValidityClock,
    ) -> RegistryCore {
        RegistryCore {
            validity_clock,
            issued: IssuedStore::new(database.clone()),
            cas: CaCertificates::default(),
            database,
            config: Arc::new(config),
            truststore_channel,
        }
    }

    /// The moment certificates are judged at.
    pub fn validity_now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(self.validity_clock.unix_now())
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
    }

    pub fn truststore(&self) -> TrustStoreClient<GrpcChannel> {
        TrustStoreClient::new(self.truststore_channel.clone())
    }
}
