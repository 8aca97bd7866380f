//! The root pool and the known CAs, end to end: OPCP and OPNC RCP over HTTP, the
//! truststore's gRPC contract (FindIssuer, AddIntermediate, ListEvents), the expiry watch
//! with two replicas. Storage-facing tests run on SQLite and PostgreSQL.
//!
//! Fixtures: the dev PKI generated per test, certificates built with OpenSSL for the bad
//! cases, and the real Hubject and BMW roots read at run time from the OPCP spec files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509NameBuilder};
use pnc_common::Component;
use pnc_common::grpc::GrpcChannel;
use pnc_pki::{DevCert, DevPki, DevPkiOptions};
use pnc_proto::common::v1::Certificate;
use pnc_proto::principal::Role;
use pnc_proto::truststore::v1::trust_store_client::TrustStoreClient;
use pnc_proto::truststore::v1::{
    AddIntermediateRequest, CertIdIssuer, FindIssuerRequest, KnownCaSource, ListEventsRequest,
    ListKnownCasRequest, ListRootsRequest, PutRootRequest, RootType, TrustEvent,
    find_issuer_request,
};
use pnc_tests::{Backend, Sandbox};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Fixtures

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

fn rcp_spec() -> Value {
    let path = shared_dir().join("specs/opcp-1.0.0/rcp.v1.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read rcp.v1.json"))
        .expect("rcp.v1.json is JSON")
}

/// The RootResponse example of `GET /v1/root/rootCerts/{id}`: Hubject's V2G Root CA G2.
fn opcp_root_response_example() -> Value {
    rcp_spec()["paths"]["/v1/root/rootCerts/{rootCertificateId}"]["get"]["responses"]["200"]
        ["content"]["application/json"]["examples"]["example"]["value"]["RootResponse"]
        .clone()
}

/// The request body examples of `PUT /v1/root/rootCerts`: the V2G Root CA G2 (V2G) and a
/// BMW OEM root valid 1970–9999 (OEM).
fn opcp_put_examples() -> Vec<Value> {
    let put = &rcp_spec()["paths"]["/v1/root/rootCerts"]["put"]["requestBody"]["content"]["application/json"];
    vec![
        put["examples"]["example-1"]["value"].clone(),
        put["schema"]["x-examples"]["example-1"].clone(),
    ]
}

fn dev_pki() -> DevPki {
    DevPki::generate(&DevPkiOptions {
        ocsp_signers: false,
        ocsp_base_url: "http://ocsp.test.invalid/ocsp".into(),
        ..DevPkiOptions::default()
    })
    .expect("dev pki")
}

fn b64(der: &[u8]) -> String {
    STANDARD.encode(der)
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("p-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec key")).expect("pkey")
}

/// How to build a test certificate with OpenSSL.
struct Spec {
    common_name: &'static str,
    ca: bool,
    key_cert_sign: bool,
    /// Seconds from now.
    not_before: i64,
    not_after: i64,
    digest: MessageDigest,
    /// Sign with another key than the subject's (a self-issued, not self-signed certificate).
    foreign_signer: bool,
}

impl Spec {
    fn root(common_name: &'static str) -> Spec {
        Spec {
            common_name,
            ca: true,
            key_cert_sign: true,
            not_before: -3600,
            not_after: 10 * 365 * 86_400,
            digest: MessageDigest::sha256(),
            foreign_signer: false,
        }
    }

    fn build(&self) -> Vec<u8> {
        let key = ec_key();
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_nid(Nid::COMMONNAME, self.common_name)
            .expect("cn");
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "pnc tests")
            .expect("o");
        let name = name.build();
        let mut builder = X509::builder().expect("builder");
        builder.set_version(2).expect("v3");
        let serial = BigNum::from_u32(rand_serial()).expect("serial");
        builder
            .set_serial_number(&Asn1Integer::from_bn(&serial).expect("asn1 serial"))
            .expect("set serial");
        builder.set_subject_name(&name).expect("subject");
        builder.set_issuer_name(&name).expect("issuer");
        builder.set_pubkey(&key).expect("pubkey");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        builder
            .set_not_before(&Asn1Time::from_unix(now + self.not_before).expect("nb"))
            .expect("set nb");
        builder
            .set_not_after(&Asn1Time::from_unix(now + self.not_after).expect("na"))
            .expect("set na");
        let mut basic = BasicConstraints::new();
        basic.critical();
        if self.ca {
            basic.ca();
        }
        builder
            .append_extension(basic.build().expect("bc"))
            .expect("add bc");
        let mut usage = KeyUsage::new();
        usage.critical().crl_sign();
        if self.key_cert_sign {
            usage.key_cert_sign();
        } else {
            usage.digital_signature();
        }
        builder
            .append_extension(usage.build().expect("ku"))
            .expect("add ku");
        let ski = SubjectKeyIdentifier::new()
            .build(&builder.x509v3_context(None, None))
            .expect("ski");
        builder.append_extension(ski).expect("add ski");
        let signer = if self.foreign_signer { ec_key() } else { key };
        builder.sign(&signer, self.digest).expect("sign");
        builder.build().to_der().expect("der")
    }
}

