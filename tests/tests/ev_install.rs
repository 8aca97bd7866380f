//! The car plugs in: an eMSP has generated a contract, the test plays the EV with the dev
//! PKI's example vehicle key (request built and signed with pnc-exi), the CSMS calls the
//! OCPP-shaped endpoint and OPCP's CCP, and the answer is checked as the EV would check it.
//! Then every failure code the notes map (§8.2), on both backends.

mod provisioning_support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_common::config::SameProcessTransport;
use pnc_pki::dev::DevCert;
use pnc_pki::{CertificateTemplate, Profile, SubjectName, issue};
use pnc_proto::principal::Role;
use pnc_tests::{Backend, Sandbox};
use provisioning_support::*;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const SESSION_ID: [u8; 8] = [0x2A, 0x3D, 0xC6, 0xD7, 0x54, 0x11, 0xF6, 0x47];

struct Installation {
    sandbox: Sandbox,
    pki: pnc_pki::DevPki,
    cpo_token: String,
    emsp_token: String,
    oem_token: String,
}

/// A sandbox with the example vehicle registered and a generated default contract.
async fn installation_ready(backend: Backend) -> Installation {
    installation_ready_over(backend, SameProcessTransport::default()).await
}

/// [`installation_ready`] with the components calling each other over `transport`.
async fn installation_ready_over(
    backend: Backend,
    transport: SameProcessTransport,
) -> Installation {
    let sandbox = Sandbox::start_with(backend, |config| {
        config.grpc.same_process_transport = transport;
    })
    .await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    let oem = register_dev_vehicle(&sandbox, &pki).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (status, body) = generate(&sandbox, &emsp.token, EMAID, EXAMPLE_PCID).await;
    assert_eq!(status, 201, "{body}");
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;
    Installation {
        sandbox,
        pki,
        cpo_token: cpo.token,
        emsp_token: emsp.token,
        oem_token: oem.token,
    }
}

