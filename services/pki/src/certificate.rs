//! A certificate: its DER bytes plus the fields pnc reads, extracted once.
//!
//! Parsing is deliberately tolerant (x509-parser reads BER-ish extension values such as Hubject's
//! explicitly encoded BasicConstraints default); the strict checks live in [`crate::profile`].

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Errors reading a certificate.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CertificateError {
    #[error("not a parseable x.509 certificate: {0}")]
    Parse(String),
    #[error("no certificate found in pem input")]
    NoPem,
}

/// One attribute of a distinguished name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAttribute {
    /// Dotted OID of the attribute type.
    pub oid: String,
    /// The value as text (lossy for non-string types).
    pub value: String,
}

/// A distinguished name, kept as RDNs in encoded order plus its DER.
#[derive(Clone, Debug)]
pub struct DistinguishedName {
    rdns: Vec<Vec<NameAttribute>>,
    der: Vec<u8>,
}

pub(crate) const OID_CN: &str = "2.5.4.3";
pub(crate) const OID_C: &str = "2.5.4.6";
pub(crate) const OID_O: &str = "2.5.4.10";
pub(crate) const OID_OU: &str = "2.5.4.11";
pub(crate) const OID_DC: &str = "0.9.2342.19200300.100.1.25";

fn short_name(oid: &str) -> &str {
    match oid {
        OID_CN => "CN",
        OID_C => "C",
        OID_O => "O",
        OID_OU => "OU",
        OID_DC => "DC",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.5" => "serialNumber",
        "1.2.840.113549.1.9.1" => "emailAddress",
        other => other,
    }
}

/// RFC 5280 7.1 / RFC 4518 in a simplified form: case-insensitive, insignificant white space removed.
fn normalise(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl DistinguishedName {
    fn from_x509(name: &x509_parser::x509::X509Name<'_>) -> Self {
        let rdns = name
            .iter_rdn()
            .map(|rdn| {
                rdn.iter()
                    .map(|attribute| NameAttribute {
                        oid: attribute.attr_type().to_id_string(),
                        value: attribute.as_str().map(str::to_owned).unwrap_or_else(|_| {
                            String::from_utf8_lossy(attribute.as_slice()).into_owned()
                        }),
                    })
                    .collect()
            })
            .collect();
        Self {
            rdns,
            der: name.as_raw().to_vec(),
        }
    }

    /// The DER encoding of the Name.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// RDNs in encoded order.
    pub fn rdns(&self) -> &[Vec<NameAttribute>] {
        &self.rdns
    }

    /// Values of one attribute type, in encoded order.
    pub fn values(&self, oid: &str) -> impl Iterator<Item = &str> {
        self.rdns
            .iter()
            .flatten()
            .filter(move |attribute| attribute.oid == oid)
            .map(|attribute| attribute.value.as_str())
    }

    pub fn common_name(&self) -> Option<&str> {
        self.values(OID_CN).next()
    }

    pub fn domain_components(&self) -> Vec<&str> {
        self.values(OID_DC).collect()
    }

    /// Structural equality: same RDN sequence, values compared after normalisation, so string
    /// types (PrintableString vs UTF8String) and case do not matter.
    pub fn matches(&self, other: &Self) -> bool {
        if self.der == other.der {
            return true;
        }
        self.rdns.len() == other.rdns.len()
            && self.rdns.iter().zip(&other.rdns).all(|(left, right)| {
                let mut left: Vec<_> = left.iter().map(|a| (&a.oid, normalise(&a.value))).collect();
                let mut right: Vec<_> = right
                    .iter()
                    .map(|a| (&a.oid, normalise(&a.value)))
                    .collect();
                left.sort();
                right.sort();
                left == right
            })
    }

    /// Same attributes, ignoring RDN order (a named leniency in path validation).
    pub fn matches_ignoring_order(&self, other: &Self) -> bool {
        let collect = |name: &Self| {
            let mut all: Vec<_> = name
                .rdns
                .iter()
                .flatten()
                .map(|a| (a.oid.clone(), normalise(&a.value)))
                .collect();
            all.sort();
            all
        };
        collect(self) == collect(other)
    }
}

impl PartialEq for DistinguishedName {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl fmt::Display for DistinguishedName {
    /// Encoded order, OpenSSL-oneline-like: `CN=V2G Root, O=pnc, C=DE, DC=V2G`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for attribute in self.rdns.iter().flatten() {
            if !first {
                formatter.write_str(", ")?;
            }
            first = false;
            write!(
                formatter,
                "{}={}",
                short_name(&attribute.oid),
                attribute.value
            )?;
        }
        Ok(())
    }
}

