//! The dev PKI: every profile passes its own check, sizes and serials hold, the key store round
//! trips, load_or_create is idempotent.

use std::os::unix::fs::PermissionsExt;

use pnc_pki::dev::{DevCert, PlaintextTestKeys};
use pnc_pki::profile::{self, MAX_CERTIFICATE_DER_BYTES, Profile};
use pnc_pki::{DevPki, DevPkiOptions, Kek, KeyStore, SignatureAlgorithm, Signer, SoftwareSigner};

fn dev_pki() -> DevPki {
    DevPki::generate(&DevPkiOptions::default()).expect("dev pki")
}

#[test]
fn every_dev_certificate_passes_its_profile_and_the_inferred_one() {
    let pki = dev_pki();
    for which in DevCert::ALL {
        let certificate = pki.certificate(which);
        let issuer = which.issuer().map(|issuer| pki.certificate(issuer));
        let findings = profile::lint(certificate, which.profile(), issuer);
        assert!(findings.is_empty(), "{which}: {findings:?}");
        let report = profile::check(certificate, None).expect("inferable");
        assert_eq!(report.profile, which.profile(), "{which} inferred wrongly");
        assert!(report.passed(), "{which}: {:?}", report.findings);
        assert!(
            certificate.der().len() <= MAX_CERTIFICATE_DER_BYTES,
            "{which}"
        );
        // Serial: at least 64 bits, positive.
        assert!(certificate.serial().len() >= 8, "{which}");
        assert!(certificate.serial()[0] != 0);
    }
    for ca in DevCert::ALL.into_iter().filter(|c| c.is_ca()) {
        let ocsp = pki.ocsp_signer_certificate(ca).expect("ocsp signer per ca");
        let report = profile::check(ocsp, None).unwrap();
        assert_eq!(report.profile, Profile::OcspSigner);
        assert!(report.passed(), "{ca}: {:?}", report.findings);
        assert!(profile::lint(ocsp, Profile::OcspSigner, Some(pki.certificate(ca))).is_empty());
    }
}

#[test]
fn dev_certificates_have_the_annex_f_shape() {
    let pki = dev_pki();
    let secc = pki.certificate(DevCert::Secc);
    assert_eq!(secc.subject().domain_components(), vec!["CPO"]);
    assert_eq!(secc.ocsp_urls(), ["http://127.0.0.1:8080/ocsp"]);
    assert_eq!(
        secc.crl_urls(),
        ["http://127.0.0.1:8080/crl/cpo-sub-ca-2.crl"]
    );
    let root = pki.certificate(DevCert::V2gRoot);
    assert!(root.ocsp_urls().is_empty());
    assert_eq!(root.basic_constraints().unwrap().path_len, None);
    assert_eq!(
        pki.certificate(DevCert::CpsSubCa1)
            .basic_constraints()
            .unwrap()
            .path_len,
        Some(1)
    );
    assert_eq!(
        pki.certificate(DevCert::CpsSubCa2)
            .basic_constraints()
            .unwrap()
            .path_len,
        Some(0)
    );
    let cps = pki.certificate(DevCert::CpsLeaf);
    assert_eq!(cps.subject().domain_components(), vec!["CPS"]);
    assert!(!cps.basic_constraints().unwrap().ca);
    let secc_point = secc.public_key_uncompressed().unwrap();
    assert_eq!(secc_point.len(), 65);
    assert_eq!(
        secc_point,
        pki.software_signer(DevCert::Secc)
            .public_key_uncompressed()
            .unwrap()
    );
    let oem = pki.certificate(DevCert::OemProvisioning);
    let pcid = oem.common_name().unwrap();
    assert_eq!(pcid.len(), 18);
    assert!(pcid.starts_with("PNC"));
    assert_eq!(oem.san_dns_names(), [pcid.to_owned()]);
    for which in DevCert::ALL {
        let certificate = pki.certificate(which);
        assert_eq!(certificate.subject_key_identifier().unwrap().len(), 8);
        if let Some(issuer) = which.issuer() {
            assert_eq!(
                certificate.authority_key_identifier(),
                pki.certificate(issuer).subject_key_identifier()
            );
            assert!(certificate.not_after() <= pki.certificate(issuer).not_after());
        }
    }
}

