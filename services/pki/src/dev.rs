//! The development PKI: the complete ISO 15118-2 test hierarchy after Annex F, generated at first
//! start and never committed (boulder's habit for test PKIs).
//!
//! ```text
//! V2G root ─┬─ CPO Sub-CA 1 ── CPO Sub-CA 2 ── SECC leaf            (DC=V2G … DC=CPO)
//!           └─ CPS Sub-CA 1 ── CPS Sub-CA 2 ── CPS leaf             (DC=CPS, contract-data signer)
//! MO root ──── MO Sub-CA 1 ─── MO Sub-CA 2 ─── contract leaves      (issued on demand, CN = eMAID)
//! OEM root ─── OEM Sub-CA 1 ── OEM Sub-CA 2 ── OEM provisioning     (example vehicle, CN = PCID)
//! Charging-station CA ──────────────────────── charger client certificates (on demand)
//! every CA ─── its delegated OCSP signer (EKU OCSPSigning, ocsp-nocheck)
//! ```
//!
//! Beside it, the ISO 15118-20 hierarchy on P-521 with ECDSA-SHA512 ([V2G20-2674]): its own
//! V2G root with the CPS chain, MO root with Sub-CAs, OEM root with Sub-CAs and an example
//! P-521 provisioning certificate. -20 has no CPO chain here (TLS is not pnc's business); each
//! -20 CA has a P-521 delegated OCSP signer like the -2 ones. A dev PKI written before -20
//! existed gains the -20 part (and one written before the -20 OCSP signers gains those) on its
//! next load; the -2 part never changes.
//!
//! Certificates are written as PEM and DER; private keys only through the encrypted
//! [`KeyStore`], except, on explicit request, the SECC and example OEM provisioning keys that a
//! user needs to play the charger and the car.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::certificate::Certificate;
use crate::issue::{CertificateTemplate, IssueError, SubjectName, issue};
use crate::keystore::{Kek, KeyStore, KeyStoreError, write_new_private_file};
use crate::profile::Profile;
use crate::signer::{SignatureAlgorithm, Signer, SoftwareSigner};

/// File name of the dev PKI manifest inside its directory.
pub const MANIFEST_FILE: &str = "dev-pki.json";
/// Sub-directory holding the encrypted keys.
pub const KEYS_DIR: &str = "keys";
/// Default KEK file name inside the dev PKI directory.
pub const DEFAULT_KEK_FILE: &str = "kek";

/// The certificates of the dev PKI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DevCert {
    V2gRoot,
    CpoSubCa1,
    CpoSubCa2,
    Secc,
    CpsSubCa1,
    CpsSubCa2,
    CpsLeaf,
    MoRoot,
    MoSubCa1,
    MoSubCa2,
    OemRoot,
    OemSubCa1,
    OemSubCa2,
    OemProvisioning,
    ChargingStationCa,
    /// ISO 15118-20 (P-521) counterparts.
    Iso20V2gRoot,
    Iso20CpsSubCa1,
    Iso20CpsSubCa2,
    Iso20CpsLeaf,
    Iso20MoRoot,
    Iso20MoSubCa1,
    Iso20MoSubCa2,
    Iso20OemRoot,
    Iso20OemSubCa1,
    Iso20OemSubCa2,
    Iso20OemProvisioning,
}

impl DevCert {
    /// In issuance order (parents first).
    pub const ALL: [DevCert; 15] = [
        DevCert::V2gRoot,
        DevCert::CpoSubCa1,
        DevCert::CpoSubCa2,
        DevCert::Secc,
        DevCert::CpsSubCa1,
        DevCert::CpsSubCa2,
        DevCert::CpsLeaf,
        DevCert::MoRoot,
        DevCert::MoSubCa1,
        DevCert::MoSubCa2,
        DevCert::OemRoot,
        DevCert::OemSubCa1,
        DevCert::OemSubCa2,
        DevCert::OemProvisioning,
        DevCert::ChargingStationCa,
    ];

    /// The ISO 15118-20 hierarchy (P-521), in issuance order.
    pub const ISO20: [DevCert; 11] = [
        DevCert::Iso20V2gRoot,
        DevCert::Iso20CpsSubCa1,
        DevCert::Iso20CpsSubCa2,
        DevCert::Iso20CpsLeaf,
        DevCert::Iso20MoRoot,
        DevCert::Iso20MoSubCa1,
        DevCert::Iso20MoSubCa2,
        DevCert::Iso20OemRoot,
        DevCert::Iso20OemSubCa1,
        DevCert::Iso20OemSubCa2,
        DevCert::Iso20OemProvisioning,
    ];

    /// Whether this certificate belongs to the ISO 15118-20 (P-521) hierarchy.
    pub fn is_iso20(self) -> bool {
        DevCert::ISO20.contains(&self)
    }

    /// The key algorithm: P-256 for -2, P-521 for -20 [V2G20-2674].
    pub fn algorithm(self) -> SignatureAlgorithm {
        if self.is_iso20() {
            SignatureAlgorithm::EcdsaP521Sha512
        } else {
            SignatureAlgorithm::EcdsaP256Sha256
        }
    }

