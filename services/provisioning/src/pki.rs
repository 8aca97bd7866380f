//! pnc's own CA material: the dev PKI, loaded or created at start, the CPS chains contract
//! data is signed with, and the MO Sub-CA that issues contract certificates.
//!
//! Several replicas may start together on one shared data directory. The dev PKI is generated
//! in a private scratch directory and moved into place with one `rename`, which succeeds for
//! exactly one replica; the others drop their scratch copy and load the winner's. Loading is
//! idempotent, so every replica ends up with the same keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pnc_common::config::Config;
use pnc_pki::Certificate;
use pnc_pki::dev::{DevCert, DevPki, DevPkiOptions, KEYS_DIR, MANIFEST_FILE};
use pnc_pki::issue::{CertificateTemplate, SubjectName, issue};
use pnc_pki::keystore::{Kek, KeyStore};
use pnc_pki::profile::Profile;
use pnc_pki::signer::{SignatureAlgorithm, Signer, SoftwareSigner};
use time::{Duration, OffsetDateTime};

/// The directory of the dev PKI inside the data directory.
pub const PKI_DIR: &str = "pki";
/// The MO Sub-CAs issued under the V2G root (Hubject's layout), inside [`PKI_DIR`].
const MO_UNDER_V2G_DIR: &str = "mo-under-v2g";
const MO_UNDER_V2G_SUB_CA_1: &str = "mo-sub-ca-1";
const MO_UNDER_V2G_SUB_CA_2: &str = "mo-sub-ca-2";

/// A CPS chain and its leaf key: signs contract data for EVs that trust `root`.
pub struct CpsSigner {
    pub leaf: Certificate,
    pub sub_ca_2: Certificate,
    pub sub_ca_1: Certificate,
    pub root: Certificate,
    /// Upper-case hex SHA-256 of the root.
    pub root_fingerprint: String,
    pub signer: Arc<dyn Signer>,
}

impl CpsSigner {
    /// Leaf, Sub-CA 2, Sub-CA 1 (`SAProvisioningCertificateChain`).
    pub fn chain(&self) -> [&Certificate; 3] {
        [&self.leaf, &self.sub_ca_2, &self.sub_ca_1]
    }
}

impl std::fmt::Debug for CpsSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CpsSigner")
            .field("leaf", &self.leaf.common_name())
            .field("root_fingerprint", &self.root_fingerprint)
            .finish_non_exhaustive()
    }
}

/// The MO Sub-CA 2 that issues contract certificates in generate mode, with its chain.
pub struct ContractIssuer {
    pub sub_ca_2: Certificate,
    pub sub_ca_1: Certificate,
    /// The MO root, or the V2G root in Hubject's layout.
    pub root: Certificate,
    pub signer: Arc<dyn Signer>,
    pub ocsp_url: String,
    pub crl_url: Option<String>,
}

impl std::fmt::Debug for ContractIssuer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ContractIssuer")
            .field("sub_ca_2", &self.sub_ca_2.common_name())
            .field("root", &self.root.common_name())
            .finish_non_exhaustive()
    }
}

/// Everything pnc signs with.
#[derive(Debug)]
pub struct Holdings {
    pub dev: DevPki,
    pub cps_signers: Vec<CpsSigner>,
    pub contract_issuer: ContractIssuer,
    /// Sub-CAs made for Hubject's layout, when configured (registered like the dev Sub-CAs).
    pub extra_sub_cas: Vec<(Certificate, Certificate)>,
    /// The ISO 15118-20 (P-521) CPS chains and contract issuer.
    pub iso20: Iso20Holdings,
}

/// pnc's ISO 15118-20 material: kept apart from the -2 chains, since a -2 EV can use neither
/// its P-521 CPS signature nor its contract certificates.
#[derive(Debug)]
pub struct Iso20Holdings {
    pub cps_signers: Vec<CpsSigner>,
    pub contract_issuer: ContractIssuer,
}

