//! Path validation for foreign certificates (OEM provisioning chains, contract chains, CPS
//! chains, charger certificates).
//!
//! Strict where security depends on it (signatures, validity, CA constraints, path length,
//! algorithms), lenient where the field deviates harmlessly (iso15118-notes §11.3). Every
//! leniency is a named [`Leniency`], switchable in [`ValidationOptions`], logged at debug and
//! reported in [`ValidatedPath::leniencies`].
//!
//! Signatures: ECDSA and RSA with SHA-2, and Ed448 (RFC 8410, OID 1.3.101.113: ISO 15118-20
//! allows an OEM PKI that is Ed448 throughout [V2G20-2319]). [`AlgorithmPolicy::Iso2`]
//! narrows a path to what ISO 15118-2 allows (ecdsa-with-SHA256 and P-256 keys only),
//! [`AlgorithmPolicy::Iso20`] to what -20 allows (ECDSA P-521 with SHA-512, or Ed448).
//!
//! Typed errors let the provisioning service pick the ISO ResponseCode:
//! [`PathError::Expired`] → `FAILED_CertificateExpired`, [`PathError::BadSignature`] →
//! `FAILED_CertChainError` / `FAILED_SignatureError` by position, and so on.

use std::fmt;

use openssl::hash::MessageDigest;
use time::OffsetDateTime;

use crate::certificate::Certificate;
use crate::public_key::PublicKey;

/// A named, logged tolerance for real-world deviations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leniency {
    /// A leaf without KeyUsage (every Hubject QA leaf). RFC 5280: absent means unrestricted;
    /// a strict reading of [V2G2-822] would reject them.
    LeafWithoutKeyUsage,
    /// A leaf without BasicConstraints (Hubject QA leaves): treated as `CA:FALSE`.
    LeafWithoutBasicConstraints,
    /// BasicConstraints encoding the DEFAULT `cA FALSE` explicitly (Hubject CPS leaves):
    /// BER, not DER; OpenSSL accepts it, strict DER parsers do not.
    ExplicitDefaultBasicConstraints,
    /// Issuer and subject names hold the same attributes in a different RDN order.
    RdnOrder,
    /// A trust anchor carrying ExtendedKeyUsage (Hubject's `V2G Root CA G2` has OCSPSigning);
    /// EKU on anchors is ignored.
    AnchorExtendedKeyUsage,
}

impl Leniency {
    pub const ALL: [Leniency; 5] = [
        Leniency::LeafWithoutKeyUsage,
        Leniency::LeafWithoutBasicConstraints,
        Leniency::ExplicitDefaultBasicConstraints,
        Leniency::RdnOrder,
        Leniency::AnchorExtendedKeyUsage,
    ];
}

/// Which signature algorithms and keys a path may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AlgorithmPolicy {
    /// ECDSA and RSA with SHA-256/384/512, and pure Ed448; SHA-1 and MD5 are refused.
    #[default]
    Any,
    /// ISO 15118-2: every signature ecdsa-with-SHA256 [V2G2-006], every key on secp256r1
    /// [V2G2-007], from the leaf to the trust anchor.
    Iso2,
    /// ISO 15118-20: every signature ECDSA with SHA-512 [V2G20-2674] or Ed448
    /// [V2G20-2319], every key on secp521r1 or Ed448, from the leaf to the trust anchor.
    Iso20,
}

/// Validation settings.
#[derive(Clone, Debug)]
pub struct ValidationOptions {
    /// Leniencies that may be applied; any other deviation fails.
    pub allowed_leniencies: Vec<Leniency>,
    /// Maximum number of intermediates between leaf and anchor: 2 (Sub-CA 2 and Sub-CA 1)
    /// [V2G2-009].
    pub max_intermediates: usize,
    /// The signature algorithms and keys the path may use.
    pub algorithms: AlgorithmPolicy,
}

