//! The one place private keys live: the [`Signer`] trait and its in-memory implementation.
//!
//! Modelled on step-ca's CA backends: one small trait every key backend implements, plus optional
//! capability traits discovered at run time ([`Signer::key_agreement`]). A PKCS#11 backend drops in
//! by implementing [`Signer`] over a session handle (`C_Sign` with `CKM_ECDSA` over a digest gives
//! `r ‖ s` natively, so it would override [`Signer::sign_raw`] and build the DER form for
//! [`Signer::sign`]); ECDH through `CKM_ECDH1_DERIVE` would implement [`KeyAgreement`]. Nothing
//! outside this module touches key bytes, so no caller has to change.

use std::fmt;

use openssl::bn::BigNumContext;
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Signature algorithms pnc signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ECDSA on secp256r1 with SHA-256: ISO 15118-2 [V2G2-006], [V2G2-007].
    EcdsaP256Sha256,
    /// ECDSA on secp521r1 with SHA-512: ISO 15118-20 [V2G20-2674].
    EcdsaP521Sha512,
}

impl SignatureAlgorithm {
    /// Width in bytes of one of `r` and `s` in the fixed-width `r ‖ s` form.
    pub fn scalar_width(self) -> usize {
        match self {
            Self::EcdsaP256Sha256 => 32,
            Self::EcdsaP521Sha512 => 66,
        }
    }

    pub(crate) fn curve(self) -> Nid {
        match self {
            Self::EcdsaP256Sha256 => Nid::X9_62_PRIME256V1,
            Self::EcdsaP521Sha512 => Nid::SECP521R1,
        }
    }

    pub(crate) fn digest(self) -> MessageDigest {
        match self {
            Self::EcdsaP256Sha256 => MessageDigest::sha256(),
            Self::EcdsaP521Sha512 => MessageDigest::sha512(),
        }
    }

    /// Signature algorithm OID arcs (for AlgorithmIdentifier, parameters absent per RFC 5758).
    pub(crate) fn oid_arcs(self) -> &'static [u64] {
        match self {
            Self::EcdsaP256Sha256 => crate::der::oids::ECDSA_WITH_SHA256,
            Self::EcdsaP521Sha512 => crate::der::oids::ECDSA_WITH_SHA512,
        }
    }

    /// Human-readable name, as OpenSSL prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "ecdsa-with-SHA256 (P-256)",
            Self::EcdsaP521Sha512 => "ecdsa-with-SHA512 (P-521)",
        }
    }

    fn from_curve(curve: Nid) -> Option<Self> {
        match curve {
            Nid::X9_62_PRIME256V1 => Some(Self::EcdsaP256Sha256),
            Nid::SECP521R1 => Some(Self::EcdsaP521Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Errors from a key backend. They never carry key material.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    #[error("signing failed: {0}")]
    Backend(String),
}

impl From<openssl::error::ErrorStack> for SignerError {
    fn from(error: openssl::error::ErrorStack) -> Self {
        Self::Backend(error.to_string())
    }
}

/// A private key that signs. Implementations must never expose the key itself.
pub trait Signer: Send + Sync {
    /// Stable identifier of the key (the key store file name, a PKCS#11 label).
    fn key_id(&self) -> &str;

    fn algorithm(&self) -> SignatureAlgorithm;

    /// The public key as a DER SubjectPublicKeyInfo.
    fn public_key_spki_der(&self) -> &[u8];

    /// Hashes `message` with the algorithm's digest and returns a DER `Ecdsa-Sig-Value`
    /// (the form X.509 and OCSP carry).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;

    /// Like [`Signer::sign`], but returns fixed-width `r ‖ s` (64 bytes for P-256, 132 for P-521),
    /// the form of ISO 15118 XML signatures over EXI.
    fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let der = self.sign(message)?;
        ecdsa_der_to_raw(&der, self.algorithm().scalar_width())
    }

    /// Optional capability: ECDH with this key (the EV side of contract-key transport).
    fn key_agreement(&self) -> Option<&dyn KeyAgreement> {
        None
    }
}

/// Capability: static-key ECDH / X448 agreement. Returns the shared secret Z
/// (the x coordinate for EC curves), wiped on drop.
pub trait KeyAgreement: Send + Sync {
    /// `peer_public_key_spki_der`: the peer's public key as a DER SubjectPublicKeyInfo.
    fn agree(&self, peer_public_key_spki_der: &[u8]) -> Result<Zeroizing<Vec<u8>>, SignerError>;

    /// Our public key as a DER SubjectPublicKeyInfo.
    fn agreement_public_key_spki_der(&self) -> &[u8];
}

/// Converts a DER ECDSA signature to fixed-width `r ‖ s`.
pub fn ecdsa_der_to_raw(der: &[u8], scalar_width: usize) -> Result<Vec<u8>, SignerError> {
    let signature = EcdsaSig::from_der(der)
        .map_err(|error| SignerError::Backend(format!("malformed ecdsa signature: {error}")))?;
    let mut raw = signature.r().to_vec_padded(scalar_width as i32)?;
    raw.extend(signature.s().to_vec_padded(scalar_width as i32)?);
    Ok(raw)
}

/// Converts fixed-width `r ‖ s` to a DER ECDSA signature.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, SignerError> {
    if raw.is_empty() || raw.len() % 2 != 0 {
        return Err(SignerError::Backend(
            "raw ecdsa signature must have an even, non-zero length".into(),
        ));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let signature = EcdsaSig::from_private_components(
        openssl::bn::BigNum::from_slice(r)?,
        openssl::bn::BigNum::from_slice(s)?,
    )?;
    Ok(signature.to_der()?)
}

/// A short, non-secret fingerprint of a public key: hex SHA-256 of the SPKI, first 8 bytes.
pub fn public_key_fingerprint(spki_der: &[u8]) -> String {
    hex::encode(&Sha256::digest(spki_der)[..8])
}

/// A key held in process memory (OpenSSL frees EC keys with `BN_clear_free`, wiping the scalar).
pub struct SoftwareSigner {
    key_id: String,
    algorithm: SignatureAlgorithm,
    key: PKey<Private>,
    spki_der: Vec<u8>,
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SoftwareSigner")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("public_key_sha256", &public_key_fingerprint(&self.spki_der))
            .finish_non_exhaustive()
    }
}

