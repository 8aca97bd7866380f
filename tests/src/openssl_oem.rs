//! A foreign OEM PKI made by the `openssl` command line, not by pnc's own code: root →
//! Sub-CA 1 → Sub-CA 2 → one provisioning certificate per vehicle. The CAs and each vehicle
//! have their own key type (P-256 for ISO 15118-2, P-521 or Ed448 for ISO 15118-20). With a
//! responder URL the vehicles name it in their AIA, and `index.txt` lists them for an
//! `openssl ocsp` responder: a vehicle whose PCID contains `REVOKED` is revoked.

use std::path::{Path, PathBuf};
use std::process::Command;

use pnc_pki::Certificate;

use crate::openssl_ocsp::{self, Responder};

/// A key type of the PKI, and the signature its holder makes on the certificates it issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ecdsa-with-SHA256 (ISO 15118-2).
    P256,
    /// ecdsa-with-SHA512 (ISO 15118-20).
    P521,
    /// Pure Ed448 (ISO 15118-20's alternative, OID 1.3.101.113).
    Ed448,
}

impl KeyType {
    fn genpkey_args(self) -> &'static [&'static str] {
        match self {
            KeyType::P256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::P521 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
            KeyType::Ed448 => &["-algorithm", "ED448"],
        }
    }

    /// The digest flag when this key signs; Ed448 signs the TBS itself and takes none.
    fn digest_args(self) -> &'static [&'static str] {
        match self {
            KeyType::P256 => &["-sha256"],
            KeyType::P521 => &["-sha512"],
            KeyType::Ed448 => &[],
        }
    }
}

fn run(command: &mut Command) {
    let output = command.output().expect("run openssl");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The files of the PKI in its directory: `<name>.pem`, `<name>.key` for `root`, `sub1`,
/// `sub2` and every PCID.
pub struct OemPki {
    dir: PathBuf,
}

impl OemPki {
    /// Root and Sub-CAs of `ca_keys`, one vehicle per `(pcid, key type)`; each vehicle's AIA
    /// names `responder_url` when given.
    pub fn create(
        dir: &Path,
        ca_keys: KeyType,
        vehicles: &[(&str, KeyType)],
        responder_url: Option<&str>,
    ) -> OemPki {
        let aia = responder_url
            .map(|url| format!("authorityInfoAccess=OCSP;URI:{url}\n"))
            .unwrap_or_default();
        std::fs::write(
            dir.join("ext.cnf"),
            format!(
                "[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier=hash\n\
                 [sub1]\nbasicConstraints=critical,CA:TRUE,pathlen:1\nkeyUsage=critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
                 [sub2]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
                 [vehicle]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\n\
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n{aia}"
            ),
        )
        .expect("ext");
        let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
        let key = |name: &str, key_type: KeyType| {
            let out = format!("{name}.key");
            let mut args = vec!["genpkey"];
            args.extend_from_slice(key_type.genpkey_args());
            args.extend_from_slice(&["-out", &out]);
            openssl(&args);
        };
        key("root", ca_keys);
        let mut root_args = vec![
            "req", "-new", "-x509", "-key", "root.key", "-out", "root.pem", "-days", "30",
        ];
        root_args.extend_from_slice(&["-subj", "/CN=Test OEM Root/O=pnc tests"]);
        root_args.extend_from_slice(&["-extensions", "root", "-config", "ext.cnf"]);
        root_args.extend_from_slice(ca_keys.digest_args());
        openssl(&root_args);
        let issue = |name: &str, key_type: KeyType, subject: &str, issuer: &str, serial: &str| {
            key(name, key_type);
            let (key_file, csr) = (format!("{name}.key"), format!("{name}.csr"));
            openssl(&[
                "req", "-new", "-key", &key_file, "-out", &csr, "-subj", subject,
            ]);
            let (ca, ca_key, out) = (
                format!("{issuer}.pem"),
                format!("{issuer}.key"),
                format!("{name}.pem"),
            );
            let extension = if name.starts_with("sub") {
                name
            } else {
                "vehicle"
            };
            let mut args = vec!["x509", "-req", "-in", &csr, "-CA", &ca, "-CAkey", &ca_key];
            args.extend_from_slice(&["-set_serial", serial, "-days", "20"]);
            args.extend_from_slice(&["-extfile", "ext.cnf", "-extensions", extension]);
            args.extend_from_slice(&["-out", &out]);
            args.extend_from_slice(ca_keys.digest_args());
            openssl(&args);
        };
        issue(
            "sub1",
            ca_keys,
            "/CN=Test OEM Sub-CA 1/O=pnc tests",
            "root",
            "0x1001",
        );
        issue(
            "sub2",
            ca_keys,
            "/CN=Test OEM Sub-CA 2/O=pnc tests",
            "sub1",
            "0x2001",
        );
        let mut index = String::new();
        for (position, (pcid, key_type)) in vehicles.iter().enumerate() {
            let serial = format!("{:X}", 0x3001 + position);
            let subject = format!("/CN={pcid}/O=pnc tests");
            issue(pcid, *key_type, &subject, "sub2", &format!("0x{serial}"));
            let revoked = pcid.contains("REVOKED");
            // index.txt: status, expiry, revocation, serial, file, subject.
            index.push_str(&format!(
                "{}\t301231235959Z\t{}\t{serial}\tunknown\t{subject}\n",
                if revoked { "R" } else { "V" },
                if revoked {
                    "240101000000Z,keyCompromise"
                } else {
                    ""
                },
            ));
        }
        std::fs::write(dir.join("index.txt"), index).expect("index");
        OemPki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn certificate(&self, name: &str) -> Certificate {
        Certificate::from_pem(&self.file(name, "pem")).expect("certificate")
    }

    /// The PEM private key of `name`.
    pub fn key_pem(&self, name: &str) -> Vec<u8> {
        self.file(name, "key")
    }

    fn file(&self, name: &str, extension: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(format!("{name}.{extension}"))).expect("pki file")
    }

    /// An ECDSA vehicle's key as a pnc signer.
    pub fn signer(&self, name: &str) -> pnc_pki::SoftwareSigner {
        pnc_pki::SoftwareSigner::from_pem(name, &self.key_pem(name)).expect("vehicle key")
    }

    /// Leaf, Sub-CA 2, Sub-CA 1: the chain an OEM registers for `pcid`.
    pub fn chain(&self, pcid: &str) -> [Certificate; 3] {
        [
            self.certificate(pcid),
            self.certificate("sub2"),
            self.certificate("sub1"),
        ]
    }

    /// `openssl ocsp` for Sub-CA 2's vehicles, signing with Sub-CA 2 itself, nextUpdate one
    /// minute on.
    pub fn start_responder(&self, port: u16) -> Responder {
        openssl_ocsp::start_responder(&self.dir, port, "sub2.pem", "sub2.pem", "sub2.key")
    }
}
