//! pnc's own CAs: which CertIDs they answer for, their delegated OCSP signers, and their
//! CRLs. The keys come from the dev PKI the provisioning service creates in
//! `data_dir/pki`; the ocsp service only loads it (it starts first, so it waits for the
//! manifest rather than racing to create a second PKI).
//!
//! In Hubject's layout (`pki.mo_sub_cas_under_v2g_root`) provisioning also runs MO Sub-CAs
//! under the V2G root (`pki/mo-under-v2g`), written without OCSP signers; the ocsp service
//! gives each a delegated signer of its own, made in memory at load (the key never touches
//! disk; a restart or another replica makes another, which verifies just as well).
//!
//! The ISO 15118-20 CAs (P-521) have delegated signers of their own curve in the dev PKI. A
//! PKI written before those existed gains them when provisioning next starts; until the ocsp
//! service sees them (it loads the PKI once), it makes in-memory ones the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use pnc_common::config::Config;
use pnc_pki::dev::{DevCert, DevPki, KEYS_DIR, MANIFEST_FILE};
use pnc_pki::keystore::{Kek, KeyStore};
use pnc_pki::{Certificate, Signer};

use crate::cert_id::{CertId, HashAlgorithm, issuer_hashes};
use crate::codec;
use crate::der::{self, explicit, implicit, oid};

/// The directory of the dev PKI inside the data directory (as provisioning lays it out).
const PKI_DIR: &str = "pki";
const DEFAULT_KEK_FILE: &str = "kek";
/// How often a missing PKI is looked for again.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Where provisioning keeps the MO Sub-CAs of Hubject's layout, their file names and key
/// IDs (services/provisioning/src/pki.rs).
const MO_UNDER_V2G_DIR: &str = "mo-under-v2g";
const MO_UNDER_V2G_CAS: [(&str, &str, &str); 2] = [
    ("mo-v2g-sub-ca-1", "sub-ca-1.der", "mo-sub-ca-1"),
    ("mo-v2g-sub-ca-2", "sub-ca-2.der", "mo-sub-ca-2"),
];
/// Lifetime of an in-memory delegated signer (capped at its CA's).
const EXTRA_SIGNER_DAYS: i64 = 365;

/// One CA pnc runs.
pub struct OwnCa {
    pub name: &'static str,
    pub certificate: Certificate,
    pub key_id: Vec<u8>,
    pub ocsp_signer: Arc<dyn Signer>,
    pub ocsp_signer_certificate: Certificate,
    /// The CA's own key, for its CRL (RFC 5280 §5: the CRL issuer is the CA).
    pub ca_signer: Arc<dyn Signer>,
}

impl std::fmt::Debug for OwnCa {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OwnCa")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl OwnCa {
    /// The file name of its CRL, as the dev PKI writes it into CRL distribution points.
    pub fn crl_file_name(&self) -> String {
        format!("{}.crl", self.name)
    }
}

/// The loaded CAs, indexed by CertID issuer hashes of every supported algorithm.
#[derive(Debug)]
pub struct OwnPki {
    pub cas: Vec<Arc<OwnCa>>,
    by_issuer: HashMap<(HashAlgorithm, Vec<u8>, Vec<u8>), Arc<OwnCa>>,
    /// The AIA OCSP URL in the certificates these CAs issue.
    pub ocsp_url: String,
}

impl OwnPki {
    pub fn from_dev_pki(pki: &DevPki) -> OwnPki {
        let mut cas = Vec::new();
        let mut by_issuer = HashMap::new();
        let iso20: &[DevCert] = if pki.has_iso20() {
            &DevCert::ISO20
        } else {
            &[]
        };
        for which in DevCert::ALL
            .into_iter()
            .chain(iso20.iter().copied())
            .filter(|which| which.is_ca())
        {
            let (Some(ocsp_signer), Some(ocsp_signer_certificate)) =
                (pki.ocsp_signer(which), pki.ocsp_signer_certificate(which))
            else {
                continue;
            };
            let certificate = pki.certificate(which).clone();
            let Some(key_id) = certificate.subject_key_identifier().map(<[u8]>::to_vec) else {
                continue;
            };
            let ca = Arc::new(OwnCa {
                name: which.file_stem(),
                key_id,
                ocsp_signer,
                ocsp_signer_certificate: ocsp_signer_certificate.clone(),
                ca_signer: pki.signer(which),
                certificate,
            });
            for algorithm in HashAlgorithm::ALL {
                if let Ok((name_hash, key_hash)) = issuer_hashes(algorithm, &ca.certificate) {
                    by_issuer.insert((algorithm, name_hash, key_hash), ca.clone());
                }
            }
            cas.push(ca);
        }
        OwnPki {
            cas,
            by_issuer,
            ocsp_url: pki.ocsp_base_url().to_string(),
        }
    }