impl Default for ValidationOptions {
    /// Lenient: every [`Leniency`] allowed (foreign certificates).
    fn default() -> Self {
        Self {
            allowed_leniencies: Leniency::ALL.to_vec(),
            max_intermediates: 2,
            algorithms: AlgorithmPolicy::Any,
        }
    }
}

impl ValidationOptions {
    /// No leniency at all.
    pub fn strict() -> Self {
        Self {
            allowed_leniencies: Vec::new(),
            max_intermediates: 2,
            algorithms: AlgorithmPolicy::Any,
        }
    }

    /// These options narrowed to what ISO 15118-2 allows ([`AlgorithmPolicy::Iso2`]).
    pub fn iso2(self) -> Self {
        Self {
            algorithms: AlgorithmPolicy::Iso2,
            ..self
        }
    }

    /// These options narrowed to what ISO 15118-20 allows ([`AlgorithmPolicy::Iso20`]).
    pub fn iso20(self) -> Self {
        Self {
            algorithms: AlgorithmPolicy::Iso20,
            ..self
        }
    }
}

/// Where in the path a certificate sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertPosition {
    Leaf,
    /// 1 = the leaf's issuer (Sub-CA 2), 2 = its issuer (Sub-CA 1).
    Intermediate(usize),
    Anchor,
}

impl fmt::Display for CertPosition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Leaf => formatter.write_str("leaf"),
            Self::Intermediate(level) => write!(formatter, "intermediate {level}"),
            Self::Anchor => formatter.write_str("trust anchor"),
        }
    }
}

/// Why a path does not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("{which} does not parse: {reason}")]
    Parse { which: String, reason: String },
    #[error("{which} ({subject}) expired at {not_after}")]
    Expired {
        which: CertPosition,
        subject: String,
        not_after: OffsetDateTime,
    },
    #[error("{which} ({subject}) is not valid before {not_before}")]
    NotYetValid {
        which: CertPosition,
        subject: String,
        not_before: OffsetDateTime,
    },
    #[error("no issuer found for {subject} (issuer {issuer})")]
    UnknownIssuer { subject: String, issuer: String },
    #[error("chain error: {reason}")]
    ChainError { reason: String },
    #[error("bad signature on {which} ({subject})")]
    BadSignature {
        which: CertPosition,
        subject: String,
    },
    #[error("{which} ({subject}) uses the refused algorithm {algorithm}")]
    WeakAlgorithm {
        which: CertPosition,
        subject: String,
        algorithm: String,
    },
    #[error("{which} ({subject}) uses the unsupported algorithm {algorithm}")]
    UnsupportedAlgorithm {
        which: CertPosition,
        subject: String,
        algorithm: String,
    },
    #[error("path has {intermediates} intermediates, at most {max} allowed [V2G2-009]")]
    PathTooLong { intermediates: usize, max: usize },
    #[error("{which} ({subject}) needs leniency {leniency:?}, which is not allowed")]
    LeniencyRefused {
        which: CertPosition,
        subject: String,
        leniency: Leniency,
    },
}

/// A validated path, leaf first, trust anchor last.
#[derive(Clone, Debug)]
pub struct ValidatedPath {
    pub certificates: Vec<Certificate>,
    /// Leniencies applied, with the certificate they were applied to.
    pub leniencies: Vec<(CertPosition, Leniency)>,
}

impl ValidatedPath {
    pub fn leaf(&self) -> &Certificate {
        &self.certificates[0]
    }

    pub fn anchor(&self) -> &Certificate {
        &self.certificates[self.certificates.len() - 1]
    }

    /// The intermediates, leaf-side first.
    pub fn intermediates(&self) -> &[Certificate] {
        let count = self.certificates.len();
        if count <= 2 {
            &[]
        } else {
            &self.certificates[1..count - 1]
        }
    }
}

/// Validates `leaf` against `anchors` with `intermediates` in any order, at time `at`,
/// with the lenient defaults of [`ValidationOptions::default`].
pub fn validate_path(
    leaf_der: &[u8],
    intermediates: &[&[u8]],
    anchors: &[&[u8]],
    at: OffsetDateTime,
) -> Result<ValidatedPath, PathError> {
    validate_path_with(
        &ValidationOptions::default(),
        leaf_der,
        intermediates,
        anchors,
        at,
    )
}