/// The six certificates of every -2 CertificateInstallationRes pnc builds in generate mode
/// (contract leaf, MO Sub-CA 2 and 1, CPS leaf, CPS Sub-CA 2 and 1). The answer must fit
/// OCPP 2.0.1's 5600 base64 characters (4200 EXI bytes); about 800 EXI bytes of it are not
/// certificates (signature, encrypted key, DH key, eMAID, framing), so the six get 3250 bytes
/// of DER, which leaves the whole answer near 5400 characters with room for longer URLs.
const ISO2_ANSWER_CERTIFICATES_DER_BUDGET: usize = 3250;

#[test]
fn the_iso2_contract_answer_certificates_fit_ocpp_201_and_name_ocsp_only() {
    let pki = dev_pki();
    let key = SoftwareSigner::generate("contract", SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    // A 15-character eMAID (with check character), the longest canonical form.
    let contract = pki
        .issue_contract(
            "DE8AA0012345670",
            key.public_key_spki_der(),
            time::Duration::days(730),
        )
        .unwrap();
    let travelling = [
        DevCert::MoSubCa2,
        DevCert::MoSubCa1,
        DevCert::CpsLeaf,
        DevCert::CpsSubCa2,
        DevCert::CpsSubCa1,
    ];
    let mut answer_certificates = vec![&contract];
    answer_certificates.extend(travelling.iter().map(|which| pki.certificate(*which)));
    for certificate in &answer_certificates {
        // OCSP is ISO 15118-2's revocation source (AIA required by every profile); no CRL DP.
        assert_eq!(
            certificate.ocsp_urls(),
            ["http://127.0.0.1:8080/ocsp"],
            "{}",
            certificate.subject()
        );
        assert!(
            certificate.crl_urls().is_empty(),
            "{} names a CRL",
            certificate.subject()
        );
    }
    let total: usize = answer_certificates
        .iter()
        .map(|certificate| certificate.der().len())
        .sum();
    assert!(
        total <= ISO2_ANSWER_CERTIFICATES_DER_BUDGET,
        "the six certificates of a -2 answer take {total} bytes of DER"
    );
    // Every other certificate pnc issues from the dev PKI still names its CRL.
    for which in DevCert::ALL.into_iter().chain(DevCert::ISO20) {
        let names_crl = !pki.certificate(which).crl_urls().is_empty();
        let has_issuer = which.issuer().is_some();
        assert_eq!(
            names_crl,
            has_issuer && !travelling.contains(&which),
            "{which}"
        );
        assert_eq!(
            which.names_crl_distribution_point(),
            !travelling.contains(&which),
            "{which}"
        );
    }
}

#[test]
fn contract_and_ocsp_signers_are_issued_on_demand() {
    let pki = dev_pki();
    let key = SoftwareSigner::generate("contract", SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    let contract = pki
        .issue_contract(
            "DE8AA0012345670",
            key.public_key_spki_der(),
            time::Duration::days(730),
        )
        .unwrap();
    assert_eq!(contract.common_name(), Some("DE8AA0012345670"));
    let report = profile::check(&contract, None).unwrap();
    assert_eq!(report.profile, Profile::Contract);
    assert!(report.passed(), "{:?}", report.findings);
    // Clamped to MO Sub-CA 2's validity.
    assert!(contract.not_after() <= pki.certificate(DevCert::MoSubCa2).not_after());

    // A wrong check digit is refused when issuing; a non-eMAID CN too.
    assert!(
        pki.issue_contract(
            "DE8AA001234567X",
            key.public_key_spki_der(),
            time::Duration::days(30)
        )
        .is_err()
    );
    assert!(
        pki.issue_contract(
            "DE-8AA-001234567",
            key.public_key_spki_der(),
            time::Duration::days(30)
        )
        .is_err()
    );

    let ocsp_key = SoftwareSigner::generate("ocsp2", SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    let ocsp = pki
        .issue_ocsp_signer(
            DevCert::MoSubCa2,
            ocsp_key.public_key_spki_der(),
            time::Duration::days(30),
        )
        .unwrap();
    assert!(
        profile::check(&ocsp, Some(Profile::OcspSigner))
            .unwrap()
            .passed()
    );
    assert!(
        pki.issue_ocsp_signer(
            DevCert::Secc,
            ocsp_key.public_key_spki_der(),
            time::Duration::days(1)
        )
        .is_err()
    );

    let station = pki
        .issue_charging_station(
            "CS-0001",
            key.public_key_spki_der(),
            time::Duration::days(365),
        )
        .unwrap();
    let report = profile::check(&station, None).unwrap();
    assert_eq!(report.profile, Profile::ChargingStation);
    assert!(report.passed(), "{:?}", report.findings);
}

#[test]
fn write_out_and_load_or_create_are_idempotent() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("pki");
    let kek_path = directory.path().join("kek");
    let first = DevPki::load_or_create(&out, &kek_path, &DevPkiOptions::default()).unwrap();
    let kek_mode = std::fs::metadata(&kek_path).unwrap().permissions().mode();
    assert_eq!(kek_mode & 0o777, 0o600);
    for name in [
        "v2g-root.pem",
        "v2g-root.der",
        "cps-sub-ca-1.pem",
        "cps-leaf.der",
        "oem-provisioning.pem",
        "ocsp-mo-sub-ca-2.pem",
        "secc-chain.pem",
        "dev-pki.json",
    ] {
        assert!(out.join(name).exists(), "{name}");
    }
    // Keys exist only encrypted: no PEM private key and no raw pkcs#8 anywhere.
    for entry in walk(&out) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("PRIVATE KEY"), "{}", entry.display());
        if entry.extension().is_some_and(|e| e == "key") {
            let mode = std::fs::metadata(&entry).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", entry.display());
        }
    }
    let second = DevPki::load_or_create(&out, &kek_path, &DevPkiOptions::default()).unwrap();
    for which in DevCert::ALL {
        assert_eq!(first.certificate(which), second.certificate(which));
        assert_eq!(
            first.signer(which).public_key_spki_der(),
            second.signer(which).public_key_spki_der()
        );
    }
    // The loaded key signs for the loaded certificate.
    let signature = second.signer(DevCert::CpsLeaf).sign_raw(b"hello").unwrap();
    assert_eq!(signature.len(), 64);
}