/// A provisioning certificate for `pcid` under the dev OEM Sub-CA 2, valid `from`..`to`.
fn vehicle_certificate(
    pki: &pnc_pki::DevPki,
    pcid: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> (
    std::sync::Arc<pnc_pki::SoftwareSigner>,
    pnc_pki::Certificate,
) {
    let key = std::sync::Arc::new(
        pnc_pki::SoftwareSigner::generate("vehicle", pnc_pki::SignatureAlgorithm::EcdsaP256Sha256)
            .expect("key"),
    );
    let mut template = CertificateTemplate::new(
        Profile::OemProvisioning,
        SubjectName::new(pcid),
        pnc_pki::Signer::public_key_spki_der(key.as_ref()).to_vec(),
        from,
        to,
    );
    template.ocsp_url = Some("http://127.0.0.1:8080/ocsp".to_string());
    let issuer = pki.certificate(DevCert::OemSubCa2);
    let certificate = issue(
        &template,
        Some(issuer),
        pki.signer(DevCert::OemSubCa2).as_ref(),
    )
    .expect("issue");
    (key, certificate)
}

async fn install_answers_the_ev_on(backend: Backend, transport: SameProcessTransport) {
    let Installation {
        sandbox,
        pki,
        cpo_token,
        oem_token,
        ..
    } = installation_ready_over(backend, transport).await;
    let v2g_root = pki.certificate(DevCert::V2gRoot);
    let vehicle = pki.software_signer(DevCert::OemProvisioning);
    // Josev's odd issuer string and an unknown root first: pnc picks the one it signs under.
    let mut josev_style = root_id(v2g_root);
    josev_style.issuer_name = format!(
        "<Name({})>",
        josev_style
            .issuer_name
            .split(',')
            .rev()
            .collect::<Vec<_>>()
            .join(",")
    );
    let unknown_root = pnc_exi::iso2::X509IssuerSerial {
        issuer_name: "CN=V2GRootCA,O=RISE V2G Project,C=DE,DC=V2G".to_string(),
        serial_number: "12345".to_string(),
    };
    let (_, exi) = installation_request(
        vehicle.as_ref(),
        pki.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![unknown_root, josev_style],
    );

    let started = std::time::Instant::now();
    let (status, body) = ocpp_install(&sandbox, &cpo_token, &exi).await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "Accepted", "{body}");
    assert_fits_ocpp_201(&body, "install");
    assert_eq!(
        body["remainingContracts"], 0,
        "the vehicle has one contract"
    );
    let (code, session, tree) = decode_answer(body["exiResponse"].as_str().expect("exiResponse"));
    assert_eq!(code, "OK", "{body}");
    assert_eq!(session, SESSION_ID, "the SessionID is echoed");
    let answer = verify_answer(&tree, v2g_root);
    assert_eq!(answer.emaid, EMAID);
    assert_eq!(answer.contract_chain[0].common_name(), Some(EMAID));
    open_contract_key(&pki, &answer);
    eprintln!("installation answered in {elapsed:?}");

    // OPCP CCP: the same answer in CCPResponse.
    let response = sandbox
        .sandbox_post_ccp(&cpo_token, &STANDARD.encode(&exi), None)
        .await;
    assert_eq!(response.0, 200, "{}", response.1);
    let content = &response.1["CCPResponse"]["emaidContent"][0]["messageDef"];
    assert_eq!(content["emaid"], EMAID);
    let (code, session, tree) = decode_answer(
        content["certificateInstallationRes"]
            .as_str()
            .expect("certificateInstallationRes"),
    );
    assert_eq!((code.as_str(), session.as_slice()), ("OK", &SESSION_ID[..]));
    verify_answer(&tree, v2g_root);

    // OPNC CCP: the same answer in a signedContractDataCollection.
    let response = sandbox
        .http
        .post(sandbox.url("/opnc/v1/ccp/signedcontractdata"))
        .bearer_auth(&cpo_token)
        .json(&json!({
            "certificateInstallationReq": STANDARD.encode(&exi),
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
        }))
        .send()
        .await
        .expect("opnc ccp");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let entry = &body["signedContractDataCollection"][0];
    assert_eq!(
        (entry["emaid"].as_str(), entry["pcid"].as_str()),
        (Some(EMAID), Some(EXAMPLE_PCID))
    );
    let (code, session, tree) =
        decode_answer(entry["certificateInstallationRes"].as_str().expect("exi"));
    assert_eq!((code.as_str(), session.as_slice()), ("OK", &SESSION_ID[..]));
    verify_answer(&tree, v2g_root);

    // OEM back-end delivery: the same contract with the SessionID the OEM passes on.
    let response = sandbox
        .http
        .get(sandbox.url(&format!(
            "/v1/ccp/provideSignedContractData/de-pnc-c00000001/{EXAMPLE_PCID}?sessionID=0102030405060708"
        )))
        .bearer_auth(&oem_token)
        .send()
        .await
        .expect("provide");
    assert_eq!(response.status(), 200, "ok/provide");
    let body: Value = response.json().await.expect("json");
    let (code, session, tree) =
        decode_answer(body["certificateInstallationRes"].as_str().expect("exi"));
    assert_eq!(
        (code.as_str(), session.as_slice()),
        ("OK", &[1u8, 2, 3, 4, 5, 6, 7, 8][..])
    );
    verify_answer(&tree, v2g_root);
    let response = sandbox
        .http
        .get(sandbox.url(&format!(
            "/opnc/v1/ccp/signedcontractdata/{EMAID}/{EXAMPLE_PCID}"
        )))
        .bearer_auth(&oem_token)
        .send()
        .await
        .expect("opnc provide");
    assert_eq!(response.status(), 200, "ok/opnc-provide");
    let other_oem = sandbox.client(Role::Oem, &["XYZ"], &[], &[]).await;
    let response = sandbox
        .http
        .get(sandbox.url(&format!(
            "/v1/ccp/provideSignedContractData/{EMAID}/{EXAMPLE_PCID}"
        )))
        .bearer_auth(&other_oem.token)
        .send()
        .await
        .expect("provide");
    assert_eq!(response.status(), 403, "fail/other-oem");
    let response = sandbox
        .http
        .get(sandbox.url(&format!(
            "/v1/ccp/provideSignedContractData/{EMAID}/{EXAMPLE_PCID}?sessionID=zz"
        )))
        .bearer_auth(&oem_token)
        .send()
        .await
        .expect("provide");
    assert_eq!(response.status(), 400, "fail/bad-session-id");

    // Only CPOs (and chargers, admins) ask for installations.
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (status, _) = ocpp_install(&sandbox, &emsp.token, &exi).await;
    assert_eq!(status, 403, "fail/emsp-role");

    // A second contract on the vehicle: the answer counts it as remaining.
    let (status, body) = generate(&sandbox, &emsp.token, "DEPNCC00000002", EXAMPLE_PCID).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = ocpp_install(&sandbox, &cpo_token, &exi).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("Accepted")),
        "{body}"
    );
    assert_eq!(body["remainingContracts"], 1, "{body}");
    sandbox.stop().await;
}

/// OCPP 2.0.1's schema caps `exiResponse` at 5600 characters.
const OCPP_201_MAX_EXI_RESPONSE_CHARS: usize = 5600;

/// A generate-mode answer (pnc's contract chain and CPS chain) fits OCPP 2.0.1's
/// `exiResponse`, so statusInfo carries no ExiResponseTooLarge (nor anything else).
fn assert_fits_ocpp_201(body: &Value, what: &str) {
    let characters = body["exiResponse"].as_str().expect("exiResponse").len();
    eprintln!("{what}: exiResponse has {characters} base64 characters");
    assert!(
        characters <= OCPP_201_MAX_EXI_RESPONSE_CHARS,
        "{what}: exiResponse has {characters} characters, OCPP 2.0.1 allows 5600"
    );
    assert_ne!(
        body["statusInfo"]["reasonCode"], "ExiResponseTooLarge",
        "{what}: {body}"
    );
    assert!(body.get("statusInfo").is_none(), "{what}: {body}");
}

