//! Issuance: prepare the TBS deterministically, lint it against its profile, then sign
//! (boulder's `issuance` order). Nothing is signed that fails the profile.

use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::certificate::{Certificate, CertificateError};
use crate::der::{self, oids};
use crate::profile::{self, BasicConstraintsRule, Finding, Profile, Severity};
use crate::signer::{Signer, SignerError, verify_der_signature};

/// Bytes of randomness in serials pnc issues (≥ 64 bits required; 127 used).
const SERIAL_BYTES: usize = 16;
/// Length of the SubjectKeyIdentifier pnc writes: 8 bytes, the length ISO 15118-20's AAD
/// assumes (16 hex characters, [V2G20-2492]) and Hubject uses.
pub const SKI_BYTES: usize = 8;

/// Subject name fields. The DC comes from the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectName {
    pub common_name: String,
    pub organization: Option<String>,
    /// ISO 3166 alpha-2.
    pub country: Option<String>,
}

impl SubjectName {
    pub fn new(common_name: impl Into<String>) -> Self {
        Self {
            common_name: common_name.into(),
            organization: None,
            country: None,
        }
    }

    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    pub fn country(mut self, country: impl Into<String>) -> Self {
        self.country = Some(country.into());
        self
    }
}

/// What to issue. Everything the TBS contains is derived from this and the issuer, so the same
/// template (with a fixed serial) always gives the same TBS bytes.
#[derive(Clone, Debug)]
pub struct CertificateTemplate {
    pub profile: Profile,
    pub subject: SubjectName,
    /// The subject's public key as DER SubjectPublicKeyInfo.
    pub subject_public_key_spki_der: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Serial magnitude; `None` draws 127 random bits.
    pub serial: Option<Vec<u8>>,
    /// AIA OCSP URL (required by every profile except roots and OCSP signers).
    pub ocsp_url: Option<String>,
    /// CRL distribution point (for certificates issued by CAs pnc runs).
    pub crl_url: Option<String>,
    /// Extra SAN DNS names (the OEM provisioning profile adds the PCID itself).
    pub san_dns: Vec<String>,
}

