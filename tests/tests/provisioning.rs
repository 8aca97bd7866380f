//! pnc as CA and CPS, end to end through the HTTP edge on both backends: the dev PKI is in
//! place at start, an eMSP generates a contract for a registered vehicle, and what pnc stores
//! and answers verifies the way an EV and an independent profile check see it.

mod provisioning_support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_pki::dev::DevCert;
use pnc_pki::profile::{self, Profile};
use pnc_pki::validate_path;
use pnc_proto::principal::Role;
use pnc_tests::{Backend, Sandbox};
use provisioning_support::*;
use serde_json::Value;
use time::OffsetDateTime;

async fn generate_verifies_on(backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;

    // GET /cps/signer shows pnc's CPS leaf under its V2G root.
    let response = sandbox
        .http
        .get(sandbox.url("/cps/signer"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("cps signer");
    assert_eq!(response.status(), 200);
    let signers: Value = response.json().await.expect("json");
    let first = &signers["cpsCertificates"][0];
    assert_eq!(
        first["cpsCertificate"].as_str(),
        Some(
            STANDARD
                .encode(pki.certificate(DevCert::CpsLeaf).der())
                .as_str()
        )
    );
    assert_eq!(
        first["cpsV2GRootCertificateFingerprint"].as_str(),
        Some(hex::encode(pki.certificate(DevCert::V2gRoot).sha256_fingerprint()).as_str())
    );

    register_dev_vehicle(&sandbox, &pki).await;

    // A newly added eMSP client generates at once.
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (status, body) = generate(&sandbox, &emsp.token, "de-pnc-c00000001", EXAMPLE_PCID).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["emaid"].as_str(),
        Some(EMAID),
        "stored in registered form"
    );
    assert_eq!(body["pcid"].as_str(), Some(EXAMPLE_PCID));

    // The CPS's signed XML verifies like an EV verifies the EXI answer.
    let xml = String::from_utf8(
        STANDARD
            .decode(body["signedData"].as_str().expect("signedData"))
            .expect("base64"),
    )
    .expect("utf-8");
    assert!(
        !xml.contains("SessionID"),
        "OPCP's signedData carries no SessionID"
    );
    let message = pnc_exi::xml::parse(&xml).expect("signed xml parses");
    let answer = verify_answer(&message, pki.certificate(DevCert::V2gRoot));
    assert_eq!(answer.emaid, EMAID);
    assert_eq!(answer.cps_chain[0], *pki.certificate(DevCert::CpsLeaf));

    // The contract certificate: Annex F contract profile, CN = eMAID, chained
    // Sub-CA 2, Sub-CA 1 to the MO root, valid from contractBegins.
    let contract = &answer.contract_chain[0];
    let report = profile::check(contract, Some(Profile::Contract)).expect("report");
    assert!(
        report.passed(),
        "pnc pki check --profile contract: {:?}",
        report.findings
    );
    assert_eq!(contract.common_name(), Some(EMAID));
    assert_eq!(
        answer.contract_chain[1],
        *pki.certificate(DevCert::MoSubCa2)
    );
    assert_eq!(
        answer.contract_chain[2],
        *pki.certificate(DevCert::MoSubCa1)
    );
    validate_path(
        contract.der(),
        &[
            answer.contract_chain[1].der(),
            answer.contract_chain[2].der(),
        ],
        &[pki.certificate(DevCert::MoRoot).der()],
        OffsetDateTime::now_utc(),
    )
    .expect("the contract chains to the MO root");
    // contractBegins (30 days ago) clamped to the issuer's validity; contractEnds kept.
    assert_eq!(
        contract.not_before(),
        pki.certificate(DevCert::MoSubCa2).not_before(),
        "valid from contractBegins, clamped to the issuer"
    );
    let until_end = contract.not_after() - OffsetDateTime::now_utc();
    assert!(
        until_end > time::Duration::days(364) && until_end <= time::Duration::days(365),
        "valid to contractEnds: {until_end}"
    );
    // The sealed key opens with the example vehicle's key and matches the certificate.
    open_contract_key(&pki, &answer);

    // The issuance was recorded with the contract, so OCSP and CRLs answer for it.
    let issued = pnc_registry::issued::IssuedStore::new(
        pnc_registry::open_database(&sandbox.storage())
            .await
            .expect("registry database"),
    )
    .get(
        &pnc_proto::registry::v1::get_issued_request::Issuer::IssuerKeyId(
            pki.certificate(DevCert::MoSubCa2)
                .subject_key_identifier()
                .expect("ski")
                .to_vec(),
        ),
        contract.serial(),
    )
    .await
    .expect("the contract certificate's issuance record");
    assert_eq!(issued.profile, "contract");
    assert_eq!(
        issued.status,
        pnc_proto::registry::v1::IssuedStatus::Good as i32
    );

    sandbox.stop().await;
}

#[tokio::test]
async fn ok_generate_verifies_sqlite() {
    generate_verifies_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_generate_verifies_postgres() {
    generate_verifies_on(Backend::Postgres).await;
}

async fn generate_refusals_on(backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    let oem = register_dev_vehicle(&sandbox, &pki).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let other_emsp = sandbox.client(Role::Emsp, &[], &["FRXYZ"], &[]).await;
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DEPNC"]).await;

    let cases: [(&str, &str, &str, &str, u16); 6] = [
        (
            "fail/other-provider",
            &other_emsp.token,
            EMAID,
            EXAMPLE_PCID,
            403,
        ),
        ("fail/oem-role", &oem.token, EMAID, EXAMPLE_PCID, 403),
        ("fail/cpo-role", &cpo.token, EMAID, EXAMPLE_PCID, 403),
        (
            "fail/unknown-pcid",
            &emsp.token,
            EMAID,
            "PNCUNKNOWNVEHIC01",
            400,
        ),
        (
            "fail/malformed-emaid",
            &emsp.token,
            "DE-PNC-1",
            EXAMPLE_PCID,
            400,
        ),
        ("fail/malformed-pcid", &emsp.token, EMAID, "PNC-1", 400),
    ];
    for (name, token, emaid, pcid, expected) in cases {
        let (status, body) = generate(&sandbox, token, emaid, pcid).await;
        assert_eq!(status, expected, "{name}: {body}");
        let messages = body["errorMessages"].as_array().expect("OPCP error body");
        assert!(!messages.is_empty(), "{name}");
        assert!(body["traceId"].is_string(), "{name}");
        if name == "fail/unknown-pcid" {
            assert!(
                messages[0]
                    .as_str()
                    .unwrap_or_default()
                    .contains("not available"),
                "{name}: {body}"
            );
        }
    }
    // No token: 401 before the body is looked at.
    let response = sandbox
        .http
        .put(sandbox.url("/v1/cps/generate/signedContractData"))
        .body("not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401, "fail/no-token");
    // A contract that ended already.
    let response = sandbox
        .http
        .put(sandbox.url("/v1/cps/generate/signedContractData"))
        .bearer_auth(&emsp.token)
        .json(&serde_json::json!({
            "contractBegins": "2020-01-01T00:00:00Z",
            "contractEnds": "2021-01-01T00:00:00Z",
            "emaid": EMAID,
            "pcid": EXAMPLE_PCID,
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400, "fail/contract-ended");
    sandbox.stop().await;
}

#[tokio::test]
async fn fail_generate_refusals_sqlite() {
    generate_refusals_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn fail_generate_refusals_postgres() {
    generate_refusals_on(Backend::Postgres).await;
}

/// eMSP PKI mode: the eMSP brings its own contract chain and sealed key; pnc's CPS signs.
async fn emsp_pki_sign_on(backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;

    // The eMSP's contract: here issued under pnc's MO Sub-CA 2 (a registered MO root).
    let (contract_data, contract) = emsp_contract_data(&pki, &pki, EMAID);
    let body = serde_json::json!({
        "contractData": contract_data,
        "xsdMsgDefNamespace": ISO2_NAMESPACE,
    });
    let response = sandbox
        .http
        .put(sandbox.url("/v1/cps/contractData/signed"))
        .bearer_auth(&emsp.token)
        .json(&body)
        .send()
        .await
        .expect("sign");
    assert_eq!(response.status(), 201, "ok/sign-and-return");
    let signed: Value = response.json().await.expect("json");
    let xml = String::from_utf8(
        STANDARD
            .decode(signed["signedData"].as_str().expect("signedData"))
            .expect("base64"),
    )
    .expect("utf-8");
    let answer = verify_answer(
        &pnc_exi::xml::parse(&xml).expect("xml"),
        pki.certificate(DevCert::V2gRoot),
    );
    assert_eq!(answer.contract_chain[0], contract);
    open_contract_key(&pki, &answer);

    // A chain from a PKI pnc does not know is refused.
    let foreign = pnc_pki::DevPki::generate(&pnc_pki::DevPkiOptions {
        ocsp_signers: false,
        ..pnc_pki::DevPkiOptions::default()
    })
    .expect("foreign pki");
    let mut foreign_body = body.clone();
    foreign_body["contractData"] = emsp_contract_data(&foreign, &pki, EMAID).0;
    let response = sandbox
        .http
        .put(sandbox.url("/v1/cps/contractData/signed"))
        .bearer_auth(&emsp.token)
        .json(&foreign_body)
        .send()
        .await
        .expect("sign");
    assert_eq!(response.status(), 400, "fail/foreign-chain");

    // Another provider's contract is not this eMSP's to sign.
    let other = sandbox.client(Role::Emsp, &[], &["FRXYZ"], &[]).await;
    let response = sandbox
        .http
        .put(sandbox.url("/v1/cps/contractData/signed"))
        .bearer_auth(&other.token)
        .json(&body)
        .send()
        .await
        .expect("sign");
    assert_eq!(response.status(), 403, "fail/other-provider");

    // Key material of the wrong shape.
    let mut short_key = body.clone();
    short_key["contractData"]["contractSignatureEncryptedPrivateKey"] =
        Value::String(STANDARD.encode([0u8; 47]));
    let response = sandbox
        .http
        .put(sandbox.url("/v1/cps/contractData/signed"))
        .bearer_auth(&emsp.token)
        .json(&short_key)
        .send()
        .await
        .expect("sign");
    assert_eq!(response.status(), 400, "fail/short-encrypted-key");
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_emsp_pki_sign_sqlite() {
    emsp_pki_sign_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_emsp_pki_sign_postgres() {
    emsp_pki_sign_on(Backend::Postgres).await;
}

/// OPNC v1 CPS: generate-and-sign answers with the EXI CertificateInstallationRes, the CPS
/// chains are listed, and the eMSP root choice is honoured.
async fn opnc_cps_on(backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    register_dev_vehicle(&sandbox, &pki).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let now = OffsetDateTime::now_utc();
    let mo_root = hex::encode(pki.certificate(DevCert::MoRoot).sha256_fingerprint());
    let request = |mo_root: &str| {
        serde_json::json!({
            "contractBegins": rfc3339(now),
            "contractEnds": rfc3339(now + time::Duration::days(90)),
            "emaid": EMAID,
            "pcid": EXAMPLE_PCID,
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
            "moRootCertificateFingerprint": mo_root,
        })
    };
    let response = sandbox
        .http
        .put(sandbox.url("/opnc/v1/cps/contractData/generateandsign"))
        .bearer_auth(&emsp.token)
        .header("OPNC-from-party-type", "emsp")
        .header("OPNC-from-party-id", "DE-PNC")
        .json(&request(&mo_root))
        .send()
        .await
        .expect("generateandsign");
    assert_eq!(response.status(), 201, "ok/generateandsign");
    let body: Value = response.json().await.expect("json");
    let signed = &body["signedContractData"];
    assert_eq!(signed["emaid"], EMAID);
    assert_eq!(signed["pcid"], EXAMPLE_PCID);
    let exi = STANDARD
        .decode(signed["certificateInstallationRes"].as_str().expect("exi"))
        .expect("base64");
    let tree = pnc_exi::decode_document(pnc_exi::Schema::Iso2, &exi).expect("EXI decodes");
    let answer = verify_answer(&tree, pki.certificate(DevCert::V2gRoot));
    open_contract_key(&pki, &answer);

    let response = sandbox
        .http
        .put(sandbox.url("/opnc/v1/cps/contractData/generateandsign"))
        .bearer_auth(&emsp.token)
        .json(&request(&"ab".repeat(32)))
        .send()
        .await
        .expect("generateandsign");
    assert_eq!(response.status(), 400, "fail/other-mo-root");

    let response = sandbox
        .http
        .put(sandbox.url("/opnc/v1/cps/contractData/generateandsign"))
        .bearer_auth(&emsp.token)
        .header("OPNC-from-party-type", "car")
        .json(&request(&mo_root))
        .send()
        .await
        .expect("generateandsign");
    assert_eq!(response.status(), 400, "fail/bad-routing-header");

    let response = sandbox
        .http
        .get(sandbox.url("/opnc/v1/cps/cpsCertificates"))
        .bearer_auth(&emsp.token)
        .send()
        .await
        .expect("cps certificates");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let chain = &body["cpsCertificateDataCollection"][0]["cpsCertificateChain"];
    assert_eq!(
        chain["certificate"].as_str(),
        Some(
            STANDARD
                .encode(pki.certificate(DevCert::CpsLeaf).der())
                .as_str()
        )
    );
    assert_eq!(
        chain["subCa2Certificate"].as_str(),
        Some(
            STANDARD
                .encode(pki.certificate(DevCert::CpsSubCa2).der())
                .as_str()
        )
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_opnc_cps_sqlite() {
    opnc_cps_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_opnc_cps_postgres() {
    opnc_cps_on(Backend::Postgres).await;
}

/// Hubject's layout (`pki.mo_sub_cas_under_v2g_root`): contracts chain through pnc's MO
/// Sub-CAs to its V2G root, and EVs that trust that root get them.
async fn hubject_layout_on(backend: Backend) {
    let sandbox = Sandbox::start_with(backend, |config| {
        config.pki.mo_sub_cas_under_v2g_root = true
    })
    .await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    register_dev_vehicle(&sandbox, &pki).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (status, body) = generate(&sandbox, &emsp.token, EMAID, EXAMPLE_PCID).await;
    assert_eq!(status, 201, "{body}");
    let xml = String::from_utf8(
        STANDARD
            .decode(body["signedData"].as_str().expect("signedData"))
            .expect("base64"),
    )
    .expect("utf-8");
    let v2g_root = pki.certificate(DevCert::V2gRoot);
    let answer = verify_answer(&pnc_exi::xml::parse(&xml).expect("xml"), v2g_root);
    let chain = &answer.contract_chain;
    assert_ne!(
        chain[1],
        *pki.certificate(DevCert::MoSubCa2),
        "not the MO-root Sub-CA"
    );
    validate_path(
        chain[0].der(),
        &[chain[1].der(), chain[2].der()],
        &[v2g_root.der()],
        OffsetDateTime::now_utc(),
    )
    .expect("the contract chains to the V2G root");
    assert!(
        validate_path(
            chain[0].der(),
            &[chain[1].der(), chain[2].der()],
            &[pki.certificate(DevCert::MoRoot).der()],
            OffsetDateTime::now_utc(),
        )
        .is_err(),
        "and not to the MO root"
    );
    open_contract_key(&pki, &answer);
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_hubject_layout_sqlite() {
    hubject_layout_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_hubject_layout_postgres() {
    hubject_layout_on(Backend::Postgres).await;
}