    /// File stem and key id: `v2g-root`, `cps-sub-ca-1`, `oem-provisioning`, …; the -20
    /// ones carry an `iso20-` prefix.
    pub fn file_stem(self) -> &'static str {
        match self {
            Self::Iso20V2gRoot => "iso20-v2g-root",
            Self::Iso20CpsSubCa1 => "iso20-cps-sub-ca-1",
            Self::Iso20CpsSubCa2 => "iso20-cps-sub-ca-2",
            Self::Iso20CpsLeaf => "iso20-cps-leaf",
            Self::Iso20MoRoot => "iso20-mo-root",
            Self::Iso20MoSubCa1 => "iso20-mo-sub-ca-1",
            Self::Iso20MoSubCa2 => "iso20-mo-sub-ca-2",
            Self::Iso20OemRoot => "iso20-oem-root",
            Self::Iso20OemSubCa1 => "iso20-oem-sub-ca-1",
            Self::Iso20OemSubCa2 => "iso20-oem-sub-ca-2",
            Self::Iso20OemProvisioning => "iso20-oem-provisioning",
            other => other.profile().name(),
        }
    }

    pub fn profile(self) -> Profile {
        match self {
            Self::V2gRoot => Profile::V2gRoot,
            Self::CpoSubCa1 => Profile::CpoSubCa1,
            Self::CpoSubCa2 => Profile::CpoSubCa2,
            Self::Secc => Profile::Secc,
            Self::CpsSubCa1 => Profile::CpsSubCa1,
            Self::CpsSubCa2 => Profile::CpsSubCa2,
            Self::CpsLeaf => Profile::CpsLeaf,
            Self::MoRoot => Profile::MoRoot,
            Self::MoSubCa1 => Profile::MoSubCa1,
            Self::MoSubCa2 => Profile::MoSubCa2,
            Self::OemRoot => Profile::OemRoot,
            Self::OemSubCa1 => Profile::OemSubCa1,
            Self::OemSubCa2 => Profile::OemSubCa2,
            Self::OemProvisioning => Profile::OemProvisioning,
            Self::ChargingStationCa => Profile::ChargingStationCa,
            Self::Iso20V2gRoot => Profile::V2gRoot,
            Self::Iso20CpsSubCa1 => Profile::CpsSubCa1,
            Self::Iso20CpsSubCa2 => Profile::CpsSubCa2,
            Self::Iso20CpsLeaf => Profile::CpsLeaf,
            Self::Iso20MoRoot => Profile::MoRoot,
            Self::Iso20MoSubCa1 => Profile::MoSubCa1,
            Self::Iso20MoSubCa2 => Profile::MoSubCa2,
            Self::Iso20OemRoot => Profile::OemRoot,
            Self::Iso20OemSubCa1 => Profile::OemSubCa1,
            Self::Iso20OemSubCa2 => Profile::OemSubCa2,
            Self::Iso20OemProvisioning => Profile::OemProvisioning,
        }
    }

    pub fn issuer(self) -> Option<DevCert> {
        match self {
            Self::V2gRoot
            | Self::MoRoot
            | Self::OemRoot
            | Self::ChargingStationCa
            | Self::Iso20V2gRoot
            | Self::Iso20MoRoot
            | Self::Iso20OemRoot => None,
            Self::CpoSubCa1 | Self::CpsSubCa1 => Some(Self::V2gRoot),
            Self::CpoSubCa2 => Some(Self::CpoSubCa1),
            Self::Secc => Some(Self::CpoSubCa2),
            Self::CpsSubCa2 => Some(Self::CpsSubCa1),
            Self::CpsLeaf => Some(Self::CpsSubCa2),
            Self::MoSubCa1 => Some(Self::MoRoot),
            Self::MoSubCa2 => Some(Self::MoSubCa1),
            Self::OemSubCa1 => Some(Self::OemRoot),
            Self::OemSubCa2 => Some(Self::OemSubCa1),
            Self::OemProvisioning => Some(Self::OemSubCa2),
            Self::Iso20CpsSubCa1 => Some(Self::Iso20V2gRoot),
            Self::Iso20CpsSubCa2 => Some(Self::Iso20CpsSubCa1),
            Self::Iso20CpsLeaf => Some(Self::Iso20CpsSubCa2),
            Self::Iso20MoSubCa1 => Some(Self::Iso20MoRoot),
            Self::Iso20MoSubCa2 => Some(Self::Iso20MoSubCa1),
            Self::Iso20OemSubCa1 => Some(Self::Iso20OemRoot),
            Self::Iso20OemSubCa2 => Some(Self::Iso20OemSubCa1),
            Self::Iso20OemProvisioning => Some(Self::Iso20OemSubCa2),
        }
    }

    pub fn is_ca(self) -> bool {
        self.profile().is_ca()
    }

    /// Whether this certificate travels in every ISO 15118-2 CertificateInstallationRes and
    /// CertificateUpdateRes pnc builds from its dev PKI: the MO Sub-CAs above the contract
    /// leaf and the CPS chain (`SAProvisioningCertificateChain`).
    pub fn travels_in_iso2_contract_answers(self) -> bool {
        matches!(
            self,
            Self::MoSubCa1 | Self::MoSubCa2 | Self::CpsSubCa1 | Self::CpsSubCa2 | Self::CpsLeaf
        )
    }

    /// Whether the certificate names a CRL distribution point. Those in the -2 contract
    /// answers do not (nor do the contract leaves): ISO 15118-2's revocation source is the
    /// AIA OCSP URL every profile requires, and six CRL DPs cost ~360 of the answer's bytes,
    /// the amount by which it overflowed OCPP 2.0.1's 5600-character `exiResponse`. pnc
    /// still publishes a CRL for every CA it runs.
    pub fn names_crl_distribution_point(self) -> bool {
        !self.travels_in_iso2_contract_answers()
    }

    /// The subject CN. In the -2 hierarchy the O (`pnc dev`) names the owner, so Sub-CAs and
    /// the CPS leaf are named by their role alone (as RISE-V2G and Hubject name theirs); roots
    /// keep `pnc`, since they are listed beside other PKIs' roots. Each character here is
    /// paid twice (subject, and issuer of the next certificate) in the -2 contract answers,
    /// which must fit OCPP 2.0.1's 5600 characters. The -20 names are older and unchanged.
    fn common_name(self, options: &DevPkiOptions) -> String {
        match self {
            Self::V2gRoot => "pnc V2G Root CA".into(),
            Self::CpoSubCa1 => "CPO Sub-CA 1".into(),
            Self::CpoSubCa2 => "CPO Sub-CA 2".into(),
            Self::Secc => options.secc_common_name.clone(),
            Self::CpsSubCa1 => "CPS Sub-CA 1".into(),
            Self::CpsSubCa2 => "CPS Sub-CA 2".into(),
            Self::CpsLeaf => "CPS Leaf".into(),
            Self::MoRoot => "pnc MO Root CA".into(),
            Self::MoSubCa1 => "MO Sub-CA 1".into(),
            Self::MoSubCa2 => "MO Sub-CA 2".into(),
            Self::OemRoot => "pnc OEM Root CA".into(),
            Self::OemSubCa1 => "OEM Sub-CA 1".into(),
            Self::OemSubCa2 => "OEM Sub-CA 2".into(),
            Self::OemProvisioning => options.example_pcid.clone(),
            Self::ChargingStationCa => "pnc Charging Station CA".into(),
            Self::Iso20V2gRoot => "pnc Dev -20 V2G Root CA".into(),
            Self::Iso20CpsSubCa1 => "pnc Dev -20 CPS Sub-CA 1".into(),
            Self::Iso20CpsSubCa2 => "pnc Dev -20 CPS Sub-CA 2".into(),
            Self::Iso20CpsLeaf => "pnc Dev -20 CPS Leaf".into(),
            Self::Iso20MoRoot => "pnc Dev -20 MO Root CA".into(),
            Self::Iso20MoSubCa1 => "pnc Dev -20 MO Sub-CA 1".into(),
            Self::Iso20MoSubCa2 => "pnc Dev -20 MO Sub-CA 2".into(),
            Self::Iso20OemRoot => "pnc Dev -20 OEM Root CA".into(),
            Self::Iso20OemSubCa1 => "pnc Dev -20 OEM Sub-CA 1".into(),
            Self::Iso20OemSubCa2 => "pnc Dev -20 OEM Sub-CA 2".into(),
            Self::Iso20OemProvisioning => options.example_pcid_iso20.clone(),
        }
    }

    fn validity(self) -> Duration {
        match self {
            Self::V2gRoot
            | Self::MoRoot
            | Self::OemRoot
            | Self::ChargingStationCa
            | Self::Iso20V2gRoot
            | Self::Iso20MoRoot
            | Self::Iso20OemRoot => Duration::days(3650),
            Self::CpoSubCa1
            | Self::CpsSubCa1
            | Self::MoSubCa1
            | Self::OemSubCa1
            | Self::Iso20CpsSubCa1
            | Self::Iso20MoSubCa1
            | Self::Iso20OemSubCa1 => Duration::days(1460),
            Self::CpoSubCa2
            | Self::CpsSubCa2
            | Self::MoSubCa2
            | Self::OemSubCa2
            | Self::Iso20CpsSubCa2
            | Self::Iso20MoSubCa2
            | Self::Iso20OemSubCa2 => Duration::days(730),
            Self::Secc
            | Self::CpsLeaf
            | Self::OemProvisioning
            | Self::Iso20CpsLeaf
            | Self::Iso20OemProvisioning => Duration::days(365),
        }
    }

    fn from_stem(stem: &str) -> Option<DevCert> {
        DevCert::ALL
            .into_iter()
            .chain(DevCert::ISO20)
            .find(|cert| cert.file_stem() == stem)
    }
}