impl CertificateTemplate {
    pub fn new(
        profile: Profile,
        subject: SubjectName,
        subject_public_key_spki_der: Vec<u8>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Self {
        Self {
            profile,
            subject,
            subject_public_key_spki_der,
            not_before,
            not_after,
            serial: None,
            ocsp_url: None,
            crl_url: None,
            san_dns: Vec::new(),
        }
    }
}

/// Why issuance refused.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("invalid template: {0}")]
    InvalidTemplate(String),
    #[error("issuer does not fit: {0}")]
    Issuer(String),
    #[error("certificate fails its profile: {}", render(.0))]
    Lint(Vec<Finding>),
    #[error("signer: {0}")]
    Signer(#[from] SignerError),
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
}

fn render(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Issues a certificate. `issuer_cert` is `None` for a self-signed root (then the signer's key
/// must be the template's key).
pub fn issue(
    template: &CertificateTemplate,
    issuer_cert: Option<&Certificate>,
    issuer_signer: &dyn Signer,
) -> Result<Certificate, IssueError> {
    let rules = template.profile.rules();
    check_template(template)?;

    // The issuer must fit the signer and the profile.
    match (rules.self_signed, issuer_cert) {
        (true, Some(_)) => {
            return Err(IssueError::Issuer(format!(
                "{} is self-signed; pass no issuer certificate",
                template.profile
            )));
        }
        (true, None) => {
            if issuer_signer.public_key_spki_der() != template.subject_public_key_spki_der {
                return Err(IssueError::Issuer(
                    "a self-signed certificate needs the signer's own public key".into(),
                ));
            }
        }
        (false, None) => {
            return Err(IssueError::Issuer(format!(
                "{} needs an issuer certificate",
                template.profile
            )));
        }
        (false, Some(issuer)) => {
            if issuer.public_key_spki_der() != issuer_signer.public_key_spki_der() {
                return Err(IssueError::Issuer(
                    "the signer's key is not the issuer certificate's key".into(),
                ));
            }
            let Some(constraints) = issuer.basic_constraints().filter(|bc| bc.ca) else {
                return Err(IssueError::Issuer("the issuer is not a CA".into()));
            };
            let subject_is_ca = matches!(rules.basic_constraints, BasicConstraintsRule::Ca { .. });
            if subject_is_ca && constraints.path_len == Some(0) {
                return Err(IssueError::Issuer(
                    "the issuer has pathLen 0 and cannot issue CA certificates".into(),
                ));
            }
        }
    }

    // Validity, clamped to the issuer's and cut to whole seconds (DER time has no fractions).
    let mut not_before = template
        .not_before
        .replace_nanosecond(0)
        .unwrap_or(template.not_before);
    let mut not_after = template
        .not_after
        .replace_nanosecond(0)
        .unwrap_or(template.not_after);
    if let Some(issuer) = issuer_cert {
        not_before = not_before.max(issuer.not_before());
        not_after = not_after.min(issuer.not_after());
    }
    if not_before >= not_after {
        return Err(IssueError::InvalidTemplate(
            "validity is empty (after clamping to the issuer's validity)".into(),
        ));
    }

    let serial = match &template.serial {
        Some(serial) => serial.clone(),
        None => random_serial(),
    };
    let subject_ski = key_identifier(&template.subject_public_key_spki_der)?;
    let (issuer_name_der, authority_key_id) = match issuer_cert {
        Some(issuer) => {
            let aki = match issuer.subject_key_identifier() {
                Some(ski) => ski.to_vec(),
                None => key_identifier(issuer.public_key_spki_der())?,
            };
            (issuer.subject().der().to_vec(), Some(aki))
        }
        None => (encode_subject(template)?, None),
    };

    let algorithm = issuer_signer.algorithm();
    let signature_algorithm = der::sequence(&[&der::oid(algorithm.oid_arcs())]);
    let tbs = build_tbs(
        template,
        &serial,
        &signature_algorithm,
        &issuer_name_der,
        not_before,
        not_after,
        &subject_ski,
        authority_key_id.as_deref(),
    )?;

    // Lint before signing, on a certificate carrying a placeholder signature of maximal length
    // (72 bytes for P-256) so the size check is conservative.
    let placeholder_signature = {
        let mut value = vec![0x30, 0x46, 0x02, 0x21, 0x00];
        value.extend([0xff; 32]);
        value.extend([0x02, 0x21, 0x00]);
        value.extend([0xff; 32]);
        value
    };
    let precertificate = Certificate::from_der(&assemble(
        &tbs,
        &signature_algorithm,
        &placeholder_signature,
    ))?;
    reject_findings(profile::lint(
        &precertificate,
        template.profile,
        issuer_cert,
    ))?;

    let signature = issuer_signer.sign(&tbs)?;
    let certificate = Certificate::from_der(&assemble(&tbs, &signature_algorithm, &signature))?;

    // Check what we signed: the signature verifies and the final bytes still pass.
    let verifying_key = issuer_cert
        .map(Certificate::public_key_spki_der)
        .unwrap_or(&template.subject_public_key_spki_der);
    if !verify_der_signature(verifying_key, algorithm.digest(), &tbs, &signature)? {
        return Err(IssueError::Signer(SignerError::Backend(
            "the signature over the tbs does not verify".into(),
        )));
    }
    reject_findings(profile::lint(&certificate, template.profile, issuer_cert))?;
    tracing::debug!(
        profile = %template.profile,
        subject = %certificate.subject(),
        serial = %certificate.serial_hex(),
        signer = issuer_signer.key_id(),
        "issued certificate"
    );
    Ok(certificate)
}

fn reject_findings(findings: Vec<Finding>) -> Result<(), IssueError> {
    // Issuance is strict: warnings block as well.
    let blocking: Vec<_> = findings
        .into_iter()
        .filter(|finding| finding.severity >= Severity::Warning)
        .collect();
    if blocking.is_empty() {
        Ok(())
    } else {
        Err(IssueError::Lint(blocking))
    }
}

fn check_template(template: &CertificateTemplate) -> Result<(), IssueError> {
    let subject = &template.subject;
    let invalid = |message: String| Err(IssueError::InvalidTemplate(message));
    if subject.common_name.is_empty() || subject.common_name.chars().count() > 64 {
        return invalid("common name must have 1 to 64 characters".into());
    }
    if let Some(organization) = &subject.organization {
        if organization.is_empty() || organization.chars().count() > 64 {
            return invalid("organization must have 1 to 64 characters".into());
        }
    }
    if let Some(country) = &subject.country {
        if country.len() != 2 || !country.bytes().all(|byte| byte.is_ascii_uppercase()) {
            return invalid("country must be two upper-case letters".into());
        }
    }
    for url in template.ocsp_url.iter().chain(template.crl_url.iter()) {
        if !url.is_ascii() || !(url.starts_with("http://") || url.starts_with("https://")) {
            return invalid(format!("{url:?} is not an http(s) url"));
        }
    }
    for name in &template.san_dns {
        if name.is_empty() || !name.is_ascii() {
            return invalid(format!("{name:?} is not a dns name"));
        }
    }
    if let Some(serial) = &template.serial {
        if serial.is_empty() || serial.len() > 20 {
            return invalid("serial must have 1 to 20 bytes".into());
        }
    }
    Ok(())
}

fn random_serial() -> Vec<u8> {
    let mut serial = vec![0u8; SERIAL_BYTES];
    rand::thread_rng().fill_bytes(&mut serial);
    // Positive and minimally encoded without a leading zero byte: top bit clear, first byte non-zero.
    serial[0] &= 0x7f;
    if serial[0] == 0 {
        serial[0] = 0x01;
    }
    serial
}

/// SHA-256 over the subjectPublicKey BIT STRING contents, truncated to 8 bytes
/// (RFC 7093 method 1, shortened to the ISO 15118-20 AAD length).
pub fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, IssueError> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|error| {
        IssueError::InvalidTemplate(format!("subject public key is not a spki: {error}"))
    })?;
    Ok(Sha256::digest(&spki.subject_public_key.data)[..SKI_BYTES].to_vec())
}

fn attribute(oid: &[u64], tag: u8, value: &str) -> Vec<u8> {
    der::set(&[&der::sequence(&[
        &der::oid(oid),
        &der::tlv(tag, value.as_bytes()),
    ])])
}

/// CN, O, C, DC in that encoded order (the RISE-V2G test PKI's order).
fn encode_subject(template: &CertificateTemplate) -> Result<Vec<u8>, IssueError> {
    let subject = &template.subject;
    let mut rdns = vec![attribute(
        oids::COMMON_NAME,
        der::TAG_UTF8_STRING,
        &subject.common_name,
    )];
    if let Some(organization) = &subject.organization {
        rdns.push(attribute(
            oids::ORGANIZATION,
            der::TAG_UTF8_STRING,
            organization,
        ));
    }
    if let Some(country) = &subject.country {
        rdns.push(attribute(oids::COUNTRY, der::TAG_PRINTABLE_STRING, country));
    }
    if let Some(dc) = template.profile.rules().domain_component {
        rdns.push(attribute(oids::DOMAIN_COMPONENT, der::TAG_IA5_STRING, dc));
    }
    let parts: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
    Ok(der::sequence(&parts))
}

fn extension(oid: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        der::sequence(&[
            &der::oid(oid),
            &der::boolean(true),
            &der::octet_string(value),
        ])
    } else {
        der::sequence(&[&der::oid(oid), &der::octet_string(value)])
    }
}

