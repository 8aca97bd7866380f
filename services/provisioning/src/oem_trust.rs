//! The OEM side of an installation's trust decisions, cached: the truststore's OEM roots and
//! OEM Sub-CAs, validated OEM Sub-CA paths with their issuer key decoded once, and the OCSP
//! status of foreign OEM certificates.
//!
//! Every vehicle of an OEM shares the same Sub-CAs and root, so re-fetching, re-parsing and
//! re-verifying them per request (four truststore calls and three ECDSA verifications) was
//! most of an installation's cost. What is cached and for how long:
//!
//! - the OEM roots of the pool and the truststore's Sub-CAs by subject name:
//!   [`TRUST_VIEW_TTL`]. A root retired from the pool or a Sub-CA removed from the
//!   truststore stops being used within that time;
//! - a validated path above the leaf ([`IssuerPath`]), keyed by the exact DERs of every
//!   candidate Sub-CA and every anchor, so any change of the trust view or of the PCID's
//!   registered Sub-CAs is a different key; at most [`PATH_TTL`]. Each request still checks
//!   the leaf's signature, validity and extensions and the issuers' validity at the request
//!   time; anything but success falls back to full validation, so errors read as before;
//! - OCSP answers of foreign certificates: until their nextUpdate, at most [`OCSP_TTL`]
//!   (the OCSP service below keeps its own cache by the same rule).
//!
//! Revocation of pnc-issued certificates is read from the registry on every request.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use pnc_common::PncError;
use pnc_common::grpc::GrpcChannel;
use pnc_pki::{
    AlgorithmPolicy, Certificate, IssuerPath, PathError, ValidatedPath, ValidationOptions,
};
use pnc_proto::ocsp::v1::ocsp_client::OcspClient;
use pnc_proto::ocsp::v1::{CertId, CertStatus, GetStatusRequest, HashAlgorithm};
use pnc_proto::truststore::v1::trust_store_client::TrustStoreClient;
use pnc_proto::truststore::v1::{
    AddIntermediateRequest, FindIssuerRequest, KnownCaSource, ListRootsRequest, RootType,
    find_issuer_request,
};
use time::OffsetDateTime;

use crate::service::forward;

/// How long the truststore's OEM roots and Sub-CAs are reused.
pub const TRUST_VIEW_TTL: Duration = Duration::from_secs(30);
/// How long a validated OEM Sub-CA path is reused at most.
pub const PATH_TTL: Duration = Duration::from_secs(300);
/// How long an OCSP answer is reused at most (less when its nextUpdate is sooner).
pub const OCSP_TTL: Duration = Duration::from_secs(300);
/// Sub-CA names, paths, OCSP answers: a few per OEM; bounded against floods of strangers.
const CAPACITY: u64 = 4096;
/// Sub-CA 2, then Sub-CA 1 [V2G2-009].
const WALK_DEPTH: usize = 2;

/// What a status look-up for one foreign certificate found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignStatus {
    Good,
    Revoked,
    /// No answer could be had, or the responder answered `unknown`.
    Unavailable(String),
}

#[derive(Clone)]
struct CachedStatus {
    status: ForeignStatus,
    /// Unix seconds; the answer is not used past it.
    next_update: i64,
}

pub struct OemTrust {
    truststore: TrustStoreClient<GrpcChannel>,
    ocsp: OcspClient<GrpcChannel>,
    roots: Cache<(), Arc<Vec<Certificate>>>,
    sub_cas_by_name: Cache<Vec<u8>, Arc<Vec<Certificate>>>,
    paths: Cache<[u8; 32], Arc<IssuerPath>>,
    statuses: Cache<[u8; 32], CachedStatus>,
    /// SHA-256 of pnc's own CA certificates: what they issued is in the issuance records.
    own_cas: Vec<[u8; 32]>,
}

impl std::fmt::Debug for OemTrust {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OemTrust")
            .field("paths", &self.paths.entry_count())
            .finish_non_exhaustive()
    }
}