    /// Adds a CA pnc runs without a persisted OCSP signer, with a fresh delegated one on the
    /// CA's own curve and digest.
    fn add_with_new_signer(
        &mut self,
        name: &'static str,
        certificate: Certificate,
        ca_signer: Arc<dyn Signer>,
    ) -> Result<(), String> {
        let key_id = certificate
            .subject_key_identifier()
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("{name} has no subject key identifier"))?;
        let signer = Arc::new(
            pnc_pki::SoftwareSigner::generate(format!("{name}-ocsp"), ca_signer.algorithm())
                .map_err(|error| error.to_string())?,
        );
        let now = time::OffsetDateTime::now_utc();
        let template = pnc_pki::dev::ocsp_signer_template(
            certificate.common_name().unwrap_or(name),
            signer.public_key_spki_der(),
            now - time::Duration::hours(1),
            (now + time::Duration::days(EXTRA_SIGNER_DAYS)).min(certificate.not_after()),
        );
        let signer_certificate = pnc_pki::issue(&template, Some(&certificate), ca_signer.as_ref())
            .map_err(|error| format!("issuing the OCSP signer of {name}: {error}"))?;
        let ca = Arc::new(OwnCa {
            name,
            key_id,
            ocsp_signer: signer,
            ocsp_signer_certificate: signer_certificate,
            ca_signer,
            certificate,
        });
        for algorithm in HashAlgorithm::ALL {
            if let Ok((name_hash, key_hash)) = issuer_hashes(algorithm, &ca.certificate) {
                self.by_issuer
                    .insert((algorithm, name_hash, key_hash), ca.clone());
            }
        }
        self.cas.push(ca);
        Ok(())
    }

    pub fn find(&self, cert_id: &CertId) -> Option<Arc<OwnCa>> {
        self.by_issuer
            .get(&(
                cert_id.hash_algorithm(),
                cert_id.issuer_name_hash().to_vec(),
                cert_id.issuer_key_hash().to_vec(),
            ))
            .cloned()
    }

    pub fn by_crl_file_name(&self, file_name: &str) -> Option<Arc<OwnCa>> {
        self.cas
            .iter()
            .find(|ca| ca.crl_file_name() == file_name)
            .cloned()
    }
}

/// Loads the PKI once it exists; cheap to ask again.
#[derive(Debug)]
pub struct OwnPkiLoader {
    directory: PathBuf,
    kek_path: PathBuf,
    /// Hubject's layout: the MO Sub-CAs under the V2G root must be loaded too.
    mo_under_v2g: bool,
    loaded: RwLock<Option<Arc<OwnPki>>>,
    last_attempt: Mutex<Option<Instant>>,
}

impl OwnPkiLoader {
    pub fn new(config: &Config) -> OwnPkiLoader {
        let directory = config.data_dir.join(PKI_DIR);
        let kek_path = config
            .pki
            .kek_file
            .clone()
            .unwrap_or_else(|| directory.join(DEFAULT_KEK_FILE));
        OwnPkiLoader {
            directory,
            kek_path,
            mo_under_v2g: config.pki.mo_sub_cas_under_v2g_root,
            loaded: RwLock::new(None),
            last_attempt: Mutex::new(None),
        }
    }

    /// The PKI if it is (or has just become) available.
    pub async fn get(&self) -> Option<Arc<OwnPki>> {
        if let Some(loaded) = self.loaded.read().ok()?.as_ref() {
            return Some(loaded.clone());
        }
        {
            let mut last_attempt = self.last_attempt.lock().ok()?;
            if last_attempt.is_some_and(|at| at.elapsed() < RELOAD_INTERVAL) {
                return None;
            }
            *last_attempt = Some(Instant::now());
        }
        let directory = self.directory.clone();
        let kek_path = self.kek_path.clone();
        let mo_under_v2g = self.mo_under_v2g;
        let loaded = tokio::task::spawn_blocking(move || load(&directory, &kek_path, mo_under_v2g))
            .await
            .ok()?;
        match loaded {
            Ok(Some(pki)) => {
                let pki = Arc::new(pki);
                tracing::info!(cas = pki.cas.len(), "ocsp responder loaded pnc's CAs");
                if let Ok(mut slot) = self.loaded.write() {
                    *slot = Some(pki.clone());
                }
                Some(pki)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(error = %error, "cannot load pnc's pki yet");
                None
            }
        }
    }
}

