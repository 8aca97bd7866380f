//! Ed448 → X448 for ISO 15118-20 vehicles whose OEM provisioning certificate is Ed448:
//! "public parameters are derived from the public ECDSA or EdDSA parameters" [V2G20-2491], so
//! the backend runs the X448 ECDH against a key derived from the certificate's Ed448 key and
//! the EV derives the matching X448 private key from its Ed448 private key.
//!
//! - Public: the 4-isogeny of RFC 7748 §4.2, `u = y²/x²`; with `x² = (y² − 1)/(d·y² − 1)`
//!   (edwards448, d = −39081) this is `u = y²·(d·y² − 1)/(y² − 1) mod p` — no square root.
//! - Private: the RFC 8032 §5.2.5 secret scalar, the first 56 bytes of SHAKE256(seed, 114)
//!   (X448 applies the same pruning itself).
//!
//! That the two agree (X448(derived private) = mapped public, no cofactor factor) is proven
//! against OpenSSL in this module's tests and on the RFC 8032 test vectors. The map itself is
//! mathematics, not an assumption about the standard; which key the EV derives is fixed by
//! [V2G20-2491] only in words, so it sits in `iso20::unconfirmed` together with the rest.

use openssl::bn::{BigNum, BigNumContext};
use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::{Id, PKey, Private, Public};
use zeroize::Zeroizing;

use super::KeyTransportError;
use crate::signer::{KeyAgreement, SignerError};

/// Raw Ed448 key lengths (RFC 8032): public key and private seed.
pub const ED448_KEY_LEN: usize = 57;
/// Raw X448 key length (RFC 7748).
pub const X448_KEY_LEN: usize = 56;

fn backend(error: openssl::error::ErrorStack) -> KeyTransportError {
    KeyTransportError::Backend(error.to_string())
}

/// p = 2⁴⁴⁸ − 2²²⁴ − 1 and d = −39081 mod p (checked against the formulas in the tests).
const P_HEX: &str = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const D_HEX: &str = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffffffffffffffffffffffffffffffffffffffffffffffff6756";

fn field() -> Result<(BigNum, BigNum), openssl::error::ErrorStack> {
    Ok((BigNum::from_hex_str(P_HEX)?, BigNum::from_hex_str(D_HEX)?))
}

fn little_endian_to_bignum(bytes: &[u8]) -> Result<BigNum, openssl::error::ErrorStack> {
    let mut big_endian = bytes.to_vec();
    big_endian.reverse();
    BigNum::from_slice(&big_endian)
}

/// The X448 public key (u, 56 bytes little-endian) of a raw Ed448 public key (57 bytes).
/// Refuses non-canonical encodings and the points with y² = 1 (no u: identity and (0, −1)).
pub fn x448_public_from_ed448(ed448_public: &[u8]) -> Result<[u8; 56], KeyTransportError> {
    let invalid = |why: &str| KeyTransportError::InvalidRecipientKey(format!("ed448 key: {why}"));
    if ed448_public.len() != ED448_KEY_LEN {
        return Err(invalid("must be 57 bytes"));
    }
    // Byte 56 holds only x's sign bit (bit 7); the other bits are zero in a valid encoding.
    if ed448_public[56] & 0x7f != 0 {
        return Err(invalid("non-canonical encoding"));
    }
    let (p, d) = field().map_err(backend)?;
    let y = little_endian_to_bignum(&ed448_public[..56]).map_err(backend)?;
    if y >= p {
        return Err(invalid("y is not below p"));
    }
    let mut context = BigNumContext::new().map_err(backend)?;
    let one = BigNum::from_u32(1).map_err(backend)?;
    let mut y_squared = BigNum::new().map_err(backend)?;
    y_squared.mod_sqr(&y, &p, &mut context).map_err(backend)?;
    let mut denominator = BigNum::new().map_err(backend)?;
    denominator
        .mod_sub(&y_squared, &one, &p, &mut context)
        .map_err(backend)?;
    if denominator.num_bits() == 0 {
        return Err(invalid("low-order point"));
    }
    let mut d_y_squared = BigNum::new().map_err(backend)?;
    d_y_squared
        .mod_mul(&d, &y_squared, &p, &mut context)
        .map_err(backend)?;
    let mut numerator_factor = BigNum::new().map_err(backend)?;
    numerator_factor
        .mod_sub(&d_y_squared, &one, &p, &mut context)
        .map_err(backend)?;
    let mut numerator = BigNum::new().map_err(backend)?;
    numerator
        .mod_mul(&y_squared, &numerator_factor, &p, &mut context)
        .map_err(backend)?;
    let mut inverse = BigNum::new().map_err(backend)?;
    inverse
        .mod_inverse(&denominator, &p, &mut context)
        .map_err(backend)?;
    let mut u = BigNum::new().map_err(backend)?;
    u.mod_mul(&numerator, &inverse, &p, &mut context)
        .map_err(backend)?;
    let mut encoded = u.to_vec_padded(56).map_err(backend)?;
    encoded.reverse();
    let mut out = [0u8; 56];
    out.copy_from_slice(&encoded);
    Ok(out)
}