impl SoftwareSigner {
    /// Generates a fresh key.
    pub fn generate(
        key_id: impl Into<String>,
        algorithm: SignatureAlgorithm,
    ) -> Result<Self, SignerError> {
        let group = EcGroup::from_curve_name(algorithm.curve())?;
        let ec_key = EcKey::generate(&group)?;
        Self::from_pkey(key_id.into(), PKey::from_ec_key(ec_key)?)
    }

    /// Loads a PEM private key (PKCS#8 or SEC1 `EC PRIVATE KEY`, P-256 or P-521), e.g. the
    /// key of a test vehicle handed to the EV simulator.
    pub fn from_pem(key_id: impl Into<String>, pem: &[u8]) -> Result<Self, SignerError> {
        let key = PKey::private_key_from_pem(pem)
            .map_err(|_| SignerError::UnsupportedKey("not a PEM private key".into()))?;
        Self::from_pkey(key_id.into(), key)
    }

    /// Loads a PKCS#8 DER private key (P-256 or P-521).
    pub(crate) fn from_pkcs8_der(
        key_id: impl Into<String>,
        pkcs8_der: &[u8],
    ) -> Result<Self, SignerError> {
        let key = PKey::private_key_from_pkcs8(pkcs8_der)
            .map_err(|_| SignerError::UnsupportedKey("not a pkcs#8 private key".into()))?;
        Self::from_pkey(key_id.into(), key)
    }

    fn from_pkey(key_id: String, key: PKey<Private>) -> Result<Self, SignerError> {
        if key.id() != Id::EC {
            return Err(SignerError::UnsupportedKey("not an ec key".into()));
        }
        let ec_key = key.ec_key()?;
        let curve = ec_key.group().curve_name();
        let algorithm = curve
            .and_then(SignatureAlgorithm::from_curve)
            .ok_or_else(|| SignerError::UnsupportedKey("curve is not p-256 or p-521".into()))?;
        ec_key.check_key()?;
        let spki_der = key.public_key_to_der()?;
        Ok(Self {
            key_id,
            algorithm,
            key,
            spki_der,
        })
    }

    /// PKCS#8 DER of the private key, wiped on drop. Crate-internal: only the encrypted key store
    /// and the explicit test-key export of the dev PKI call it.
    pub(crate) fn export_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        Ok(Zeroizing::new(self.key.private_key_to_pkcs8()?))
    }

    /// PKCS#8 PEM of the private key, wiped on drop (dev test material only).
    pub(crate) fn export_pkcs8_pem(&self) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        Ok(Zeroizing::new(self.key.private_key_to_pem_pkcs8()?))
    }

    /// The public key as an uncompressed point `04 ‖ X ‖ Y`.
    pub fn public_key_uncompressed(&self) -> Result<Vec<u8>, SignerError> {
        let ec_key = self.key.ec_key()?;
        let mut context = BigNumContext::new()?;
        Ok(ec_key.public_key().to_bytes(
            ec_key.group(),
            PointConversionForm::UNCOMPRESSED,
            &mut context,
        )?)
    }
}

