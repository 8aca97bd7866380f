//! The provisioning certificate pool (OPCP PCP): one OEM provisioning chain per PCID, and
//! every OEM Sub-CA ever registered, indexed by key identifier and subject.

use std::collections::HashSet;
use std::sync::LazyLock;

use pnc_common::PncError;
use pnc_common::db::{Columns, Param, Reader, map_sqlx_error, unix_now};
use pnc_common::ids::Pcid;
use pnc_pki::{Certificate, PathError, ValidatedPath, ValidationOptions};
use pnc_proto::common::v1::Certificate as CertificateMessage;
use pnc_proto::error::ErrorKind;
use pnc_proto::principal::Role;
use pnc_proto::registry::v1::provisioning_certificates_server::ProvisioningCertificates;
use pnc_proto::registry::v1::{
    DeleteProvisioningCertificateRequest, DeleteProvisioningCertificateResponse,
    FindOemSubCasRequest, FindOemSubCasResponse, ProvisioningCertificate,
    PutProvisioningCertificateRequest, find_oem_sub_cas_request,
};
use pnc_proto::truststore::v1::{ListRootsRequest, RootType};
use sqlx::Row;
use tonic::{Request, Response, Status};

use crate::access::Caller;
use crate::audit::AuditedTransaction;
use crate::events::{Audience, Event};
use crate::{ISO2_NAMESPACE, RegistryCore};

/// [V2G2-010]: at most 800 bytes of DER per certificate (OPCP's maxLength 800 applied to
/// the decoded DER, ecosystem-apis §2.12).
pub const MAX_CERTIFICATE_DER: usize = 800;

/// [V2G2-822]: the contract key is sealed to the provisioning key by ECDH, so a KeyUsage,
/// when present, must allow keyAgreement; digitalSignature signs the EV's requests.
const KEY_USAGE_DIGITAL_SIGNATURE: u16 = 1 << 0;
const KEY_USAGE_KEY_AGREEMENT: u16 = 1 << 4;

const PCP_COLUMNS: &str = "pcid, leaf_der, sub_ca2_der, sub_ca1_der, oem_root_fingerprint, \
                           oem_root_der, xsd_msg_def_namespace, v2g_root_akis, previous_pcid, \
                           format, sub_ca2_fingerprint, sub_ca1_fingerprint, leaf_fingerprint, \
                           root_subject, root_serial, root_key_identifier";

/// Row format of the compact rows (migration 0021): CAs by fingerprint, rendered fields.
pub const FORMAT_COMPACT: i64 = 1;

pub fn parse_certificate(which: &str, der: &[u8]) -> Result<Certificate, PncError> {
    if der.is_empty() {
        return Err(PncError::invalid(format!("{which} is missing")));
    }
    if der.len() > MAX_CERTIFICATE_DER {
        return Err(PncError::invalid(format!(
            "{which} is {} bytes of DER, at most {MAX_CERTIFICATE_DER} are allowed [V2G2-010]",
            der.len()
        )));
    }
    Certificate::from_der(der)
        .map_err(|error| PncError::invalid(format!("{which} is not a DER certificate: {error}")))
}

/// A chain that does not validate, as the caller should read it.
pub fn path_error(error: PathError, anchors: &str) -> PncError {
    let kind = match &error {
        PathError::Expired { .. } | PathError::NotYetValid { .. } => ErrorKind::CertificateExpired,
        PathError::Parse { .. } => ErrorKind::InvalidArgument,
        _ => ErrorKind::CertificateChain,
    };
    let message = match &error {
        PathError::UnknownIssuer { .. } => {
            format!("the chain does not reach a registered {anchors} root: {error}")
        }
        _ => format!("certificate chain refused: {error}"),
    };
    PncError::new(kind, message)
}

/// Colon-separated hex, as OPCP writes key identifiers.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn sha256_hex_upper(der: &[u8]) -> String {
    use sha2::Digest;
    hex::encode_upper(sha2::Sha256::digest(der))
}

fn certificate_message(der: Vec<u8>) -> CertificateMessage {
    CertificateMessage { der }
}

