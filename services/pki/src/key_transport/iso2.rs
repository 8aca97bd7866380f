//! ISO 15118-2 contract-key transport ([V2G2-814] … [V2G2-823], iso15118-notes §7.1).
//!
//! ```text
//! sender (backend)                                   receiver (EV)
//! e ← random P-256 key pair                          static key s (OEM provisioning for
//! Z ← x(e · S)                                         Install, old contract for Update)
//! K ← SHA-256(00000001 ‖ Z ‖ 01 55 56)[..16]         Z ← x(s · E), K as left
//! IV ← 16 random bytes                               scalar ← AES-128-CBC⁻¹(K, IV, C)
//! C ← AES-128-CBC(K, IV, scalar), no padding         check scalar < n and scalar·G = contract key
//! send IV ‖ C (48 bytes) and E = 04‖X‖Y (65 bytes)
//! ```

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::symm::{Cipher, Crypter, Mode};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{ContractKey, KeyTransportError};
use crate::signer::{KeyAgreement, spki_from_uncompressed_point, uncompressed_point_from_spki};

/// `ContractSignatureEncryptedPrivateKey`: IV (16) ‖ ciphertext (32).
pub const ENCRYPTED_PRIVATE_KEY_LEN: usize = 48;
/// `DHpublickey`: uncompressed P-256 point.
pub const DH_PUBLIC_KEY_LEN: usize = 65;
/// The contract private key: a 32-byte big-endian scalar.
pub const CONTRACT_PRIVATE_KEY_LEN: usize = 32;
/// ConcatKDF OtherInfo: AlgorithmID 0x01 ‖ PartyUInfo "U" ‖ PartyVInfo "V" [V2G2-818].
pub const OTHER_INFO: [u8; 3] = [0x01, 0x55, 0x56];
const IV_LEN: usize = 16;

/// The two response elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedContractKey {
    pub encrypted_private_key: [u8; ENCRYPTED_PRIVATE_KEY_LEN],
    pub dh_public_key: [u8; DH_PUBLIC_KEY_LEN],
}

impl SealedContractKey {
    /// From the bytes of a message, checking the lengths.
    pub fn from_slices(
        encrypted_private_key: &[u8],
        dh_public_key: &[u8],
    ) -> Result<Self, KeyTransportError> {
        let encrypted_private_key: [u8; ENCRYPTED_PRIVATE_KEY_LEN] = encrypted_private_key
            .try_into()
            .map_err(|_| KeyTransportError::BadEncryptedKeyLength {
                expected: ENCRYPTED_PRIVATE_KEY_LEN,
                actual: encrypted_private_key.len(),
            })?;
        let dh_public_key: [u8; DH_PUBLIC_KEY_LEN] = dh_public_key.try_into().map_err(|_| {
            KeyTransportError::InvalidDhPublicKey(format!(
                "must be {DH_PUBLIC_KEY_LEN} bytes, got {}",
                dh_public_key.len()
            ))
        })?;
        Ok(Self {
            encrypted_private_key,
            dh_public_key,
        })
    }
}

/// ConcatKDF (NIST SP 800-56A 5.8.1) with SHA-256 and a 128-bit output: one round,
/// `SHA-256(00000001 ‖ Z ‖ OtherInfo)[..16]` [V2G2-818].
pub fn session_key(shared_secret: &[u8]) -> Zeroizing<[u8; 16]> {
    let mut hasher = Sha256::new();
    hasher.update(1u32.to_be_bytes());
    hasher.update(shared_secret);
    hasher.update(OTHER_INFO);
    let digest: Zeroizing<[u8; 32]> = Zeroizing::new(hasher.finalize().into());
    let mut key = Zeroizing::new([0u8; 16]);
    key.copy_from_slice(&digest[..16]);
    key
}

/// Generates a P-256 contract key pair.
pub fn generate_contract_key() -> Result<ContractKey, KeyTransportError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = EcKey::generate(&group)?;
    let scalar = Zeroizing::new(
        key.private_key()
            .to_vec_padded(CONTRACT_PRIVATE_KEY_LEN as i32)?,
    );
    let spki = PKey::from_ec_key(key)?.public_key_to_der()?;
    Ok(ContractKey::new(scalar, spki))
}

