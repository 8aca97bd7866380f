//! pnc-pki: ISO 15118 certificate profiles, issuance, the `Signer` seam, the encrypted key store,
//! the development PKI, path validation for foreign certificates and contract-key transport.
//!
//! Layout, one job per module:
//! - [`profile`]: Annex F profiles and the linter (`pnc pki check`).
//! - [`issue()`]: template → deterministic TBS → lint → sign → verify → lint again.
//! - [`signer`]: the [`Signer`] trait and [`SoftwareSigner`]; the PKCS#11 seam.
//! - [`keystore`]: AES-256-GCM-wrapped PKCS#8 files under a KEK file.
//! - [`dev`]: the ISO 15118-2 test hierarchy ([`DevPki`]).
//! - [`path`]: [`validate_path`] with named [`Leniency`] policies.
//! - [`public_key`]: certificate keys ready to verify with, EC keys without OpenSSL 3's decoder.
//! - [`key_transport`]: ISO 15118-2 and -20 contract-key transport.
//! - [`cli`]: `pnc pki init|check`.

pub mod certificate;
pub mod cli;
mod der;
pub mod dev;
pub mod ids;
pub mod issue;
pub mod key_transport;
pub mod keystore;
pub mod path;
pub mod pem;
pub mod profile;
pub mod public_key;
pub mod signer;

pub use certificate::{Certificate, CertificateError, DistinguishedName};

pub use dev::{DevCert, DevEntry, DevPki, DevPkiError, DevPkiOptions, PlaintextTestKeys};
pub use issue::{CertificateTemplate, IssueError, SubjectName, issue};
pub use keystore::{Kek, KeyStore, KeyStoreError};

pub use path::{
    AlgorithmPolicy, CertPosition, IssuerPath, Leniency, PathError, ValidatedPath,
    ValidationOptions, validate_path, validate_path_with,
};
pub use profile::{CheckReport, Finding, Profile, Severity};
pub use signer::{KeyAgreement, SignatureAlgorithm, Signer, SignerError, SoftwareSigner};
