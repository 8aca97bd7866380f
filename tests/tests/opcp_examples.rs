//! Every example body of the Hubject OPCP 1.0.0 files in `../shared/specs/opcp-1.0.0`
//! replayed against pnc, on SQLite and PostgreSQL: request examples are sent as a client
//! would send them, response examples are compared field by field with pnc's answers.
//!
//! The examples carry Hubject QA certificates from 2019–2025 that have expired since. They
//! are checked for real, at a moment they were valid: the sandbox's validity clock is
//! pinned (2022-06-01 for the OPCP contract example, 2025-01-01 for OPNC's), nothing is
//! switched off. Their root, Hubject's "V2G Root CA QA G1", is not in the OPCP files; the
//! public certificate is in `tests/fixtures/hubject-v2g-root-ca-qa-g1.pem` (provenance
//! there) and is registered first, with the two roots the RCP examples carry.

use std::collections::BTreeSet;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_common::runtime::ValidityClock;
use pnc_proto::principal::Role;
use pnc_tests::{Backend, Sandbox};
use reqwest::Method;
use serde_json::{Value, json};

/// 2022-06-01T00:00:00Z: the OPCP contract example (EMP99CQAPAB004, 2021-08-31 to
/// 2022-08-30), its CPS chain (to 2023-04-26) and the PCP example (2021-06-15 to
/// 2025-06-15) are all valid.
const OPCP_EXAMPLES_VALID_AT: i64 = 1_654_041_600;
/// 2025-01-01T00:00:00Z: the OPNC contract example (DEICECOPNCCERT, 2024-07-04 to
/// 2026-07-01, CPS 2024.4 to 2028) and the PCP example are valid.
const OPNC_EXAMPLE_VALID_AT: i64 = 1_735_689_600;

const PCID: &str = "huboemprovcqa0615";

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

fn spec(name: &str) -> Value {
    let path = shared().join("specs/opcp-1.0.0").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("spec file")).expect("JSON")
}

/// A JSON pointer into a spec file (`~1` for `/` in path keys).
fn at(document: &Value, pointer: &str) -> Value {
    document
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no example at {pointer}"))
        .clone()
}

fn keys(object: &Value) -> BTreeSet<String> {
    object
        .as_object()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default()
}

/// pnc's answer carries every field of the spec's example (pnc may add more).
fn assert_has_example_fields(answer: &Value, example: &Value, context: &str) {
    let missing: Vec<String> = keys(example).difference(&keys(answer)).cloned().collect();
    assert!(
        missing.is_empty(),
        "{context}: fields of the OPCP example missing in pnc's answer: {missing:?}\n{answer}"
    );
}

fn qa_root_der() -> Vec<u8> {
    let pem = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/hubject-v2g-root-ca-qa-g1.pem"),
    )
    .expect("QA root fixture");
    openssl::x509::X509::from_pem(&pem)
        .expect("PEM")
        .to_der()
        .expect("DER")
}

