//! Path validation, table-driven (`ok/...`, `fail/<reason>`), plus the real Hubject QA/TEST
//! certificates from the OPCP examples in ../shared (extracted at run time, never copied).

use std::collections::BTreeMap;
use std::path::PathBuf;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};
use pnc_pki::dev::DevCert;
use pnc_pki::path::{CertPosition, Leniency, PathError, ValidationOptions, validate_path_with};
use pnc_pki::{Certificate, DevPki, DevPkiOptions, validate_path};
use time::{Duration, OffsetDateTime};

fn der(pki: &DevPki, which: DevCert) -> Vec<u8> {
    pki.certificate(which).der().to_vec()
}

struct Case {
    name: &'static str,
    leaf: Vec<u8>,
    intermediates: Vec<Vec<u8>>,
    anchors: Vec<Vec<u8>>,
    at: OffsetDateTime,
    expect: Result<usize, fn(&PathError) -> bool>,
}

/// A hand-built certificate (openssl crate), for shapes pnc's issuance refuses to make.
fn openssl_cert(
    subject_cn: &str,
    issuer: Option<(&X509, &PKey<Private>)>,
    key: &PKey<Private>,
    ca: bool,
    digest: MessageDigest,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, subject_cn)
        .unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand_u32())
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder
        .set_issuer_name(issuer.map(|(cert, _)| cert.subject_name()).unwrap_or(&name))
        .unwrap();
    builder.set_pubkey(key).unwrap();
    // Backdated: the tests take their validation time before building the
    // chain, and a chain built in the next second would not yet be valid.
    let an_hour_ago = OffsetDateTime::now_utc().unix_timestamp() - 3600;
    builder
        .set_not_before(&Asn1Time::from_unix(an_hour_ago).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    if ca {
        builder
            .append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        builder
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
    }
    builder
        .sign(issuer.map(|(_, key)| key).unwrap_or(key), digest)
        .unwrap();
    builder.build()
}

fn rand_u32() -> u32 {
    use rand::RngCore;
    rand::thread_rng().next_u32() | 1
}

fn ec_key() -> PKey<Private> {
    PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap()
}

