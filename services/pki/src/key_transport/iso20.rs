//! ISO 15118-20 contract-key transport (7.9.2.5, iso15118-notes §13.4).
//!
//! Confirmed from the public transcription of the standard text: AES-256-GCM with a random
//! 96-bit IV and a 128-bit tag [V2G20-2494], [V2G20-2497], [V2G20-2500]; AAD = PCID (18 upper-case
//! ASCII characters) ‖ contract certificate SKI as upper-case hex [V2G20-2492]; SECP521 keys
//! left-padded to 66 bytes, field IV ‖ ciphertext ‖ tag = 94 bytes [V2G20-2497]…[V2G20-2499];
//! X448 keys 56 bytes, field 84 bytes [V2G20-2500]…[V2G20-2502]; the EV rejects a SECP521 key
//! whose top 7 bits are set [V2G20-2678].
//!
//! **UNVERIFIED**, and therefore all in [`unconfirmed`]: the session-key KDF (7.9.2.5.4; we have
//! not seen the standard text), the X448 `DHPublicKey` length (57 per the requirements, 133 per
//! the published XSD), and how a 17-character PCID enters the AAD. Do not interoperate on this
//! module's output until [`unconfirmed`] is checked against the standard.
//!
//! An Ed448 provisioning certificate is an X448 recipient: [`seal`] runs the ECDH against the
//! X448 key derived from it ([`super::curve448`], [`unconfirmed::ED448_RECIPIENT`]).

use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use rand::RngCore;
use zeroize::Zeroizing;

use super::{ContractKey, KeyTransportError};
use crate::signer::{KeyAgreement, SignerError, spki_from_uncompressed_point};

/// GCM IV length (96 bits).
pub const IV_LEN: usize = 12;
/// GCM tag length (128 bits).
pub const TAG_LEN: usize = 16;
/// PCID length in the AAD.
pub const PCID_LEN: usize = 18;

/// The `ECDHCurve` of `SignedInstallationData`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    Secp521,
    X448,
}

impl Curve {
    /// Private key length in the plaintext: 66 (521 bits left-padded to 528) or 56.
    pub fn private_key_len(self) -> usize {
        match self {
            Self::Secp521 => 66,
            Self::X448 => 56,
        }
    }

    /// `SECP521_EncryptedPrivateKey` (94) / `X448_EncryptedPrivateKey` (84).
    pub fn encrypted_private_key_len(self) -> usize {
        IV_LEN + self.private_key_len() + TAG_LEN
    }

    /// `DHPublicKey`: 133 for SECP521 (`04 ‖ X ‖ Y`), [`unconfirmed::X448_DH_PUBLIC_KEY_LEN`] for X448.
    pub fn dh_public_key_len(self) -> usize {
        match self {
            Self::Secp521 => 133,
            Self::X448 => unconfirmed::X448_DH_PUBLIC_KEY_LEN,
        }
    }
}

/// Every -20 parameter we could not confirm from the standard text, in one place.
///
/// Change these (and only these) once the text of ISO 15118-20 7.9.2.5.4 is at hand; the tests
/// in this crate only prove self-consistency of these choices, not interoperability.
pub mod unconfirmed {
    /// Hash of the ConcatKDF (NIST SP 800-56A 5.8.1) that turns Z into the 256-bit AES key.
    /// **UNVERIFIED.** Chosen: SHA-512, one round, first 32 bytes, as the only other public
    /// implementation (OpenChargingCloud WWCP_ISO15118) assumes — which it itself marks unverified.
    pub const KDF_HASH: KdfHash = KdfHash::Sha512;

    /// ConcatKDF OtherInfo. **UNVERIFIED.** Chosen: empty (as OpenChargingCloud). The -2 analogue
    /// would be `01 55 56` ([V2G2-818]).
    pub const KDF_OTHER_INFO: &[u8] = &[];

    /// Length of the X448 `DHPublicKey`. **UNVERIFIED / conflicting**: the requirements
    /// ([V2G20-2489], [V2G20-2572]…[V2G20-2574]) give 57 bytes, the published XSD `xs:length 133`.
    /// Chosen: 57 bytes, laid out as [`X448_DH_PUBLIC_KEY_PREFIX`] ‖ raw X448 key (56 bytes).
    pub const X448_DH_PUBLIC_KEY_LEN: usize = 57;

    /// What the 57th byte of an X448 `DHPublicKey` is. **UNVERIFIED.** X448 public keys are
    /// 56 bytes (RFC 7748); chosen: a leading `0x04` marker byte, mirroring the EC form.
    pub const X448_DH_PUBLIC_KEY_PREFIX: u8 = 0x04;

