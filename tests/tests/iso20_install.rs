//! ISO 15118-20 CertificateInstallation end to end: an OEM registers a P-521 vehicle, an
//! eMSP generates three contracts for it (pre-signed at registration), and the test plays the
//! EV through the OCPP-shaped endpoint: the answer's signature with the CPS leaf, the CPS
//! chain to the -20 V2G root it listed, the decrypted contract key against the contract
//! certificate, the SessionID, MaximumContractCertificateChains →
//! RemainingContractCertificateChains, PrioritizedEMAIDs; then the refusals. The answer is
//! also decoded and its signature re-checked with the reference codec (EXIficient), a car
//! built on EXIficient and OpenSSL alone asks as well, and `pnc ev install --iso20` plays
//! the car from files. An Ed448 vehicle installs an X448 contract the same way.

mod provisioning_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_exi::iso20::{
    CertificateInstallationReq, CertificateInstallationRes, EncryptedPrivateKey, ResponseCode,
};
use pnc_exi::signature::{self, Profile};
use pnc_pki::dev::DevCert;
use pnc_pki::key_transport::iso20::{self as key20, Curve, SealedContractKey};
use pnc_pki::{Certificate, CertificateTemplate, SignatureAlgorithm, SoftwareSigner, SubjectName};
use pnc_pki::{issue, validate_path};
use pnc_proto::principal::Role;
use pnc_tests::openssl_oem::{KeyType, OemPki};
use pnc_tests::{Backend, Sandbox};
use provisioning_support::*;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// The dev PKI's example -20 vehicle (DevPkiOptions::default).
const PCID20: &str = "PNCDEMOVEHICLE0201";
const EMAIDS: [&str; 3] = ["DEPNCC00000201", "DEPNCC00000202", "DEPNCC00000203"];
const SESSION_ID: [u8; 8] = ISO20_SESSION_ID;

struct Ready {
    sandbox: Sandbox,
    pki: pnc_pki::DevPki,
    cpo_token: String,
    emsp_token: String,
}

/// A sandbox with the -20 example vehicle registered and three generated contracts (the
/// first is the default).
async fn ready(backend: Backend) -> Ready {
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    assert!(pki.has_iso20(), "the dev pki has the -20 hierarchy");
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    let oem = sandbox.client(Role::Oem, &["PNC"], &[], &[]).await;
    let response = sandbox
        .http
        .put(sandbox.url("/v1/oem/provCerts"))
        .bearer_auth(&oem.token)
        .json(&json!({
            "vehicleCertificate": STANDARD.encode(pki.certificate(DevCert::Iso20OemProvisioning).der()),
            "subCA2Certificate": STANDARD.encode(pki.certificate(DevCert::Iso20OemSubCa2).der()),
            "subCA1Certificate": STANDARD.encode(pki.certificate(DevCert::Iso20OemSubCa1).der()),
            "xsdMsgDefNamespace": ISO20_MSG_DEF,
        }))
        .send()
        .await
        .expect("put provisioning certificate");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "PCP upload of the -20 vehicle: {body}");
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    for emaid in EMAIDS {
        let (status, body) = generate_as(&sandbox, &emsp.token, emaid, PCID20, None).await;
        assert_eq!(status, 201, "generate {emaid}: {body}");
        // The eMSP sees the -20 form: namespace, the -20 root, the signed -20 XML.
        assert_eq!(body["xsdMsgDefNamespace"], ISO20_MSG_DEF, "{body}");
        assert_eq!(
            body["cpsV2GRootCertificateFingerprint"],
            hex::encode(pki.certificate(DevCert::Iso20V2gRoot).sha256_fingerprint())
        );
        assert!(
            body["cpsRootDistinguishedName"]
                .as_str()
                .unwrap_or_default()
                .contains("pnc Dev -20 V2G Root CA"),
            "{body}"
        );
        let xml = String::from_utf8(
            STANDARD
                .decode(body["signedData"].as_str().expect("signedData"))
                .expect("base64"),
        )
        .expect("utf-8");
        assert!(xml.contains("CertificateInstallationRes"), "{xml}");
        assert!(xml.contains(ISO20_SCHEMA), "{xml}");
        assert!(xml.contains("ecdsa-sha512"), "{xml}");
    }
    let response = sandbox
        .http
        .get(sandbox.url(&format!("/v1/ccp/lookupContract/{}", EMAIDS[0])))
        .bearer_auth(&emsp.token)
        .send()
        .await
        .expect("lookup");
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["XMLContracts"][0]["xsdMsgDefNamespace"], ISO20_MSG_DEF,
        "{body}"
    );
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;
    Ready {
        sandbox,
        pki,
        cpo_token: cpo.token,
        emsp_token: emsp.token,
    }
}

fn vehicle_chain(pki: &pnc_pki::DevPki) -> [&Certificate; 3] {
    [
        pki.certificate(DevCert::Iso20OemProvisioning),
        pki.certificate(DevCert::Iso20OemSubCa2),
        pki.certificate(DevCert::Iso20OemSubCa1),
    ]
}

async fn answer_of(sandbox: &Sandbox, token: &str, exi: &[u8]) -> (Value, Vec<u8>) {
    let (status, body) = ocpp_install20(sandbox, token, exi, "Install").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "Accepted", "{body}");
    let exi = STANDARD
        .decode(body["exiResponse"].as_str().expect("exiResponse"))
        .expect("base64");
    (body, exi)
}

