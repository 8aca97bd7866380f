//! The gRPC face of the truststore: checks what comes in, asks the store, answers in the
//! contract's types.

use pnc_common::runtime::ValidityClock;
use pnc_common::{ErrorKind, PncError};
use pnc_proto::common::v1::Certificate;
use pnc_proto::principal::{self, Role};
use pnc_proto::truststore::v1::{
    AddIntermediateRequest, FindIssuerRequest, FindIssuerResponse, GetRootRequest, KnownCa,
    KnownCaSource, ListEventsRequest, ListEventsResponse, ListKnownCasRequest,
    ListKnownCasResponse, ListRootsRequest, ListRootsResponse, PutRootRequest, Root, RootType,
    TrustEvent, find_issuer_request, trust_store_server::TrustStore,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::inspect::InspectedCa;
use crate::store::{CaSource, CertIdHashes, RootStore, StoredKnownCa, StoredRoot};

/// Events returned by one ListEvents call when the caller names no limit, and at most.
const DEFAULT_EVENTS_PAGE: u32 = 100;
const MAX_EVENTS_PAGE: u32 = 1000;
/// A Name longer than this is not a name any CA has.
const MAX_NAME_DER_BYTES: usize = 4096;
/// RFC 5280 allows any length; real SKIs are 8 or 20 bytes.
const MAX_KEY_IDENTIFIER_BYTES: usize = 64;
/// CTL tags a root may carry (OPNC rootCtlList: European CTL, American CTL).
pub const CTL_TAGS: [&str; 2] = ["european", "american"];

#[derive(Debug)]
pub struct TrustStoreService {
    store: RootStore,
    validity_clock: ValidityClock,
}

impl TrustStoreService {
    pub fn new(store: RootStore, validity_clock: ValidityClock) -> TrustStoreService {
        TrustStoreService {
            store,
            validity_clock,
        }
    }

    /// The moment certificates are judged at (the system clock outside tests).
    fn validity_now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.validity_clock.unix_now())
            .unwrap_or_else(|_| now())
    }
}

/// The name a root type has in the tables and in OPCP (`rootType`).
pub fn root_type_name(root_type: RootType) -> Option<&'static str> {
    match root_type {
        RootType::Unspecified => None,
        RootType::V2g => Some("V2G"),
        RootType::Mo => Some("MO"),
        RootType::Oem => Some("OEM"),
        RootType::Pe => Some("PE"),
        RootType::Csms => Some("CSMS"),
        RootType::Manufacturer => Some("MANUFACTURER"),
    }
}

fn root_type_from_name(name: &str) -> RootType {
    match name {
        "V2G" => RootType::V2g,
        "MO" => RootType::Mo,
        "OEM" => RootType::Oem,
        "PE" => RootType::Pe,
        "CSMS" => RootType::Csms,
        "MANUFACTURER" => RootType::Manufacturer,
        _ => RootType::Unspecified,
    }
}

fn source_message(source: CaSource) -> KnownCaSource {
    match source {
        CaSource::SeenInValidatedChain => KnownCaSource::SeenInValidatedChain,
        CaSource::RegisteredIntermediate => KnownCaSource::RegisteredIntermediate,
        CaSource::PncCa => KnownCaSource::PncCa,
        CaSource::RootPool => KnownCaSource::RootPool,
    }
}

