//! Private keys at rest: one file per key, AES-256-GCM-wrapped PKCS#8 under a key-encryption key.
//!
//! File layout (`<dir>/<key id>.key`, mode 0600):
//!
//! ```text
//! offset  size  content
//! 0       1     format version (1)
//! 1       8     KEK check value: SHA-256("pnc-keystore-kek-check" ‖ KEK)[..8]
//! 9       12    GCM nonce (random per write)
//! 21      n     ciphertext of the PKCS#8 DER
//! 21+n    16    GCM tag
//! ```
//!
//! The AAD is `version ‖ check value ‖ key id`: the key id binds a file to its name (a file
//! renamed to another key's name does not open), and the header bytes are authenticated too.
//! The check value lets a wrong KEK be reported as such instead of as a corrupt file; it reveals
//! nothing useful about a 256-bit random KEK.
//!
//! The KEK file holds 32 random bytes. It is referenced by path (secrets by file, as boulder
//! does) and, when asked to, created with mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::signer::{Signer, SoftwareSigner};

const FORMAT_VERSION: u8 = 1;
const CHECK_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + CHECK_LEN + NONCE_LEN;
/// Length of the key-encryption key in bytes.
pub const KEK_LEN: usize = 32;

/// Key store errors. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("key store i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kek file {path} must hold exactly {KEK_LEN} bytes")]
    BadKekFile { path: PathBuf },
    #[error("invalid key id {0:?} (use 1 to 64 of a-z, 0-9, '-', '_', '.')")]
    BadKeyId(String),
    #[error("key {key_id}: unsupported file format version {version}")]
    UnsupportedVersion { key_id: String, version: u8 },
    #[error("key {key_id}: file is truncated")]
    Truncated { key_id: String },
    #[error("key {key_id}: wrong key-encryption key (the file was written with a different kek)")]
    WrongKek { key_id: String },
    #[error("key {key_id}: authentication failed (file tampered with or corrupt)")]
    Tampered { key_id: String },
    #[error("key {key_id}: {message}")]
    BadKey { key_id: String, message: String },
    #[error("key {key_id} does not exist")]
    NotFound { key_id: String },
    #[error("key {key_id} already exists")]
    AlreadyExists { key_id: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The key-encryption key, wiped on drop.
pub struct Kek(Zeroizing<[u8; KEK_LEN]>);

impl std::fmt::Debug for Kek {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Kek(..)")
    }
}

impl Kek {
    /// Reads a KEK file.
    pub fn load(path: &Path) -> Result<Self, KeyStoreError> {
        let bytes = Zeroizing::new(fs::read(path).map_err(io_error(path))?);
        if bytes.len() != KEK_LEN {
            return Err(KeyStoreError::BadKekFile {
                path: path.to_path_buf(),
            });
        }
        if let Ok(metadata) = fs::metadata(path) {
            if metadata.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "kek file is readable by group or others");
            }
        }
        let mut kek = Zeroizing::new([0u8; KEK_LEN]);
        kek.copy_from_slice(&bytes);
        Ok(Self(kek))
    }

    /// Reads the KEK file, or creates it (32 random bytes, mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyStoreError> {
        if path.exists() {
            return Self::load(path);
        }
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        let mut kek = Zeroizing::new([0u8; KEK_LEN]);
        rand::rngs::OsRng.fill_bytes(kek.as_mut());
        write_new_private_file(path, kek.as_ref())?;
        tracing::info!(path = %path.display(), "created key-encryption key");
        Ok(Self(kek))
    }

    /// A KEK from raw bytes (tests, or a KEK fetched from a secret manager).
    pub fn from_bytes(bytes: [u8; KEK_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    fn check_value(&self) -> [u8; CHECK_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(b"pnc-keystore-kek-check");
        hasher.update(self.0.as_ref());
        let digest = hasher.finalize();
        let mut check = [0u8; CHECK_LEN];
        check.copy_from_slice(&digest[..CHECK_LEN]);
        check
    }
}

/// Writes a new file with mode 0600; fails if it exists.
pub(crate) fn write_new_private_file(path: &Path, content: &[u8]) -> Result<(), KeyStoreError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(content).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))?;
    Ok(())
}

/// A directory of encrypted private keys.
#[derive(Debug)]
pub struct KeyStore {
    directory: PathBuf,
    kek: Kek,
}

fn validate_key_id(key_id: &str) -> Result<(), KeyStoreError> {
    let valid = !key_id.is_empty()
        && key_id.len() <= 64
        && !key_id.starts_with('.')
        && key_id.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte)
        });
    if valid {
        Ok(())
    } else {
        Err(KeyStoreError::BadKeyId(key_id.to_owned()))
    }
}