/// Checks a positive answer as the EV does and returns the eMAID and the remaining count.
fn verify_answer20(pki: &pnc_pki::DevPki, exi: &[u8]) -> (String, u8) {
    let root = pnc_exi::decode_document(pnc_exi::Schema::Iso20, exi).expect("the answer decodes");
    let res = CertificateInstallationRes::from_element(&root).expect("typed answer");
    assert_eq!(res.response_code, ResponseCode::Ok);
    assert_eq!(res.header.session_id, SESSION_ID, "SessionID echoed");

    // The signature: one reference, to SignedInstallationData, verified with the CPS leaf.
    let header_signature = res.header.signature.as_ref().expect("signed");
    let references = &header_signature.signed_info.references;
    assert_eq!(references.len(), 1, "a single signed element");
    assert_eq!(
        references[0].uri.as_deref(),
        Some(format!("#{}", res.signed_installation_data.id).as_str())
    );
    assert_eq!(
        header_signature.signed_info.signature_method,
        signature::ECDSA_SHA512
    );
    assert_eq!(references[0].digest_method, signature::DIGEST_SHA512);
    let cps_leaf = Certificate::from_der(&res.cps_certificate_chain.certificate).expect("cps leaf");
    let cps_key = signature::public_key_from_cert_der(cps_leaf.der()).expect("cps key");
    signature::verify_iso20_message(&root, &cps_key).expect("verifies with the CPS leaf");

    // The CPS chain reaches the -20 V2G root the EV listed.
    let sub_cas: Vec<Vec<u8>> = res.cps_certificate_chain.sub_certificates.clone();
    let sub_ca_refs: Vec<&[u8]> = sub_cas.iter().map(Vec::as_slice).collect();
    validate_path(
        cps_leaf.der(),
        &sub_ca_refs,
        &[pki.certificate(DevCert::Iso20V2gRoot).der()],
        OffsetDateTime::now_utc(),
    )
    .expect("the CPS chain reaches the -20 V2G root");

    // The contract chain reaches the -20 MO root; SubCertificates are there.
    let data = &res.signed_installation_data;
    let contract_leaf =
        Certificate::from_der(&data.contract_certificate_chain.certificate).expect("contract");
    assert!(!data.contract_certificate_chain.sub_certificates.is_empty());
    let contract_subs: Vec<&[u8]> = data
        .contract_certificate_chain
        .sub_certificates
        .iter()
        .map(Vec::as_slice)
        .collect();
    validate_path(
        contract_leaf.der(),
        &contract_subs,
        &[pki.certificate(DevCert::Iso20MoRoot).der()],
        OffsetDateTime::now_utc(),
    )
    .expect("the contract chain reaches the -20 MO root");
    assert_eq!(
        contract_leaf.signature_algorithm_oid(),
        "1.2.840.10045.4.3.4",
        "ecdsa-with-SHA512"
    );

    // The contract key: SECP521, opens with the vehicle key and matches the certificate.
    let EncryptedPrivateKey::Secp521(encrypted) = &data.encrypted_private_key else {
        panic!("a P-521 vehicle gets SECP521_EncryptedPrivateKey");
    };
    assert_eq!(encrypted.len(), 94);
    assert_eq!(data.dh_public_key.len(), 133);
    let sealed = SealedContractKey {
        curve: Curve::Secp521,
        encrypted_private_key: encrypted.clone(),
        dh_public_key: data.dh_public_key.clone(),
    };
    let vehicle = pki.software_signer(DevCert::Iso20OemProvisioning);
    let key = key20::open(
        vehicle.as_ref(),
        &sealed,
        PCID20,
        contract_leaf.subject_key_identifier().expect("ski"),
        contract_leaf.public_key_spki_der(),
    )
    .expect("the contract key opens and matches the contract certificate");
    assert_eq!(key.len(), 66);
    (
        contract_leaf.common_name().expect("cn").to_string(),
        res.remaining_contract_certificate_chains,
    )
}

/// Decodes a negative answer: complete, unsigned, the request's SessionID.
fn negative_code(body: &Value) -> String {
    assert_eq!(body["status"], "Accepted", "{body}");
    let exi = STANDARD
        .decode(body["exiResponse"].as_str().expect("exiResponse"))
        .expect("base64");
    let res = CertificateInstallationRes::decode(&exi).expect("a complete -20 answer");
    assert_eq!(res.header.session_id, SESSION_ID, "SessionID echoed");
    assert!(
        res.header.signature.is_none(),
        "negative answers are unsigned"
    );
    assert_eq!(
        body["statusInfo"]["additionalInfo"]
            .as_str()
            .unwrap_or_default()
            .split(':')
            .next(),
        Some(res.response_code.as_str())
    );
    res.response_code.as_str().to_string()
}