/// The X448 public key (SPKI DER) derived from an Ed448 public key (SPKI DER).
pub fn x448_spki_from_ed448_spki(ed448_spki_der: &[u8]) -> Result<Vec<u8>, KeyTransportError> {
    let key = PKey::public_key_from_der(ed448_spki_der)
        .map_err(|error| KeyTransportError::InvalidRecipientKey(error.to_string()))?;
    if key.id() != Id::ED448 {
        return Err(KeyTransportError::InvalidRecipientKey(
            "not an ed448 key".into(),
        ));
    }
    let raw = key.raw_public_key().map_err(backend)?;
    let u = x448_public_from_ed448(&raw)?;
    let x448: PKey<Public> = PKey::public_key_from_raw_bytes(&u, Id::X448).map_err(backend)?;
    x448.public_key_to_der().map_err(backend)
}

/// The EV side: the X448 private key (56 bytes) of an Ed448 seed (57 bytes), i.e. the
/// RFC 8032 §5.2.5 secret scalar before pruning.
pub fn x448_private_from_ed448(
    ed448_seed: &[u8],
) -> Result<Zeroizing<[u8; 56]>, KeyTransportError> {
    if ed448_seed.len() != ED448_KEY_LEN {
        return Err(KeyTransportError::InvalidRecipientKey(
            "ed448 private key must be 57 bytes".into(),
        ));
    }
    let mut hasher = Hasher::new(MessageDigest::shake_256()).map_err(backend)?;
    hasher.update(ed448_seed).map_err(backend)?;
    let mut digest = Zeroizing::new([0u8; 114]);
    hasher.finish_xof(digest.as_mut()).map_err(backend)?;
    let mut scalar = Zeroizing::new([0u8; 56]);
    scalar.copy_from_slice(&digest[..56]);
    Ok(scalar)
}

/// An EV's Ed448 provisioning key used for the -20 key transport: agrees on X448 with the
/// derived private key. Debug shows only the public key fingerprint.
pub struct Ed448AgreementKey {
    x448: PKey<Private>,
    spki_der: Vec<u8>,
}

impl std::fmt::Debug for Ed448AgreementKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Ed448AgreementKey")
            .field(
                "x448_public_key_sha256",
                &crate::signer::public_key_fingerprint(&self.spki_der),
            )
            .finish_non_exhaustive()
    }
}

impl Ed448AgreementKey {
    pub fn from_ed448(key: &PKey<Private>) -> Result<Self, KeyTransportError> {
        if key.id() != Id::ED448 {
            return Err(KeyTransportError::NoKeyAgreement);
        }
        let seed = Zeroizing::new(key.raw_private_key().map_err(backend)?);
        let scalar = x448_private_from_ed448(&seed)?;
        let x448 = PKey::private_key_from_raw_bytes(scalar.as_ref(), Id::X448).map_err(backend)?;
        let spki_der = x448.public_key_to_der().map_err(backend)?;
        Ok(Self { x448, spki_der })
    }
}