/// An eMSP's own MO PKI, whose certificates pnc does not shape: a 62-character organisation
/// in every DN and a long OCSP URL. Its chain makes the -2 answer too large for OCPP
/// 2.0.1; pnc still answers Accepted (the answer fits OCPP 2.1's 17000) and says so in
/// statusInfo.
async fn oversized_answer_is_flagged_on(backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    register_dev_vehicle(&sandbox, &pki).await;
    let emsp_pki = pnc_pki::DevPki::generate(&pnc_pki::DevPkiOptions {
        organization: "Example Mobility Operator GmbH - Contract Certificate Services".into(),
        ocsp_base_url:
            "http://127.0.0.1:9/example-mobility-operator/public-key-infrastructure/ocsp".into(),
        crl_base_url: None,
        ocsp_signers: false,
        ..pnc_pki::DevPkiOptions::default()
    })
    .expect("the eMSP's pki");
    let response = sandbox
        .http
        .put(sandbox.url("/v1/root/rootCerts"))
        .bearer_auth(&admin.token)
        .json(&json!({
            "caCertificate": STANDARD.encode(emsp_pki.certificate(DevCert::MoRoot).der()),
            "rootType": "MO",
        }))
        .send()
        .await
        .expect("put root");
    assert!(
        response.status().is_success(),
        "put the eMSP's MO root: {}",
        response.text().await.unwrap_or_default()
    );

    // The eMSP registers a contract from its own PKI, sealed to the vehicle.
    let (contract_data, contract) = emsp_contract_data(&emsp_pki, &pki, EMAID);
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let response = sandbox
        .http
        .put(sandbox.url("/v1/cps/contractData/signed"))
        .bearer_auth(&emsp.token)
        .json(&json!({
            "contractData": contract_data,
            "pcid": EXAMPLE_PCID,
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
        }))
        .send()
        .await
        .expect("sign");
    let status = response.status();
    assert_eq!(
        status,
        201,
        "register the eMSP's contract: {}",
        response.text().await.unwrap_or_default()
    );

    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;
    let v2g_root = pki.certificate(DevCert::V2gRoot);
    let vehicle = pki.software_signer(DevCert::OemProvisioning);
    let (_, exi) = installation_request(
        vehicle.as_ref(),
        pki.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![root_id(v2g_root)],
    );
    let (status, body) = ocpp_install(&sandbox, &cpo.token, &exi).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "Accepted", "{body}");
    let exi_response = body["exiResponse"].as_str().expect("exiResponse");
    eprintln!(
        "eMSP-PKI install: exiResponse has {} base64 characters",
        exi_response.len()
    );
    assert!(
        exi_response.len() > OCPP_201_MAX_EXI_RESPONSE_CHARS,
        "the eMSP's chain should not fit: {} characters",
        exi_response.len()
    );
    assert_eq!(
        body["statusInfo"]["reasonCode"], "ExiResponseTooLarge",
        "{body}"
    );
    assert_eq!(
        body["statusInfo"]["additionalInfo"],
        format!(
            "exiResponse has {} base64 characters; OCPP 2.0.1 allows 5600",
            exi_response.len()
        ),
        "{body}"
    );
    // The answer itself is whole and right.
    let (code, session, tree) = decode_answer(exi_response);
    assert_eq!((code.as_str(), session.as_slice()), ("OK", &SESSION_ID[..]));
    let answer = verify_answer(&tree, v2g_root);
    assert_eq!(answer.contract_chain[0], contract);
    open_contract_key(&pki, &answer);
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_oversized_answer_is_flagged_sqlite() {
    oversized_answer_is_flagged_on(Backend::Sqlite).await;
}

trait CcpCall {
    async fn sandbox_post_ccp(
        &self,
        token: &str,
        request_base64: &str,
        always_return_exi: Option<bool>,
    ) -> (u16, Value);
}