#[test]
fn table() {
    let pki = DevPki::generate(&DevPkiOptions::default()).unwrap();
    let now = OffsetDateTime::now_utc();
    let secc = der(&pki, DevCert::Secc);
    let cpo2 = der(&pki, DevCert::CpoSubCa2);
    let cpo1 = der(&pki, DevCert::CpoSubCa1);
    let cps2 = der(&pki, DevCert::CpsSubCa2);
    let cps1 = der(&pki, DevCert::CpsSubCa1);
    let v2g = der(&pki, DevCert::V2gRoot);
    let mo_root = der(&pki, DevCert::MoRoot);

    // A leaf whose signature is corrupted (last byte of the DER is inside the signature).
    let mut tampered = secc.clone();
    let last = tampered.len() - 5;
    tampered[last] ^= 0x01;

    // A chain with three intermediates (too long for [V2G2-009]).
    let root_key = ec_key();
    let root = openssl_cert("long root", None, &root_key, true, MessageDigest::sha256());
    let mut chain = Vec::new();
    let mut parent = (root.clone(), root_key.clone());
    for level in 1..=3 {
        let key = ec_key();
        let cert = openssl_cert(
            &format!("long ca {level}"),
            Some((&parent.0, &parent.1)),
            &key,
            true,
            MessageDigest::sha256(),
        );
        chain.push(cert.to_der().unwrap());
        parent = (cert, key);
    }
    let leaf_key = ec_key();
    let long_leaf = openssl_cert(
        "long leaf",
        Some((&parent.0, &parent.1)),
        &leaf_key,
        false,
        MessageDigest::sha256(),
    );

    // A SHA-1 signed root and a leaf under it.
    let sha1_root_key = ec_key();
    let sha1_root = openssl_cert(
        "sha1 root",
        None,
        &sha1_root_key,
        true,
        MessageDigest::sha1(),
    );
    let sha1_leaf = openssl_cert(
        "under sha1 root",
        Some((&sha1_root, &sha1_root_key)),
        &ec_key(),
        false,
        MessageDigest::sha256(),
    );
    // And a leaf signed with ecdsa-with-SHA1.
    let sha1_signed_leaf = openssl_cert(
        "sha1 leaf",
        Some((&root, &root_key)),
        &ec_key(),
        false,
        MessageDigest::sha1(),
    );

    let cases = vec![
        Case {
            name: "ok/secc-cpo-chain",
            leaf: secc.clone(),
            intermediates: vec![cpo2.clone(), cpo1.clone()],
            anchors: vec![v2g.clone()],
            at: now,
            expect: Ok(4),
        },
        Case {
            name: "ok/intermediates-in-any-order-with-noise",
            leaf: secc.clone(),
            intermediates: vec![cps1.clone(), cpo1.clone(), cps2.clone(), cpo2.clone()],
            anchors: vec![mo_root.clone(), v2g.clone()],
            at: now,
            expect: Ok(4),
        },
        Case {
            name: "ok/cps-chain",
            leaf: der(&pki, DevCert::CpsLeaf),
            intermediates: vec![cps2.clone(), cps1.clone()],
            anchors: vec![v2g.clone()],
            at: now,
            expect: Ok(4),
        },
        Case {
            name: "ok/oem-provisioning-chain",
            leaf: der(&pki, DevCert::OemProvisioning),
            intermediates: vec![der(&pki, DevCert::OemSubCa2), der(&pki, DevCert::OemSubCa1)],
            anchors: vec![der(&pki, DevCert::OemRoot)],
            at: now,
            expect: Ok(4),
        },
        Case {
            name: "ok/sub-ca-1-as-anchor",
            leaf: secc.clone(),
            intermediates: vec![cpo2.clone()],
            anchors: vec![cpo1.clone()],
            at: now,
            expect: Ok(3),
        },
        Case {
            name: "ok/root-validated-as-itself",
            leaf: v2g.clone(),
            intermediates: vec![],
            anchors: vec![v2g.clone()],
            at: now,
            expect: Ok(1),
        },
        Case {
            name: "fail/expired",
            leaf: secc.clone(),
            intermediates: vec![cpo2.clone(), cpo1.clone()],
            anchors: vec![v2g.clone()],
            at: now + Duration::days(400),
            expect: Err(|e| {
                matches!(
                    e,
                    PathError::Expired {
                        which: CertPosition::Leaf,
                        ..
                    }
                )
            }),
        },
        Case {
            name: "fail/expired-sub-ca",
            leaf: secc.clone(),
            intermediates: vec![cpo2.clone(), cpo1.clone()],
            anchors: vec![v2g.clone()],
            // The leaf is clamped to Sub-CA 2, so past Sub-CA 2 the leaf is expired as well;
            // validity is checked leaf first.
            at: now + Duration::days(800),
            expect: Err(|e| {
                matches!(
                    e,
                    PathError::Expired {
                        which: CertPosition::Leaf,
                        ..
                    }
                )
            }),
        },
        Case {
            name: "fail/not-yet-valid",
            leaf: secc.clone(),
            intermediates: vec![cpo2.clone(), cpo1.clone()],
            anchors: vec![v2g.clone()],
            at: now - Duration::days(1),
            expect: Err(|e| matches!(e, PathError::NotYetValid { .. })),
        },
        Case {
            name: "fail/wrong-root",
            leaf: secc.clone(),
            intermediates: vec![cpo2.clone(), cpo1.clone()],
            anchors: vec![mo_root.clone()],
            at: now,
            expect: Err(|e| matches!(e, PathError::UnknownIssuer { .. })),
        },
        Case {
            name: "fail/swapped-sub-cas",
            // CPS Sub-CAs where the CPO ones belong.
            leaf: secc.clone(),
            intermediates: vec![cps2.clone(), cps1.clone()],
            anchors: vec![v2g.clone()],
            at: now,
            expect: Err(|e| matches!(e, PathError::UnknownIssuer { .. })),
        },
        Case {
            name: "fail/missing-sub-ca",
            leaf: secc.clone(),
            intermediates: vec![cpo2.clone()],
            anchors: vec![v2g.clone()],
            at: now,
            expect: Err(|e| matches!(e, PathError::UnknownIssuer { .. })),
        },
        Case {
            name: "fail/bad-signature",
            leaf: tampered,
            intermediates: vec![cpo2.clone(), cpo1.clone()],
            anchors: vec![v2g.clone()],
            at: now,
            expect: Err(|e| {
                matches!(
                    e,
                    PathError::BadSignature {
                        which: CertPosition::Leaf,
                        ..
                    }
                )
            }),
        },
        Case {
            name: "fail/sha1-root",
            leaf: sha1_leaf.to_der().unwrap(),
            intermediates: vec![],
            anchors: vec![sha1_root.to_der().unwrap()],
            at: now,
            expect: Err(|e| {
                matches!(
                    e,
                    PathError::WeakAlgorithm {
                        which: CertPosition::Anchor,
                        ..
                    }
                )
            }),
        },
        Case {
            name: "fail/sha1-signed-leaf",
            leaf: sha1_signed_leaf.to_der().unwrap(),
            intermediates: vec![],
            anchors: vec![root.to_der().unwrap()],
            at: now,
            expect: Err(|e| {
                matches!(
                    e,
                    PathError::WeakAlgorithm {
                        which: CertPosition::Leaf,
                        ..
                    }
                )
            }),
        },
        Case {
            name: "fail/too-long",
            leaf: long_leaf.to_der().unwrap(),
            intermediates: chain.clone(),
            anchors: vec![root.to_der().unwrap()],
            at: now,
            expect: Err(|e| {
                matches!(
                    e,
                    PathError::PathTooLong {
                        intermediates: 3,
                        max: 2
                    }
                )
            }),
        },
        Case {
            name: "fail/leaf-as-issuer",
            // A certificate "issued" by the SECC key: the SECC is not a CA.
            leaf: {
                openssl_cert(
                    "under a leaf",
                    Some((&long_leaf, &leaf_key)),
                    &ec_key(),
                    false,
                    MessageDigest::sha256(),
                )
                .to_der()
                .unwrap()
            },
            intermediates: vec![long_leaf.to_der().unwrap(), chain[2].clone()],
            anchors: vec![chain[1].clone()],
            at: now,
            expect: Err(|e| matches!(e, PathError::ChainError { .. })),
        },
        Case {
            name: "fail/garbage-leaf",
            leaf: vec![0x30, 0x03, 0x02, 0x01, 0x00],
            intermediates: vec![],
            anchors: vec![v2g.clone()],
            at: now,
            expect: Err(|e| matches!(e, PathError::Parse { .. })),
        },
    ];

    for case in cases {
        let intermediates: Vec<&[u8]> = case.intermediates.iter().map(Vec::as_slice).collect();
        let anchors: Vec<&[u8]> = case.anchors.iter().map(Vec::as_slice).collect();
        let result = validate_path(&case.leaf, &intermediates, &anchors, case.at);
        match (&case.expect, &result) {
            (Ok(length), Ok(path)) => assert_eq!(path.certificates.len(), *length, "{}", case.name),
            (Err(predicate), Err(error)) => {
                assert!(predicate(error), "{}: got {error:?}", case.name)
            }
            _ => panic!("{}: unexpected {result:?}", case.name),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real certificates from the Hubject OPCP examples.

fn shared_dir() -> Option<PathBuf> {
    let directory = std::env::var_os("PNC_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    directory
        .join("specs/opcp-1.0.0")
        .is_dir()
        .then_some(directory)
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) if text.len() > 300 => out.push(text.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        serde_json::Value::Object(map) => map.values().for_each(|item| collect_strings(item, out)),
        _ => {}
    }
}

/// Every distinct certificate in the OPCP example files, keyed by subject CN.
fn hubject_certificates() -> Option<BTreeMap<String, Certificate>> {
    use base64::Engine;
    let directory = shared_dir()?.join("specs/opcp-1.0.0");
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(directory).ok()? {
        let path = entry.ok()?.path();
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        let mut strings = Vec::new();
        collect_strings(&json, &mut strings);
        for text in strings {
            let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(cleaned) else {
                continue;
            };
            if bytes.first() != Some(&0x30) {
                continue;
            }
            if let Ok(certificate) = Certificate::from_der(&bytes) {
                let cn = certificate.common_name().unwrap_or_default().to_owned();
                found.insert(cn, certificate);
            }
        }
    }
    Some(found)
}

#[test]
fn hubject_certificates_parse_including_the_non_der_cps_leaf() {
    let Some(certificates) = hubject_certificates() else {
        eprintln!("../shared not present; skipping");
        return;
    };
    assert!(
        certificates.len() >= 16,
        "found only {:?}",
        certificates.keys()
    );
    let cps = &certificates["CPS 2022.2 QA"];
    let basic = cps
        .basic_constraints()
        .expect("the explicit-default BasicConstraints parses");
    assert!(!basic.ca);
    assert!(basic.explicit_default);
    // Profile checks report (but do not reject on import) the deviations.
    let report = pnc_pki::profile::check(&certificates["EMP99CQATEST001"], None).unwrap();
    assert_eq!(report.profile, pnc_pki::Profile::Contract);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == "key-usage-missing")
    );
    let report = pnc_pki::profile::check(cps, None).unwrap();
    assert_eq!(report.profile, pnc_pki::Profile::CpsLeaf);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == "basic-constraints-not-der")
    );
    let bmw = &certificates["PnC-OEM-RootCA-2021"];
    assert_eq!(bmw.subject_key_identifier().unwrap().len(), 20);
    assert_eq!(bmw.not_after().year(), 9999);
}