async fn install_answers_the_ev_on(backend: Backend) {
    let Ready {
        sandbox,
        pki,
        cpo_token,
        emsp_token,
    } = ready(backend).await;
    let vehicle = pki.software_signer(DevCert::Iso20OemProvisioning);
    let chain = vehicle_chain(&pki);
    // A -2 root first (pnc signs no -20 data under it), then the -20 root.
    let roots = || {
        vec![
            root_id(pki.certificate(DevCert::V2gRoot)),
            root_id(pki.certificate(DevCert::Iso20V2gRoot)),
        ]
    };

    // All three contracts, the EV takes up to 8: the default first, two remain.
    let exi = request20(vehicle.as_ref(), &chain, roots(), 8, &[]);
    let (body, answer) = answer_of(&sandbox, &cpo_token, &exi).await;
    // Six P-521 certificates do not fit OCPP 2.0.1's 5600 characters (they fit 2.1's 17000,
    // the OCPP version that carries -20 installations): Accepted, and statusInfo says so.
    assert!(body["exiResponse"].as_str().unwrap_or_default().len() > 5600);
    assert_eq!(
        body["statusInfo"]["reasonCode"], "ExiResponseTooLarge",
        "{body}"
    );
    let (emaid, remaining) = verify_answer20(&pki, &answer);
    assert_eq!(emaid, EMAIDS[0], "the default contract comes first");
    assert_eq!(remaining, 2);
    assert_eq!(body["remainingContracts"], 2);
    check_with_reference_codec(&answer);

    // MaximumContractCertificateChains 2 < 3 contracts: one remains.
    let exi = request20(vehicle.as_ref(), &chain, roots(), 2, &[]);
    let (body, answer) = answer_of(&sandbox, &cpo_token, &exi).await;
    let (_, remaining) = verify_answer20(&pki, &answer);
    assert_eq!(remaining, 1);
    assert_eq!(body["remainingContracts"], 1);

    // PrioritizedEMAIDs: the EV's first choice wins (separators and case as EVs send them).
    let exi = request20(
        vehicle.as_ref(),
        &chain,
        roots(),
        1,
        &["DE-PNC-C00000203", "DEPNCC00000202"],
    );
    let (body, answer) = answer_of(&sandbox, &cpo_token, &exi).await;
    let (emaid, remaining) = verify_answer20(&pki, &answer);
    assert_eq!(emaid, EMAIDS[2]);
    assert_eq!(remaining, 0, "the EV takes one chain");
    assert_eq!(body["remainingContracts"], 0);

    // OPCP and OPNC CCP answer the same request under a -20 namespace.
    let exi = request20(vehicle.as_ref(), &chain, roots(), 8, &[]);
    let (status, body) = ccp(&sandbox, &cpo_token, "/v1/ccp/signedContractData", &exi).await;
    assert_eq!(status, 200, "{body}");
    let message_def = &body["CCPResponse"]["emaidContent"][0]["messageDef"];
    assert_eq!(message_def["emaid"], EMAIDS[0]);
    let answer = STANDARD
        .decode(message_def["certificateInstallationRes"].as_str().unwrap())
        .unwrap();
    assert_eq!(verify_answer20(&pki, &answer), (EMAIDS[0].to_string(), 2));
    let (status, body) = ccp(
        &sandbox,
        &cpo_token,
        "/opnc/v1/ccp/signedcontractdata",
        &exi,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entry = &body["signedContractDataCollection"][0];
    assert_eq!(entry["xsdMsgDefNamespace"], "urn:iso:15118:20:2020:MsgDef");
    assert_eq!(entry["pcid"], PCID20);
    let answer = STANDARD
        .decode(entry["certificateInstallationRes"].as_str().unwrap())
        .unwrap();
    assert_eq!(verify_answer20(&pki, &answer).0, EMAIDS[0]);
    // No usable contract: 404 still carrying the failure EXI (alwaysReturnEXI).
    let exi = request20(
        vehicle.as_ref(),
        &chain,
        vec![root_id(pki.certificate(DevCert::V2gRoot))],
        8,
        &[],
    );
    let (status, body) = ccp(&sandbox, &cpo_token, "/v1/ccp/signedContractData", &exi).await;
    assert_eq!(status, 404, "{body}");
    let answer = STANDARD
        .decode(
            body["CCPResponse"]["emaidContent"][0]["messageDef"]["certificateInstallationRes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let res = CertificateInstallationRes::decode(&answer).expect("complete answer");
    assert_eq!(
        res.response_code,
        ResponseCode::WarningNoCertificateAvailable
    );
    assert_eq!(res.header.session_id, SESSION_ID);

    // OEM back-end delivery of one -20 contract (OPCP, then OPNC): its -20 answer with the
    // SessionID the back end passes on, RemainingContractCertificateChains 0.
    let oem = sandbox.client(Role::Oem, &["PNC"], &[], &[]).await;
    let session = hex::encode_upper(SESSION_ID);
    let (status, body) = get_json(
        &sandbox,
        &oem.token,
        &format!(
            "/v1/ccp/provideSignedContractData/{}/{PCID20}?sessionID={session}",
            EMAIDS[1]
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["xsdMsgDefNamespace"], ISO20_MSG_DEF, "{body}");
    let answer = STANDARD
        .decode(body["certificateInstallationRes"].as_str().unwrap())
        .unwrap();
    assert_eq!(verify_answer20(&pki, &answer), (EMAIDS[1].to_string(), 0));
    let (status, body) = get_json(
        &sandbox,
        &oem.token,
        &format!(
            "/opnc/v1/ccp/signedcontractdata/{}/{PCID20}?sessionID={session}\
             &xsdMsgDefNamespace=urn:iso:15118:20:2020:MsgDef",
            EMAIDS[2]
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entry = &body["signedContractDataCollection"][0];
    assert_eq!(entry["xsdMsgDefNamespace"], "urn:iso:15118:20:2020:MsgDef");
    let answer = STANDARD
        .decode(entry["certificateInstallationRes"].as_str().unwrap())
        .unwrap();
    assert_eq!(verify_answer20(&pki, &answer), (EMAIDS[2].to_string(), 0));
    // fail/iso2-form: a -20 contract has no -2 answer; fail/short-session: -20 SessionIDs
    // have 8 bytes.
    let provide = |query: &str| {
        format!(
            "/v1/ccp/provideSignedContractData/{}/{PCID20}?{query}",
            EMAIDS[1]
        )
    };
    let (status, body) = get_json(
        &sandbox,
        &oem.token,
        &provide("xsdMsgDefNamespace=urn:iso:15118:2:2013:MsgDef"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = get_json(&sandbox, &oem.token, &provide("sessionID=0A0B0C0D")).await;
    assert_eq!(status, 400, "{body}");

    // The eMSP cancels the default contract: the EV gets the next one, one remains.
    let response = sandbox
        .http
        .delete(sandbox.url(&format!("/v1/ccp/signedContractData/{}", EMAIDS[0])))
        .bearer_auth(&emsp_token)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 200);
    let exi = request20(vehicle.as_ref(), &chain, roots(), 8, &[EMAIDS[0]]);
    let (body, answer) = answer_of(&sandbox, &cpo_token, &exi).await;
    assert_eq!(
        verify_answer20(&pki, &answer),
        (EMAIDS[1].to_string(), 1),
        "a cancelled contract is never handed out, even when the EV prefers it"
    );
    assert_eq!(body["remainingContracts"], 1);
    sandbox.stop().await;
}

/// `GET path` with a bearer token; status and JSON body.
async fn get_json(sandbox: &Sandbox, token: &str, path: &str) -> (u16, Value) {
    let response = sandbox
        .http
        .get(sandbox.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// OPCP / OPNC CCP `signedContractData` with the -20 namespace OPCP uses.
async fn ccp(sandbox: &Sandbox, token: &str, path: &str, exi: &[u8]) -> (u16, Value) {
    let response = sandbox
        .http
        .post(sandbox.url(path))
        .bearer_auth(token)
        .json(&json!({
            "certificateInstallationReq": STANDARD.encode(exi),
            "xsdMsgDefNamespace": ISO20_MSG_DEF,
        }))
        .send()
        .await
        .expect("ccp");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn ok_iso20_install_answers_the_ev_sqlite() {
    install_answers_the_ev_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_iso20_install_answers_the_ev_postgres() {
    install_answers_the_ev_on(Backend::Postgres).await;
}

/// A P-521 provisioning certificate for `pcid` under the -20 OEM Sub-CA 2.
fn vehicle20(
    pki: &pnc_pki::DevPki,
    pcid: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> (std::sync::Arc<SoftwareSigner>, Certificate) {
    let key = std::sync::Arc::new(
        SoftwareSigner::generate("vehicle20", SignatureAlgorithm::EcdsaP521Sha512).expect("key"),
    );
    let mut template = CertificateTemplate::new(
        pnc_pki::Profile::OemProvisioning,
        SubjectName::new(pcid),
        pnc_pki::Signer::public_key_spki_der(key.as_ref()).to_vec(),
        from,
        to,
    );
    template.ocsp_url = Some("http://127.0.0.1:8080/ocsp".to_string());
    let certificate = issue(
        &template,
        Some(pki.certificate(DevCert::Iso20OemSubCa2)),
        pki.signer(DevCert::Iso20OemSubCa2).as_ref(),
    )
    .expect("issue");
    (key, certificate)
}

/// A P-256 signer whose raw r ‖ s is left-padded to the 2 × 66 bytes of a -20 signature.
struct Widened(std::sync::Arc<SoftwareSigner>);

impl pnc_pki::Signer for Widened {
    fn key_id(&self) -> &str {
        self.0.key_id()
    }
    fn algorithm(&self) -> SignatureAlgorithm {
        self.0.algorithm()
    }
    fn public_key_spki_der(&self) -> &[u8] {
        self.0.public_key_spki_der()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, pnc_pki::SignerError> {
        self.0.sign(message)
    }
    fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, pnc_pki::SignerError> {
        let raw = self.0.sign_raw(message)?;
        let mut widened = vec![0; 34];
        widened.extend_from_slice(&raw[..32]);
        widened.extend_from_slice(&[0; 34]);
        widened.extend_from_slice(&raw[32..]);
        Ok(widened)
    }
}

async fn install_failures_on(backend: Backend) {
    let Ready {
        sandbox,
        pki,
        cpo_token,
        ..
    } = ready(backend).await;
    let vehicle = pki.software_signer(DevCert::Iso20OemProvisioning);
    let chain = vehicle_chain(&pki);
    let roots = || vec![root_id(pki.certificate(DevCert::Iso20V2gRoot))];
    let now = OffsetDateTime::now_utc();
    let sub_cas = [
        pki.certificate(DevCert::Iso20OemSubCa2),
        pki.certificate(DevCert::Iso20OemSubCa1),
    ];

    // Bad signature: signed by another P-521 key than the certificate's.
    let (other_key, _) = vehicle20(&pki, "PNCOTHERVEHICLE201", now, now + Duration::days(1));
    let exi = request20(other_key.as_ref(), &chain, roots(), 8, &[]);
    let (_, body) = ocpp_install20(&sandbox, &cpo_token, &exi, "Install").await;
    assert_eq!(negative_code(&body), "FAILED_SignatureError");

    // Expired provisioning certificate (inside the issuer's validity, already over).
    let issuer_start = pki.certificate(DevCert::Iso20OemSubCa2).not_before();
    let (expired_key, expired) = vehicle20(
        &pki,
        PCID20,
        issuer_start,
        issuer_start + Duration::minutes(30),
    );
    assert!(expired.not_after() < now);
    let exi = request20(
        expired_key.as_ref(),
        &[&expired, sub_cas[0], sub_cas[1]],
        roots(),
        8,
        &[],
    );
    let (_, body) = ocpp_install20(&sandbox, &cpo_token, &exi, "Install").await;
    assert_eq!(negative_code(&body), "WARNING_CertificateExpired");

    // Unknown PCID: a valid chain, nobody registered or contracted this vehicle.
    let (stranger_key, stranger) = vehicle20(
        &pki,
        "PNCSTRANGERVEHI201",
        issuer_start,
        now + Duration::days(30),
    );
    let exi = request20(
        stranger_key.as_ref(),
        &[&stranger, sub_cas[0], sub_cas[1]],
        roots(),
        8,
        &[],
    );
    let (_, body) = ocpp_install20(&sandbox, &cpo_token, &exi, "Install").await;
    assert_eq!(negative_code(&body), "WARNING_NoContractMatchingPCIDFound");

    // The EV trusts only the -2 V2G root: no -20 installation data under it.
    let exi = request20(
        vehicle.as_ref(),
        &chain,
        vec![root_id(pki.certificate(DevCert::V2gRoot))],
        8,
        &[],
    );
    let (_, body) = ocpp_install20(&sandbox, &cpo_token, &exi, "Install").await;
    assert_eq!(negative_code(&body), "WARNING_NoCertificateAvailable");

    // A -2 (P-256) vehicle whose r and s are widened to the -20 field: not ECDSA-SHA512 on
    // P-521, the signature fails.
    let widened = Widened(pki.software_signer(DevCert::OemProvisioning));
    let exi = request20(
        &widened,
        &[pki.certificate(DevCert::OemProvisioning)],
        roots(),
        8,
        &[],
    );
    let (_, body) = ocpp_install20(&sandbox, &cpo_token, &exi, "Install").await;
    assert_eq!(negative_code(&body), "FAILED_SignatureError");

    // -20 has no CertificateUpdate; a -2 message under the -20 schema is undecodable.
    let exi = request20(vehicle.as_ref(), &chain, roots(), 8, &[]);
    let (status, body) = ocpp_install20(&sandbox, &cpo_token, &exi, "Update").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "Failed", "{body}");
    let (_, iso2_exi) = installation_request(
        pki.software_signer(DevCert::OemProvisioning).as_ref(),
        pki.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![root_id(pki.certificate(DevCert::V2gRoot))],
    );
    let (status, body) = ocpp_install20(&sandbox, &cpo_token, &iso2_exi, "Install").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "Failed", "{body}");
    assert_eq!(body["exiResponse"], "");
    // Truncated EXI, and a -20 message that is not a request: no ISO answer can be built.
    let truncated = &exi[..exi.len() / 2];
    let (status, body) = ocpp_install20(&sandbox, &cpo_token, truncated, "Install").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "Failed", "{body}");
    let not_a_request = pnc_exi::iso20::CertificateInstallationRes::decode(
        &STANDARD
            .decode(
                ocpp_install20(&sandbox, &cpo_token, &exi, "Install")
                    .await
                    .1["exiResponse"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap(),
    )
    .expect("an answer")
    .encode()
    .expect("encode");
    let (status, body) = ocpp_install20(&sandbox, &cpo_token, &not_a_request, "Install").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "Failed", "{body}");
    assert!(
        body["statusInfo"]["additionalInfo"]
            .as_str()
            .unwrap_or_default()
            .contains("not a CertificateInstallationReq"),
        "{body}"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn fail_iso20_install_codes_sqlite() {
    install_failures_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn fail_iso20_install_codes_postgres() {
    install_failures_on(Backend::Postgres).await;
}

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

fn base64_of(element: &pnc_exi::Element) -> Vec<u8> {
    let text: String = element
        .text_content()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(text).expect("base64 content")
}

/// Differential check: EXIficient decodes pnc's answer; the SignedInstallationData it decoded,
/// re-encoded by EXIficient as an -20 fragment, has the SHA-512 digest pnc signed, and the
/// SignedInfo re-encoded by EXIficient verifies with the CPS leaf (P-521, SHA-512).
fn check_with_reference_codec(answer: &[u8]) {
    let work = tempfile::tempdir().expect("tempdir");
    let xml = exificient("decode", "iso-20", false, answer, work.path());
    let message = pnc_exi::xml::parse(std::str::from_utf8(&xml).expect("utf-8")).expect("xml");
    assert_eq!(message.name.local, "CertificateInstallationRes");
    let header = message.find("Header").expect("Header");
    assert_eq!(
        header
            .find("SessionID")
            .expect("SessionID")
            .text_content()
            .to_ascii_uppercase(),
        hex::encode_upper(SESSION_ID)
    );
    assert_eq!(
        message
            .find("ResponseCode")
            .expect("ResponseCode")
            .text_content(),
        "OK"
    );
    let data = message
        .find("SignedInstallationData")
        .expect("SignedInstallationData");
    let fragment = exificient(
        "encode",
        "iso-20",
        true,
        pnc_exi::xml::write(data).as_bytes(),
        work.path(),
    );
    let signature = header.find("Signature").expect("Signature");
    let signed_info = signature.find("SignedInfo").expect("SignedInfo");
    let reference = signed_info.find("Reference").expect("Reference");
    assert_eq!(
        openssl::sha::sha512(&fragment).to_vec(),
        base64_of(reference.find("DigestValue").expect("DigestValue")),
        "EXIficient's fragment of SignedInstallationData has the signed digest"
    );
    let signed_info_fragment = exificient(
        "encode",
        "xmldsig",
        true,
        pnc_exi::xml::write(signed_info).as_bytes(),
        work.path(),
    );
    let cps_key = signature::public_key_from_cert_der(&base64_of(
        message
            .find("CPSCertificateChain")
            .expect("CPSCertificateChain")
            .find("Certificate")
            .expect("Certificate"),
    ))
    .expect("cps key");
    signature::verify_raw(
        Profile::Iso20,
        &cps_key,
        &signed_info_fragment,
        &base64_of(signature.find("SignatureValue").expect("SignatureValue")),
    )
    .expect("the signature verifies over EXIficient's SignedInfo");
}

/// `pnc ev install --iso20` from files, as an operator's smoke test: the simulator takes the
/// contract, prints RemainingContractCertificateChains, and its decrypted key is the
/// contract certificate's.
async fn simulator_installs_on(backend: Backend) {
    let Ready {
        sandbox,
        pki,
        cpo_token,
        ..
    } = ready(backend).await;
    let files = tempfile::tempdir().expect("out dir");
    let key_store = pnc_pki::KeyStore::open(
        files.path().join("keys"),
        pnc_pki::Kek::load_or_create(&files.path().join("kek")).expect("kek"),
    )
    .expect("key store");
    pki.write_out(files.path(), &key_store, pnc_pki::PlaintextTestKeys::Write)
        .expect("write dev pki");
    let path = |name: &str| files.path().join(name);
    let mut args = pnc::ev::InstallArgs {
        connection: pnc::ev::Connection {
            url: sandbox.base_url.clone(),
            token: cpo_token.clone(),
            roots: vec![path("iso20-v2g-root.pem")],
            session_id: Some(hex::encode_upper(SESSION_ID)),
            out_key: None,
        },
        oem_cert: path("iso20-oem-provisioning.pem"),
        oem_key: path("iso20-oem-provisioning-key.pem"),
        oem_chain: Some(path("iso20-oem-provisioning-chain.pem")),
        iso20: true,
        maximum_contracts: 8,
        prioritized_emaids: vec![EMAIDS[1].to_string()],
    };
    let outcome = pnc::ev::install(&args)
        .await
        .expect("the -20 car accepts the contract");
    assert_eq!(outcome.emaid, EMAIDS[1]);
    assert_eq!(outcome.remaining_contract_certificate_chains, Some(2));
    assert_eq!(outcome.session_id, SESSION_ID);
    assert_eq!(
        outcome.cps_root_fingerprint,
        hex::encode_upper(pki.certificate(DevCert::Iso20V2gRoot).sha256_fingerprint())
    );
    let report = outcome.report();
    assert!(
        report.contains("RemainingContractCertificateChains: 2"),
        "{report}"
    );
    let key_file = path("contract-key.pem");
    outcome.write_key(&key_file).expect("write key");
    let key = SoftwareSigner::from_pem("contract", &std::fs::read(&key_file).unwrap())
        .expect("a PEM key");
    assert_eq!(
        pnc_pki::Signer::algorithm(&key),
        SignatureAlgorithm::EcdsaP521Sha512
    );
    assert_eq!(
        pnc_pki::Signer::public_key_spki_der(&key),
        outcome.contract_chain[0].public_key_spki_der()
    );

    // A -2 root only: pnc has no -20 data under it, the car hears so.
    args.connection.roots = vec![path("v2g-root.pem")];
    match pnc::ev::install(&args).await {
        Err(pnc::ev::EvError::Refused(code)) => {
            assert_eq!(code, "WARNING_NoCertificateAvailable")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A P-256 key is not a -20 car.
    args.connection.roots = vec![path("iso20-v2g-root.pem")];
    args.oem_cert = path("oem-provisioning.pem");
    args.oem_key = path("oem-provisioning-key.pem");
    match pnc::ev::install(&args).await {
        Err(pnc::ev::EvError::Input(message)) => assert!(message.contains("P-521"), "{message}"),
        other => panic!("expected an input error, got {other:?}"),
    }
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_iso20_simulator_installs_sqlite() {
    simulator_installs_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_iso20_simulator_installs_postgres() {
    simulator_installs_on(Backend::Postgres).await;
}

const CM: &str = "urn:iso:std:iso:15118:-20:CommonMessages";
const CT: &str = "urn:iso:std:iso:15118:-20:CommonTypes";
const XMLDSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// The -20 car's request written as XML, encoded by EXIficient (the signed chain as a
/// fragment, SignedInfo as an xmldsig fragment, the message as a document), signed by OpenSSL
/// with P-521/SHA-512: no pnc code on the car's side.
fn exificient_request20(
    work: &Path,
    chain: &[&Certificate],
    vehicle_key_pem: &[u8],
    v2g_root: &Certificate,
    prioritized: &str,
) -> Vec<u8> {
    use openssl::hash::MessageDigest;
    let root_id = root_id(v2g_root);
    let sub_certificates: String = chain[1..]
        .iter()
        .map(|c| {
            format!(
                "<m:Certificate>{}</m:Certificate>",
                STANDARD.encode(c.der())
            )
        })
        .collect();
    let oem_chain = format!(
        "<m:OEMProvisioningCertificateChain xmlns:m=\"{CM}\" m:Id=\"oem\">\
         <m:Certificate>{}</m:Certificate><m:SubCertificates>{sub_certificates}</m:SubCertificates>\
         </m:OEMProvisioningCertificateChain>",
        STANDARD.encode(chain[0].der()),
    );
    let chain_fragment = exificient("encode", "iso-20", true, oem_chain.as_bytes(), work);
    let signed_info = format!(
        "<ds:SignedInfo xmlns:ds=\"{XMLDSIG}\">\
         <ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/canonical-exi/\"/>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512\"/>\
         <ds:Reference URI=\"#oem\"><ds:Transforms>\
         <ds:Transform Algorithm=\"http://www.w3.org/TR/canonical-exi/\"/></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha512\"/>\
         <ds:DigestValue>{}</ds:DigestValue></ds:Reference></ds:SignedInfo>",
        STANDARD.encode(openssl::sha::sha512(&chain_fragment))
    );
    let signed_info_fragment = exificient("encode", "xmldsig", true, signed_info.as_bytes(), work);
    let key = openssl::pkey::PKey::private_key_from_pem(vehicle_key_pem).unwrap();
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha512(), &key).unwrap();
    signer.update(&signed_info_fragment).unwrap();
    let der = signer.sign_to_vec().unwrap();
    let ecdsa = openssl::ecdsa::EcdsaSig::from_der(&der).unwrap();
    let mut signature_value = ecdsa.r().to_vec_padded(66).unwrap();
    signature_value.extend(ecdsa.s().to_vec_padded(66).unwrap());
    let inner_signed_info = signed_info.replacen(&format!(" xmlns:ds=\"{XMLDSIG}\""), "", 1);
    let inner_chain = oem_chain.replacen(&format!(" xmlns:m=\"{CM}\""), "", 1);
    let message = format!(
        "<m:CertificateInstallationReq xmlns:m=\"{CM}\" xmlns:t=\"{CT}\" xmlns:ds=\"{XMLDSIG}\">\
         <t:Header><t:SessionID>{}</t:SessionID><t:TimeStamp>1763700000</t:TimeStamp>\
         <ds:Signature>{inner_signed_info}<ds:SignatureValue>{}</ds:SignatureValue></ds:Signature>\
         </t:Header>{inner_chain}\
         <m:ListOfRootCertificateIDs><t:RootCertificateID>\
         <ds:X509IssuerName>{}</ds:X509IssuerName><ds:X509SerialNumber>{}</ds:X509SerialNumber>\
         </t:RootCertificateID></m:ListOfRootCertificateIDs>\
         <m:MaximumContractCertificateChains>3</m:MaximumContractCertificateChains>\
         <m:PrioritizedEMAIDs><m:EMAID>{prioritized}</m:EMAID></m:PrioritizedEMAIDs>\
         </m:CertificateInstallationReq>",
        hex::encode_upper(SESSION_ID),
        STANDARD.encode(signature_value),
        root_id.issuer_name,
        root_id.serial_number,
    );
    exificient("encode", "iso-20", false, message.as_bytes(), work)
}

/// Interop: a -20 car built on the reference codec asks; pnc's answer is checked by pnc's
/// EV-side checks and again by EXIficient.
async fn reference_codec_ev_on(backend: Backend) {
    let Ready {
        sandbox,
        pki,
        cpo_token,
        ..
    } = ready(backend).await;
    let work = tempfile::tempdir().expect("work dir");
    let key_store = pnc_pki::KeyStore::open(
        work.path().join("keys"),
        pnc_pki::Kek::load_or_create(&work.path().join("kek")).expect("kek"),
    )
    .expect("key store");
    pki.write_out(work.path(), &key_store, pnc_pki::PlaintextTestKeys::Write)
        .expect("write dev pki");
    let key_pem = std::fs::read(work.path().join("iso20-oem-provisioning-key.pem")).unwrap();
    let exi = exificient_request20(
        work.path(),
        &vehicle_chain(&pki),
        &key_pem,
        pki.certificate(DevCert::Iso20V2gRoot),
        EMAIDS[2],
    );
    // pnc's codec reads what EXIficient wrote.
    let decoded =
        CertificateInstallationReq::decode(&exi).expect("pnc decodes EXIficient's request");
    assert_eq!(decoded.maximum_contract_certificate_chains, 3);
    let (body, answer) = answer_of(&sandbox, &cpo_token, &exi).await;
    let (emaid, remaining) = verify_answer20(&pki, &answer);
    assert_eq!(emaid, EMAIDS[2], "the car's prioritized eMAID");
    assert_eq!(remaining, 2);
    assert_eq!(body["remainingContracts"], 2);
    check_with_reference_codec(&answer);
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_iso20_install_interop_with_reference_codec_sqlite() {
    reference_codec_ev_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_iso20_install_interop_with_reference_codec_postgres() {
    reference_codec_ev_on(Backend::Postgres).await;
}

// ---- Ed448 vehicles: X448 key transport ---------------------------------------------------

/// The Ed448 example vehicle of these tests (not part of the dev PKI's files).
const PCID_ED448: &str = "PNCDEMOVEHICLE0448";
const EMAID_ED448: &str = "DEPNCC00000448";

/// A -20 request whose OEMProvisioningCertificateChain is signed by the EV with its Ed448 key
/// through OpenSSL (pure Ed448 over the SignedInfo fragment); `corrupt` flips a signature bit.
fn request20_ed448(
    vehicle_key: &openssl::pkey::PKey<openssl::pkey::Private>,
    chain: &[&Certificate],
    roots: Vec<pnc_exi::iso20::X509IssuerSerial>,
    corrupt: bool,
) -> Vec<u8> {
    let sign = |signed_info: &[u8]| -> Result<Vec<u8>, signature::SignatureError> {
        let mut signer = openssl::sign::Signer::new_without_digest(vehicle_key).expect("signer");
        let mut value = signer.sign_oneshot_to_vec(signed_info).expect("ed448");
        if corrupt {
            value[10] ^= 1;
        }
        Ok(value)
    };
    request20_signed(Profile::Iso20Ed448, &sign, chain, roots, 4, &[])
}

/// The EV's side of the X448 transport, written from the formulas with OpenSSL alone (not
/// pnc's key-transport code): X448 private key = SHAKE256(Ed448 seed)[0..56] (RFC 8032
/// §5.2.5), Z = X448(private, DHPublicKey without its marker byte), session key =
/// SHA-512(00000001 ‖ Z)[0..32], AES-256-GCM with AAD = PCID ‖ SKI (upper-case hex).
/// Returns the 56-byte contract private key.
fn ev_opens_x448(
    vehicle_key: &openssl::pkey::PKey<openssl::pkey::Private>,
    pcid: &str,
    dh_public_key: &[u8],
    encrypted: &[u8],
    ski: &[u8],
) -> Vec<u8> {
    use openssl::pkey::{Id, PKey};
    // The pnc choices this independent code mirrors; a change there must fail here.
    assert_eq!(
        key20::unconfirmed::KDF_HASH,
        key20::unconfirmed::KdfHash::Sha512
    );
    assert!(key20::unconfirmed::KDF_OTHER_INFO.is_empty());
    assert_eq!(key20::unconfirmed::X448_DH_PUBLIC_KEY_PREFIX, 0x04);
    let seed = vehicle_key.raw_private_key().expect("seed");
    let mut digest = [0u8; 114];
    openssl::hash::hash_xof(
        openssl::hash::MessageDigest::shake_256(),
        &seed,
        &mut digest,
    )
    .expect("shake256");
    let private = PKey::private_key_from_raw_bytes(&digest[..56], Id::X448).expect("x448");
    assert_eq!(dh_public_key.len(), 57);
    assert_eq!(dh_public_key[0], 0x04);
    let ephemeral =
        PKey::public_key_from_raw_bytes(&dh_public_key[1..], Id::X448).expect("x448 public");
    let mut deriver = openssl::derive::Deriver::new(&private).expect("deriver");
    deriver.set_peer(&ephemeral).expect("peer");
    let z = deriver.derive_to_vec().expect("ecdh");
    let mut kdf_input = vec![0, 0, 0, 1];
    kdf_input.extend_from_slice(&z);
    let session_key = &openssl::sha::sha512(&kdf_input)[..32];
    let mut aad = pcid.as_bytes().to_vec();
    aad.extend_from_slice(hex::encode_upper(ski).as_bytes());
    assert_eq!(encrypted.len(), 84);
    let (iv, rest) = encrypted.split_at(12);
    let (ciphertext, tag) = rest.split_at(rest.len() - 16);
    openssl::symm::decrypt_aead(
        openssl::symm::Cipher::aes_256_gcm(),
        session_key,
        Some(iv),
        &aad,
        ciphertext,
        tag,
    )
    .expect("the EV opens the contract key")
}

async fn ed448_vehicle_installs_on(backend: Backend) {
    use openssl::pkey::{Id, PKey};
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;

    // The OEM registers an Ed448 vehicle under its -20 (P-521) OEM Sub-CAs.
    let vehicle_key = PKey::generate_ed448().expect("ed448");
    let vehicle_certificate = pki
        .issue_iso20_ed448_provisioning(
            PCID_ED448,
            &vehicle_key.public_key_to_der().expect("spki"),
            Duration::days(365),
        )
        .expect("ed448 provisioning certificate");
    let chain = [
        &vehicle_certificate,
        pki.certificate(DevCert::Iso20OemSubCa2),
        pki.certificate(DevCert::Iso20OemSubCa1),
    ];
    let oem = sandbox.client(Role::Oem, &["PNC"], &[], &[]).await;
    let response = sandbox
        .http
        .put(sandbox.url("/v1/oem/provCerts"))
        .bearer_auth(&oem.token)
        .json(&json!({
            "vehicleCertificate": STANDARD.encode(chain[0].der()),
            "subCA2Certificate": STANDARD.encode(chain[1].der()),
            "subCA1Certificate": STANDARD.encode(chain[2].der()),
            "xsdMsgDefNamespace": ISO20_MSG_DEF,
        }))
        .send()
        .await
        .expect("put provisioning certificate");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "PCP upload of the Ed448 vehicle: {body}");

    // The eMSP generates its contract: pre-signed, X448.
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (status, body) = generate_as(&sandbox, &emsp.token, EMAID_ED448, PCID_ED448, None).await;
    assert_eq!(status, 201, "generate for the Ed448 vehicle: {body}");
    assert_eq!(body["xsdMsgDefNamespace"], ISO20_MSG_DEF, "{body}");
    let xml = String::from_utf8(
        STANDARD
            .decode(body["signedData"].as_str().expect("signedData"))
            .expect("base64"),
    )
    .expect("utf-8");
    assert!(xml.contains(">X448</"), "ECDHCurve X448: {xml}");
    assert!(xml.contains("X448_EncryptedPrivateKey"), "{xml}");

    // The EV asks, signing with Ed448.
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;
    let roots = || vec![root_id(pki.certificate(DevCert::Iso20V2gRoot))];
    let exi = request20_ed448(&vehicle_key, &chain, roots(), false);
    let (_, answer) = answer_of(&sandbox, &cpo.token, &exi).await;
    let root = pnc_exi::decode_document(pnc_exi::Schema::Iso20, &answer).expect("decodes");
    let res = CertificateInstallationRes::from_element(&root).expect("typed answer");
    assert_eq!(res.response_code, ResponseCode::Ok);
    assert_eq!(res.header.session_id, SESSION_ID);
    assert_eq!(res.remaining_contract_certificate_chains, 0);

    // The CPS signature (P-521, SHA-512: pnc's CPS is P-521) verifies; the CPS chain reaches
    // the -20 V2G root.
    let cps_leaf = Certificate::from_der(&res.cps_certificate_chain.certificate).expect("cps");
    let cps_key = signature::public_key_from_cert_der(cps_leaf.der()).expect("cps key");
    signature::verify_iso20_message(&root, &cps_key).expect("verifies with the CPS leaf");
    let cps_subs: Vec<&[u8]> = res
        .cps_certificate_chain
        .sub_certificates
        .iter()
        .map(Vec::as_slice)
        .collect();
    validate_path(
        cps_leaf.der(),
        &cps_subs,
        &[pki.certificate(DevCert::Iso20V2gRoot).der()],
        OffsetDateTime::now_utc(),
    )
    .expect("the CPS chain reaches the -20 V2G root");

    // X448 installation data; the contract certificate carries an X448 key and chains to the
    // -20 MO root.
    let data = &res.signed_installation_data;
    assert_eq!(data.ecdh_curve, pnc_exi::iso20::EcdhCurve::X448);
    let EncryptedPrivateKey::X448(encrypted) = &data.encrypted_private_key else {
        panic!("an Ed448 vehicle gets X448_EncryptedPrivateKey");
    };
    assert_eq!(encrypted.len(), 84);
    assert_eq!(
        data.dh_public_key.len(),
        key20::unconfirmed::X448_DH_PUBLIC_KEY_LEN
    );
    let contract_leaf =
        Certificate::from_der(&data.contract_certificate_chain.certificate).expect("contract");
    assert_eq!(contract_leaf.common_name(), Some(EMAID_ED448));
    let contract_subs: Vec<&[u8]> = data
        .contract_certificate_chain
        .sub_certificates
        .iter()
        .map(Vec::as_slice)
        .collect();
    validate_path(
        contract_leaf.der(),
        &contract_subs,
        &[pki.certificate(DevCert::Iso20MoRoot).der()],
        OffsetDateTime::now_utc(),
    )
    .expect("the contract chain reaches the -20 MO root");
    let contract_public = openssl::x509::X509::from_der(contract_leaf.der())
        .expect("x509")
        .public_key()
        .expect("key");
    assert_eq!(contract_public.id(), Id::X448, "the contract key is X448");

    // The EV derives its X448 key and opens the contract key with OpenSSL alone; the key
    // reproduces the contract certificate's public key.
    let contract_private = ev_opens_x448(
        &vehicle_key,
        PCID_ED448,
        &data.dh_public_key,
        encrypted,
        contract_leaf.subject_key_identifier().expect("ski"),
    );
    assert_eq!(contract_private.len(), 56);
    let opened = PKey::private_key_from_raw_bytes(&contract_private, Id::X448).expect("x448");
    assert_eq!(
        opened.raw_public_key().expect("raw"),
        contract_public.raw_public_key().expect("raw"),
        "the opened key is the contract certificate's"
    );

    // The reference codec decodes the answer (X448 branch) and agrees on digest and signature.
    check_with_reference_codec(&answer);
    let work = tempfile::tempdir().expect("tempdir");
    let xml = exificient("decode", "iso-20", false, &answer, work.path());
    let message = pnc_exi::xml::parse(std::str::from_utf8(&xml).expect("utf-8")).expect("xml");
    let reference_data = message
        .find("SignedInstallationData")
        .expect("SignedInstallationData");
    assert_eq!(
        reference_data
            .find("ECDHCurve")
            .expect("ECDHCurve")
            .text_content(),
        "X448"
    );
    assert_eq!(
        &base64_of(
            reference_data
                .find("X448_EncryptedPrivateKey")
                .expect("the X448 branch")
        ),
        encrypted
    );
    assert!(reference_data.find("SECP521_EncryptedPrivateKey").is_none());
    assert_eq!(
        base64_of(reference_data.find("DHPublicKey").expect("DHPublicKey")),
        data.dh_public_key
    );

    // `pnc ev install --iso20` plays the Ed448 car from files and stores an X448 contract key.
    let files = tempfile::tempdir().expect("out dir");
    let path = |name: &str| files.path().join(name);
    std::fs::write(
        path("root.pem"),
        pki.certificate(DevCert::Iso20V2gRoot).to_pem(),
    )
    .unwrap();
    std::fs::write(path("vehicle.pem"), vehicle_certificate.to_pem()).unwrap();
    std::fs::write(
        path("vehicle-key.pem"),
        vehicle_key.private_key_to_pem_pkcs8().expect("pem"),
    )
    .unwrap();
    std::fs::write(
        path("chain.pem"),
        format!("{}{}", chain[1].to_pem(), chain[2].to_pem()),
    )
    .unwrap();
    let args = pnc::ev::InstallArgs {
        connection: pnc::ev::Connection {
            url: sandbox.base_url.clone(),
            token: cpo.token.clone(),
            roots: vec![path("root.pem")],
            session_id: Some(hex::encode_upper(SESSION_ID)),
            out_key: None,
        },
        oem_cert: path("vehicle.pem"),
        oem_key: path("vehicle-key.pem"),
        oem_chain: Some(path("chain.pem")),
        iso20: true,
        maximum_contracts: 1,
        prioritized_emaids: Vec::new(),
    };
    let outcome = pnc::ev::install(&args)
        .await
        .expect("the Ed448 car accepts the contract");
    assert_eq!(outcome.emaid, EMAID_ED448);
    outcome
        .write_key(&path("contract-key.pem"))
        .expect("write key");
    let stored = PKey::private_key_from_pem(&std::fs::read(path("contract-key.pem")).unwrap())
        .expect("a PEM key");
    assert_eq!(stored.id(), Id::X448);
    assert_eq!(
        stored.raw_private_key().expect("raw"),
        contract_private,
        "the simulator opened the same key"
    );

    // A bad Ed448 signature, and a request signed with another Ed448 key: FAILED_SignatureError.
    let exi = request20_ed448(&vehicle_key, &chain, roots(), true);
    let (_, body) = ocpp_install20(&sandbox, &cpo.token, &exi, "Install").await;
    assert_eq!(negative_code(&body), "FAILED_SignatureError");
    let other_key = PKey::generate_ed448().expect("ed448");
    let exi = request20_ed448(&other_key, &chain, roots(), false);
    let (_, body) = ocpp_install20(&sandbox, &cpo.token, &exi, "Install").await;
    assert_eq!(negative_code(&body), "FAILED_SignatureError");
    // An ECDSA-profile signature for the Ed448 certificate: FAILED_SignatureError as well.
    let p521 = std::sync::Arc::new(
        SoftwareSigner::generate("p521", SignatureAlgorithm::EcdsaP521Sha512).expect("key"),
    );
    let exi = request20(p521.as_ref(), &chain, roots(), 4, &[]);
    let (_, body) = ocpp_install20(&sandbox, &cpo.token, &exi, "Install").await;
    assert_eq!(negative_code(&body), "FAILED_SignatureError");
}

#[tokio::test]
async fn ok_iso20_ed448_vehicle_installs_x448_sqlite() {
    ed448_vehicle_installs_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_iso20_ed448_vehicle_installs_x448_postgres() {
    ed448_vehicle_installs_on(Backend::Postgres).await;
}

// ---- An OEM PKI that is Ed448 throughout, made by the openssl command ---------------------

/// An Ed448 vehicle of the openssl-made Ed448 OEM PKI.
const PCID_ED448_PKI: &str = "TSTED448VEHICLE201";
const EMAID_ED448_PKI: &str = "DEPNCC00000449";
/// A P-256 vehicle the same Ed448 Sub-CA 2 issued: the shape a -2 car would have.
const PCID_P256_UNDER_ED448: &str = "TSTP256UNDERED4481";

async fn ed448_oem_pki_on(backend: Backend) {
    use openssl::pkey::PKey;
    let sandbox = Sandbox::start(backend).await;
    let dev = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &dev).await;
    let work = tempfile::tempdir().expect("dir");
    let pki = OemPki::create(
        work.path(),
        KeyType::Ed448,
        &[
            (PCID_ED448_PKI, KeyType::Ed448),
            (PCID_P256_UNDER_ED448, KeyType::P256),
        ],
        None,
    );
    let [leaf, sub2, sub1] = pki.chain(PCID_ED448_PKI);
    for certificate in [&leaf, &sub2, &sub1, &pki.certificate("root")] {
        assert_eq!(certificate.signature_algorithm_oid(), "1.3.101.113");
    }

    // The truststore takes the Ed448 root (its self-signature checked) as an OEM root.
    add_oem_root(&sandbox, &admin.token, &pki.certificate("root")).await;

    // ok/registration: the Ed448 chain under -20.
    let oem = sandbox.client(Role::Oem, &["TST"], &[], &[]).await;
    let (status, body) =
        register_vehicle_as(&sandbox, &oem.token, &[&leaf, &sub2, &sub1], ISO20_MSG_DEF).await;
    assert_eq!(status, 200, "PCP upload of the Ed448 chain: {body}");
    // fail/registration-iso2: under -2 the same CAs are refused, even for a P-256 vehicle.
    let [p256_leaf, _, _] = pki.chain(PCID_P256_UNDER_ED448);
    let (status, body) = register_vehicle_as(
        &sandbox,
        &oem.token,
        &[&p256_leaf, &sub2, &sub1],
        ISO2_NAMESPACE,
    )
    .await;
    assert_eq!(status, 400, "a -2 registration of Ed448 CAs: {body}");
    assert!(body.contains("ISO 15118-2 allows only"), "{body}");
    // fail/registration-iso20-p256-leaf: under -20 the CAs are fine, a P-256 leaf is not.
    let (status, body) = register_vehicle_as(
        &sandbox,
        &oem.token,
        &[&p256_leaf, &sub2, &sub1],
        ISO20_MSG_DEF,
    )
    .await;
    assert_eq!(status, 400, "a -20 registration of a P-256 leaf: {body}");
    assert!(body.contains("ISO 15118-20 allows only"), "{body}");

    // The eMSP's contract for the Ed448 vehicle: X448 installation data.
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (status, body) =
        generate_as(&sandbox, &emsp.token, EMAID_ED448_PKI, PCID_ED448_PKI, None).await;
    assert_eq!(status, 201, "generate for the Ed448 vehicle: {body}");

    // ok/install: the car asks through the OCPP-shaped endpoint, signing with Ed448.
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;
    let vehicle_key = PKey::private_key_from_pem(&pki.key_pem(PCID_ED448_PKI)).expect("key");
    let roots = || vec![root_id(dev.certificate(DevCert::Iso20V2gRoot))];
    let exi = request20_ed448(&vehicle_key, &[&leaf, &sub2, &sub1], roots(), false);
    let (_, answer) = answer_of(&sandbox, &cpo.token, &exi).await;
    let root = pnc_exi::decode_document(pnc_exi::Schema::Iso20, &answer).expect("decodes");
    let res = CertificateInstallationRes::from_element(&root).expect("typed answer");
    assert_eq!(res.response_code, ResponseCode::Ok);
    let cps_leaf = Certificate::from_der(&res.cps_certificate_chain.certificate).expect("cps");
    let cps_key = signature::public_key_from_cert_der(cps_leaf.der()).expect("cps key");
    signature::verify_iso20_message(&root, &cps_key).expect("verifies with the CPS leaf");
    let data = &res.signed_installation_data;
    let contract_leaf =
        Certificate::from_der(&data.contract_certificate_chain.certificate).expect("contract");
    assert_eq!(contract_leaf.common_name(), Some(EMAID_ED448_PKI));
    let EncryptedPrivateKey::X448(encrypted) = &data.encrypted_private_key else {
        panic!("an Ed448 vehicle gets X448_EncryptedPrivateKey");
    };
    // The car opens its contract key with OpenSSL alone.
    let contract_private = ev_opens_x448(
        &vehicle_key,
        PCID_ED448_PKI,
        &data.dh_public_key,
        encrypted,
        contract_leaf.subject_key_identifier().expect("ski"),
    );
    assert_eq!(contract_private.len(), 56);

    // fail/tampered: a bit of the leaf's Ed448 signature flipped (the request signature over
    // the chain still verifies): the chain-error ResponseCode.
    let mut tampered_der = leaf.der().to_vec();
    let inside_signature = tampered_der.len() - 20;
    tampered_der[inside_signature] ^= 0x01;
    let tampered_leaf = Certificate::from_der(&tampered_der).expect("still parses");
    let exi = request20_ed448(
        &vehicle_key,
        &[&tampered_leaf, &sub2, &sub1],
        roots(),
        false,
    );
    let (_, body) = ocpp_install20(&sandbox, &cpo.token, &exi, "Install").await;
    assert_eq!(negative_code(&body), "WARNING_CertificateValidationError");
    assert!(
        body["statusInfo"]["additionalInfo"]
            .as_str()
            .unwrap_or_default()
            .contains("bad signature on leaf"),
        "{body}"
    );

    // fail/iso2-install: the -2 path, a P-256 car under the Ed448 Sub-CAs (which the -20
    // installation made known CAs): refused for its chain, not answered "no contract".
    let (_, exi) = installation_request(
        &pki.signer(PCID_P256_UNDER_ED448),
        &p256_leaf,
        &SESSION_ID,
        vec![root_id(dev.certificate(DevCert::V2gRoot))],
    );
    let (status, body) = ocpp_install(&sandbox, &cpo.token, &exi).await;
    assert_eq!(status, 200, "{body}");
    let (code, _, _) = decode_answer(body["exiResponse"].as_str().expect("exiResponse"));
    let reason = body["statusInfo"]["additionalInfo"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(code, "FAILED", "{body}");
    assert!(reason.contains("ISO 15118-2 allows only"), "{reason}");
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_iso20_ed448_oem_pki_registers_and_installs_sqlite() {
    ed448_oem_pki_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_iso20_ed448_oem_pki_registers_and_installs_postgres() {
    ed448_oem_pki_on(Backend::Postgres).await;
}