/// An extension as encoded.
#[derive(Clone, Debug)]
pub(crate) struct RawExtension {
    pub oid: String,
    pub critical: bool,
    pub parse_error: Option<String>,
}

/// BasicConstraints as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicConstraintsInfo {
    pub critical: bool,
    pub ca: bool,
    pub path_len: Option<u32>,
    /// `cA FALSE` encoded explicitly (BER, not DER), as in Hubject's CPS leaves.
    pub explicit_default: bool,
}

/// KeyUsage as read: bit `n` of X.509 named bits is `1 << n` here (digitalSignature = bit 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUsageInfo {
    pub critical: bool,
    pub flags: u16,
}

#[derive(Debug)]
pub(crate) struct Parsed {
    pub version: u32,
    pub raw_serial: Vec<u8>,
    pub serial: Vec<u8>,
    pub tbs_signature_oid: String,
    pub signature_oid: String,
    pub signature_params_present: bool,
    pub issuer: DistinguishedName,
    pub subject: DistinguishedName,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub spki_der: Vec<u8>,
    /// The subjectPublicKey BIT STRING's bytes (for EC keys, the SEC1 point).
    pub public_key_bits: Vec<u8>,
    pub public_key_algorithm_oid: String,
    pub public_key_curve_oid: Option<String>,
    pub extensions: Vec<RawExtension>,
    pub basic_constraints: Option<BasicConstraintsInfo>,
    pub key_usage: Option<KeyUsageInfo>,
    pub extended_key_usage: Option<Vec<String>>,
    pub subject_key_identifier: Option<Vec<u8>>,
    pub authority_key_identifier: Option<Vec<u8>>,
    pub san_dns: Vec<String>,
    pub ocsp_urls: Vec<String>,
    pub crl_urls: Vec<String>,
    pub tbs_der: Vec<u8>,
    pub signature_value: Vec<u8>,
}

/// An X.509 certificate: DER plus parsed accessors. Cheap to clone.
#[derive(Clone)]
pub struct Certificate {
    der: Arc<[u8]>,
    parsed: Arc<Parsed>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Certificate")
            .field("subject", &self.subject().to_string())
            .field("issuer", &self.issuer().to_string())
            .field("serial", &self.serial_hex())
            .finish()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

fn to_datetime(time: x509_parser::time::ASN1Time) -> Result<OffsetDateTime, CertificateError> {
    OffsetDateTime::from_unix_timestamp(time.timestamp())
        .map_err(|error| CertificateError::Parse(format!("validity out of range: {error}")))
}

impl Certificate {
    /// Parses one DER certificate (trailing bytes are an error).
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (rest, certificate) = X509Certificate::from_der(der)
            .map_err(|error| CertificateError::Parse(error.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateError::Parse(
                "trailing bytes after the certificate".into(),
            ));
        }
        let parsed = extract(&certificate)?;
        Ok(Self {
            der: Arc::from(der),
            parsed: Arc::new(parsed),
        })
    }

