//! The internal CA that authenticates pnc's components to each other over mTLS.
//!
//! Made on first start in `data_dir/internal-ca/` (or read from the configured files),
//! so every process sharing a data dir trusts the same CA without extra set-up. Each
//! process issues itself a short-lived leaf at start: CN = its component name (the
//! identity the callee checks against its allowlist), SAN `pnc-internal` (the name every
//! client verifies) plus `localhost` and 127.0.0.1.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};

use crate::component::Component;
use crate::config::Config;

/// The DNS name in every internal certificate; clients verify servers against it.
pub const INTERNAL_SERVER_NAME: &str = "pnc-internal";

const CA_VALIDITY_DAYS: u32 = 3650;
const LEAF_VALIDITY_DAYS: u32 = 90;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("internal CA: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("internal CA file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "internal CA: set both internal_tls.ca_cert_file and internal_tls.ca_key_file, or neither"
    )]
    HalfConfigured,
}

/// The CA certificate and key.
pub struct InternalCa {
    cert: X509,
    key: PKey<Private>,
}

impl std::fmt::Debug for InternalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalCa")
            .field("subject", &self.cert.subject_name())
            .finish_non_exhaustive()
    }
}

/// A component's view of internal TLS: the CA to trust and its own identity.
#[derive(Clone)]
pub struct InternalTls {
    pub component: Component,
    pub ca_cert_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for InternalTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalTls")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

impl InternalCa {
    /// The configured CA, or the one in the data dir, made if absent.
    pub fn from_config(config: &Config) -> Result<InternalCa, TlsError> {
        match (
            &config.internal_tls.ca_cert_file,
            &config.internal_tls.ca_key_file,
        ) {
            (Some(cert), Some(key)) => InternalCa::load(cert, key),
            (None, None) => InternalCa::load_or_create(&config.data_dir.join("internal-ca")),
            _ => Err(TlsError::HalfConfigured),
        }
    }

    pub fn load(cert_path: &Path, key_path: &Path) -> Result<InternalCa, TlsError> {
        let cert = X509::from_pem(&read(cert_path)?)?;
        let key = PKey::private_key_from_pem(&read(key_path)?)?;
        Ok(InternalCa { cert, key })
    }

    /// Loads the CA from `dir`, creating it on first use. Two processes starting at once
    /// on a fresh dir both try to create it; the loser adopts the winner's files.
    pub fn load_or_create(dir: &Path) -> Result<InternalCa, TlsError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        if cert_path.exists() && key_path.exists() {
            return InternalCa::load(&cert_path, &key_path);
        }
        fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca = InternalCa::generate()?;
        let key_tmp = dir.join(format!("ca-key.pem.{}", std::process::id()));
        let cert_tmp = dir.join(format!("ca.pem.{}", std::process::id()));
        write_private(&key_tmp, &ca.key.private_key_to_pem_pkcs8()?)?;
        write_file(&cert_tmp, &ca.cert.to_pem()?)?;
        // Publish the key first: a reader that sees ca.pem finds its key.
        if hard_link_if_absent(&key_tmp, &key_path)? && hard_link_if_absent(&cert_tmp, &cert_path)?
        {
            let _ = fs::remove_file(&key_tmp);
            let _ = fs::remove_file(&cert_tmp);
            return Ok(ca);
        }
        let _ = fs::remove_file(&key_tmp);
        let _ = fs::remove_file(&cert_tmp);
        // Someone else won; wait briefly for their certificate to appear.
        for _ in 0..50 {
            if cert_path.exists() && key_path.exists() {
                return InternalCa::load(&cert_path, &key_path);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        InternalCa::load(&cert_path, &key_path)
    }

    fn generate() -> Result<InternalCa, TlsError> {
        let key = new_p256_key()?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "pnc")?;
        name.append_entry_by_nid(Nid::COMMONNAME, "pnc internal CA")?;
        let name = name.build();
        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        let serial = random_serial()?.to_asn1_integer()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        let not_before = Asn1Time::days_from_now(0)?;
        builder.set_not_before(&not_before)?;
        let not_after = Asn1Time::days_from_now(CA_VALIDITY_DAYS)?;
        builder.set_not_after(&not_after)?;
        builder.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
        builder.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
        builder.append_extension(ski)?;
        builder.sign(&key, MessageDigest::sha256())?;
        Ok(InternalCa {
            cert: builder.build(),
            key,
        })
    }