const OID_ECDSA_SHA1: &str = "1.2.840.10045.4.1";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
/// id-Ed448 (RFC 8410): the signature algorithm and the key algorithm.
const OID_ED448: &str = "1.3.101.113";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_SECP256R1: &str = "1.2.840.10045.3.1.7";
const OID_SECP521R1: &str = "1.3.132.0.35";
const OID_RSA_SHA1: &str = "1.2.840.113549.1.1.5";
const OID_RSA_MD5: &str = "1.2.840.113549.1.1.4";
const OID_RSA_MD2: &str = "1.2.840.113549.1.1.2";
const OID_DSA_SHA1: &str = "1.2.840.10040.4.3";

/// How a certificate's signature is checked.
#[derive(Clone, Copy)]
enum Scheme {
    /// ECDSA over a digest of the TBS; the issuer key must be EC.
    Ecdsa(MessageDigest),
    /// RSA PKCS #1 v1.5 over a digest of the TBS; the issuer key must be RSA.
    Rsa(MessageDigest),
    /// Pure Ed448 over the TBS itself (RFC 8410 §6: no hash, empty context).
    Ed448,
}

/// The scheme of a signature algorithm OID; `Err(true)` for a weak one, `Err(false)` for
/// one pnc does not verify.
fn scheme_for(oid: &str) -> Result<Scheme, bool> {
    match oid {
        OID_ECDSA_SHA256 => Ok(Scheme::Ecdsa(MessageDigest::sha256())),
        "1.2.840.10045.4.3.3" => Ok(Scheme::Ecdsa(MessageDigest::sha384())),
        OID_ECDSA_SHA512 => Ok(Scheme::Ecdsa(MessageDigest::sha512())),
        "1.2.840.113549.1.1.11" => Ok(Scheme::Rsa(MessageDigest::sha256())),
        "1.2.840.113549.1.1.12" => Ok(Scheme::Rsa(MessageDigest::sha384())),
        "1.2.840.113549.1.1.13" => Ok(Scheme::Rsa(MessageDigest::sha512())),
        OID_ED448 => Ok(Scheme::Ed448),
        OID_ECDSA_SHA1 | OID_RSA_SHA1 | OID_RSA_MD5 | OID_RSA_MD2 | OID_DSA_SHA1 => Err(true),
        _ => Err(false),
    }
}

/// Verifies `signature` over `tbs` with `key` under `scheme`; a key of another type than
/// the scheme's, or any error, is `false`.
fn verifies_with(scheme: Scheme, key: &PublicKey, tbs: &[u8], signature: &[u8]) -> bool {
    let pkey_of = |id: openssl::pkey::Id| key.as_pkey().filter(|key| key.id() == id);
    match scheme {
        Scheme::Ecdsa(digest) => key.verifies_ecdsa(digest, tbs, signature),
        Scheme::Rsa(digest) => pkey_of(openssl::pkey::Id::RSA).is_some_and(|key| {
            openssl::sign::Verifier::new(digest, key)
                .and_then(|mut verifier| {
                    verifier.update(tbs)?;
                    verifier.verify(signature)
                })
                .unwrap_or(false)
        }),
        Scheme::Ed448 => pkey_of(openssl::pkey::Id::ED448).is_some_and(|key| {
            openssl::sign::Verifier::new_without_digest(key)
                .and_then(|mut verifier| verifier.verify_oneshot(signature, tbs))
                .unwrap_or(false)
        }),
    }
}

fn subject_of(certificate: &Certificate) -> String {
    certificate.subject().to_string()
}