#[test]
fn plaintext_test_keys_only_on_request() {
    let directory = tempfile::tempdir().unwrap();
    let pki = dev_pki();
    let store = KeyStore::open(directory.path().join("keys"), Kek::from_bytes([7; 32])).unwrap();
    pki.write_out(directory.path(), &store, PlaintextTestKeys::Write)
        .unwrap();
    for name in ["secc-key.pem", "oem-provisioning-key.pem"] {
        let path = directory.path().join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!directory.path().join("cps-leaf-key.pem").exists());
    // write_out refuses to overwrite.
    assert!(
        pki.write_out(directory.path(), &store, PlaintextTestKeys::No)
            .is_err()
    );
}

fn walk(directory: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
#[ignore = "manual: writes a dev pki to $PNC_DEV_PKI_OUT for inspection"]
fn write_dev_pki_for_inspection() {
    let out = std::path::PathBuf::from(std::env::var("PNC_DEV_PKI_OUT").unwrap());
    DevPki::load_or_create(&out, &out.join("kek"), &DevPkiOptions::default()).unwrap();
}

#[test]
fn iso20_hierarchy_is_p521_and_passes_its_profiles() {
    let pki = dev_pki();
    assert!(pki.has_iso20());
    for which in DevCert::ISO20 {
        let certificate = pki.certificate(which);
        let issuer = which.issuer().map(|issuer| pki.certificate(issuer));
        let findings = profile::lint(certificate, which.profile(), issuer);
        assert!(findings.is_empty(), "{which}: {findings:?}");
        assert_eq!(
            certificate.signature_algorithm_oid(),
            "1.2.840.10045.4.3.4",
            "{which} is ecdsa-with-SHA512"
        );
        assert!(
            certificate.der().len() <= profile::MAX_ISO20_CERTIFICATE_DER_BYTES,
            "{which}"
        );
        assert_eq!(
            pki.signer(which).algorithm(),
            SignatureAlgorithm::EcdsaP521Sha512
        );
        // Distinct from the -2 hierarchy: never chains into it.
        if let Some(issuer) = which.issuer() {
            assert!(issuer.is_iso20(), "{which}");
        }
    }
    assert_eq!(
        pki.certificate(DevCert::Iso20OemProvisioning).common_name(),
        Some("PNCDEMOVEHICLE0201")
    );
    // The -2 root still passes the -2 rules (P-256, SHA-256, 800 bytes).
    let iso2_root = profile::lint(pki.certificate(DevCert::V2gRoot), Profile::V2gRoot, None);
    assert!(iso2_root.is_empty(), "{iso2_root:?}");
}

#[test]
fn a_dev_pki_from_before_iso20_gains_it_and_keeps_its_iso2_part() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("pki");
    let kek_path = directory.path().join("kek");
    let first = DevPki::load_or_create(&out, &kek_path, &DevPkiOptions::default()).unwrap();
    // Rewrite the manifest as a pre-20 pnc wrote it.
    let manifest_path = out.join("dev-pki.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let certificates = manifest["certificates"].as_array_mut().unwrap();
    certificates.retain(|stem| !stem.as_str().unwrap().starts_with("iso20-"));
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let store = KeyStore::open(out.join("keys"), Kek::load(&kek_path).unwrap()).unwrap();
    assert!(!DevPki::load(&out, &store).unwrap().has_iso20());

    let upgraded = DevPki::load_or_create(&out, &kek_path, &DevPkiOptions::default()).unwrap();
    assert!(upgraded.has_iso20());
    for which in DevCert::ALL {
        assert_eq!(
            first.certificate(which),
            upgraded.certificate(which),
            "{which}"
        );
    }
    assert_ne!(
        first.certificate(DevCert::Iso20V2gRoot),
        upgraded.certificate(DevCert::Iso20V2gRoot),
        "a new -20 hierarchy"
    );
    let reloaded = DevPki::load(&out, &store).unwrap();
    assert_eq!(
        reloaded.certificate(DevCert::Iso20CpsLeaf),
        upgraded.certificate(DevCert::Iso20CpsLeaf)
    );
    let signature = reloaded
        .signer(DevCert::Iso20CpsLeaf)
        .sign_raw(b"hello")
        .unwrap();
    assert_eq!(signature.len(), 132);
}

/// An Ed448 vehicle under the -20 OEM hierarchy: the certificate passes the OEM provisioning
/// profile (inferred too), chains to the -20 OEM root, and OpenSSL reads its key as Ed448.
/// An X448 key passes only as a contract certificate's key.
#[test]
fn an_ed448_provisioning_certificate_passes_the_profile_and_chains_to_the_iso20_oem_root() {
    use openssl::pkey::{Id, PKey};
    let pki = dev_pki();
    let vehicle = PKey::generate_ed448().unwrap();
    let spki = vehicle.public_key_to_der().unwrap();
    let certificate = pki
        .issue_iso20_ed448_provisioning("PNCDEMOVEHICLE0448", &spki, time::Duration::days(30))
        .unwrap();
    assert_eq!(certificate.common_name(), Some("PNCDEMOVEHICLE0448"));
    assert_eq!(certificate.public_key_spki_der(), spki.as_slice());
    let findings = profile::lint(
        &certificate,
        Profile::OemProvisioning,
        Some(pki.certificate(DevCert::Iso20OemSubCa2)),
    );
    assert!(findings.is_empty(), "{findings:?}");
    let report = profile::check(&certificate, None).expect("inferable");
    assert_eq!(report.profile, Profile::OemProvisioning);
    assert!(
        certificate.der().len() <= profile::MAX_ISO20_CERTIFICATE_DER_BYTES,
        "within the -20 size"
    );
    let x509 = openssl::x509::X509::from_der(certificate.der()).unwrap();
    assert_eq!(x509.public_key().unwrap().id(), Id::ED448);
    let sub_2 = pki.certificate(DevCert::Iso20OemSubCa2).der();
    let sub_1 = pki.certificate(DevCert::Iso20OemSubCa1).der();
    pnc_pki::validate_path(
        certificate.der(),
        &[sub_2, sub_1],
        &[pki.certificate(DevCert::Iso20OemRoot).der()],
        time::OffsetDateTime::now_utc(),
    )
    .expect("chains to the -20 OEM root");

    // Not an Ed448 key: refused.
    let x448 = PKey::generate_x448().unwrap().public_key_to_der().unwrap();
    assert!(
        pki.issue_iso20_ed448_provisioning("PNCDEMOVEHICLE0448", &x448, time::Duration::days(30))
            .is_err()
    );
    // An X448 key is a -20 contract key, never a provisioning key.
    let now = time::OffsetDateTime::now_utc();
    let template = pnc_pki::dev::contract_template(
        "DEPNCC00000448",
        &x448,
        now,
        now + time::Duration::days(30),
        Some("pnc dev"),
        pki.ocsp_base_url(),
    );
    let mo_sub_ca_2 = DevCert::Iso20MoSubCa2;
    let contract = pnc_pki::issue(
        &template,
        Some(pki.certificate(mo_sub_ca_2)),
        pki.signer(mo_sub_ca_2).as_ref(),
    )
    .expect("an x448 contract key passes the contract profile");
    assert!(
        profile::lint(
            &contract,
            Profile::Contract,
            Some(pki.certificate(mo_sub_ca_2))
        )
        .is_empty()
    );
    assert!(
        profile::lint(&contract, Profile::OemProvisioning, None)
            .iter()
            .any(|finding| finding.code == "public-key")
    );
}
