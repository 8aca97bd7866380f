//! CertificateUpdate for a contract from the eMSP's own PKI (pnc extension
//! `renewsContractCertificateFingerprint`): pnc never holds the contract key, so the eMSP
//! supplies the renewal sealed to the old contract certificate [V2G2-821], pnc's CPS signs
//! it at registration, and the EV's CertificateUpdateReq (signed with the old contract key)
//! is answered with it. Refusals write nothing. Through the HTTP edge, on both backends.

mod provisioning_support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_pki::Certificate;
use pnc_pki::dev::DevCert;
use pnc_pki::key_transport::iso2;
use pnc_proto::principal::Role;
use pnc_tests::{Backend, Sandbox};
use provisioning_support::*;
use serde_json::{Value, json};
use sqlx::Row;
use time::Duration;

const SESSION_ID: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

fn fingerprint(certificate: &Certificate) -> String {
    hex::encode(certificate.sha256_fingerprint())
}

/// The body of `PUT /v1/cps/contractData/signed` for `contract`, its key sealed to
/// `recipient`.
fn sign_body(
    pki: &pnc_pki::DevPki,
    contract: &Certificate,
    contract_key: &pnc_pki::key_transport::ContractKey,
    recipient: &Certificate,
) -> Value {
    let sealed =
        iso2::seal(recipient.public_key_spki_der(), contract_key.private_key()).expect("seal");
    json!({
        "contractData": {
            "contractCertificate": STANDARD.encode(contract.der()),
            "contractSubCa2Certificate": STANDARD.encode(pki.certificate(DevCert::MoSubCa2).der()),
            "contractSubCa1Certificate": STANDARD.encode(pki.certificate(DevCert::MoSubCa1).der()),
            "contractSignatureEncryptedPrivateKey": STANDARD.encode(sealed.encrypted_private_key),
            "dHpublickey": STANDARD.encode(sealed.dh_public_key),
        },
        "xsdMsgDefNamespace": ISO2_NAMESPACE,
    })
}

