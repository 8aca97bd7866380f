//! What the truststore reads from a CA certificate, and the checks a certificate passes on
//! its way into the pool or the known-CA index.
//!
//! Strict on what trust depends on (self-signature, CA flags, validity, hash algorithm),
//! lenient where real roots deviate harmlessly (iso15118-notes §11.3): Hubject's
//! `V2G Root CA G2` carries EKU OCSPSigning, a BMW OEM root is valid 1970–9999, RDN order
//! varies.

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::x509::X509;
use pnc_common::{ErrorKind, PncError};
use pnc_pki::Certificate;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Larger certificates are refused before parsing. ISO 15118 certificates are at most 800
/// bytes [V2G2-010]; CSMS and manufacturer roots may be RSA, hence the margin.
pub const MAX_CERTIFICATE_DER_BYTES: usize = 16 * 1024;

/// KeyUsage keyCertSign, bit 5 of the named bits (RFC 5280 §4.2.1.3), as pnc-pki reads them.
const KEY_USAGE_KEY_CERT_SIGN: u16 = 1 << 5;

/// Signature algorithms accepted on CA certificates. SHA-1 and MD5 are refused: a collision
/// on a trust anchor's signature is a forged anchor.
const ACCEPTED_SIGNATURE_ALGORITHMS: &[(&str, &str)] = &[
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512"),
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption"),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption"),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption"),
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
];

const WEAK_SIGNATURE_ALGORITHMS: &[(&str, &str)] = &[
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption"),
    ("1.2.840.10040.4.3", "dsa-with-SHA1"),
];

/// A parsed CA certificate with everything the truststore stores or answers about it.
#[derive(Debug, Clone)]
pub struct InspectedCa {
    pub certificate: Certificate,
    /// Upper-case hex, as every hash below.
    pub sha256_fingerprint: String,
    pub sha1_fingerprint: String,
    /// RFC 6960 §4.1.1 issuerNameHash of certificates this CA issued: the hash of the DER
    /// of this CA's subject Name.
    pub name_sha1: String,
    pub name_sha256: String,
    /// RFC 6960 §4.1.1 issuerKeyHash: the hash of the subjectPublicKey BIT STRING value
    /// (without tag, length and unused-bits octet, as OpenSSL computes it).
    pub key_sha1: String,
    pub key_sha256: String,
    /// Upper-case hex; empty when absent.
    pub subject_key_identifier: String,
    pub distinguished_name: String,
    pub common_name: String,
    pub organization_name: String,
    pub key_algorithm: String,
    pub not_before: i64,
    pub not_after: i64,
    openssl: X509,
}

fn invalid(message: impl Into<String>) -> PncError {
    PncError::invalid(message)
}

fn hex_upper(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

fn sha1_hex(bytes: &[u8]) -> Result<String, PncError> {
    openssl::hash::hash(MessageDigest::sha1(), bytes)
        .map(|digest| hex_upper(&digest))
        .map_err(|error| PncError::internal(format!("sha-1: {error}")))
}

/// Short names of the attribute types that appear in ISO 15118 and OPCP names.
fn attribute_short_name(oid: &str) -> &str {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.5" => "serialNumber",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        other => other,
    }
}