    /// Issues the identity a component presents as server and as client.
    pub fn issue(&self, component: Component) -> Result<InternalTls, TlsError> {
        let key = new_p256_key()?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "pnc")?;
        name.append_entry_by_nid(Nid::COMMONNAME, component.name())?;
        let name = name.build();
        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        let serial = random_serial()?.to_asn1_integer()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(self.cert.subject_name())?;
        builder.set_pubkey(&key)?;
        // A minute of slack for clocks of replicas on other hosts.
        let not_before = Asn1Time::from_unix(unix_now() - 60)?;
        builder.set_not_before(&not_before)?;
        let not_after = Asn1Time::days_from_now(LEAF_VALIDITY_DAYS)?;
        builder.set_not_after(&not_after)?;
        builder.append_extension(BasicConstraints::new().critical().build()?)?;
        builder.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()?,
        )?;
        builder.append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()?,
        )?;
        let context = builder.x509v3_context(Some(&self.cert), None);
        let san = SubjectAlternativeName::new()
            .dns(INTERNAL_SERVER_NAME)
            .dns(&format!("{}.{INTERNAL_SERVER_NAME}", component.name()))
            .dns("localhost")
            .ip("127.0.0.1")
            .ip("::1")
            .build(&context)?;
        let ski = SubjectKeyIdentifier::new().build(&context)?;
        let aki = AuthorityKeyIdentifier::new().keyid(true).build(&context)?;
        builder.append_extension(san)?;
        builder.append_extension(ski)?;
        builder.append_extension(aki)?;
        builder.sign(&self.key, MessageDigest::sha256())?;
        let cert = builder.build();
        Ok(InternalTls {
            component,
            ca_cert_pem: self.cert.to_pem()?,
            cert_pem: cert.to_pem()?,
            key_pem: key.private_key_to_pem_pkcs8()?,
        })
    }
}

impl InternalTls {
    pub fn server_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(
                &self.cert_pem,
                &self.key_pem,
            ))
            .client_ca_root(tonic::transport::Certificate::from_pem(&self.ca_cert_pem))
    }

    pub fn client_config(&self) -> tonic::transport::ClientTlsConfig {
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca_cert_pem))
            .identity(tonic::transport::Identity::from_pem(
                &self.cert_pem,
                &self.key_pem,
            ))
            .domain_name(INTERNAL_SERVER_NAME)
    }
}

/// The component named by the CN of a peer's internal certificate (DER), if any.
pub fn component_of_peer(cert_der: &[u8]) -> Option<Component> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    cn.parse().ok()
}

fn new_p256_key() -> Result<PKey<Private>, TlsError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn random_serial() -> Result<BigNum, TlsError> {
    let mut serial = BigNum::new()?;
    // 127 random bits with the top bit clear keeps the DER integer positive.
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(serial)
}

fn unix_now() -> i64 {
    crate::db::unix_now()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    fs::write(path, bytes).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let io_error = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error)?;
    file.write_all(bytes).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

/// Atomically publishes `from` as `to` unless `to` exists; true when this call published.
fn hard_link_if_absent(from: &Path, to: &Path) -> Result<bool, TlsError> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(TlsError::Io {
            path: to.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_made_once_and_shared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = InternalCa::load_or_create(dir.path()).expect("create");
        let second = InternalCa::load_or_create(dir.path()).expect("load");
        assert_eq!(
            first.cert.to_der().expect("der"),
            second.cert.to_der().expect("der")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("ca-key.pem"))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "CA key must not be readable by others");
        }
    }

    #[test]
    fn leaf_names_its_component_and_chains_to_the_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = InternalCa::load_or_create(dir.path()).expect("create");
        let tls = ca.issue(Component::Registry).expect("issue");
        let leaf = X509::from_pem(&tls.cert_pem).expect("leaf pem");
        assert_eq!(
            component_of_peer(&leaf.to_der().expect("der")),
            Some(Component::Registry)
        );
        let ca_key = ca.cert.public_key().expect("ca key");
        assert!(leaf.verify(&ca_key).expect("verify"));
    }

    #[test]
    fn half_configured_ca_is_refused() {
        let mut config = Config::default();
        config.internal_tls.ca_cert_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        assert!(matches!(
            InternalCa::from_config(&config),
            Err(TlsError::HalfConfigured)
        ));
    }
}