#[test]
fn hubject_chains_validate_with_named_leniencies() {
    let Some(certificates) = hubject_certificates() else {
        eprintln!("../shared not present; skipping");
        return;
    };
    // leaf, intermediates, anchor (Sub-CA 1: the QA roots are not in the examples).
    let chains: [(&str, &[&str], &str); 5] = [
        (
            "EMP99CQATEST001",
            &["MO Sub2 CA QA G1.1.1"],
            "MO Sub1 CA QA G1.1",
        ),
        (
            "CPS 2022.2 QA",
            &["Prov Sub2 CA QA G1.1.1"],
            "Prov Sub1 CA QA G1.1",
        ),
        (
            "huboemprovcqa0615",
            &["OEM Sub2 CA QA G1.1.1"],
            "OEM Sub1 CA QA G1.1",
        ),
        (
            "hubUsEaTest000003",
            &["US OEM Sub2 CA TEST G2.1.1"],
            "US OEM Sub1 CA TEST G2.1",
        ),
        (
            "hubUsEaTest000004",
            &["US OEM Sub2 CA TEST G2.1.1"],
            "US OEM Sub1 CA TEST G2.1",
        ),
    ];
    for (leaf_name, intermediate_names, anchor_name) in chains {
        let leaf = &certificates[leaf_name];
        let intermediates: Vec<&[u8]> = intermediate_names
            .iter()
            .map(|name| certificates[*name].der())
            .collect();
        let anchor = certificates[anchor_name].der();
        let at = leaf.not_before() + Duration::days(1);
        let path = validate_path(leaf.der(), &intermediates, &[anchor], at)
            .unwrap_or_else(|error| panic!("{leaf_name}: {error}"));
        assert_eq!(path.certificates.len(), 3, "{leaf_name}");
        assert!(
            path.leniencies
                .contains(&(CertPosition::Leaf, Leniency::LeafWithoutKeyUsage))
                || leaf.key_usage().is_some(),
            "{leaf_name}"
        );
        // Strict validation names the leniency it would have needed.
        let strict = validate_path_with(
            &ValidationOptions::strict(),
            leaf.der(),
            &intermediates,
            &[anchor],
            at,
        );
        assert!(
            matches!(strict, Err(PathError::LeniencyRefused { .. })),
            "{leaf_name}: {strict:?}"
        );
        // Expired today.
        let late = leaf.not_after() + Duration::days(1);
        assert!(matches!(
            validate_path(leaf.der(), &intermediates, &[anchor], late),
            Err(PathError::Expired { .. })
        ));
    }
    let cps_path = validate_path(
        certificates["CPS 2022.2 QA"].der(),
        &[certificates["Prov Sub2 CA QA G1.1.1"].der()],
        &[certificates["Prov Sub1 CA QA G1.1"].der()],
        certificates["CPS 2022.2 QA"].not_before() + Duration::days(1),
    )
    .unwrap();
    assert!(cps_path.leniencies.contains(&(
        CertPosition::Leaf,
        Leniency::ExplicitDefaultBasicConstraints
    )));

    // Self-signed roots validate as themselves; Hubject's production root needs the EKU leniency.
    for root in ["V2G Root CA G2", "PnC-OEM-RootCA-2021"] {
        let certificate = &certificates[root];
        let at = certificate.not_before() + Duration::days(1);
        let path = validate_path(certificate.der(), &[], &[certificate.der()], at).unwrap();
        assert_eq!(path.certificates.len(), 1, "{root}");
        if root == "V2G Root CA G2" {
            assert!(
                path.leniencies
                    .contains(&(CertPosition::Anchor, Leniency::AnchorExtendedKeyUsage))
            );
        }
    }
}

