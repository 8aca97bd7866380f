//! A certificate's public key, ready to verify with, built without OpenSSL 3's decoder.
//!
//! `PKey::public_key_from_der` runs OpenSSL 3's generic decoder framework: on the bench
//! machine it costs ≈ 236 µs, more than two P-256 verifications (≈ 90 µs each). Every
//! installation verifies with a key it has just read from the vehicle's certificate, so keys
//! on the named NIST curves are built straight from their point on a shared group and verified
//! with ECDSA directly; everything else (RSA, Ed448, explicit curve parameters) still goes
//! through the decoder.

use std::sync::LazyLock;

use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, EcKeyRef, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};

use crate::certificate::Certificate;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";

/// The groups of the named curves pnc meets, built once: building one costs ≈ 20 µs.
static P256: LazyLock<Option<EcGroup>> =
    LazyLock::new(|| EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ok());
static P384: LazyLock<Option<EcGroup>> =
    LazyLock::new(|| EcGroup::from_curve_name(Nid::SECP384R1).ok());
static P521: LazyLock<Option<EcGroup>> =
    LazyLock::new(|| EcGroup::from_curve_name(Nid::SECP521R1).ok());

fn named_group(curve_oid: &str) -> Option<&'static EcGroup> {
    match curve_oid {
        "1.2.840.10045.3.1.7" => P256.as_ref(),
        "1.3.132.0.34" => P384.as_ref(),
        "1.3.132.0.35" => P521.as_ref(),
        _ => None,
    }
}

/// A subject public key.
#[derive(Clone)]
pub enum PublicKey {
    /// An EC key on P-256, P-384 or P-521 (the point is on the curve and not infinity).
    Ec(EcKey<Public>),
    /// Any other key OpenSSL decodes (RSA, Ed448, EC with explicit parameters).
    Other(PKey<Public>),
}

impl PublicKey {
    /// The key of `certificate`; `Err` when OpenSSL cannot use it.
    pub fn of(certificate: &Certificate) -> Result<PublicKey, ErrorStack> {
        let parsed = certificate.parsed();
        let group = (parsed.public_key_algorithm_oid == OID_EC_PUBLIC_KEY)
            .then(|| parsed.public_key_curve_oid.as_deref().and_then(named_group))
            .flatten();
        match group {
            Some(group) => ec_key_from_point(group, &parsed.public_key_bits).map(PublicKey::Ec),
            None => PKey::public_key_from_der(&parsed.spki_der).map(PublicKey::Other),
        }
    }

    /// Whether `signature_der` (ECDSA-Sig-Value) over `message` verifies under `digest`.
    /// Only DER is accepted, with nothing after it, as OpenSSL's own verification insists.
    pub fn verifies_ecdsa(
        &self,
        digest: MessageDigest,
        message: &[u8],
        signature_der: &[u8],
    ) -> bool {
        match self {
            PublicKey::Ec(key) => match hash(digest, message) {
                Some(hashed) => ecdsa_der_verifies(key, &hashed, signature_der),
                None => false,
            },
            PublicKey::Other(key) => {
                key.id() == openssl::pkey::Id::EC
                    && openssl::sign::Verifier::new(digest, key)
                        .and_then(|mut verifier| {
                            verifier.update(message)?;
                            verifier.verify(signature_der)
                        })
                        .unwrap_or(false)
            }
        }
    }

    /// The key as a `PKey`, for the operations that need one (RSA and Ed448 verification).
    pub fn as_pkey(&self) -> Option<&PKey<Public>> {
        match self {
            PublicKey::Ec(_) => None,
            PublicKey::Other(key) => Some(key),
        }
    }
}

/// An EC public key from a SEC1 point (uncompressed or compressed) on `group`.
fn ec_key_from_point(group: &EcGroup, point: &[u8]) -> Result<EcKey<Public>, ErrorStack> {
    let mut context = BigNumContext::new()?;
    // Refuses a point that is not on the curve. These curves have cofactor 1, so every point
    // on them but infinity is in the prime-order group: EC_KEY_check_key's extra
    // multiplication by the order (as dear as half a verification) would add nothing.
    let point = EcPoint::from_bytes(group, point, &mut context)?;
    if point.is_infinity(group) {
        return Err(ErrorStack::get());
    }
    EcKey::from_public_key(group, &point)
}

/// SHA-2 from the sha2 crate: OpenSSL 3's one-shot digests look the algorithm up in the
/// provider on every call, several times the cost of hashing a certificate.
fn hash(digest: MessageDigest, message: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    match digest.type_() {
        Nid::SHA256 => Some(sha2::Sha256::digest(message).to_vec()),
        Nid::SHA384 => Some(sha2::Sha384::digest(message).to_vec()),
        Nid::SHA512 => Some(sha2::Sha512::digest(message).to_vec()),
        _ => None,
    }
}

