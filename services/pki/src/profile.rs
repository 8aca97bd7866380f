//! Certificate profiles after ISO 15118-2 Annex F (iso15118-notes §11.1, §11.2) and the checks
//! ("lints") that hold a certificate to them.
//!
//! The same linter runs before pnc signs anything ([`crate::issue`]) and when an operator asks
//! `pnc pki check`. Issuance is strict; foreign certificates are judged by the same rules but
//! only *reported* here; accepting them is [`crate::path`]'s business, with named leniencies.

use std::fmt;
use std::str::FromStr;

use crate::certificate::Certificate;
use crate::ids;

/// Maximum DER size of a certificate [V2G2-010].
pub const MAX_CERTIFICATE_DER_BYTES: usize = 800;
/// Maximum DER size of an ISO 15118-20 certificate (the -20 schema's `certificateType`
/// allows 1600 bytes).
pub const MAX_ISO20_CERTIFICATE_DER_BYTES: usize = 1600;
/// Minimum bit length of serials pnc issues (CA/B-style 64 bits of entropy).
pub const MIN_SERIAL_BITS: usize = 64;

const OID_ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_PRIME256V1: &str = "1.2.840.10045.3.1.7";
const OID_ECDSA_WITH_SHA512: &str = "1.2.840.10045.4.3.4";
const OID_SECP521R1: &str = "1.3.132.0.35";
/// id-Ed448 (RFC 8410): a key and, with absent parameters, a signature algorithm.
const OID_ED448: &str = "1.3.101.113";
/// id-X448 (RFC 8410).
const OID_X448: &str = "1.3.101.111";

/// Which ISO 15118 part's crypto a certificate follows. The same profiles (roles, DCs, key
/// usages) serve both; -20 certificates carry P-521 keys and ECDSA-SHA512 signatures
/// [V2G20-2674] and may be larger. Decided by the subject key: pnc's -20 chains are P-521
/// throughout, so a P-521 key always sits under a P-521 issuer. Ed448 keys are -20's alternative
/// [V2G20-2319] (an Ed448 OEM provisioning certificate may sit under P-521 OEM CAs), and an
/// X448 key is what pnc's contract certificates carry for Ed448 vehicles
/// (`key_transport::iso20::unconfirmed::X448_CONTRACT_KEY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edition {
    Iso2,
    Iso20,
}
pub(crate) const OID_EKU_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
pub(crate) const OID_EKU_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
pub(crate) const OID_OCSP_NOCHECK: &str = "1.3.6.1.5.5.7.48.1.5";

/// KeyUsage named bits (RFC 5280 4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyUsageBit {
    DigitalSignature = 0,
    NonRepudiation = 1,
    KeyEncipherment = 2,
    DataEncipherment = 3,
    KeyAgreement = 4,
    KeyCertSign = 5,
    CrlSign = 6,
}

impl KeyUsageBit {
    /// The bit as x509-parser's flags report it (`1 << n`).
    pub(crate) fn flag(self) -> u16 {
        1 << (self as u8)
    }

    fn name(self) -> &'static str {
        match self {
            Self::DigitalSignature => "digitalSignature",
            Self::NonRepudiation => "nonRepudiation",
            Self::KeyEncipherment => "keyEncipherment",
            Self::DataEncipherment => "dataEncipherment",
            Self::KeyAgreement => "keyAgreement",
            Self::KeyCertSign => "keyCertSign",
            Self::CrlSign => "cRLSign",
        }
    }
}

const CA_KEY_USAGE: &[KeyUsageBit] = &[KeyUsageBit::KeyCertSign, KeyUsageBit::CrlSign];

/// What BasicConstraints a profile demands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BasicConstraintsRule {
    /// `CA:TRUE`, with or without a path length.
    Ca { path_len: Option<u32> },
    /// `CA:FALSE`.
    EndEntity,
}

/// What the subject CN must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommonNameRule {
    /// Any non-empty CN.
    Any,
    /// The eMAID, canonical form without separators [V2G2-108].
    Emaid,
    /// The PCID (17–18 alphanumerics), repeated as SAN DNS.
    Pcid,
}