/// Refuses weak and unknown signature algorithms on `certificate`, and under an edition's
/// policy every algorithm that edition does not allow.
fn check_algorithm(
    certificate: &Certificate,
    which: CertPosition,
    policy: AlgorithmPolicy,
) -> Result<Scheme, PathError> {
    let oid = certificate.signature_algorithm_oid();
    let unsupported = |algorithm: String| PathError::UnsupportedAlgorithm {
        which,
        subject: subject_of(certificate),
        algorithm,
    };
    let name = |oid: &str| match oid {
        OID_ECDSA_SHA1 => "ecdsa-with-SHA1".to_owned(),
        OID_RSA_SHA1 => "sha1WithRSAEncryption".to_owned(),
        OID_RSA_MD5 => "md5WithRSAEncryption".to_owned(),
        OID_ED448 => "Ed448".to_owned(),
        other => other.to_owned(),
    };
    let refused_by_edition = match policy {
        AlgorithmPolicy::Any => None,
        AlgorithmPolicy::Iso2 => (oid != OID_ECDSA_SHA256)
            .then_some("ISO 15118-2 allows only ecdsa-with-SHA256 [V2G2-006]"),
        AlgorithmPolicy::Iso20 => (oid != OID_ECDSA_SHA512 && oid != OID_ED448).then_some(
            "ISO 15118-20 allows only ecdsa-with-SHA512 [V2G20-2674] and Ed448 [V2G20-2319]",
        ),
    };
    if let Some(rule) = refused_by_edition
        && scheme_for(oid).is_ok()
    {
        return Err(unsupported(format!("{} ({rule})", name(oid))));
    }
    // RFC 8410 §3: the Ed448 AlgorithmIdentifier has no parameters.
    if oid == OID_ED448 && certificate.parsed().signature_params_present {
        return Err(unsupported("Ed448 with parameters".to_owned()));
    }
    scheme_for(oid).map_err(|weak| {
        let algorithm = name(oid);
        if weak {
            PathError::WeakAlgorithm {
                which,
                subject: subject_of(certificate),
                algorithm,
            }
        } else {
            PathError::UnsupportedAlgorithm {
                which,
                subject: subject_of(certificate),
                algorithm,
            }
        }
    })
}

/// Under an edition's policy, refuses a key that edition does not allow: -2 only secp256r1
/// [V2G2-007]; -20 secp521r1 or Ed448 [V2G20-2674], [V2G20-2319].
fn check_key(
    certificate: &Certificate,
    which: CertPosition,
    policy: AlgorithmPolicy,
) -> Result<(), PathError> {
    let parsed = certificate.parsed();
    let is_ec_on = |curve: &str| {
        parsed.public_key_algorithm_oid == OID_EC_PUBLIC_KEY
            && parsed.public_key_curve_oid.as_deref() == Some(curve)
    };
    let rule = match policy {
        AlgorithmPolicy::Any => return Ok(()),
        AlgorithmPolicy::Iso2 if is_ec_on(OID_SECP256R1) => return Ok(()),
        AlgorithmPolicy::Iso20
            if is_ec_on(OID_SECP521R1) || parsed.public_key_algorithm_oid == OID_ED448 =>
        {
            return Ok(());
        }
        AlgorithmPolicy::Iso2 => "ISO 15118-2 allows only P-256 keys [V2G2-007]",
        AlgorithmPolicy::Iso20 => "ISO 15118-20 allows only P-521 and Ed448 keys",
    };
    let key = if parsed.public_key_algorithm_oid == OID_ED448 {
        "Ed448 key".to_owned()
    } else if parsed.public_key_algorithm_oid == OID_EC_PUBLIC_KEY {
        format!(
            "EC key on curve {}",
            parsed
                .public_key_curve_oid
                .as_deref()
                .unwrap_or("(unnamed)")
        )
    } else {
        format!("{} key", parsed.public_key_algorithm_oid)
    };
    Err(PathError::UnsupportedAlgorithm {
        which,
        subject: subject_of(certificate),
        algorithm: format!("{key} ({rule})"),
    })
}