impl CcpCall for Sandbox {
    async fn sandbox_post_ccp(
        &self,
        token: &str,
        request_base64: &str,
        always_return_exi: Option<bool>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/v1/ccp/signedContractData"))
            .bearer_auth(token)
            .json(&json!({
                "certificateInstallationReq": request_base64,
                "xsdMsgDefNamespace": ISO2_NAMESPACE,
            }));
        if let Some(flag) = always_return_exi {
            request = request.header("alwaysReturnEXI", flag.to_string());
        }
        let response = request.send().await.expect("ccp");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn ok_install_answers_the_ev_sqlite() {
    install_answers_the_ev_on(Backend::Sqlite, SameProcessTransport::InProcess).await;
}

#[tokio::test]
async fn ok_install_answers_the_ev_postgres() {
    install_answers_the_ev_on(Backend::Postgres, SameProcessTransport::InProcess).await;
}

/// The same installation with gateway → provisioning → registry over mTLS gRPC on loopback,
/// as between separate processes (`pnc serve --only …`).
#[tokio::test]
async fn ok_install_answers_the_ev_over_mtls_sqlite() {
    install_answers_the_ev_on(Backend::Sqlite, SameProcessTransport::Mtls).await;
}

async fn install_failures_on(backend: Backend) {
    let Installation {
        sandbox,
        pki,
        cpo_token,
        emsp_token,
        ..
    } = installation_ready(backend).await;
    let v2g_root = pki.certificate(DevCert::V2gRoot);
    let now = OffsetDateTime::now_utc();
    let vehicle = pki.software_signer(DevCert::OemProvisioning);

    // fail/bad-signature: the body changed after signing.
    let (mut message, _) = installation_request(
        vehicle.as_ref(),
        pki.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![root_id(v2g_root)],
    );
    if let pnc_exi::iso2::Body::CertificateInstallationReq(request) = &mut message.body {
        request.list_of_root_certificate_ids[0].serial_number = "1".to_string();
    }
    let tampered = message.encode().expect("encode");

    // fail/expired: a registered-looking vehicle whose certificate ran out.
    // Inside the issuer's validity (the lint refuses anything else), already over.
    let issuer_start = pki.certificate(DevCert::OemSubCa2).not_before();
    let (expired_key, expired) = vehicle_certificate(
        &pki,
        EXAMPLE_PCID,
        issuer_start,
        issuer_start + Duration::minutes(30),
    );
    assert!(
        expired.not_after() < now,
        "the dev pki backdates its CAs by an hour"
    );
    let (_, expired_request) = installation_request(
        expired_key.as_ref(),
        &expired,
        &SESSION_ID,
        vec![root_id(v2g_root)],
    );

    // fail/unknown-pcid: a valid chain, but nobody registered or contracted this PCID.
    let (stranger_key, stranger) = vehicle_certificate(
        &pki,
        "PNCSTRANGERVEHIC1",
        issuer_start,
        now + Duration::days(30),
    );
    let (_, stranger_request) = installation_request(
        stranger_key.as_ref(),
        &stranger,
        &SESSION_ID,
        vec![root_id(v2g_root)],
    );

    // fail/foreign-chain: a vehicle from a PKI pnc does not trust.
    let foreign = pnc_pki::DevPki::generate(&pnc_pki::DevPkiOptions {
        ocsp_signers: false,
        ..pnc_pki::DevPkiOptions::default()
    })
    .expect("foreign pki");
    let (_, foreign_request) = installation_request(
        foreign.software_signer(DevCert::OemProvisioning).as_ref(),
        foreign.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![root_id(v2g_root)],
    );

    // fail/no-trusted-root: the EV trusts no V2G root pnc signs under.
    let (_, untrusting_request) = installation_request(
        vehicle.as_ref(),
        pki.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![root_id(foreign.certificate(DevCert::V2gRoot))],
    );

    for (name, exi, expected) in [
        ("fail/bad-signature", &tampered, "FAILED_SignatureError"),
        (
            "fail/expired",
            &expired_request,
            "FAILED_CertificateExpired",
        ),
        (
            "fail/unknown-pcid",
            &stranger_request,
            "FAILED_NoCertificateAvailable",
        ),
        ("fail/foreign-chain", &foreign_request, "FAILED"),
        (
            "fail/no-trusted-root",
            &untrusting_request,
            "FAILED_NoCertificateAvailable",
        ),
    ] {
        let (status, body) = ocpp_install(&sandbox, &cpo_token, exi).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(
            body["status"], "Accepted",
            "{name}: an ISO answer is an Accepted one"
        );
        let (code, session, tree) = decode_answer(body["exiResponse"].as_str().expect("exi"));
        assert_eq!(code, expected, "{name}: {body}");
        assert_eq!(session, SESSION_ID, "{name}: SessionID echoed");
        let header = tree.find("Header").expect("Header");
        assert!(
            header.find("Signature").is_none(),
            "{name}: negative answers are unsigned"
        );
        let reason = body["statusInfo"]["reasonCode"]
            .as_str()
            .unwrap_or_default();
        assert!(
            (1..=20).contains(&reason.len()),
            "{name}: OCPP reasonCode {reason}"
        );
        let info = body["statusInfo"]["additionalInfo"]
            .as_str()
            .unwrap_or_default();
        assert!(info.starts_with(expected), "{name}: {info}");
    }

    // OPCP: no contract → 404 still carrying the failure EXI; without alwaysReturnEXI the
    // OPCP error body.
    let (status, body) = sandbox
        .sandbox_post_ccp(&cpo_token, &STANDARD.encode(&stranger_request), None)
        .await;
    assert_eq!(status, 404, "{body}");
    let (code, _, _) = decode_answer(
        body["CCPResponse"]["emaidContent"][0]["messageDef"]["certificateInstallationRes"]
            .as_str()
            .expect("failure EXI"),
    );
    assert_eq!(code, "FAILED_NoCertificateAvailable");
    let (status, body) = sandbox
        .sandbox_post_ccp(&cpo_token, &STANDARD.encode(&stranger_request), Some(false))
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["errorMessages"].is_array(), "{body}");

    // Undecodable input: OCPP `Failed` without an ISO answer; OPCP 400.
    let (status, body) = ocpp_install(&sandbox, &cpo_token, &[0x80, 0x98, 0x02, 0x10]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "Failed", "fail/truncated-exi: {body}");
    assert!(body["statusInfo"]["reasonCode"].is_string());
    let (status, body) = sandbox
        .sandbox_post_ccp(&cpo_token, &STANDARD.encode([0x80, 0x98, 0x02, 0x10]), None)
        .await;
    assert_eq!(status, 400, "fail/truncated-exi opcp: {body}");
    let (status, body) = sandbox
        .sandbox_post_ccp(&cpo_token, "%%%not-base64", None)
        .await;
    assert_eq!(status, 400, "fail/bad-base64: {body}");

    // fail/cancelled: the eMSP cancels the contract; the vehicle is still fine.
    let (_, good_request) = installation_request(
        vehicle.as_ref(),
        pki.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![root_id(v2g_root)],
    );
    let response = sandbox
        .http
        .delete(sandbox.url(&format!("/v1/ccp/signedContractData/{EMAID}")))
        .bearer_auth(&emsp_token)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 200, "cancel the contract");
    let (_, body) = ocpp_install(&sandbox, &cpo_token, &good_request).await;
    let (code, _, _) = decode_answer(body["exiResponse"].as_str().expect("exi"));
    assert_eq!(code, "FAILED_ContractCanceled", "fail/cancelled: {body}");