/// The certificate kinds pnc issues or checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    V2gRoot,
    CpoSubCa1,
    CpoSubCa2,
    /// The charger's TLS server certificate (DC=CPO, Table F.2).
    Secc,
    CpsSubCa1,
    CpsSubCa2,
    /// The contract-data signer ("SA provisioning certificate", Table F.3).
    CpsLeaf,
    MoRoot,
    MoSubCa1,
    MoSubCa2,
    /// Contract certificate, CN = eMAID (Table F.4).
    Contract,
    OemRoot,
    OemSubCa1,
    OemSubCa2,
    /// OEM provisioning certificate, CN = PCID (Table F.5).
    OemProvisioning,
    /// A self-signed CA for CSMS/charger client certificates (OCPP security profile 3).
    ChargingStationCa,
    /// A charger's TLS client certificate under [`Profile::ChargingStationCa`].
    ChargingStation,
    /// Delegated OCSP responder certificate (RFC 6960 4.2.2.2), one per CA pnc runs.
    OcspSigner,
}

/// The rules of one profile.
#[derive(Clone, Copy, Debug)]
pub struct ProfileRules {
    pub basic_constraints: BasicConstraintsRule,
    pub self_signed: bool,
    /// The DC pnc writes when issuing.
    pub domain_component: Option<&'static str>,
    /// DC values accepted when checking (the test-PKI value first, Hubject's `V2G` variants after).
    pub accepted_domain_components: &'static [&'static str],
    /// Whether a missing DC is an error (else a warning).
    pub domain_component_required: bool,
    pub key_usage: &'static [KeyUsageBit],
    /// Dotted OIDs of the required ExtendedKeyUsage (empty: no EKU extension).
    pub extended_key_usage: &'static [&'static str],
    pub ocsp_nocheck: bool,
    /// An AIA OCSP URL is required.
    pub ocsp_url: bool,
    pub common_name: CommonNameRule,
}

impl Profile {
    pub const ALL: [Profile; 18] = [
        Profile::V2gRoot,
        Profile::CpoSubCa1,
        Profile::CpoSubCa2,
        Profile::Secc,
        Profile::CpsSubCa1,
        Profile::CpsSubCa2,
        Profile::CpsLeaf,
        Profile::MoRoot,
        Profile::MoSubCa1,
        Profile::MoSubCa2,
        Profile::Contract,
        Profile::OemRoot,
        Profile::OemSubCa1,
        Profile::OemSubCa2,
        Profile::OemProvisioning,
        Profile::ChargingStationCa,
        Profile::ChargingStation,
        Profile::OcspSigner,
    ];