fn signature_verifies(child: &Certificate, parent: &Certificate, scheme: Scheme) -> bool {
    let Ok(key) = PublicKey::of(parent) else {
        return false;
    };
    let parsed = child.parsed();
    verifies_with(scheme, &key, &parsed.tbs_der, &parsed.signature_value)
}

enum NameMatch {
    Exact,
    ReorderedRdns,
    No,
}

fn issued_by(child: &Certificate, parent: &Certificate) -> NameMatch {
    // Key identifiers disambiguate re-keyed CAs with the same name.
    if let (Some(aki), Some(ski)) = (
        child.authority_key_identifier(),
        parent.subject_key_identifier(),
    ) {
        if aki != ski {
            return NameMatch::No;
        }
    }
    if child.issuer().matches(parent.subject()) {
        NameMatch::Exact
    } else if child.issuer().matches_ignoring_order(parent.subject()) {
        NameMatch::ReorderedRdns
    } else {
        NameMatch::No
    }
}

struct Search<'a> {
    intermediates: &'a [Certificate],
    anchors: &'a [Certificate],
    depth_limit: usize,
    policy: AlgorithmPolicy,
    /// Remembered failure when a name matched but the signature did not verify.
    bad_signature: Option<PathError>,
}

/// A found chain: indexes into intermediates (leaf-side first), the anchor index, and
/// whether an RDN-order leniency was needed at each link.
struct Found {
    intermediates: Vec<usize>,
    anchor: usize,
    reordered: Vec<CertPosition>,
}