    /// A 17-character PCID in the 18-byte AAD field. **UNVERIFIED.** Chosen: refuse it
    /// ([`super::aad`] returns an error) rather than guess a padding.
    pub const ACCEPT_17_CHARACTER_PCID: bool = false;

    /// How a vehicle with an **Ed448** provisioning certificate takes part in the X448 key
    /// agreement. [V2G20-2491] says only that the public parameters "are derived from the public
    /// ECDSA or EdDSA parameters". Chosen: the RFC 7748 §4.2 4-isogeny of the certificate's
    /// Ed448 key as the recipient X448 key; the EV's X448 private key is the RFC 8032 §5.2.5
    /// secret scalar (first 56 bytes of SHAKE256(seed, 114)). **UNVERIFIED** against the
    /// standard's text (consistent with OpenSSL, see [`super::super::curve448`]).
    pub const ED448_RECIPIENT: Ed448Recipient = Ed448Recipient::IsogenyOfCertificateKey;

    /// What the contract certificate of an X448 vehicle carries. The transported key is
    /// 56 bytes ([V2G20-2500]…[V2G20-2502], confirmed), which is an X448 private key; an Ed448
    /// private key is 57 bytes (RFC 8032) and does not fit. **UNVERIFIED.** Chosen: the contract
    /// certificate carries the X448 public key (id-X448, RFC 8410) of the transported key, so
    /// the EV checks the opened key against the certificate exactly as for SECP521.
    pub const X448_CONTRACT_KEY: X448ContractKey = X448ContractKey::X448;

    /// Choice for [`ED448_RECIPIENT`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Ed448Recipient {
        IsogenyOfCertificateKey,
    }

    /// Choice for [`X448_CONTRACT_KEY`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum X448ContractKey {
        X448,
    }

    /// Hash choice for [`KDF_HASH`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum KdfHash {
        Sha256,
        Sha512,
    }
}

/// `SignedInstallationData`'s encrypted key and DH public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedContractKey {
    pub curve: Curve,
    /// IV (12) ‖ ciphertext ‖ tag (16).
    pub encrypted_private_key: Vec<u8>,
    pub dh_public_key: Vec<u8>,
}

/// AAD = PCID (18 upper-case ASCII) ‖ SKI as upper-case hex [V2G20-2492].
pub fn aad(pcid: &str, contract_certificate_ski: &[u8]) -> Result<Vec<u8>, KeyTransportError> {
    if !pcid.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        return Err(KeyTransportError::InvalidAad(
            "pcid must be alphanumeric".into(),
        ));
    }
    let accepted_length = pcid.len() == PCID_LEN
        || (unconfirmed::ACCEPT_17_CHARACTER_PCID && pcid.len() == PCID_LEN - 1);
    if !accepted_length {
        return Err(KeyTransportError::InvalidAad(format!(
            "pcid must have {PCID_LEN} characters, got {}",
            pcid.len()
        )));
    }
    if contract_certificate_ski.is_empty() {
        return Err(KeyTransportError::InvalidAad("empty ski".into()));
    }
    let mut aad = pcid.to_ascii_uppercase().into_bytes();
    aad.extend(hex::encode_upper(contract_certificate_ski).into_bytes());
    Ok(aad)
}

/// ConcatKDF with the [`unconfirmed`] parameters; 256-bit output.
pub fn session_key(shared_secret: &[u8]) -> Zeroizing<[u8; 32]> {
    use sha2::Digest;
    let mut key = Zeroizing::new([0u8; 32]);
    match unconfirmed::KDF_HASH {
        unconfirmed::KdfHash::Sha512 => {
            let mut hasher = sha2::Sha512::new();
            hasher.update(1u32.to_be_bytes());
            hasher.update(shared_secret);
            hasher.update(unconfirmed::KDF_OTHER_INFO);
            let digest: Zeroizing<[u8; 64]> = Zeroizing::new(hasher.finalize().into());
            key.copy_from_slice(&digest[..32]);
        }
        unconfirmed::KdfHash::Sha256 => {
            let mut hasher = sha2::Sha256::new();
            hasher.update(1u32.to_be_bytes());
            hasher.update(shared_secret);
            hasher.update(unconfirmed::KDF_OTHER_INFO);
            let digest: Zeroizing<[u8; 32]> = Zeroizing::new(hasher.finalize().into());
            key.copy_from_slice(&digest[..]);
        }
    }
    key
}

/// Generates a contract key pair on `curve` (private key in the wire form).
pub fn generate_contract_key(curve: Curve) -> Result<ContractKey, KeyTransportError> {
    match curve {
        Curve::Secp521 => {
            let group = EcGroup::from_curve_name(Nid::SECP521R1)?;
            let key = EcKey::generate(&group)?;
            let scalar = Zeroizing::new(key.private_key().to_vec_padded(66)?);
            let spki = PKey::from_ec_key(key)?.public_key_to_der()?;
            Ok(ContractKey::new(scalar, spki))
        }
        Curve::X448 => {
            let key = PKey::generate_x448()?;
            let raw = Zeroizing::new(key.raw_private_key()?);
            let spki = key.public_key_to_der()?;
            Ok(ContractKey::new(raw, spki))
        }
    }
}