    /// Parses the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Self, CertificateError> {
        let blocks = crate::pem::decode_all(pem, "CERTIFICATE");
        let first = blocks.first().ok_or(CertificateError::NoPem)?;
        Self::from_der(first)
    }

    /// Parses every `CERTIFICATE` block of a PEM text.
    pub fn all_from_pem(pem: &[u8]) -> Result<Vec<Self>, CertificateError> {
        crate::pem::decode_all(pem, "CERTIFICATE")
            .iter()
            .map(|der| Self::from_der(der))
            .collect()
    }

    /// PEM or DER, whichever `bytes` is.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, CertificateError> {
        if bytes.starts_with(&[0x30]) {
            Self::from_der(bytes)
        } else {
            Self::from_pem(bytes)
        }
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn to_pem(&self) -> String {
        crate::pem::encode("CERTIFICATE", &self.der)
    }

    pub fn subject(&self) -> &DistinguishedName {
        &self.parsed.subject
    }

    pub fn issuer(&self) -> &DistinguishedName {
        &self.parsed.issuer
    }

    pub fn common_name(&self) -> Option<&str> {
        self.parsed.subject.common_name()
    }

    /// Serial number as an unsigned big-endian magnitude without leading zeros.
    pub fn serial(&self) -> &[u8] {
        &self.parsed.serial
    }

    /// Upper-case hex of [`Certificate::serial`].
    pub fn serial_hex(&self) -> String {
        hex::encode_upper(&self.parsed.serial)
    }

    pub fn not_before(&self) -> OffsetDateTime {
        self.parsed.not_before
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.parsed.not_after
    }

    pub fn subject_key_identifier(&self) -> Option<&[u8]> {
        self.parsed.subject_key_identifier.as_deref()
    }

    pub fn authority_key_identifier(&self) -> Option<&[u8]> {
        self.parsed.authority_key_identifier.as_deref()
    }

    /// SubjectPublicKeyInfo DER.
    pub fn public_key_spki_der(&self) -> &[u8] {
        &self.parsed.spki_der
    }

    /// The EC public key as an uncompressed point `04 ‖ X ‖ Y`; `None` for non-EC keys.
    pub fn public_key_uncompressed(&self) -> Option<Vec<u8>> {
        crate::signer::uncompressed_point_from_spki(&self.parsed.spki_der)
            .ok()
            .map(|(_, point)| point)
    }

    /// Whether the subject key is Ed448 (id-Ed448, RFC 8410): ISO 15118-20's alternative to
    /// P-521 [V2G20-2319]; such a vehicle agrees on X448 (`key_transport::curve448`).
    pub fn public_key_is_ed448(&self) -> bool {
        self.parsed.public_key_algorithm_oid == "1.3.101.113"
    }

    pub fn basic_constraints(&self) -> Option<BasicConstraintsInfo> {
        self.parsed.basic_constraints
    }

    pub fn key_usage(&self) -> Option<KeyUsageInfo> {
        self.parsed.key_usage
    }

    /// Dotted OIDs of the ExtendedKeyUsage extension, if present.
    pub fn extended_key_usage(&self) -> Option<&[String]> {
        self.parsed.extended_key_usage.as_deref()
    }

    pub fn ocsp_urls(&self) -> &[String] {
        &self.parsed.ocsp_urls
    }

    pub fn crl_urls(&self) -> &[String] {
        &self.parsed.crl_urls
    }

    pub fn san_dns_names(&self) -> &[String] {
        &self.parsed.san_dns
    }

    /// Dotted OID of the certificate's signature algorithm.
    pub fn signature_algorithm_oid(&self) -> &str {
        &self.parsed.signature_oid
    }

    /// SHA-256 of the DER.
    pub fn sha256_fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }

    /// Issuer and subject names are equal (self-issued; a root when also self-signed).
    pub fn is_self_issued(&self) -> bool {
        self.parsed.subject.matches(&self.parsed.issuer)
    }

    pub fn is_ca(&self) -> bool {
        self.parsed.basic_constraints.is_some_and(|bc| bc.ca)
    }

    /// The certificate is valid at `at` (inclusive bounds).
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        self.parsed.not_before <= at && at <= self.parsed.not_after
    }

    pub(crate) fn parsed(&self) -> &Parsed {
        &self.parsed
    }
}