impl KeyAgreement for Ed448AgreementKey {
    fn agree(&self, peer_public_key_spki_der: &[u8]) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        let peer = PKey::public_key_from_der(peer_public_key_spki_der)
            .map_err(|error| SignerError::InvalidPublicKey(error.to_string()))?;
        crate::signer::derive_shared_secret(&self.x448, &peer)
    }

    /// The derived X448 public key.
    fn agreement_public_key_spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::derive::Deriver;

    fn openssl_x448_public(private: &[u8]) -> Vec<u8> {
        PKey::private_key_from_raw_bytes(private, Id::X448)
            .expect("x448 key")
            .raw_public_key()
            .expect("raw")
    }

    #[test]
    fn ok_field_constants_follow_their_formulas() {
        let (p, d) = field().expect("field");
        let mut context = BigNumContext::new().expect("context");
        let mut two_448 = BigNum::new().expect("bn");
        two_448
            .lshift(&BigNum::from_u32(1).expect("bn"), 448)
            .expect("shift");
        let mut two_224 = BigNum::new().expect("bn");
        two_224
            .lshift(&BigNum::from_u32(1).expect("bn"), 224)
            .expect("shift");
        let mut sum = BigNum::new().expect("bn");
        sum.checked_add(&p, &two_224).expect("add");
        let mut expected = BigNum::new().expect("bn");
        expected
            .checked_add(&sum, &BigNum::from_u32(1).expect("bn"))
            .expect("add");
        assert_eq!(expected, two_448, "p + 2^224 + 1 = 2^448");
        let mut zero = BigNum::new().expect("bn");
        zero.mod_add(&d, &BigNum::from_u32(39081).expect("bn"), &p, &mut context)
            .expect("add");
        assert_eq!(zero.num_bits(), 0, "d + 39081 = 0 mod p");
    }

    #[test]
    fn ok_rfc8032_vectors_map_consistently_with_openssl_x448() {
        // RFC 8032 §7.4 "Blank", "1 octet" and "11 octets": (seed, public key).
        let vectors = [
            (
                "6c82a562cb808d10d632be89c8513ebf6c929f34ddfa8c9f63c9960ef6e348a3528c8a3fcc2f044e39a3fc5b94492f8f032e7549a20098f95b",
                "5fd7449b59b461fd2ce787ec616ad46a1da1342485a70e1f8a0ea75d80e96778edf124769b46c7061bd6783df1e50f6cd1fa1abeafe8256180",
            ),
            (
                "c4eab05d357007c632f3dbb48489924d552b08fe0c353a0d4a1f00acda2c463afbea67c5e8d2877c5e3bc397a659949ef8021e954e0a12274e",
                "43ba28f430cdff456ae531545f7ecd0ac834a55d9358c0372bfa0c6c6798c0866aea01eb00742802b8438ea4cb82169c235160627b4c3a9480",
            ),
            (
                "cd23d24f714274e744343237b93290f511f6425f98e64459ff203e8985083ffdf60500553abc0e05cd02184bdb89c4ccd67e187951267eb328",
                "dcea9e78f35a1bf3499a831b10b86c90aac01cd84b67a0109b55a36e9328b1e365fce161d71ce7131a543ea4cb5f7e9f1d8b00696447001400",
            ),
        ];
        for (seed, public) in vectors {
            let seed = hex::decode(seed).expect("hex");
            let public = hex::decode(public).expect("hex");
            // OpenSSL's own Ed448 agrees with the vector (the vector is read correctly).
            let ed448 = PKey::private_key_from_raw_bytes(&seed, Id::ED448).expect("ed448");
            assert_eq!(ed448.raw_public_key().expect("raw"), public);
            let private = x448_private_from_ed448(&seed).expect("derive");
            let mapped = x448_public_from_ed448(&public).expect("map");
            assert_eq!(openssl_x448_public(private.as_ref()), mapped.to_vec());
        }
    }

    #[test]
    fn ok_random_keys_agree_on_both_sides_through_openssl() {
        for _ in 0..8 {
            let ed448 = PKey::generate_ed448().expect("ed448");
            let ev = Ed448AgreementKey::from_ed448(&ed448).expect("agreement key");
            let certificate_spki = ed448.public_key_to_der().expect("spki");
            let mapped_spki = x448_spki_from_ed448_spki(&certificate_spki).expect("map");
            assert_eq!(ev.agreement_public_key_spki_der(), mapped_spki.as_slice());

            // ECDH: backend with an ephemeral X448 key against the mapped key, EV with its
            // derived private key against the ephemeral public key.
            let ephemeral = PKey::generate_x448().expect("x448");
            let mapped = PKey::public_key_from_der(&mapped_spki).expect("x448 public");
            let mut deriver = Deriver::new(&ephemeral).expect("deriver");
            deriver.set_peer(&mapped).expect("peer");
            let backend_secret = deriver.derive_to_vec().expect("derive");
            let ev_secret = ev
                .agree(&ephemeral.public_key_to_der().expect("spki"))
                .expect("agree");
            assert_eq!(backend_secret, ev_secret.to_vec());
        }
    }

    #[test]
    fn fail_malformed_ed448_public_keys_are_refused() {
        assert!(x448_public_from_ed448(&[0u8; 56]).is_err(), "short");
        let mut non_canonical = [0u8; 57];
        non_canonical[56] = 0x01;
        assert!(x448_public_from_ed448(&non_canonical).is_err());
        // y = 1: the identity, no u.
        let mut identity = [0u8; 57];
        identity[0] = 1;
        assert!(x448_public_from_ed448(&identity).is_err());
        // y = p (not reduced).
        let mut unreduced = [0xffu8; 57];
        unreduced[28] = 0xfe;
        unreduced[56] = 0;
        assert!(x448_public_from_ed448(&unreduced).is_err());
        let p256 = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("group"),
        )
        .expect("key");
        let spki = PKey::from_ec_key(p256)
            .expect("pkey")
            .public_key_to_der()
            .expect("spki");
        assert!(x448_spki_from_ed448_spki(&spki).is_err());
    }
}