fn aes_128_cbc(
    mode: Mode,
    key: &[u8; 16],
    iv: &[u8],
    input: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyTransportError> {
    let cipher = Cipher::aes_128_cbc();
    let mut crypter = Crypter::new(cipher, mode, key, Some(iv))?;
    // [V2G2-816]: no padding; the input is exactly two blocks.
    crypter.pad(false);
    let mut out = Zeroizing::new(vec![0u8; input.len() + cipher.block_size()]);
    let mut written = crypter.update(input, &mut out)?;
    written += crypter.finalize(&mut out[written..])?;
    out.truncate(written);
    Ok(out)
}

/// Seals `contract_private_key` (32-byte scalar) to the recipient's static P-256 key
/// (the OEM provisioning certificate's for Install, the old contract certificate's for Update).
pub fn seal(
    recipient_public_key_spki_der: &[u8],
    contract_private_key: &[u8],
) -> Result<SealedContractKey, KeyTransportError> {
    if contract_private_key.len() != CONTRACT_PRIVATE_KEY_LEN {
        return Err(KeyTransportError::BadContractKeyLength {
            expected: CONTRACT_PRIVATE_KEY_LEN,
            actual: contract_private_key.len(),
        });
    }
    let (curve, _) = uncompressed_point_from_spki(recipient_public_key_spki_der)
        .map_err(|error| KeyTransportError::InvalidRecipientKey(error.to_string()))?;
    if curve != Nid::X9_62_PRIME256V1 {
        return Err(KeyTransportError::InvalidRecipientKey(
            "iso 15118-2 needs a secp256r1 key".into(),
        ));
    }
    let recipient = PKey::public_key_from_der(recipient_public_key_spki_der)
        .map_err(|error| KeyTransportError::InvalidRecipientKey(error.to_string()))?;

    // The ephemeral key lives only in this scope; OpenSSL clears its scalar on drop.
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let ephemeral = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let shared_secret = crate::signer::derive_shared_secret(&ephemeral, &recipient)?;
    let key = session_key(&shared_secret);
    drop(shared_secret);

    let mut iv = [0u8; IV_LEN];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let ciphertext = aes_128_cbc(Mode::Encrypt, &key, &iv, contract_private_key)?;

    let mut encrypted_private_key = [0u8; ENCRYPTED_PRIVATE_KEY_LEN];
    encrypted_private_key[..IV_LEN].copy_from_slice(&iv);
    encrypted_private_key[IV_LEN..].copy_from_slice(&ciphertext);

    let ephemeral_ec = ephemeral.ec_key()?;
    let mut context = BigNumContext::new()?;
    let point = ephemeral_ec.public_key().to_bytes(
        &group,
        PointConversionForm::UNCOMPRESSED,
        &mut context,
    )?;
    let dh_public_key: [u8; DH_PUBLIC_KEY_LEN] = point
        .as_slice()
        .try_into()
        .map_err(|_| KeyTransportError::Backend("unexpected point length".into()))?;
    Ok(SealedContractKey {
        encrypted_private_key,
        dh_public_key,
    })
}

/// The EV side: decrypts with the receiver's static key and checks the result against the
/// contract certificate's public key [V2G2-823]. Returns the 32-byte scalar, wiped on drop.
pub fn open(
    receiver: &dyn KeyAgreement,
    sealed: &SealedContractKey,
    contract_public_key_spki_der: &[u8],
) -> Result<Zeroizing<[u8; CONTRACT_PRIVATE_KEY_LEN]>, KeyTransportError> {
    let ephemeral_spki = spki_from_uncompressed_point(Nid::X9_62_PRIME256V1, &sealed.dh_public_key)
        .map_err(|error| KeyTransportError::InvalidDhPublicKey(error.to_string()))?;
    let shared_secret = receiver
        .agree(&ephemeral_spki)
        .map_err(|error| KeyTransportError::InvalidDhPublicKey(error.to_string()))?;
    let key = session_key(&shared_secret);
    drop(shared_secret);

    let (iv, ciphertext) = sealed.encrypted_private_key.split_at(IV_LEN);
    let plaintext = aes_128_cbc(Mode::Decrypt, &key, iv, ciphertext)?;
    let mut scalar = Zeroizing::new([0u8; CONTRACT_PRIVATE_KEY_LEN]);
    if plaintext.len() != CONTRACT_PRIVATE_KEY_LEN {
        return Err(KeyTransportError::DecryptionFailed);
    }
    scalar.copy_from_slice(&plaintext);
    check_scalar(&scalar[..], contract_public_key_spki_der)?;
    Ok(scalar)
}

/// [V2G2-823]: 0 < scalar < n, and scalar · G is the contract certificate's public key.
pub fn check_scalar(
    scalar: &[u8],
    contract_public_key_spki_der: &[u8],
) -> Result<(), KeyTransportError> {
    check_ec_scalar(Nid::X9_62_PRIME256V1, scalar, contract_public_key_spki_der)
}

pub(crate) fn check_ec_scalar(
    curve: Nid,
    scalar: &[u8],
    contract_public_key_spki_der: &[u8],
) -> Result<(), KeyTransportError> {
    let group = EcGroup::from_curve_name(curve)?;
    let mut context = BigNumContext::new()?;
    let mut order = BigNum::new()?;
    group.order(&mut order, &mut context)?;
    let value = BigNum::from_slice(scalar)?;
    if value.num_bits() == 0 || value >= order {
        return Err(KeyTransportError::ScalarOutOfRange);
    }
    let mut point = EcPoint::new(&group)?;
    point.mul_generator2(&group, &value, &mut context)?;
    let derived = point.to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut context)?;
    let (expected_curve, expected) = uncompressed_point_from_spki(contract_public_key_spki_der)
        .map_err(|error| KeyTransportError::InvalidRecipientKey(error.to_string()))?;
    if expected_curve != curve || derived != expected {
        return Err(KeyTransportError::PublicKeyMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdf_matches_the_formula_by_hand() {
        // Frozen fixture: Z = 00 01 02 … 1f; K = SHA-256(00000001 ‖ Z ‖ 01 55 56)[..16],
        // computed once with `openssl dgst -sha256` (tests/key_transport.rs recomputes it with
        // the openssl command line).
        let z: Vec<u8> = (0u8..32).collect();
        assert_eq!(
            hex::encode(&session_key(&z)[..]),
            "477b6018ced06f1febd5e7f86763b45d"
        );
    }
}