    // fail/revoked: pnc issued the example vehicle's certificate (dev PKI) and revokes it;
    // revocation is checked before the contract.
    let issued = pnc_registry::issued::IssuedStore::new(
        pnc_registry::open_database(&sandbox.storage())
            .await
            .expect("registry database"),
    );
    let vehicle_certificate = pki.certificate(DevCert::OemProvisioning);
    let issuer_key_id = pki
        .certificate(DevCert::OemSubCa2)
        .subject_key_identifier()
        .expect("ski")
        .to_vec();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    // The issuance records are seeded in the background at start.
    while let Err(error) = issued
        .revoke(&issuer_key_id, vehicle_certificate.serial(), 1)
        .await
    {
        assert!(tokio::time::Instant::now() < deadline, "revoke: {error}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, body) = ocpp_install(&sandbox, &cpo_token, &good_request).await;
    let (code, _, _) = decode_answer(body["exiResponse"].as_str().expect("exi"));
    assert_eq!(code, "FAILED_CertificateRevoked", "fail/revoked: {body}");
    sandbox.stop().await;
}

#[tokio::test]
async fn fail_install_codes_sqlite() {
    install_failures_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn fail_install_codes_postgres() {
    install_failures_on(Backend::Postgres).await;
}

/// Installation latency through the HTTP edge (sequential and at concurrency 16). A
/// measurement, not a timed test: `cargo test -p pnc-tests --test ev_install -- --ignored
/// --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand"]
async fn measure_install_latency() {
    let Installation {
        sandbox,
        pki,
        cpo_token,
        ..
    } = installation_ready(Backend::Sqlite).await;
    let (_, exi) = installation_request(
        pki.software_signer(DevCert::OemProvisioning).as_ref(),
        pki.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![root_id(pki.certificate(DevCert::V2gRoot))],
    );
    for _ in 0..20 {
        let (status, _) = ocpp_install(&sandbox, &cpo_token, &exi).await;
        assert_eq!(status, 200);
    }
    let percentile = |samples: &mut Vec<std::time::Duration>, p: f64| {
        samples.sort();
        samples[((samples.len() as f64 - 1.0) * p).round() as usize]
    };
    let mut sequential = Vec::new();
    for _ in 0..200 {
        let started = std::time::Instant::now();
        let (status, body) = ocpp_install(&sandbox, &cpo_token, &exi).await;
        sequential.push(started.elapsed());
        assert_eq!(body["status"], "Accepted", "{status}");
    }
    eprintln!(
        "concurrency 1: p50 {:?} p99 {:?}",
        percentile(&mut sequential, 0.5),
        percentile(&mut sequential, 0.99)
    );
    let sandbox = std::sync::Arc::new(sandbox);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (sandbox, token, exi) = (sandbox.clone(), cpo_token.clone(), exi.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for _ in 0..25 {
                let begun = std::time::Instant::now();
                let (_, body) = ocpp_install(&sandbox, &token, &exi).await;
                latencies.push(begun.elapsed());
                assert_eq!(body["status"], "Accepted");
            }
            latencies
        }));
    }
    let mut concurrent = Vec::new();
    for task in tasks {
        concurrent.extend(task.await.expect("task"));
    }
    let elapsed = started.elapsed();
    eprintln!(
        "concurrency 16: {} installs in {elapsed:?} ({:.0}/s), p50 {:?} p99 {:?}",
        concurrent.len(),
        concurrent.len() as f64 / elapsed.as_secs_f64(),
        percentile(&mut concurrent, 0.5),
        percentile(&mut concurrent, 0.99)
    );
}

/// The reference EXI codec (EXIficient, ../shared/tools/exi-oracle): encodes or decodes one
/// document or fragment.
fn oracle(mode: &str, schema: &str, fragment: bool, input: &[u8]) -> Vec<u8> {
    let directory = tempfile::tempdir().expect("temp dir");
    let input_path = directory.path().join("in");
    let output_path = directory.path().join("out");
    std::fs::write(&input_path, input).expect("write oracle input");
    let tool = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/tools/exi-oracle/exi-oracle");
    let mut command = std::process::Command::new(tool);
    command.arg(mode).arg(schema);
    if fragment {
        command.arg("--fragment");
    }
    let status = command
        .arg(&input_path)
        .arg(&output_path)
        .status()
        .expect("the exi-oracle runs (needs bash, java 17+, python3)");
    assert!(status.success(), "exi-oracle {mode} {schema} failed");
    std::fs::read(&output_path).expect("oracle output")
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    openssl::sha::sha256(bytes).to_vec()
}