#[test]
fn rise_v2g_chains_are_refused_as_sha1_signed() {
    let Some(shared) = shared_dir() else {
        eprintln!("../shared not present; skipping");
        return;
    };
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared.join("vectors/rise-v2g-signature.json")).unwrap(),
    )
    .unwrap();
    let pem = |key: &str| {
        Certificate::from_pem(json["certificates"][key].as_str().unwrap().as_bytes()).unwrap()
    };
    let root = Certificate::from_pem(
        &std::fs::read(shared.join("vectors/rise-v2g/rise_v2g_root.pem")).unwrap(),
    )
    .unwrap();
    // The root itself is ecdsa-with-SHA256 (the vectors README says SHA-1: it is the Sub-CAs
    // and leaves under it that are signed with ecdsa-with-SHA1).
    assert_eq!(root.signature_algorithm_oid(), "1.2.840.10045.4.3.2");
    let at = time::macros::datetime!(2018-09-01 00:00 UTC);
    assert!(validate_path(root.der(), &[], &[root.der()], at).is_ok());
    let cps = validate_path(
        pem("cps_leaf_pem").der(),
        &[pem("cps_sub_ca1_pem").der(), pem("cps_sub_ca2_pem").der()],
        &[root.der()],
        at,
    );
    assert!(
        matches!(
            &cps,
            Err(PathError::WeakAlgorithm { which: CertPosition::Leaf, algorithm, .. })
                if algorithm == "ecdsa-with-SHA1"
        ),
        "{cps:?}"
    );
    let contract = validate_path(
        pem("contract_leaf_pem").der(),
        &[pem("mo_sub_ca2_pem").der()],
        &[pem("mo_sub_ca1_pem").der()],
        at,
    );
    assert!(
        matches!(contract, Err(PathError::WeakAlgorithm { .. })),
        "{contract:?}"
    );
}