/// AKIs of V2G roots as the OEM sent them: hex bytes separated by ':' (or not).
fn validated_akis(values: &[String]) -> Result<Vec<String>, PncError> {
    if values.len() > 20 {
        return Err(PncError::invalid(
            "at most 20 v2gRootAuthorityKeyIdentifiers are allowed",
        ));
    }
    let mut unique = Vec::new();
    for value in values {
        let compact: String = value.trim().chars().filter(|c| *c != ':').collect();
        if compact.is_empty()
            || compact.len() > 128
            || !compact.len().is_multiple_of(2)
            || !compact.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(PncError::invalid(format!(
                "v2gRootAuthorityKeyIdentifier `{}` is not hex bytes (e.g. 4e:7c:ae:c1)",
                value.chars().take(40).collect::<String>()
            )));
        }
        let normalised = colon_hex(&hex::decode(&compact).unwrap_or_default());
        if !unique.contains(&normalised) {
            unique.push(normalised);
        }
    }
    Ok(unique)
}

/// The OPCP view of an OEM root: RFC 4514 subject, lower-case hex serial, AKI (or SKI).
pub fn root_view(root: &Certificate) -> (String, String, String) {
    (
        root.subject().to_string(),
        root.serial_hex().to_ascii_lowercase(),
        root.authority_key_identifier()
            .or(root.subject_key_identifier())
            .map(colon_hex)
            .unwrap_or_default(),
    )
}

impl RegistryCore {
    /// Builds the answer from stored columns. Compact rows need no parsing; their CAs come
    /// from `ca_certificates` (cached). Older rows are rendered as before.
    pub async fn record_from_row(
        &self,
        connection: &mut impl Reader,
        row: &impl Columns,
    ) -> Result<ProvisioningCertificate, PncError> {
        let format = row.int("format")?;
        let leaf = row.blob("leaf_der")?;
        let mut sub_ca2 = row.blob("sub_ca2_der")?;
        let sub_ca2_fingerprint = row.text("sub_ca2_fingerprint")?;
        if sub_ca2.is_empty() && !sub_ca2_fingerprint.is_empty() {
            sub_ca2 = self
                .cas
                .der(connection, &sub_ca2_fingerprint)
                .await?
                .to_vec();
        }
        let mut sub_ca1 = row.blob("sub_ca1_der")?;
        let sub_ca1_fingerprint = row.text("sub_ca1_fingerprint")?;
        if sub_ca1.is_empty() && !sub_ca1_fingerprint.is_empty() {
            sub_ca1 = self
                .cas
                .der(connection, &sub_ca1_fingerprint)
                .await?
                .to_vec();
        }
        let oem_root_fingerprint = row.text("oem_root_fingerprint")?;
        let mut root_der = row.blob("oem_root_der")?;
        if root_der.is_empty() {
            root_der = self
                .cas
                .der(connection, &oem_root_fingerprint)
                .await?
                .to_vec();
        }
        let (fingerprint, (root_subject, root_serial, root_key_identifier)) =
            if format >= FORMAT_COMPACT {
                (
                    row.text("leaf_fingerprint")?,
                    (
                        row.text("root_subject")?,
                        row.text("root_serial")?,
                        row.text("root_key_identifier")?,
                    ),
                )
            } else {
                let root = Certificate::from_der(&root_der).map_err(|error| {
                    PncError::internal(format!("stored OEM root does not parse: {error}"))
                })?;
                (
                    sha256_hex_upper(&leaf).to_ascii_lowercase(),
                    root_view(&root),
                )
            };
        let mut sub_cas = Vec::new();
        if !sub_ca2.is_empty() {
            sub_cas.push(certificate_message(sub_ca2));
        }
        sub_cas.push(certificate_message(sub_ca1));
        let akis = row.text("v2g_root_akis")?;
        Ok(ProvisioningCertificate {
            pcid: row.text("pcid")?,
            fingerprint,
            certificate: Some(certificate_message(leaf)),
            sub_cas,
            oem_root_fingerprint,
            root_issuer_distinguished_name: root_subject,
            root_issuer_serial_number: root_serial,
            root_authority_key_identifier: root_key_identifier,
            oem_root: Some(certificate_message(root_der)),
            xsd_msg_def_namespace: row.text("xsd_msg_def_namespace")?,
            v2g_root_authority_key_identifiers: if akis == "[]" {
                Vec::new()
            } else {
                serde_json::from_str(&akis).unwrap_or_default()
            },
            previous_pcid: row.text("previous_pcid")?,
        })
    }
}