fn uri(value: &str) -> Vec<u8> {
    der::implicit_primitive(6, value.as_bytes())
}

#[allow(clippy::too_many_arguments)]
fn build_tbs(
    template: &CertificateTemplate,
    serial: &[u8],
    signature_algorithm: &[u8],
    issuer_name_der: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    subject_ski: &[u8],
    authority_key_id: Option<&[u8]>,
) -> Result<Vec<u8>, IssueError> {
    let rules = template.profile.rules();
    let mut extensions: Vec<Vec<u8>> = Vec::new();

    let basic_constraints = match rules.basic_constraints {
        BasicConstraintsRule::Ca { path_len: None } => der::sequence(&[&der::boolean(true)]),
        BasicConstraintsRule::Ca {
            path_len: Some(path_len),
        } => der::sequence(&[
            &der::boolean(true),
            &der::small_integer(u64::from(path_len)),
        ]),
        // cA FALSE is the DEFAULT and therefore omitted (X.690 11.5).
        BasicConstraintsRule::EndEntity => der::sequence(&[]),
    };
    extensions.push(extension(oids::BASIC_CONSTRAINTS, true, &basic_constraints));

    let key_usage_bits: Vec<u8> = rules.key_usage.iter().map(|bit| *bit as u8).collect();
    extensions.push(extension(
        oids::KEY_USAGE,
        true,
        &der::named_bits(&key_usage_bits),
    ));

    if !rules.extended_key_usage.is_empty() {
        let mut purposes = Vec::new();
        for dotted in rules.extended_key_usage {
            let arcs: Vec<u64> = dotted
                .split('.')
                .map(|arc| arc.parse::<u64>())
                .collect::<Result<_, _>>()
                .map_err(|_| IssueError::InvalidTemplate(format!("bad oid {dotted}")))?;
            purposes.push(der::oid(&arcs));
        }
        let parts: Vec<&[u8]> = purposes.iter().map(Vec::as_slice).collect();
        extensions.push(extension(
            oids::EXTENDED_KEY_USAGE,
            false,
            &der::sequence(&parts),
        ));
    }

    extensions.push(extension(
        oids::SUBJECT_KEY_IDENTIFIER,
        false,
        &der::octet_string(subject_ski),
    ));
    if let Some(authority_key_id) = authority_key_id {
        extensions.push(extension(
            oids::AUTHORITY_KEY_IDENTIFIER,
            false,
            &der::sequence(&[&der::implicit_primitive(0, authority_key_id)]),
        ));
    }
    if let Some(ocsp_url) = &template.ocsp_url {
        let access = der::sequence(&[&der::oid(oids::AD_OCSP), &uri(ocsp_url)]);
        extensions.push(extension(
            oids::AUTHORITY_INFO_ACCESS,
            false,
            &der::sequence(&[&access]),
        ));
    }
    if let Some(crl_url) = &template.crl_url {
        // DistributionPoint { distributionPoint [0] { fullName [0] { URI } } }
        let full_name = der::explicit(0, &uri(crl_url));
        let point = der::sequence(&[&der::explicit(0, &full_name)]);
        extensions.push(extension(
            oids::CRL_DISTRIBUTION_POINTS,
            false,
            &der::sequence(&[&point]),
        ));
    }
    let mut dns_names: Vec<&str> = Vec::new();
    if rules.common_name == profile::CommonNameRule::Pcid {
        dns_names.push(&template.subject.common_name);
    }
    for name in &template.san_dns {
        if !dns_names
            .iter()
            .any(|present| present.eq_ignore_ascii_case(name))
        {
            dns_names.push(name);
        }
    }
    if !dns_names.is_empty() {
        let names: Vec<Vec<u8>> = dns_names
            .iter()
            .map(|name| der::implicit_primitive(2, name.as_bytes()))
            .collect();
        let parts: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        extensions.push(extension(
            oids::SUBJECT_ALT_NAME,
            false,
            &der::sequence(&parts),
        ));
    }
    if rules.ocsp_nocheck {
        extensions.push(extension(oids::OCSP_NOCHECK, false, &der::null()));
    }

    let extension_parts: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
    let subject = encode_subject(template)?;
    Ok(der::sequence(&[
        &der::explicit(0, &der::small_integer(2)),
        &der::unsigned_integer(serial),
        signature_algorithm,
        issuer_name_der,
        &der::sequence(&[&der::time(not_before), &der::time(not_after)]),
        &subject,
        &template.subject_public_key_spki_der,
        &der::explicit(3, &der::sequence(&extension_parts)),
    ]))
}