/// The cached issuer path agrees with full validation: the same path for leaves that
/// validate, `None` (never a different verdict) for every leaf that does not validate
/// through exactly those issuers.
#[test]
fn issuer_path_agrees_with_full_validation() {
    use pnc_pki::IssuerPath;
    let pki = DevPki::generate(&DevPkiOptions::default()).expect("dev pki");
    let leaf = pki.certificate(DevCert::OemProvisioning);
    let sub_cas = [der(&pki, DevCert::OemSubCa2), der(&pki, DevCert::OemSubCa1)];
    let sub_ca_refs: Vec<&[u8]> = sub_cas.iter().map(Vec::as_slice).collect();
    let root = der(&pki, DevCert::OemRoot);
    let now = OffsetDateTime::now_utc();
    let full = validate_path(leaf.der(), &sub_ca_refs, &[&root], now).expect("valid");
    let issuers =
        IssuerPath::from_validated(&full, pnc_pki::AlgorithmPolicy::Any).expect("issuer path");
    assert_eq!(issuers.issuers(), &full.certificates[1..]);

    let options = ValidationOptions::default();
    let cached = issuers
        .validate_leaf(&options, leaf, now)
        .expect("same leaf");
    assert_eq!(cached.certificates, full.certificates);
    assert_eq!(cached.leniencies, full.leniencies);

    // Another leaf under the same Sub-CA 2 validates with one verification.
    let key = ec_key();
    let sub_ca_2 = X509::from_der(&sub_cas[0]).unwrap();
    let sibling_key =
        pnc_pki::SoftwareSigner::generate("sibling", pnc_pki::SignatureAlgorithm::EcdsaP256Sha256)
            .unwrap();
    let mut template = pnc_pki::CertificateTemplate::new(
        pnc_pki::Profile::OemProvisioning,
        pnc_pki::SubjectName::new("PNCSIBLINGVEHIC01"),
        pnc_pki::Signer::public_key_spki_der(&sibling_key).to_vec(),
        pki.certificate(DevCert::OemSubCa2).not_before(),
        now + Duration::days(30),
    );
    template.ocsp_url = Some("http://127.0.0.1:8080/ocsp".to_string());
    let sibling = pnc_pki::issue(
        &template,
        Some(pki.certificate(DevCert::OemSubCa2)),
        pki.signer(DevCert::OemSubCa2).as_ref(),
    )
    .unwrap();
    let sibling_full = validate_path(sibling.der(), &sub_ca_refs, &[&root], now).expect("valid");
    let sibling_cached = issuers
        .validate_leaf(&options, &sibling, now)
        .expect("sibling through the cache");
    assert_eq!(sibling_cached.certificates, sibling_full.certificates);

    // Same issuer name, wrong key: full validation refuses, the cache says None.
    let forger = ec_key();
    let forged = Certificate::from_der(
        &openssl_cert(
            "PNCFORGEDVEHICL01",
            Some((&sub_ca_2, &forger)),
            &key,
            false,
            MessageDigest::sha256(),
        )
        .to_der()
        .unwrap(),
    )
    .unwrap();
    assert!(validate_path(forged.der(), &sub_ca_refs, &[&root], now).is_err());
    assert!(issuers.validate_leaf(&options, &forged, now).is_none());

    // A leaf of another PKI, and a time past the issuers' validity: None.
    let other = DevPki::generate(&DevPkiOptions::default()).expect("other pki");
    assert!(
        issuers
            .validate_leaf(&options, other.certificate(DevCert::OemProvisioning), now)
            .is_none()
    );
    let late = issuers.not_after() + Duration::seconds(1);
    assert!(validate_path(leaf.der(), &sub_ca_refs, &[&root], late).is_err());
    assert!(issuers.validate_leaf(&options, leaf, late).is_none());
}