/// Interop: the EV's EXI (request document, the digest fragment, SignedInfo) comes from the
/// reference codec, not pnc's; pnc's answer is decoded by the reference codec, and its four
/// digests and the signature are recomputed over fragments the reference codec encodes —
/// including the eMAID element fragment where libcbv2g-based stacks differ (notes §6.4).
async fn interop_with_reference_codec_on(backend: Backend) {
    use pnc_exi::iso2::{Body, CertificateInstallationReq, MessageHeader, V2gMessage};
    use pnc_exi::signature::{C14N_EXI, DIGEST_SHA256, ECDSA_SHA256};
    use pnc_exi::xmldsig::{Reference, Signature, SignedInfo};

    let Installation {
        sandbox,
        pki,
        cpo_token,
        ..
    } = installation_ready(backend).await;
    let v2g_root = pki.certificate(DevCert::V2gRoot);
    let vehicle = pki.software_signer(DevCert::OemProvisioning);

    // The EV, on the reference codec.
    let request = CertificateInstallationReq {
        id: "ID1".to_string(),
        oem_provisioning_cert: pki.certificate(DevCert::OemProvisioning).der().to_vec(),
        list_of_root_certificate_ids: vec![root_id(v2g_root)],
    };
    let body_fragment = oracle(
        "encode",
        "iso-2",
        true,
        pnc_exi::xml::write(&request.to_element().expect("element")).as_bytes(),
    );
    let signed_info = SignedInfo {
        id: None,
        canonicalization_method: C14N_EXI.to_string(),
        signature_method: ECDSA_SHA256.to_string(),
        hmac_output_length: None,
        references: vec![Reference {
            id: None,
            uri: Some("#ID1".to_string()),
            type_: None,
            transforms: Some(vec![C14N_EXI.to_string()]),
            digest_method: DIGEST_SHA256.to_string(),
            digest_value: sha256(&body_fragment),
        }],
    };
    let signed_info_exi = oracle(
        "encode",
        "xmldsig",
        true,
        pnc_exi::xml::write(&signed_info.to_element().expect("element")).as_bytes(),
    );
    let message = V2gMessage {
        header: MessageHeader {
            session_id: SESSION_ID.to_vec(),
            notification: None,
            signature: Some(Signature {
                id: None,
                signed_info,
                signature_value: pnc_pki::Signer::sign_raw(vehicle.as_ref(), &signed_info_exi)
                    .expect("sign"),
                signature_value_id: None,
                has_key_info: false,
                has_object: false,
            }),
        },
        body: Body::CertificateInstallationReq(request),
    };
    let request_exi = oracle(
        "encode",
        "iso-2",
        false,
        pnc_exi::xml::write(&message.to_element().expect("element")).as_bytes(),
    );

    let (status, body) = ocpp_install(&sandbox, &cpo_token, &request_exi).await;
    assert_eq!(status, 200, "{body}");
    let (code, _, _) = decode_answer(body["exiResponse"].as_str().expect("exi"));
    assert_eq!(code, "OK", "{body}");

    // The EV reads pnc's answer with the reference codec.
    let answer_exi = STANDARD
        .decode(body["exiResponse"].as_str().expect("exi"))
        .expect("base64");
    let answer_xml =
        String::from_utf8(oracle("decode", "iso-2", false, &answer_exi)).expect("utf-8");
    let answer = pnc_exi::xml::parse(&answer_xml).expect("xml").normalized();
    let header = answer.find("Header").expect("Header");
    assert_eq!(
        header
            .find("SessionID")
            .expect("SessionID")
            .text_content()
            .trim(),
        hex::encode_upper(SESSION_ID),
        "SessionID echoed"
    );
    let signature = header.find("Signature").expect("Signature");
    let signed_info = signature.find("SignedInfo").expect("SignedInfo");
    let res = answer
        .find("Body")
        .and_then(|body| body.find("CertificateInstallationRes"))
        .expect("CertificateInstallationRes");
    let mut checked = Vec::new();
    for reference in signed_info.find_all("Reference") {
        let id = reference
            .attr_value("URI")
            .and_then(|uri| uri.strip_prefix('#'))
            .expect("#Id");
        let element = res
            .elements()
            .find(|element| element.attr_value("Id") == Some(id))
            .expect("the referenced element");
        let fragment = oracle(
            "encode",
            "iso-2",
            true,
            pnc_exi::xml::write(element).as_bytes(),
        );
        let digest = STANDARD
            .decode(
                reference
                    .find("DigestValue")
                    .expect("DigestValue")
                    .text_content()
                    .trim(),
            )
            .expect("base64");
        assert_eq!(
            sha256(&fragment),
            digest,
            "the reference codec reproduces the digest of {}",
            element.name.local
        );
        checked.push(element.name.local.to_string());
    }
    checked.sort();
    assert_eq!(
        checked,
        [
            "ContractSignatureCertChain",
            "ContractSignatureEncryptedPrivateKey",
            "DHpublickey",
            "eMAID"
        ]
    );
    let signed_info_exi = oracle(
        "encode",
        "xmldsig",
        true,
        pnc_exi::xml::write(signed_info).as_bytes(),
    );
    let signature_value = STANDARD
        .decode(
            signature
                .find("SignatureValue")
                .expect("SignatureValue")
                .text_content()
                .trim(),
        )
        .expect("base64");
    let cps_leaf = STANDARD
        .decode(
            res.find("SAProvisioningCertificateChain")
                .and_then(|chain| chain.find("Certificate"))
                .expect("CPS leaf")
                .text_content()
                .trim(),
        )
        .expect("base64");
    assert_eq!(cps_leaf, pki.certificate(DevCert::CpsLeaf).der());
    let key = pnc_exi::signature::public_key_from_cert_der(&cps_leaf).expect("key");
    pnc_exi::signature::verify_raw(
        pnc_exi::signature::Profile::Iso2,
        &key,
        &signed_info_exi,
        &signature_value,
    )
    .expect("the signature verifies over the reference codec's SignedInfo");
    // And the key the EV decrypts is the contract certificate's.
    let parts = verify_answer(&answer, v2g_root);
    assert_eq!(parts.emaid, EMAID);
    open_contract_key(&pki, &parts);
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_install_interop_with_reference_codec_sqlite() {
    interop_with_reference_codec_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_install_interop_with_reference_codec_postgres() {
    interop_with_reference_codec_on(Backend::Postgres).await;
}

/// OCPP 1.6 chargers send the same request inside DataTransfer (the OCA PnC application
/// note): `data` is the 2.0.1 message as a JSON string, and so is the answer.
#[tokio::test]
async fn ok_ocpp16_data_transfer_sqlite() {
    let Installation {
        sandbox,
        pki,
        cpo_token,
        ..
    } = installation_ready(Backend::Sqlite).await;
    let (_, exi) = installation_request(
        pki.software_signer(DevCert::OemProvisioning).as_ref(),
        pki.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![root_id(pki.certificate(DevCert::V2gRoot))],
    );
    let inner = json!({
        "iso15118SchemaVersion": ISO2_NAMESPACE,
        "action": "Install",
        "exiRequest": STANDARD.encode(&exi),
    });
    let call = |vendor: &str, message: &str| {
        sandbox
            .http
            .post(sandbox.url("/v1/ocpp16/data-transfer"))
            .bearer_auth(&cpo_token)
            .json(&json!({
                "vendorId": vendor,
                "messageId": message,
                "data": inner.to_string(),
            }))
            .send()
    };
    let response = call(
        "org.openchargealliance.iso15118pnc",
        "Get15118EVCertificate",
    )
    .await
    .expect("data transfer");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "Accepted");
    let answer: Value =
        serde_json::from_str(body["data"].as_str().expect("data is a string")).expect("json");
    assert_eq!(answer["status"], "Accepted");
    let (code, session, tree) = decode_answer(answer["exiResponse"].as_str().expect("exi"));
    assert_eq!((code.as_str(), session.as_slice()), ("OK", &SESSION_ID[..]));
    verify_answer(&tree, pki.certificate(DevCert::V2gRoot));

    let body: Value = call("iso15118", "Get15118EVCertificate")
        .await
        .expect("data transfer")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "UnknownVendorId", "fail/unknown-vendor");
    let body: Value = call("org.openchargealliance.iso15118pnc", "Heartbeat")
        .await
        .expect("data transfer")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "UnknownMessageId", "fail/unknown-message");
    sandbox.stop().await;
}