    /// Kebab-case name (`v2g-root`, `cps-sub-ca-1`, …), also the CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::V2gRoot => "v2g-root",
            Self::CpoSubCa1 => "cpo-sub-ca-1",
            Self::CpoSubCa2 => "cpo-sub-ca-2",
            Self::Secc => "secc",
            Self::CpsSubCa1 => "cps-sub-ca-1",
            Self::CpsSubCa2 => "cps-sub-ca-2",
            Self::CpsLeaf => "cps-leaf",
            Self::MoRoot => "mo-root",
            Self::MoSubCa1 => "mo-sub-ca-1",
            Self::MoSubCa2 => "mo-sub-ca-2",
            Self::Contract => "contract",
            Self::OemRoot => "oem-root",
            Self::OemSubCa1 => "oem-sub-ca-1",
            Self::OemSubCa2 => "oem-sub-ca-2",
            Self::OemProvisioning => "oem-provisioning",
            Self::ChargingStationCa => "charging-station-ca",
            Self::ChargingStation => "charging-station",
            Self::OcspSigner => "ocsp-signer",
        }
    }

    pub fn is_ca(self) -> bool {
        matches!(
            self.rules().basic_constraints,
            BasicConstraintsRule::Ca { .. }
        )
    }

    pub fn rules(self) -> ProfileRules {
        let ca = |path_len, self_signed, dc: &'static str, accepted: &'static [&'static str]| {
            ProfileRules {
                basic_constraints: BasicConstraintsRule::Ca { path_len },
                self_signed,
                domain_component: Some(dc),
                accepted_domain_components: accepted,
                domain_component_required: true,
                key_usage: CA_KEY_USAGE,
                extended_key_usage: &[],
                ocsp_nocheck: false,
                ocsp_url: !self_signed,
                common_name: CommonNameRule::Any,
            }
        };
        let leaf = |dc: Option<&'static str>,
                    accepted: &'static [&'static str],
                    required: bool,
                    key_usage: &'static [KeyUsageBit],
                    common_name| ProfileRules {
            basic_constraints: BasicConstraintsRule::EndEntity,
            self_signed: false,
            domain_component: dc,
            accepted_domain_components: accepted,
            domain_component_required: required,
            key_usage,
            extended_key_usage: &[],
            ocsp_nocheck: false,
            ocsp_url: true,
            common_name,
        };
        use KeyUsageBit::*;
        match self {
            Self::V2gRoot => ca(None, true, "V2G", &["V2G"]),
            Self::CpoSubCa1 => ca(Some(1), false, "V2G", &["V2G", "CPO"]),
            Self::CpoSubCa2 => ca(Some(0), false, "V2G", &["V2G", "CPO"]),
            Self::CpsSubCa1 => ca(Some(1), false, "CPS", &["CPS", "V2G"]),
            Self::CpsSubCa2 => ca(Some(0), false, "CPS", &["CPS", "V2G"]),
            Self::MoRoot => ca(None, true, "MO", &["MO"]),
            Self::MoSubCa1 => ca(Some(1), false, "MO", &["MO", "V2G"]),
            Self::MoSubCa2 => ca(Some(0), false, "MO", &["MO", "V2G"]),
            Self::OemRoot => ca(None, true, "OEM", &["OEM", "V2G"]),
            Self::OemSubCa1 => ca(Some(1), false, "OEM", &["OEM", "V2G"]),
            Self::OemSubCa2 => ca(Some(0), false, "OEM", &["OEM", "V2G"]),
            Self::Secc => leaf(
                Some("CPO"),
                &["CPO"],
                true,
                &[DigitalSignature, KeyAgreement],
                CommonNameRule::Any,
            ),
            Self::CpsLeaf => leaf(
                Some("CPS"),
                &["CPS"],
                true,
                &[DigitalSignature],
                CommonNameRule::Any,
            ),
            Self::Contract => leaf(
                Some("MO"),
                &["MO"],
                false,
                &[
                    DigitalSignature,
                    NonRepudiation,
                    KeyEncipherment,
                    KeyAgreement,
                ],
                CommonNameRule::Emaid,
            ),
            Self::OemProvisioning => leaf(
                Some("OEM"),
                &["OEM"],
                false,
                &[DigitalSignature, KeyAgreement],
                CommonNameRule::Pcid,
            ),
            Self::ChargingStationCa => ProfileRules {
                basic_constraints: BasicConstraintsRule::Ca { path_len: Some(0) },
                self_signed: true,
                domain_component: None,
                accepted_domain_components: &[],
                domain_component_required: false,
                key_usage: CA_KEY_USAGE,
                extended_key_usage: &[],
                ocsp_nocheck: false,
                ocsp_url: false,
                common_name: CommonNameRule::Any,
            },
            Self::ChargingStation => ProfileRules {
                extended_key_usage: &[OID_EKU_CLIENT_AUTH],
                ..leaf(None, &[], false, &[DigitalSignature], CommonNameRule::Any)
            },
            Self::OcspSigner => ProfileRules {
                extended_key_usage: &[OID_EKU_OCSP_SIGNING],
                ocsp_nocheck: true,
                ocsp_url: false,
                ..leaf(None, &[], false, &[DigitalSignature], CommonNameRule::Any)
            },
        }
    }

    /// Guesses the profile of a certificate from its constraints, DC, EKU and CN.
    pub fn infer(certificate: &Certificate) -> Option<Profile> {
        let subject = certificate.subject();
        let dcs: Vec<String> = subject
            .domain_components()
            .iter()
            .map(|dc| dc.to_ascii_uppercase())
            .collect();
        let has_dc = |value: &str| dcs.iter().any(|dc| dc == value);
        let cn = subject
            .common_name()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let eku = certificate.extended_key_usage().unwrap_or_default();
        let basic = certificate.basic_constraints();
        let is_ca = basic.is_some_and(|bc| bc.ca);

        if !is_ca {
            if eku.iter().any(|oid| oid == OID_EKU_OCSP_SIGNING) {
                return Some(Profile::OcspSigner);
            }
            if has_dc("CPO") {
                return Some(Profile::Secc);
            }
            if has_dc("CPS") {
                return Some(Profile::CpsLeaf);
            }
            if has_dc("OEM") {
                return Some(Profile::OemProvisioning);
            }
            if has_dc("MO") {
                return Some(Profile::Contract);
            }
            let normalised_cn = cn.replace('-', "");
            if ids::is_canonical_emaid(&normalised_cn) {
                return Some(Profile::Contract);
            }
            if ids::is_pcid(&cn) {
                return Some(Profile::OemProvisioning);
            }
            if eku.iter().any(|oid| oid == OID_EKU_CLIENT_AUTH) {
                return Some(Profile::ChargingStation);
            }
            return None;
        }

        let path_len = basic.and_then(|bc| bc.path_len);
        let cn_says = |needle: &str| cn.contains(needle);
        if certificate.is_self_issued() {
            return if has_dc("V2G") {
                Some(Profile::V2gRoot)
            } else if has_dc("MO") {
                Some(Profile::MoRoot)
            } else if has_dc("OEM") || cn_says("OEM") {
                Some(Profile::OemRoot)
            } else if cn_says("V2G") {
                Some(Profile::V2gRoot)
            } else {
                Some(Profile::ChargingStationCa)
            };
        }
        let role = if has_dc("MO") || cn_says("MO ") {
            "MO"
        } else if has_dc("OEM") || cn_says("OEM") {
            "OEM"
        } else if has_dc("CPS") || cn_says("CPS") || cn_says("PROV") {
            "CPS"
        } else {
            "CPO"
        };
        // Without a path length, guess by whether the issuer looks like a root.
        let level_one = match path_len {
            Some(0) => false,
            Some(_) => true,
            None => !cn.contains("SUB2") && !cn.contains("SUB-CA-2") && !cn.contains("SUB CA 2"),
        };
        Some(match (role, level_one) {
            ("MO", true) => Profile::MoSubCa1,
            ("MO", false) => Profile::MoSubCa2,
            ("OEM", true) => Profile::OemSubCa1,
            ("OEM", false) => Profile::OemSubCa2,
            ("CPS", true) => Profile::CpsSubCa1,
            ("CPS", false) => Profile::CpsSubCa2,
            (_, true) => Profile::CpoSubCa1,
            (_, false) => Profile::CpoSubCa2,
        })
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Error for an unknown profile name.
#[derive(Debug, thiserror::Error)]
#[error("unknown profile {0:?}")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let wanted = value.trim().to_ascii_lowercase().replace('_', "-");
        Profile::ALL
            .into_iter()
            .find(|profile| profile.name() == wanted)
            .ok_or_else(|| UnknownProfile(value.to_owned()))
    }
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One result of linting a certificate against a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// A stable, grep-able code such as `key-usage-missing-bits`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(formatter, "{severity} [{}]: {}", self.code, self.message)
    }
}