impl Search<'_> {
    fn find(
        &mut self,
        current: &Certificate,
        position: CertPosition,
        used: &mut Vec<usize>,
        reordered: &mut Vec<CertPosition>,
    ) -> Result<Option<Found>, PathError> {
        let scheme = check_algorithm(current, position, self.policy)?;
        for (index, anchor) in self.anchors.iter().enumerate() {
            let name = issued_by(current, anchor);
            if matches!(name, NameMatch::No) {
                continue;
            }
            if signature_verifies(current, anchor, scheme) {
                let mut reordered = reordered.clone();
                if matches!(name, NameMatch::ReorderedRdns) {
                    reordered.push(position);
                }
                return Ok(Some(Found {
                    intermediates: used.clone(),
                    anchor: index,
                    reordered,
                }));
            }
            self.bad_signature.get_or_insert(PathError::BadSignature {
                which: position,
                subject: subject_of(current),
            });
        }
        if used.len() >= self.depth_limit {
            return Ok(None);
        }
        for (index, candidate) in self.intermediates.iter().enumerate() {
            if used.contains(&index) {
                continue;
            }
            let name = issued_by(current, candidate);
            if matches!(name, NameMatch::No) {
                continue;
            }
            if !signature_verifies(current, candidate, scheme) {
                self.bad_signature.get_or_insert(PathError::BadSignature {
                    which: position,
                    subject: subject_of(current),
                });
                continue;
            }
            used.push(index);
            let pushed = matches!(name, NameMatch::ReorderedRdns);
            if pushed {
                reordered.push(position);
            }
            let next_position = CertPosition::Intermediate(used.len());
            let found = self.find(candidate, next_position, used, reordered)?;
            if pushed {
                reordered.pop();
            }
            used.pop();
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

/// [`validate_path`] with explicit options.
pub fn validate_path_with(
    options: &ValidationOptions,
    leaf_der: &[u8],
    intermediates: &[&[u8]],
    anchors: &[&[u8]],
    at: OffsetDateTime,
) -> Result<ValidatedPath, PathError> {
    let parse = |which: String, der: &[u8]| {
        Certificate::from_der(der).map_err(|error| PathError::Parse {
            which,
            reason: error.to_string(),
        })
    };
    let leaf = parse("leaf".into(), leaf_der)?;
    let intermediates: Vec<Certificate> = intermediates
        .iter()
        .enumerate()
        .map(|(index, der)| parse(format!("intermediate #{index}"), der))
        .collect::<Result<_, _>>()?;
    let anchors: Vec<Certificate> = anchors
        .iter()
        .enumerate()
        .map(|(index, der)| parse(format!("trust anchor #{index}"), der))
        .collect::<Result<_, _>>()?;

    // The leaf is itself a trust anchor (validating a root).
    if let Some(anchor) = anchors.iter().find(|anchor| anchor.der() == leaf.der()) {
        check_algorithm(anchor, CertPosition::Anchor, options.algorithms)?;
        let certificates = vec![anchor.clone()];
        return finish(options, certificates, Vec::new(), at);
    }

    // Build with a generous depth first, so an over-long path is reported as such rather than
    // as an unknown issuer.
    let mut search = Search {
        intermediates: &intermediates,
        anchors: &anchors,
        depth_limit: options.max_intermediates.max(6),
        policy: options.algorithms,
        bad_signature: None,
    };
    let found = search.find(&leaf, CertPosition::Leaf, &mut Vec::new(), &mut Vec::new())?;
    let Some(found) = found else {
        if let Some(error) = search.bad_signature {
            return Err(error);
        }
        return Err(PathError::UnknownIssuer {
            subject: subject_of(&leaf),
            issuer: leaf.issuer().to_string(),
        });
    };
    if found.intermediates.len() > options.max_intermediates {
        // A shorter path may exist through other intermediates.
        let mut bounded = Search {
            intermediates: &intermediates,
            anchors: &anchors,
            depth_limit: options.max_intermediates,
            policy: options.algorithms,
            bad_signature: None,
        };
        match bounded.find(&leaf, CertPosition::Leaf, &mut Vec::new(), &mut Vec::new())? {
            Some(shorter) => {
                return assemble(options, &leaf, &intermediates, &anchors, shorter, at);
            }
            None => {
                return Err(PathError::PathTooLong {
                    intermediates: found.intermediates.len(),
                    max: options.max_intermediates,
                });
            }
        }
    }
    assemble(options, &leaf, &intermediates, &anchors, found, at)
}

fn assemble(
    options: &ValidationOptions,
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
    found: Found,
    at: OffsetDateTime,
) -> Result<ValidatedPath, PathError> {
    let mut certificates = vec![leaf.clone()];
    certificates.extend(
        found
            .intermediates
            .iter()
            .map(|index| intermediates[*index].clone()),
    );
    let anchor = anchors[found.anchor].clone();
    check_algorithm(&anchor, CertPosition::Anchor, options.algorithms)?;
    certificates.push(anchor);
    let reordered = found
        .reordered
        .into_iter()
        .map(|position| (position, Leniency::RdnOrder))
        .collect();
    finish(options, certificates, reordered, at)
}

fn position_of(index: usize, count: usize) -> CertPosition {
    if index == count - 1 {
        CertPosition::Anchor
    } else if index == 0 {
        CertPosition::Leaf
    } else {
        CertPosition::Intermediate(index)
    }
}

const UNDERSTOOD_CRITICAL: &[&str] = &[
    "2.5.29.19", // basicConstraints
    "2.5.29.15", // keyUsage
    "2.5.29.37", // extKeyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.32", // certificatePolicies
    "2.5.29.14",
    "2.5.29.35",
];

fn finish(
    options: &ValidationOptions,
    certificates: Vec<Certificate>,
    mut leniencies: Vec<(CertPosition, Leniency)>,
    at: OffsetDateTime,
) -> Result<ValidatedPath, PathError> {
    let count = certificates.len();
    let single = count == 1;

    // Validity, leaf first: the most specific error wins.
    for (index, certificate) in certificates.iter().enumerate() {
        let which = if single {
            CertPosition::Anchor
        } else {
            position_of(index, count)
        };
        if at < certificate.not_before() {
            return Err(PathError::NotYetValid {
                which,
                subject: subject_of(certificate),
                not_before: certificate.not_before(),
            });
        }
        if at > certificate.not_after() {
            return Err(PathError::Expired {
                which,
                subject: subject_of(certificate),
                not_after: certificate.not_after(),
            });
        }
    }

    for (index, certificate) in certificates.iter().enumerate() {
        let which = if single {
            CertPosition::Anchor
        } else {
            position_of(index, count)
        };
        check_key(certificate, which, options.algorithms)?;
        let is_leaf = index == 0 && !single;
        for extension in &certificate.parsed().extensions {
            if extension.critical && !UNDERSTOOD_CRITICAL.contains(&extension.oid.as_str()) {
                return Err(PathError::ChainError {
                    reason: format!(
                        "{which} ({}) has the unknown critical extension {}",
                        subject_of(certificate),
                        extension.oid
                    ),
                });
            }
        }
        let basic = certificate.basic_constraints();
        if basic.is_some_and(|bc| bc.explicit_default) {
            leniencies.push((which, Leniency::ExplicitDefaultBasicConstraints));
        }
        if is_leaf {
            if certificate.key_usage().is_none() {
                leniencies.push((which, Leniency::LeafWithoutKeyUsage));
            }
            if basic.is_none() {
                leniencies.push((which, Leniency::LeafWithoutBasicConstraints));
            }
            continue;
        }
        // Issuers: CA:TRUE (a v1/v2 anchor without extensions is accepted as an anchor),
        // keyCertSign when KeyUsage is present, path length respected.
        let is_anchor = which == CertPosition::Anchor;
        match basic {
            Some(bc) if bc.ca => {
                // Non-self-issued certificates below this one.
                let below = index.saturating_sub(1);
                if let Some(path_len) = bc.path_len {
                    if below > path_len as usize {
                        return Err(PathError::ChainError {
                            reason: format!(
                                "{which} ({}) allows {path_len} intermediates below it, found {below}",
                                subject_of(certificate)
                            ),
                        });
                    }
                }
            }
            None if is_anchor && certificate.parsed().version < 2 => {}
            _ => {
                if single {
                    // A root validated as itself: no issuing role to check.
                } else {
                    return Err(PathError::ChainError {
                        reason: format!("{which} ({}) is not a CA", subject_of(certificate)),
                    });
                }
            }
        }
        if !single {
            if let Some(key_usage) = certificate.key_usage() {
                if key_usage.flags & crate::profile::KeyUsageBit::KeyCertSign.flag() == 0 {
                    return Err(PathError::ChainError {
                        reason: format!("{which} ({}) lacks keyCertSign", subject_of(certificate)),
                    });
                }
            }
        }
        if is_anchor && certificate.extended_key_usage().is_some() {
            leniencies.push((which, Leniency::AnchorExtendedKeyUsage));
        }
    }

    for (which, leniency) in &leniencies {
        let certificate = &certificates[match which {
            CertPosition::Leaf => 0,
            CertPosition::Intermediate(level) => *level,
            CertPosition::Anchor => count - 1,
        }];
        if !options.allowed_leniencies.contains(leniency) {
            return Err(PathError::LeniencyRefused {
                which: *which,
                subject: subject_of(certificate),
                leniency: *leniency,
            });
        }
        tracing::debug!(
            leniency = ?leniency,
            position = %which,
            subject = %certificate.subject(),
            "applied path-validation leniency"
        );
    }
    Ok(ValidatedPath {
        certificates,
        leniencies,
    })
}

/// The part of a validated path above its leaf, with the leaf issuer's key decoded once.
///
/// A service that sees many leaves under the same Sub-CAs (every vehicle of an OEM) keeps
/// this and checks each new leaf with one signature verification instead of re-validating
/// the whole chain. It is only a shortcut to success: [`IssuerPath::validate_leaf`] answers
/// `None` whenever the leaf does not validate through exactly these issuers, and the caller
/// then runs [`validate_path_with`], so errors are reported as before.
pub struct IssuerPath {
    /// The leaf's issuer first, the trust anchor last.
    issuers: Vec<Certificate>,
    issuer_key: PublicKey,
    /// Leniencies applied above the leaf (their positions are leaf-independent).
    leniencies: Vec<(CertPosition, Leniency)>,
    /// The policy the issuers were validated under; a leaf is only checked under the same.
    algorithms: AlgorithmPolicy,
    /// Every issuer is valid in `[not_before, not_after]`.
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl fmt::Debug for IssuerPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("IssuerPath")
            .field("issuer", &self.issuers[0].subject().to_string())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl IssuerPath {
    /// The issuers of a path [`validate_path_with`] returned under `algorithms`; `None` for
    /// a path that is only a trust anchor, or whose issuer key OpenSSL cannot decode.
    pub fn from_validated(path: &ValidatedPath, algorithms: AlgorithmPolicy) -> Option<IssuerPath> {
        let issuers = path.certificates.get(1..)?.to_vec();
        let issuer = issuers.first()?;
        let issuer_key = PublicKey::of(issuer).ok()?;
        let not_before = issuers.iter().map(Certificate::not_before).max()?;
        let not_after = issuers.iter().map(Certificate::not_after).min()?;
        Some(IssuerPath {
            leniencies: path
                .leniencies
                .iter()
                .filter(|(position, _)| *position != CertPosition::Leaf)
                .copied()
                .collect(),
            issuers,
            issuer_key,
            algorithms,
            not_before,
            not_after,
        })
    }

    /// The issuers, the leaf's issuer first, the trust anchor last.
    pub fn issuers(&self) -> &[Certificate] {
        &self.issuers
    }

    /// The earliest notAfter of the issuers: past it the path no longer validates.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The full path when `leaf` validates at `at` through these issuers with the checks of
    /// [`validate_path_with`] (algorithm, name, signature, validity, critical extensions,
    /// leniencies); `None` otherwise.
    pub fn validate_leaf(
        &self,
        options: &ValidationOptions,
        leaf: &Certificate,
        at: OffsetDateTime,
    ) -> Option<ValidatedPath> {
        if options.algorithms != self.algorithms || at < self.not_before || at > self.not_after {
            return None;
        }
        if !leaf.is_valid_at(at) || self.issuers.iter().any(|issuer| issuer == leaf) {
            return None;
        }
        let scheme = check_algorithm(leaf, CertPosition::Leaf, options.algorithms).ok()?;
        check_key(leaf, CertPosition::Leaf, options.algorithms).ok()?;
        let mut leniencies = Vec::new();
        match issued_by(leaf, &self.issuers[0]) {
            NameMatch::No => return None,
            NameMatch::ReorderedRdns => leniencies.push((CertPosition::Leaf, Leniency::RdnOrder)),
            NameMatch::Exact => {}
        }
        let parsed = leaf.parsed();
        if !verifies_with(
            scheme,
            &self.issuer_key,
            &parsed.tbs_der,
            &parsed.signature_value,
        ) {
            return None;
        }
        if parsed.extensions.iter().any(|extension| {
            extension.critical && !UNDERSTOOD_CRITICAL.contains(&extension.oid.as_str())
        }) {
            return None;
        }
        let basic = leaf.basic_constraints();
        if basic.is_some_and(|bc| bc.explicit_default) {
            leniencies.push((
                CertPosition::Leaf,
                Leniency::ExplicitDefaultBasicConstraints,
            ));
        }
        if leaf.key_usage().is_none() {
            leniencies.push((CertPosition::Leaf, Leniency::LeafWithoutKeyUsage));
        }
        if basic.is_none() {
            leniencies.push((CertPosition::Leaf, Leniency::LeafWithoutBasicConstraints));
        }
        leniencies.extend(self.leniencies.iter().copied());
        if leniencies
            .iter()
            .any(|(_, leniency)| !options.allowed_leniencies.contains(leniency))
        {
            return None;
        }
        let mut certificates = Vec::with_capacity(self.issuers.len() + 1);
        certificates.push(leaf.clone());
        certificates.extend(self.issuers.iter().cloned());
        Some(ValidatedPath {
            certificates,
            leniencies,
        })
    }
}