impl RegistryCore {
    /// The OEM roots of the pool, from the truststore.
    pub async fn oem_roots(&self) -> Result<Vec<Vec<u8>>, PncError> {
        let response = self
            .truststore()
            .list_roots(ListRootsRequest {
                root_type: RootType::Oem as i32,
                ..ListRootsRequest::default()
            })
            .await
            .map_err(|status| {
                let error = PncError::from(status);
                PncError::unavailable(format!(
                    "cannot read the OEM roots from the truststore: {}",
                    error.message
                ))
            })?
            .into_inner();
        Ok(response
            .roots
            .into_iter()
            .filter(|root| !root.revoked)
            .filter_map(|root| root.certificate.map(|certificate| certificate.der))
            .collect())
    }

    /// Checks a provisioning chain (OPCP PCP upload checks) and returns the validated path.
    /// Under the -2 `namespace` the chain must be ECDSA P-256 / SHA-256 throughout
    /// [V2G2-006], [V2G2-007]; under -20, ECDSA P-521 / SHA-512 or Ed448 [V2G20-2674],
    /// [V2G20-2319].
    pub async fn validate_provisioning_chain(
        &self,
        leaf: &Certificate,
        sub_cas: &[Certificate],
        namespace: &str,
    ) -> Result<ValidatedPath, PncError> {
        if leaf.is_ca() {
            return Err(PncError::invalid(
                "the provisioning certificate is a CA certificate (BasicConstraints CA:TRUE)",
            ));
        }
        if let Some(key_usage) = leaf.key_usage() {
            let needed = KEY_USAGE_DIGITAL_SIGNATURE | KEY_USAGE_KEY_AGREEMENT;
            if key_usage.flags & needed != needed {
                return Err(PncError::invalid(
                    "the provisioning certificate's KeyUsage must allow digitalSignature and \
                     keyAgreement [V2G2-822]",
                ));
            }
        }
        if leaf.public_key_uncompressed().is_none() && !leaf.public_key_is_ed448() {
            return Err(PncError::invalid(
                "the provisioning certificate's key is not an EC or Ed448 key",
            ));
        }
        let anchors = self.oem_roots().await?;
        let anchor_refs: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
        let intermediate_refs: Vec<&[u8]> = sub_cas.iter().map(Certificate::der).collect();
        let options = if namespace == ISO2_NAMESPACE {
            ValidationOptions::default().iso2()
        } else {
            ValidationOptions::default().iso20()
        };
        pnc_pki::validate_path_with(
            &options,
            leaf.der(),
            &intermediate_refs,
            &anchor_refs,
            self.validity_now(),
        )
        .map_err(|error| path_error(error, "OEM"))
    }