/// The PKI in `directory`, or None while provisioning has not written all of it yet.
pub fn load(
    directory: &Path,
    kek_path: &Path,
    mo_under_v2g: bool,
) -> Result<Option<OwnPki>, String> {
    let extra_directory = directory.join(MO_UNDER_V2G_DIR);
    // Provisioning publishes the directory whole (renamed into place), so the last
    // certificate being there means all of it is.
    let extra_ready = extra_directory.join(MO_UNDER_V2G_CAS[1].1).exists();
    if !directory.join(MANIFEST_FILE).exists()
        || !kek_path.exists()
        || (mo_under_v2g && !extra_ready)
    {
        return Ok(None);
    }
    let kek = Kek::load(kek_path).map_err(|error| error.to_string())?;
    let key_store =
        KeyStore::open(directory.join(KEYS_DIR), kek).map_err(|error| error.to_string())?;
    let pki = DevPki::load(directory, &key_store).map_err(|error| error.to_string())?;
    let mut own = OwnPki::from_dev_pki(&pki);
    // -20 CAs of a PKI whose -20 signers provisioning has not added yet.
    if pki.has_iso20() {
        for which in DevCert::ISO20 {
            if which.is_ca() && pki.ocsp_signer(which).is_none() {
                own.add_with_new_signer(
                    which.file_stem(),
                    pki.certificate(which).clone(),
                    pki.signer(which),
                )?;
            }
        }
    }
    if extra_ready {
        let kek = Kek::load(kek_path).map_err(|error| error.to_string())?;
        let extra_keys = KeyStore::open(extra_directory.join(KEYS_DIR), kek)
            .map_err(|error| error.to_string())?;
        for (name, file, key_id) in MO_UNDER_V2G_CAS {
            let path = extra_directory.join(file);
            let der =
                std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
            let certificate = Certificate::from_der(&der)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            let ca_signer: Arc<dyn Signer> = extra_keys
                .load(key_id)
                .map_err(|error| format!("key {key_id}: {error}"))?;
            if ca_signer.public_key_spki_der() != certificate.public_key_spki_der() {
                return Err(format!("{}: key does not match", path.display()));
            }
            own.add_with_new_signer(name, certificate, ca_signer)?;
        }
    }
    Ok(Some(own))
}

/// One revoked certificate on a CRL.
#[derive(Debug, Clone)]
pub struct RevokedEntry {
    pub serial_magnitude: Vec<u8>,
    pub revoked_at: i64,
    pub reason: i32,
}

/// The DER CRL (RFC 5280 §5, v2) of `ca`, signed with the CA's key. The CRL number is
/// thisUpdate in unix seconds: it increases with every CRL without shared state between
/// replicas.
pub fn build_crl(
    ca: &OwnCa,
    revoked: &[RevokedEntry],
    this_update: i64,
    next_update: i64,
) -> Result<Vec<u8>, pnc_pki::SignerError> {
    let algorithm = match ca.ca_signer.algorithm() {
        pnc_pki::SignatureAlgorithm::EcdsaP256Sha256 => oid::ECDSA_WITH_SHA256,
        pnc_pki::SignatureAlgorithm::EcdsaP521Sha512 => oid::ECDSA_WITH_SHA512,
    };
    let algorithm = der::sequence(&[&der::tlv(der::TAG_OID, algorithm)]);
    let entries: Vec<Vec<u8>> = revoked
        .iter()
        .map(|entry| {
            let serial = der::unsigned_integer(&entry.serial_magnitude);
            let date = der::x509_time(entry.revoked_at);
            // RFC 5280 §5.3.1: reasonCode unspecified (0) SHOULD be absent.
            if entry.reason > 0 && entry.reason <= 10 {
                let reason = der::sequence(&[
                    &der::tlv(der::TAG_OID, oid::CRL_REASON),
                    &der::octet_string(&der::enumerated(entry.reason as u8)),
                ]);
                der::sequence(&[&serial, &date, &der::sequence(&[&reason])])
            } else {
                der::sequence(&[&serial, &date])
            }
        })
        .collect();
    let authority_key_identifier = der::sequence(&[
        &der::tlv(der::TAG_OID, oid::AUTHORITY_KEY_IDENTIFIER),
        &der::octet_string(&der::sequence(&[&der::tlv(implicit(0), &ca.key_id)])),
    ]);
    let crl_number = der::sequence(&[
        &der::tlv(der::TAG_OID, oid::CRL_NUMBER),
        &der::octet_string(&der::unsigned_integer(&this_update.max(0).to_be_bytes())),
    ]);
    let extensions = der::tlv(
        explicit(0),
        &der::sequence(&[&authority_key_identifier, &crl_number]),
    );
    let version = der::tlv(der::TAG_INTEGER, &[1]);
    let this_update = der::x509_time(this_update);
    let next_update = der::x509_time(next_update);
    let entry_refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let revoked_list = der::sequence(&entry_refs);
    let mut parts: Vec<&[u8]> = vec![
        &version,
        &algorithm,
        ca.certificate.subject().der(),
        &this_update,
        &next_update,
    ];
    // RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked.
    if !entries.is_empty() {
        parts.push(&revoked_list);
    }
    parts.push(&extensions);
    let tbs = der::sequence(&parts);
    codec::sign_structure(&tbs, ca.ca_signer.as_ref(), &[])
}

