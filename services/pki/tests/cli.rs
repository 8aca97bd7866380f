//! `pnc pki init --dev` and `pnc pki check`, through clap as the binary will call them, and the
//! dev PKI checked by independent verifiers: the `openssl verify` command line and rustls-webpki.

use std::path::Path;
use std::process::{Command, ExitCode};

use clap::Parser;
use pnc_pki::cli::{PkiArgs, check_bytes, run_with};
use pnc_pki::dev::DevCert;
use pnc_pki::{DevPki, DevPkiOptions, Profile};

#[derive(Parser)]
struct TestCli {
    #[command(flatten)]
    pki: PkiArgs,
}

fn run(arguments: &[&str]) -> (ExitCode, String, String) {
    let cli = TestCli::try_parse_from(std::iter::once("pki").chain(arguments.iter().copied()))
        .expect("arguments parse");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_with(cli.pki, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn init_dev_then_check_every_file() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("pki");
    let out_text = out.to_str().unwrap();
    let (code, stdout, stderr) = run(&["init", "--dev", "--out", out_text, "--write-test-keys"]);
    assert_eq!(code, ExitCode::SUCCESS, "{stdout}{stderr}");
    assert!(stdout.contains("plaintext test keys"));
    assert!(out.join("kek").exists());
    assert!(out.join("secc-key.pem").exists());

    // Every certificate file passes its (inferred) profile.
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "pem" || extension == "der")
                && !path.to_string_lossy().ends_with("-key.pem")
        })
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert!(files.len() > 50);
    let mut arguments = vec!["check"];
    arguments.extend(files.iter().map(String::as_str));
    let (code, stdout, _) = run(&arguments);
    assert_eq!(code, ExitCode::SUCCESS, "{stdout}");
    assert!(stdout.contains("secc.pem: PASS profile secc (inferred)"));
    assert!(!stdout.contains("FAIL"));

    // A given, wrong profile fails with findings, one per line.
    let secc = out.join("secc.der");
    let (code, stdout, _) = run(&["check", "--profile", "cps-leaf", secc.to_str().unwrap()]);
    assert_eq!(code, ExitCode::FAILURE);
    assert!(stdout.contains("FAIL profile cps-leaf (given)"));
    assert!(stdout.lines().any(|line| line.contains("error [dc-wrong]")));
    assert!(
        stdout
            .lines()
            .any(|line| line.contains("warning [key-usage-extra-bits]"))
    );

    // Second init refuses to overwrite.
    let (code, _, stderr) = run(&["init", "--dev", "--out", out_text]);
    assert_eq!(code, ExitCode::FAILURE);
    assert!(stderr.contains("already holds"));
    // Without --dev: usage error.
    let (code, _, _) = run(&["init", "--out", out_text]);
    assert_eq!(code, ExitCode::from(2));
    // Garbage file.
    let garbage = directory.path().join("garbage.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let (code, stdout, _) = run(&["check", garbage.to_str().unwrap()]);
    assert_eq!(code, ExitCode::FAILURE);
    assert!(stdout.contains("error [unparseable]"));
}

#[test]
fn every_profile_of_the_dev_pki_through_check() {
    let pki = DevPki::generate(&DevPkiOptions::default()).unwrap();
    let mut seen = Vec::new();
    for which in DevCert::ALL {
        for bytes in [
            pki.certificate(which).der().to_vec(),
            pki.certificate(which).to_pem().into_bytes(),
        ] {
            for profile in [None, Some(which.profile())] {
                let reports = check_bytes(&bytes, profile).unwrap();
                assert_eq!(reports.len(), 1);
                assert_eq!(reports[0].profile, which.profile());
                assert!(reports[0].passed(), "{which}: {:?}", reports[0].findings);
            }
        }
        seen.push(which.profile());
        if which.is_ca() {
            let ocsp = pki.ocsp_signer_certificate(which).unwrap();
            let reports = check_bytes(ocsp.der(), None).unwrap();
            assert_eq!(reports[0].profile, Profile::OcspSigner);
            assert!(reports[0].passed());
        }
    }
    assert_eq!(seen.len(), 15);
}