    pub async fn put_provisioning_certificate(
        &self,
        caller: &Caller,
        request: PutProvisioningCertificateRequest,
    ) -> Result<ProvisioningCertificate, PncError> {
        caller.require_role(&[Role::Oem])?;
        let leaf = parse_certificate(
            "the provisioning certificate",
            &request.certificate.map(|c| c.der).unwrap_or_default(),
        )?;
        if request.sub_cas.is_empty() || request.sub_cas.len() > 2 {
            return Err(PncError::invalid(
                "give Sub-CA 1 and, if the chain has one, Sub-CA 2",
            ));
        }
        let sub_cas = request
            .sub_cas
            .iter()
            .enumerate()
            .map(|(index, certificate)| {
                parse_certificate(
                    &format!("sub-CA certificate #{}", index + 1),
                    &certificate.der,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let common_name = leaf.common_name().unwrap_or_default();
        let pcid = Pcid::parse(common_name).map_err(|_| {
            PncError::invalid(format!(
                "the provisioning certificate's CN `{}` is not a PCID (17 or 18 letters or digits)",
                common_name.chars().take(40).collect::<String>()
            ))
        })?;
        // The WMI check comes first (OPCP: first failure returned, WMI before validity).
        caller.require_wmi_of(&pcid)?;
        let previous_pcid = match request.previous_pcid.trim() {
            "" => String::new(),
            previous => Pcid::parse(previous)?.as_str().to_string(),
        };
        let namespace = match request.xsd_msg_def_namespace.trim() {
            "" => ISO2_NAMESPACE.to_string(),
            other => crate::normalise_namespace(other)?,
        };
        let akis = validated_akis(&request.v2g_root_authority_key_identifiers)?;
        let path = self
            .validate_provisioning_chain(&leaf, &sub_cas, &namespace)
            .await?;
        let intermediates = path.intermediates();
        let (sub_ca2, sub_ca1) = match intermediates {
            [sub_ca1] => (Vec::new(), sub_ca1.der().to_vec()),
            [sub_ca2, sub_ca1] => (sub_ca2.der().to_vec(), sub_ca1.der().to_vec()),
            _ => {
                return Err(PncError::new(
                    ErrorKind::CertificateChain,
                    "the provisioning certificate must be issued by an OEM Sub-CA, not by the root",
                ));
            }
        };
        let root = path.anchor();
        let pcid_key = pcid.lookup_key();
        let now = unix_now();

        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        let existing = sqlx::query(&format!(
            "SELECT {PCP_COLUMNS} FROM provisioning_certificates WHERE pcid_key = $1"
        ))
        .bind(&pcid_key)
        .fetch_optional(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        let before = existing
            .as_ref()
            .map(|row| row.try_get::<Vec<u8>, _>("leaf_der"))
            .transpose()
            .map_err(map_sqlx_error)?;
        let sub_ca2_fingerprint = if sub_ca2.is_empty() {
            String::new()
        } else {
            self.cas
                .store(transaction.connection(), &sub_ca2, now)
                .await?
        };
        let sub_ca1_fingerprint = self
            .cas
            .store(transaction.connection(), &sub_ca1, now)
            .await?;
        let root_fingerprint = self
            .cas
            .store(transaction.connection(), root.der(), now)
            .await?;
        let (root_subject, root_serial, root_key_identifier) = root_view(root);
        sqlx::query(
            "INSERT INTO provisioning_certificates (pcid_key, pcid, wmi, leaf_der, sub_ca2_der, \
             sub_ca1_der, oem_root_fingerprint, oem_root_der, xsd_msg_def_namespace, \
             v2g_root_akis, previous_pcid, not_after, created_by, created_at, updated_at, \
             format, sub_ca2_fingerprint, sub_ca1_fingerprint, leaf_fingerprint, root_subject, \
             root_serial, root_key_identifier) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22) \
             ON CONFLICT (pcid_key) DO UPDATE SET pcid = excluded.pcid, \
             leaf_der = excluded.leaf_der, sub_ca2_der = excluded.sub_ca2_der, \
             sub_ca1_der = excluded.sub_ca1_der, \
             oem_root_fingerprint = excluded.oem_root_fingerprint, \
             oem_root_der = excluded.oem_root_der, \
             xsd_msg_def_namespace = excluded.xsd_msg_def_namespace, \
             v2g_root_akis = excluded.v2g_root_akis, previous_pcid = excluded.previous_pcid, \
             not_after = excluded.not_after, updated_at = excluded.updated_at, \
             format = excluded.format, sub_ca2_fingerprint = excluded.sub_ca2_fingerprint, \
             sub_ca1_fingerprint = excluded.sub_ca1_fingerprint, \
             leaf_fingerprint = excluded.leaf_fingerprint, \
             root_subject = excluded.root_subject, root_serial = excluded.root_serial, \
             root_key_identifier = excluded.root_key_identifier",
        )
        .bind(&pcid_key)
        .bind(pcid.as_str())
        .bind(pcid.wmi().as_str())
        .bind(leaf.der())
        .bind(Vec::<u8>::new())
        .bind(Vec::<u8>::new())
        .bind(&root_fingerprint)
        .bind(Vec::<u8>::new())
        .bind(&namespace)
        .bind(serde_json::to_string(&akis).unwrap_or_else(|_| "[]".into()))
        .bind(&previous_pcid)
        .bind(leaf.not_after().unix_timestamp())
        .bind(caller.actor().0)
        .bind(now)
        .bind(now)
        .bind(FORMAT_COMPACT)
        .bind(&sub_ca2_fingerprint)
        .bind(&sub_ca1_fingerprint)
        .bind(sha256_hex_upper(leaf.der()).to_ascii_lowercase())
        .bind(&root_subject)
        .bind(&root_serial)
        .bind(&root_key_identifier)
        .execute(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        for sub_ca in intermediates {
            sqlx::query(
                "INSERT INTO oem_sub_cas (fingerprint, subject_key_id, subject_name_der, der, \
                 wmi, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (fingerprint) DO NOTHING",
            )
            .bind(sha256_hex_upper(sub_ca.der()))
            .bind(sub_ca.subject_key_identifier().unwrap_or_default())
            .bind(sub_ca.subject().der())
            .bind(sub_ca.der())
            .bind(pcid.wmi().as_str())
            .bind(now)
            .execute(transaction.connection())
            .await
            .map_err(map_sqlx_error)?;
        }
        let action = if before.is_some() {
            "pcp.update"
        } else {
            "pcp.create"
        };
        transaction
            .record(action, pcid.as_str(), before.as_deref(), Some(leaf.der()))
            .await?;
        // An update notifies the eMSPs with contracts on the vehicle (OPCP PCP).
        if before.is_some() {
            let contracts = self
                .contracts_of_pcid(transaction.connection(), &pcid_key, false)
                .await?;
            let events: Vec<Event> = contracts
                .iter()
                .filter_map(|contract| {
                    let emaid = pnc_common::ids::Emaid::parse(&contract.emaid).ok()?;
                    Some(Event::contract(
                        "mo.prov.cert.updated",
                        Audience::Emsp(emaid.provider_id()),
                        &emaid,
                        &pcid,
                        None,
                    ))
                })
                .collect();
            crate::events::emit(transaction.connection(), &events).await?;
        }
        let row = sqlx::query(&format!(
            "SELECT {PCP_COLUMNS} FROM provisioning_certificates WHERE pcid_key = $1"
        ))
        .bind(&pcid_key)
        .fetch_one(transaction.connection())
        .await
        .map_err(map_sqlx_error)?;
        let record = self.record_from_row(transaction.connection(), &row).await?;
        transaction.commit().await?;
        tracing::info!(pcid = %pcid, updated = before.is_some(), "provisioning certificate stored");
        Ok(record)
    }

    pub async fn get_provisioning_certificate(
        &self,
        caller: &Caller,
        pcid: &str,
    ) -> Result<ProvisioningCertificate, PncError> {
        let pcid = Pcid::parse(pcid)?;
        caller.require_pcp_read(&pcid)?;
        let mut connection = self.database.connection().await?;
        self.provisioning_certificate_on(&mut connection, &pcid)
            .await?
            .ok_or_else(|| {
                PncError::not_found(format!("no provisioning certificate for PCID {pcid}"))
            })
    }

    /// The PCID's provisioning certificate record, if any, on a connection the caller holds;
    /// the caller has checked read access.
    pub(crate) async fn provisioning_certificate_on(
        &self,
        connection: &mut impl Reader,
        pcid: &Pcid,
    ) -> Result<Option<ProvisioningCertificate>, PncError> {
        static SELECT: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {PCP_COLUMNS} FROM provisioning_certificates WHERE pcid_key = $1")
        });
        let pcid_key = pcid.lookup_key();
        let rows = connection
            .select(&SELECT, &[Param::Text(&pcid_key)])
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(self.record_from_row(connection, row).await?)),
            None => Ok(None),
        }
    }

    pub async fn delete_provisioning_certificate(
        &self,
        caller: &Caller,
        pcid: &str,
    ) -> Result<DeleteProvisioningCertificateResponse, PncError> {
        let pcid = Pcid::parse(pcid)?;
        caller.require_role(&[Role::Oem])?;
        caller.require_wmi_of(&pcid)?;
        let pcid_key = pcid.lookup_key();
        let existing = self
            .get_provisioning_certificate(&Caller::Service, pcid.as_str())
            .await?;
        let contracts = {
            let mut connection = self.database.connection().await?;
            self.contracts_of_pcid(&mut connection, &pcid_key, true)
                .await?
        };
        // OPCP: operator-issued contract certificates are revoked first; if revocation
        // fails, nothing is deleted.
        let mut revoked = 0;
        for contract in contracts.iter().filter(|contract| !contract.cancelled) {
            if self
                .revoke_contract_certificate(contract, REASON_CESSATION)
                .await?
            {
                revoked += 1;
            }
        }
        let mut transaction = AuditedTransaction::begin(&self.database, caller).await?;
        for table in [
            "signed_contract_data",
            "contracts",
            "provisioning_certificates",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE pcid_key = $1"))
                .bind(&pcid_key)
                .execute(transaction.connection())
                .await
                .map_err(map_sqlx_error)?;
        }
        let leaf_der = existing
            .certificate
            .as_ref()
            .map(|certificate| certificate.der.clone())
            .unwrap_or_default();
        transaction
            .record("pcp.delete", pcid.as_str(), Some(&leaf_der), None)
            .await?;
        let mut events = Vec::new();
        for contract in &contracts {
            let Ok(emaid) = pnc_common::ids::Emaid::parse(&contract.emaid) else {
                continue;
            };
            let contract_bytes = prost::Message::encode_to_vec(contract);
            transaction
                .record(
                    "contract.delete",
                    &format!("{pcid}/{emaid}"),
                    Some(&contract_bytes),
                    None,
                )
                .await?;
            if contract.cancelled {
                continue;
            }
            events.push(Event::contract(
                "mo.prov.cert.deleted",
                Audience::Emsp(emaid.provider_id()),
                &emaid,
                &pcid,
                None,
            ));
            events.push(Event::contract(
                "oem.contract.deleted",
                Audience::Oem(pcid.wmi()),
                &emaid,
                &pcid,
                None,
            ));
        }
        crate::events::emit(transaction.connection(), &events).await?;
        transaction.commit().await?;
        tracing::info!(pcid = %pcid, contracts = contracts.len(), revoked, "provisioning certificate deleted");
        Ok(DeleteProvisioningCertificateResponse {
            deleted: Some(existing),
            contracts,
            revoked_certificates: revoked,
        })
    }

    pub async fn find_oem_sub_cas(
        &self,
        caller: &Caller,
        key: Option<find_oem_sub_cas_request::Key>,
    ) -> Result<Vec<CertificateMessage>, PncError> {
        caller.require_role(&[])?;
        let (column, value) = match key {
            Some(find_oem_sub_cas_request::Key::SubjectKeyIdentifier(value))
                if !value.is_empty() =>
            {
                ("subject_key_id", value)
            }
            Some(find_oem_sub_cas_request::Key::SubjectNameDer(value)) if !value.is_empty() => {
                ("subject_name_der", value)
            }
            _ => {
                return Err(PncError::invalid(
                    "give a subject key identifier or a subject name",
                ));
            }
        };
        let rows = sqlx::query(&format!(
            "SELECT der FROM oem_sub_cas WHERE {column} = $1 ORDER BY created_at LIMIT 50"
        ))
        .bind(value)
        .fetch_all(self.database.pool())
        .await
        .map_err(map_sqlx_error)?;
        let mut seen = HashSet::new();
        rows.iter()
            .map(|row| row.try_get::<Vec<u8>, _>("der").map_err(map_sqlx_error))
            .filter(|der| der.as_ref().map_or(true, |der| seen.insert(der.clone())))
            .map(|der| der.map(certificate_message))
            .collect()
    }
}

/// RFC 5280 CRLReason cessationOfOperation: the vehicle left the pool.
pub const REASON_CESSATION: i32 = 5;

/// The gRPC face of the pool.
#[derive(Debug, Clone)]
pub struct ProvisioningCertificatesService {
    core: RegistryCore,
}

impl ProvisioningCertificatesService {
    pub fn new(core: RegistryCore) -> ProvisioningCertificatesService {
        ProvisioningCertificatesService { core }
    }
}

#[tonic::async_trait]
impl ProvisioningCertificates for ProvisioningCertificatesService {
    async fn put_provisioning_certificate(
        &self,
        request: Request<PutProvisioningCertificateRequest>,
    ) -> Result<Response<ProvisioningCertificate>, Status> {
        let caller = Caller::of(&request);
        let record = self
            .core
            .put_provisioning_certificate(&caller, request.into_inner())
            .await?;
        Ok(Response::new(record))
    }

    async fn delete_provisioning_certificate(
        &self,
        request: Request<DeleteProvisioningCertificateRequest>,
    ) -> Result<Response<DeleteProvisioningCertificateResponse>, Status> {
        let caller = Caller::of(&request);
        let response = self
            .core
            .delete_provisioning_certificate(&caller, &request.get_ref().pcid)
            .await?;
        Ok(Response::new(response))
    }

    async fn find_oem_sub_cas(
        &self,
        request: Request<FindOemSubCasRequest>,
    ) -> Result<Response<FindOemSubCasResponse>, Status> {
        let caller = Caller::of(&request);
        let sub_cas = self
            .core
            .find_oem_sub_cas(&caller, request.into_inner().key)
            .await?;
        Ok(Response::new(FindOemSubCasResponse { sub_cas }))
    }
}