fn extract(certificate: &X509Certificate<'_>) -> Result<Parsed, CertificateError> {
    let tbs = &certificate.tbs_certificate;
    let raw_serial = tbs.raw_serial().to_vec();
    let serial = {
        let first = raw_serial.iter().position(|byte| *byte != 0);
        match first {
            Some(index) => raw_serial[index..].to_vec(),
            None => vec![0],
        }
    };
    let spki = tbs.public_key();
    let public_key_curve_oid = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.as_oid().ok())
        .map(|oid| oid.to_id_string());

    let mut parsed = Parsed {
        version: tbs.version().0,
        raw_serial,
        serial,
        tbs_signature_oid: tbs.signature.algorithm.to_id_string(),
        signature_oid: certificate.signature_algorithm.algorithm.to_id_string(),
        signature_params_present: certificate.signature_algorithm.parameters.is_some(),
        issuer: DistinguishedName::from_x509(tbs.issuer()),
        subject: DistinguishedName::from_x509(tbs.subject()),
        not_before: to_datetime(tbs.validity().not_before)?,
        not_after: to_datetime(tbs.validity().not_after)?,
        spki_der: spki.raw.to_vec(),
        public_key_bits: spki.subject_public_key.data.to_vec(),
        public_key_algorithm_oid: spki.algorithm.algorithm.to_id_string(),
        public_key_curve_oid,
        extensions: Vec::new(),
        basic_constraints: None,
        key_usage: None,
        extended_key_usage: None,
        subject_key_identifier: None,
        authority_key_identifier: None,
        san_dns: Vec::new(),
        ocsp_urls: Vec::new(),
        crl_urls: Vec::new(),
        tbs_der: tbs.as_ref().to_vec(),
        signature_value: certificate.signature_value.data.to_vec(),
    };

    for extension in tbs.extensions() {
        let parse_error = extension
            .parsed_extension()
            .error()
            .map(|error| error.to_string());
        parsed.extensions.push(RawExtension {
            oid: extension.oid.to_id_string(),
            critical: extension.critical,
            parse_error,
        });
        match extension.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => {
                // SEQUENCE { BOOLEAN FALSE } (optionally followed by a path length).
                let explicit_default =
                    extension.value.len() >= 5 && extension.value[2..5] == [0x01, 0x01, 0x00];
                parsed.basic_constraints = Some(BasicConstraintsInfo {
                    critical: extension.critical,
                    ca: bc.ca,
                    path_len: bc.path_len_constraint,
                    explicit_default,
                });
            }
            ParsedExtension::KeyUsage(ku) => {
                parsed.key_usage = Some(KeyUsageInfo {
                    critical: extension.critical,
                    flags: ku.flags,
                });
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let mut oids = Vec::new();
                let known = [
                    (eku.any, "2.5.29.37.0"),
                    (eku.server_auth, "1.3.6.1.5.5.7.3.1"),
                    (eku.client_auth, "1.3.6.1.5.5.7.3.2"),
                    (eku.code_signing, "1.3.6.1.5.5.7.3.3"),
                    (eku.email_protection, "1.3.6.1.5.5.7.3.4"),
                    (eku.time_stamping, "1.3.6.1.5.5.7.3.8"),
                    (eku.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
                ];
                for (present, oid) in known {
                    if present {
                        oids.push(oid.to_owned());
                    }
                }
                oids.extend(eku.other.iter().map(|oid| oid.to_id_string()));
                parsed.extended_key_usage = Some(oids);
            }
            ParsedExtension::SubjectKeyIdentifier(ski) => {
                parsed.subject_key_identifier = Some(ski.0.to_vec());
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                parsed.authority_key_identifier =
                    aki.key_identifier.as_ref().map(|ki| ki.0.to_vec());
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    if let GeneralName::DNSName(dns) = name {
                        parsed.san_dns.push((*dns).to_owned());
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for description in &aia.accessdescs {
                    if description.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1" {
                        if let GeneralName::URI(uri) = description.access_location {
                            parsed.ocsp_urls.push(uri.to_owned());
                        }
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in &points.points {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        for name in names {
                            if let GeneralName::URI(uri) = name {
                                parsed.crl_urls.push((*uri).to_owned());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(parsed)
}