/// The sha2 crate, not OpenSSL 3, whose one-shot digests look the algorithm up on every call.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The value of the subjectPublicKey BIT STRING of a SubjectPublicKeyInfo (RFC 6960
/// issuerKeyHash input).
fn subject_public_key_bits(spki: &[u8]) -> Option<&[u8]> {
    /// One DER TLV: (tag, contents, rest).
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (length, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 2 || rest.len() < count {
                return None;
            }
            let length = rest[..count]
                .iter()
                .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
            (length, &rest[count..])
        };
        (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
    }
    let (0x30, body, _) = tlv(spki)? else {
        return None;
    };
    let (0x30, _, rest) = tlv(body)? else {
        return None;
    };
    let (0x03, bits, _) = tlv(rest)? else {
        return None;
    };
    // The first content octet counts unused bits; keys use whole octets.
    bits.split_first()
        .and_then(|(unused, key)| (*unused == 0).then_some(key))
}

impl OemTrust {
    pub fn new(
        truststore: TrustStoreClient<GrpcChannel>,
        ocsp: OcspClient<GrpcChannel>,
        own_cas: impl IntoIterator<Item = Certificate>,
    ) -> OemTrust {
        OemTrust {
            truststore,
            ocsp,
            roots: Cache::builder().time_to_live(TRUST_VIEW_TTL).build(),
            sub_cas_by_name: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(TRUST_VIEW_TTL)
                .build(),
            paths: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(PATH_TTL)
                .build(),
            statuses: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(OCSP_TTL)
                .build(),
            own_cas: own_cas
                .into_iter()
                .filter(Certificate::is_ca)
                .map(|ca| ca.sha256_fingerprint())
                .collect(),
        }
    }

    /// Whether `issuer` is one of pnc's own CAs.
    pub fn is_own_ca(&self, issuer: &Certificate) -> bool {
        self.own_cas.contains(&issuer.sha256_fingerprint())
    }

    /// The active OEM roots of the pool (not retired, not expired).
    pub async fn oem_roots(&self) -> Result<Arc<Vec<Certificate>>, PncError> {
        let truststore = self.truststore.clone();
        self.roots
            .try_get_with((), async move {
                let roots = truststore
                    .clone()
                    .list_roots(forward(
                        None,
                        ListRootsRequest {
                            root_type: RootType::Oem as i32,
                            ..ListRootsRequest::default()
                        },
                    ))
                    .await
                    .map_err(PncError::from)?
                    .into_inner()
                    .roots;
                Ok::<_, PncError>(Arc::new(
                    roots
                        .into_iter()
                        .filter(|root| !root.revoked)
                        .filter_map(|root| root.certificate)
                        .filter_map(|certificate| Certificate::from_der(&certificate.der).ok())
                        .collect(),
                ))
            })
            .await
            .map_err(|error| (*error).clone())
    }

    /// The CAs the truststore knows (every chain an OEM registered, pnc's own) with this
    /// subject name, roots of the pool excluded.
    async fn sub_cas_named(&self, name_der: &[u8]) -> Result<Arc<Vec<Certificate>>, PncError> {
        let truststore = self.truststore.clone();
        let name = name_der.to_vec();
        self.sub_cas_by_name
            .try_get_with(name.clone(), async move {
                let found = truststore
                    .clone()
                    .find_issuer(forward(
                        None,
                        FindIssuerRequest {
                            key: Some(find_issuer_request::Key::SubjectNameDer(name)),
                        },
                    ))
                    .await
                    .map_err(PncError::from)?
                    .into_inner();
                Ok::<_, PncError>(Arc::new(
                    found
                        .issuers
                        .into_iter()
                        .filter(|known| known.source != KnownCaSource::RootPool as i32)
                        .filter_map(|known| known.certificate)
                        .filter_map(|certificate| Certificate::from_der(&certificate.der).ok())
                        .collect(),
                ))
            })
            .await
            .map_err(|error| (*error).clone())
    }

