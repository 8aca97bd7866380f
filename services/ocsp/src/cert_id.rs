//! The RFC 6960 §4.1.1 `CertID`: the key of every OCSP question pnc answers or caches.

use std::fmt;

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::der::{self, DerError, Element, oid};

/// The hash algorithms a CertID may use. OCPP 2.0.1 names SHA256/384/512; RFC 6960
/// clients (openssl, TLS stacks) still default to SHA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    pub const ALL: [HashAlgorithm; 4] = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    pub fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    pub fn oid(self) -> &'static [u8] {
        match self {
            HashAlgorithm::Sha1 => oid::SHA1,
            HashAlgorithm::Sha256 => oid::SHA256,
            HashAlgorithm::Sha384 => oid::SHA384,
            HashAlgorithm::Sha512 => oid::SHA512,
        }
    }

    pub fn from_oid(content: &[u8]) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.oid() == content)
    }

    /// The name in storage and in the truststore's FindIssuer ("sha1", "sha256", …).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha1 => Sha1::digest(data).to_vec(),
            HashAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
            HashAlgorithm::Sha384 => Sha384::digest(data).to_vec(),
            HashAlgorithm::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// Why a CertID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertIdError {
    #[error("unsupported hash algorithm")]
    UnsupportedHashAlgorithm,
    #[error("{0} must be {1} bytes for this hash algorithm")]
    WrongHashLength(&'static str, usize),
    #[error("serial number must be 1 to 20 bytes and not negative")]
    BadSerial,
    #[error(transparent)]
    Der(#[from] DerError),
}

/// A validated CertID. The serial is kept as the minimal two's-complement content of a
/// non-negative INTEGER, so the same certificate always gives the same key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    hash_algorithm: HashAlgorithm,
    issuer_name_hash: Vec<u8>,
    issuer_key_hash: Vec<u8>,
    serial_content: Vec<u8>,
}

impl fmt::Debug for CertId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.key())
    }
}

impl CertId {
    /// Checks the hash lengths against the algorithm and the serial's size and sign.
    pub fn new(
        hash_algorithm: HashAlgorithm,
        issuer_name_hash: Vec<u8>,
        issuer_key_hash: Vec<u8>,
        serial_magnitude: &[u8],
    ) -> Result<CertId, CertIdError> {
        let length = hash_algorithm.digest_len();
        if issuer_name_hash.len() != length {
            return Err(CertIdError::WrongHashLength("issuerNameHash", length));
        }
        if issuer_key_hash.len() != length {
            return Err(CertIdError::WrongHashLength("issuerKeyHash", length));
        }
        let magnitude = der::magnitude_from_integer_content(serial_magnitude);
        // RFC 5280 §4.1.2.2: at most 20 octets; a zero serial still has one.
        if magnitude.len() > 20 {
            return Err(CertIdError::BadSerial);
        }
        Ok(CertId {
            hash_algorithm,
            issuer_name_hash,
            issuer_key_hash,
            serial_content: der::integer_content_from_magnitude(magnitude),
        })
    }

    /// Parses a DER `CertID` SEQUENCE element.
    pub fn from_element(element: &Element<'_>) -> Result<CertId, CertIdError> {
        let mut fields = element.reader();
        let algorithm = fields.read(der::TAG_SEQUENCE, "hashAlgorithm")?;
        let mut algorithm_fields = algorithm.reader();
        let algorithm_oid = algorithm_fields.read(der::TAG_OID, "hashAlgorithm OID")?;
        // Parameters are absent or NULL (RFC 5754 §2 allows both).
        if let Some(parameters) = algorithm_fields.read_optional(der::TAG_NULL)?
            && !parameters.content.is_empty()
        {
            return Err(DerError("hashAlgorithm parameters").into());
        }
        algorithm_fields.finish("hashAlgorithm parameters")?;
        let hash_algorithm = HashAlgorithm::from_oid(algorithm_oid.content)
            .ok_or(CertIdError::UnsupportedHashAlgorithm)?;
        let name_hash = fields.read(der::TAG_OCTET_STRING, "issuerNameHash")?;
        let key_hash = fields.read(der::TAG_OCTET_STRING, "issuerKeyHash")?;
        let serial = fields.read(der::TAG_INTEGER, "serialNumber")?;
        fields.finish("CertID has extra fields")?;
        if serial.content.is_empty() || serial.content[0] & 0x80 != 0 {
            return Err(CertIdError::BadSerial);
        }
        CertId::new(
            hash_algorithm,
            name_hash.content.to_vec(),
            key_hash.content.to_vec(),
            serial.content,
        )
    }

