//! Contract-key transport: the backend seals a freshly generated contract private key to the
//! vehicle's key; the EV opens it.
//!
//! - [`iso2`]: ISO 15118-2 §7.9.2.4.3 — ephemeral-static ECDH on P-256, ConcatKDF(SHA-256,
//!   OtherInfo `01 55 56`), AES-128-CBC without padding. Confirmed against four independent
//!   implementations (iso15118-notes §7.1) and cross-checked in this crate's tests.
//! - [`iso20`]: ISO 15118-20 §7.9.2.5 — ECDH on P-521 or X448, AES-256-GCM with AAD
//!   = PCID ‖ SKI. **The session-key KDF is unverified**; every unconfirmed parameter sits in
//!   [`iso20::unconfirmed`]. Ed448 vehicles agree on X448 through [`curve448`].
//!
//! Both sides wipe the ephemeral private key (OpenSSL clears key scalars on free), the shared
//! secret, the session key and the plaintext contract key ([`zeroize::Zeroizing`]) after use.

use std::fmt;

use zeroize::Zeroizing;

pub mod curve448;
pub mod iso2;
pub mod iso20;

/// Key-transport failures. None carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyTransportError {
    #[error("invalid recipient public key: {0}")]
    InvalidRecipientKey(String),
    #[error("invalid dh public key: {0}")]
    InvalidDhPublicKey(String),
    #[error("encrypted private key must be {expected} bytes, got {actual}")]
    BadEncryptedKeyLength { expected: usize, actual: usize },
    #[error("contract private key must be {expected} bytes, got {actual}")]
    BadContractKeyLength { expected: usize, actual: usize },
    #[error("decryption failed (wrong receiver key, wrong aad or tampered data)")]
    DecryptionFailed,
    #[error("decrypted key is out of range (zero, not below the group order, or top bits set)")]
    ScalarOutOfRange,
    #[error("decrypted key does not reproduce the contract certificate's public key")]
    PublicKeyMismatch,
    #[error("the receiver key cannot do key agreement")]
    NoKeyAgreement,
    #[error("invalid aad input: {0}")]
    InvalidAad(String),
    #[error("crypto backend: {0}")]
    Backend(String),
}

impl From<openssl::error::ErrorStack> for KeyTransportError {
    fn from(error: openssl::error::ErrorStack) -> Self {
        Self::Backend(error.to_string())
    }
}

impl From<crate::signer::SignerError> for KeyTransportError {
    fn from(error: crate::signer::SignerError) -> Self {
        Self::Backend(error.to_string())
    }
}

/// A freshly generated contract key pair: the private key in the wire form (big-endian scalar,
/// left-padded; raw X448 bytes) and the public key for the certificate. The private part is
/// wiped on drop and never Debug-printed.
pub struct ContractKey {
    private_key: Zeroizing<Vec<u8>>,
    public_key_spki_der: Vec<u8>,
}

impl fmt::Debug for ContractKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ContractKey")
            .field(
                "public_key_sha256",
                &crate::signer::public_key_fingerprint(&self.public_key_spki_der),
            )
            .finish_non_exhaustive()
    }
}

impl ContractKey {
    pub(crate) fn new(private_key: Zeroizing<Vec<u8>>, public_key_spki_der: Vec<u8>) -> Self {
        Self {
            private_key,
            public_key_spki_der,
        }
    }

    /// The private key bytes, to be sealed and then dropped.
    pub fn private_key(&self) -> &[u8] {
        &self.private_key
    }

    pub fn public_key_spki_der(&self) -> &[u8] {
        &self.public_key_spki_der
    }
}