/// RFC 4514 string order: the last RDN first (`CN=…, DC=V2G, O=…, C=DE` for Hubject's
/// root, whose DER lists C first), which is what OPCP's `distinguishedName` shows.
fn rfc4514(certificate: &Certificate) -> String {
    certificate
        .subject()
        .rdns()
        .iter()
        .rev()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    format!(
                        "{}={}",
                        attribute_short_name(&attribute.oid),
                        attribute.value
                    )
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_algorithm(x509: &X509) -> String {
    let Ok(key) = x509.public_key() else {
        return "unknown".to_string();
    };
    match key.id() {
        Id::EC => match key.ec_key().ok().and_then(|ec| ec.group().curve_name()) {
            Some(Nid::X9_62_PRIME256V1) => "secp256r1".to_string(),
            Some(Nid::SECP384R1) => "secp384r1".to_string(),
            Some(Nid::SECP521R1) => "secp521r1".to_string(),
            Some(other) => other.short_name().unwrap_or("ec").to_string(),
            None => "ec".to_string(),
        },
        Id::ED25519 => "ed25519".to_string(),
        Id::ED448 => "ed448".to_string(),
        Id::RSA => "rsa".to_string(),
        _ => "unknown".to_string(),
    }
}

impl InspectedCa {
    /// Parses a DER certificate and computes its fingerprints and lookup hashes.
    pub fn parse(der: &[u8]) -> Result<InspectedCa, PncError> {
        if der.is_empty() {
            return Err(invalid("the certificate is empty"));
        }
        if der.len() > MAX_CERTIFICATE_DER_BYTES {
            return Err(invalid(format!(
                "the certificate is {} bytes, more than the {MAX_CERTIFICATE_DER_BYTES} accepted",
                der.len()
            )));
        }
        let certificate = Certificate::from_der(der)
            .map_err(|error| invalid(format!("the certificate is not valid DER X.509: {error}")))?;
        let openssl = X509::from_der(der)
            .map_err(|error| invalid(format!("the certificate is not valid DER X.509: {error}")))?;
        let (_, spki) = SubjectPublicKeyInfo::from_der(certificate.public_key_spki_der())
            .map_err(|error| invalid(format!("unreadable subjectPublicKeyInfo: {error}")))?;
        let key_bits = spki.subject_public_key.data.as_ref();
        let name_der = certificate.subject().der();
        let sha1_fingerprint = openssl
            .digest(MessageDigest::sha1())
            .map(|digest| hex_upper(&digest))
            .map_err(|error| PncError::internal(format!("sha-1: {error}")))?;
        let organization_name = certificate
            .subject()
            .values("2.5.4.10")
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(InspectedCa {
            sha256_fingerprint: hex_upper(&certificate.sha256_fingerprint()),
            sha1_fingerprint,
            name_sha1: sha1_hex(name_der)?,
            name_sha256: hex_upper(&Sha256::digest(name_der)),
            key_sha1: sha1_hex(key_bits)?,
            key_sha256: hex_upper(&Sha256::digest(key_bits)),
            subject_key_identifier: certificate
                .subject_key_identifier()
                .map(hex_upper)
                .unwrap_or_default(),
            distinguished_name: rfc4514(&certificate),
            common_name: certificate.common_name().unwrap_or_default().to_string(),
            organization_name,
            key_algorithm: key_algorithm(&openssl),
            not_before: certificate.not_before().unix_timestamp(),
            not_after: certificate.not_after().unix_timestamp(),
            certificate,
            openssl,
        })
    }

    pub fn der(&self) -> &[u8] {
        self.certificate.der()
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        format!("`{}`", self.distinguished_name)
    }

    /// Self-issued (subject = issuer, compared structurally) and signed by its own key.
    pub fn is_self_signed(&self) -> bool {
        if !self.certificate.is_self_issued()
            && !self
                .certificate
                .subject()
                .matches_ignoring_order(self.certificate.issuer())
        {
            return false;
        }
        self.openssl
            .public_key()
            .and_then(|key| self.openssl.verify(&key))
            .unwrap_or(false)
    }

    /// Refuses SHA-1/MD5 signatures and algorithms pnc cannot verify.
    pub fn check_signature_algorithm(&self) -> Result<(), PncError> {
        let oid = self.certificate.signature_algorithm_oid();
        if ACCEPTED_SIGNATURE_ALGORITHMS
            .iter()
            .any(|(accepted, _)| *accepted == oid)
        {
            return Ok(());
        }
        match WEAK_SIGNATURE_ALGORITHMS
            .iter()
            .find(|(weak, _)| *weak == oid)
        {
            Some((_, name)) => Err(invalid(format!(
                "{} is signed with {name}; SHA-1 and MD5 signatures are refused",
                self.describe()
            ))),
            None => Err(invalid(format!(
                "{} is signed with the unsupported algorithm {oid}",
                self.describe()
            ))),
        }
    }

    /// BasicConstraints cA TRUE and, in KeyUsage, keyCertSign (RFC 5280 §4.2.1.3, §4.2.1.9).
    pub fn check_ca_flags(&self) -> Result<(), PncError> {
        if !self.certificate.is_ca() {
            return Err(invalid(format!(
                "{} is not a CA certificate (BasicConstraints cA TRUE is missing)",
                self.describe()
            )));
        }
        match self.certificate.key_usage() {
            Some(key_usage) if key_usage.flags & KEY_USAGE_KEY_CERT_SIGN != 0 => Ok(()),
            Some(_) => Err(invalid(format!(
                "{} is not a CA certificate (KeyUsage lacks keyCertSign)",
                self.describe()
            ))),
            None => Err(invalid(format!(
                "{} is not a CA certificate (no KeyUsage extension with keyCertSign)",
                self.describe()
            ))),
        }
    }

    /// Valid at `now` (inclusive bounds, RFC 5280 §4.1.2.5).
    pub fn check_validity(&self, now: OffsetDateTime) -> Result<(), PncError> {
        if now < self.certificate.not_before() {
            return Err(PncError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{} is not yet valid (notBefore {})",
                    self.describe(),
                    self.certificate.not_before()
                ),
            ));
        }
        if now > self.certificate.not_after() {
            return Err(PncError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{} is expired (notAfter {})",
                    self.describe(),
                    self.certificate.not_after()
                ),
            ));
        }
        Ok(())
    }

    /// Every check a root passes before it enters the pool.
    pub fn check_root(&self, now: OffsetDateTime) -> Result<(), PncError> {
        self.check_signature_algorithm()?;
        if !self.is_self_signed() {
            return Err(invalid(format!(
                "{} is not self-signed (issuer `{}`); only roots enter the pool",
                self.describe(),
                self.certificate.issuer()
            )));
        }
        self.check_ca_flags()?;
        self.check_validity(now)?;
        if self.certificate.extended_key_usage().is_some() {
            // Hubject's V2G Root CA G2 carries EKU OCSPSigning; EKU on an anchor does not
            // constrain path validation here (iso15118-notes §11.3).
            tracing::debug!(
                root = %self.distinguished_name,
                "accepting a root with ExtendedKeyUsage (leniency AnchorExtendedKeyUsage)"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use pnc_pki::{DevCert, DevPki, DevPkiOptions};

    fn dev_pki() -> DevPki {
        DevPki::generate(&DevPkiOptions {
            ocsp_signers: false,
            ..DevPkiOptions::default()
        })
        .expect("dev pki")
    }

    #[test]
    fn ok_dev_roots_pass_the_root_checks() {
        let pki = dev_pki();
        for root in [DevCert::V2gRoot, DevCert::MoRoot, DevCert::OemRoot] {
            let inspected = InspectedCa::parse(pki.certificate(root).der()).expect("parse");
            inspected
                .check_root(OffsetDateTime::now_utc())
                .expect("a dev root is a valid root");
            assert_eq!(inspected.key_algorithm, "secp256r1");
            assert_eq!(inspected.sha256_fingerprint.len(), 64);
            assert_eq!(inspected.sha1_fingerprint.len(), 40);
        }
    }

    #[test]
    fn fail_sub_ca_is_not_a_root() {
        let pki = dev_pki();
        let inspected =
            InspectedCa::parse(pki.certificate(DevCert::MoSubCa1).der()).expect("parse");
        let error = inspected
            .check_root(OffsetDateTime::now_utc())
            .expect_err("a sub-ca is not a root");
        assert!(error.message.contains("not self-signed"), "{error}");
    }

    #[test]
    fn fail_expired_root() {
        let pki = dev_pki();
        let inspected = InspectedCa::parse(pki.certificate(DevCert::V2gRoot).der()).expect("parse");
        let later = OffsetDateTime::now_utc() + time::Duration::days(365 * 20);
        let error = inspected.check_root(later).expect_err("expired");
        assert!(error.message.contains("expired"), "{error}");
    }

    #[test]
    fn fail_garbage() {
        let error = InspectedCa::parse(b"\x30\x03\x02\x01\x01").expect_err("garbage");
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert!(InspectedCa::parse(&[]).is_err());
    }

    /// The Hubject `V2G Root CA G2` from the OPCP spec (read at run time, never copied).
    fn hubject_v2g_root_g2() -> Vec<u8> {
        use base64::Engine;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/specs/opcp-1.0.0/rcp.v1.json");
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("rcp.v1.json"))
                .expect("json");
        let example = &spec["paths"]["/v1/root/rootCerts/{rootCertificateId}"]["get"]["responses"]
            ["200"]["content"]["application/json"]["examples"]["example"]["value"]["RootResponse"];
        base64::engine::general_purpose::STANDARD
            .decode(example["caCertificate"].as_str().expect("caCertificate"))
            .expect("base64")
    }

    #[test]
    fn ok_hubject_root_matches_the_opcp_example_fields() {
        let inspected = InspectedCa::parse(&hubject_v2g_root_g2()).expect("parse");
        // EKU OCSPSigning on the anchor is tolerated (iso15118-notes §11.3).
        inspected
            .check_root(OffsetDateTime::now_utc())
            .expect("Hubject's root is accepted");
        assert_eq!(
            inspected.distinguished_name,
            "CN=V2G Root CA G2, DC=V2G, O=Hubject GmbH, C=DE"
        );
        assert_eq!(inspected.common_name, "V2G Root CA G2");
        assert_eq!(inspected.organization_name, "Hubject GmbH");
        assert_eq!(
            inspected.sha256_fingerprint.to_ascii_lowercase(),
            "a76ae4c5d00e06a967554511865bfa89e79590e8a61b5a71f9ce22e039d6c370"
        );
        assert_eq!(
            inspected.certificate.serial_hex().to_ascii_lowercase(),
            "bbbbbc1ac45ad2dfe5b1d873c35c84"
        );
        assert_eq!(inspected.subject_key_identifier, "45B8409EE138F8BF");
        assert_eq!(inspected.key_algorithm, "secp256r1");
    }
}