/// Options for [`DevPki::generate`].
#[derive(Clone, Debug)]
pub struct DevPkiOptions {
    /// Base URL written as AIA OCSP into every non-root certificate.
    pub ocsp_base_url: String,
    /// Base URL for CRL distribution points (`{base}/{issuer}.crl`); `None` writes none.
    pub crl_base_url: Option<String>,
    pub organization: String,
    pub country: String,
    /// CN of the example OEM provisioning certificate: WMI `PNC` + 14 + check character.
    pub example_pcid: String,
    /// CN of the example ISO 15118-20 (P-521) OEM provisioning certificate.
    pub example_pcid_iso20: String,
    /// CN of the SECC certificate (an EVSE ID).
    pub secc_common_name: String,
    /// The moment the PKI is generated (tests pass fixed or past times).
    pub now: Option<OffsetDateTime>,
    /// Generate a delegated OCSP signer per CA.
    pub ocsp_signers: bool,
}

impl Default for DevPkiOptions {
    fn default() -> Self {
        Self {
            ocsp_base_url: "http://127.0.0.1:8080/ocsp".into(),
            crl_base_url: Some("http://127.0.0.1:8080/crl".into()),
            organization: "pnc dev".into(),
            country: "DE".into(),
            // WMI "PNC" + "DEMOVEHICLE001" + check character "1". pnc does not verify PCID check
            // characters: the algorithm is not in our sources (iso15118-notes §12.3).
            example_pcid: "PNCDEMOVEHICLE0011".into(),
            // A second example vehicle that speaks ISO 15118-20 (same WMI).
            example_pcid_iso20: "PNCDEMOVEHICLE0201".into(),
            secc_common_name: "DE*PNC*E0001".into(),
            now: None,
            ocsp_signers: true,
        }
    }
}