#[cfg(test)]
mod tests {
    use pnc_pki::dev::DevPkiOptions;

    use super::*;

    fn iso20_cas() -> impl Iterator<Item = DevCert> {
        DevCert::ISO20.into_iter().filter(|ca| ca.is_ca())
    }

    /// Every -20 CA is loaded with a P-521 signer its CA issued (so ECDSA-SHA512 answers).
    fn assert_iso20_signers(own: &OwnPki, pki: &DevPki) {
        for which in iso20_cas() {
            let ca = own
                .cas
                .iter()
                .find(|ca| ca.name == which.file_stem())
                .unwrap_or_else(|| panic!("{which} is not loaded"));
            assert_eq!(&ca.certificate, pki.certificate(which));
            assert_eq!(
                ca.ocsp_signer.algorithm(),
                pnc_pki::SignatureAlgorithm::EcdsaP521Sha512,
                "{which}"
            );
            assert_eq!(
                ca.ocsp_signer.public_key_spki_der(),
                ca.ocsp_signer_certificate.public_key_spki_der()
            );
            assert!(
                crate::engine::issued_by(&ca.ocsp_signer_certificate, &ca.certificate),
                "{which}"
            );
            let cert_id =
                CertId::for_certificate(HashAlgorithm::Sha256, &ca.certificate, &ca.certificate)
                    .unwrap();
            assert_eq!(own.find(&cert_id).map(|found| found.name), Some(ca.name));
        }
    }

    /// A dev PKI written before the -20 OCSP signers existed: the ocsp service answers for
    /// its -20 CAs with in-memory signers; provisioning's next load persists signers of their
    /// own (leaving the -2 ones alone), which the ocsp service then loads.
    #[test]
    fn iso20_cas_of_an_older_pki_get_signers() {
        let directory = tempfile::tempdir().unwrap();
        let pki_dir = directory.path().join("pki");
        let kek = directory.path().join("kek");
        let options = DevPkiOptions::default();
        let first = DevPki::load_or_create(&pki_dir, &kek, &options).unwrap();
        for which in iso20_cas() {
            assert!(first.ocsp_signer_certificate(which).is_some(), "{which}");
        }
        let manifest_path = pki_dir.join(MANIFEST_FILE);
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
        manifest["ocsp_signers"]
            .as_array_mut()
            .unwrap()
            .retain(|stem| !stem.as_str().unwrap().starts_with("iso20-"));
        std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
        let store = KeyStore::open(pki_dir.join(KEYS_DIR), Kek::load(&kek).unwrap()).unwrap();
        let older = DevPki::load(&pki_dir, &store).unwrap();
        assert!(older.ocsp_signer(DevCert::Iso20MoSubCa2).is_none());

        let own = load(&pki_dir, &kek, false).unwrap().unwrap();
        assert_iso20_signers(&own, &older);

        let upgraded = DevPki::load_or_create(&pki_dir, &kek, &options).unwrap();
        for which in DevCert::ALL.into_iter().filter(|ca| ca.is_ca()) {
            assert_eq!(
                upgraded.ocsp_signer_certificate(which),
                first.ocsp_signer_certificate(which),
                "{which}"
            );
        }
        let own = load(&pki_dir, &kek, false).unwrap().unwrap();
        assert_iso20_signers(&own, &upgraded);
        for which in iso20_cas() {
            let ca = own.cas.iter().find(|ca| ca.name == which.file_stem());
            assert_eq!(
                ca.map(|ca| &ca.ocsp_signer_certificate),
                upgraded.ocsp_signer_certificate(which),
                "{which}: the persisted signer"
            );
        }
        // The unlisted keys of the first run were set aside, not overwritten.
        let orphans = std::fs::read_dir(pki_dir.join(KEYS_DIR))
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("orphaned")
            })
            .count();
        assert_eq!(orphans, iso20_cas().count());
    }
}