/// Writes come from admins (through the gateway, which attaches the caller) and from
/// pnc's own services, which call without a principal: provisioning seeds pnc's dev roots
/// at first start and registers its CAs. Any other role is refused.
fn require_writer<T>(request: &Request<T>) -> Result<Option<principal::Principal>, PncError> {
    match principal::from_metadata(request.metadata()) {
        None => Ok(None),
        Some(caller) if caller.role == Role::Admin as i32 => Ok(Some(caller)),
        Some(caller) => {
            let role = Role::try_from(caller.role).unwrap_or(Role::Unspecified);
            Err(PncError::permission_denied(format!(
                "role {} may not change the trust store",
                role.name()
            )))
        }
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn certificate_der(certificate: Option<&Certificate>) -> Result<&[u8], PncError> {
    match certificate {
        Some(certificate) if !certificate.der.is_empty() => Ok(&certificate.der),
        _ => Err(PncError::invalid("the certificate is missing")),
    }
}

/// CTL tags in canonical form; unknown ones are refused.
fn ctl_tags(requested: &[String]) -> Result<Vec<String>, PncError> {
    requested
        .iter()
        .map(|tag| {
            let tag = tag.trim().to_ascii_lowercase();
            if CTL_TAGS.contains(&tag.as_str()) {
                Ok(tag)
            } else {
                Err(PncError::invalid(format!(
                    "unknown CTL tag `{tag}`; expected one of {}",
                    CTL_TAGS.join(", ")
                )))
            }
        })
        .collect()
}

/// A root ID as the store keys it: a lower-case UUID or an upper-case SHA-256 hex.
fn normalise_root_id(id: &str) -> Result<String, PncError> {
    let id = id.trim();
    if let Ok(uuid) = uuid::Uuid::parse_str(id) {
        return Ok(uuid.hyphenated().to_string());
    }
    if id.len() == 64 && id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Ok(id.to_ascii_uppercase());
    }
    Err(PncError::invalid(
        "a root ID is a UUID (rootCertificateId) or a hex SHA-256 fingerprint",
    ))
}

/// The contract's view of a stored root, with the details read from its certificate.
pub fn root_message(root: &StoredRoot) -> Result<Root, PncError> {
    let inspected = InspectedCa::parse(&root.der).map_err(|error| {
        PncError::internal(format!(
            "stored root {} does not parse: {error}",
            root.sha256_fingerprint
        ))
    })?;
    Ok(Root {
        certificate: Some(Certificate {
            der: root.der.clone(),
        }),
        root_type: root_type_from_name(&root.root_type) as i32,
        sha256_fingerprint: root.sha256_fingerprint.clone(),
        id: root.id.clone(),
        ctl_tags: root.ctl_tags.clone(),
        not_before: root.not_before,
        not_after: root.not_after,
        revoked: root.revoked,
        expired: root.expired,
        root_types: root
            .root_types
            .iter()
            .map(|name| root_type_from_name(name) as i32)
            .collect(),
        distinguished_name: inspected.distinguished_name,
        common_name: inspected.common_name,
        organization_name: inspected.organization_name,
        serial_hex: inspected.certificate.serial_hex(),
        subject_key_identifier: inspected
            .certificate
            .subject_key_identifier()
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
        sha1_fingerprint: inspected.sha1_fingerprint,
        key_algorithm: inspected.key_algorithm,
        added_at: root.added_at,
    })
}

fn known_ca_message(ca: &StoredKnownCa) -> KnownCa {
    // The DER was checked on the way in; a parse failure here leaves the URLs empty
    // rather than hiding the CA.
    let ocsp_urls = pnc_pki::Certificate::from_der(&ca.der)
        .map(|certificate| certificate.ocsp_urls().to_vec())
        .unwrap_or_default();
    KnownCa {
        certificate: Some(Certificate {
            der: ca.der.clone(),
        }),
        source: source_message(ca.source) as i32,
        root_type: ca
            .root_type
            .as_deref()
            .filter(|_| ca.source == CaSource::RootPool)
            .map(root_type_from_name)
            .unwrap_or(RootType::Unspecified) as i32,
        ocsp_urls,
        sha256_fingerprint: ca.sha256_fingerprint.clone(),
    }
}

fn parse_root_type(value: i32) -> Result<RootType, PncError> {
    RootType::try_from(value).map_err(|_| PncError::invalid(format!("unknown root type {value}")))
}

impl TrustStoreService {
    /// Checks that `intermediate` chains to an active pool root, through known CAs.
    async fn check_chains_to_pool(&self, intermediate: &InspectedCa) -> Result<(), PncError> {
        // Candidates up to two levels up (Sub-CA 2 → Sub-CA 1 → root [V2G2-009]), found by
        // issuer name and by authority key identifier.
        let mut anchors: Vec<StoredKnownCa> = Vec::new();
        let mut intermediates: Vec<StoredKnownCa> = Vec::new();
        let mut frontier = vec![intermediate.certificate.clone()];
        for _level in 0..3 {
            let mut next = Vec::new();
            for certificate in &frontier {
                let name_hash = hex::encode_upper(Sha256::digest(certificate.issuer().der()));
                let mut found = self.store.find_by_subject_name_sha256(&name_hash).await?;
                if let Some(aki) = certificate.authority_key_identifier() {
                    found.extend(
                        self.store
                            .find_by_subject_key_identifier(&hex::encode_upper(aki))
                            .await?,
                    );
                }
                for candidate in found {
                    let known = anchors
                        .iter()
                        .chain(intermediates.iter())
                        .any(|seen| seen.sha256_fingerprint == candidate.sha256_fingerprint);
                    if known || candidate.sha256_fingerprint == intermediate.sha256_fingerprint {
                        continue;
                    }
                    if candidate.source == CaSource::RootPool {
                        anchors.push(candidate);
                    } else {
                        if let Ok(parsed) = pnc_pki::Certificate::from_der(&candidate.der) {
                            next.push(parsed);
                        }
                        intermediates.push(candidate);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        if anchors.is_empty() {
            return Err(PncError::new(
                ErrorKind::CertificateChain,
                format!(
                    "{} does not chain to a root of the pool: no pool root or known CA is \
                     named `{}`",
                    intermediate.describe(),
                    intermediate.certificate.issuer()
                ),
            ));
        }
        let intermediate_ders: Vec<&[u8]> =
            intermediates.iter().map(|ca| ca.der.as_slice()).collect();
        let anchor_ders: Vec<&[u8]> = anchors.iter().map(|ca| ca.der.as_slice()).collect();
        pnc_pki::validate_path(
            intermediate.der(),
            &intermediate_ders,
            &anchor_ders,
            self.validity_now(),
        )
        .map(|_| ())
        .map_err(|error| {
            PncError::new(
                ErrorKind::CertificateChain,
                format!(
                    "{} does not chain to a root of the pool: {error}",
                    intermediate.describe()
                ),
            )
        })
    }
}

#[tonic::async_trait]
impl TrustStore for TrustStoreService {
    async fn list_roots(
        &self,
        request: Request<ListRootsRequest>,
    ) -> Result<Response<ListRootsResponse>, Status> {
        let request = request.into_inner();
        let root_type = parse_root_type(request.root_type)?;
        let roots = self
            .store
            .list_roots(root_type_name(root_type), request.include_inactive)
            .await?;
        let roots = roots
            .iter()
            .map(root_message)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(ListRootsResponse { roots }))
    }

    async fn find_issuer(
        &self,
        request: Request<FindIssuerRequest>,
    ) -> Result<Response<FindIssuerResponse>, Status> {
        let found = match request.into_inner().key {
            Some(find_issuer_request::Key::CertId(cert_id)) => {
                let algorithm = cert_id.hash_algorithm.to_ascii_lowercase().replace('-', "");
                let length = match algorithm.as_str() {
                    "sha1" => 20,
                    "sha256" => 32,
                    other => {
                        return Err(PncError::invalid(format!(
                            "unsupported CertID hash algorithm `{other}`; expected sha1 or sha256"
                        ))
                        .into());
                    }
                };
                if cert_id.issuer_name_hash.len() != length
                    || cert_id.issuer_key_hash.len() != length
                {
                    return Err(PncError::invalid(format!(
                        "{algorithm} CertID hashes are {length} bytes long"
                    ))
                    .into());
                }
                let name = hex::encode_upper(&cert_id.issuer_name_hash);
                let key = hex::encode_upper(&cert_id.issuer_key_hash);
                let hashes = if length == 20 {
                    CertIdHashes::Sha1 {
                        name: &name,
                        key: &key,
                    }
                } else {
                    CertIdHashes::Sha256 {
                        name: &name,
                        key: &key,
                    }
                };
                self.store.find_by_cert_id(hashes).await?
            }
            Some(find_issuer_request::Key::SubjectKeyIdentifier(ski)) => {
                if ski.is_empty() || ski.len() > MAX_KEY_IDENTIFIER_BYTES {
                    return Err(PncError::invalid(format!(
                        "a key identifier is 1 to {MAX_KEY_IDENTIFIER_BYTES} bytes"
                    ))
                    .into());
                }
                self.store
                    .find_by_subject_key_identifier(&hex::encode_upper(ski))
                    .await?
            }
            Some(find_issuer_request::Key::SubjectNameDer(name)) => {
                if name.is_empty() || name.len() > MAX_NAME_DER_BYTES || name[0] != 0x30 {
                    return Err(PncError::invalid("the subject name is not a DER Name").into());
                }
                self.store
                    .find_by_subject_name_sha256(&hex::encode_upper(Sha256::digest(&name)))
                    .await?
            }
            None => {
                return Err(PncError::invalid(
                    "name a CertID, a subject key identifier or a subject name",
                )
                .into());
            }
        };
        Ok(Response::new(FindIssuerResponse {
            issuers: found.iter().map(known_ca_message).collect(),
        }))
    }

    async fn put_root(&self, request: Request<PutRootRequest>) -> Result<Response<Root>, Status> {
        let caller = require_writer(&request)?;
        let request = request.into_inner();
        let root_type = parse_root_type(request.root_type)?;
        let Some(first_role) = root_type_name(root_type) else {
            return Err(PncError::invalid("the root type is missing").into());
        };
        let mut roles = vec![first_role];
        for additional in &request.additional_root_types {
            let name = root_type_name(parse_root_type(*additional)?)
                .ok_or_else(|| PncError::invalid("an additional root type is unspecified"))?;
            if !roles.contains(&name) {
                roles.push(name);
            }
        }
        let tags = ctl_tags(&request.ctl_tags)?;
        let der = certificate_der(request.certificate.as_ref())?;
        let inspected = InspectedCa::parse(der)?;
        inspected.check_root(self.validity_now())?;
        let (stored, change) = self
            .store
            .put_root(&inspected, &roles, &tags, now().unix_timestamp())
            .await?;
        tracing::info!(
            fingerprint = %stored.sha256_fingerprint,
            root_id = %stored.id,
            roles = ?stored.root_types,
            change = ?change,
            by = caller.as_ref().map(|caller| caller.client_id.as_str()).unwrap_or("a pnc service"),
            "root put"
        );
        Ok(Response::new(root_message(&stored)?))
    }

    async fn get_root(&self, request: Request<GetRootRequest>) -> Result<Response<Root>, Status> {
        let id = normalise_root_id(&request.get_ref().id)?;
        let root = self.store.root(&id).await?.ok_or_else(|| {
            PncError::not_found("Root certificate with the given ID is not found")
        })?;
        Ok(Response::new(root_message(&root)?))
    }

    async fn delete_root(
        &self,
        request: Request<GetRootRequest>,
    ) -> Result<Response<Root>, Status> {
        let caller = require_writer(&request)?;
        let id = normalise_root_id(&request.get_ref().id)?;
        let root = self
            .store
            .revoke_root(&id, now().unix_timestamp())
            .await?
            .ok_or_else(|| {
                PncError::not_found("Root certificate with the given ID is not found")
            })?;
        tracing::info!(
            fingerprint = %root.sha256_fingerprint,
            root_id = %root.id,
            by = caller.as_ref().map(|caller| caller.client_id.as_str()).unwrap_or("a pnc service"),
            "root revoked"
        );
        Ok(Response::new(root_message(&root)?))
    }

    async fn add_intermediate(
        &self,
        request: Request<AddIntermediateRequest>,
    ) -> Result<Response<KnownCa>, Status> {
        let caller = require_writer(&request)?;
        let request = request.into_inner();
        let source = match KnownCaSource::try_from(request.source) {
            Ok(KnownCaSource::RegisteredIntermediate) => CaSource::RegisteredIntermediate,
            Ok(KnownCaSource::SeenInValidatedChain) => CaSource::SeenInValidatedChain,
            // pnc's own CAs are registered by its services, not through the API.
            Ok(KnownCaSource::PncCa) if caller.is_none() => CaSource::PncCa,
            Ok(KnownCaSource::PncCa) => {
                return Err(PncError::permission_denied(
                    "only pnc's services register pnc's own CAs",
                )
                .into());
            }
            _ => {
                return Err(PncError::invalid(
                    "the source is REGISTERED_INTERMEDIATE, SEEN_IN_VALIDATED_CHAIN or PNC_CA",
                )
                .into());
            }
        };
        let der = certificate_der(request.certificate.as_ref())?;
        let inspected = InspectedCa::parse(der)?;
        if inspected.is_self_signed() {
            return Err(PncError::invalid(format!(
                "{} is a self-signed root; add it to the root pool instead",
                inspected.describe()
            ))
            .into());
        }
        inspected.check_signature_algorithm()?;
        inspected.check_ca_flags()?;
        inspected.check_validity(self.validity_now())?;
        self.check_chains_to_pool(&inspected).await?;
        let stored = self
            .store
            .put_known_ca(&inspected, source, now().unix_timestamp())
            .await?;
        tracing::info!(
            fingerprint = %stored.sha256_fingerprint,
            subject = %inspected.distinguished_name,
            source = stored.source.name(),
            "known CA added"
        );
        Ok(Response::new(known_ca_message(&stored)))
    }

    async fn list_known_cas(
        &self,
        _request: Request<ListKnownCasRequest>,
    ) -> Result<Response<ListKnownCasResponse>, Status> {
        let cas = self.store.list_known_cas().await?;
        Ok(Response::new(ListKnownCasResponse {
            cas: cas.iter().map(known_ca_message).collect(),
        }))
    }

    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_EVENTS_PAGE,
            limit => limit.min(MAX_EVENTS_PAGE),
        };
        let events = self
            .store
            .list_events(request.after_sequence.max(0), i64::from(limit))
            .await?;
        let events = events
            .iter()
            .map(|event| {
                Ok(TrustEvent {
                    sequence: event.sequence,
                    event_type: event.event_type.clone(),
                    root: Some(root_message(&event.root)?),
                    occurred_at: event.occurred_at,
                })
            })
            .collect::<Result<Vec<_>, PncError>>()?;
        Ok(Response::new(ListEventsResponse { events }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_root_ids_normalise() {
        assert_eq!(
            normalise_root_id("B1B86334-7C74-4CCC-B78D-D4F773D3B559").expect("uuid"),
            "b1b86334-7c74-4ccc-b78d-d4f773d3b559"
        );
        let fingerprint = "a76ae4c5d00e06a967554511865bfa89e79590e8a61b5a71f9ce22e039d6c370";
        assert_eq!(
            normalise_root_id(fingerprint).expect("fingerprint"),
            fingerprint.to_ascii_uppercase()
        );
    }

    #[test]
    fn fail_root_id_that_is_neither() {
        for id in ["", "root-1", "' OR 1=1 --", &"a".repeat(63)] {
            assert!(normalise_root_id(id).is_err(), "{id}");
        }
    }

    #[test]
    fn ctl_tags_are_canonical_or_refused() {
        assert_eq!(
            ctl_tags(&["European".into(), " american ".into()]).expect("tags"),
            vec!["european".to_string(), "american".to_string()]
        );
        assert!(ctl_tags(&["asian".into()]).is_err());
    }
}