    /// The CertID of `certificate` as issued by `issuer`.
    pub fn for_certificate(
        hash_algorithm: HashAlgorithm,
        certificate: &pnc_pki::Certificate,
        issuer: &pnc_pki::Certificate,
    ) -> Result<CertId, CertIdError> {
        let (name_hash, key_hash) = issuer_hashes(hash_algorithm, issuer)?;
        CertId::new(hash_algorithm, name_hash, key_hash, certificate.serial())
    }

    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.hash_algorithm
    }

    pub fn issuer_name_hash(&self) -> &[u8] {
        &self.issuer_name_hash
    }

    pub fn issuer_key_hash(&self) -> &[u8] {
        &self.issuer_key_hash
    }

    /// The serial as an unsigned big-endian magnitude without leading zeros.
    pub fn serial_magnitude(&self) -> &[u8] {
        der::magnitude_from_integer_content(&self.serial_content)
    }

    /// The DER CertID (hash algorithm parameters NULL, as openssl writes them).
    pub fn to_der(&self) -> Vec<u8> {
        let algorithm = der::sequence(&[
            &der::tlv(der::TAG_OID, self.hash_algorithm.oid()),
            &der::tlv(der::TAG_NULL, &[]),
        ]);
        der::sequence(&[
            &algorithm,
            &der::octet_string(&self.issuer_name_hash),
            &der::octet_string(&self.issuer_key_hash),
            &der::tlv(der::TAG_INTEGER, &self.serial_content),
        ])
    }

    /// A stable text key: `sha256/<name hash>/<key hash>/<serial>` in lower-case hex.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.hash_algorithm.name(),
            hex::encode(&self.issuer_name_hash),
            hex::encode(&self.issuer_key_hash),
            hex::encode(self.serial_magnitude())
        )
    }

    /// Whether `issuer` is the CA this CertID names.
    pub fn names_issuer(&self, issuer: &pnc_pki::Certificate) -> bool {
        issuer_hashes(self.hash_algorithm, issuer).is_ok_and(|(name_hash, key_hash)| {
            name_hash == self.issuer_name_hash && key_hash == self.issuer_key_hash
        })
    }
}

/// (issuerNameHash, issuerKeyHash) of a CA certificate: hashes of its subject Name DER and
/// of the value of its subjectPublicKey BIT STRING (RFC 6960 §4.1.1).
pub fn issuer_hashes(
    hash_algorithm: HashAlgorithm,
    issuer: &pnc_pki::Certificate,
) -> Result<(Vec<u8>, Vec<u8>), CertIdError> {
    let key_bits = subject_public_key_bits(issuer.public_key_spki_der())?;
    Ok((
        hash_algorithm.hash(issuer.subject().der()),
        hash_algorithm.hash(key_bits),
    ))
}

/// The value of the subjectPublicKey BIT STRING of a SubjectPublicKeyInfo, without the
/// unused-bits byte.
pub fn subject_public_key_bits(spki_der: &[u8]) -> Result<&[u8], DerError> {
    let spki = der::parse_single(spki_der, der::TAG_SEQUENCE, "SubjectPublicKeyInfo")?;
    let mut fields = spki.reader();
    fields.read(der::TAG_SEQUENCE, "algorithm")?;
    let bits = fields.read(der::TAG_BIT_STRING, "subjectPublicKey")?;
    match bits.content.split_first() {
        Some((0, value)) => Ok(value),
        _ => Err(DerError("subjectPublicKey has unused bits")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CertId {
        CertId::new(
            HashAlgorithm::Sha256,
            vec![1; 32],
            vec![2; 32],
            &[0x00, 0x8f, 0x01],
        )
        .unwrap()
    }

    #[test]
    fn ok_round_trip_through_der() {
        let id = sample();
        let encoded = id.to_der();
        let element = der::parse_single(&encoded, der::TAG_SEQUENCE, "CertID").unwrap();
        assert_eq!(CertId::from_element(&element).unwrap(), id);
        assert_eq!(id.serial_magnitude(), &[0x8f, 0x01]);
        assert!(id.key().ends_with("/8f01"));
    }

    #[test]
    fn fail_wrong_lengths_and_serials() {
        assert_eq!(
            CertId::new(HashAlgorithm::Sha1, vec![1; 32], vec![2; 20], &[1]),
            Err(CertIdError::WrongHashLength("issuerNameHash", 20))
        );
        assert_eq!(
            CertId::new(HashAlgorithm::Sha512, vec![1; 64], vec![2; 63], &[1]),
            Err(CertIdError::WrongHashLength("issuerKeyHash", 64))
        );
        assert_eq!(
            CertId::new(HashAlgorithm::Sha256, vec![1; 32], vec![2; 32], &[1; 21]),
            Err(CertIdError::BadSerial)
        );
    }

    #[test]
    fn fail_negative_serial_and_unknown_algorithm() {
        let negative = der::sequence(&[
            &der::sequence(&[&der::tlv(der::TAG_OID, oid::SHA1)]),
            &der::octet_string(&[0; 20]),
            &der::octet_string(&[0; 20]),
            &der::tlv(der::TAG_INTEGER, &[0x80]),
        ]);
        let element = der::parse_single(&negative, der::TAG_SEQUENCE, "CertID").unwrap();
        assert_eq!(CertId::from_element(&element), Err(CertIdError::BadSerial));
        let md5 = der::sequence(&[
            &der::sequence(&[&der::tlv(
                der::TAG_OID,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05],
            )]),
            &der::octet_string(&[0; 16]),
            &der::octet_string(&[0; 16]),
            &der::tlv(der::TAG_INTEGER, &[0x01]),
        ]);
        let element = der::parse_single(&md5, der::TAG_SEQUENCE, "CertID").unwrap();
        assert_eq!(
            CertId::from_element(&element),
            Err(CertIdError::UnsupportedHashAlgorithm)
        );
    }
}