async fn ocpp_update(sandbox: &Sandbox, token: &str, exi: &[u8]) -> Value {
    let response = sandbox
        .http
        .post(sandbox.url("/v1/ocpp/get-15118-ev-certificate"))
        .bearer_auth(token)
        .json(&json!({
            "iso15118SchemaVersion": ISO2_NAMESPACE,
            "action": "Update",
            "exiRequest": STANDARD.encode(exi),
        }))
        .send()
        .await
        .expect("update");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

fn update_code(body: &Value) -> (String, pnc_exi::Element) {
    let exi = STANDARD
        .decode(body["exiResponse"].as_str().expect("exiResponse"))
        .expect("base64");
    let root = pnc_exi::decode_document(pnc_exi::Schema::Iso2, &exi).expect("decodes");
    let message = pnc_exi::iso2::V2gMessage::from_element(&root).expect("typed");
    assert_eq!(message.header.session_id, SESSION_ID, "SessionID echoed");
    let pnc_exi::iso2::Body::CertificateUpdateRes(res) = &message.body else {
        panic!("not a CertificateUpdateRes: {body}");
    };
    (res.response_code.as_str().to_string(), root)
}

/// The contract is renewed: the EV updates with its current contract key, decrypts the new
/// key with the old one, and later installations get the renewed contract.
async fn update_renews_on(backend: Backend) {
    let Installation {
        sandbox,
        pki,
        cpo_token,
        ..
    } = installation_ready(backend).await;
    let v2g_root = pki.certificate(DevCert::V2gRoot);
    let vehicle = pki.software_signer(DevCert::OemProvisioning);
    let (_, install_exi) = installation_request(
        vehicle.as_ref(),
        pki.certificate(DevCert::OemProvisioning),
        &SESSION_ID,
        vec![root_id(v2g_root)],
    );
    let (_, body) = ocpp_install(&sandbox, &cpo_token, &install_exi).await;
    let (_, _, tree) = decode_answer(body["exiResponse"].as_str().expect("exi"));
    let installed = verify_answer(&tree, v2g_root);
    let old_key = open_contract_key(&pki, &installed);

    let body = ocpp_update(
        &sandbox,
        &cpo_token,
        &update_request(
            &SESSION_ID,
            &old_key,
            &installed.contract_chain,
            EMAID,
            vec![root_id(v2g_root)],
        ),
    )
    .await;
    assert_eq!(body["status"], "Accepted", "{body}");
    let (code, tree) = update_code(&body);
    assert_eq!(code, "OK", "{body}");
    assert_fits_ocpp_201(&body, "update");
    let renewed = verify_answer(&tree, v2g_root);
    assert_eq!(renewed.emaid, EMAID);
    assert_ne!(
        renewed.contract_chain[0], installed.contract_chain[0],
        "a new certificate"
    );
    pnc_pki::validate_path(
        renewed.contract_chain[0].der(),
        &[
            renewed.contract_chain[1].der(),
            renewed.contract_chain[2].der(),
        ],
        &[pki.certificate(DevCert::MoRoot).der()],
        OffsetDateTime::now_utc(),
    )
    .expect("the renewal chains to the MO root");
    // [V2G2-821]: the new key is sealed to the old contract certificate's key.
    let new_key = open_contract_key_with(&old_key, &renewed);
    assert_ne!(new_key.spki(), old_key.spki());

    // The vehicle's next installation gets the renewed contract, sealed to the vehicle.
    let (_, body) = ocpp_install(&sandbox, &cpo_token, &install_exi).await;
    let (_, _, tree) = decode_answer(body["exiResponse"].as_str().expect("exi"));
    let reinstalled = verify_answer(&tree, v2g_root);
    assert_eq!(reinstalled.contract_chain[0], renewed.contract_chain[0]);
    open_contract_key(&pki, &reinstalled);

    // fail/old-certificate: the replaced certificate no longer names a live contract.
    let body = ocpp_update(
        &sandbox,
        &cpo_token,
        &update_request(
            &SESSION_ID,
            &old_key,
            &installed.contract_chain,
            EMAID,
            vec![root_id(v2g_root)],
        ),
    )
    .await;
    let (code, tree) = update_code(&body);
    assert_eq!(code, "FAILED_NoCertificateAvailable", "{body}");
    let retry = tree
        .find("Body")
        .and_then(|body| body.find("CertificateUpdateRes"))
        .and_then(|res| res.find("RetryCounter"))
        .map(|retry| retry.text_content());
    assert_eq!(
        retry.as_deref(),
        Some("0"),
        "RetryCounter with NoCertificateAvailable"
    );

    // fail/bad-signature: signed with a key that is not the contract's.
    let body = ocpp_update(
        &sandbox,
        &cpo_token,
        &update_request(
            &SESSION_ID,
            &old_key,
            &renewed.contract_chain,
            EMAID,
            vec![root_id(v2g_root)],
        ),
    )
    .await;
    assert_eq!(update_code(&body).0, "FAILED_SignatureError", "{body}");

    // fail/foreign-chain: a contract chain from a PKI pnc does not trust.
    let foreign = pnc_pki::DevPki::generate(&pnc_pki::DevPkiOptions {
        ocsp_signers: false,
        ..pnc_pki::DevPkiOptions::default()
    })
    .expect("foreign pki");
    let foreign_key = pnc_pki::key_transport::iso2::generate_contract_key().expect("key");
    let foreign_contract = foreign
        .issue_contract(EMAID, foreign_key.public_key_spki_der(), Duration::days(30))
        .expect("contract");
    let foreign_held = HeldKey::from_scalar(foreign_key.private_key());
    let body = ocpp_update(
        &sandbox,
        &cpo_token,
        &update_request(
            &SESSION_ID,
            &foreign_held,
            &[
                foreign_contract,
                foreign.certificate(DevCert::MoSubCa2).clone(),
                foreign.certificate(DevCert::MoSubCa1).clone(),
            ],
            EMAID,
            vec![root_id(v2g_root)],
        ),
    )
    .await;
    assert_eq!(update_code(&body).0, "FAILED_CertChainError", "{body}");

    // fail/wrong-emaid: the body's eMAID is not the certificate's.
    let body = ocpp_update(
        &sandbox,
        &cpo_token,
        &update_request(
            &SESSION_ID,
            &new_key,
            &renewed.contract_chain,
            "DEPNCC00000009",
            vec![root_id(v2g_root)],
        ),
    )
    .await;
    assert_eq!(update_code(&body).0, "FAILED", "{body}");

    // fail/action-mismatch: an Update body sent as Install has no ISO answer.
    let (_, body) = ocpp_install(
        &sandbox,
        &cpo_token,
        &update_request(
            &SESSION_ID,
            &new_key,
            &renewed.contract_chain,
            EMAID,
            vec![root_id(v2g_root)],
        ),
    )
    .await;
    assert_eq!(body["status"], "Failed", "{body}");
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_update_renews_sqlite() {
    update_renews_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_update_renews_postgres() {
    update_renews_on(Backend::Postgres).await;
}