fn ephemeral_and_public(curve: Curve) -> Result<(PKey<Private>, Vec<u8>), KeyTransportError> {
    match curve {
        Curve::Secp521 => {
            let group = EcGroup::from_curve_name(Nid::SECP521R1)?;
            let key = EcKey::generate(&group)?;
            let mut context = BigNumContext::new()?;
            let point = key.public_key().to_bytes(
                &group,
                PointConversionForm::UNCOMPRESSED,
                &mut context,
            )?;
            Ok((PKey::from_ec_key(key)?, point))
        }
        Curve::X448 => {
            let key = PKey::generate_x448()?;
            let mut public = vec![unconfirmed::X448_DH_PUBLIC_KEY_PREFIX];
            public.extend(key.raw_public_key()?);
            Ok((key, public))
        }
    }
}

fn recipient_curve(spki_der: &[u8]) -> Result<Curve, KeyTransportError> {
    let key = PKey::public_key_from_der(spki_der)
        .map_err(|error| KeyTransportError::InvalidRecipientKey(error.to_string()))?;
    match key.id() {
        Id::X448 | Id::ED448 => Ok(Curve::X448),
        Id::EC => {
            let curve = key.ec_key()?.group().curve_name();
            if curve == Some(Nid::SECP521R1) {
                Ok(Curve::Secp521)
            } else {
                Err(KeyTransportError::InvalidRecipientKey(
                    "iso 15118-20 needs secp521r1 or x448".into(),
                ))
            }
        }
        _ => Err(KeyTransportError::InvalidRecipientKey(
            "iso 15118-20 needs secp521r1, x448 or ed448".into(),
        )),
    }
}

/// The key the ECDH runs against: the recipient's own key, or for an Ed448 provisioning
/// certificate the X448 key derived from it ([`unconfirmed::ED448_RECIPIENT`]).
pub fn agreement_recipient_spki(
    recipient_public_key_spki_der: &[u8],
) -> Result<Vec<u8>, KeyTransportError> {
    let key = PKey::public_key_from_der(recipient_public_key_spki_der)
        .map_err(|error| KeyTransportError::InvalidRecipientKey(error.to_string()))?;
    match (key.id(), unconfirmed::ED448_RECIPIENT) {
        (Id::ED448, unconfirmed::Ed448Recipient::IsogenyOfCertificateKey) => {
            super::curve448::x448_spki_from_ed448_spki(recipient_public_key_spki_der)
        }
        _ => Ok(recipient_public_key_spki_der.to_vec()),
    }
}

/// Seals the contract private key to the OEM provisioning key; the curve follows the recipient
/// key [V2G20-2487], [V2G20-2488] (X448 for an Ed448 key, see [`agreement_recipient_spki`]).
pub fn seal(
    recipient_public_key_spki_der: &[u8],
    contract_private_key: &[u8],
    pcid: &str,
    contract_certificate_ski: &[u8],
) -> Result<SealedContractKey, KeyTransportError> {
    let curve = recipient_curve(recipient_public_key_spki_der)?;
    if contract_private_key.len() != curve.private_key_len() {
        return Err(KeyTransportError::BadContractKeyLength {
            expected: curve.private_key_len(),
            actual: contract_private_key.len(),
        });
    }
    let aad = aad(pcid, contract_certificate_ski)?;
    let recipient =
        PKey::public_key_from_der(&agreement_recipient_spki(recipient_public_key_spki_der)?)
            .map_err(|error| KeyTransportError::InvalidRecipientKey(error.to_string()))?;
    let (ephemeral, dh_public_key) = ephemeral_and_public(curve)?;
    let shared_secret = crate::signer::derive_shared_secret(&ephemeral, &recipient)?;
    drop(ephemeral);
    let key = session_key(&shared_secret);
    drop(shared_secret);

    let mut iv = [0u8; IV_LEN];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let mut tag = [0u8; TAG_LEN];
    let ciphertext = encrypt_aead(
        Cipher::aes_256_gcm(),
        key.as_ref(),
        Some(&iv),
        &aad,
        contract_private_key,
        &mut tag,
    )?;
    let mut encrypted_private_key = Vec::with_capacity(curve.encrypted_private_key_len());
    encrypted_private_key.extend_from_slice(&iv);
    encrypted_private_key.extend_from_slice(&ciphertext);
    encrypted_private_key.extend_from_slice(&tag);
    Ok(SealedContractKey {
        curve,
        encrypted_private_key,
        dh_public_key,
    })
}