/// Dev PKI errors.
#[derive(Debug, thiserror::Error)]
pub enum DevPkiError {
    #[error("issuing {what}: {source}")]
    Issue {
        what: String,
        #[source]
        source: IssueError,
    },
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    #[error("signer: {0}")]
    Signer(#[from] crate::signer::SignerError),
    #[error("i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dev pki manifest: {0}")]
    Manifest(String),
    #[error("dev pki on disk is inconsistent: {0}")]
    Inconsistent(String),
    #[error("{0} is not a CA of the dev pki")]
    NotACa(DevCert),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DevPkiError + '_ {
    move |source| DevPkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl std::fmt::Display for DevCert {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.file_stem())
    }
}

/// A certificate and the key that belongs to it.
#[derive(Clone, Debug)]
pub struct DevEntry {
    pub certificate: Certificate,
    signer: Arc<SoftwareSigner>,
}

impl DevEntry {
    pub fn signer(&self) -> Arc<dyn Signer> {
        self.signer.clone()
    }
}

/// Whether [`DevPki::write_out`] also writes the SECC and example OEM provisioning keys as
/// plaintext PKCS#8 (test material for playing the charger and the car; never for production).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PlaintextTestKeys {
    #[default]
    No,
    Write,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: u32,
    ocsp_base_url: String,
    crl_base_url: Option<String>,
    certificates: Vec<String>,
    ocsp_signers: Vec<String>,
}

/// The generated hierarchy: every certificate with its signer.
#[derive(Debug)]
pub struct DevPki {
    entries: BTreeMap<DevCert, DevEntry>,
    ocsp_signers: BTreeMap<DevCert, DevEntry>,
    ocsp_base_url: String,
    crl_base_url: Option<String>,
}

fn ocsp_stem(ca: DevCert) -> String {
    format!("ocsp-{}", ca.file_stem())
}

/// The template of a contract certificate (CN = eMAID, Contract profile).
pub fn contract_template(
    emaid: &str,
    public_key_spki_der: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    organization: Option<&str>,
    ocsp_url: &str,
) -> CertificateTemplate {
    let mut subject = SubjectName::new(emaid);
    subject.organization = organization.map(str::to_owned);
    let mut template = CertificateTemplate::new(
        Profile::Contract,
        subject,
        public_key_spki_der.to_vec(),
        not_before,
        not_after,
    );
    template.ocsp_url = Some(ocsp_url.to_owned());
    template
}

