//! The registry end to end, on SQLite and PostgreSQL: the provisioning certificate pool,
//! contract management, scopes across tenants, the audit chain and webhooks.

mod provisioning_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_pki::dev::{DevCert, DevPki, DevPkiOptions, KEYS_DIR};
use pnc_pki::keystore::{Kek, KeyStore};
use pnc_pki::{Certificate, CertificateTemplate, Profile, SubjectName, issue};
use pnc_proto::principal::Role;
use pnc_registry::audit::Verdict;
use pnc_tests::{Backend, Sandbox, TestClient};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ISO2: &str = "urn:iso:15118:2:2013:MsgDef";

/// The sandbox's dev PKI, as the provisioning service loads it.
fn dev_pki(sandbox: &Sandbox) -> DevPki {
    let directory = sandbox.data_dir.path().join("pki");
    let kek = Kek::load(&directory.join("kek")).expect("kek");
    let key_store = KeyStore::open(directory.join(KEYS_DIR), kek).expect("key store");
    DevPki::load(&directory, &key_store).expect("dev pki")
}

/// Waits until provisioning has seeded pnc's OEM and V2G roots into the pool.
async fn wait_for_roots(sandbox: &Sandbox, token: &str, pki: &DevPki) {
    let wanted: Vec<String> = [DevCert::OemRoot, DevCert::V2gRoot, DevCert::MoRoot]
        .into_iter()
        .map(|which| STANDARD.encode(pki.certificate(which).der()))
        .collect();
    for _ in 0..150 {
        let body: Value = sandbox
            .http
            .get(sandbox.url("/v1/root/rootCerts"))
            .bearer_auth(token)
            .send()
            .await
            .expect("roots")
            .json()
            .await
            .unwrap_or(Value::Null);
        let present: Vec<String> = body["RootCertificateCollection"]["rootCertificates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|root| root["caCertificate"].as_str().map(str::to_string))
            .collect();
        if wanted.iter().all(|root| present.contains(root)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("pnc's dev roots did not reach the root pool");
}

/// An OEM provisioning certificate for `pcid` under `pki`'s OEM Sub-CA 2, valid in
/// [not_before, not_after].
fn provisioning_leaf(
    pki: &DevPki,
    pcid: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Certificate {
    let key_source = pki.certificate(DevCert::OemProvisioning);
    let mut template = CertificateTemplate::new(
        Profile::OemProvisioning,
        SubjectName::new(pcid),
        key_source.public_key_spki_der().to_vec(),
        not_before,
        not_after,
    );
    template.ocsp_url = Some(pki.ocsp_base_url().to_string());
    let issuer = pki.entry(DevCert::OemSubCa2);
    issue(
        &template,
        Some(&issuer.certificate),
        issuer.signer().as_ref(),
    )
    .expect("issue leaf")
}

fn valid_leaf(pki: &DevPki, pcid: &str) -> Certificate {
    let now = OffsetDateTime::now_utc();
    provisioning_leaf(
        pki,
        pcid,
        now - time::Duration::hours(1),
        now + time::Duration::days(300),
    )
}

/// The body with OPCP's new field names, MaEVe's singular AKI and an unknown field.
fn pcp_body(pki: &DevPki, leaf: &Certificate) -> Value {
    json!({
        "provisioningCertificate": STANDARD.encode(leaf.der()),
        "subCa2Certificate": STANDARD.encode(pki.certificate(DevCert::OemSubCa2).der()),
        "subCa1Certificate": STANDARD.encode(pki.certificate(DevCert::OemSubCa1).der()),
        "xsdMsgDefNamespace": ISO2,
        "v2gRootAuthorityKeyIdentifier": "4E:7C:AE:C1:46:13:96:5E",
        "rootIssuerDistinguishedName": "ignored by pnc",
        "somethingNew": {"ignored": true},
    })
}

async fn send(
    sandbox: &Sandbox,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = sandbox.http.request(method, sandbox.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An OPCP error body: errorMessages (at least one) and a traceId.
fn assert_opcp_error(body: &Value, context: &str) {
    assert!(
        body["errorMessages"]
            .as_array()
            .is_some_and(|messages| !messages.is_empty()),
        "{context}: OPCP error body expected, got {body}"
    );
    assert!(body["traceId"].is_string(), "{context}: traceId in {body}");
}

async fn generate(sandbox: &Sandbox, token: &str, emaid: &str, pcid: &str) -> (u16, Value) {
    let now = OffsetDateTime::now_utc();
    let format = |at: OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    send(
        sandbox,
        reqwest::Method::PUT,
        "/v1/cps/generate/signedContractData",
        Some(token),
        Some(json!({
            "contractBegins": format(now - time::Duration::days(1)),
            "contractEnds": format(now + time::Duration::days(365)),
            "emaid": emaid,
            "pcid": pcid,
            "xsdMsgDefNamespace": ISO2,
        })),
    )
    .await
}

struct Parties {
    admin: TestClient,
    oem: TestClient,
    other_oem: TestClient,
    emsp: TestClient,
    other_emsp: TestClient,
    cpo: TestClient,
    charger: TestClient,
}

async fn parties(sandbox: &Sandbox) -> Parties {
    Parties {
        admin: sandbox.admin().await,
        oem: sandbox.client(Role::Oem, &["PNC"], &[], &[]).await,
        other_oem: sandbox.client(Role::Oem, &["XYZ"], &[], &[]).await,
        emsp: sandbox.client(Role::Emsp, &[], &["DE-PNC"], &[]).await,
        other_emsp: sandbox.client(Role::Emsp, &[], &["DE*XYZ"], &[]).await,
        cpo: sandbox.client(Role::Cpo, &[], &[], &["DE*CPO"]).await,
        charger: sandbox.client(Role::Charger, &[], &[], &[]).await,
    }
}

#[tokio::test]
async fn provisioning_certificate_pool() {
    for backend in Backend::ALL {
        provisioning_certificate_pool_on(backend).await;
    }
}

async fn provisioning_certificate_pool_on(backend: Backend) {
    use reqwest::Method;
    let sandbox = Sandbox::start(backend).await;
    let who = parties(&sandbox).await;
    let pki = dev_pki(&sandbox);
    wait_for_roots(&sandbox, &who.admin.token, &pki).await;
    let pcid = "PNCregistryCar001";
    let leaf = valid_leaf(&pki, pcid);

    // ok/put: new field names, singular AKI, unknown fields ignored; 200 with the data.
    let (status, body) = send(
        &sandbox,
        Method::PUT,
        "/v1/oem/provCerts",
        Some(&who.oem.token),
        Some(pcp_body(&pki, &leaf)),
    )
    .await;
    assert_eq!(status, 200, "{backend:?} put: {body}");
    let oem_root = pki.certificate(DevCert::OemRoot);
    assert_eq!(body["vehicleCertificate"], STANDARD.encode(leaf.der()));
    assert_eq!(
        body["rootIssuerSerialNumber"],
        oem_root.serial_hex().to_ascii_lowercase()
    );
    assert_eq!(
        body["v2gRootAuthorityKeyIdentifiers"],
        json!(["4e:7c:ae:c1:46:13:96:5e"])
    );
    assert!(
        body["rootIssuerDistinguishedName"]
            .as_str()
            .unwrap()
            .contains("OEM Root")
    );

    // ok/get: any case of the PCID; the OEM and an eMSP may read, stored as received.
    for (token, path) in [
        (
            &who.oem.token,
            format!("/v1/oem/provCerts/{}", pcid.to_ascii_lowercase()),
        ),
        (&who.emsp.token, format!("/v1/oem/provCerts/{pcid}")),
    ] {
        let (status, body) = send(&sandbox, Method::GET, &path, Some(token), None).await;
        assert_eq!(status, 200, "{backend:?} {path}: {body}");
        assert_eq!(
            body["OEMMessage"]["subCA2Certificate"],
            STANDARD.encode(pki.certificate(DevCert::OemSubCa2).der())
        );
    }
    let (status, _) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/oem/provCerts/lookupVehicle/{pcid}"),
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = send(
        &sandbox,
        Method::GET,
        "/v1/oem/provCerts/lookupVehicle/PNCNOBODYKNOWS001",
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_opcp_error(&body, "unknown pcid");
    let (status, body) = send(
        &sandbox,
        Method::GET,
        "/v1/oem/provCerts/short",
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_opcp_error(&body, "malformed pcid");

    // OPNC spelling of the same pool.
    let (status, body) = send(
        &sandbox,
        Method::GET,
        &format!("/opnc/v1/pcp/provisioningcertificates/{pcid}"),
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["provisioningCertificate"]["provisioningCertificateChain"]["certificate"],
        STANDARD.encode(leaf.der())
    );

    // fail/cross-tenant: OEM XYZ on a PNC vehicle; CPO and charger on PCP at all.
    let (status, body) = send(
        &sandbox,
        Method::PUT,
        "/v1/oem/provCerts",
        Some(&who.other_oem.token),
        Some(pcp_body(&pki, &leaf)),
    )
    .await;
    assert_eq!(status, 403, "other oem put: {body}");
    assert_opcp_error(&body, "other oem put");
    for (method, path) in [
        (Method::GET, format!("/v1/oem/provCerts/{pcid}")),
        (Method::DELETE, format!("/v1/oem/provCerts/{pcid}")),
        (
            Method::GET,
            format!("/v1/oem/provCerts/lookupVehicle/{pcid}"),
        ),
    ] {
        for token in [&who.other_oem.token, &who.cpo.token, &who.charger.token] {
            let (status, body) = send(&sandbox, method.clone(), &path, Some(token), None).await;
            assert_eq!(status, 403, "{method} {path}: {body}");
            assert_opcp_error(&body, "cross-tenant");
        }
    }
    for token in [&who.cpo.token, &who.charger.token, &who.emsp.token] {
        let (status, _) = send(
            &sandbox,
            Method::PUT,
            "/v1/oem/provCerts",
            Some(token),
            Some(pcp_body(&pki, &leaf)),
        )
        .await;
        assert_eq!(status, 403);
    }
    // fail/opnc-from-party naming a WMI the OEM does not hold.
    let response = sandbox
        .http
        .get(sandbox.url(&format!("/opnc/v1/pcp/provisioningcertificates/{pcid}")))
        .bearer_auth(&who.oem.token)
        .header("OPNC-from-party-type", "oem")
        .header("OPNC-from-party-id", "XYZ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // fail/unauthenticated comes before the body is looked at.
    let response = sandbox
        .http
        .put(sandbox.url("/v1/oem/provCerts"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // fail/<reason>: bad input is a 400 naming the problem, and nothing is stored.
    let foreign = DevPki::generate(&DevPkiOptions::default()).expect("foreign pki");
    let foreign_leaf = valid_leaf(&foreign, "PNCFOREIGNCHAIN01");
    let now = OffsetDateTime::now_utc();
    // Expired a moment ago (inside the young dev Sub-CA's validity, as issuance requires).
    let expired = provisioning_leaf(
        &pki,
        "PNCEXPIREDCAR0001",
        pki.certificate(DevCert::OemSubCa2).not_before(),
        now - time::Duration::seconds(5),
    );
    let mut cases: Vec<(&str, Value, &str)> = vec![
        (
            "fail/invalid-base64",
            json!({"vehicleCertificate": "***", "subCA1Certificate": "AAAA"}),
            "base64",
        ),
        (
            "fail/not-der",
            json!({"vehicleCertificate": STANDARD.encode(b"hello"), "subCA1Certificate": STANDARD.encode(b"x")}),
            "certificate",
        ),
        (
            "fail/missing-leaf",
            json!({"subCA1Certificate": STANDARD.encode(pki.certificate(DevCert::OemSubCa1).der())}),
            "vehicleCertificate",
        ),
        (
            "fail/foreign-chain",
            json!({
                "vehicleCertificate": STANDARD.encode(foreign_leaf.der()),
                "subCA2Certificate": STANDARD.encode(foreign.certificate(DevCert::OemSubCa2).der()),
                "subCA1Certificate": STANDARD.encode(foreign.certificate(DevCert::OemSubCa1).der()),
            }),
            "OEM root",
        ),
        ("fail/expired", pcp_body(&pki, &expired), "expired"),
        (
            "fail/ca-as-leaf",
            json!({
                "vehicleCertificate": STANDARD.encode(pki.certificate(DevCert::OemSubCa2).der()),
                "subCA1Certificate": STANDARD.encode(pki.certificate(DevCert::OemSubCa1).der()),
            }),
            "CA",
        ),
        (
            "fail/bad-aki",
            {
                let mut body = pcp_body(&pki, &leaf);
                body["v2gRootAuthorityKeyIdentifier"] = json!("zz:zz");
                body
            },
            "v2gRootAuthorityKeyIdentifier",
        ),
    ];
    cases.push((
        "fail/oversized",
        json!({"vehicleCertificate": STANDARD.encode(vec![0u8; 900]), "subCA1Certificate": "AAAA"}),
        "800",
    ));
    for (name, body, needle) in cases {
        let (status, answer) = send(
            &sandbox,
            Method::PUT,
            "/v1/oem/provCerts",
            Some(&who.oem.token),
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{backend:?} {name}: {answer}");
        assert_opcp_error(&answer, name);
        let message = answer["errorMessages"].to_string();
        assert!(
            message.contains(needle),
            "{name}: `{needle}` not in {message}"
        );
    }
    for pcid in ["PNCFOREIGNCHAIN01", "PNCEXPIREDCAR0001"] {
        let (status, _) = send(
            &sandbox,
            Method::GET,
            &format!("/v1/oem/provCerts/{pcid}"),
            Some(&who.oem.token),
            None,
        )
        .await;
        assert_eq!(status, 404, "{pcid} was not stored");
    }

    // The OEM Sub-CAs stay findable by issuer (for the install flow).
    let database = pnc_registry::open_database(&sandbox.storage())
        .await
        .unwrap();
    let sub_ca2 = pki.certificate(DevCert::OemSubCa2);
    let found: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM oem_sub_cas WHERE subject_key_id = $1")
            .bind(sub_ca2.subject_key_identifier().unwrap())
            .fetch_one(database.pool())
            .await
            .unwrap();
    assert_eq!(found, 1);

    // ok/delete by the OEM, then it is gone.
    let (status, _) = send(
        &sandbox,
        Method::DELETE,
        &format!("/v1/oem/provCerts/{pcid}"),
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/oem/provCerts/{pcid}"),
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 404);
    drop(who.admin);
    sandbox.stop().await;
}

#[tokio::test]
async fn contracts_defaults_cancellation_cascade_and_audit() {
    for backend in Backend::ALL {
        contracts_on(backend).await;
    }
}

async fn contracts_on(backend: Backend) {
    use reqwest::Method;
    let sandbox = Sandbox::start(backend).await;
    let who = parties(&sandbox).await;
    let pki = dev_pki(&sandbox);
    wait_for_roots(&sandbox, &who.admin.token, &pki).await;
    let pcid = "PNCCONTRACTCAR001";
    let (status, body) = send(
        &sandbox,
        Method::PUT,
        "/v1/oem/provCerts",
        Some(&who.oem.token),
        Some(pcp_body(&pki, &valid_leaf(&pki, pcid))),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Two contracts; the first is the default.
    for emaid in ["DEPNCC00000001", "DE-PNC-C00000002"] {
        let (status, body) = generate(&sandbox, &who.emsp.token, emaid, pcid).await;
        assert_eq!(status, 201, "{backend:?} generate {emaid}: {body}");
    }
    // fail/cross-tenant: eMSP XYZ cannot register DEPNC contracts.
    let (status, body) = generate(&sandbox, &who.other_emsp.token, "DEPNCC00000003", pcid).await;
    assert_eq!(status, 403, "{body}");

    // ok/lookup by eMAID in any equivalent spelling (case, hyphens).
    let (status, body) = send(
        &sandbox,
        Method::GET,
        "/v1/ccp/lookupContract/de-pnc-c00000001",
        Some(&who.emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rows = body["XMLContracts"].as_array().expect("XMLContracts");
    assert!(!rows.is_empty());
    assert_eq!(rows[0]["emaid"], "DEPNCC00000001");
    assert_eq!(rows[0]["pcid"], pcid);
    assert_eq!(rows[0]["defaultContract"], true);
    assert_eq!(
        rows[0]["cpsV2GRootCertificateFingerprint"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    let contract_leaf = STANDARD
        .decode(rows[0]["contractCertificate"].as_str().unwrap())
        .unwrap();
    let contract_leaf = Certificate::from_der(&contract_leaf).unwrap();

    // The OEM sees both on its vehicle; the second is not the default.
    let (status, body) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/ccp/signedContractData/{pcid}"),
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let defaults: Vec<(String, bool)> = body["XMLContracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["emaid"].as_str().unwrap().to_string(),
                row["defaultContract"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        defaults.contains(&("DEPNCC00000001".into(), true)),
        "{defaults:?}"
    );
    assert!(
        defaults.contains(&("DEPNCC00000002".into(), false)),
        "{defaults:?}"
    );

    // fail/cross-tenant on contracts.
    for (method, path, token) in [
        (
            Method::GET,
            "/v1/ccp/lookupContract/DEPNCC00000001".to_string(),
            &who.other_emsp.token,
        ),
        (
            Method::GET,
            "/v1/ccp/lookupContract/DEPNCC00000001".to_string(),
            &who.cpo.token,
        ),
        (
            Method::GET,
            "/v1/ccp/lookupContract/DEPNCC00000001".to_string(),
            &who.charger.token,
        ),
        (
            Method::DELETE,
            "/v1/ccp/signedContractData/DEPNCC00000001".to_string(),
            &who.other_emsp.token,
        ),
        (
            Method::DELETE,
            "/v1/ccp/signedContractData/DEPNCC00000001".to_string(),
            &who.cpo.token,
        ),
        (
            Method::POST,
            format!("/v1/ccp/signedContractData/{pcid}/DEPNCC00000002/default"),
            &who.other_emsp.token,
        ),
        (
            Method::POST,
            format!("/v1/ccp/signedContractData/{pcid}/DEPNCC00000002/default"),
            &who.other_oem.token,
        ),
        (
            Method::POST,
            format!("/v1/ccp/signedContractData/{pcid}/DEPNCC00000002/default"),
            &who.cpo.token,
        ),
        (
            Method::GET,
            format!("/v1/ccp/signedContractData/{pcid}"),
            &who.other_oem.token,
        ),
        (
            Method::GET,
            "/opnc/v1/ccp/contractData/emaid/DEPNCC00000001".to_string(),
            &who.other_emsp.token,
        ),
    ] {
        let (status, body) = send(&sandbox, method.clone(), &path, Some(token), None).await;
        assert_eq!(status, 403, "{backend:?} {method} {path}: {body}");
        assert_opcp_error(&body, &path);
    }
    // fail/malformed eMAID.
    let (status, body) = send(
        &sandbox,
        Method::GET,
        "/v1/ccp/lookupContract/DE-PNC-1",
        Some(&who.emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_opcp_error(&body, "malformed emaid");

    // ok/the OEM moves the default; the OPNC look-up shows it.
    let (status, body) = send(
        &sandbox,
        Method::POST,
        &format!("/v1/ccp/signedContractData/{pcid}/DEPNCC00000002/default"),
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        &sandbox,
        Method::GET,
        "/opnc/v1/ccp/contractData/emaid/DEPNCC00000002",
        Some(&who.emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["contractDataCollection"][0]["defaultContract"], true);

    // ok/cancel (OPCP DELETE): the contract disappears from look-ups and pnc revokes the
    // certificate it issued.
    let (status, body) = send(
        &sandbox,
        Method::DELETE,
        "/v1/ccp/signedContractData/DEPNCC00000001",
        Some(&who.emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(
        &sandbox,
        Method::GET,
        "/v1/ccp/lookupContract/DEPNCC00000001",
        Some(&who.emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let database = pnc_registry::open_database(&sandbox.storage())
        .await
        .unwrap();
    let revoked: i64 =
        sqlx::query_scalar("SELECT revoked FROM issued_certificates WHERE serial = $1")
            .bind(contract_leaf.serial())
            .fetch_one(database.pool())
            .await
            .unwrap();
    assert_eq!(
        revoked, 1,
        "the cancelled contract's certificate is revoked"
    );

    // ok/deleting the vehicle cascades to its contracts.
    let (status, _) = send(
        &sandbox,
        Method::DELETE,
        &format!("/v1/oem/provCerts/{pcid}"),
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &sandbox,
        Method::GET,
        "/v1/ccp/lookupContract/DEPNCC00000002",
        Some(&who.emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let remaining: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contracts")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(remaining, 0);

    // The audit chain holds every write and detects a changed row.
    let verdict = pnc_registry::audit::verify(&database).await.unwrap();
    let Verdict::Intact { entries } = verdict else {
        panic!("{backend:?}: chain broken before tampering: {verdict:?}");
    };
    assert!(
        entries >= 6,
        "pcp.create, 2 contracts, default, cancel, delete: {entries}"
    );
    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE sequence = 2")
        .execute(database.pool())
        .await
        .unwrap();
    match pnc_registry::audit::verify(&database).await.unwrap() {
        Verdict::Broken { sequence, .. } => assert_eq!(sequence, 2),
        other => panic!("{backend:?}: tampering not detected: {other:?}"),
    }
    sandbox.stop().await;
}

/// A loopback webhook receiver: answers the scripted statuses in turn (then 200) and keeps
/// what it received.
/// One delivery as the receiver saw it: its headers and body.
type ReceivedDelivery = (Vec<(String, String)>, String);

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<std::sync::Mutex<Vec<ReceivedDelivery>>>,
    /// When each delivery arrived, in the order of `received`.
    arrivals: Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
    connections: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(script: Vec<u16>) -> (Receiver, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let receiver = Receiver::default();
        let state = receiver.clone();
        let script = Arc::new(std::sync::Mutex::new(script.into_iter()));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                state.connections.fetch_add(1, Ordering::SeqCst);
                let state = state.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, body_start) = loop {
                        let read = stream.read(&mut chunk).await.unwrap_or(0);
                        if read == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..read]);
                        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break (String::from_utf8_lossy(&buffer[..at]).to_string(), at + 4);
                        }
                    };
                    let headers: Vec<(String, String)> = head
                        .lines()
                        .skip(1)
                        .filter_map(|line| line.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let length: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = buffer[body_start..].to_vec();
                    while body.len() < length {
                        let read = stream.read(&mut chunk).await.unwrap_or(0);
                        if read == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..read]);
                    }
                    let status = script.lock().unwrap().next().unwrap_or(200);
                    {
                        let mut received = state.received.lock().unwrap();
                        received.push((headers, String::from_utf8_lossy(&body).to_string()));
                        state
                            .arrivals
                            .lock()
                            .unwrap()
                            .push(std::time::Instant::now());
                    }
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        (receiver, url)
    }

    fn received(&self) -> Vec<(Vec<(String, String)>, String)> {
        self.received.lock().unwrap().clone()
    }
}

fn hmac_hex(secret: &str, body: &str) -> String {
    let key = openssl::pkey::PKey::hmac(secret.as_bytes()).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    signer.update(body.as_bytes()).unwrap();
    hex::encode(signer.sign_to_vec().unwrap())
}

#[tokio::test]
async fn webhooks_deliver_signed_events_retry_and_refuse_unlisted_urls() {
    for backend in Backend::ALL {
        webhooks_on(backend).await;
    }
}

async fn webhooks_on(backend: Backend) {
    use reqwest::Method;
    // The receiver fails the first attempt with a 503, then accepts.
    let (receiver, url) = Receiver::start(vec![503]).await;
    let allowed_prefix = url.trim_end_matches("hooks").to_string();
    let sandbox = Sandbox::start_with(backend, |config| {
        config.registry.webhook_allowed_url_prefixes = vec![allowed_prefix.clone()];
        config.registry.webhook_retry_base_ms = 1000;
        config.registry.webhook_poll_interval_ms = 100;
    })
    .await;
    let who = parties(&sandbox).await;
    let pki = dev_pki(&sandbox);
    wait_for_roots(&sandbox, &who.admin.token, &pki).await;

    // ok/subscribe: 201 with a secret shown once; OPNC's emsp.* spelling accepted.
    let (status, endpoint) = send(&sandbox, Method::POST, "/v1/webhook/endpoints", Some(&who.emsp.token), Some(json!({
        "url": url,
        "enabledEvents": ["mo.contract.created.sent.to.oem", "emsp.contract.deleted.sent.to.oem"],
        "description": "test hook",
        "unknownField": 1,
    }))).await;
    assert_eq!(status, 201, "{backend:?} {endpoint}");
    let secret = endpoint["secret"].as_str().expect("secret").to_string();
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    assert_eq!(
        endpoint["enabledEvents"],
        json!([
            "mo.contract.created.sent.to.oem",
            "mo.contract.deleted.sent.to.oem"
        ])
    );
    let (status, again) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/webhook/endpoints/{endpoint_id}"),
        Some(&who.emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        again.get("secret").is_none(),
        "the secret is shown only once"
    );

    // An endpoint outside the operator's allowlist: stored, but never called.
    let (refused_receiver, refused_url) = Receiver::start(vec![]).await;
    let (status, refused) = send(
        &sandbox,
        Method::POST,
        "/opnc/v1/event/endpoints",
        Some(&who.emsp.token),
        Some(json!({
            "url": refused_url.replace("127.0.0.1", "localhost"),
            "enabledEvents": ["mo.contract.created.sent.to.oem"],
        })),
    )
    .await;
    assert_eq!(status, 201, "{refused}");
    let refused_id = refused["id"].as_str().unwrap().to_string();

    // fail/cases: chargers cannot subscribe; other clients see 404; bad input is 400.
    let (status, _) = send(
        &sandbox,
        Method::POST,
        "/v1/webhook/endpoints",
        Some(&who.charger.token),
        Some(json!({"url": url, "enabledEvents": ["root.cert.added"]})),
    )
    .await;
    assert_eq!(status, 403);
    for token in [&who.other_emsp.token, &who.oem.token] {
        let (status, body) = send(
            &sandbox,
            Method::GET,
            &format!("/v1/webhook/endpoints/{endpoint_id}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(status, 404, "{body}");
        let (status, _) = send(
            &sandbox,
            Method::DELETE,
            &format!("/v1/webhook/endpoints/{endpoint_id}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(status, 404);
    }
    for (name, body) in [
        (
            "fail/unknown-event",
            json!({"url": url, "enabledEvents": ["car.exploded"]}),
        ),
        ("fail/no-events", json!({"url": url})),
        ("fail/no-url", json!({"enabledEvents": ["root.cert.added"]})),
        (
            "fail/not-http",
            json!({"url": "file:///etc/passwd", "enabledEvents": ["root.cert.added"]}),
        ),
    ] {
        let (status, answer) = send(
            &sandbox,
            Method::POST,
            "/v1/webhook/endpoints",
            Some(&who.emsp.token),
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{name}: {answer}");
        assert_opcp_error(&answer, name);
    }

    // A contract event reaches the receiver, signed, after one retry.
    let pcid = "PNCWEBHOOKCAR0001";
    let (status, body) = send(
        &sandbox,
        Method::PUT,
        "/v1/oem/provCerts",
        Some(&who.oem.token),
        Some(pcp_body(&pki, &valid_leaf(&pki, pcid))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = generate(&sandbox, &who.emsp.token, "DEPNCC00000009", pcid).await;
    assert_eq!(status, 201, "{body}");
    let mut delivered = None;
    for _ in 0..100 {
        let (_, deliveries) = send(
            &sandbox,
            Method::GET,
            &format!("/v1/webhook/endpoints/{endpoint_id}/deliveries"),
            Some(&who.emsp.token),
            None,
        )
        .await;
        if deliveries[0]["status"] == "delivered" {
            delivered = Some(deliveries[0].clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = delivered.expect("delivered within 10 s");
    assert_eq!(
        delivered["attempts"], 2,
        "one 503, then success: {delivered}"
    );
    assert_eq!(delivered["eventType"], "mo.contract.created.sent.to.oem");
    let received = receiver.received();
    assert_eq!(received.len(), 2, "two attempts reached the receiver");
    for (headers, body) in &received {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let expected = hmac_hex(&secret, body);
        assert_eq!(
            header("x-hubject-signature"),
            Some(format!("sha256={expected}"))
        );
        assert_eq!(header("payload-signature"), Some(expected));
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["eventType"], "mo.contract.created.sent.to.oem");
        assert_eq!(event["payload"]["emaid"], "DEPNCC00000009");
        assert_eq!(event["payload"]["pcid"], pcid);
        assert!(uuid::Uuid::parse_str(event["eventId"].as_str().unwrap()).is_ok());
    }

    // Root events from the truststore's change feed reach every subscriber, a CPO too.
    let (status, cpo_endpoint) = send(
        &sandbox,
        Method::POST,
        "/v1/webhook/endpoints",
        Some(&who.cpo.token),
        Some(json!({
            "url": url,
            "enabledEvents": ["root.cert.added"],
        })),
    )
    .await;
    assert_eq!(status, 201, "{cpo_endpoint}");
    let new_root = DevPki::generate(&DevPkiOptions::default()).expect("another pki");
    let new_root = new_root.certificate(DevCert::V2gRoot);
    let (status, body) = send(
        &sandbox,
        Method::PUT,
        "/v1/root/rootCerts",
        Some(&who.admin.token),
        Some(json!({
            "caCertificate": STANDARD.encode(new_root.der()),
            "rootType": "V2G",
        })),
    )
    .await;
    assert_eq!(status, 200, "admin adds a root: {body}");
    let fingerprint = hex::encode(new_root.sha256_fingerprint());
    let mut root_event = None;
    for _ in 0..100 {
        root_event = receiver.received().into_iter().find_map(|(_, body)| {
            let event: Value = serde_json::from_str(&body).ok()?;
            (event["eventType"] == "root.cert.added"
                && event["payload"]["fingerprintSHA256"] == fingerprint.as_str())
            .then_some(event)
        });
        if root_event.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let root_event = root_event.expect("root.cert.added delivered within 10 s");
    assert_eq!(root_event["payload"]["rootType"], "V2G");

    // The unlisted URL was refused without a connection, and the log says why.
    let mut refused_log = Value::Null;
    for _ in 0..50 {
        let (_, deliveries) = send(
            &sandbox,
            Method::GET,
            &format!("/opnc/v1/event/endpoints/{refused_id}"),
            Some(&who.emsp.token),
            None,
        )
        .await;
        assert_eq!(deliveries["id"], refused_id.as_str());
        let (_, log) = send(
            &sandbox,
            Method::GET,
            &format!("/v1/webhook/endpoints/{refused_id}/deliveries"),
            Some(&who.emsp.token),
            None,
        )
        .await;
        if log[0]["status"] == "failed" {
            refused_log = log[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused_log["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("not under a prefix"),
        "{refused_log}"
    );
    assert_eq!(refused_receiver.connections.load(Ordering::SeqCst), 0);

    // Many concurrent audited writes keep the chain intact (serialised appends).
    let mut writes = Vec::new();
    for index in 0..12 {
        let http = sandbox.http.clone();
        let url_to = sandbox.url("/v1/webhook/endpoints");
        let token = who.oem.token.clone();
        let hook = format!("{url}/{index}");
        writes.push(tokio::spawn(async move {
            http.post(url_to)
                .bearer_auth(token)
                .json(&json!({"url": hook, "enabledEvents": ["oem.contract.created"]}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for write in writes {
        assert_eq!(write.await.unwrap(), 201);
    }
    let database = pnc_registry::open_database(&sandbox.storage())
        .await
        .unwrap();
    assert!(matches!(
        pnc_registry::audit::verify(&database).await.unwrap(),
        Verdict::Intact { .. }
    ));
    sandbox.stop().await;
}

// ---------------------------------------------------------------------------------------
// Signed contract data from a CPS (OPCP `PUT /v1/ccp/signedContractData`, OPNC
// `PUT /opnc/v1/ccp/signedcontractdata`)

/// An eMSP contract for `emaid` under the sandbox's MO Sub-CA 2, sealed for the dev OEM
/// provisioning key, signed by pnc's CPS without storing (sign-and-return): the XML
/// V2G_Message as a CPS hands it to its eMSP, base64.
async fn cps_signed_xml(sandbox: &Sandbox, pki: &DevPki, token: &str, emaid: &str) -> String {
    let (status, signed) = send(
        sandbox,
        reqwest::Method::PUT,
        "/v1/cps/contractData/signed",
        Some(token),
        Some(json!({
            "contractData": provisioning_support::emsp_contract_data(pki, pki, emaid).0,
            "xsdMsgDefNamespace": ISO2,
        })),
    )
    .await;
    assert_eq!(status, 201, "sign-and-return: {signed}");
    signed["signedData"]
        .as_str()
        .expect("signedData")
        .to_string()
}

fn opcp_upload(emaid: &str, pcid: &str, signed_base64: &str) -> Value {
    json!({
        "xsdMsgDefNamespace": ISO2,
        "emaid": emaid,
        "pcid": pcid,
        "signedContractDataXML": signed_base64,
        "metadata": "from the eMSP's CPS",
    })
}

/// The stored contracts of `emaid` as its eMSP sees them (404: none).
async fn lookup_contract(sandbox: &Sandbox, token: &str, emaid: &str) -> (u16, Value) {
    send(
        sandbox,
        reqwest::Method::GET,
        &format!("/v1/ccp/lookupContract/{emaid}"),
        Some(token),
        None,
    )
    .await
}

/// Decodes an OPCP/OPNC `certificateInstallationRes` and verifies it as an EV would with
/// the CPS leaf; returns the message tree.
fn verify_installation_res(exi_base64: &str, cps_leaf: &Certificate) -> pnc_exi::Element {
    let exi = STANDARD.decode(exi_base64).expect("base64 EXI");
    let message = pnc_exi::decode_document(pnc_exi::Schema::Iso2, &exi).expect("EXI decodes");
    let key = pnc_exi::signature::public_key_from_cert_der(cps_leaf.der()).expect("CPS key");
    pnc_exi::signature::verify_iso2_message(&message, &key).expect("CPS signature verifies");
    message
}

#[tokio::test]
async fn signed_contract_data_from_a_cps_is_verified_then_stored() {
    for backend in Backend::ALL {
        signed_contract_data_upload_on(backend).await;
    }
}

async fn signed_contract_data_upload_on(backend: Backend) {
    use reqwest::Method;
    let sandbox = Sandbox::start(backend).await;
    let who = parties(&sandbox).await;
    let pki = dev_pki(&sandbox);
    wait_for_roots(&sandbox, &who.admin.token, &pki).await;
    let pcid = "PNCUPLOADCAR00001";
    let emaid = "DEPNCU00000001";
    let (status, body) = send(
        &sandbox,
        Method::PUT,
        "/v1/oem/provCerts",
        Some(&who.oem.token),
        Some(pcp_body(&pki, &valid_leaf(&pki, pcid))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let signed = cps_signed_xml(&sandbox, &pki, &who.emsp.token, emaid).await;
    let (status, _) = lookup_contract(&sandbox, &who.emsp.token, emaid).await;
    assert_eq!(status, 404, "{backend:?}: sign-and-return stores nothing");

    // A tampered copy: the DH public key changed after signing.
    let xml = String::from_utf8(STANDARD.decode(&signed).unwrap()).unwrap();
    let dh_start = xml.find("DHpublickey").expect("DHpublickey element");
    let value_start = dh_start + xml[dh_start..].find('>').unwrap() + 1;
    let mut tampered = xml.clone();
    let first = &xml[value_start + 4..value_start + 5];
    let replacement = if first == "A" { "B" } else { "A" };
    tampered.replace_range(value_start + 4..value_start + 5, replacement);
    let tampered = STANDARD.encode(tampered);
    // A signed message for another eMAID of the same eMSP.
    let other_contract = cps_signed_xml(&sandbox, &pki, &who.emsp.token, "DEPNCU00000002").await;
    // Hubject's real CPS-signed answer: its chain ends at a QA root pnc's pool lacks.
    let hubject = STANDARD.encode(
        std::fs::read(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/vectors/hubject-opcp/hubject_install_res.exi"),
        )
        .expect("hubject vector"),
    );

    // fail/cases: each refused, nothing stored.
    let mut without_xml = opcp_upload(emaid, pcid, &signed);
    without_xml
        .as_object_mut()
        .unwrap()
        .remove("signedContractDataXML");
    let cases: Vec<(&str, &str, Value, u16)> = vec![
        (
            "fail/other-provider",
            &who.other_emsp.token,
            opcp_upload(emaid, pcid, &signed),
            403,
        ),
        (
            "fail/oem",
            &who.oem.token,
            opcp_upload(emaid, pcid, &signed),
            403,
        ),
        (
            "fail/cpo",
            &who.cpo.token,
            opcp_upload(emaid, pcid, &signed),
            403,
        ),
        (
            "fail/not-base64",
            &who.emsp.token,
            opcp_upload(emaid, pcid, "%%% not base64 %%%"),
            400,
        ),
        (
            "fail/not-a-message",
            &who.emsp.token,
            opcp_upload(emaid, pcid, &STANDARD.encode(b"\x80\x98 garbage")),
            400,
        ),
        (
            "fail/not-xml",
            &who.emsp.token,
            opcp_upload(emaid, pcid, &STANDARD.encode("<V2G_Message")),
            400,
        ),
        (
            "fail/tampered",
            &who.emsp.token,
            opcp_upload(emaid, pcid, &tampered),
            400,
        ),
        (
            "fail/other-emaid",
            &who.emsp.token,
            opcp_upload(emaid, pcid, &other_contract),
            400,
        ),
        (
            "fail/foreign-cps",
            &who.emsp.token,
            opcp_upload("EMP99CQAPAB004", pcid, &hubject),
            403,
        ),
        (
            "fail/bad-pcid",
            &who.emsp.token,
            opcp_upload(emaid, "PNC-BAD", &signed),
            400,
        ),
        (
            "fail/unknown-pcid",
            &who.emsp.token,
            opcp_upload(emaid, "PNCNOSUCHCAR00001", &signed),
            404,
        ),
        ("fail/missing-field", &who.emsp.token, without_xml, 400),
        (
            "fail/iso20",
            &who.emsp.token,
            {
                let mut body = opcp_upload(emaid, pcid, &signed);
                body["xsdMsgDefNamespace"] = json!("urn:iso:std:iso:15118:-20:CommonMessages");
                body
            },
            400,
        ),
    ];
    for (name, token, body, expected) in cases {
        let (status, answer) = send(
            &sandbox,
            Method::PUT,
            "/v1/ccp/signedContractData",
            Some(token),
            Some(body),
        )
        .await;
        assert_eq!(status, expected, "{backend:?} {name}: {answer}");
        assert_opcp_error(&answer, name);
        let (status, _) = lookup_contract(&sandbox, &who.emsp.token, emaid).await;
        assert_eq!(status, 404, "{backend:?} {name}: nothing stored");
    }
    // The Hubject answer for an eMSP that owns its provider: refused for its chain.
    let hubject_emsp = sandbox.client(Role::Emsp, &[], &["EMP99"], &[]).await;
    let (status, answer) = send(
        &sandbox,
        Method::PUT,
        "/v1/ccp/signedContractData",
        Some(&hubject_emsp.token),
        Some(opcp_upload("EMP99CQAPAB004", pcid, &hubject)),
    )
    .await;
    assert_eq!(status, 400, "{backend:?}: {answer}");
    let message = answer["errorMessages"][0].as_str().unwrap_or_default();
    assert!(
        message.contains("V2G root") || message.contains("expired"),
        "{backend:?}: the chain is named as the reason: {message}"
    );
    let database = pnc_registry::open_database(&sandbox.storage())
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contracts")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "{backend:?}: no refused upload left a row");

    // ok/opcp: stored; the eMSP finds it, the OEM back end gets it as EXI signed by the CPS.
    let (status, answer) = send(
        &sandbox,
        Method::PUT,
        "/v1/ccp/signedContractData",
        Some(&who.emsp.token),
        Some(opcp_upload(emaid, pcid, &signed)),
    )
    .await;
    assert_eq!(status, 201, "{backend:?}: {answer}");
    let (status, found) = lookup_contract(&sandbox, &who.emsp.token, emaid).await;
    assert_eq!(status, 200, "{found}");
    let contracts = found["XMLContracts"].as_array().expect("XMLContracts");
    assert_eq!(contracts.len(), 1, "{found}");
    assert_eq!(contracts[0]["pcid"], pcid);
    assert_eq!(
        contracts[0]["defaultContract"], true,
        "first contract of the PCID"
    );
    let (status, provided) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/ccp/provideSignedContractData/{emaid}/{pcid}"),
        Some(&who.oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{provided}");
    let exi = provided["certificateInstallationRes"]
        .as_str()
        .expect("certificateInstallationRes")
        .to_string();
    let message = verify_installation_res(&exi, pki.certificate(DevCert::CpsLeaf));
    let body = message.find("Body").expect("Body");
    let response = pnc_exi::iso2::CertificateInstallationRes::from_element(
        body.elements().next().expect("CertificateInstallationRes"),
    )
    .expect("parses");
    assert_eq!(response.emaid.value, emaid);
    assert_eq!(
        provided["cpsV2GRootCertificateFingerprint"],
        hex::encode(pki.certificate(DevCert::V2gRoot).sha256_fingerprint())
    );

    // ok/opnc: the same data as EXI through OPNC replaces it (an update, still one contract).
    let (status, answer) = sandbox
        .http
        .put(sandbox.url("/opnc/v1/ccp/signedcontractdata"))
        .bearer_auth(&who.emsp.token)
        .header("OPNC-from-party-type", "emsp")
        .header("OPNC-from-party-id", "DE-PNC")
        .json(&json!({
            "certificateInstallationRes": exi,
            "emaid": emaid,
            "pcid": pcid,
            "xsdMsgDefNamespace": ISO2,
            "cpsV2GRootCertificateFingerprint": hex::encode(pki.certificate(DevCert::V2gRoot).sha256_fingerprint()),
        }))
        .send()
        .await
        .map(|response| response.status().as_u16())
        .map(|status| (status, ()))
        .expect("opnc put");
    assert_eq!(status, 201, "{backend:?}: OPNC upload {answer:?}");
    // A root selector naming another root than the chain's is refused.
    let (status, answer) = send(
        &sandbox,
        Method::PUT,
        "/v1/ccp/signedContractData",
        Some(&who.emsp.token),
        Some({
            let mut body = opcp_upload(emaid, pcid, &signed);
            body["cpsV2GRootCertificateFingerprint"] = json!(hex::encode(
                pki.certificate(DevCert::MoRoot).sha256_fingerprint()
            ));
            body
        }),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contracts")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(stored, 1, "{backend:?}: one contract");
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'contract.%' ORDER BY sequence",
    )
    .fetch_all(database.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        ["contract.create", "contract.update"],
        "{backend:?}"
    );
    sandbox.stop().await;
}

/// Waits until `receiver` got an event of `event_type` for `emaid`.
async fn wait_for_event(receiver: &Receiver, event_type: &str, emaid: &str) -> Option<Value> {
    for _ in 0..100 {
        let found = receiver.received().into_iter().find_map(|(_, body)| {
            let event: Value = serde_json::from_str(&body).ok()?;
            (event["eventType"] == event_type && event["payload"]["emaid"] == emaid)
                .then_some(event)
        });
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn oem_delivery_event_and_opnc_wmi_filter() {
    for backend in Backend::ALL {
        delivery_and_wmi_filter_on(backend).await;
    }
}

async fn delivery_and_wmi_filter_on(backend: Backend) {
    use reqwest::Method;
    let (emsp_receiver, emsp_url) = Receiver::start(vec![]).await;
    let (pnc_receiver, pnc_url) = Receiver::start(vec![]).await;
    let (abc_receiver, abc_url) = Receiver::start(vec![]).await;
    let prefixes: Vec<String> = [&emsp_url, &pnc_url, &abc_url]
        .iter()
        .map(|url| url.trim_end_matches("hooks").to_string())
        .collect();
    let sandbox = Sandbox::start_with(backend, |config| {
        config.registry.webhook_allowed_url_prefixes = prefixes.clone();
        config.registry.webhook_poll_interval_ms = 100;
    })
    .await;
    let who = parties(&sandbox).await;
    let pki = dev_pki(&sandbox);
    wait_for_roots(&sandbox, &who.admin.token, &pki).await;
    // An OEM with two WMIs subscribes twice through OPNC, each endpoint filtered to one.
    let oem = sandbox.client(Role::Oem, &["PNC", "ABC"], &[], &[]).await;
    let subscribe = |token: String, url: String, wmi: Value| {
        let sandbox = &sandbox;
        async move {
            send(
                sandbox,
                Method::POST,
                "/opnc/v1/event/endpoints",
                Some(&token),
                Some(json!({
                    "url": url,
                    "enabledEvents": ["oem.contract.created", "oem.contract.updated"],
                    "wmi": wmi,
                })),
            )
            .await
        }
    };
    let (status, pnc_endpoint) =
        subscribe(oem.token.clone(), pnc_url.clone(), json!(["pnc"])).await;
    assert_eq!(status, 201, "{pnc_endpoint}");
    assert_eq!(pnc_endpoint["wmis"], json!(["PNC"]), "{pnc_endpoint}");
    let (status, abc_endpoint) =
        subscribe(oem.token.clone(), abc_url.clone(), json!(["ABC"])).await;
    assert_eq!(status, 201, "{abc_endpoint}");
    // fail/wmi: not one of the OEM's WMIs (403), malformed (400), not an OEM (400).
    let (status, body) = subscribe(oem.token.clone(), pnc_url.clone(), json!(["XYZ"])).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = subscribe(oem.token.clone(), pnc_url.clone(), json!(["TOOLONG"])).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = subscribe(who.emsp.token.clone(), pnc_url.clone(), json!(["PNC"])).await;
    assert_eq!(status, 400, "{body}");
    // The eMSP hears about deliveries to the OEM.
    let (status, body) = send(
        &sandbox,
        Method::POST,
        "/v1/webhook/endpoints",
        Some(&who.emsp.token),
        Some(json!({"url": emsp_url, "enabledEvents": ["mo.contract.delivered.to.oem"]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let emsp_secret = body["secret"].as_str().unwrap().to_string();

    let pcid = "PNCDELIVERCAR0001";
    let emaid = "DEPNCD00000001";
    let (status, body) = send(
        &sandbox,
        Method::PUT,
        "/v1/oem/provCerts",
        Some(&oem.token),
        Some(pcp_body(&pki, &valid_leaf(&pki, pcid))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = generate(&sandbox, &who.emsp.token, emaid, pcid).await;
    assert_eq!(status, 201, "{body}");

    // The PNC-filtered endpoint gets the contract event; the ABC-filtered one does not.
    let event = wait_for_event(&pnc_receiver, "oem.contract.created", emaid).await;
    assert!(
        event.is_some(),
        "{backend:?}: oem.contract.created for WMI PNC"
    );
    assert!(
        abc_receiver.received().is_empty(),
        "{backend:?}: an endpoint filtered to ABC got a PNC vehicle's event"
    );

    // No delivery event while only the eMSP looks at its own contract.
    let (status, _) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/ccp/provideSignedContractData/{emaid}/{pcid}"),
        Some(&who.emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // The OEM back end fetches it: mo.contract.delivered.to.oem, signed, to the eMSP.
    let (status, provided) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/ccp/provideSignedContractData/{emaid}/{pcid}"),
        Some(&oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{provided}");
    let delivered = wait_for_event(&emsp_receiver, "mo.contract.delivered.to.oem", emaid)
        .await
        .expect("mo.contract.delivered.to.oem within 10 s");
    assert_eq!(delivered["payload"]["pcid"], pcid);
    assert_eq!(
        delivered["payload"]["cpsSignerRootFingerprint"],
        provided["cpsV2GRootCertificateFingerprint"]
    );
    let received = emsp_receiver.received();
    assert_eq!(
        received.len(),
        1,
        "{backend:?}: only the OEM's fetch is an event"
    );
    let (headers, body) = &received[0];
    let signature = headers
        .iter()
        .find(|(name, _)| name == "x-hubject-signature")
        .map(|(_, value)| value.clone());
    assert_eq!(
        signature,
        Some(format!("sha256={}", hmac_hex(&emsp_secret, body)))
    );
    // An OEM of another WMI cannot fetch it, and no event follows.
    let (status, _) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/ccp/provideSignedContractData/{emaid}/{pcid}"),
        Some(&who.other_oem.token),
        None,
    )
    .await;
    assert_eq!(status, 403);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(emsp_receiver.received().len(), 1);
    assert!(abc_receiver.received().is_empty());

    // Updating the filter to ABC stops PNC events at that endpoint.
    let pnc_id = pnc_endpoint["id"].as_str().unwrap();
    let (status, updated) = send(
        &sandbox,
        Method::PUT,
        &format!("/opnc/v1/event/endpoints/{pnc_id}"),
        Some(&oem.token),
        Some(json!({"url": pnc_url, "wmi": ["ABC"]})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["wmis"], json!(["ABC"]));
    let before = pnc_receiver.received().len();
    let (status, body) = generate(&sandbox, &who.emsp.token, "DEPNCD00000002", pcid).await;
    assert_eq!(status, 201, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        pnc_receiver.received().len(),
        before,
        "{backend:?}: filtered out"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn webhooks_two_registry_replicas_deliver_each_event_once() {
    use reqwest::Method;
    // The first delivery attempt fails with a 500; every later one succeeds.
    let (receiver, url) = Receiver::start(vec![500]).await;
    let allowed_prefix = url.trim_end_matches("hooks").to_string();
    let sandbox = Sandbox::start_with(Backend::Postgres, |config| {
        config.registry.webhook_allowed_url_prefixes = vec![allowed_prefix.clone()];
        config.registry.webhook_retry_base_ms = 1000;
        config.registry.webhook_poll_interval_ms = 20;
    })
    .await;
    // A second registry on the same database, as `pnc serve --only registry` runs it: its
    // dispatcher races the first one for every delivery.
    let replica_shutdown = tokio_util::sync::CancellationToken::new();
    let internal_ca = pnc_common::tls::InternalCa::from_config(&sandbox.config).expect("ca");
    let context = pnc_common::cli::context_for(
        pnc_common::Component::Registry,
        Arc::new(sandbox.config.clone()),
        &internal_ca,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        replica_shutdown.clone(),
    )
    .expect("replica context");
    let replica = pnc_registry::start(context).await.expect("second registry");

    let who = parties(&sandbox).await;
    let pki = dev_pki(&sandbox);
    wait_for_roots(&sandbox, &who.admin.token, &pki).await;
    let (status, endpoint) = send(
        &sandbox,
        Method::POST,
        "/v1/webhook/endpoints",
        Some(&who.emsp.token),
        Some(json!({"url": url, "enabledEvents": ["mo.contract.created.sent.to.oem"]})),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    let pcid = "PNCREPLICACAR0001";
    let (status, body) = send(
        &sandbox,
        Method::PUT,
        "/v1/oem/provCerts",
        Some(&who.oem.token),
        Some(pcp_body(&pki, &valid_leaf(&pki, pcid))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let emaids: Vec<String> = (1..=8)
        .map(|index| format!("DEPNCR0000000{index}"))
        .collect();
    for emaid in &emaids {
        let (status, body) = generate(&sandbox, &who.emsp.token, emaid, pcid).await;
        assert_eq!(status, 201, "{body}");
    }

    // Every event delivered, per the log.
    let mut log = Value::Null;
    for _ in 0..150 {
        let (_, deliveries) = send(
            &sandbox,
            Method::GET,
            &format!("/v1/webhook/endpoints/{endpoint_id}/deliveries"),
            Some(&who.emsp.token),
            None,
        )
        .await;
        let all_delivered = deliveries.as_array().is_some_and(|list| {
            list.len() == emaids.len() && list.iter().all(|entry| entry["status"] == "delivered")
        });
        if all_delivered {
            log = deliveries;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = log
        .as_array()
        .cloned()
        .expect("all deliveries done within 15 s");
    // Grace for a duplicate a racing replica would send late.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();
    let arrivals = receiver.arrivals.lock().unwrap().clone();
    assert_eq!(
        received.len(),
        emaids.len() + 1,
        "each event once, plus the retried one"
    );
    let mut event_ids = std::collections::BTreeMap::<String, Vec<usize>>::new();
    for (index, (headers, body)) in received.iter().enumerate() {
        let signature = headers
            .iter()
            .find(|(name, _)| name == "x-hubject-signature")
            .map(|(_, value)| value.clone());
        assert_eq!(
            signature,
            Some(format!("sha256={}", hmac_hex(&secret, body))),
            "the HMAC-SHA256 signature verifies"
        );
        let event: Value = serde_json::from_str(body).unwrap();
        event_ids
            .entry(event["eventId"].as_str().unwrap().to_string())
            .or_default()
            .push(index);
    }
    assert_eq!(event_ids.len(), emaids.len(), "one event per contract");
    let retried: Vec<&Vec<usize>> = event_ids.values().filter(|seen| seen.len() > 1).collect();
    assert_eq!(
        retried.len(),
        1,
        "only the event answered with 500 came twice"
    );
    let (first, second) = (retried[0][0], retried[0][1]);
    assert_eq!(first, 0, "the 500 went to the first delivery");
    let backoff = arrivals[second] - arrivals[first];
    assert!(
        backoff >= Duration::from_millis(900),
        "the retry waited for the backoff: {backoff:?}"
    );
    let retried_entries: Vec<&Value> = log.iter().filter(|entry| entry["attempts"] == 2).collect();
    assert_eq!(retried_entries.len(), 1, "the log shows the retry: {log:?}");
    assert!(
        log.iter()
            .filter(|entry| entry["attempts"] != 2)
            .all(|entry| entry["attempts"] == 1),
        "every other delivery took one attempt: {log:?}"
    );
    replica_shutdown.cancel();
    replica.wait().await.expect("replica stops");
    sandbox.stop().await;
}