    /// Walks up from the leaf by issuer name: Sub-CA 2, then Sub-CA 1.
    pub async fn sub_cas_above(&self, leaf: &Certificate) -> Result<Vec<Certificate>, PncError> {
        let mut found: Vec<Certificate> = Vec::new();
        let mut wanted = leaf.issuer().der().to_vec();
        for _ in 0..WALK_DEPTH {
            let level = self.sub_cas_named(&wanted).await?;
            let Some(last) = level.last() else {
                break;
            };
            wanted = last.issuer().der().to_vec();
            for certificate in level.iter() {
                if !found.contains(certificate) {
                    found.push(certificate.clone());
                }
            }
        }
        Ok(found)
    }

    /// Validates `leaf` through `sub_cas` to `roots` at `now` under `options`: the cached
    /// issuer path when the inputs are the same as when it was built and the leaf validates
    /// through it, the full validation otherwise (whose result is then cached).
    pub async fn validate(
        &self,
        leaf: &Certificate,
        registered_sub_cas: &[Vec<u8>],
        known_sub_cas: &[Certificate],
        roots: &[Certificate],
        now: OffsetDateTime,
        options: &ValidationOptions,
    ) -> Result<ValidatedPath, PathError> {
        let mut intermediates: Vec<&[u8]> = Vec::new();
        for der in registered_sub_cas
            .iter()
            .map(Vec::as_slice)
            .chain(known_sub_cas.iter().map(Certificate::der))
        {
            if !intermediates.contains(&der) {
                intermediates.push(der);
            }
        }
        let anchors: Vec<&[u8]> = roots.iter().map(Certificate::der).collect();
        let key = path_key(leaf, &intermediates, &anchors, options.algorithms);
        if let Some(cached) = self.paths.get(&key).await
            && let Some(path) = cached.validate_leaf(options, leaf, now)
        {
            return Ok(path);
        }
        let path = pnc_pki::validate_path_with(options, leaf.der(), &intermediates, &anchors, now)?;
        self.remember_sub_cas(&path, known_sub_cas).await;
        if let Some(issuers) = IssuerPath::from_validated(&path, options.algorithms) {
            self.paths.insert(key, Arc::new(issuers)).await;
        }
        Ok(path)
    }

    /// Sub-CAs of a validated path that only a PCP registration named become known CAs of
    /// the truststore (SEEN_IN_VALIDATED_CHAIN), root side first: the OCSP service finds a
    /// certificate's issuer there, so a vehicle's status can be asked for. Best effort: a
    /// failure leaves the status unavailable, which `pki.revocation_unavailable` governs.
    async fn remember_sub_cas(&self, path: &ValidatedPath, known_sub_cas: &[Certificate]) {
        let unknown: Vec<&Certificate> = path
            .intermediates()
            .iter()
            .rev()
            .filter(|sub_ca| !known_sub_cas.contains(sub_ca) && !self.is_own_ca(sub_ca))
            .collect();
        if unknown.is_empty() {
            return;
        }
        for sub_ca in unknown {
            let added = self
                .truststore
                .clone()
                .add_intermediate(forward(
                    None,
                    AddIntermediateRequest {
                        certificate: Some(pnc_proto::common::v1::Certificate {
                            der: sub_ca.der().to_vec(),
                        }),
                        source: KnownCaSource::SeenInValidatedChain as i32,
                    },
                ))
                .await;
            match added {
                Ok(_) => {
                    tracing::info!(subject = %sub_ca.subject(), "an OEM Sub-CA seen in a validated chain is now a known CA");
                }
                Err(status) => {
                    tracing::warn!(subject = %sub_ca.subject(), error = %status.message(), "could not make an OEM Sub-CA a known CA");
                    break;
                }
            }
        }
        self.sub_cas_by_name.invalidate_all();
    }

