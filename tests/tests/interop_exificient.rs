//! Interop: a car built on the reference EXI codec (EXIficient, through
//! ../shared/tools/exi-oracle), not on pnc's own codec, asks pnc for a contract.
//!
//! The car writes its CertificateInstallationReq as XML; EXIficient encodes the signed
//! body element as a fragment (the digest input), the SignedInfo as an xmldsig fragment
//! (the signature input) and the whole message as a document; OpenSSL signs. pnc's answer
//! is decoded by EXIficient, every referenced element and the SignedInfo are re-encoded by
//! EXIficient to check the digests and the CPS leaf's signature, the CPS chain is checked
//! with `openssl verify` against the root the car listed, and the contract key is decrypted
//! and compared with the contract certificate. SessionID echoed.

mod provisioning_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sha::sha256;
use openssl::sign::{Signer, Verifier};
use pnc_exi::Element;
use pnc_pki::dev::DevCert;
use pnc_pki::{Certificate, PlaintextTestKeys};
use pnc_proto::principal::Role;
use pnc_tests::{Backend, Sandbox};
use provisioning_support::*;
use serde_json::{Value, json};

const MSG_DEF: &str = "urn:iso:15118:2:2013:MsgDef";
const MSG_HEADER: &str = "urn:iso:15118:2:2013:MsgHeader";
const MSG_BODY: &str = "urn:iso:15118:2:2013:MsgBody";
const MSG_DATA_TYPES: &str = "urn:iso:15118:2:2013:MsgDataTypes";
const XMLDSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const SESSION_ID: &str = "0A1B2C3D4E5F6071";

fn oracle() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/exi-oracle/exi-oracle")
}

/// Runs EXIficient; fails the test (with its message) when java or the oracle is missing.
fn exificient(mode: &str, schema: &str, fragment: bool, input: &[u8], dir: &Path) -> Vec<u8> {
    let stamp = uuid::Uuid::new_v4().simple().to_string();
    let input_file = dir.join(format!("{stamp}.in"));
    let output_file = dir.join(format!("{stamp}.out"));
    std::fs::write(&input_file, input).unwrap();
    let mut command = Command::new(oracle());
    command.arg(mode).arg(schema);
    if fragment {
        command.arg("--fragment");
    }
    let output = command
        .arg(&input_file)
        .arg(&output_file)
        .output()
        .expect("the reference codec runs (needs java 17+ and python3)");
    assert!(
        output.status.success(),
        "exi-oracle {mode} {schema}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&output_file).unwrap()
}

fn raw_signature(der: &[u8]) -> Vec<u8> {
    let signature = EcdsaSig::from_der(der).unwrap();
    let mut raw = signature.r().to_vec_padded(32).unwrap();
    raw.extend(signature.s().to_vec_padded(32).unwrap());
    raw
}

fn der_signature(raw: &[u8]) -> Vec<u8> {
    assert_eq!(raw.len(), 64, "raw r||s");
    let r = BigNum::from_slice(&raw[..32]).unwrap();
    let s = BigNum::from_slice(&raw[32..]).unwrap();
    EcdsaSig::from_private_components(r, s)
        .unwrap()
        .to_der()
        .unwrap()
}

fn signed_info_xml(references: &[(String, Vec<u8>)]) -> String {
    let mut xml = format!(
        "<ds:SignedInfo xmlns:ds=\"{XMLDSIG}\">\
         <ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/canonical-exi/\"/>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/>"
    );
    for (uri, digest) in references {
        xml.push_str(&format!(
            "<ds:Reference URI=\"{uri}\"><ds:Transforms>\
             <ds:Transform Algorithm=\"http://www.w3.org/TR/canonical-exi/\"/></ds:Transforms>\
             <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
             <ds:DigestValue>{}</ds:DigestValue></ds:Reference>",
            STANDARD.encode(digest)
        ));
    }
    xml.push_str("</ds:SignedInfo>");
    xml
}

/// The car's request, built and encoded by EXIficient, signed with OpenSSL.
fn exificient_request(
    work: &Path,
    vehicle_certificate: &Certificate,
    vehicle_key_pem: &[u8],
    v2g_root: &Certificate,
) -> Vec<u8> {
    let root_id = root_id(v2g_root);
    let body = format!(
        "<b:CertificateInstallationReq xmlns:b=\"{MSG_BODY}\" xmlns:t=\"{MSG_DATA_TYPES}\" \
         xmlns:ds=\"{XMLDSIG}\" b:Id=\"ID1\">\
         <b:OEMProvisioningCert>{}</b:OEMProvisioningCert>\
         <b:ListOfRootCertificateIDs><t:RootCertificateID>\
         <ds:X509IssuerName>{}</ds:X509IssuerName><ds:X509SerialNumber>{}</ds:X509SerialNumber>\
         </t:RootCertificateID></b:ListOfRootCertificateIDs></b:CertificateInstallationReq>",
        STANDARD.encode(vehicle_certificate.der()),
        root_id.issuer_name,
        root_id.serial_number,
    );
    let body_fragment = exificient("encode", "iso-2", true, body.as_bytes(), work);
    let signed_info = signed_info_xml(&[("#ID1".to_string(), sha256(&body_fragment).to_vec())]);
    let signed_info_fragment = exificient("encode", "xmldsig", true, signed_info.as_bytes(), work);
    let key = PKey::private_key_from_pem(vehicle_key_pem).unwrap();
    let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
    signer.update(&signed_info_fragment).unwrap();
    let signature_value = raw_signature(&signer.sign_to_vec().unwrap());
    let inner_signed_info = signed_info.replacen(&format!(" xmlns:ds=\"{XMLDSIG}\""), "", 1);
    let inner_body = body.replacen(&format!(" xmlns:ds=\"{XMLDSIG}\""), "", 1);
    let inner_body = inner_body.replacen(&format!(" xmlns:t=\"{MSG_DATA_TYPES}\""), "", 1);
    let message = format!(
        "<V2G_Message xmlns=\"{MSG_DEF}\" xmlns:h=\"{MSG_HEADER}\" xmlns:b=\"{MSG_BODY}\" \
         xmlns:t=\"{MSG_DATA_TYPES}\" xmlns:ds=\"{XMLDSIG}\">\
         <Header><h:SessionID>{SESSION_ID}</h:SessionID><ds:Signature>{inner_signed_info}\
         <ds:SignatureValue>{}</ds:SignatureValue></ds:Signature></Header>\
         <Body>{inner_body}</Body></V2G_Message>",
        STANDARD.encode(signature_value),
    );
    exificient("encode", "iso-2", false, message.as_bytes(), work)
}

fn find_by_id<'a>(element: &'a Element, id: &str) -> Option<&'a Element> {
    if element.attr_value("Id") == Some(id) {
        return Some(element);
    }
    element.elements().find_map(|child| find_by_id(child, id))
}