impl Signer for SoftwareSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key_spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let mut signer = openssl::sign::Signer::new(self.algorithm.digest(), &self.key)?;
        signer.update(message)?;
        Ok(signer.sign_to_vec()?)
    }

    fn key_agreement(&self) -> Option<&dyn KeyAgreement> {
        Some(self)
    }
}

impl KeyAgreement for SoftwareSigner {
    fn agree(&self, peer_public_key_spki_der: &[u8]) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        let peer = PKey::public_key_from_der(peer_public_key_spki_der)
            .map_err(|error| SignerError::InvalidPublicKey(error.to_string()))?;
        derive_shared_secret(&self.key, &peer)
    }

    fn agreement_public_key_spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

pub(crate) fn derive_shared_secret(
    own: &PKey<Private>,
    peer: &PKey<Public>,
) -> Result<Zeroizing<Vec<u8>>, SignerError> {
    let mut deriver = Deriver::new(own)?;
    deriver
        .set_peer(peer)
        .map_err(|error| SignerError::InvalidPublicKey(error.to_string()))?;
    Ok(Zeroizing::new(deriver.derive_to_vec()?))
}

/// Builds a public key from an uncompressed point on `curve` and returns its SPKI DER.
pub(crate) fn spki_from_uncompressed_point(
    curve: Nid,
    point: &[u8],
) -> Result<Vec<u8>, SignerError> {
    let group = EcGroup::from_curve_name(curve)?;
    let mut context = BigNumContext::new()?;
    if point.first() != Some(&0x04) {
        return Err(SignerError::InvalidPublicKey(
            "expected an uncompressed point (04 ‖ x ‖ y)".into(),
        ));
    }
    let point = EcPoint::from_bytes(&group, point, &mut context)
        .map_err(|_| SignerError::InvalidPublicKey("point is not on the curve".into()))?;
    let key = EcKey::from_public_key(&group, &point)?;
    key.check_key()
        .map_err(|_| SignerError::InvalidPublicKey("invalid public key".into()))?;
    Ok(PKey::from_ec_key(key)?.public_key_to_der()?)
}

/// Returns the uncompressed point of an EC SPKI and the curve.
pub(crate) fn uncompressed_point_from_spki(spki_der: &[u8]) -> Result<(Nid, Vec<u8>), SignerError> {
    let key = PKey::public_key_from_der(spki_der)
        .map_err(|error| SignerError::InvalidPublicKey(error.to_string()))?;
    let ec_key = key
        .ec_key()
        .map_err(|_| SignerError::InvalidPublicKey("not an ec key".into()))?;
    let curve = ec_key
        .group()
        .curve_name()
        .ok_or_else(|| SignerError::InvalidPublicKey("unnamed curve".into()))?;
    let mut context = BigNumContext::new()?;
    let point = ec_key.public_key().to_bytes(
        ec_key.group(),
        PointConversionForm::UNCOMPRESSED,
        &mut context,
    )?;
    Ok((curve, point))
}

/// Verifies a DER ECDSA signature (used to check what we just signed).
pub(crate) fn verify_der_signature(
    spki_der: &[u8],
    digest: MessageDigest,
    message: &[u8],
    signature_der: &[u8],
) -> Result<bool, SignerError> {
    let key = PKey::public_key_from_der(spki_der)
        .map_err(|error| SignerError::InvalidPublicKey(error.to_string()))?;
    let mut verifier = openssl::sign::Verifier::new(digest, &key)?;
    verifier.update(message)?;
    Ok(verifier.verify(signature_der).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_converts_both_forms() {
        for algorithm in [
            SignatureAlgorithm::EcdsaP256Sha256,
            SignatureAlgorithm::EcdsaP521Sha512,
        ] {
            let signer = SoftwareSigner::generate("test", algorithm).unwrap();
            let der = signer.sign(b"message").unwrap();
            assert!(
                verify_der_signature(
                    signer.public_key_spki_der(),
                    algorithm.digest(),
                    b"message",
                    &der
                )
                .unwrap()
            );
            let raw = signer.sign_raw(b"message").unwrap();
            assert_eq!(raw.len(), 2 * algorithm.scalar_width());
            let back = ecdsa_raw_to_der(&raw).unwrap();
            assert!(
                verify_der_signature(
                    signer.public_key_spki_der(),
                    algorithm.digest(),
                    b"message",
                    &back
                )
                .unwrap()
            );
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let signer =
            SoftwareSigner::generate("cps-leaf", SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        let pkcs8 = signer.export_pkcs8_der().unwrap();
        let debug = format!("{signer:?}");
        assert!(debug.contains("cps-leaf"));
        assert!(debug.contains("public_key_sha256"));
        assert!(!debug.contains(&hex::encode(&pkcs8[pkcs8.len() - 40..])));
        assert!(!debug.to_lowercase().contains("private"));
    }
}