// ---------------------------------------------------------------------------------------------
// Independent verifiers.

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn write_pem(directory: &Path, name: &str, certificates: &[&pnc_pki::Certificate]) -> String {
    let path = directory.join(name);
    let pem: String = certificates.iter().map(|c| c.to_pem()).collect();
    std::fs::write(&path, pem).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn openssl_verify_accepts_every_dev_certificate() {
    if !openssl_available() {
        eprintln!("openssl command line not available; skipping");
        return;
    }
    let pki = DevPki::generate(&DevPkiOptions::default()).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut verify = |leaf: &pnc_pki::Certificate,
                      chain: Vec<pnc_pki::Certificate>,
                      label: &str| {
        let root = chain.last().unwrap().clone();
        let anchors = write_pem(directory.path(), "anchors.pem", &[&root]);
        let untrusted_certs: Vec<&pnc_pki::Certificate> = chain[..chain.len() - 1].iter().collect();
        let leaf_file = write_pem(directory.path(), "leaf.pem", &[leaf]);
        let mut command = Command::new("openssl");
        command.args(["verify", "-x509_strict", "-CAfile", &anchors]);
        if !untrusted_certs.is_empty() {
            let untrusted = write_pem(directory.path(), "untrusted.pem", &untrusted_certs);
            command.args(["-untrusted", &untrusted]);
        }
        // OCSP signers carry EKU OCSPSigning; everything else has no EKU or clientAuth.
        command.arg(&leaf_file);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{label}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        checked += 1;
    };
    for which in DevCert::ALL {
        let chain = pki.chain(which);
        verify(pki.certificate(which), chain.clone(), which.file_stem());
        if which.is_ca() {
            let ocsp = pki.ocsp_signer_certificate(which).unwrap();
            verify(ocsp, chain, &format!("ocsp-{which}"));
        }
    }

    // -partial_chain: a Sub-CA 1 as the only anchor (how pnc trusts Hubject chains without roots).
    let anchors = write_pem(
        directory.path(),
        "sub1.pem",
        &[pki.certificate(DevCert::CpoSubCa1)],
    );
    let untrusted = write_pem(
        directory.path(),
        "sub2.pem",
        &[pki.certificate(DevCert::CpoSubCa2)],
    );
    let leaf = write_pem(
        directory.path(),
        "secc.pem",
        &[pki.certificate(DevCert::Secc)],
    );
    let output = Command::new("openssl")
        .args([
            "verify",
            "-partial_chain",
            "-CAfile",
            &anchors,
            "-untrusted",
            &untrusted,
            &leaf,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A contract certificate issued on demand verifies too.
    let key = pnc_pki::SoftwareSigner::generate("c", pnc_pki::SignatureAlgorithm::EcdsaP256Sha256)
        .unwrap();
    let contract = pki
        .issue_contract(
            "DE8AA0012345670",
            pnc_pki::Signer::public_key_spki_der(&key),
            time::Duration::days(365),
        )
        .unwrap();
    let mut chain = vec![contract.clone()];
    chain.extend(pki.chain(DevCert::MoSubCa2));
    verify(&contract, chain, "contract");
    assert_eq!(checked, 15 + 12 + 1);
}

#[test]
fn webpki_accepts_the_secc_as_server_and_charger_as_client() {
    use rustls_pki_types::{CertificateDer, UnixTime};
    let pki = DevPki::generate(&DevPkiOptions::default()).unwrap();
    let now = UnixTime::now();
    let algorithms = webpki::ALL_VERIFICATION_ALGS;

    // SECC leaf as a TLS server certificate with the CPO chain under the V2G root.
    let root_der = CertificateDer::from(pki.certificate(DevCert::V2gRoot).der().to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&root_der)
        .unwrap()
        .to_owned();
    let secc_der = CertificateDer::from(pki.certificate(DevCert::Secc).der().to_vec());
    let secc = webpki::EndEntityCert::try_from(&secc_der).unwrap();
    let intermediates = [
        CertificateDer::from(pki.certificate(DevCert::CpoSubCa2).der().to_vec()),
        CertificateDer::from(pki.certificate(DevCert::CpoSubCa1).der().to_vec()),
    ];
    secc.verify_for_usage(
        algorithms,
        std::slice::from_ref(&anchor),
        &intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .expect("secc verifies as a server certificate");

    // The CPS leaf and the OEM provisioning leaf chain the same way (no EKU = any usage).
    for (leaf, sub2, sub1, root) in [
        (
            DevCert::CpsLeaf,
            DevCert::CpsSubCa2,
            DevCert::CpsSubCa1,
            DevCert::V2gRoot,
        ),
        (
            DevCert::OemProvisioning,
            DevCert::OemSubCa2,
            DevCert::OemSubCa1,
            DevCert::OemRoot,
        ),
    ] {
        let root_der = CertificateDer::from(pki.certificate(root).der().to_vec());
        let anchor = webpki::anchor_from_trusted_cert(&root_der)
            .unwrap()
            .to_owned();
        let leaf_der = CertificateDer::from(pki.certificate(leaf).der().to_vec());
        let end_entity = webpki::EndEntityCert::try_from(&leaf_der).unwrap();
        let intermediates = [
            CertificateDer::from(pki.certificate(sub2).der().to_vec()),
            CertificateDer::from(pki.certificate(sub1).der().to_vec()),
        ];
        end_entity
            .verify_for_usage(
                algorithms,
                &[anchor],
                &intermediates,
                now,
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .unwrap_or_else(|error| panic!("{leaf}: {error:?}"));
    }

    // A charger client certificate under the charging-station CA.
    let key = pnc_pki::SoftwareSigner::generate("cs", pnc_pki::SignatureAlgorithm::EcdsaP256Sha256)
        .unwrap();
    let station = pki
        .issue_charging_station(
            "CS-0001",
            pnc_pki::Signer::public_key_spki_der(&key),
            time::Duration::days(30),
        )
        .unwrap();
    let ca_der = CertificateDer::from(pki.certificate(DevCert::ChargingStationCa).der().to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&ca_der)
        .unwrap()
        .to_owned();
    let station_der = CertificateDer::from(station.der().to_vec());
    webpki::EndEntityCert::try_from(&station_der)
        .unwrap()
        .verify_for_usage(
            algorithms,
            &[anchor],
            &[],
            now,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .expect("charger certificate verifies as a client certificate");
}