/// root → Sub-CA 1 → Sub-CA 2 → leaf, CAs on `ca_key()` keys signing with `digest`, the leaf
/// on `leaf_key`; (leaf, [Sub-CA 2, Sub-CA 1], root) as DER.
fn openssl_chain(
    ca_key: fn() -> PKey<Private>,
    digest: MessageDigest,
    leaf_key: &PKey<Private>,
) -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
    let (root_key, sub1_key, sub2_key) = (ca_key(), ca_key(), ca_key());
    let root = openssl_cert("Chain Root", None, &root_key, true, digest);
    let sub1 = openssl_cert(
        "Chain Sub-CA 1",
        Some((&root, &root_key)),
        &sub1_key,
        true,
        digest,
    );
    let sub2 = openssl_cert(
        "Chain Sub-CA 2",
        Some((&sub1, &sub1_key)),
        &sub2_key,
        true,
        digest,
    );
    let leaf = openssl_cert(
        "PNCED448VEHICLE001",
        Some((&sub2, &sub2_key)),
        leaf_key,
        false,
        digest,
    );
    let der = |certificate: &X509| certificate.to_der().unwrap();
    (der(&leaf), vec![der(&sub2), der(&sub1)], der(&root))
}

fn ed448_key() -> PKey<Private> {
    PKey::generate_ed448().unwrap()
}

fn p521_key() -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::SECP521R1).unwrap()).unwrap())
        .unwrap()
}