async fn put_sign(sandbox: &Sandbox, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = sandbox
        .http
        .put(sandbox.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("sign");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends the update through the OCPP-shaped endpoint; returns the ResponseCode, the
/// RetryCounter and the decoded message (SessionID checked).
async fn ev_update(
    sandbox: &Sandbox,
    token: &str,
    exi: &[u8],
) -> (String, Option<String>, pnc_exi::Element) {
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
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "Accepted", "{body}");
    let exi = STANDARD
        .decode(body["exiResponse"].as_str().expect("exiResponse"))
        .expect("base64");
    let root = pnc_exi::decode_document(pnc_exi::Schema::Iso2, &exi).expect("decodes");
    let message = pnc_exi::iso2::V2gMessage::from_element(&root).expect("typed");
    assert_eq!(message.header.session_id, SESSION_ID, "SessionID echoed");
    let pnc_exi::iso2::Body::CertificateUpdateRes(res) = &message.body else {
        panic!("not a CertificateUpdateRes: {body}");
    };
    let retry = root
        .find("Body")
        .and_then(|body| body.find("CertificateUpdateRes"))
        .and_then(|res| res.find("RetryCounter"))
        .map(|retry| retry.text_content());
    (res.response_code.as_str().to_string(), retry, root)
}

/// What the registry holds: renewals, audit actions, and the end of the contract's
/// current certificate.
struct Stored {
    renewals: i64,
    /// Webhook deliveries queued, by event type.
    events: Vec<String>,
    audit_actions: Vec<String>,
    contract_not_after: i64,
}

async fn stored(sandbox: &Sandbox) -> Stored {
    let database = pnc_registry::open_database(&sandbox.storage())
        .await
        .expect("registry database");
    let renewals: i64 = sqlx::query("SELECT COUNT(*) AS n FROM contract_renewals")
        .fetch_one(database.pool())
        .await
        .expect("count")
        .try_get("n")
        .expect("n");
    let events = sqlx::query("SELECT event_type FROM webhook_deliveries ORDER BY event_type")
        .fetch_all(database.pool())
        .await
        .expect("deliveries")
        .iter()
        .map(|row| row.try_get::<String, _>("event_type").expect("event_type"))
        .collect();
    let audit_actions = sqlx::query("SELECT action FROM audit_log ORDER BY sequence")
        .fetch_all(database.pool())
        .await
        .expect("audit")
        .iter()
        .map(|row| row.try_get::<String, _>("action").expect("action"))
        .collect();
    // The leaf's validity is kept beside the stored contract; the two leaves differ in it.
    let contract_not_after: i64 =
        sqlx::query("SELECT certificate_not_after FROM contracts WHERE emaid_key = $1")
            .bind(EMAID)
            .fetch_one(database.pool())
            .await
            .expect("contract")
            .try_get("certificate_not_after")
            .expect("certificate_not_after");
    database.pool().close().await;
    Stored {
        renewals,
        events,
        audit_actions,
        contract_not_after,
    }
}

async fn emsp_renewal_on(backend: Backend) {
    // Deliveries are queued (and fail: nothing listens there); the test reads the queue.
    let hook_prefix = "http://127.0.0.1:9/";
    let sandbox = Sandbox::start_with(backend, |config| {
        config.registry.webhook_allowed_url_prefixes = vec![hook_prefix.to_string()];
    })
    .await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    register_dev_vehicle(&sandbox, &pki).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;
    let response = sandbox
        .http
        .post(sandbox.url("/v1/webhook/endpoints"))
        .bearer_auth(&emsp.token)
        .json(&json!({
            "url": format!("{hook_prefix}hooks"),
            "enabledEvents": ["mo.contract.queued.to.oem", "mo.contract.updated.sent.to.oem"],
        }))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(response.status(), 201, "subscribe");
    let v2g_root = pki.certificate(DevCert::V2gRoot);
    let mo_chain = |leaf: Certificate| {
        vec![
            leaf,
            pki.certificate(DevCert::MoSubCa2).clone(),
            pki.certificate(DevCert::MoSubCa1).clone(),
        ]
    };

    // The eMSP registers a contract from its own PKI, sealed to the vehicle.
    let old_key = iso2::generate_contract_key().expect("key");
    let old_contract = pki
        .issue_contract(EMAID, old_key.public_key_spki_der(), Duration::days(30))
        .expect("contract");
    let mut body = sign_body(
        &pki,
        &old_contract,
        &old_key,
        pki.certificate(DevCert::OemProvisioning),
    );
    body["pcid"] = json!(EXAMPLE_PCID);
    let (status, answer) =
        put_sign(&sandbox, &emsp.token, "/v1/cps/contractData/signed", &body).await;
    assert_eq!(status, 201, "{answer}");
    let ev_key = HeldKey::from_scalar(old_key.private_key());
    let old_chain = mo_chain(old_contract.clone());
    let update = update_request(
        &SESSION_ID,
        &ev_key,
        &old_chain,
        EMAID,
        vec![root_id(v2g_root)],
    );

    // fail/no-renewal-yet: FAILED_NoCertificateAvailable, RetryCounter 0 (one may appear).
    let (code, retry, _) = ev_update(&sandbox, &cpo.token, &update).await;
    assert_eq!(code, "FAILED_NoCertificateAvailable");
    assert_eq!(
        retry.as_deref(),
        Some("0"),
        "RetryCounter 0 without a renewal"
    );

    let new_key = iso2::generate_contract_key().expect("key");
    let new_contract = pki
        .issue_contract(EMAID, new_key.public_key_spki_der(), Duration::days(400))
        .expect("renewed contract");
    let mut renewal = sign_body(&pki, &new_contract, &new_key, &old_contract);
    renewal["renewsContractCertificateFingerprint"] = json!(fingerprint(&old_contract));
    let before = stored(&sandbox).await;
    assert_eq!(before.renewals, 0);

    // fail/other-emsp: another eMSP may not renew this eMSP's contract.
    let other = sandbox.client(Role::Emsp, &[], &["FRXYZ"], &[]).await;
    let (status, answer) = put_sign(
        &sandbox,
        &other.token,
        "/v1/cps/contractData/signed",
        &renewal,
    )
    .await;
    assert_eq!(status, 403, "fail/other-emsp: {answer}");
    // fail/other-emsp-own-emaid: nor point its own contract at this eMSP's certificate.
    let other_key = iso2::generate_contract_key().expect("key");
    let other_contract = pki
        .issue_contract(
            "FRXYZC00000001",
            other_key.public_key_spki_der(),
            Duration::days(400),
        )
        .expect("contract");
    let mut foreign = sign_body(&pki, &other_contract, &other_key, &old_contract);
    foreign["renewsContractCertificateFingerprint"] = json!(fingerprint(&old_contract));
    let (status, answer) = put_sign(
        &sandbox,
        &other.token,
        "/v1/cps/contractData/signed",
        &foreign,
    )
    .await;
    assert_eq!(status, 400, "fail/other-emsp-own-emaid: {answer}");

    // fail/other-emaid: a chain for another eMAID of the same eMSP.
    let sibling = pki
        .issue_contract(
            "DEPNCC00000002",
            new_key.public_key_spki_der(),
            Duration::days(400),
        )
        .expect("contract");
    let mut sibling_body = sign_body(&pki, &sibling, &new_key, &old_contract);
    sibling_body["renewsContractCertificateFingerprint"] = json!(fingerprint(&old_contract));
    let (status, answer) = put_sign(
        &sandbox,
        &emsp.token,
        "/v1/cps/contractData/signed",
        &sibling_body,
    )
    .await;
    assert_eq!(status, 400, "fail/other-emaid: {answer}");

    // fail/older: a certificate that ends before the one it renews.
    let older = pki
        .issue_contract(EMAID, new_key.public_key_spki_der(), Duration::days(10))
        .expect("contract");
    let mut older_body = sign_body(&pki, &older, &new_key, &old_contract);
    older_body["renewsContractCertificateFingerprint"] = json!(fingerprint(&old_contract));
    let (status, answer) = put_sign(
        &sandbox,
        &emsp.token,
        "/v1/cps/contractData/signed",
        &older_body,
    )
    .await;
    assert_eq!(status, 400, "fail/older: {answer}");

    // fail/foreign-chain: the renewal must chain to an MO or V2G root of the pool.
    let stranger = pnc_pki::DevPki::generate(&pnc_pki::DevPkiOptions {
        ocsp_signers: false,
        ..pnc_pki::DevPkiOptions::default()
    })
    .expect("foreign pki");
    let stranger_contract = stranger
        .issue_contract(EMAID, new_key.public_key_spki_der(), Duration::days(400))
        .expect("contract");
    let mut stranger_body = sign_body(&stranger, &stranger_contract, &new_key, &old_contract);
    stranger_body["renewsContractCertificateFingerprint"] = json!(fingerprint(&old_contract));
    let (status, answer) = put_sign(
        &sandbox,
        &emsp.token,
        "/v1/cps/contractData/signed",
        &stranger_body,
    )
    .await;
    assert_eq!(status, 400, "fail/foreign-chain: {answer}");

    // fail/unknown-certificate and fail/malformed-fingerprint.
    let mut unknown = renewal.clone();
    unknown["renewsContractCertificateFingerprint"] = json!("00".repeat(32));
    let (status, answer) = put_sign(
        &sandbox,
        &emsp.token,
        "/v1/cps/contractData/signed",
        &unknown,
    )
    .await;
    assert_eq!(status, 400, "fail/unknown-certificate: {answer}");
    let mut malformed = renewal.clone();
    malformed["renewsContractCertificateFingerprint"] = json!("not-a-fingerprint");
    let (status, answer) = put_sign(
        &sandbox,
        &emsp.token,
        "/v1/cps/contractData/signed",
        &malformed,
    )
    .await;
    assert_eq!(status, 400, "fail/malformed-fingerprint: {answer}");

    let after_refusals = stored(&sandbox).await;
    assert_eq!(after_refusals.renewals, 0, "refusals write nothing");
    assert_eq!(after_refusals.audit_actions, before.audit_actions);
    assert!(
        after_refusals.events.is_empty(),
        "{:?}",
        after_refusals.events
    );
    assert_eq!(
        after_refusals.contract_not_after,
        old_contract.not_after().unix_timestamp()
    );

    // ok/renewal-supplied: stored as the pending renewal; the contract is unchanged.
    let (status, answer) = put_sign(
        &sandbox,
        &emsp.token,
        "/v1/cps/contractData/signed",
        &renewal,
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        answer["pcid"], EXAMPLE_PCID,
        "on the renewed contract's PCID"
    );
    let pending = stored(&sandbox).await;
    assert_eq!(pending.renewals, 1);
    assert_eq!(
        pending.audit_actions.last().map(String::as_str),
        Some("contract.renewal.put")
    );
    assert_eq!(
        pending.contract_not_after,
        old_contract.not_after().unix_timestamp(),
        "not applied yet"
    );
    assert_eq!(pending.events, ["mo.contract.queued.to.oem"]);

    // ok/update: the EV with its old contract key gets the renewal.
    let (code, retry, tree) = ev_update(&sandbox, &cpo.token, &update).await;
    assert_eq!(code, "OK");
    assert_eq!(retry, None, "no RetryCounter on success");
    let renewed = verify_answer(&tree, v2g_root);
    assert_eq!(renewed.emaid, EMAID);
    assert_eq!(renewed.contract_chain[0], new_contract);
    // [V2G2-821]: the EV opens the new key with its old contract key, and it matches.
    let opened = open_contract_key_with(&ev_key, &renewed);
    assert_eq!(opened.spki(), new_contract.public_key_spki_der());
    let applied = stored(&sandbox).await;
    assert_eq!(
        applied.contract_not_after,
        new_contract.not_after().unix_timestamp(),
        "the contract moved on"
    );
    assert_eq!(
        applied.audit_actions.last().map(String::as_str),
        Some("contract.renew")
    );
    assert_eq!(
        applied.events,
        [
            "mo.contract.queued.to.oem",
            "mo.contract.updated.sent.to.oem"
        ]
    );

    // ok/retry: an EV that lost the answer asks again with its old certificate.
    let (code, _, tree) = ev_update(&sandbox, &cpo.token, &update).await;
    assert_eq!(code, "OK", "the same renewal again");
    assert_eq!(
        verify_answer(&tree, v2g_root).contract_chain[0],
        new_contract
    );

    // fail/renewed-without-renewal: the renewed certificate has none supplied yet.
    let new_held = HeldKey::from_scalar(new_key.private_key());
    let (code, retry, _) = ev_update(
        &sandbox,
        &cpo.token,
        &update_request(
            &SESSION_ID,
            &new_held,
            &mo_chain(new_contract.clone()),
            EMAID,
            vec![root_id(v2g_root)],
        ),
    )
    .await;
    assert_eq!(code, "FAILED_NoCertificateAvailable");
    assert_eq!(retry.as_deref(), Some("0"));

    // ok/opnc: the next renewal through OPNC's sign endpoint, renewing the renewed one.
    let third_key = iso2::generate_contract_key().expect("key");
    let third = pki
        .issue_contract(EMAID, third_key.public_key_spki_der(), Duration::days(500))
        .expect("contract");
    let sealed =
        iso2::seal(new_contract.public_key_spki_der(), third_key.private_key()).expect("seal");
    let response = sandbox
        .http
        .put(sandbox.url("/opnc/v1/cps/contractData/sign"))
        .bearer_auth(&emsp.token)
        .header("OPNC-from-party-type", "emsp")
        .header("OPNC-from-party-id", "DE-PNC")
        .json(&json!({
            "contractCertificateBundle": {
                "pcid": EXAMPLE_PCID,
                "emaid": EMAID,
                "contractCertificateChain": {
                    "certificate": STANDARD.encode(third.der()),
                    "subCa2Certificate": STANDARD.encode(pki.certificate(DevCert::MoSubCa2).der()),
                    "subCa1Certificate": STANDARD.encode(pki.certificate(DevCert::MoSubCa1).der()),
                },
                "contractSignatureEncryptedPrivateKey": STANDARD.encode(sealed.encrypted_private_key),
                "dHpublickey": STANDARD.encode(sealed.dh_public_key),
            },
            "xsdMsgDefNamespace": ISO2_NAMESPACE,
            "renewsContractCertificateFingerprint": fingerprint(&new_contract),
        }))
        .send()
        .await
        .expect("opnc sign");
    assert_eq!(response.status(), 201, "ok/opnc");
    let (code, _, tree) = ev_update(
        &sandbox,
        &cpo.token,
        &update_request(
            &SESSION_ID,
            &new_held,
            &mo_chain(new_contract.clone()),
            EMAID,
            vec![root_id(v2g_root)],
        ),
    )
    .await;
    assert_eq!(code, "OK", "ok/opnc-update");
    let third_answer = verify_answer(&tree, v2g_root);
    assert_eq!(third_answer.contract_chain[0], third);
    open_contract_key_with(&new_held, &third_answer);

    // fail/taken: the applied renewal's old certificate names no live contract any more.
    let (status, answer) = put_sign(
        &sandbox,
        &emsp.token,
        "/v1/cps/contractData/signed",
        &renewal,
    )
    .await;
    assert_eq!(status, 400, "fail/taken: {answer}");

    // Cancelling the contract drops its renewals, pending or applied.
    let fourth_key = iso2::generate_contract_key().expect("key");
    let fourth = pki
        .issue_contract(EMAID, fourth_key.public_key_spki_der(), Duration::days(600))
        .expect("contract");
    let mut pending_body = sign_body(&pki, &fourth, &fourth_key, &third);
    pending_body["renewsContractCertificateFingerprint"] = json!(fingerprint(&third));
    let (status, answer) = put_sign(
        &sandbox,
        &emsp.token,
        "/v1/cps/contractData/signed",
        &pending_body,
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(stored(&sandbox).await.renewals, 3);
    let response = sandbox
        .http
        .delete(sandbox.url(&format!("/v1/ccp/signedContractData/{EMAID}")))
        .bearer_auth(&emsp.token)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 200, "cancel");
    assert_eq!(stored(&sandbox).await.renewals, 0, "renewals dropped");
    let third_held = HeldKey::from_scalar(third_key.private_key());
    let (code, _, _) = ev_update(
        &sandbox,
        &cpo.token,
        &update_request(
            &SESSION_ID,
            &third_held,
            &mo_chain(third.clone()),
            EMAID,
            vec![root_id(v2g_root)],
        ),
    )
    .await;
    assert_ne!(code, "OK", "no renewal of a cancelled contract");
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_emsp_renewal_sqlite() {
    emsp_renewal_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_emsp_renewal_postgres() {
    emsp_renewal_on(Backend::Postgres).await;
}