/// The template of a delegated OCSP signer for the CA with `ca_common_name`.
pub fn ocsp_signer_template(
    ca_common_name: &str,
    public_key_spki_der: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateTemplate {
    let mut name: String = format!("OCSP {ca_common_name}");
    name.truncate(64);
    CertificateTemplate::new(
        Profile::OcspSigner,
        SubjectName::new(name),
        public_key_spki_der.to_vec(),
        not_before,
        not_after,
    )
}

/// Issues one certificate of the hierarchy with a fresh key; its issuer must be in `entries`.
fn issue_dev_certificate(
    which: DevCert,
    options: &DevPkiOptions,
    now: OffsetDateTime,
    entries: &BTreeMap<DevCert, DevEntry>,
) -> Result<DevEntry, DevPkiError> {
    // Backdate an hour for clock skew (boulder does the same).
    let not_before = now - Duration::hours(1);
    let signer = Arc::new(SoftwareSigner::generate(
        which.file_stem(),
        which.algorithm(),
    )?);
    let subject = SubjectName::new(which.common_name(options))
        .organization(options.organization.clone())
        .country(options.country.clone());
    let mut template = CertificateTemplate::new(
        which.profile(),
        subject,
        signer.public_key_spki_der().to_vec(),
        not_before,
        now + which.validity(),
    );
    let issuer = which.issuer().and_then(|issuer| entries.get(&issuer));
    if issuer.is_some() {
        template.ocsp_url = Some(options.ocsp_base_url.clone());
    }
    if which.names_crl_distribution_point()
        && let (Some(issuer_cert), Some(base)) = (which.issuer(), &options.crl_base_url)
    {
        template.crl_url = Some(format!("{base}/{}.crl", issuer_cert.file_stem()));
    }
    let certificate = match issuer {
        Some(issuer) => issue(&template, Some(&issuer.certificate), issuer.signer.as_ref()),
        None => issue(&template, None, signer.as_ref()),
    }
    .map_err(|source| DevPkiError::Issue {
        what: which.to_string(),
        source,
    })?;
    Ok(DevEntry {
        certificate,
        signer,
    })
}

impl DevPki {
    /// Generates the whole hierarchy in memory.
    pub fn generate(options: &DevPkiOptions) -> Result<DevPki, DevPkiError> {
        let now = options.now.unwrap_or_else(OffsetDateTime::now_utc);
        let mut entries: BTreeMap<DevCert, DevEntry> = BTreeMap::new();
        for which in DevCert::ALL.into_iter().chain(DevCert::ISO20) {
            let entry = issue_dev_certificate(which, options, now, &entries)?;
            entries.insert(which, entry);
        }

        let mut pki = DevPki {
            entries,
            ocsp_signers: BTreeMap::new(),
            ocsp_base_url: options.ocsp_base_url.clone(),
            crl_base_url: options.crl_base_url.clone(),
        };
        if options.ocsp_signers {
            for ca in DevCert::ALL.into_iter().filter(|cert| cert.is_ca()) {
                let signer = Arc::new(SoftwareSigner::generate(
                    ocsp_stem(ca),
                    SignatureAlgorithm::EcdsaP256Sha256,
                )?);
                let certificate = pki.issue_ocsp_signer_at(
                    ca,
                    signer.public_key_spki_der(),
                    now,
                    Duration::days(365),
                )?;
                pki.ocsp_signers.insert(
                    ca,
                    DevEntry {
                        certificate,
                        signer,
                    },
                );
            }
            pki.issue_iso20_ocsp_signers(now)?;
        }
        Ok(pki)
    }

    pub fn entry(&self, which: DevCert) -> &DevEntry {
        // Every DevCert is generated or loaded, so the map is total.
        &self.entries[&which]
    }

    pub fn certificate(&self, which: DevCert) -> &Certificate {
        &self.entry(which).certificate
    }

    pub fn signer(&self, which: DevCert) -> Arc<dyn Signer> {
        self.entry(which).signer()
    }

    /// The SECC or OEM provisioning key as a software key, for simulators that need ECDH
    /// (contract-key transport on the EV side) and not just signing.
    pub fn software_signer(&self, which: DevCert) -> Arc<SoftwareSigner> {
        self.entry(which).signer.clone()
    }

    pub fn ocsp_signer_certificate(&self, ca: DevCert) -> Option<&Certificate> {
        self.ocsp_signers.get(&ca).map(|entry| &entry.certificate)
    }

    pub fn ocsp_signer(&self, ca: DevCert) -> Option<Arc<dyn Signer>> {
        self.ocsp_signers.get(&ca).map(DevEntry::signer)
    }

    pub fn ocsp_base_url(&self) -> &str {
        &self.ocsp_base_url
    }

    /// The chain from `which` up to and including its root.
    pub fn chain(&self, which: DevCert) -> Vec<Certificate> {
        let mut chain = vec![self.certificate(which).clone()];
        let mut current = which;
        while let Some(issuer) = current.issuer() {
            chain.push(self.certificate(issuer).clone());
            current = issuer;
        }
        chain
    }

    fn crl_url_for(&self, issuer: DevCert) -> Option<String> {
        self.crl_base_url
            .as_ref()
            .map(|base| format!("{base}/{}.crl", issuer.file_stem()))
    }

    /// Issues a contract certificate (CN = eMAID) under MO Sub-CA 2 for `public_key_spki_der`.
    /// No CRL DP: the leaf travels in the -2 contract answers
    /// ([`DevCert::names_crl_distribution_point`]).
    pub fn issue_contract(
        &self,
        emaid: &str,
        public_key_spki_der: &[u8],
        validity: Duration,
    ) -> Result<Certificate, IssueError> {
        let now = OffsetDateTime::now_utc();
        let issuer = self.entry(DevCert::MoSubCa2);
        let organization = issuer
            .certificate
            .subject()
            .values(crate::certificate::OID_O)
            .next();
        let template = contract_template(
            emaid,
            public_key_spki_der,
            now - Duration::hours(1),
            now + validity,
            organization,
            &self.ocsp_base_url,
        );
        issue(&template, Some(&issuer.certificate), issuer.signer.as_ref())
    }

    /// Issues an ISO 15118-20 OEM provisioning certificate (CN = `pcid`) for an **Ed448**
    /// vehicle key under the -20 OEM Sub-CA 2. A -20 OEM may choose Ed448 per vehicle
    /// [V2G20-2319]; the dev PKI keeps its OEM CAs on P-521 (pnc signs nothing with Ed448), so
    /// the chain is P-521 above an Ed448 leaf and no existing certificate changes.
    pub fn issue_iso20_ed448_provisioning(
        &self,
        pcid: &str,
        ed448_public_key_spki_der: &[u8],
        validity: Duration,
    ) -> Result<Certificate, IssueError> {
        let key = openssl::pkey::PKey::public_key_from_der(ed448_public_key_spki_der)
            .map_err(|error| IssueError::InvalidTemplate(error.to_string()))?;
        if key.id() != openssl::pkey::Id::ED448 {
            return Err(IssueError::InvalidTemplate(
                "the vehicle key must be an Ed448 key".into(),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let issuer = self.entry(DevCert::Iso20OemSubCa2);
        let mut subject = SubjectName::new(pcid);
        subject.organization = issuer
            .certificate
            .subject()
            .values(crate::certificate::OID_O)
            .next()
            .map(str::to_owned);
        subject.country = issuer
            .certificate
            .subject()
            .values(crate::certificate::OID_C)
            .next()
            .map(str::to_owned);
        let mut template = CertificateTemplate::new(
            Profile::OemProvisioning,
            subject,
            ed448_public_key_spki_der.to_vec(),
            now - Duration::hours(1),
            now + validity,
        );
        template.ocsp_url = Some(self.ocsp_base_url.clone());
        template.crl_url = self.crl_url_for(DevCert::Iso20OemSubCa2);
        issue(&template, Some(&issuer.certificate), issuer.signer.as_ref())
    }

    /// Issues a charger client certificate under the charging-station CA.
    pub fn issue_charging_station(
        &self,
        station_id: &str,
        public_key_spki_der: &[u8],
        validity: Duration,
    ) -> Result<Certificate, IssueError> {
        let now = OffsetDateTime::now_utc();
        let issuer = self.entry(DevCert::ChargingStationCa);
        let organization = issuer
            .certificate
            .subject()
            .values(crate::certificate::OID_O)
            .next();
        let mut subject = SubjectName::new(station_id);
        subject.organization = organization.map(str::to_owned);
        let mut template = CertificateTemplate::new(
            Profile::ChargingStation,
            subject,
            public_key_spki_der.to_vec(),
            now - Duration::hours(1),
            now + validity,
        );
        template.ocsp_url = Some(self.ocsp_base_url.clone());
        template.crl_url = self.crl_url_for(DevCert::ChargingStationCa);
        issue(&template, Some(&issuer.certificate), issuer.signer.as_ref())
    }

    /// Issues a (further) delegated OCSP signer certificate for the CA `ca`.
    pub fn issue_ocsp_signer(
        &self,
        ca: DevCert,
        public_key_spki_der: &[u8],
        validity: Duration,
    ) -> Result<Certificate, DevPkiError> {
        self.issue_ocsp_signer_at(ca, public_key_spki_der, OffsetDateTime::now_utc(), validity)
    }

    fn issue_ocsp_signer_at(
        &self,
        ca: DevCert,
        public_key_spki_der: &[u8],
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<Certificate, DevPkiError> {
        if !ca.is_ca() {
            return Err(DevPkiError::NotACa(ca));
        }
        let issuer = self.entry(ca);
        let ca_name = issuer.certificate.common_name().unwrap_or(ca.file_stem());
        let template = ocsp_signer_template(
            ca_name,
            public_key_spki_der,
            now - Duration::hours(1),
            now + validity,
        );
        issue(&template, Some(&issuer.certificate), issuer.signer.as_ref()).map_err(|source| {
            DevPkiError::Issue {
                what: ocsp_stem(ca),
                source,
            }
        })
    }

    /// Writes every certificate as `<name>.pem` and `<name>.der`, chain bundles
    /// (`secc-chain.pem`, `cps-leaf-chain.pem`, `oem-provisioning-chain.pem`), the manifest, and
    /// every private key through `key_store`. With [`PlaintextTestKeys::Write`], also
    /// `secc-key.pem` and `oem-provisioning-key.pem` (PKCS#8, mode 0600).
    pub fn write_out(
        &self,
        directory: &Path,
        key_store: &KeyStore,
        plaintext_test_keys: PlaintextTestKeys,
    ) -> Result<(), DevPkiError> {
        fs::create_dir_all(directory).map_err(io_error(directory))?;
        let manifest_path = directory.join(MANIFEST_FILE);
        if manifest_path.exists() {
            return Err(DevPkiError::Manifest(format!(
                "{} exists; refusing to overwrite a dev pki",
                manifest_path.display()
            )));
        }
        let write = |name: &str, bytes: &[u8]| -> Result<(), DevPkiError> {
            let path = directory.join(name);
            fs::write(&path, bytes).map_err(io_error(&path))
        };
        let all_entries = self
            .entries
            .iter()
            .map(|(which, entry)| (which.file_stem().to_owned(), entry))
            .chain(
                self.ocsp_signers
                    .iter()
                    .map(|(ca, entry)| (ocsp_stem(*ca), entry)),
            );
        for (stem, entry) in all_entries {
            write(
                &format!("{stem}.pem"),
                entry.certificate.to_pem().as_bytes(),
            )?;
            write(&format!("{stem}.der"), entry.certificate.der())?;
            key_store.store(&entry.signer)?;
        }
        for (leaf, bundle) in [
            (DevCert::Secc, "secc-chain.pem"),
            (DevCert::CpsLeaf, "cps-leaf-chain.pem"),
            (DevCert::OemProvisioning, "oem-provisioning-chain.pem"),
            (DevCert::Iso20CpsLeaf, "iso20-cps-leaf-chain.pem"),
            (
                DevCert::Iso20OemProvisioning,
                "iso20-oem-provisioning-chain.pem",
            ),
        ] {
            if !self.entries.contains_key(&leaf) {
                continue;
            }
            // Leaf and Sub-CAs, without the root (what a charger or EV sends).
            let chain = self.chain(leaf);
            let pem: String = chain[..chain.len() - 1]
                .iter()
                .map(Certificate::to_pem)
                .collect();
            write(bundle, pem.as_bytes())?;
        }
        if plaintext_test_keys == PlaintextTestKeys::Write {
            for which in [
                DevCert::Secc,
                DevCert::OemProvisioning,
                DevCert::Iso20OemProvisioning,
            ] {
                if !self.entries.contains_key(&which) {
                    continue;
                }
                let path = directory.join(format!("{}-key.pem", which.file_stem()));
                let pem = self.entry(which).signer.export_pkcs8_pem()?;
                write_new_private_file(&path, &pem)?;
                tracing::warn!(
                    path = %path.display(),
                    "wrote a plaintext test key (dev material only)"
                );
            }
        }
        self.write_manifest(directory)
    }

    fn write_manifest(&self, directory: &Path) -> Result<(), DevPkiError> {
        let manifest = Manifest {
            format: 1,
            ocsp_base_url: self.ocsp_base_url.clone(),
            crl_base_url: self.crl_base_url.clone(),
            certificates: self
                .entries
                .keys()
                .map(|w| w.file_stem().to_owned())
                .collect(),
            ocsp_signers: self
                .ocsp_signers
                .keys()
                .map(|ca| ca.file_stem().to_owned())
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|error| DevPkiError::Manifest(error.to_string()))?;
        let path = directory.join(MANIFEST_FILE);
        fs::write(&path, json).map_err(io_error(&path))
    }

    /// Whether the ISO 15118-20 hierarchy is present (a dev PKI loaded with [`DevPki::load`]
    /// from before -20 lacks it until [`DevPki::load_or_create`] adds it).
    pub fn has_iso20(&self) -> bool {
        DevCert::ISO20
            .iter()
            .all(|which| self.entries.contains_key(which))
    }

    /// Adds the ISO 15118-20 hierarchy to a dev PKI written before it existed: new files and
    /// keys, and the manifest rewritten; nothing of the -2 part changes.
    fn add_iso20(
        &mut self,
        directory: &Path,
        key_store: &KeyStore,
        options: &DevPkiOptions,
    ) -> Result<(), DevPkiError> {
        let now = options.now.unwrap_or_else(OffsetDateTime::now_utc);
        for which in DevCert::ISO20 {
            let entry = issue_dev_certificate(which, options, now, &self.entries)?;
            for (name, bytes) in [
                (
                    format!("{}.pem", which.file_stem()),
                    entry.certificate.to_pem().into_bytes(),
                ),
                (
                    format!("{}.der", which.file_stem()),
                    entry.certificate.der().to_vec(),
                ),
            ] {
                let path = directory.join(name);
                fs::write(&path, bytes).map_err(io_error(&path))?;
            }
            // A key the manifest does not list is an orphan of an interrupted upgrade: keep
            // it aside rather than overwrite or refuse forever.
            let key_path = key_store
                .directory()
                .join(format!("{}.key", which.file_stem()));
            if key_path.exists() {
                let aside =
                    key_path.with_extension(format!("key.orphaned-{}", now.unix_timestamp()));
                fs::rename(&key_path, &aside).map_err(io_error(&key_path))?;
                tracing::warn!(path = %aside.display(), "set aside an unlisted dev pki key");
            }
            key_store.store(&entry.signer)?;
            self.entries.insert(which, entry);
        }
        self.write_manifest(directory)
    }

    /// The -20 CAs that lack a delegated OCSP signer.
    fn iso20_cas_without_ocsp_signer(&self) -> Vec<DevCert> {
        DevCert::ISO20
            .into_iter()
            .filter(|ca| {
                ca.is_ca() && self.entries.contains_key(ca) && !self.ocsp_signers.contains_key(ca)
            })
            .collect()
    }

    /// Gives every -20 CA without one a delegated OCSP signer on the CA's own curve and digest
    /// (P-521, ECDSA-SHA512), as the -2 CAs have on theirs; the CAs it added.
    fn issue_iso20_ocsp_signers(
        &mut self,
        now: OffsetDateTime,
    ) -> Result<Vec<DevCert>, DevPkiError> {
        let missing = self.iso20_cas_without_ocsp_signer();
        for ca in &missing {
            let signer = Arc::new(SoftwareSigner::generate(ocsp_stem(*ca), ca.algorithm())?);
            let certificate = self.issue_ocsp_signer_at(
                *ca,
                signer.public_key_spki_der(),
                now,
                Duration::days(365),
            )?;
            self.ocsp_signers.insert(
                *ca,
                DevEntry {
                    certificate,
                    signer,
                },
            );
        }
        Ok(missing)
    }

    /// Adds the -20 OCSP signers to a dev PKI written before they existed (one that has the
    /// -2 signers): new files and keys, the manifest rewritten, nothing else changes.
    fn add_iso20_ocsp_signers(
        &mut self,
        directory: &Path,
        key_store: &KeyStore,
        now: OffsetDateTime,
    ) -> Result<(), DevPkiError> {
        for ca in self.issue_iso20_ocsp_signers(now)? {
            let stem = ocsp_stem(ca);
            let entry = &self.ocsp_signers[&ca];
            for (name, bytes) in [
                (
                    format!("{stem}.pem"),
                    entry.certificate.to_pem().into_bytes(),
                ),
                (format!("{stem}.der"), entry.certificate.der().to_vec()),
            ] {
                let path = directory.join(name);
                fs::write(&path, bytes).map_err(io_error(&path))?;
            }
            // As in add_iso20: an unlisted key is an orphan of an interrupted upgrade.
            let key_path = key_store.directory().join(format!("{stem}.key"));
            if key_path.exists() {
                let aside =
                    key_path.with_extension(format!("key.orphaned-{}", now.unix_timestamp()));
                fs::rename(&key_path, &aside).map_err(io_error(&key_path))?;
                tracing::warn!(path = %aside.display(), "set aside an unlisted dev pki key");
            }
            key_store.store(&entry.signer)?;
        }
        self.write_manifest(directory)
    }

    /// Loads a dev PKI written by [`DevPki::write_out`].
    pub fn load(directory: &Path, key_store: &KeyStore) -> Result<DevPki, DevPkiError> {
        let manifest_path = directory.join(MANIFEST_FILE);
        let json = fs::read(&manifest_path).map_err(io_error(&manifest_path))?;
        let manifest: Manifest = serde_json::from_slice(&json)
            .map_err(|error| DevPkiError::Manifest(error.to_string()))?;
        if manifest.format != 1 {
            return Err(DevPkiError::Manifest(format!(
                "unsupported format {}",
                manifest.format
            )));
        }
        let load_entry = |stem: &str| -> Result<DevEntry, DevPkiError> {
            let path = directory.join(format!("{stem}.der"));
            let der = fs::read(&path).map_err(io_error(&path))?;
            let certificate = Certificate::from_der(&der)
                .map_err(|error| DevPkiError::Inconsistent(format!("{stem}: {error}")))?;
            let signer = key_store.load(stem)?;
            if signer.public_key_spki_der() != certificate.public_key_spki_der() {
                return Err(DevPkiError::Inconsistent(format!(
                    "key {stem} does not match its certificate"
                )));
            }
            Ok(DevEntry {
                certificate,
                signer,
            })
        };
        let mut entries = BTreeMap::new();
        let listed = |which: DevCert| {
            manifest
                .certificates
                .iter()
                .any(|stem| stem == which.file_stem())
        };
        for which in DevCert::ALL {
            if !listed(which) {
                return Err(DevPkiError::Manifest(format!("{which} is missing")));
            }
            entries.insert(which, load_entry(which.file_stem())?);
        }
        // The -20 part is all there or (a PKI from before -20) not at all.
        let iso20_listed = DevCert::ISO20.into_iter().filter(|w| listed(*w)).count();
        if iso20_listed == DevCert::ISO20.len() {
            for which in DevCert::ISO20 {
                entries.insert(which, load_entry(which.file_stem())?);
            }
        } else if iso20_listed != 0 {
            return Err(DevPkiError::Manifest(
                "the ISO 15118-20 hierarchy is incomplete".into(),
            ));
        }
        let mut ocsp_signers = BTreeMap::new();
        for stem in &manifest.ocsp_signers {
            let ca = DevCert::from_stem(stem)
                .ok_or_else(|| DevPkiError::Manifest(format!("unknown ca {stem:?}")))?;
            // The signer of a CA the manifest no longer lists (a -20 part being re-added)
            // is stale; load_or_create issues a new one.
            if !entries.contains_key(&ca) {
                continue;
            }
            ocsp_signers.insert(ca, load_entry(&ocsp_stem(ca))?);
        }
        Ok(DevPki {
            entries,
            ocsp_signers,
            ocsp_base_url: manifest.ocsp_base_url,
            crl_base_url: manifest.crl_base_url,
        })
    }

    /// The server's first start: loads the dev PKI in `directory` if there is one, else generates
    /// and writes it. Keys go to `directory/keys` under the KEK at `kek_path` (created if absent).
    /// A second call loads the same material.
    pub fn load_or_create(
        directory: &Path,
        kek_path: &Path,
        options: &DevPkiOptions,
    ) -> Result<DevPki, DevPkiError> {
        let key_store = KeyStore::open(directory.join(KEYS_DIR), Kek::load_or_create(kek_path)?)?;
        if directory.join(MANIFEST_FILE).exists() {
            tracing::info!(directory = %directory.display(), "loading dev pki");
            let mut pki = DevPki::load(directory, &key_store)?;
            if !pki.has_iso20() {
                tracing::info!(directory = %directory.display(), "adding the iso 15118-20 hierarchy to the dev pki");
                pki.add_iso20(directory, &key_store, options)?;
            }
            let has_ocsp_signers = !pki.ocsp_signers.is_empty();
            if has_ocsp_signers && !pki.iso20_cas_without_ocsp_signer().is_empty() {
                tracing::info!(directory = %directory.display(), "adding ocsp signers for the iso 15118-20 cas to the dev pki");
                let now = options.now.unwrap_or_else(OffsetDateTime::now_utc);
                pki.add_iso20_ocsp_signers(directory, &key_store, now)?;
            }
            return Ok(pki);
        }
        tracing::info!(directory = %directory.display(), "generating dev pki");
        let pki = DevPki::generate(options)?;
        pki.write_out(directory, &key_store, PlaintextTestKeys::No)?;
        Ok(pki)
    }
}