impl Iso20Holdings {
    fn from_dev(dev: &DevPki) -> Iso20Holdings {
        let v2g_root = dev.certificate(DevCert::Iso20V2gRoot).clone();
        let ocsp_url = dev.ocsp_base_url().to_string();
        let crl_url = ocsp_url
            .strip_suffix("/ocsp")
            .map(|base| format!("{base}/crl/{}.crl", DevCert::Iso20MoSubCa2.file_stem()));
        Iso20Holdings {
            cps_signers: vec![CpsSigner {
                leaf: dev.certificate(DevCert::Iso20CpsLeaf).clone(),
                sub_ca_2: dev.certificate(DevCert::Iso20CpsSubCa2).clone(),
                sub_ca_1: dev.certificate(DevCert::Iso20CpsSubCa1).clone(),
                root_fingerprint: fingerprint(&v2g_root),
                root: v2g_root,
                signer: dev.signer(DevCert::Iso20CpsLeaf),
            }],
            contract_issuer: ContractIssuer {
                sub_ca_2: dev.certificate(DevCert::Iso20MoSubCa2).clone(),
                sub_ca_1: dev.certificate(DevCert::Iso20MoSubCa1).clone(),
                root: dev.certificate(DevCert::Iso20MoRoot).clone(),
                signer: dev.signer(DevCert::Iso20MoSubCa2),
                ocsp_url,
                crl_url,
            },
        }
    }

    pub fn cps_signer(&self, root_fingerprint: &str) -> Option<&CpsSigner> {
        self.cps_signers
            .iter()
            .find(|cps| cps.root_fingerprint.eq_ignore_ascii_case(root_fingerprint))
    }
}

impl Holdings {
    pub fn cps_signer(&self, root_fingerprint: &str) -> Option<&CpsSigner> {
        self.cps_signers
            .iter()
            .find(|cps| cps.root_fingerprint.eq_ignore_ascii_case(root_fingerprint))
    }
}

/// Upper-case hex SHA-256 of a certificate.
pub fn fingerprint(certificate: &Certificate) -> String {
    hex::encode_upper(certificate.sha256_fingerprint())
}

/// Loads pnc's PKI from `data_dir/pki`, creating it on first start. Blocking (file I/O and
/// key generation): call it from `spawn_blocking`.
pub fn load_or_create(config: &Config) -> anyhow::Result<Holdings> {
    let pki_dir = config.data_dir.join(PKI_DIR);
    let base = config.public_base_url.trim_end_matches('/');
    let options = DevPkiOptions {
        ocsp_base_url: format!("{base}/ocsp"),
        crl_base_url: Some(format!("{base}/crl")),
        ..DevPkiOptions::default()
    };
    let dev = load_or_create_dev_pki(&pki_dir, config.pki.kek_file.as_deref(), &options)?;
    let kek_path = kek_path(&pki_dir, config.pki.kek_file.as_deref());

    let v2g_root = dev.certificate(DevCert::V2gRoot).clone();
    let cps_signers = vec![CpsSigner {
        leaf: dev.certificate(DevCert::CpsLeaf).clone(),
        sub_ca_2: dev.certificate(DevCert::CpsSubCa2).clone(),
        sub_ca_1: dev.certificate(DevCert::CpsSubCa1).clone(),
        root_fingerprint: fingerprint(&v2g_root),
        root: v2g_root.clone(),
        signer: dev.signer(DevCert::CpsLeaf),
    }];

    let mut extra_sub_cas = Vec::new();
    let contract_issuer = if config.pki.mo_sub_cas_under_v2g_root {
        let (sub_ca_1, sub_ca_2, signer) =
            load_or_create_mo_under_v2g(&pki_dir.join(MO_UNDER_V2G_DIR), &kek_path, &dev)?;
        extra_sub_cas.push((sub_ca_1.clone(), sub_ca_2.clone()));
        ContractIssuer {
            sub_ca_2,
            sub_ca_1,
            root: v2g_root,
            signer,
            ocsp_url: dev.ocsp_base_url().to_string(),
            // OCSP is the revocation source of this layout; pnc serves CRLs for the dev CAs.
            crl_url: None,
        }
    } else {
        ContractIssuer {
            sub_ca_2: dev.certificate(DevCert::MoSubCa2).clone(),
            sub_ca_1: dev.certificate(DevCert::MoSubCa1).clone(),
            root: dev.certificate(DevCert::MoRoot).clone(),
            signer: dev.signer(DevCert::MoSubCa2),
            ocsp_url: dev.ocsp_base_url().to_string(),
            // Contract leaves travel in the -2 answers, which must fit OCPP 2.0.1: OCSP only
            // (see `DevCert::names_crl_distribution_point`); the CRL is still published.
            crl_url: None,
        }
    };
    let iso20 = Iso20Holdings::from_dev(&dev);
    Ok(Holdings {
        iso20,
        dev,
        cps_signers,
        contract_issuer,
        extra_sub_cas,
    })
}