async fn send(
    sandbox: &Sandbox,
    method: Method,
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

#[tokio::test]
async fn opcp_example_bodies_are_accepted_at_a_time_they_were_valid() {
    for backend in Backend::ALL {
        replay_on(backend).await;
    }
}

async fn replay_on(backend: Backend) {
    let clock = ValidityClock::pinned_at(OPCP_EXAMPLES_VALID_AT);
    let sandbox = Sandbox::start_with_clock(backend, clock.clone(), |_| {}).await;
    let admin = sandbox.admin().await;
    let oem = sandbox.client(Role::Oem, &["HUB"], &[], &[]).await;
    let emsp = sandbox
        .client(Role::Emsp, &[], &["EMP99", "DEICE"], &[])
        .await;
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*CPO"]).await;
    let (token_spec, rcp, pcp, ccp, webhooks, payloads) = (
        spec("accessToken.v1.json"),
        spec("rcp.v1.json"),
        spec("pcp.v1.json"),
        spec("ccp.v1.json"),
        spec("webhooks.v1.json"),
        spec("webhook.payload.v1.json"),
    );

    // accessToken: the example's client does not exist here; the answer is OAuth-shaped.
    let example = at(
        &token_spec,
        "/paths/~1oauth~1token/post/requestBody/content/application~1json/examples/QA EU Token/value",
    );
    let (status, answer) = send(&sandbox, Method::POST, "/oauth/token", None, Some(example)).await;
    assert_eq!(status, 401, "{backend:?} token example: {answer}");
    assert!(answer["error"].is_string(), "{answer}");

    // RCP: both PUT examples (Hubject's V2G Root CA G2, a BMW OEM root), then the QA root.
    let put_content = "/paths/~1v1~1root~1rootCerts/put/requestBody/content/application~1json";
    for pointer in [
        format!("{put_content}/examples/example-1/value"),
        format!("{put_content}/schema/x-examples/example-1"),
    ] {
        let (status, answer) = send(
            &sandbox,
            Method::PUT,
            "/v1/root/rootCerts",
            Some(&admin.token),
            Some(at(&rcp, &pointer)),
        )
        .await;
        assert_eq!(status, 200, "{backend:?} {pointer}: {answer}");
    }
    let (status, answer) = send(
        &sandbox,
        Method::PUT,
        "/opnc/v1/rcp/rootcertificates",
        Some(&admin.token),
        Some(json!({
            "caCertificate": STANDARD.encode(qa_root_der()),
            "rootTypeList": ["V2G", "eMSP", "OEM"],
        })),
    )
    .await;
    assert_eq!(status, 200, "{backend:?} QA root: {answer}");
    let (status, listed) = send(
        &sandbox,
        Method::GET,
        "/v1/root/rootCerts",
        Some(&cpo.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let g2_example = at(
        &rcp,
        "/paths/~1v1~1root~1rootCerts~1{rootCertificateId}/get/responses/200/content/application~1json/examples/example/value/RootResponse",
    );
    let g2 = listed["RootCertificateCollection"]["rootCertificates"]
        .as_array()
        .expect("rootCertificates")
        .iter()
        .find(|root| root["caCertificate"] == g2_example["caCertificate"])
        .cloned()
        .expect("V2G Root CA G2 listed");
    let (status, one) = send(
        &sandbox,
        Method::GET,
        &format!(
            "/v1/root/rootCerts/{}",
            g2["rootCertificateId"].as_str().unwrap()
        ),
        Some(&cpo.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_has_example_fields(&one["RootResponse"], &g2_example, "GET rootCerts/{id}");
    assert_eq!(
        one["RootResponse"]["distinguishedName"],
        g2_example["distinguishedName"]
    );

    // PCP: the "example complete" upload by the OEM of WMI HUB, answered like the example.
    let pcp_put = at(
        &pcp,
        "/paths/~1v1~1oem~1provCerts/put/requestBody/content/application~1json/examples/example complete/value",
    );
    let (status, stored) = send(
        &sandbox,
        Method::PUT,
        "/v1/oem/provCerts",
        Some(&oem.token),
        Some(pcp_put.clone()),
    )
    .await;
    assert_eq!(status, 200, "{backend:?} PCP example: {stored}");
    let pcp_answer = at(
        &pcp,
        "/paths/~1v1~1oem~1provCerts/put/responses/200/content/application~1json/examples/example/value",
    );
    assert_has_example_fields(&stored, &pcp_answer, "PUT provCerts");
    assert_eq!(stored["vehicleCertificate"], pcp_put["vehicleCertificate"]);
    let (status, fetched) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/oem/provCerts/{PCID}"),
        Some(&emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{fetched}");
    let get_example = at(
        &pcp,
        "/paths/~1v1~1oem~1provCerts~1{pcid}/get/responses/200/content/application~1json/examples/example/value",
    );
    assert_has_example_fields(&fetched, &get_example, "GET provCerts/{pcid}");
    assert_has_example_fields(
        &fetched["OEMMessage"],
        &get_example["OEMMessage"],
        "GET provCerts/{pcid} OEMMessage",
    );

    // CPS: the eMSP's own PKI (Hubject's QA MO chain, EMP99CQATEST001, valid Feb to Dec
    // 2022) signed by pnc's CPS. SignedContractDataRequest's example carries the legacy
    // contractData shape its schema no longer has; the schema's ContractData example is
    // sent in it, as a client following the schema does.
    let cps = spec("cps.v1.json");
    let mut sign_request = at(
        &cps,
        "/components/schemas/SignedContractDataRequest/x-examples/example-1",
    );
    sign_request["contractData"] = at(
        &cps,
        "/components/schemas/ContractData/x-examples/example-1",
    );
    let (status, signed) = send(
        &sandbox,
        Method::PUT,
        "/v1/cps/contractData/signed",
        Some(&emsp.token),
        Some(sign_request),
    )
    .await;
    assert_eq!(status, 201, "{backend:?} CPS sign example: {signed}");
    assert_has_example_fields(
        &signed,
        &at(
            &cps,
            "/components/schemas/SignedContractDataResponse/x-examples/example-1",
        ),
        "PUT cps/contractData/signed",
    );
    let legacy = at(
        &cps,
        "/components/schemas/CreateSignedContractDataRequest/x-examples/example-1",
    );
    let (status, signed) = send(
        &sandbox,
        Method::PUT,
        "/v1/cps/signedContractData",
        Some(&emsp.token),
        Some(legacy.clone()),
    )
    .await;
    assert_eq!(status, 200, "{backend:?} CPS legacy example: {signed}");
    assert_has_example_fields(
        &signed,
        &at(
            &cps,
            "/components/schemas/CreateSignedContractDataResponse/x-examples/example",
        ),
        "PUT cps/signedContractData",
    );
    let (status, forwarded) = send(
        &sandbox,
        Method::PUT,
        "/v1/cps/forward/signedContractData",
        Some(&emsp.token),
        Some(legacy),
    )
    .await;
    assert_eq!(status, 201, "{backend:?} CPS forward example: {forwarded}");
    // The generate example asks for a contract that ended in December 2022; pnc issues
    // certificates in real time and does not backdate one that is over.
    let (status, refused) = send(
        &sandbox,
        Method::PUT,
        "/v1/cps/generate/signedContractData",
        Some(&emsp.token),
        Some(at(
            &cps,
            "/components/schemas/GenerateSignedContractDataRequest/x-examples/example",
        )),
    )
    .await;
    assert_eq!(status, 400, "{backend:?} CPS generate example: {refused}");

    // Webhooks: the request example subscribes; the eMSP's subscription records what pnc
    // would send, compared below with the payload example.
    let create = at(
        &webhooks,
        "/paths/~1v1~1webhook~1endpoints/post/requestBody/content/application~1json/examples/create-webhook-example/value",
    );
    let (status, created) = send(
        &sandbox,
        Method::POST,
        "/v1/webhook/endpoints",
        Some(&oem.token),
        Some(create),
    )
    .await;
    assert_eq!(status, 201, "{backend:?} webhook example: {created}");
    let created_example = at(
        &webhooks,
        "/paths/~1v1~1webhook~1endpoints/post/responses/201/content/application~1json/examples/endpoint-created/value",
    );
    // The 201 example names the list `events`, the schema and every other example
    // `enabledEvents`; pnc answers with the schema's name.
    let mut created_fields = created_example.clone();
    created_fields.as_object_mut().unwrap().remove("events");
    assert_has_example_fields(&created, &created_fields, "POST webhook endpoints");
    let endpoint_id = created["id"].as_str().unwrap().to_string();
    let (status, got) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/webhook/endpoints/{endpoint_id}"),
        Some(&oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // The secret is shown once, at creation (pnc's decision); every other field is there.
    let mut get_example = at(
        &webhooks,
        "/paths/~1v1~1webhook~1endpoints~1{id}/get/responses/200/content/application~1json/examples/get-endpoint/value",
    );
    get_example.as_object_mut().unwrap().remove("secret");
    assert_has_example_fields(&got, &get_example, "GET webhook endpoint");
    // The schema's x-examples name `contract.created` / `contract.deleted`, which are not in
    // OPCP's Event enum: refused as the schema's validation demands.
    let schema_example = at(
        &webhooks,
        "/components/schemas/EndpointRequest/x-examples/EndpointRequest example/value",
    );
    let (status, refused) = send(
        &sandbox,
        Method::POST,
        "/v1/webhook/endpoints",
        Some(&oem.token),
        Some(schema_example),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let (status, emsp_endpoint) = send(
        &sandbox,
        Method::POST,
        "/v1/webhook/endpoints",
        Some(&emsp.token),
        Some(json!({
            "url": "https://mywebhooks.com/payload",
            "enabledEvents": ["mo.contract.created.sent.to.oem"],
        })),
    )
    .await;
    assert_eq!(status, 201, "{emsp_endpoint}");

    // CCP: the signed CertificateInstallationRes of the OPCP examples, stored by its eMSP
    // through PUT /v1/ccp/signedContractData and handed to the OEM unchanged.
    let provide_example = at(
        &ccp,
        "/paths/~1v1~1ccp~1provideSignedContractData~1{emaid}~1{pcid}/get/responses/200/content/application~1json/examples/Positive Response/value",
    );
    let example_exi = provide_example["certificateInstallationRes"]
        .as_str()
        .expect("certificateInstallationRes")
        .to_string();
    let (status, answer) = send(
        &sandbox,
        Method::PUT,
        "/v1/ccp/signedContractData",
        Some(&emsp.token),
        Some(json!({
            "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
            "emaid": "EMP99CQAPAB004",
            "pcid": PCID,
            "signedContractDataXML": example_exi,
        })),
    )
    .await;
    assert_eq!(status, 201, "{backend:?} OPCP contract example: {answer}");
    let (status, lookup) = send(
        &sandbox,
        Method::GET,
        "/v1/ccp/lookupContract/EMP99CQAPAB004",
        Some(&emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{lookup}");
    let lookup_example = at(
        &ccp,
        "/paths/~1v1~1ccp~1lookupContract~1{emaid}/get/responses/200/content/application~1json/examples/example-1/value",
    );
    assert_has_example_fields(
        &lookup["XMLContracts"][0],
        &lookup_example["XMLContracts"][0],
        "lookupContract",
    );
    let (status, provided) = send(
        &sandbox,
        Method::GET,
        &format!("/v1/ccp/provideSignedContractData/EMP99CQAPAB004/{PCID}"),
        Some(&oem.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{provided}");
    assert_has_example_fields(&provided, &provide_example, "provideSignedContractData");
    let decode = |base64: &str| {
        let exi = STANDARD.decode(base64).expect("base64");
        pnc_exi::decode_document(pnc_exi::Schema::Iso2, &exi).expect("EXI")
    };
    let ours = decode(provided["certificateInstallationRes"].as_str().unwrap());
    let theirs = decode(&example_exi);
    assert_eq!(
        ours.find("Body"),
        theirs.find("Body"),
        "{backend:?}: the OEM receives Hubject's signed elements unchanged"
    );
    assert_eq!(
        ours.find("Header")
            .and_then(|header| header.find("Signature")),
        theirs
            .find("Header")
            .and_then(|header| header.find("Signature")),
        "{backend:?}: with Hubject's signature"
    );

    // The contract event pnc queued has the payload example's fields.
    let (status, log) = send(
        &sandbox,
        Method::GET,
        &format!(
            "/v1/webhook/endpoints/{}/deliveries",
            emsp_endpoint["id"].as_str().unwrap()
        ),
        Some(&emsp.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let sent: Value =
        serde_json::from_str(log[0]["body"].as_str().expect("delivery body")).expect("JSON");
    let payload_example = at(
        &payloads,
        "/paths/~1customer.defined.pcid.emaid.event.webhook.path/post/requestBody/content/application~1json/examples/ISO 15118-2 Example/value",
    );
    assert_has_example_fields(&sent, &payload_example, "contract event");
    assert_has_example_fields(
        &sent["payload"],
        &payload_example["payload"],
        "contract event payload",
    );
    assert_eq!(
        sent["payload"]["cpsSignerRootCommonName"],
        "V2G Root CA QA G1"
    );

    // The CPO flow with the OPCP request example: its vehicle (hubjectopenpnc0001, under an
    // OEM TEST chain the spec does not carry) has no contract here, so Hubject's documented
    // answer follows: 404 with a failure CertificateInstallationRes (alwaysReturnEXI).
    let request_example = at(
        &ccp,
        "/paths/~1v1~1ccp~1signedContractData/post/requestBody/content/application~1json/examples/example-1/value",
    );
    let (status, answer) = send(
        &sandbox,
        Method::POST,
        "/v1/ccp/signedContractData",
        Some(&cpo.token),
        Some(request_example),
    )
    .await;
    assert_eq!(status, 404, "{backend:?} CCP request example: {answer}");
    let failure =
        answer["CCPResponse"]["emaidContent"][0]["messageDef"]["certificateInstallationRes"]
            .as_str()
            .unwrap_or_else(|| panic!("a failure EXI: {answer}"));
    let failure = decode(failure);
    let code = failure
        .find("Body")
        .and_then(|body| body.elements().next())
        .and_then(|res| res.find("ResponseCode"))
        .map(|code| code.text_content())
        .unwrap_or_default();
    assert!(code.starts_with("FAILED"), "{code}");

    // OPNC's contract example (2024-2026) at a time it was valid, through OPNC's PUT.
    assert!(clock.set(OPNC_EXAMPLE_VALID_AT));
    let opnc_example: Value = serde_json::from_str(
        &std::fs::read_to_string(
            shared().join("specs/opnc-1/components/schemas/signedContractData.v1.json"),
        )
        .expect("OPNC schema"),
    )
    .expect("JSON");
    let opnc_exi = opnc_example["properties"]["certificateInstallationRes"]["example"]
        .as_str()
        .expect("example")
        .to_string();
    let (status, answer) = send(
        &sandbox,
        Method::PUT,
        "/opnc/v1/ccp/signedcontractdata",
        Some(&emsp.token),
        Some(json!({
            "certificateInstallationRes": opnc_exi,
            "emaid": "DEICECOPNCCERT",
            "pcid": PCID,
            "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
            "cpsRootDistinguishedName": "CN=V2G Root CA QA G1, DC=V2G, O=Hubject GmbH, C=DE",
        })),
    )
    .await;
    assert_eq!(status, 201, "{backend:?} OPNC contract example: {answer}");
    // The same upload today: the contract certificate expired in July 2026.
    assert!(clock.set(pnc_common::db::unix_now()));
    let (status, answer) = send(
        &sandbox,
        Method::PUT,
        "/opnc/v1/ccp/signedcontractdata",
        Some(&emsp.token),
        Some(json!({
            "certificateInstallationRes": opnc_exi,
            "emaid": "DEICECOPNCCERT",
            "pcid": PCID,
            "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
        })),
    )
    .await;
    assert_eq!(status, 400, "{backend:?}: expired now: {answer}");
    sandbox.stop().await;
}