/// Flips a bit inside the signature value at the end of a certificate's DER.
fn tampered(der: &[u8]) -> Vec<u8> {
    let mut tampered = der.to_vec();
    let inside_signature = tampered.len() - 20;
    tampered[inside_signature] ^= 0x01;
    tampered
}

#[test]
fn ed448_chains_validate_and_iso2_refuses_them() {
    let now = OffsetDateTime::now_utc();
    let lenient = ValidationOptions::default();
    let iso2 = ValidationOptions::default().iso2();
    let validate = |options: &ValidationOptions, leaf: &[u8], subs: &[Vec<u8>], root: &[u8]| {
        let subs: Vec<&[u8]> = subs.iter().map(Vec::as_slice).collect();
        validate_path_with(options, leaf, &subs, &[root], now)
    };

    // ok/ed448-throughout: root, Sub-CAs and leaf are Ed448 (OID 1.3.101.113).
    let (leaf, subs, root) = openssl_chain(ed448_key, MessageDigest::null(), &ed448_key());
    assert_eq!(
        Certificate::from_der(&leaf)
            .unwrap()
            .signature_algorithm_oid(),
        "1.3.101.113"
    );
    let path = validate(&lenient, &leaf, &subs, &root).expect("an Ed448 chain validates");
    assert_eq!(path.certificates.len(), 4);
    // ok/issuer-path: the cached issuers check a leaf with one Ed448 verification.
    let issuers = pnc_pki::IssuerPath::from_validated(&path, pnc_pki::AlgorithmPolicy::Any)
        .expect("issuer path");
    let leaf_certificate = Certificate::from_der(&leaf).unwrap();
    assert!(
        issuers
            .validate_leaf(&lenient, &leaf_certificate, now)
            .is_some()
    );
    // fail/issuer-path-other-policy: never reused under the -2 policy.
    assert!(
        issuers
            .validate_leaf(&iso2, &leaf_certificate, now)
            .is_none()
    );
    // fail/issuer-path-tampered: a leaf whose Ed448 signature was changed.
    let forged = Certificate::from_der(&tampered(&leaf)).unwrap();
    assert!(issuers.validate_leaf(&lenient, &forged, now).is_none());

    // fail/tampered-leaf and fail/tampered-sub-ca: the bad Ed448 signature is named.
    match validate(&lenient, &tampered(&leaf), &subs, &root) {
        Err(PathError::BadSignature { which, .. }) => assert_eq!(which, CertPosition::Leaf),
        other => panic!("expected a bad leaf signature, got {other:?}"),
    }
    let tampered_subs = vec![tampered(&subs[0]), subs[1].clone()];
    match validate(&lenient, &leaf, &tampered_subs, &root) {
        Err(PathError::BadSignature { which, .. }) => {
            assert_eq!(which, CertPosition::Intermediate(1))
        }
        other => panic!("expected a bad Sub-CA 2 signature, got {other:?}"),
    }

    // fail/iso2-ed448: ISO 15118-2 allows ecdsa-with-SHA256 on P-256 only.
    match validate(&iso2, &leaf, &subs, &root) {
        Err(PathError::UnsupportedAlgorithm { algorithm, .. }) => {
            assert!(algorithm.contains("Ed448"), "{algorithm}")
        }
        other => panic!("expected Ed448 refused under -2, got {other:?}"),
    }
    // fail/iso2-p256-leaf-under-ed448-cas: a P-256 leaf does not make the chain -2.
    let (leaf, subs, root) = openssl_chain(ed448_key, MessageDigest::null(), &ec_key());
    validate(&lenient, &leaf, &subs, &root).expect("mixed chains validate leniently");
    assert!(matches!(
        validate(&iso2, &leaf, &subs, &root),
        Err(PathError::UnsupportedAlgorithm { .. })
    ));
    // fail/iso2-p521: -20's P-521/SHA-512 chains are not -2 chains either.
    let (leaf, subs, root) = openssl_chain(p521_key, MessageDigest::sha512(), &p521_key());
    validate(&lenient, &leaf, &subs, &root).expect("P-521 chains validate leniently");
    assert!(matches!(
        validate(&iso2, &leaf, &subs, &root),
        Err(PathError::UnsupportedAlgorithm { .. })
    ));
    // fail/iso2-p256-key-sha512-signature: the key is right, the hash is not.
    let (leaf, subs, root) = openssl_chain(ec_key, MessageDigest::sha512(), &ec_key());
    assert!(matches!(
        validate(&iso2, &leaf, &subs, &root),
        Err(PathError::UnsupportedAlgorithm { .. })
    ));
    // ok/iso2-p256: P-256 with SHA-256 throughout is what -2 takes.
    let (leaf, subs, root) = openssl_chain(ec_key, MessageDigest::sha256(), &ec_key());
    validate(&iso2, &leaf, &subs, &root).expect("a -2 chain validates under the -2 policy");
}