fn base64_of(element: &Element) -> Vec<u8> {
    let text: String = element
        .text_content()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(text).expect("base64 content")
}

/// What a car built on EXIficient checks before it stores the contract.
fn check_answer_with_exificient(
    work: &Path,
    answer: &[u8],
    v2g_root: &Certificate,
    vehicle_key_pem: &[u8],
) -> (String, Certificate) {
    let xml = exificient("decode", "iso-2", false, answer, work);
    let message = pnc_exi::xml::parse(std::str::from_utf8(&xml).unwrap()).expect("oracle XML");
    let header = message.find("Header").expect("Header");
    let body = message.find("Body").expect("Body");
    assert_eq!(
        header
            .find("SessionID")
            .expect("SessionID")
            .text_content()
            .to_ascii_uppercase(),
        SESSION_ID,
        "SessionID echoed"
    );
    let response = body
        .find("CertificateInstallationRes")
        .expect("a CertificateInstallationRes");
    assert_eq!(response.find("ResponseCode").unwrap().text_content(), "OK");

    // Every reference: re-encode the element with EXIficient, SHA-256, compare.
    let signature = header.find("Signature").expect("Signature");
    let signed_info = signature.find("SignedInfo").expect("SignedInfo");
    let references: Vec<&Element> = signed_info.find_all("Reference").collect();
    assert_eq!(references.len(), 4, "four signed elements");
    for reference in &references {
        let uri = reference.attr_value("URI").expect("URI");
        let element = find_by_id(body, &uri[1..]).unwrap_or_else(|| panic!("{uri} in Body"));
        let fragment = exificient(
            "encode",
            "iso-2",
            true,
            pnc_exi::xml::write(element).as_bytes(),
            work,
        );
        let expected = base64_of(reference.find("DigestValue").expect("DigestValue"));
        assert_eq!(sha256(&fragment).to_vec(), expected, "digest of {uri}");
    }
    let signed_info_fragment = exificient(
        "encode",
        "xmldsig",
        true,
        pnc_exi::xml::write(signed_info).as_bytes(),
        work,
    );

    // The signature, with the CPS leaf.
    let cps_chain = response
        .find("SAProvisioningCertificateChain")
        .expect("SAProvisioningCertificateChain");
    let cps_leaf =
        Certificate::from_der(&base64_of(cps_chain.find("Certificate").unwrap())).unwrap();
    let cps_key = openssl::x509::X509::from_der(cps_leaf.der())
        .unwrap()
        .public_key()
        .unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &cps_key).unwrap();
    verifier.update(&signed_info_fragment).unwrap();
    let signature_value = base64_of(signature.find("SignatureValue").unwrap());
    assert!(
        verifier.verify(&der_signature(&signature_value)).unwrap(),
        "SignatureValue verifies with the CPS leaf"
    );

    // The CPS chain reaches the root the car listed, by an independent verifier.
    let sub_cas: Vec<Certificate> = cps_chain
        .find("SubCertificates")
        .map(|subs| {
            subs.find_all("Certificate")
                .map(|c| Certificate::from_der(&base64_of(c)).unwrap())
                .collect()
        })
        .unwrap_or_default();
    let root_file = work.join("root.pem");
    let untrusted_file = work.join("untrusted.pem");
    let leaf_file = work.join("cps-leaf.pem");
    std::fs::write(&root_file, v2g_root.to_pem()).unwrap();
    std::fs::write(
        &untrusted_file,
        sub_cas.iter().map(|c| c.to_pem()).collect::<String>(),
    )
    .unwrap();
    std::fs::write(&leaf_file, cps_leaf.to_pem()).unwrap();
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&root_file)
        .arg("-untrusted")
        .arg(&untrusted_file)
        .arg(&leaf_file)
        .output()
        .unwrap();
    assert!(verify.status.success(), "openssl verify: {verify:?}");

    // The contract key: decrypted with the vehicle key, it is the contract certificate's.
    let contract_leaf = Certificate::from_der(&base64_of(
        response
            .find("ContractSignatureCertChain")
            .unwrap()
            .find("Certificate")
            .unwrap(),
    ))
    .unwrap();
    let sealed = pnc_pki::key_transport::iso2::SealedContractKey::from_slices(
        &base64_of(
            response
                .find("ContractSignatureEncryptedPrivateKey")
                .unwrap(),
        ),
        &base64_of(response.find("DHpublickey").unwrap()),
    )
    .expect("48-byte key and 65-byte DH key");
    let vehicle = pnc_pki::SoftwareSigner::from_pem("vehicle", vehicle_key_pem).unwrap();
    pnc_pki::key_transport::iso2::open(&vehicle, &sealed, contract_leaf.public_key_spki_der())
        .expect("the decrypted key matches the contract certificate");
    let emaid = response.find("eMAID").unwrap().text_content();
    (emaid, contract_leaf)
}