    /// The OCSP status of a certificate pnc did not issue, through the OCSP service (which
    /// fetches from the responders the truststore knows for `issuer`, and caches).
    pub async fn foreign_status(
        &self,
        certificate: &Certificate,
        issuer: &Certificate,
    ) -> ForeignStatus {
        let key = sha256(certificate.der());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if let Some(cached) = self.statuses.get(&key).await
            && now < cached.next_update
        {
            return cached.status;
        }
        let Some(key_bits) = subject_public_key_bits(issuer.public_key_spki_der()) else {
            return ForeignStatus::Unavailable("the issuer's key does not parse".into());
        };
        let request = GetStatusRequest {
            cert_id: Some(CertId {
                hash_algorithm: HashAlgorithm::Sha256 as i32,
                issuer_name_hash: sha256(issuer.subject().der()).to_vec(),
                issuer_key_hash: sha256(key_bits).to_vec(),
                serial: certificate.serial().to_vec(),
            }),
            responder_url_hint: String::new(),
            certificate: Some(pnc_proto::common::v1::Certificate {
                der: certificate.der().to_vec(),
            }),
        };
        let answer = match self.ocsp.clone().get_status(forward(None, request)).await {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                let error = PncError::from(status);
                return ForeignStatus::Unavailable(format!(
                    "no OCSP status for {}: {}",
                    certificate.subject(),
                    error.message
                ));
            }
        };
        let status = match CertStatus::try_from(answer.status) {
            Ok(CertStatus::Good) => ForeignStatus::Good,
            Ok(CertStatus::Revoked) => ForeignStatus::Revoked,
            _ => ForeignStatus::Unavailable(format!(
                "the OCSP responder does not know {}",
                certificate.subject()
            )),
        };
        if !matches!(status, ForeignStatus::Unavailable(_)) && answer.next_update > now {
            self.statuses
                .insert(
                    key,
                    CachedStatus {
                        status: status.clone(),
                        next_update: answer.next_update,
                    },
                )
                .await;
        }
        status
    }
}

/// What a validation depends on besides the leaf's own fields: the leaf's issuer name and
/// AKI (which candidates the search tries), every candidate Sub-CA, every anchor and the
/// algorithm policy (-2 and -20 judge the same Sub-CAs differently).
fn path_key(
    leaf: &Certificate,
    intermediates: &[&[u8]],
    anchors: &[&[u8]],
    algorithms: AlgorithmPolicy,
) -> [u8; 32] {
    let mut intermediate_hashes: Vec<[u8; 32]> =
        intermediates.iter().map(|der| sha256(der)).collect();
    intermediate_hashes.sort_unstable();
    let mut anchor_hashes: Vec<[u8; 32]> = anchors.iter().map(|der| sha256(der)).collect();
    anchor_hashes.sort_unstable();
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(match algorithms {
        AlgorithmPolicy::Any => b"any",
        AlgorithmPolicy::Iso2 => b"is2",
        AlgorithmPolicy::Iso20 => b"i20",
    });
    for part in [
        leaf.issuer().der(),
        leaf.authority_key_identifier().unwrap_or_default(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update((intermediate_hashes.len() as u64).to_be_bytes());
    for hash in &intermediate_hashes {
        hasher.update(hash);
    }
    hasher.update((anchor_hashes.len() as u64).to_be_bytes());
    for hash in &anchor_hashes {
        hasher.update(hash);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_subject_public_key_bits_of_an_ec_key() {
        let key = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("group"),
        )
        .expect("key");
        let point = key
            .public_key()
            .to_bytes(
                key.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut openssl::bn::BigNumContext::new().expect("ctx"),
            )
            .expect("point");
        let spki = openssl::pkey::PKey::from_ec_key(key)
            .expect("pkey")
            .public_key_to_der()
            .expect("spki");
        assert_eq!(subject_public_key_bits(&spki), Some(point.as_slice()));
        assert_eq!(subject_public_key_bits(&spki[..spki.len() - 1]), None);
        assert_eq!(subject_public_key_bits(&[0x30, 0x00]), None);
    }
}