#[test]
fn iso20_policy_takes_p521_sha512_and_ed448_only() {
    let iso20 = ValidationOptions::default().iso20();
    // Judged when called: the chains below are made (not before) one after the other.
    let validate = |leaf: &[u8], subs: &[Vec<u8>], root: &[u8]| {
        let subs: Vec<&[u8]> = subs.iter().map(Vec::as_slice).collect();
        validate_path_with(&iso20, leaf, &subs, &[root], OffsetDateTime::now_utc())
    };
    let refused = |result: Result<_, PathError>, expected: &str| match result {
        Err(PathError::UnsupportedAlgorithm { algorithm, .. }) => {
            assert!(algorithm.contains(expected), "{algorithm}")
        }
        other => panic!("expected {expected} refused under -20, got {other:?}"),
    };

    // ok/iso20-p521 and ok/iso20-ed448: the two families -20 allows.
    let (leaf, subs, root) = openssl_chain(p521_key, MessageDigest::sha512(), &p521_key());
    validate(&leaf, &subs, &root).expect("P-521/SHA-512 throughout is a -20 chain");
    let (leaf, subs, root) = openssl_chain(ed448_key, MessageDigest::null(), &ed448_key());
    validate(&leaf, &subs, &root).expect("Ed448 throughout is a -20 chain");

    // fail/iso20-p256: a -2 chain is not a -20 chain (signature refused first).
    let (leaf, subs, root) = openssl_chain(ec_key, MessageDigest::sha256(), &ec_key());
    refused(validate(&leaf, &subs, &root), "ecdsa-with-SHA512");
    // fail/iso20-p521-sha256: the right keys signing with the wrong hash.
    let (leaf, subs, root) = openssl_chain(p521_key, MessageDigest::sha256(), &p521_key());
    refused(validate(&leaf, &subs, &root), "ISO 15118-20");
    // fail/iso20-p256-leaf-under-p521-cas: the signatures are right, the leaf's key is not.
    let (leaf, subs, root) = openssl_chain(p521_key, MessageDigest::sha512(), &ec_key());
    refused(validate(&leaf, &subs, &root), "P-521 and Ed448 keys");
    // fail/iso20-rsa: RSA verifies under the lenient policy, never under -20.
    let (leaf, subs, root) = openssl_chain(rsa_key, MessageDigest::sha512(), &rsa_key());
    validate_path_with(
        &ValidationOptions::default(),
        &leaf,
        &subs.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        &[&root],
        OffsetDateTime::now_utc(),
    )
    .expect("RSA/SHA-512 validates leniently");
    refused(validate(&leaf, &subs, &root), "ISO 15118-20");

    // fail/issuer-path-other-policy: issuers cached under -20 are not reused for -2.
    let (leaf, subs, root) = openssl_chain(p521_key, MessageDigest::sha512(), &p521_key());
    let path = validate(&leaf, &subs, &root).unwrap();
    let issuers = pnc_pki::IssuerPath::from_validated(&path, pnc_pki::AlgorithmPolicy::Iso20)
        .expect("issuer path");
    let leaf = Certificate::from_der(&leaf).unwrap();
    let now = OffsetDateTime::now_utc();
    assert!(issuers.validate_leaf(&iso20, &leaf, now).is_some());
    assert!(
        issuers
            .validate_leaf(&ValidationOptions::default().iso2(), &leaf, now)
            .is_none()
    );
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
}