fn rand_serial() -> u32 {
    u32::from_be_bytes(
        uuid::Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .expect("4 bytes"),
    ) | 1
}

// ---------------------------------------------------------------------------------------
// Clients

/// A gRPC client of the sandbox's truststore, authenticated as the gateway (as `pnc`'s
/// command-line tools connect), calling without a principal like pnc's services do.
fn truststore(sandbox: &Sandbox) -> TrustStoreClient<GrpcChannel> {
    let ca = pnc_common::tls::InternalCa::from_config(&sandbox.config).expect("internal ca");
    let tls = ca.issue(Component::Gateway).expect("gateway identity");
    let url = sandbox.config.services.url_of(Component::Truststore);
    TrustStoreClient::new(
        pnc_common::grpc::connect(&url, &tls, &sandbox.config.grpc).expect("channel"),
    )
}

async fn call(
    sandbox: &Sandbox,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = sandbox.http.request(method, sandbox.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

fn error_text(body: &Value) -> String {
    body["errorMessages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_else(|| body.to_string())
}

fn listed_certificates(body: &Value) -> Vec<String> {
    body["RootCertificateCollection"]["rootCertificates"]
        .as_array()
        .expect("rootCertificates")
        .iter()
        .map(|root| {
            root["caCertificate"]
                .as_str()
                .expect("caCertificate")
                .to_string()
        })
        .collect()
}

async fn all_events(client: &mut TrustStoreClient<GrpcChannel>) -> Vec<TrustEvent> {
    client
        .list_events(ListEventsRequest {
            after_sequence: 0,
            limit: 1000,
        })
        .await
        .expect("list events")
        .into_inner()
        .events
}

fn events_of(events: &[TrustEvent], fingerprint: &str) -> Vec<String> {
    events
        .iter()
        .filter(|event| {
            event
                .root
                .as_ref()
                .is_some_and(|root| root.sha256_fingerprint == fingerprint)
        })
        .map(|event| event.event_type.clone())
        .collect()
}

fn fingerprint(der: &[u8]) -> String {
    hex::encode_upper(openssl::sha::sha256(der))
}

// ---------------------------------------------------------------------------------------
// Tests

/// Admin adds V2G, MO and OEM roots; every role reads them, the way MaEVe and CitrineOS do.
#[tokio::test]
async fn ok_admin_adds_roots_every_role_reads_them() {
    for backend in Backend::ALL {
        let sandbox = Sandbox::start(backend).await;
        let admin = sandbox.admin().await;
        let pki = dev_pki();
        let hubject = opcp_put_examples();
        let roots = [
            (
                hubject[0]["caCertificate"]
                    .as_str()
                    .expect("g2")
                    .to_string(),
                "V2G",
            ),
            (b64(pki.certificate(DevCert::MoRoot).der()), "MO"),
            (b64(pki.certificate(DevCert::OemRoot).der()), "OEM"),
        ];
        let mut ids = Vec::new();
        for (certificate, root_type) in &roots {
            let (status, body) = call(
                &sandbox,
                Method::PUT,
                "/v1/root/rootCerts",
                Some(&admin.token),
                Some(json!({"caCertificate": certificate, "rootType": root_type})),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{backend:?} put {root_type}: {body}"
            );
            assert_eq!(body["RootResponse"]["rootType"], *root_type);
            ids.push(
                body["RootResponse"]["rootCertificateId"]
                    .as_str()
                    .expect("id")
                    .to_string(),
            );
        }
        // Idempotent by fingerprint: the same ID comes back.
        let (status, body) = call(
            &sandbox,
            Method::PUT,
            "/v1/root/rootCerts",
            Some(&admin.token),
            Some(json!({"caCertificate": roots[1].0, "rootType": "mo"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["RootResponse"]["rootCertificateId"], ids[1]);

        for role in [Role::Cpo, Role::Emsp, Role::Oem, Role::Charger] {
            let client = sandbox.client(role, &["WMI"], &["DEPNC"], &["DEPNC"]).await;
            // MaEVe: token in x-api-key, reads only caCertificate.
            let response = sandbox
                .http
                .get(sandbox.url("/v1/root/rootCerts"))
                .header("x-api-key", &client.token)
                .send()
                .await
                .expect("maeve call");
            assert_eq!(response.status(), StatusCode::OK, "{role:?}");
            let body: Value = response.json().await.expect("json");
            let listed = listed_certificates(&body);
            for (certificate, root_type) in &roots {
                assert!(
                    listed.contains(certificate),
                    "{backend:?} {role:?} misses the {root_type} root"
                );
            }
            // CitrineOS: bearer token, one type.
            let (status, body) = call(
                &sandbox,
                Method::GET,
                "/v1/root/rootCerts?rootType=v2g",
                Some(&client.token),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            let listed = listed_certificates(&body);
            assert!(listed.contains(&roots[0].0));
            assert!(!listed.contains(&roots[1].0), "an MO root listed as V2G");
        }

        // One root by ID, with OPCP's example values for Hubject's root.
        let cpo = sandbox.client(Role::Cpo, &[], &[], &["DEPNC"]).await;
        let (status, body) = call(
            &sandbox,
            Method::GET,
            &format!("/v1/root/rootCerts/{}", ids[0]),
            Some(&cpo.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let expected = opcp_root_response_example();
        let got = &body["RootResponse"];
        for field in [
            "distinguishedName",
            "caCertificate",
            "commonName",
            "rootAuthorityKeyIdentifier",
            "rootIssuerSerialNumber",
            "validFrom",
            "validTo",
            "organizationName",
            "rootType",
            "fingerprint",
        ] {
            assert_eq!(got[field], expected[field], "{backend:?} field {field}");
        }
        assert_eq!(got["signatureAlgorithm"], "secp256r1");
        assert_eq!(got["xsdMsgDefNamespace"], "urn:iso:15118:2:2013:MsgDef");
        assert_eq!(got["rootCertificateId"], ids[0]);

        // OPNC: array collection, misspelt wrapper, eMSP naming, routing headers.
        let response = sandbox
            .http
            .get(sandbox.url("/opnc/v1/rcp/rootcertificates?pkiType=emsp"))
            .bearer_auth(&cpo.token)
            .header("OPNC-from-party-type", "cpo")
            .header("OPNC-from-party-id", "DEPNC")
            .send()
            .await
            .expect("opnc list");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        let collection = body["rootCertificateCollection"].as_array().expect("array");
        assert!(
            collection
                .iter()
                .any(|root| root["caCertificate"] == roots[1].0.as_str()
                    && root["rootTypeList"] == json!(["eMSP"])
                    && root["rootCtlList"] == json!(["No CTL"]))
        );
        let (status, body) = call(
            &sandbox,
            Method::GET,
            &format!("/opnc/v1/rcp/rootcertificates/{}", ids[2]),
            Some(&cpo.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["roootCertificate"]["caCertificate"],
            roots[2].0.as_str()
        );
        let response = sandbox
            .http
            .get(sandbox.url("/opnc/v1/rcp/rootcertificates"))
            .bearer_auth(&cpo.token)
            .header("OPNC-to-party-type", "bank")
            .send()
            .await
            .expect("bad routing header");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);

        // The CTL view lists roots in use; unsigned.
        let (status, body) = call(
            &sandbox,
            Method::GET,
            "/v1/root/ctl",
            Some(&cpo.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.get("signerCertificate").is_none());
        assert!(
            body["CTL"]["none"]
                .as_array()
                .expect("none")
                .iter()
                .any(|root| root["rootCertificateId"] == ids[2].as_str())
        );

        // Retire the MO root: 200, then gone for readers, 404 on a second delete.
        let (status, _) = call(
            &sandbox,
            Method::DELETE,
            &format!("/v1/root/rootCerts/{}", ids[1]),
            Some(&admin.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(
            &sandbox,
            Method::GET,
            &format!("/v1/root/rootCerts/{}", ids[1]),
            Some(&cpo.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(
            error_text(&body),
            "Root certificate with the given ID is not found"
        );
        let (_, body) = call(
            &sandbox,
            Method::GET,
            "/v1/root/rootCerts",
            Some(&cpo.token),
            None,
        )
        .await;
        assert!(!listed_certificates(&body).contains(&roots[1].0));
        let (status, _) = call(
            &sandbox,
            Method::DELETE,
            &format!("/v1/root/rootCerts/{}", ids[1]),
            Some(&admin.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        sandbox.stop().await;
    }
}

/// Both PUT examples of rcp.v1.json (Hubject's V2G root with EKU OCSPSigning, BMW's OEM
/// root valid 1970–9999) are accepted verbatim, on OPCP and on OPNC.
#[tokio::test]
async fn ok_opcp_example_bodies_are_accepted() {
    for backend in Backend::ALL {
        let sandbox = Sandbox::start(backend).await;
        let admin = sandbox.admin().await;
        for example in opcp_put_examples() {
            let (status, body) = call(
                &sandbox,
                Method::PUT,
                "/v1/root/rootCerts",
                Some(&admin.token),
                Some(example.clone()),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{backend:?} {example}: {body}");
            assert_eq!(
                body["RootResponse"]["caCertificate"],
                example["caCertificate"]
            );
        }
        // Every RCP handler is in the generated OpenAPI document.
        let (status, openapi) = call(&sandbox, Method::GET, "/openapi.json", None, None).await;
        assert_eq!(status, StatusCode::OK);
        for (path, methods) in [
            ("/v1/root/rootCerts", &["get", "put"][..]),
            (
                "/v1/root/rootCerts/{rootCertificateId}",
                &["get", "delete"][..],
            ),
            ("/v1/root/ctl", &["get"][..]),
            ("/opnc/v1/rcp/rootcertificates", &["get", "put"][..]),
            (
                "/opnc/v1/rcp/rootcertificates/{rootCertificateId}",
                &["get", "delete"][..],
            ),
            ("/v1/trust/intermediates", &["post"][..]),
            ("/v1/trust/known-cas", &["get"][..]),
        ] {
            for method in methods {
                assert!(
                    openapi["paths"][path][method].is_object(),
                    "{method} {path} missing from /openapi.json"
                );
            }
        }
        // OPNC: one root, several roles and CTLs; unknown fields are ignored.
        let bmw = &opcp_put_examples()[1];
        let (status, body) = call(
            &sandbox,
            Method::PUT,
            "/opnc/v1/rcp/rootcertificates",
            Some(&admin.token),
            Some(json!({
                "caCertificate": bmw["caCertificate"],
                "rootTypeList": ["OEM", "eMSP"],
                "rootCtlList": ["European CTL"],
                "commonName": "ignored, derived from the certificate",
                "somethingNew": true,
            })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let root = &body["roootCertificate"];
        assert_eq!(root["rootTypeList"], json!(["OEM", "eMSP"]));
        assert_eq!(root["rootCtlList"], json!(["European CTL"]));
        assert_eq!(root["validFrom"], "1970-01-01T00:01:00Z");
        assert_eq!(root["validTo"], "9999-12-31T23:59:00Z");
        // Now listed as MO too.
        let (_, body) = call(
            &sandbox,
            Method::GET,
            "/v1/root/rootCerts?rootType=MO",
            Some(&admin.token),
            None,
        )
        .await;
        assert!(
            listed_certificates(&body)
                .contains(&bmw["caCertificate"].as_str().expect("bmw").to_string())
        );
        sandbox.stop().await;
    }
}

/// 401 without a token, 403 for every non-admin role on every write.
#[tokio::test]
async fn fail_writes_without_admin() {
    for backend in Backend::ALL {
        let sandbox = Sandbox::start(backend).await;
        let pki = dev_pki();
        let root = b64(pki.certificate(DevCert::V2gRoot).der());
        let sub_ca = b64(pki.certificate(DevCert::CpoSubCa1).der());
        let some_id = uuid::Uuid::new_v4().to_string();
        let writes = [
            (
                Method::PUT,
                "/v1/root/rootCerts".to_string(),
                Some(json!({"caCertificate": root, "rootType": "V2G"})),
            ),
            (
                Method::DELETE,
                format!("/v1/root/rootCerts/{some_id}"),
                None,
            ),
            (
                Method::PUT,
                "/opnc/v1/rcp/rootcertificates".to_string(),
                Some(json!({"caCertificate": root, "rootTypeList": ["V2G"]})),
            ),
            (
                Method::DELETE,
                format!("/opnc/v1/rcp/rootcertificates/{some_id}"),
                None,
            ),
            (
                Method::POST,
                "/v1/trust/intermediates".to_string(),
                Some(json!({"certificate": sub_ca})),
            ),
            (Method::GET, "/v1/trust/known-cas".to_string(), None),
        ];
        for role in [Role::Oem, Role::Emsp, Role::Cpo, Role::Charger] {
            let client = sandbox.client(role, &["WMI"], &["DEPNC"], &["DEPNC"]).await;
            for (method, path, body) in &writes {
                let (status, answer) = call(
                    &sandbox,
                    method.clone(),
                    path,
                    Some(&client.token),
                    body.clone(),
                )
                .await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{backend:?} {role:?} {method} {path}: {answer}"
                );
                assert!(answer["traceId"].is_string());
            }
        }
        for (method, path, body) in &writes {
            let (status, _) = call(&sandbox, method.clone(), path, None, body.clone()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
        for path in [
            "/v1/root/rootCerts",
            "/v1/root/ctl",
            "/opnc/v1/rcp/rootcertificates",
        ] {
            let (status, _) = call(&sandbox, Method::GET, path, None, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        }
        // Nothing was written by any refused call.
        let roots = truststore(&sandbox)
            .list_roots(ListRootsRequest {
                root_type: RootType::Unspecified as i32,
                include_inactive: true,
            })
            .await
            .expect("list")
            .into_inner()
            .roots;
        assert!(roots.iter().all(|stored| stored.sha256_fingerprint
            != fingerprint(pki.certificate(DevCert::V2gRoot).der())));
        sandbox.stop().await;
    }
}

/// Every bad input is a 400 naming the problem, and nothing is written.
#[tokio::test]
async fn fail_bad_roots_are_refused() {
    let pki = dev_pki();
    let oversized = {
        // A valid root padded past 800 bytes of DER is refused on size alone.
        let mut der = pki.certificate(DevCert::V2gRoot).der().to_vec();
        der.resize(900, 0);
        b64(&der)
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "fail/invalid-base64",
            json!({"caCertificate": "%%%not base64%%%", "rootType": "V2G"}),
            "not valid base64",
        ),
        (
            "fail/not-der",
            json!({"caCertificate": b64(b"definitely not a certificate"), "rootType": "V2G"}),
            "not a DER certificate",
        ),
        (
            "fail/truncated-der",
            json!({"caCertificate": b64(&pki.certificate(DevCert::V2gRoot).der()[..200]), "rootType": "V2G"}),
            "not valid DER X.509",
        ),
        (
            "fail/not-self-signed",
            json!({"caCertificate": b64(pki.certificate(DevCert::MoSubCa1).der()), "rootType": "MO"}),
            "not self-signed",
        ),
        (
            "fail/self-issued-bad-signature",
            json!({"caCertificate": b64(&Spec { foreign_signer: true, ..Spec::root("forged root") }.build()), "rootType": "V2G"}),
            "not self-signed",
        ),
        (
            "fail/not-a-ca",
            json!({"caCertificate": b64(&Spec { ca: false, ..Spec::root("leaf not ca") }.build()), "rootType": "V2G"}),
            "cA TRUE is missing",
        ),
        (
            "fail/no-key-cert-sign",
            json!({"caCertificate": b64(&Spec { key_cert_sign: false, ..Spec::root("no keyCertSign") }.build()), "rootType": "OEM"}),
            "keyCertSign",
        ),
        (
            "fail/expired",
            json!({"caCertificate": b64(&Spec { not_before: -20 * 86_400, not_after: -86_400, ..Spec::root("expired root") }.build()), "rootType": "V2G"}),
            "expired",
        ),
        (
            "fail/not-yet-valid",
            json!({"caCertificate": b64(&Spec { not_before: 86_400, ..Spec::root("future root") }.build()), "rootType": "V2G"}),
            "not yet valid",
        ),
        (
            "fail/sha1-signed",
            json!({"caCertificate": b64(&Spec { digest: MessageDigest::sha1(), ..Spec::root("sha1 root") }.build()), "rootType": "V2G"}),
            "SHA-1",
        ),
        (
            "fail/oversized",
            json!({"caCertificate": oversized, "rootType": "V2G"}),
            "at most 800",
        ),
        (
            "fail/unknown-root-type",
            json!({"caCertificate": b64(pki.certificate(DevCert::V2gRoot).der()), "rootType": "TLS"}),
            "unknown rootType",
        ),
        (
            "fail/missing-root-type",
            json!({"caCertificate": b64(pki.certificate(DevCert::V2gRoot).der())}),
            "rootType",
        ),
        (
            "fail/missing-certificate",
            json!({"rootType": "V2G"}),
            "caCertificate",
        ),
        (
            "fail/empty-certificate",
            json!({"caCertificate": "", "rootType": "V2G"}),
            "empty",
        ),
    ];
    for backend in Backend::ALL {
        let sandbox = Sandbox::start(backend).await;
        let admin = sandbox.admin().await;
        let mut client = truststore(&sandbox);
        let before_roots = client
            .list_roots(ListRootsRequest {
                root_type: RootType::Unspecified as i32,
                include_inactive: true,
            })
            .await
            .expect("list")
            .into_inner()
            .roots
            .len();
        for (name, body, expected) in &cases {
            let (status, answer) = call(
                &sandbox,
                Method::PUT,
                "/v1/root/rootCerts",
                Some(&admin.token),
                Some(body.clone()),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{backend:?} {name}: {answer}"
            );
            let message = error_text(&answer);
            assert!(
                message.contains(expected),
                "{backend:?} {name}: `{message}` does not name `{expected}`"
            );
        }
        // The same refusals at the gRPC level, where provisioning calls.
        let status = client
            .put_root(PutRootRequest {
                certificate: Some(Certificate {
                    der: pki.certificate(DevCert::MoSubCa1).der().to_vec(),
                }),
                root_type: RootType::Mo as i32,
                ..PutRootRequest::default()
            })
            .await
            .expect_err("a sub-ca is no root");
        assert_eq!(
            pnc_common::PncError::from(status).kind,
            pnc_common::ErrorKind::InvalidArgument
        );
        let after_roots = client
            .list_roots(ListRootsRequest {
                root_type: RootType::Unspecified as i32,
                include_inactive: true,
            })
            .await
            .expect("list")
            .into_inner()
            .roots
            .len();
        // Provisioning may seed its own dev roots meanwhile; none of ours went in.
        let fingerprints: Vec<String> = client
            .list_roots(ListRootsRequest::default())
            .await
            .expect("list")
            .into_inner()
            .roots
            .into_iter()
            .map(|root| root.sha256_fingerprint)
            .collect();
        assert!(after_roots >= before_roots);
        for which in [DevCert::V2gRoot, DevCert::MoSubCa1] {
            assert!(!fingerprints.contains(&fingerprint(pki.certificate(which).der())));
        }
        sandbox.stop().await;
    }
}

/// Pool changes appear in ListEvents in the order they happened, and paging by sequence
/// returns each event once.
#[tokio::test]
async fn ok_events_in_order() {
    for backend in Backend::ALL {
        let sandbox = Sandbox::start(backend).await;
        let admin = sandbox.admin().await;
        let pki = dev_pki();
        let mut client = truststore(&sandbox);
        let mo = pki.certificate(DevCert::MoRoot).der().to_vec();
        let oem = pki.certificate(DevCert::OemRoot).der().to_vec();
        for (der, root_type) in [(&mo, "MO"), (&oem, "OEM")] {
            let (status, body) = call(
                &sandbox,
                Method::PUT,
                "/v1/root/rootCerts",
                Some(&admin.token),
                Some(json!({"caCertificate": b64(der), "rootType": root_type})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        // Adding again writes no event.
        let (status, _) = call(
            &sandbox,
            Method::PUT,
            "/v1/root/rootCerts",
            Some(&admin.token),
            Some(json!({"caCertificate": b64(&mo), "rootType": "MO"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(
            &sandbox,
            Method::DELETE,
            &format!(
                "/v1/root/rootCerts/{}",
                fingerprint(&mo).to_ascii_lowercase()
            ),
            Some(&admin.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);

        let events = all_events(&mut client).await;
        let sequences: Vec<i64> = events.iter().map(|event| event.sequence).collect();
        assert!(
            sequences.windows(2).all(|pair| pair[0] < pair[1]),
            "{backend:?} sequences not increasing: {sequences:?}"
        );
        let mo_fingerprint = fingerprint(&mo);
        let oem_fingerprint = fingerprint(&oem);
        assert_eq!(
            events_of(&events, &mo_fingerprint),
            vec!["root.cert.added", "root.cert.revoked"]
        );
        assert_eq!(
            events_of(&events, &oem_fingerprint),
            vec!["root.cert.added"]
        );
        let position = |fingerprint: &str, event_type: &str| {
            events
                .iter()
                .position(|event| {
                    event.event_type == event_type
                        && event.root.as_ref().expect("root").sha256_fingerprint == fingerprint
                })
                .expect("event")
        };
        assert!(
            position(&mo_fingerprint, "root.cert.added")
                < position(&oem_fingerprint, "root.cert.added")
        );
        assert!(
            position(&oem_fingerprint, "root.cert.added")
                < position(&mo_fingerprint, "root.cert.revoked")
        );
        let revoked = &events[position(&mo_fingerprint, "root.cert.revoked")];
        assert!(revoked.root.as_ref().expect("root").revoked);

        // Paging: one at a time from the start gives the same events.
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = client
                .list_events(ListEventsRequest {
                    after_sequence: after,
                    limit: 1,
                })
                .await
                .expect("page")
                .into_inner()
                .events;
            let Some(event) = page.first() else { break };
            assert_eq!(page.len(), 1);
            after = event.sequence;
            paged.push(event.sequence);
        }
        assert!(paged.len() >= sequences.len());
        assert_eq!(&paged[..sequences.len()], &sequences[..]);
        sandbox.stop().await;
    }
}

/// A root that expires is marked once and root.cert.expired is written once, with two
/// truststore replicas running the watch against the same database.
#[tokio::test]
async fn ok_expiry_watch_emits_once_with_two_replicas() {
    for backend in Backend::ALL {
        let sandbox = Sandbox::start_with(backend, |config| {
            config.truststore.expiry_watch_interval_seconds = 1;
        })
        .await;
        // A second truststore on the same storage.
        let ca = pnc_common::tls::InternalCa::from_config(&sandbox.config).expect("ca");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let context = pnc_common::cli::context_for(
            Component::Truststore,
            Arc::new(sandbox.config.clone()),
            &ca,
            "127.0.0.1:0".parse().expect("addr"),
            shutdown.clone(),
        )
        .expect("context");
        let second = pnc::serve::start_fn(Component::Truststore)(context)
            .await
            .expect("second truststore");

        let short_lived = Spec {
            not_after: 3,
            ..Spec::root("short-lived root")
        }
        .build();
        let lasting = Spec::root("lasting root").build();
        let mut client = truststore(&sandbox);
        for der in [&short_lived, &lasting] {
            client
                .put_root(PutRootRequest {
                    certificate: Some(Certificate { der: der.clone() }),
                    root_type: RootType::Pe as i32,
                    ..PutRootRequest::default()
                })
                .await
                .expect("put root");
        }
        // notAfter + 1 s granularity + a few watch periods on both replicas.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let events = all_events(&mut client).await;
        assert_eq!(
            events_of(&events, &fingerprint(&short_lived)),
            vec!["root.cert.added", "root.cert.expired"],
            "{backend:?}"
        );
        assert_eq!(
            events_of(&events, &fingerprint(&lasting)),
            vec!["root.cert.added"]
        );
        let listed: Vec<String> = client
            .list_roots(ListRootsRequest {
                root_type: RootType::Pe as i32,
                ..ListRootsRequest::default()
            })
            .await
            .expect("list")
            .into_inner()
            .roots
            .into_iter()
            .map(|root| root.sha256_fingerprint)
            .collect();
        assert_eq!(
            listed,
            vec![fingerprint(&lasting)],
            "expired roots leave the pool"
        );
        shutdown.cancel();
        second.wait().await.expect("second stops");
        sandbox.stop().await;
    }
}

/// The truststore finds a certificate's issuer from the CertID OpenSSL puts in an OCSP
/// request (SHA-1 and SHA-256), from the AKI, and from the issuer name.
#[tokio::test]
async fn ok_find_issuer_matches_openssl_ocsp_request() {
    let pki = dev_pki();
    let emaid = format!(
        "DEPNCC00000000{}",
        pnc_pki::ids::emaid_check_digit("DEPNCC00000000").expect("check digit")
    );
    let contract = pki
        .issue_contract(
            &emaid,
            pki.certificate(DevCert::OemProvisioning)
                .public_key_spki_der(),
            time::Duration::days(30),
        )
        .expect("contract");
    let issuer = pki.certificate(DevCert::MoSubCa2);
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer_pem = dir.path().join("issuer.pem");
    let leaf_pem = dir.path().join("leaf.pem");
    std::fs::write(&issuer_pem, issuer.to_pem()).expect("write issuer");
    std::fs::write(&leaf_pem, contract.to_pem()).expect("write leaf");

    for backend in Backend::ALL {
        let sandbox = Sandbox::start(backend).await;
        let mut client = truststore(&sandbox);
        client
            .put_root(PutRootRequest {
                certificate: Some(Certificate {
                    der: pki.certificate(DevCert::MoRoot).der().to_vec(),
                }),
                root_type: RootType::Mo as i32,
                ..PutRootRequest::default()
            })
            .await
            .expect("root");
        for which in [DevCert::MoSubCa1, DevCert::MoSubCa2] {
            client
                .add_intermediate(AddIntermediateRequest {
                    certificate: Some(Certificate {
                        der: pki.certificate(which).der().to_vec(),
                    }),
                    source: KnownCaSource::RegisteredIntermediate as i32,
                })
                .await
                .expect("intermediate");
        }

        for (flag, algorithm) in [("-sha1", "sha1"), ("-sha256", "sha256")] {
            let request = dir.path().join(format!("request-{algorithm}.der"));
            let made = std::process::Command::new("openssl")
                .args(["ocsp", "-no_nonce", flag, "-issuer"])
                .arg(&issuer_pem)
                .arg("-cert")
                .arg(&leaf_pem)
                .arg("-reqout")
                .arg(&request)
                .output()
                .expect("openssl ocsp runs");
            assert!(
                made.status.success(),
                "{}",
                String::from_utf8_lossy(&made.stderr)
            );
            let printed = std::process::Command::new("openssl")
                .args(["ocsp", "-req_text", "-reqin"])
                .arg(&request)
                .output()
                .expect("openssl ocsp -req_text");
            let text = String::from_utf8_lossy(&printed.stdout).to_string();
            let field = |label: &str| {
                let line = text
                    .lines()
                    .find(|line| line.trim_start().starts_with(label))
                    .unwrap_or_else(|| panic!("`{label}` in {text}"));
                hex::decode(line.split(':').nth(1).expect("value").trim()).expect("hex")
            };
            let cert_id = CertIdIssuer {
                hash_algorithm: algorithm.to_string(),
                issuer_name_hash: field("Issuer Name Hash"),
                issuer_key_hash: field("Issuer Key Hash"),
            };
            let found = client
                .find_issuer(FindIssuerRequest {
                    key: Some(find_issuer_request::Key::CertId(cert_id.clone())),
                })
                .await
                .expect("find issuer")
                .into_inner()
                .issuers;
            assert_eq!(found.len(), 1, "{backend:?} {algorithm}");
            assert_eq!(
                found[0].certificate.as_ref().expect("certificate").der,
                issuer.der()
            );
            assert_eq!(
                found[0].source,
                KnownCaSource::RegisteredIntermediate as i32
            );
            assert_eq!(found[0].ocsp_urls, issuer.ocsp_urls().to_vec());
            // A CertID of nobody pnc knows finds nothing.
            let mut unknown = cert_id;
            unknown.issuer_key_hash[0] ^= 0xff;
            let found = client
                .find_issuer(FindIssuerRequest {
                    key: Some(find_issuer_request::Key::CertId(unknown)),
                })
                .await
                .expect("find issuer")
                .into_inner()
                .issuers;
            assert!(found.is_empty());
        }

        let by_ski = client
            .find_issuer(FindIssuerRequest {
                key: Some(find_issuer_request::Key::SubjectKeyIdentifier(
                    contract.authority_key_identifier().expect("aki").to_vec(),
                )),
            })
            .await
            .expect("by ski")
            .into_inner()
            .issuers;
        assert_eq!(by_ski.len(), 1);
        assert_eq!(
            by_ski[0].certificate.as_ref().expect("cert").der,
            issuer.der()
        );
        let by_name = client
            .find_issuer(FindIssuerRequest {
                key: Some(find_issuer_request::Key::SubjectNameDer(
                    contract.issuer().der().to_vec(),
                )),
            })
            .await
            .expect("by name")
            .into_inner()
            .issuers;
        assert!(
            by_name
                .iter()
                .any(|ca| ca.certificate.as_ref().expect("cert").der == issuer.der())
        );
        // The pool root is found by its own CertID too, with its type.
        let by_root_ski = client
            .find_issuer(FindIssuerRequest {
                key: Some(find_issuer_request::Key::SubjectKeyIdentifier(
                    pki.certificate(DevCert::MoRoot)
                        .subject_key_identifier()
                        .expect("ski")
                        .to_vec(),
                )),
            })
            .await
            .expect("root by ski")
            .into_inner()
            .issuers;
        assert_eq!(by_root_ski.len(), 1);
        assert_eq!(by_root_ski[0].source, KnownCaSource::RootPool as i32);
        assert_eq!(by_root_ski[0].root_type, RootType::Mo as i32);
        sandbox.stop().await;
    }
}

/// Intermediates enter only when they chain to a pool root: a look-alike chain with the
/// same names and other keys is refused, and so are roots and leaves.
#[tokio::test]
async fn fail_add_intermediate_refuses_foreign_chain() {
    let pki = dev_pki();
    // Same subject names, other keys.
    let foreign = dev_pki();
    for backend in Backend::ALL {
        let sandbox = Sandbox::start(backend).await;
        let admin = sandbox.admin().await;
        let (status, body) = call(
            &sandbox,
            Method::PUT,
            "/v1/root/rootCerts",
            Some(&admin.token),
            Some(json!({"caCertificate": b64(pki.certificate(DevCert::OemRoot).der()), "rootType": "OEM"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let refused = [
            (
                "fail/foreign-chain",
                b64(foreign.certificate(DevCert::OemSubCa1).der()),
                "does not chain to a root of the pool",
            ),
            (
                "fail/unknown-issuer",
                b64(pki.certificate(DevCert::CpsSubCa1).der()),
                "does not chain to a root of the pool",
            ),
            (
                "fail/no-known-parent",
                b64(pki.certificate(DevCert::OemSubCa2).der()),
                "does not chain to a root of the pool",
            ),
            (
                "fail/root-is-not-an-intermediate",
                b64(pki.certificate(DevCert::OemRoot).der()),
                "self-signed root",
            ),
            (
                "fail/leaf-is-not-a-ca",
                b64(pki.certificate(DevCert::OemProvisioning).der()),
                "not a CA certificate",
            ),
            ("fail/invalid-base64", "***".to_string(), "not valid base64"),
        ];
        for (name, certificate, expected) in &refused {
            let (status, body) = call(
                &sandbox,
                Method::POST,
                "/v1/trust/intermediates",
                Some(&admin.token),
                Some(json!({"certificate": certificate})),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{backend:?} {name}: {body}"
            );
            assert!(
                error_text(&body).contains(expected),
                "{backend:?} {name}: {}",
                error_text(&body)
            );
        }
        let (status, body) = call(
            &sandbox,
            Method::POST,
            "/v1/trust/intermediates",
            Some(&admin.token),
            Some(json!({})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "fail/missing-certificate: {body}"
        );

        // The real chain goes in, Sub-CA 2 through the now known Sub-CA 1.
        for which in [DevCert::OemSubCa1, DevCert::OemSubCa2] {
            let (status, body) = call(
                &sandbox,
                Method::POST,
                "/v1/trust/intermediates",
                Some(&admin.token),
                Some(json!({"certificate": b64(pki.certificate(which).der())})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{backend:?} {which}: {body}");
            assert_eq!(body["knownCa"]["source"], "REGISTERED_INTERMEDIATE");
        }
        let known = truststore(&sandbox)
            .list_known_cas(ListKnownCasRequest {})
            .await
            .expect("known cas")
            .into_inner()
            .cas;
        let known: Vec<&[u8]> = known
            .iter()
            .map(|ca| ca.certificate.as_ref().expect("cert").der.as_slice())
            .collect();
        for which in [DevCert::OemRoot, DevCert::OemSubCa1, DevCert::OemSubCa2] {
            assert!(known.contains(&pki.certificate(which).der()), "{which}");
        }
        assert!(!known.contains(&foreign.certificate(DevCert::OemSubCa1).der()));
        sandbox.stop().await;
    }
}
