//! Revocation of foreign OEM provisioning certificates at installation time, end to end on
//! both backends: an OEM PKI made with the openssl CLI (root in the pool as an OEM root,
//! Sub-CA 1 and 2 named only in the PCP registrations, vehicle leaves whose AIA names a real
//! `openssl ocsp` responder on loopback), vehicles registered through OPCP PCP, contracts
//! generated, and the EV's CertificateInstallationReq sent through the OCPP-shaped endpoint.
//! A revoked leaf gets FAILED_CertificateRevoked, a good one its contract; with the
//! responder gone and nothing cached, `pki.revocation_unavailable` decides.

mod provisioning_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_common::config::RevocationUnavailable;
use pnc_pki::Certificate;
use pnc_pki::dev::DevCert;
use pnc_proto::principal::Role;
use pnc_tests::openssl_ocsp::{self, Responder, free_port};
use pnc_tests::{Backend, Sandbox};
use provisioning_support::*;
use serde_json::json;

const SESSION_ID: [u8; 8] = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80];
const WMI: &str = "TST";
const GOOD_PCID: &str = "TSTGOODVEHICLE001";
const REVOKED_PCID: &str = "TSTREVOKEDVEHIC01";
const LATE_PCID: &str = "TSTLATEVEHICLE001";

fn run(command: &mut Command) {
    let output = command.output().expect("run openssl");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An OEM PKI made by the openssl CLI: root → Sub-CA 1 → Sub-CA 2 → vehicles (AIA OCSP =
/// `responder_url`). `index.txt` marks the vehicles whose PCID contains `REVOKED` revoked.
struct OemPki {
    dir: PathBuf,
}

impl OemPki {
    fn create(dir: &Path, responder_url: &str, pcids: &[&str]) -> OemPki {
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
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nauthorityInfoAccess=OCSP;URI:{responder_url}\n"
            ),
        )
        .expect("ext");
        let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
        let key = |name: &str| {
            openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &format!("{name}.key"),
            ])
        };
        key("root");
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-key",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Test OEM Root/O=pnc tests",
            "-extensions",
            "root",
            "-config",
            "ext.cnf",
            "-sha256",
        ]);
        let issue = |name: &str, subject: &str, issuer: &str, extension: &str, serial: &str| {
            key(name);
            openssl(&[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                subject,
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{issuer}.pem"),
                "-CAkey",
                &format!("{issuer}.key"),
                "-set_serial",
                serial,
                "-days",
                "20",
                "-extfile",
                "ext.cnf",
                "-extensions",
                extension,
                "-out",
                &format!("{name}.pem"),
                "-sha256",
            ]);
        };
        issue(
            "sub1",
            "/CN=Test OEM Sub-CA 1/O=pnc tests",
            "root",
            "sub1",
            "0x1001",
        );
        issue(
            "sub2",
            "/CN=Test OEM Sub-CA 2/O=pnc tests",
            "sub1",
            "sub2",
            "0x2001",
        );
        let mut index = String::new();
        for (position, pcid) in pcids.iter().enumerate() {
            let serial = format!("{:X}", 0x3001 + position);
            issue(
                pcid,
                &format!("/CN={pcid}/O=pnc tests"),
                "sub2",
                "vehicle",
                &format!("0x{serial}"),
            );
            let revoked = pcid.contains("REVOKED");
            // index.txt: status, expiry, revocation, serial, file, subject.
            index.push_str(&format!(
                "{}\t301231235959Z\t{}\t{serial}\tunknown\t/CN={pcid}/O=pnc tests\n",
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

    fn certificate(&self, name: &str) -> Certificate {
        Certificate::from_pem(&std::fs::read(self.dir.join(format!("{name}.pem"))).expect("pem"))
            .expect("certificate")
    }

    fn signer(&self, name: &str) -> pnc_pki::SoftwareSigner {
        let pem = std::fs::read(self.dir.join(format!("{name}.key"))).expect("key");
        pnc_pki::SoftwareSigner::from_pem(name, &pem).expect("vehicle key")
    }

    /// `openssl ocsp` for Sub-CA 2's vehicles, signing with Sub-CA 2 itself, nextUpdate one
    /// minute on.
    fn start_responder(&self, port: u16) -> Responder {
        openssl_ocsp::start_responder(&self.dir, port, "sub2.pem", "sub2.pem", "sub2.key")
    }
}

/// Puts the OEM root into the pool, registers every vehicle through PCP (the only place the
/// Sub-CAs are named: provisioning makes them known CAs once it has validated a chain, so
/// the OCSP service finds the vehicles' issuer) and generates a contract for each; returns
/// the CPO token.
async fn prepare(sandbox: &Sandbox, pki: &OemPki, pcids: &[&str]) -> String {
    let dev = dev_pki(sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(sandbox, &admin.token, &dev).await;
    let response = sandbox
        .http
        .put(sandbox.url("/v1/root/rootCerts"))
        .bearer_auth(&admin.token)
        .json(&json!({
            "caCertificate": STANDARD.encode(pki.certificate("root").der()),
            "rootType": "OEM",
        }))
        .send()
        .await
        .expect("put root");
    assert!(
        response.status().is_success(),
        "put root: {}",
        response.text().await.unwrap_or_default()
    );
    let oem = sandbox.client(Role::Oem, &[WMI], &[], &[]).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (sub2, sub1) = (pki.certificate("sub2"), pki.certificate("sub1"));
    for (position, pcid) in pcids.iter().enumerate() {
        register_vehicle(sandbox, &oem.token, &[&pki.certificate(pcid), &sub2, &sub1]).await;
        let emaid = format!("DEPNCC{:08}", 100 + position);
        let (status, body) = generate(sandbox, &emsp.token, &emaid, pcid).await;
        assert_eq!(status, 201, "generate for {pcid}: {body}");
    }
    sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await.token
}

/// The vehicle's CertificateInstallationReq through the OCPP-shaped endpoint; the ISO
/// ResponseCode and the reason pnc gives.
async fn install(sandbox: &Sandbox, cpo: &str, pki: &OemPki, pcid: &str) -> (String, String) {
    let v2g_root = dev_pki(sandbox).certificate(DevCert::V2gRoot).clone();
    let (_, exi) = installation_request(
        &pki.signer(pcid),
        &pki.certificate(pcid),
        &SESSION_ID,
        vec![root_id(&v2g_root)],
    );
    let (status, body) = ocpp_install(sandbox, cpo, &exi).await;
    assert_eq!(status, 200, "{pcid}: {body}");
    assert_eq!(body["status"], "Accepted", "{pcid}: {body}");
    let (code, session, _) = decode_answer(body["exiResponse"].as_str().expect("exiResponse"));
    assert_eq!(session, SESSION_ID, "{pcid}: SessionID echoed");
    let reason = body["statusInfo"]["additionalInfo"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (code, reason)
}

fn no_prefetch(config: &mut pnc_common::Config) {
    config.ocsp.prefetch_interval_seconds = 0;
}

async fn revocation_scenario(backend: Backend) {
    let work = tempfile::tempdir().expect("dir");
    let port = free_port();
    let pki = OemPki::create(
        work.path(),
        &format!("http://127.0.0.1:{port}"),
        &[GOOD_PCID, REVOKED_PCID, LATE_PCID],
    );
    let mut responder = pki.start_responder(port);
    let sandbox = Sandbox::start_with(backend, no_prefetch).await;
    let cpo = prepare(&sandbox, &pki, &[GOOD_PCID, REVOKED_PCID, LATE_PCID]).await;

    // ok/good: the responder says good; the vehicle gets its contract.
    let (code, reason) = install(&sandbox, &cpo, &pki, GOOD_PCID).await;
    assert_eq!(code, "OK", "ok/good: {reason}");
    // fail/revoked: revocation comes before the contract.
    let (code, reason) = install(&sandbox, &cpo, &pki, REVOKED_PCID).await;
    assert_eq!(code, "FAILED_CertificateRevoked", "fail/revoked: {reason}");
    assert!(reason.contains("revoked (OCSP)"), "{reason}");

    // With the responder gone, the cached answers still hold until their nextUpdate.
    responder.stop();
    let (code, reason) = install(&sandbox, &cpo, &pki, REVOKED_PCID).await;
    assert_eq!(
        code, "FAILED_CertificateRevoked",
        "cached revoked: {reason}"
    );
    let (code, reason) = install(&sandbox, &cpo, &pki, GOOD_PCID).await;
    assert_eq!(code, "OK", "cached good: {reason}");
    // ok/unavailable-accepted: never asked, no responder, the default accepts.
    let (code, reason) = install(&sandbox, &cpo, &pki, LATE_PCID).await;
    assert_eq!(code, "OK", "unavailable, accepted by default: {reason}");
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_foreign_oem_revocation_checked_by_ocsp_sqlite() {
    revocation_scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_foreign_oem_revocation_checked_by_ocsp_postgres() {
    revocation_scenario(Backend::Postgres).await;
}

/// `pki.revocation_unavailable = "refuse"`: no status, no contract.
#[tokio::test]
async fn fail_revocation_unavailable_refused_when_configured_sqlite() {
    let work = tempfile::tempdir().expect("dir");
    let port = free_port();
    let pki = OemPki::create(
        work.path(),
        &format!("http://127.0.0.1:{port}"),
        &[GOOD_PCID],
    );
    // No responder is started: nothing listens on the AIA's port.
    let sandbox = Sandbox::start_with(Backend::Sqlite, |config| {
        no_prefetch(config);
        config.pki.revocation_unavailable = RevocationUnavailable::Refuse;
    })
    .await;
    let cpo = prepare(&sandbox, &pki, &[GOOD_PCID]).await;
    let (code, reason) = install(&sandbox, &cpo, &pki, GOOD_PCID).await;
    assert_eq!(code, "FAILED", "{reason}");
    assert!(reason.contains("revocation status unavailable"), "{reason}");
    // The responder comes up: the same vehicle is answered.
    let _responder = pki.start_responder(port);
    let (code, reason) = install(&sandbox, &cpo, &pki, GOOD_PCID).await;
    assert_eq!(code, "OK", "{reason}");
    sandbox.stop().await;
}