async fn exificient_car_installs_on(backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    register_dev_vehicle(&sandbox, &pki).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (status, body) = generate(&sandbox, &emsp.token, EMAID, EXAMPLE_PCID).await;
    assert_eq!(status, 201, "{body}");
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;

    let work = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_store = pnc_pki::KeyStore::open(
        keys.path().join("keys"),
        pnc_pki::Kek::load_or_create(&keys.path().join("kek")).unwrap(),
    )
    .unwrap();
    pki.write_out(keys.path(), &key_store, PlaintextTestKeys::Write)
        .unwrap();
    let vehicle_key_pem = std::fs::read(keys.path().join("oem-provisioning-key.pem")).unwrap();
    let v2g_root = pki.certificate(DevCert::V2gRoot);

    let request = exificient_request(
        work.path(),
        pki.certificate(DevCert::OemProvisioning),
        &vehicle_key_pem,
        v2g_root,
    );
    if let Ok(path) = std::env::var("PNC_INTEROP_DUMP") {
        std::fs::write(path, &request).unwrap();
    }
    let response = sandbox
        .http
        .post(sandbox.url("/v1/ocpp/get-15118-ev-certificate"))
        .bearer_auth(&cpo.token)
        .json(&json!({
            "iso15118SchemaVersion": MSG_DEF,
            "action": "Install",
            "exiRequest": STANDARD.encode(&request),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "Accepted", "{answer}");
    let exi = STANDARD
        .decode(answer["exiResponse"].as_str().unwrap())
        .unwrap();

    let (emaid, contract) =
        check_answer_with_exificient(work.path(), &exi, v2g_root, &vehicle_key_pem);
    assert_eq!(emaid, EMAID);
    assert_eq!(contract.common_name(), Some(EMAID));
}

#[tokio::test]
async fn ok_a_car_built_on_exificient_installs_a_contract_sqlite() {
    exificient_car_installs_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_a_car_built_on_exificient_installs_a_contract_postgres() {
    exificient_car_installs_on(Backend::Postgres).await;
}