fn dh_public_key_spki(curve: Curve, dh_public_key: &[u8]) -> Result<Vec<u8>, KeyTransportError> {
    if dh_public_key.len() != curve.dh_public_key_len() {
        return Err(KeyTransportError::InvalidDhPublicKey(format!(
            "must be {} bytes, got {}",
            curve.dh_public_key_len(),
            dh_public_key.len()
        )));
    }
    match curve {
        Curve::Secp521 => spki_from_uncompressed_point(Nid::SECP521R1, dh_public_key)
            .map_err(|error| KeyTransportError::InvalidDhPublicKey(error.to_string())),
        Curve::X448 => {
            if dh_public_key[0] != unconfirmed::X448_DH_PUBLIC_KEY_PREFIX {
                return Err(KeyTransportError::InvalidDhPublicKey(
                    "bad prefix byte".into(),
                ));
            }
            let key = PKey::public_key_from_raw_bytes(&dh_public_key[1..], Id::X448)
                .map_err(|error| KeyTransportError::InvalidDhPublicKey(error.to_string()))?;
            Ok(key.public_key_to_der()?)
        }
    }
}

/// The EV side: decrypts and checks the key against the contract certificate's public key.
pub fn open(
    receiver: &dyn KeyAgreement,
    sealed: &SealedContractKey,
    pcid: &str,
    contract_certificate_ski: &[u8],
    contract_public_key_spki_der: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyTransportError> {
    let curve = sealed.curve;
    if sealed.encrypted_private_key.len() != curve.encrypted_private_key_len() {
        return Err(KeyTransportError::BadEncryptedKeyLength {
            expected: curve.encrypted_private_key_len(),
            actual: sealed.encrypted_private_key.len(),
        });
    }
    let aad = aad(pcid, contract_certificate_ski)?;
    let ephemeral_spki = dh_public_key_spki(curve, &sealed.dh_public_key)?;
    let shared_secret = receiver
        .agree(&ephemeral_spki)
        .map_err(|error| KeyTransportError::InvalidDhPublicKey(error.to_string()))?;
    let key = session_key(&shared_secret);
    drop(shared_secret);

    let field = &sealed.encrypted_private_key;
    let (iv, rest) = field.split_at(IV_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let plaintext = Zeroizing::new(
        decrypt_aead(
            Cipher::aes_256_gcm(),
            key.as_ref(),
            Some(iv),
            &aad,
            ciphertext,
            tag,
        )
        .map_err(|_| KeyTransportError::DecryptionFailed)?,
    );
    match curve {
        Curve::Secp521 => {
            // [V2G20-2678]: the 7 padding bits above the 521-bit scalar must be zero.
            if plaintext[0] & 0xfe != 0 {
                return Err(KeyTransportError::ScalarOutOfRange);
            }
            super::iso2::check_ec_scalar(Nid::SECP521R1, &plaintext, contract_public_key_spki_der)?;
        }
        Curve::X448 => {
            let private = PKey::private_key_from_raw_bytes(&plaintext, Id::X448)
                .map_err(|_| KeyTransportError::ScalarOutOfRange)?;
            if private.public_key_to_der()? != contract_public_key_spki_der {
                return Err(KeyTransportError::PublicKeyMismatch);
            }
        }
    }
    Ok(plaintext)
}

/// An in-memory key-agreement key for -20 receivers (X448 or P-521); the EV simulator's OEM
/// provisioning key. Debug shows only the public key fingerprint.
pub struct SoftwareAgreementKey {
    key: PKey<Private>,
    spki_der: Vec<u8>,
}

impl std::fmt::Debug for SoftwareAgreementKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SoftwareAgreementKey")
            .field(
                "public_key_sha256",
                &crate::signer::public_key_fingerprint(&self.spki_der),
            )
            .finish_non_exhaustive()
    }
}

impl SoftwareAgreementKey {
    pub fn generate(curve: Curve) -> Result<Self, KeyTransportError> {
        let key = match curve {
            Curve::X448 => PKey::generate_x448()?,
            Curve::Secp521 => {
                let group = EcGroup::from_curve_name(Nid::SECP521R1)?;
                PKey::from_ec_key(EcKey::generate(&group)?)?
            }
        };
        let spki_der = key.public_key_to_der()?;
        Ok(Self { key, spki_der })
    }
}

impl KeyAgreement for SoftwareAgreementKey {
    fn agree(&self, peer_public_key_spki_der: &[u8]) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        let peer = PKey::public_key_from_der(peer_public_key_spki_der)
            .map_err(|error| SignerError::InvalidPublicKey(error.to_string()))?;
        crate::signer::derive_shared_secret(&self.key, &peer)
    }

    fn agreement_public_key_spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}