fn ecdsa_der_verifies(key: &EcKeyRef<Public>, hashed: &[u8], signature_der: &[u8]) -> bool {
    let Ok(signature) = EcdsaSig::from_der(signature_der) else {
        return false;
    };
    if signature.to_der().ok().as_deref() != Some(signature_der) {
        return false;
    }
    signature.verify(hashed, key).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate of `key`.
    fn self_signed(key: &PKey<openssl::pkey::Private>, digest: MessageDigest) -> Certificate {
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "key test").unwrap();
        let name = name.build();
        let mut builder = openssl::x509::X509::builder().unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(key).unwrap();
        let now = openssl::asn1::Asn1Time::days_from_now(0).unwrap();
        let tomorrow = openssl::asn1::Asn1Time::days_from_now(1).unwrap();
        builder.set_not_before(&now).unwrap();
        builder.set_not_after(&tomorrow).unwrap();
        builder.sign(key, digest).unwrap();
        Certificate::from_der(&builder.build().to_der().unwrap()).unwrap()
    }

    /// A certificate for a new key on `curve`, and that key's signature over `message`.
    fn signed_by_new_key(
        curve: Nid,
        digest: MessageDigest,
        message: &[u8],
    ) -> (Certificate, Vec<u8>) {
        let group = EcGroup::from_curve_name(curve).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut signer = openssl::sign::Signer::new(digest, &key).unwrap();
        signer.update(message).unwrap();
        (self_signed(&key, digest), signer.sign_to_vec().unwrap())
    }

    #[test]
    fn named_curve_keys_skip_the_decoder_and_verify_as_openssl_does() {
        for (curve, digest) in [
            (Nid::X9_62_PRIME256V1, MessageDigest::sha256()),
            (Nid::SECP384R1, MessageDigest::sha384()),
            (Nid::SECP521R1, MessageDigest::sha512()),
        ] {
            let (certificate, signature) = signed_by_new_key(curve, digest, b"message");
            let key = PublicKey::of(&certificate).unwrap();
            assert!(matches!(key, PublicKey::Ec(_)));
            let decoded = PublicKey::Other(
                PKey::public_key_from_der(certificate.public_key_spki_der()).unwrap(),
            );
            for key in [key, decoded] {
                assert!(key.verifies_ecdsa(digest, b"message", &signature));
                assert!(!key.verifies_ecdsa(digest, b"massage", &signature));
                assert!(!key.verifies_ecdsa(MessageDigest::sha1(), b"message", &signature));
            }
        }
    }

    #[test]
    fn only_der_signatures_verify() {
        let digest = MessageDigest::sha256();
        let (certificate, signature) = signed_by_new_key(Nid::X9_62_PRIME256V1, digest, b"m");
        let key = PublicKey::of(&certificate).unwrap();
        assert!(key.verifies_ecdsa(digest, b"m", &signature));
        let mut trailing = signature.clone();
        trailing.push(0);
        assert!(!key.verifies_ecdsa(digest, b"m", &trailing));
        // The same SEQUENCE with a long-form length: BER, not DER.
        let mut long_form = vec![0x30, 0x81, signature[1]];
        long_form.extend_from_slice(&signature[2..]);
        assert!(!key.verifies_ecdsa(digest, b"m", &long_form));
        assert!(!key.verifies_ecdsa(digest, b"m", &[]));
    }

    #[test]
    fn points_off_the_curve_and_infinity_are_refused() {
        let digest = MessageDigest::sha256();
        let (certificate, _) = signed_by_new_key(Nid::X9_62_PRIME256V1, digest, b"m");
        let group = P256.as_ref().unwrap();
        let mut point = certificate.parsed().public_key_bits.clone();
        assert!(ec_key_from_point(group, &point).is_ok());
        let last = point.len() - 1;
        point[last] ^= 1;
        assert!(ec_key_from_point(group, &point).is_err());
        assert!(ec_key_from_point(group, &[0x00]).is_err());
        assert!(ec_key_from_point(group, &[]).is_err());
    }

    #[test]
    fn other_keys_go_through_the_decoder() {
        let key = PKey::generate_ed448().unwrap();
        let certificate = self_signed(&key, MessageDigest::null());
        let key = PublicKey::of(&certificate).unwrap();
        assert_eq!(
            key.as_pkey().map(|key| key.id()),
            Some(openssl::pkey::Id::ED448)
        );
        // An ECDSA signature never verifies with it.
        assert!(!key.verifies_ecdsa(MessageDigest::sha256(), b"m", &[0x30, 0x00]));
    }
}