fn kek_path(pki_dir: &Path, configured: Option<&Path>) -> PathBuf {
    configured.map_or_else(
        || pki_dir.join(pnc_pki::dev::DEFAULT_KEK_FILE),
        Path::to_path_buf,
    )
}

/// A configured KEK file may be created by a replica starting at the same moment; reading
/// it half-written fails, so retry for a short, bounded while.
fn load_or_create_kek(path: &Path) -> anyhow::Result<Kek> {
    let mut last_error = None;
    for _ in 0..50 {
        match Kek::load_or_create(path) {
            Ok(kek) => return Ok(kek),
            Err(error) => last_error = Some(error),
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(anyhow::anyhow!(
        "key-encryption key {}: {}",
        path.display(),
        last_error
            .map(|error| error.to_string())
            .unwrap_or_default()
    ))
}

fn scratch_dir(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pki".to_string());
    target.with_file_name(format!(".{name}-{}", uuid::Uuid::new_v4()))
}

/// Moves a freshly written `scratch` directory to `target`. `Ok(false)` when another replica
/// was first (the scratch copy is removed).
fn publish(scratch: &Path, target: &Path) -> anyhow::Result<bool> {
    match std::fs::rename(scratch, target) {
        Ok(()) => Ok(true),
        Err(error) => {
            let _ = std::fs::remove_dir_all(scratch);
            if target.join(MANIFEST_FILE).exists() || target.join("sub-ca-2.der").exists() {
                Ok(false)
            } else {
                Err(anyhow::anyhow!(
                    "cannot move the new pki to {}: {error}",
                    target.display()
                ))
            }
        }
    }
}

fn load_or_create_dev_pki(
    pki_dir: &Path,
    configured_kek: Option<&Path>,
    options: &DevPkiOptions,
) -> anyhow::Result<DevPki> {
    if let Some(kek) = configured_kek {
        load_or_create_kek(kek)?;
    }
    if pki_dir.join(MANIFEST_FILE).exists() {
        return Ok(DevPki::load_or_create(
            pki_dir,
            &kek_path(pki_dir, configured_kek),
            options,
        )?);
    }
    if let Some(parent) = pki_dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let scratch = scratch_dir(pki_dir);
    let scratch_kek = kek_path(&scratch, configured_kek);
    let generated = DevPki::load_or_create(&scratch, &scratch_kek, options);
    if let Err(error) = generated {
        let _ = std::fs::remove_dir_all(&scratch);
        return Err(error.into());
    }
    if publish(&scratch, pki_dir)? {
        tracing::info!(directory = %pki_dir.display(), "created pnc's dev pki");
    } else {
        tracing::info!(directory = %pki_dir.display(), "another replica created the dev pki first");
    }
    // Load what is in place, so every replica holds the same keys.
    Ok(DevPki::load_or_create(
        pki_dir,
        &kek_path(pki_dir, configured_kek),
        options,
    )?)
}

/// MO Sub-CA 1 and 2 under the V2G root, as Hubject issues contracts
/// (`config.pki.mo_sub_cas_under_v2g_root`).
fn load_or_create_mo_under_v2g(
    directory: &Path,
    kek_path: &Path,
    dev: &DevPki,
) -> anyhow::Result<(Certificate, Certificate, Arc<dyn Signer>)> {
    if !directory.join("sub-ca-2.der").exists() {
        let scratch = scratch_dir(directory);
        let written = write_mo_under_v2g(&scratch, kek_path, dev);
        if let Err(error) = written {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(error);
        }
        publish(&scratch, directory)?;
    }
    let key_store = KeyStore::open(directory.join(KEYS_DIR), Kek::load(kek_path)?)?;
    let read = |name: &str| -> anyhow::Result<Certificate> {
        let der = std::fs::read(directory.join(name))?;
        Ok(Certificate::from_der(&der)?)
    };
    let sub_ca_1 = read("sub-ca-1.der")?;
    let sub_ca_2 = read("sub-ca-2.der")?;
    let signer: Arc<dyn Signer> = key_store.load(MO_UNDER_V2G_SUB_CA_2)?;
    if signer.public_key_spki_der() != sub_ca_2.public_key_spki_der() {
        anyhow::bail!("{}: key does not match sub-ca-2.der", directory.display());
    }
    Ok((sub_ca_1, sub_ca_2, signer))
}

fn write_mo_under_v2g(directory: &Path, kek_path: &Path, dev: &DevPki) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory)?;
    let key_store = KeyStore::open(directory.join(KEYS_DIR), Kek::load(kek_path)?)?;
    let now = OffsetDateTime::now_utc();
    let v2g_root = dev.certificate(DevCert::V2gRoot);
    let organization = v2g_root
        .subject()
        .values("2.5.4.10")
        .next()
        .unwrap_or("pnc dev")
        .to_string();
    let mut issuer_certificate = v2g_root.clone();
    let mut issuer_signer: Arc<dyn Signer> = dev.signer(DevCert::V2gRoot);
    for (key_id, profile, common_name, file, validity_days) in [
        (
            MO_UNDER_V2G_SUB_CA_1,
            Profile::MoSubCa1,
            "MO Sub-CA 1 (V2G)",
            "sub-ca-1.der",
            1460,
        ),
        (
            MO_UNDER_V2G_SUB_CA_2,
            Profile::MoSubCa2,
            "MO Sub-CA 2 (V2G)",
            "sub-ca-2.der",
            730,
        ),
    ] {
        let signer = Arc::new(SoftwareSigner::generate(
            key_id,
            SignatureAlgorithm::EcdsaP256Sha256,
        )?);
        let mut template = CertificateTemplate::new(
            profile,
            SubjectName::new(common_name)
                .organization(organization.clone())
                .country("DE"),
            signer.public_key_spki_der().to_vec(),
            now - Duration::hours(1),
            (now + Duration::days(validity_days)).min(issuer_certificate.not_after()),
        );
        template.ocsp_url = Some(dev.ocsp_base_url().to_string());
        let certificate = issue(&template, Some(&issuer_certificate), issuer_signer.as_ref())?;
        std::fs::write(directory.join(file), certificate.der())?;
        key_store.store(&signer)?;
        issuer_certificate = certificate;
        issuer_signer = signer as Arc<dyn Signer>;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(data_dir: &Path) -> Config {
        Config {
            data_dir: data_dir.to_path_buf(),
            ..Config::default()
        }
    }

    #[test]
    fn ok_second_start_loads_the_same_pki() {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let first = load_or_create(&config(data_dir.path())).expect("first start");
        let second = load_or_create(&config(data_dir.path())).expect("second start");
        assert_eq!(
            first.cps_signers[0].leaf, second.cps_signers[0].leaf,
            "same CPS leaf"
        );
        assert_eq!(
            first.contract_issuer.signer.public_key_spki_der(),
            second.contract_issuer.signer.public_key_spki_der()
        );
    }

    #[test]
    fn ok_replicas_starting_together_agree() {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let kek = data_dir.path().join("shared-kek");
        let mut config = config(data_dir.path());
        config.pki.kek_file = Some(kek);
        let config = Arc::new(config);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let config = config.clone();
                std::thread::spawn(move || {
                    load_or_create(&config).map(|h| fingerprint(&h.cps_signers[0].leaf))
                })
            })
            .collect();
        let leaves: Vec<String> = handles
            .into_iter()
            .map(|handle| handle.join().expect("thread").expect("start"))
            .collect();
        assert!(
            leaves.windows(2).all(|pair| pair[0] == pair[1]),
            "{leaves:?}"
        );
        // No scratch directories are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(data_dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn ok_hubject_layout_puts_mo_sub_cas_under_the_v2g_root() {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(data_dir.path());
        config.pki.mo_sub_cas_under_v2g_root = true;
        let holdings = load_or_create(&config).expect("start");
        let issuer = &holdings.contract_issuer;
        assert_eq!(issuer.root, *holdings.dev.certificate(DevCert::V2gRoot));
        let path = pnc_pki::validate_path(
            issuer.sub_ca_2.der(),
            &[issuer.sub_ca_1.der()],
            &[issuer.root.der()],
            OffsetDateTime::now_utc(),
        )
        .expect("sub-ca 2 chains to the v2g root");
        assert_eq!(path.certificates.len(), 3);
        let again = load_or_create(&config).expect("restart");
        assert_eq!(again.contract_issuer.sub_ca_2, issuer.sub_ca_2);
    }
}