/// The outcome of checking one certificate.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub profile: Profile,
    /// The profile was guessed from the certificate rather than given.
    pub inferred: bool,
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// No finding is an error.
    pub fn passed(&self) -> bool {
        self.findings
            .iter()
            .all(|finding| finding.severity != Severity::Error)
    }
}

/// Checks a certificate against `profile` (or the inferred one). `None` when no profile was given
/// and none could be inferred.
pub fn check(certificate: &Certificate, profile: Option<Profile>) -> Option<CheckReport> {
    let (profile, inferred) = match profile {
        Some(profile) => (profile, false),
        None => (Profile::infer(certificate)?, true),
    };
    Some(CheckReport {
        profile,
        inferred,
        findings: lint(certificate, profile, None),
    })
}

/// Lints `certificate` against `profile`. With `issuer`, also checks AKI and the validity window
/// against it.
pub fn lint(
    certificate: &Certificate,
    profile: Profile,
    issuer: Option<&Certificate>,
) -> Vec<Finding> {
    let rules = profile.rules();
    let parsed = certificate.parsed();
    let mut findings = Vec::new();
    let mut add = |severity, code, message: String| {
        findings.push(Finding {
            severity,
            code,
            message,
        })
    };
    use Severity::{Error, Warning};

    if parsed.version != 2 {
        add(
            Error,
            "version",
            format!("version is v{}, not v3", parsed.version + 1),
        );
    }

    let key_algorithm = parsed.public_key_algorithm_oid.as_str();
    let edition = if parsed.public_key_curve_oid.as_deref() == Some(OID_SECP521R1)
        || key_algorithm == OID_ED448
        || key_algorithm == OID_X448
    {
        Edition::Iso20
    } else {
        Edition::Iso2
    };

    // Size [V2G2-010] (-2), the -20 schema's 1600 bytes (-20).
    let size = certificate.der().len();
    let max_size = match edition {
        Edition::Iso2 => MAX_CERTIFICATE_DER_BYTES,
        Edition::Iso20 => MAX_ISO20_CERTIFICATE_DER_BYTES,
    };
    if size > max_size {
        add(
            Error,
            "der-too-large",
            format!("der is {size} bytes, more than {max_size} [V2G2-010]"),
        );
    }

    // Serial: positive, minimally encoded, at least 64 bits.
    let raw_serial = &parsed.raw_serial;
    if raw_serial.first().is_some_and(|byte| byte & 0x80 != 0) {
        add(Error, "serial-negative", "serial number is negative".into());
    }
    if raw_serial.len() > 1 && raw_serial[0] == 0 && raw_serial[1] & 0x80 == 0 {
        add(
            Error,
            "serial-not-minimal",
            "serial number has a superfluous leading zero".into(),
        );
    }
    if raw_serial.len() > 20 {
        add(
            Error,
            "serial-too-long",
            "serial number exceeds 20 octets (rfc 5280)".into(),
        );
    }
    let serial_bits = {
        let magnitude = certificate.serial();
        match magnitude.first() {
            Some(first) if *first != 0 => {
                (magnitude.len() - 1) * 8 + (8 - first.leading_zeros() as usize)
            }
            _ => 0,
        }
    };
    if serial_bits < MIN_SERIAL_BITS {
        add(
            Error,
            "serial-too-short",
            format!("serial number has {serial_bits} bits, fewer than {MIN_SERIAL_BITS}"),
        );
    }

    // Algorithms [V2G2-006], [V2G2-007]; -20: [V2G20-2674].
    let (wanted_signature, signature_name) = match edition {
        Edition::Iso2 => (OID_ECDSA_WITH_SHA256, "ecdsa-with-SHA256"),
        Edition::Iso20 => (OID_ECDSA_WITH_SHA512, "ecdsa-with-SHA512"),
    };
    // -20 also allows Ed448 signatures [V2G20-2319].
    let ed448_signature = edition == Edition::Iso20 && parsed.signature_oid == OID_ED448;
    if parsed.signature_oid != wanted_signature && !ed448_signature {
        add(
            Error,
            "signature-algorithm",
            format!(
                "signature algorithm {} is not {signature_name}",
                parsed.signature_oid
            ),
        );
    }
    if parsed.signature_params_present {
        add(
            Error,
            "signature-algorithm-parameters",
            format!("{signature_name} must have absent parameters (rfc 5758)"),
        );
    }
    if parsed.tbs_signature_oid != parsed.signature_oid {
        add(
            Error,
            "signature-algorithm-mismatch",
            "tbs and outer signature algorithms differ".into(),
        );
    }
    let key_accepted = match key_algorithm {
        OID_EC_PUBLIC_KEY => {
            edition == Edition::Iso20
                || parsed.public_key_curve_oid.as_deref() == Some(OID_PRIME256V1)
        }
        OID_ED448 => true,
        // X448 cannot sign: only the contract certificate of an Ed448 vehicle carries one.
        OID_X448 => profile == Profile::Contract,
        _ => false,
    };
    if !key_accepted {
        add(
            Error,
            "public-key",
            "public key is not an ec key on secp256r1 (-2) or secp521r1 (-20), an Ed448 key (-20), or an X448 key (-20 contract)".into(),
        );
    }

    // Validity.
    if parsed.not_before >= parsed.not_after {
        add(
            Error,
            "validity-empty",
            "notBefore is not before notAfter".into(),
        );
    }
    if let Some(issuer) = issuer {
        if parsed.not_before < issuer.not_before() || parsed.not_after > issuer.not_after() {
            add(
                Error,
                "validity-outside-issuer",
                "validity exceeds the issuer's validity".into(),
            );
        }
    }

    // Names.
    let subject = certificate.subject();
    let cn = subject.common_name();
    match cn {
        None | Some("") => add(Error, "cn-missing", "subject has no common name".into()),
        Some(cn) => match rules.common_name {
            CommonNameRule::Any => {}
            CommonNameRule::Emaid => {
                if !ids::is_canonical_emaid(cn) {
                    add(
                        Error,
                        "cn-not-emaid",
                        format!(
                            "cn {cn:?} is not an eMAID in canonical form (14–15 upper-case alphanumerics, no separators) [V2G2-108]"
                        ),
                    );
                } else if cn.len() == 15 && ids::emaid_check_digit(&cn[..14]) != cn.chars().nth(14)
                {
                    add(
                        Warning,
                        "emaid-check-digit",
                        format!("15th character of {cn:?} is not the eMI3 check digit"),
                    );
                }
            }
            CommonNameRule::Pcid => {
                if !ids::is_pcid(cn) {
                    add(
                        Error,
                        "cn-not-pcid",
                        format!("cn {cn:?} is not a PCID (17–18 alphanumerics)"),
                    );
                }
                if !certificate
                    .san_dns_names()
                    .iter()
                    .any(|dns| dns.eq_ignore_ascii_case(cn))
                {
                    add(
                        Error,
                        "san-pcid-missing",
                        format!("no subjectAltName DNS:{cn}"),
                    );
                }
            }
        },
    }
    let dcs = subject.domain_components();
    if rules.accepted_domain_components.is_empty() {
        if !dcs.is_empty() {
            add(Warning, "dc-unexpected", format!("unexpected DC {dcs:?}"));
        }
    } else if dcs.is_empty() {
        let severity = if rules.domain_component_required {
            Error
        } else {
            Warning
        };
        add(
            severity,
            "dc-missing",
            format!(
                "subject has no DC (expected {}) [V2G2-925]",
                rules.accepted_domain_components.join(" or ")
            ),
        );
    } else if !dcs.iter().any(|dc| {
        rules
            .accepted_domain_components
            .iter()
            .any(|accepted| dc.eq_ignore_ascii_case(accepted))
    }) {
        add(
            Error,
            "dc-wrong",
            format!(
                "DC {dcs:?} is not {} [V2G2-925]",
                rules.accepted_domain_components.join(" or ")
            ),
        );
    }
    if rules.self_signed && !certificate.is_self_issued() {
        add(
            Error,
            "root-not-self-issued",
            "a root must have issuer = subject".into(),
        );
    }
    if !rules.self_signed && certificate.is_self_issued() {
        add(Error, "self-issued", "only roots are self-issued".into());
    }

    // BasicConstraints: critical in every profile (§11.1).
    match (certificate.basic_constraints(), rules.basic_constraints) {
        (None, _) => add(
            Error,
            "basic-constraints-missing",
            "no BasicConstraints".into(),
        ),
        (Some(bc), rule) => {
            if !bc.critical {
                add(
                    Error,
                    "basic-constraints-not-critical",
                    "BasicConstraints is not critical".into(),
                );
            }
            if bc.explicit_default {
                add(
                    Error,
                    "basic-constraints-not-der",
                    "BasicConstraints encodes the DEFAULT cA FALSE explicitly (not DER)".into(),
                );
            }
            match rule {
                BasicConstraintsRule::EndEntity => {
                    if bc.ca {
                        add(
                            Error,
                            "basic-constraints-ca",
                            "CA:TRUE on an end-entity profile".into(),
                        );
                    }
                }
                BasicConstraintsRule::Ca { path_len } => {
                    if !bc.ca {
                        add(
                            Error,
                            "basic-constraints-not-ca",
                            "CA:FALSE on a CA profile".into(),
                        );
                    }
                    if bc.path_len != path_len {
                        add(
                            Error,
                            "path-len",
                            format!(
                                "pathLenConstraint is {:?}, expected {:?}",
                                bc.path_len, path_len
                            ),
                        );
                    }
                }
            }
        }
    }

    // KeyUsage: critical, exactly the profile's bits.
    match certificate.key_usage() {
        None => add(Error, "key-usage-missing", "no KeyUsage".into()),
        Some(key_usage) => {
            if !key_usage.critical {
                add(
                    Error,
                    "key-usage-not-critical",
                    "KeyUsage is not critical".into(),
                );
            }
            let wanted: u16 = rules
                .key_usage
                .iter()
                .map(|bit| bit.flag())
                .fold(0, |a, b| a | b);
            let missing: Vec<_> = rules
                .key_usage
                .iter()
                .filter(|bit| key_usage.flags & bit.flag() == 0)
                .map(|bit| bit.name())
                .collect();
            if !missing.is_empty() {
                add(
                    Error,
                    "key-usage-missing-bits",
                    format!("KeyUsage lacks {}", missing.join(", ")),
                );
            }
            let extra = key_usage.flags & !wanted;
            if extra != 0 {
                let cert_sign_on_leaf = !profile.is_ca()
                    && extra & (KeyUsageBit::KeyCertSign.flag() | KeyUsageBit::CrlSign.flag()) != 0;
                add(
                    if cert_sign_on_leaf { Error } else { Warning },
                    "key-usage-extra-bits",
                    format!("KeyUsage has bits beyond the profile (flags {extra:#06x})"),
                );
            }
        }
    }

    // ExtendedKeyUsage.
    match (certificate.extended_key_usage(), rules.extended_key_usage) {
        (None, []) => {}
        (None, wanted) => add(
            Error,
            "eku-missing",
            format!("no ExtendedKeyUsage (expected {})", wanted.join(", ")),
        ),
        (Some(present), wanted) => {
            if wanted.is_empty() {
                add(
                    Warning,
                    "eku-unexpected",
                    format!(
                        "ExtendedKeyUsage {present:?} on a profile without one (breaks some tls stacks)"
                    ),
                );
            } else if !wanted.iter().all(|oid| present.iter().any(|p| p == oid)) {
                add(
                    Error,
                    "eku-wrong",
                    format!(
                        "ExtendedKeyUsage {present:?}, expected {}",
                        wanted.join(", ")
                    ),
                );
            }
        }
    }
    let has_nocheck = parsed
        .extensions
        .iter()
        .any(|ext| ext.oid == OID_OCSP_NOCHECK);
    if rules.ocsp_nocheck && !has_nocheck {
        add(
            Error,
            "ocsp-nocheck-missing",
            "no id-pkix-ocsp-nocheck extension".into(),
        );
    }

    // Key identifiers.
    match certificate.subject_key_identifier() {
        None => add(Error, "ski-missing", "no SubjectKeyIdentifier".into()),
        Some(ski) if ski.len() != 8 => add(
            Warning,
            "ski-length",
            format!(
                "SKI is {} bytes; ISO 15118-20 AAD expects 8 (16 hex characters)",
                ski.len()
            ),
        ),
        Some(_) => {}
    }
    if !rules.self_signed {
        match certificate.authority_key_identifier() {
            None => add(Error, "aki-missing", "no AuthorityKeyIdentifier".into()),
            Some(aki) => {
                if let Some(issuer_ski) = issuer.and_then(|issuer| issuer.subject_key_identifier())
                {
                    if aki != issuer_ski {
                        add(Error, "aki-mismatch", "AKI is not the issuer's SKI".into());
                    }
                }
            }
        }
    }

    // AIA OCSP.
    if rules.ocsp_url && certificate.ocsp_urls().is_empty() {
        add(Error, "ocsp-url-missing", "no AIA OCSP URL".into());
    }

    // Unknown critical extensions and extensions that failed to parse.
    const UNDERSTOOD: &[&str] = &[
        "2.5.29.19",
        "2.5.29.15",
        "2.5.29.37",
        "2.5.29.14",
        "2.5.29.35",
        "2.5.29.17",
        "2.5.29.31",
        "2.5.29.32",
        "1.3.6.1.5.5.7.1.1",
        OID_OCSP_NOCHECK,
    ];
    let mut seen = Vec::new();
    for extension in &parsed.extensions {
        if seen.contains(&extension.oid) {
            add(
                Error,
                "extension-duplicate",
                format!("extension {} appears twice", extension.oid),
            );
        }
        seen.push(extension.oid.clone());
        if extension.critical && !UNDERSTOOD.contains(&extension.oid.as_str()) {
            add(
                Error,
                "extension-unknown-critical",
                format!("unknown critical extension {}", extension.oid),
            );
        }
        if let Some(error) = &extension.parse_error {
            add(
                Error,
                "extension-malformed",
                format!("extension {} does not parse: {error}", extension.oid),
            );
        }
    }

    findings
}