fn assemble(tbs: &[u8], signature_algorithm: &[u8], signature: &[u8]) -> Vec<u8> {
    der::sequence(&[tbs, signature_algorithm, &der::bit_string(signature)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::{SignatureAlgorithm, SoftwareSigner};

    fn root() -> (Certificate, SoftwareSigner) {
        let key = SoftwareSigner::generate("root", SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        let now = OffsetDateTime::now_utc();
        let template = CertificateTemplate::new(
            Profile::V2gRoot,
            SubjectName::new("root").country("DE"),
            key.public_key_spki_der().to_vec(),
            now,
            now + time::Duration::days(10),
        );
        (issue(&template, None, &key).unwrap(), key)
    }

    #[test]
    fn tbs_is_deterministic_for_a_fixed_template() {
        let (root, root_key) = root();
        let leaf_key =
            SoftwareSigner::generate("leaf", SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        let mut template = CertificateTemplate::new(
            Profile::OcspSigner,
            SubjectName::new("ocsp"),
            leaf_key.public_key_spki_der().to_vec(),
            root.not_before(),
            root.not_after(),
        );
        template.serial = Some(vec![0x11; 9]);
        let first = issue(&template, Some(&root), &root_key).unwrap();
        let second = issue(&template, Some(&root), &root_key).unwrap();
        assert_eq!(first.parsed().tbs_der, second.parsed().tbs_der);
    }

    #[test]
    fn refuses_what_the_profile_forbids() {
        let (root, root_key) = root();
        let leaf_key =
            SoftwareSigner::generate("leaf", SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        let now = OffsetDateTime::now_utc();
        let base = CertificateTemplate::new(
            Profile::Secc,
            SubjectName::new("DE*PNC*E1"),
            leaf_key.public_key_spki_der().to_vec(),
            now,
            now + time::Duration::days(5),
        );
        // No AIA OCSP URL: the profile requires one.
        let error = issue(&base, Some(&root), &root_key).unwrap_err();
        assert!(
            matches!(&error, IssueError::Lint(findings) if findings.iter().any(|f| f.code == "ocsp-url-missing")),
            "{error}"
        );
        // A short serial.
        let mut short = base.clone();
        short.ocsp_url = Some("http://127.0.0.1/ocsp".into());
        short.serial = Some(vec![0x01, 0x02]);
        let error = issue(&short, Some(&root), &root_key).unwrap_err();
        assert!(
            matches!(&error, IssueError::Lint(findings) if findings.iter().any(|f| f.code == "serial-too-short")),
            "{error}"
        );
        // Wrong signer for the issuer certificate.
        let mut fine = short.clone();
        fine.serial = None;
        assert!(matches!(
            issue(&fine, Some(&root), &leaf_key),
            Err(IssueError::Issuer(_))
        ));
        // A P-521 subject key is not ISO 15118-2.
        let p521 = SoftwareSigner::generate("p521", SignatureAlgorithm::EcdsaP521Sha512).unwrap();
        let mut big = fine.clone();
        big.subject_public_key_spki_der = p521.public_key_spki_der().to_vec();
        assert!(matches!(
            issue(&big, Some(&root), &root_key),
            Err(IssueError::Lint(_))
        ));
        // Validity outside the issuer's is clamped, not refused.
        let mut long = fine.clone();
        long.not_after = now + time::Duration::days(1000);
        let clamped = issue(&long, Some(&root), &root_key).unwrap();
        assert_eq!(clamped.not_after(), root.not_after());
        // Too-long names and bad URLs are template errors, not panics.
        let mut bad = fine.clone();
        bad.subject.common_name = "x".repeat(65);
        assert!(matches!(
            issue(&bad, Some(&root), &root_key),
            Err(IssueError::InvalidTemplate(_))
        ));
        let mut bad = fine;
        bad.ocsp_url = Some("ftp://x".into());
        assert!(matches!(
            issue(&bad, Some(&root), &root_key),
            Err(IssueError::InvalidTemplate(_))
        ));
    }
}