impl KeyStore {
    /// Opens (creating the directory with mode 0700 if needed) a key store.
    pub fn open(directory: impl Into<PathBuf>, kek: Kek) -> Result<Self, KeyStoreError> {
        let directory = directory.into();
        if !directory.exists() {
            fs::create_dir_all(&directory).map_err(io_error(&directory))?;
            fs::set_permissions(&directory, fs::Permissions::from_mode(0o700))
                .map_err(io_error(&directory))?;
        }
        Ok(Self { directory, kek })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn path_of(&self, key_id: &str) -> PathBuf {
        self.directory.join(format!("{key_id}.key"))
    }

    pub fn contains(&self, key_id: &str) -> bool {
        validate_key_id(key_id).is_ok() && self.path_of(key_id).exists()
    }

    /// Encrypts and stores the signer's key under its key id. Never overwrites.
    pub fn store(&self, signer: &SoftwareSigner) -> Result<(), KeyStoreError> {
        let key_id = signer.key_id();
        validate_key_id(key_id)?;
        let path = self.path_of(key_id);
        if path.exists() {
            return Err(KeyStoreError::AlreadyExists {
                key_id: key_id.to_owned(),
            });
        }
        let pkcs8 = signer
            .export_pkcs8_der()
            .map_err(|error| KeyStoreError::BadKey {
                key_id: key_id.to_owned(),
                message: error.to_string(),
            })?;
        let sealed = self.seal(key_id, &pkcs8)?;
        write_new_private_file(&path, &sealed)
    }

    /// Generates a key, stores it, and returns the signer.
    pub fn generate(
        &self,
        key_id: &str,
        algorithm: crate::SignatureAlgorithm,
    ) -> Result<Arc<SoftwareSigner>, KeyStoreError> {
        validate_key_id(key_id)?;
        let signer =
            SoftwareSigner::generate(key_id, algorithm).map_err(|error| KeyStoreError::BadKey {
                key_id: key_id.to_owned(),
                message: error.to_string(),
            })?;
        self.store(&signer)?;
        Ok(Arc::new(signer))
    }

    /// Loads and decrypts a key.
    pub fn load(&self, key_id: &str) -> Result<Arc<SoftwareSigner>, KeyStoreError> {
        validate_key_id(key_id)?;
        let path = self.path_of(key_id);
        if !path.exists() {
            return Err(KeyStoreError::NotFound {
                key_id: key_id.to_owned(),
            });
        }
        let sealed = fs::read(&path).map_err(io_error(&path))?;
        let pkcs8 = self.open_sealed(key_id, &sealed)?;
        let signer = SoftwareSigner::from_pkcs8_der(key_id, &pkcs8).map_err(|error| {
            KeyStoreError::BadKey {
                key_id: key_id.to_owned(),
                message: error.to_string(),
            }
        })?;
        Ok(Arc::new(signer))
    }

    fn aad(key_id: &str, check: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(1 + CHECK_LEN + key_id.len());
        aad.push(FORMAT_VERSION);
        aad.extend_from_slice(check);
        aad.extend_from_slice(key_id.as_bytes());
        aad
    }

    fn seal(&self, key_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        let check = self.kek.check_value();
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut tag = [0u8; TAG_LEN];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            self.kek.0.as_ref(),
            Some(&nonce),
            &Self::aad(key_id, &check),
            plaintext,
            &mut tag,
        )
        .map_err(|error| KeyStoreError::BadKey {
            key_id: key_id.to_owned(),
            message: format!("encryption failed: {error}"),
        })?;
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len() + TAG_LEN);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&check);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn open_sealed(
        &self,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
        let owned_id = || key_id.to_owned();
        let Some(&version) = sealed.first() else {
            return Err(KeyStoreError::Truncated { key_id: owned_id() });
        };
        if version != FORMAT_VERSION {
            return Err(KeyStoreError::UnsupportedVersion {
                key_id: owned_id(),
                version,
            });
        }
        if sealed.len() < HEADER_LEN + TAG_LEN {
            return Err(KeyStoreError::Truncated { key_id: owned_id() });
        }
        let check = &sealed[1..1 + CHECK_LEN];
        if check != self.kek.check_value() {
            return Err(KeyStoreError::WrongKek { key_id: owned_id() });
        }
        let nonce = &sealed[1 + CHECK_LEN..HEADER_LEN];
        let (ciphertext, tag) = sealed[HEADER_LEN..].split_at(sealed.len() - HEADER_LEN - TAG_LEN);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            self.kek.0.as_ref(),
            Some(nonce),
            &Self::aad(key_id, check),
            ciphertext,
            tag,
        )
        .map(Zeroizing::new)
        .map_err(|_| KeyStoreError::Tampered { key_id: owned_id() })
    }
}
