//! The OCSP stapling cache and responder, end to end, on both backends.
//!
//! Upstream: a real `openssl ocsp` responder on loopback behind a counting HTTP proxy (so the
//! tests see every upstream request), for a test PKI made with the openssl CLI: a root in the
//! pool, a Sub-CA registered as intermediate whose AIA names the responder, leaves under it.
//! pnc's own responder: answers for the dev PKI's CAs are verified with `openssl ocsp`
//! (an independent verifier), CRLs with `openssl crl`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use pnc_ocsp::cert_id::{CertId, HashAlgorithm};
use pnc_pki::Certificate;
use pnc_proto::principal::Role;
use pnc_tests::openssl_ocsp::{self, Responder, free_port};
use pnc_tests::{Backend, Sandbox};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const MALFORMED_REQUEST: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x01];
const UNAUTHORIZED: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x06];
const TRY_LATER: [u8; 5] = [0x30, 0x03, 0x0a, 0x01, 0x03];

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run openssl");
    // `openssl ocsp` prints a responder's error status on stdout, not stderr.
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A test PKI made by the openssl CLI: root → Sub-CA (AIA = `responder_url`) → leaves, and a
/// delegated OCSP signer of the Sub-CA.
struct OpensslPki {
    dir: PathBuf,
}

impl OpensslPki {
    fn create(dir: &Path, responder_url: &str, leaves: &[&str]) -> OpensslPki {
        let ext = dir.join("ext.cnf");
        std::fs::write(
            &ext,
            format!(
                "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier=hash\n\
                 [sub]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nauthorityInfoAccess=OCSP;URI:{responder_url}\n\
                 [leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\nauthorityInfoAccess=OCSP;URI:{responder_url}\n\
                 [signer]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=OCSPSigning\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
            ),
        )
        .expect("ext");
        let openssl = |args: &[&str]| {
            run(Command::new("openssl").current_dir(dir).args(args));
        };
        let key = |name: &str| {
            openssl(&[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key"),
            ])
        };
        key("root");
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-key",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "30",
            "-subj",
            "/CN=OCSP Test Root/O=pnc tests",
            "-extensions",
            "ca",
            "-config",
            "ext.cnf",
            "-sha256",
        ]);
        let issue = |name: &str, subject: &str, issuer: &str, extension: &str, serial: &str| {
            key(name);
            openssl(&[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                subject,
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{issuer}.pem"),
                "-CAkey",
                &format!("{issuer}.key"),
                "-set_serial",
                serial,
                "-days",
                "20",
                "-extfile",
                "ext.cnf",
                "-extensions",
                extension,
                "-out",
                &format!("{name}.pem"),
                "-sha256",
            ]);
        };
        issue(
            "sub",
            "/CN=OCSP Test Sub-CA/O=pnc tests",
            "root",
            "sub",
            "0x1001",
        );
        issue(
            "signer",
            "/CN=OCSP Test Responder/O=pnc tests",
            "sub",
            "signer",
            "0x2001",
        );
        let mut index = String::new();
        for (position, leaf) in leaves.iter().enumerate() {
            let serial = format!("{:X}", 0x3001 + position);
            issue(
                leaf,
                &format!("/CN={leaf}/O=pnc tests"),
                "sub",
                "leaf",
                &format!("0x{serial}"),
            );
            // index.txt: status, expiry, revocation, serial, file, subject.
            let revoked = leaf.starts_with("revoked");
            index.push_str(&format!(
                "{}\t301231235959Z\t{}\t{serial}\tunknown\t/CN={leaf}/O=pnc tests\n",
                if revoked { "R" } else { "V" },
                if revoked {
                    "240101000000Z,keyCompromise"
                } else {
                    ""
                },
            ));
        }
        std::fs::write(dir.join("index.txt"), index).expect("index");
        OpensslPki {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn certificate(&self, name: &str) -> Certificate {
        Certificate::from_pem(&std::fs::read(self.path(&format!("{name}.pem"))).expect("pem"))
            .expect("certificate")
    }

    fn der_base64(&self, name: &str) -> String {
        STANDARD.encode(self.certificate(name).der())
    }

    /// Starts `openssl ocsp` as the Sub-CA's responder on `port`, nextUpdate one minute on.
    fn start_responder(&self, port: u16) -> Responder {
        openssl_ocsp::start_responder(&self.dir, port, "sub.pem", "signer.pem", "signer.key")
    }
}

/// What the proxy does with the upstream's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Changes one digit of producedAt: valid DER, broken signature.
    Tamper,
    /// Answers with the response to another certificate.
    Mismatch,
}

/// An HTTP proxy in front of the responder that counts every request it receives.
struct CountingProxy {
    url: String,
    requests: Arc<AtomicUsize>,
    mode: Arc<std::sync::Mutex<(Mode, Vec<u8>)>>,
}

impl CountingProxy {
    async fn start(upstream_port: Option<u16>) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address: SocketAddr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let mode = Arc::new(std::sync::Mutex::new((Mode::Forward, Vec::new())));
        let (counter, shared_mode) = (requests.clone(), mode.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let (http, mode) = (http.clone(), shared_mode.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let body = loop {
                        let Ok(read) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..read]);
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|value| value.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buffer.len() >= end + 4 + length {
                            break buffer[end + 4..end + 4 + length].to_vec();
                        }
                    };
                    let answer = match upstream_port {
                        None => None,
                        Some(port) => http
                            .post(format!("http://127.0.0.1:{port}/"))
                            .header("content-type", "application/ocsp-request")
                            .body(body)
                            .send()
                            .await
                            .ok()
                            .and_then(|response| {
                                response.status().is_success().then_some(response)
                            }),
                    };
                    let answer = match answer {
                        Some(response) => response.bytes().await.ok().map(|b| b.to_vec()),
                        None => None,
                    };
                    let reply = match answer {
                        Some(mut der) => {
                            let (mode, other) = mode.lock().unwrap().clone();
                            match mode {
                                Mode::Forward => {}
                                Mode::Tamper => {
                                    // The first GeneralizedTime (producedAt): bump a digit.
                                    if let Some(at) = der.windows(2).position(|w| w == [0x18, 0x0f]) {
                                        let digit = at + 2 + 13;
                                        der[digit] = if der[digit] == b'0' { b'1' } else { b'0' };
                                    }
                                }
                                Mode::Mismatch => der = other,
                            }
                            let mut reply = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/ocsp-response\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                                der.len()
                            )
                            .into_bytes();
                            reply.extend_from_slice(&der);
                            reply
                        }
                        None => b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
                    };
                    let _ = stream.write_all(&reply).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        CountingProxy {
            url: format!("http://127.0.0.1:{}/", address.port()),
            requests,
            mode,
        }
    }

    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn set_mode(&self, mode: Mode, other: Vec<u8>) {
        *self.mode.lock().unwrap() = (mode, other);
    }
}

fn hash_data(id: &CertId, responder_url: &str) -> Value {
    let algorithm = match id.hash_algorithm() {
        HashAlgorithm::Sha256 => "SHA256",
        HashAlgorithm::Sha384 => "SHA384",
        HashAlgorithm::Sha512 => "SHA512",
        HashAlgorithm::Sha1 => "SHA1",
    };
    json!({"ocspRequestData": {
        "hashAlgorithm": algorithm,
        "issuerNameHash": hex::encode(id.issuer_name_hash()),
        "issuerKeyHash": hex::encode_upper(id.issuer_key_hash()),
        "serialNumber": hex::encode_upper(id.serial_magnitude()),
        "responderURL": responder_url,
    }})
}

async fn get_status(sandbox: &Sandbox, token: &str, body: &Value) -> Value {
    let response = sandbox
        .http
        .post(sandbox.url("/v1/ocpp/get-certificate-status"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// Registers the test PKI's root and Sub-CA with pnc.
async fn register(sandbox: &Sandbox, admin: &str, pki: &OpensslPki) {
    let response = sandbox
        .http
        .put(sandbox.url("/v1/root/rootCerts"))
        .bearer_auth(admin)
        .json(&json!({"caCertificate": pki.der_base64("root"), "rootType": "V2G"}))
        .send()
        .await
        .expect("put root");
    assert!(
        response.status().is_success(),
        "put root: {}",
        response.text().await.unwrap_or_default()
    );
    let response = sandbox
        .http
        .post(sandbox.url("/v1/trust/intermediates"))
        .bearer_auth(admin)
        .json(&json!({"certificate": pki.der_base64("sub")}))
        .send()
        .await
        .expect("add intermediate");
    assert!(
        response.status().is_success(),
        "intermediate: {}",
        response.text().await.unwrap_or_default()
    );
}

fn no_prefetch(config: &mut pnc_common::Config) {
    config.ocsp.prefetch_interval_seconds = 0;
}

/// `openssl ocsp` as an independent verifier; `digest` is the CertID's (`-sha256`, or
/// empty for SHA-1), so that it finds the answer for `cert`.
fn verify_with_openssl(
    dir: &Path,
    response: &[u8],
    ca_file: &Path,
    issuer: &Path,
    digest: &[&str],
    cert: &Path,
) -> String {
    std::fs::write(dir.join("resp.der"), response).expect("write response");
    run(Command::new("openssl")
        .args(["ocsp", "-respin"])
        .arg(dir.join("resp.der"))
        .arg("-CAfile")
        .arg(ca_file)
        .arg("-issuer")
        .arg(issuer)
        .args(digest)
        .arg("-cert")
        .arg(cert))
}

async fn upstream_scenario(backend: Backend) {
    let work = tempfile::tempdir().expect("dir");
    let openssl_port = free_port();
    let proxy = CountingProxy::start(Some(openssl_port)).await;
    let pki = OpensslPki::create(
        work.path(),
        &proxy.url,
        &[
            "leaf1", "leaf2", "leaf3", "revoked1", "leaf5", "leaf6", "leaf7",
        ],
    );
    let mut responder = pki.start_responder(openssl_port);
    let sandbox = Sandbox::start_with(backend, no_prefetch).await;
    let admin = sandbox.admin().await;
    register(&sandbox, &admin.token, &pki).await;
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DEPNC"]).await;
    let sub = pki.certificate("sub");
    let id = |leaf: &str| {
        CertId::for_certificate(HashAlgorithm::Sha256, &pki.certificate(leaf), &sub).unwrap()
    };

    // ok/accepted: the upstream's response, verified by pnc and by openssl.
    let answer = get_status(&sandbox, &cpo.token, &hash_data(&id("leaf1"), &proxy.url)).await;
    assert_eq!(answer["status"], "Accepted", "{answer}");
    let der = STANDARD
        .decode(answer["ocspResult"].as_str().expect("ocspResult"))
        .unwrap();
    std::fs::write(
        work.path().join("chain.pem"),
        [
            std::fs::read(pki.path("root.pem")).unwrap(),
            std::fs::read(pki.path("sub.pem")).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let verdict = verify_with_openssl(
        work.path(),
        &der,
        &work.path().join("chain.pem"),
        &pki.path("sub.pem"),
        &["-sha256"],
        &pki.path("leaf1.pem"),
    );
    assert!(
        verdict.contains("Response verify OK") && verdict.contains(": good"),
        "{verdict}"
    );
    assert_eq!(proxy.count(), 1);

    // ok/cached: asked again, no upstream request.
    let again = get_status(&sandbox, &cpo.token, &hash_data(&id("leaf1"), "")).await;
    assert_eq!(again["ocspResult"], answer["ocspResult"]);
    assert_eq!(proxy.count(), 1);

    // ok/persisted: a second pnc on the same storage (a replica, or this one restarted)
    // serves what the first fetched without asking upstream.
    let before = proxy.count();
    let replica_config = pnc_common::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        services: Default::default(),
        ..sandbox.config.clone()
    };
    let replica_shutdown = tokio_util::sync::CancellationToken::new();
    let replica = pnc::serve::start_all(replica_config, replica_shutdown.clone())
        .await
        .expect("replica starts");
    let replica_url = format!(
        "http://{}",
        replica.address_of(pnc_common::Component::Gateway).unwrap()
    );
    let replica_answer: Value = sandbox
        .http
        .post(format!("{replica_url}/v1/ocpp/get-certificate-status"))
        .bearer_auth(&cpo.token)
        .json(&hash_data(&id("leaf1"), ""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replica_answer["ocspResult"], answer["ocspResult"]);
    assert_eq!(proxy.count(), before, "the replica did not refetch");
    replica_shutdown.cancel();
    replica.wait().await.expect("replica stops");

    // ok/single-flight: 32 concurrent asks for an uncached certificate, one upstream request.
    let mut asks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let body = hash_data(&id("leaf2"), &proxy.url);
        let (http, url, token) = (
            sandbox.http.clone(),
            sandbox.url("/v1/ocpp/get-certificate-status"),
            cpo.token.clone(),
        );
        asks.spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("request");
            response.json::<Value>().await.expect("json")
        });
    }
    let answers = asks.join_all().await;
    assert!(
        answers.iter().all(|answer| answer["status"] == "Accepted"),
        "{answers:?}"
    );
    assert_eq!(proxy.count(), 2, "single flight");

    // ok/revoked: a revoked certificate is a successful answer saying revoked.
    let revoked = get_status(&sandbox, &cpo.token, &hash_data(&id("revoked1"), "")).await;
    assert_eq!(revoked["status"], "Accepted");
    let der = STANDARD
        .decode(revoked["ocspResult"].as_str().unwrap())
        .unwrap();
    let verdict = verify_with_openssl(
        work.path(),
        &der,
        &work.path().join("chain.pem"),
        &pki.path("sub.pem"),
        &["-sha256"],
        &pki.path("revoked1.pem"),
    );
    assert!(verdict.contains(": revoked"), "{verdict}");
    assert_eq!(proxy.count(), 3);

    // fail/responder-not-allowed: a URL no known CA names; no connection is made to it.
    let trap = CountingProxy::start(None).await;
    let refused = get_status(&sandbox, &cpo.token, &hash_data(&id("leaf3"), &trap.url)).await;
    assert_eq!(refused["status"], "Failed");
    assert_eq!(refused["statusInfo"]["reasonCode"], "ResponderNotAllowed");
    assert!(refused.get("ocspResult").is_none());
    let internal = get_status(
        &sandbox,
        &cpo.token,
        &hash_data(&id("leaf3"), "http://169.254.169.254/latest/"),
    )
    .await;
    assert_eq!(internal["status"], "Failed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(trap.count(), 0, "no connection to a refused responder");
    assert_eq!(proxy.count(), 3);

    // fail/unknown-issuer: answered without any upstream request.
    let stranger = CertId::new(HashAlgorithm::Sha256, vec![7; 32], vec![8; 32], &[1]).unwrap();
    let unknown = get_status(&sandbox, &cpo.token, &hash_data(&stranger, &proxy.url)).await;
    assert_eq!(
        unknown["statusInfo"]["reasonCode"], "UnknownIssuer",
        "{unknown}"
    );
    assert_eq!(proxy.count(), 3);

    // fail/bad input, answered in OCPP terms.
    for (case, body) in [
        (
            "fail/bad-hex",
            json!({"ocspRequestData": {"hashAlgorithm": "SHA256", "issuerNameHash": "zz", "issuerKeyHash": "00", "serialNumber": "01", "responderURL": ""}}),
        ),
        (
            "fail/wrong-length",
            json!({"ocspRequestData": {"hashAlgorithm": "SHA256", "issuerNameHash": "00".repeat(20), "issuerKeyHash": "00".repeat(32), "serialNumber": "01", "responderURL": ""}}),
        ),
        (
            "fail/unknown-algorithm",
            json!({"ocspRequestData": {"hashAlgorithm": "MD5", "issuerNameHash": "00".repeat(16), "issuerKeyHash": "00".repeat(16), "serialNumber": "01", "responderURL": ""}}),
        ),
    ] {
        let answer = get_status(&sandbox, &cpo.token, &body).await;
        assert_eq!(answer["status"], "Failed", "{case}");
        assert_eq!(
            answer["statusInfo"]["reasonCode"], "FormatViolation",
            "{case}"
        );
    }
    let missing = sandbox
        .http
        .post(sandbox.url("/v1/ocpp/get-certificate-status"))
        .bearer_auth(&cpo.token)
        .json(&json!({"ocspRequestData": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400, "fail/missing-fields");
    let anonymous = sandbox
        .http
        .post(sandbox.url("/v1/ocpp/get-certificate-status"))
        .json(&hash_data(&id("leaf1"), ""))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let oem = sandbox.client(Role::Oem, &["PNC"], &[], &[]).await;
    let forbidden = sandbox
        .http
        .post(sandbox.url("/v1/ocpp/get-certificate-status"))
        .bearer_auth(&oem.token)
        .json(&hash_data(&id("leaf1"), ""))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);

    // fail/tampered and fail/mismatched upstream answers are not kept or served.
    proxy.set_mode(Mode::Tamper, Vec::new());
    let tampered = get_status(&sandbox, &cpo.token, &hash_data(&id("leaf5"), "")).await;
    assert_eq!(tampered["status"], "Failed", "{tampered}");
    assert_eq!(tampered["statusInfo"]["reasonCode"], "OcspUnavailable");
    let leaf1_der = STANDARD
        .decode(answer["ocspResult"].as_str().unwrap())
        .unwrap();
    proxy.set_mode(Mode::Mismatch, leaf1_der);
    let mismatched = get_status(&sandbox, &cpo.token, &hash_data(&id("leaf6"), "")).await;
    assert_eq!(mismatched["status"], "Failed", "{mismatched}");
    proxy.set_mode(Mode::Forward, Vec::new());

    // ok/rfc6960: the same cache answers plain OCSP (SHA-1 CertID, POST) without a token.
    let sha1 =
        CertId::for_certificate(HashAlgorithm::Sha1, &pki.certificate("leaf7"), &sub).unwrap();
    let request = pnc_ocsp::codec::build_request(&sha1);
    let response = sandbox
        .http
        .post(sandbox.url("/ocsp"))
        .header("content-type", "application/ocsp-request")
        .body(request.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    let verdict = verify_with_openssl(
        work.path(),
        &body,
        &work.path().join("chain.pem"),
        &pki.path("sub.pem"),
        &[],
        &pki.path("leaf7.pem"),
    );
    assert!(verdict.contains(": good"), "{verdict}");

    // ok/stale-but-valid, then fail/expired: the responder stops; the last good response
    // is served until its nextUpdate (one minute after thisUpdate), then a clear failure.
    responder.stop();
    let parsed = pnc_ocsp::codec::read_answer(
        &STANDARD
            .decode(answer["ocspResult"].as_str().unwrap())
            .unwrap(),
        &id("leaf1"),
    )
    .unwrap();
    let wait_until = |at: i64| async move {
        let now = pnc_common::db::unix_now();
        if at > now {
            tokio::time::sleep(Duration::from_secs((at - now) as u64)).await;
        }
    };
    wait_until(parsed.this_update + (parsed.next_update - parsed.this_update) / 2 + 2).await;
    let stale = get_status(&sandbox, &cpo.token, &hash_data(&id("leaf1"), "")).await;
    assert_eq!(stale["status"], "Accepted", "stale but valid: {stale}");
    assert_eq!(stale["ocspResult"], answer["ocspResult"]);
    wait_until(parsed.next_update + 2).await;
    // The gateway's answer cache never outlives nextUpdate either.
    let expired = get_status(&sandbox, &cpo.token, &hash_data(&id("leaf1"), "")).await;
    assert_eq!(expired["status"], "Failed", "{expired}");
    assert_eq!(expired["statusInfo"]["reasonCode"], "OcspUnavailable");
    let plain = sandbox
        .http
        .post(sandbox.url("/ocsp"))
        .body(pnc_ocsp::codec::build_request(&id("leaf1")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(plain.as_ref(), &[0x30, 0x03, 0x0a, 0x01, 0x03], "tryLater");
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_cache_verifies_shares_and_outlives_its_responder() {
    tokio::join!(
        upstream_scenario(Backend::Sqlite),
        upstream_scenario(Backend::Postgres)
    );
}

/// The dev PKI's certificates and keys, as the sandbox made them.
fn dev_pki(sandbox: &Sandbox) -> pnc_pki::DevPki {
    let directory = sandbox.data_dir.path().join("pki");
    let kek = pnc_pki::Kek::load(&directory.join("kek")).expect("kek");
    let store = pnc_pki::KeyStore::open(directory.join("keys"), kek).expect("key store");
    pnc_pki::DevPki::load(&directory, &store).expect("dev pki")
}

async fn own_scenario(backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    let work = tempfile::tempdir().expect("dir");
    let pki = dev_pki(&sandbox);
    let ca = pki.certificate(pnc_pki::DevCert::ChargingStationCa).clone();
    let key =
        pnc_pki::SoftwareSigner::generate("station", pnc_pki::SignatureAlgorithm::EcdsaP256Sha256)
            .unwrap();
    let issue = |name: &str| {
        pki.issue_charging_station(
            name,
            pnc_pki::Signer::public_key_spki_der(&key),
            time::Duration::days(30),
        )
        .unwrap()
    };
    let (good, revoked, unrecorded) = (
        issue("CS-GOOD"),
        issue("CS-REVOKED"),
        issue("CS-UNRECORDED"),
    );
    let registry = pnc_registry::open_database(&sandbox.storage())
        .await
        .unwrap();
    let issued = pnc_registry::issued::IssuedStore::new(registry);
    for certificate in [&good, &revoked] {
        let record = pnc_registry::issued::NewIssued::from_certificates(
            certificate.der(),
            ca.der(),
            "charging-station",
        )
        .unwrap();
        issued.record(&record).await.unwrap();
    }
    issued
        .revoke(ca.subject_key_identifier().unwrap(), revoked.serial(), 1)
        .await
        .unwrap();

    let write = |name: &str, bytes: &[u8]| {
        let path = work.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let ca_file = write("ca.pem", ca.to_pem().as_bytes());
    for (name, certificate) in [
        ("good", &good),
        ("revoked", &revoked),
        ("unrecorded", &unrecorded),
    ] {
        write(&format!("{name}.pem"), certificate.to_pem().as_bytes());
    }
    let openssl_request = |name: &str, extra: &[&str]| -> Vec<u8> {
        let out = work.path().join(format!("{name}.req"));
        let mut command = Command::new("openssl");
        command
            .current_dir(work.path())
            .args(["ocsp", "-issuer", "ca.pem"])
            .args(extra)
            .args(["-cert", &format!("{name}.pem"), "-reqout"])
            .arg(&out);
        run(&mut command);
        std::fs::read(out).unwrap()
    };
    // The verifier builds the CertID itself (with the digest the request used) and
    // matches it against the response.
    let check = |name: &str, response: &[u8], digest: &[&str]| -> String {
        std::fs::write(work.path().join("r.der"), response).unwrap();
        run(Command::new("openssl")
            .current_dir(work.path())
            .args([
                "ocsp", "-respin", "r.der", "-CAfile", "ca.pem", "-issuer", "ca.pem",
            ])
            .args(digest)
            .args(["-cert", &format!("{name}.pem")]))
    };

    // ok/good, ok/revoked with its reason, ok/unknown: SHA-1 (openssl's default) and
    // SHA-256 CertIDs, with and without nonce, POST and GET in both base64 alphabets.
    let cases: [(&str, &[&str], &str); 5] = [
        ("good", &["-no_nonce"], ": good"),
        ("good", &["-sha256", "-nonce"], ": good"),
        ("revoked", &["-no_nonce"], "Reason: keyCompromise"),
        ("revoked", &["-sha256", "-no_nonce"], ": revoked"),
        ("unrecorded", &["-no_nonce"], ": unknown"),
    ];
    for (name, extra, expected) in cases {
        let request = openssl_request(name, extra);
        let response = sandbox
            .http
            .post(sandbox.url("/ocsp"))
            .header("content-type", "application/ocsp-request")
            .body(request.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap();
        let digest: Vec<&str> = extra
            .iter()
            .copied()
            .filter(|arg| *arg == "-sha256")
            .collect();
        let verdict = check(name, &body, &digest);
        assert!(
            verdict.contains("Response verify OK") && verdict.contains(expected),
            "{name} {extra:?}: {verdict}"
        );
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("max-age="),
            "{headers:?}"
        );
        assert!(headers.contains_key("etag") && headers.contains_key("last-modified"));
        for encoded in [STANDARD.encode(&request), URL_SAFE_NO_PAD.encode(&request)] {
            let path = encoded
                .replace('/', "%2F")
                .replace('+', "%2B")
                .replace('=', "%3D");
            let got = sandbox
                .http
                .get(sandbox.url(&format!("/ocsp/{path}")))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let verdict = check(name, &got, &digest);
            assert!(verdict.contains(expected), "GET {name}: {verdict}");
        }
    }

    // The /ocsp fast path keeps the RFC 5019 headers of a cached answer, answers other
    // methods 405, refuses an oversized body unread, and counts what it did.
    let request = openssl_request("good", &["-no_nonce"]);
    for _ in 0..2 {
        let response = sandbox
            .http
            .post(sandbox.url("/ocsp"))
            .header("content-type", "application/ocsp-request")
            .body(request.clone())
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["content-type"], "application/ocsp-response");
        for name in ["etag", "last-modified", "expires", "cache-control"] {
            assert!(headers.contains_key(name), "{name}: {headers:?}");
        }
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .ends_with(", public, no-transform, must-revalidate")
        );
    }
    let put = sandbox
        .http
        .put(sandbox.url("/ocsp"))
        .body(request.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    let oversized = sandbox
        .http
        .post(sandbox.url("/ocsp"))
        .body(vec![0x30; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 200);
    // The body is left unread, so the server closes the connection and says so.
    assert_eq!(oversized.headers()["connection"], "close");
    assert_eq!(
        oversized.bytes().await.unwrap().as_ref(),
        &MALFORMED_REQUEST
    );
    let metrics = sandbox
        .http
        .get(sandbox.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for result in ["hit", "miss", "error"] {
        assert!(
            metrics.contains(&format!(
                "pnc_ocsp_http_requests_total{{result=\"{result}\"}}"
            )),
            "{metrics}"
        );
    }

    // fail/malformed and fail/unknown-issuer: OCSP error statuses, never a panic.
    for garbage in [
        Vec::new(),
        vec![0x30, 0x00],
        vec![0xff; 100],
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
    ] {
        let body = sandbox
            .http
            .post(sandbox.url("/ocsp"))
            .body(garbage)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.as_ref(), &MALFORMED_REQUEST);
    }
    let got = sandbox
        .http
        .get(sandbox.url("/ocsp/not*base64"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &MALFORMED_REQUEST);
    let stranger = CertId::new(HashAlgorithm::Sha1, vec![1; 20], vec![2; 20], &[3]).unwrap();
    let body = sandbox
        .http
        .post(sandbox.url("/ocsp"))
        .body(pnc_ocsp::codec::build_request(&stranger))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.as_ref(), &UNAUTHORIZED);

    // ok/crl: at the path the certificates name, signed by the CA, listing the revoked one.
    let crl_url = good.crl_urls().first().expect("CRL DP").clone();
    let path = url_path(&crl_url);
    let response = sandbox.http.get(sandbox.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let crl = response.bytes().await.unwrap();
    let crl_path = write("ca.crl", &crl);
    let text = run(Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in"])
        .arg(&crl_path)
        .arg("-CAfile")
        .arg(&ca_file)
        .args(["-noout", "-text"]));
    assert!(text.contains("verify OK"), "{text}");
    assert!(
        text.contains(&revoked.serial_hex()) && !text.contains(&good.serial_hex()),
        "{text}"
    );
    let missing = sandbox
        .http
        .get(sandbox.url("/crl/nobody.crl"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // ok/ocpp: the same answers through GetCertificateStatus, with the AIA URL as hint.
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DEPNC"]).await;
    let id = CertId::for_certificate(HashAlgorithm::Sha256, &revoked, &ca).unwrap();
    let answer = get_status(&sandbox, &cpo.token, &hash_data(&id, &good.ocsp_urls()[0])).await;
    assert_eq!(answer["status"], "Accepted", "{answer}");
    let chain = sandbox.http.post(sandbox.url("/v1/ocpp/get-certificate-chain-status")).bearer_auth(&cpo.token).json(&json!({"certificateStatusRequests": [
        {"certificateHashData": hash_data(&id, "")["ocspRequestData"], "source": "OCSP", "urls": [good.ocsp_urls()[0]]},
        {"certificateHashData": hash_data(&CertId::for_certificate(HashAlgorithm::Sha256, &good, &ca).unwrap(), "")["ocspRequestData"], "source": "CRL", "urls": [crl_url]},
    ]})).send().await.unwrap();
    assert_eq!(chain.status(), 200);
    let chain: Value = chain.json().await.unwrap();
    assert_eq!(
        chain["certificateStatus"][0]["status"], "Revoked",
        "{chain}"
    );
    assert_eq!(chain["certificateStatus"][1]["status"], "Good", "{chain}");
    assert!(
        chain["certificateStatus"][0]["nextUpdate"]
            .as_str()
            .unwrap()
            .contains('T')
    );
    sandbox.stop().await;
}

fn url_path(url: &str) -> String {
    let without_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    without_scheme
        .find('/')
        .map(|at| without_scheme[at..].to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn own_responder_answers_verify_with_openssl() {
    for backend in Backend::ALL {
        own_scenario(backend).await;
    }
}

/// Registers a vehicle (an OEM provisioning certificate for `pcid`) and has the eMSP
/// generate a contract for `emaid` on it, as OPCP clients do; the contract leaf pnc issued.
async fn generated_contract(
    sandbox: &Sandbox,
    pki: &pnc_pki::DevPki,
    oem: &str,
    emsp: &str,
    pcid: &str,
    emaid: &str,
) -> Certificate {
    let now = time::OffsetDateTime::now_utc();
    let mut template = pnc_pki::CertificateTemplate::new(
        pnc_pki::Profile::OemProvisioning,
        pnc_pki::SubjectName::new(pcid),
        pki.certificate(pnc_pki::DevCert::OemProvisioning)
            .public_key_spki_der()
            .to_vec(),
        now - time::Duration::hours(1),
        now + time::Duration::days(300),
    );
    template.ocsp_url = Some(pki.ocsp_base_url().to_string());
    let issuer = pki.entry(pnc_pki::DevCert::OemSubCa2);
    let vehicle = pnc_pki::issue(
        &template,
        Some(&issuer.certificate),
        issuer.signer().as_ref(),
    )
    .unwrap();
    let response = sandbox
        .http
        .put(sandbox.url("/v1/oem/provCerts"))
        .bearer_auth(oem)
        .json(&json!({
            "provisioningCertificate": STANDARD.encode(vehicle.der()),
            "subCa2Certificate": STANDARD.encode(pki.certificate(pnc_pki::DevCert::OemSubCa2).der()),
            "subCa1Certificate": STANDARD.encode(pki.certificate(pnc_pki::DevCert::OemSubCa1).der()),
            "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    // Provisioning seeds the roots and its CPS chain in the background.
    let mut last = String::new();
    for _ in 0..75 {
        let response = sandbox
            .http
            .put(sandbox.url("/v1/cps/generate/signedContractData"))
            .bearer_auth(emsp)
            .json(&json!({
                "contractBegins": rfc3339(now - time::Duration::days(1)),
                "contractEnds": rfc3339(now + time::Duration::days(365)),
                "emaid": emaid,
                "pcid": pcid,
                "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef",
            }))
            .send()
            .await
            .unwrap();
        if response.status() == 201 {
            last.clear();
            break;
        }
        last = format!("{}: {}", response.status(), response.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last.is_empty(), "generate {emaid}: {last}");
    let lookup: Value = sandbox
        .http
        .get(sandbox.url(&format!("/v1/ccp/lookupContract/{emaid}")))
        .bearer_auth(emsp)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let leaf = STANDARD
        .decode(
            lookup["XMLContracts"][0]["contractCertificate"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    Certificate::from_der(&leaf).unwrap()
}

async fn authorize_scenario(backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DEPNC"]).await;
    let oem = sandbox.client(Role::Oem, &["PNC"], &[], &[]).await;
    let emsp = sandbox.client(Role::Emsp, &[], &["DE-PNC"], &[]).await;
    let key =
        pnc_pki::SoftwareSigner::generate("contract", pnc_pki::SignatureAlgorithm::EcdsaP256Sha256)
            .unwrap();
    let emaid_of = |first_14: &str| {
        format!(
            "{first_14}{}",
            pnc_common::ids::emaid_check_digit(first_14).expect("check digit")
        )
    };
    let emaid = emaid_of("DEPNCC00000001");
    let emaid = emaid.as_str();
    let other_emaid = emaid_of("DEPNCC00000002");
    let revoked_emaid = emaid_of("DEPNCC00000003");
    let orphan_emaid = emaid_of("DEPNCC00000004");
    let contract = generated_contract(
        &sandbox,
        &pki,
        &oem.token,
        &emsp.token,
        "PNCAUTHORIZECAR01",
        emaid,
    )
    .await;
    let sub2 = pki.certificate(pnc_pki::DevCert::MoSubCa2).clone();
    let sub1 = pki.certificate(pnc_pki::DevCert::MoSubCa1).clone();
    let registry = pnc_registry::open_database(&sandbox.storage())
        .await
        .unwrap();
    let issued = pnc_registry::issued::IssuedStore::new(registry);
    // The contract leaf's record came with its contract; the Sub-CAs' are the test's.
    for (certificate, issuer) in [
        (&sub2, &sub1),
        (&sub1, pki.certificate(pnc_pki::DevCert::MoRoot)),
    ] {
        let record = pnc_registry::issued::NewIssued::from_certificates(
            certificate.der(),
            issuer.der(),
            "test",
        )
        .unwrap();
        issued.record(&record).await.unwrap();
    }
    let pem = [contract.to_pem(), sub2.to_pem(), sub1.to_pem()].concat();
    let authorize = |body: Value| {
        let (sandbox, token) = (&sandbox, cpo.token.clone());
        async move {
            let response = sandbox
                .http
                .post(sandbox.url("/v1/ocpp/authorize"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    // The MO root must be in the pool (provisioning seeds it in the background).
    let mut answer = Value::Null;
    for _ in 0..50 {
        answer =
            authorize(json!({"idToken": {"idToken": emaid, "type": "eMAID"}, "certificate": pem}))
                .await;
        if answer["certificateStatus"] == "Accepted" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(answer["certificateStatus"], "Accepted", "{answer}");
    assert_eq!(answer["idTokenInfo"]["status"], "Accepted");
    let wrong_token = authorize(
        json!({"idToken": {"idToken": other_emaid, "type": "eMAID"}, "certificate": pem}),
    )
    .await;
    assert_eq!(wrong_token["certificateStatus"], "CertChainError");
    let hash = |certificate: &Certificate, issuer: &Certificate| {
        hash_data(
            &CertId::for_certificate(HashAlgorithm::Sha256, certificate, issuer).unwrap(),
            "",
        )["ocspRequestData"]
            .clone()
    };
    let by_hash = authorize(json!({"idToken": {"idToken": emaid, "type": "eMAID"}, "iso15118CertificateHashData": [hash(&contract, &sub2), hash(&sub2, &sub1)]})).await;
    assert_eq!(by_hash["certificateStatus"], "Accepted", "{by_hash}");

    // fail/no-contract: a certificate of pnc's own MO Sub-CA, good in OCSP, but pnc holds no
    // contract for its eMAID: the token is Unknown (C07.FR.13).
    let orphan = pki
        .issue_contract(
            &orphan_emaid,
            pnc_pki::Signer::public_key_spki_der(&key),
            time::Duration::days(30),
        )
        .unwrap();
    let record =
        pnc_registry::issued::NewIssued::from_certificates(orphan.der(), sub2.der(), "test")
            .unwrap();
    issued.record(&record).await.unwrap();
    let orphan_pem = [orphan.to_pem(), sub2.to_pem(), sub1.to_pem()].concat();
    for body in [
        json!({"idToken": {"idToken": orphan_emaid, "type": "eMAID"}, "certificate": orphan_pem}),
        json!({"idToken": {"idToken": orphan_emaid, "type": "eMAID"}, "iso15118CertificateHashData": [hash(&orphan, &sub2), hash(&sub2, &sub1)]}),
    ] {
        let answer = authorize(body).await;
        assert_eq!(answer["certificateStatus"], "ContractCancelled", "{answer}");
        assert_eq!(answer["idTokenInfo"]["status"], "Unknown", "{answer}");
    }

    // fail/cancelled: the eMSP cancels without revoking (X-Skip-Revocation): the chain is
    // still good, the contract is not, by chain and by hash data; the token is Blocked.
    let response = sandbox
        .http
        .delete(sandbox.url(&format!("/v1/ccp/signedContractData/{emaid}")))
        .bearer_auth(&emsp.token)
        .header("X-Skip-Revocation", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "cancel");
    for body in [
        json!({"idToken": {"idToken": emaid, "type": "eMAID"}, "certificate": pem}),
        json!({"idToken": {"idToken": emaid, "type": "eMAID"}, "iso15118CertificateHashData": [hash(&contract, &sub2), hash(&sub2, &sub1)]}),
    ] {
        let answer = authorize(body).await;
        assert_eq!(answer["certificateStatus"], "ContractCancelled", "{answer}");
        assert_eq!(answer["idTokenInfo"]["status"], "Blocked", "{answer}");
    }

    // fail/revoked: revocation outranks the contract check (the chain is not valid).
    issued
        .revoke(sub2.subject_key_identifier().unwrap(), contract.serial(), 1)
        .await
        .unwrap();
    // A fresh contract of the same chain, revoked before anyone asked.
    let revoked = pki
        .issue_contract(
            &revoked_emaid,
            pnc_pki::Signer::public_key_spki_der(&key),
            time::Duration::days(30),
        )
        .unwrap();
    let record =
        pnc_registry::issued::NewIssued::from_certificates(revoked.der(), sub2.der(), "test")
            .unwrap();
    issued.record(&record).await.unwrap();
    issued
        .revoke(sub2.subject_key_identifier().unwrap(), revoked.serial(), 1)
        .await
        .unwrap();
    let revoked_answer = authorize(json!({"idToken": {"idToken": revoked_emaid, "type": "eMAID"}, "certificate": ([revoked.to_pem(), sub2.to_pem(), sub1.to_pem()].concat())})).await;
    assert_eq!(
        revoked_answer["certificateStatus"], "CertificateRevoked",
        "{revoked_answer}"
    );
    assert_eq!(revoked_answer["idTokenInfo"]["status"], "Invalid");
    let foreign = authorize(json!({"idToken": {"idToken": emaid, "type": "eMAID"}, "certificate": ([contract.to_pem(), sub2.to_pem()].concat())})).await;
    assert_eq!(foreign["certificateStatus"], "CertChainError", "{foreign}");
    let nothing = authorize(json!({"idToken": {"idToken": emaid, "type": "eMAID"}})).await;
    assert_eq!(nothing["certificateStatus"], "NoCertificateAvailable");
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorize_checks_contract_chains() {
    for backend in Backend::ALL {
        authorize_scenario(backend).await;
    }
}

/// Hubject's layout (`pki.mo_sub_cas_under_v2g_root`): the contract certificates of pnc's MO
/// Sub-CAs under the V2G root get OCSP answers signed by a delegated signer of their CA,
/// which `openssl ocsp` verifies up to the V2G root.
async fn hubject_layout_scenario(backend: Backend) {
    let sandbox = Sandbox::start_with(backend, |config| {
        config.pki.mo_sub_cas_under_v2g_root = true;
    })
    .await;
    let pki = dev_pki(&sandbox);
    let oem = sandbox.client(Role::Oem, &["PNC"], &[], &[]).await;
    let emsp = sandbox.client(Role::Emsp, &[], &["DE-PNC"], &[]).await;
    let emaid = format!(
        "DEPNCC00000009{}",
        pnc_common::ids::emaid_check_digit("DEPNCC00000009").unwrap()
    );
    let contract = generated_contract(
        &sandbox,
        &pki,
        &oem.token,
        &emsp.token,
        "PNCHUBJECTCAR0001",
        &emaid,
    )
    .await;
    let extra = sandbox.data_dir.path().join("pki").join("mo-under-v2g");
    let work = tempfile::tempdir().unwrap();
    let der_to_pem = |file: &str, to: &str| {
        let certificate = Certificate::from_der(&std::fs::read(extra.join(file)).unwrap()).unwrap();
        std::fs::write(work.path().join(to), certificate.to_pem()).unwrap();
        certificate
    };
    let sub2 = der_to_pem("sub-ca-2.der", "sub2.pem");
    der_to_pem("sub-ca-1.der", "sub1.pem");
    assert!(
        contract.issuer().matches(sub2.subject()),
        "the contract comes from the MO Sub-CA under the V2G root"
    );
    std::fs::write(work.path().join("leaf.pem"), contract.to_pem()).unwrap();
    let sub1 = std::fs::read_to_string(work.path().join("sub1.pem")).unwrap();
    std::fs::write(
        work.path().join("anchors.pem"),
        [
            pki.certificate(pnc_pki::DevCert::V2gRoot).to_pem(),
            sub1,
            sub2.to_pem(),
        ]
        .concat(),
    )
    .unwrap();
    run(Command::new("openssl").current_dir(work.path()).args([
        "ocsp",
        "-issuer",
        "sub2.pem",
        "-cert",
        "leaf.pem",
        "-no_nonce",
        "-reqout",
        "req.der",
    ]));
    let request = std::fs::read(work.path().join("req.der")).unwrap();
    // The ocsp service loads the layout's CAs once provisioning has written them.
    let body = ocsp_until(&sandbox, &request, |body| body != UNAUTHORIZED).await;
    std::fs::write(work.path().join("resp.der"), &body).unwrap();
    let verdict = run(Command::new("openssl").current_dir(work.path()).args([
        "ocsp",
        "-respin",
        "resp.der",
        "-CAfile",
        "anchors.pem",
        "-issuer",
        "sub2.pem",
        "-cert",
        "leaf.pem",
    ]));
    assert!(
        verdict.contains("Response verify OK") && verdict.contains(": good"),
        "{backend:?}: {verdict}"
    );
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hubject_layout_sub_cas_have_delegated_ocsp_signers() {
    for backend in Backend::ALL {
        hubject_layout_scenario(backend).await;
    }
}

/// POSTs a DER OCSP request to `/ocsp` until the answer satisfies `done` (the ocsp service
/// loads pnc's PKI once provisioning has written it; answers are reused for a while).
/// Posts `request` to `/ocsp` until `done` accepts the answer. tryLater is always asked again:
/// the gateway answers it when the ocsp service misses the request deadline, which a loaded CI
/// host can make happen while the sandbox is still warming up (P-521 signing, first loads).
async fn ocsp_until(sandbox: &Sandbox, request: &[u8], done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..75 {
        body = sandbox
            .http
            .post(sandbox.url("/ocsp"))
            .header("content-type", "application/ocsp-request")
            .body(request.to_vec())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        if body != TRY_LATER && done(&body) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    body
}

/// The ISO 15118-20 hierarchy (P-521, ECDSA-SHA512): a contract pnc generates for the -20
/// example vehicle is answered by the -20 MO Sub-CA 2's delegated signer (verified by
/// `openssl ocsp` up to the -20 MO root), revoked with its reason once the eMSP cancels it,
/// listed on the Sub-CA's CRL, and C07 Authorize follows.
async fn iso20_scenario(backend: Backend) {
    let sandbox = Sandbox::start_with(backend, |config| {
        // Answers (the engine's and the gateway's) are reused for a second, so a
        // revocation shows soon.
        config.ocsp.own_answer_reuse_seconds = 1;
        config.ocsp.gateway_answer_cache_seconds = 1;
    })
    .await;
    let pki = dev_pki(&sandbox);
    assert!(pki.has_iso20());
    let work = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = work.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    use pnc_pki::DevCert::{Iso20MoRoot, Iso20MoSubCa1, Iso20MoSubCa2};

    // Every -20 CA has a P-521 delegated signer, issued with ECDSA-SHA512, id-kp-OCSPSigning
    // and ocsp-nocheck; it passes the OCSP-signer profile.
    for ca in pnc_pki::DevCert::ISO20.into_iter().filter(|ca| ca.is_ca()) {
        let signer = pki
            .ocsp_signer_certificate(ca)
            .unwrap_or_else(|| panic!("{ca}: no OCSP signer"));
        let report = pnc_pki::profile::check(signer, None).unwrap();
        assert_eq!(report.profile, pnc_pki::Profile::OcspSigner, "{ca}");
        assert!(report.passed(), "{ca}: {:?}", report.findings);
        let path = write("signer.pem", signer.to_pem().as_bytes());
        let text = run(Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&path));
        for expected in [
            "ecdsa-with-SHA512",
            "NIST CURVE: P-521",
            "OCSP Signing",
            "OCSP No Check",
        ] {
            assert!(text.contains(expected), "{ca}: {expected}: {text}");
        }
    }

    // The -20 example vehicle, and a contract generated for it.
    let oem = sandbox.client(Role::Oem, &["PNC"], &[], &[]).await;
    let emsp = sandbox.client(Role::Emsp, &[], &["DE-PNC"], &[]).await;
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DEPNC"]).await;
    let pcid = pki
        .certificate(pnc_pki::DevCert::Iso20OemProvisioning)
        .common_name()
        .unwrap()
        .to_string();
    let emaid = format!(
        "DEPNCC00000209{}",
        pnc_common::ids::emaid_check_digit("DEPNCC00000209").unwrap()
    );
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    // Provisioning seeds the -20 roots in the background.
    let mut last = String::new();
    for _ in 0..75 {
        let upload = sandbox
            .http
            .put(sandbox.url("/v1/oem/provCerts"))
            .bearer_auth(&oem.token)
            .json(&json!({
                "vehicleCertificate": STANDARD.encode(pki.certificate(pnc_pki::DevCert::Iso20OemProvisioning).der()),
                "subCA2Certificate": STANDARD.encode(pki.certificate(pnc_pki::DevCert::Iso20OemSubCa2).der()),
                "subCA1Certificate": STANDARD.encode(pki.certificate(pnc_pki::DevCert::Iso20OemSubCa1).der()),
                "xsdMsgDefNamespace": "urn:iso:15118:20:2022:MsgDef",
            }))
            .send()
            .await
            .unwrap();
        let status = upload.status();
        last = upload.text().await.unwrap();
        if status == 200 {
            let generated = sandbox
                .http
                .put(sandbox.url("/v1/cps/generate/signedContractData"))
                .bearer_auth(&emsp.token)
                .json(&json!({
                    "contractBegins": rfc3339(now - time::Duration::days(1)),
                    "contractEnds": rfc3339(now + time::Duration::days(365)),
                    "emaid": emaid,
                    "pcid": pcid,
                }))
                .send()
                .await
                .unwrap();
            let status = generated.status();
            last = format!("generate {status}: {}", generated.text().await.unwrap());
            if status == 201 {
                last.clear();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last.is_empty(), "{backend:?}: {last}");
    let lookup: Value = sandbox
        .http
        .get(sandbox.url(&format!("/v1/ccp/lookupContract/{emaid}")))
        .bearer_auth(&emsp.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contract = Certificate::from_der(
        &STANDARD
            .decode(
                lookup["XMLContracts"][0]["contractCertificate"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    let (sub2, sub1, root) = (
        pki.certificate(Iso20MoSubCa2).clone(),
        pki.certificate(Iso20MoSubCa1).clone(),
        pki.certificate(Iso20MoRoot).clone(),
    );
    assert!(contract.issuer().matches(sub2.subject()));

    // Their AIA OCSP URL and CRL DP name pnc's responder and CRL endpoint.
    let ocsp_url = sandbox.url("/ocsp");
    for (certificate, issuer_stem) in [
        (&contract, "iso20-mo-sub-ca-2"),
        (&sub2, "iso20-mo-sub-ca-1"),
        (&sub1, "iso20-mo-root"),
    ] {
        assert_eq!(url_path(&certificate.ocsp_urls()[0]), url_path(&ocsp_url));
        assert_eq!(
            url_path(&certificate.crl_urls()[0]),
            format!("/crl/{issuer_stem}.crl"),
            "{}",
            certificate.subject()
        );
    }

    write("leaf.pem", contract.to_pem().as_bytes());
    write("sub2.pem", sub2.to_pem().as_bytes());
    write("sub1.pem", sub1.to_pem().as_bytes());
    write("root.pem", root.to_pem().as_bytes());
    write(
        "untrusted.pem",
        [sub2.to_pem(), sub1.to_pem()].concat().as_bytes(),
    );
    let request_for = |cert: &str, issuer: &str, name: &str| -> Vec<u8> {
        run(Command::new("openssl").current_dir(work.path()).args([
            "ocsp",
            "-issuer",
            issuer,
            "-cert",
            cert,
            "-no_nonce",
            "-reqout",
            name,
        ]));
        std::fs::read(work.path().join(name)).unwrap()
    };
    let verify = |response: &[u8], cert: &str, issuer: &str| -> String {
        std::fs::write(work.path().join("resp.der"), response).unwrap();
        run(Command::new("openssl").current_dir(work.path()).args([
            "ocsp",
            "-respin",
            "resp.der",
            "-CAfile",
            "root.pem",
            "-verify_other",
            "untrusted.pem",
            "-issuer",
            issuer,
            "-cert",
            cert,
            "-resp_text",
        ]))
    };

    // ok/good: the contract and the Sub-CA 2 (issuance records from provisioning's seed).
    let leaf_request = request_for("leaf.pem", "sub2.pem", "leaf.req");
    let body = ocsp_until(&sandbox, &leaf_request, |body| body != UNAUTHORIZED).await;
    let verdict = verify(&body, "leaf.pem", "sub2.pem");
    // The response's own signature (printed before the included signer certificate).
    let response_part = verdict.split("Certificate:").next().unwrap_or_default();
    assert!(
        verdict.contains("Response verify OK")
            && verdict.contains("leaf.pem: good")
            && response_part.contains("ecdsa-with-SHA512")
            && verdict.contains("CN=OCSP pnc Dev -20 MO Sub-CA 2"),
        "{backend:?}: {verdict}"
    );
    let sub2_request = request_for("sub2.pem", "sub1.pem", "sub2.req");
    let body = ocsp_until(&sandbox, &sub2_request, |body| body != UNAUTHORIZED).await;
    let verdict = verify(&body, "sub2.pem", "sub1.pem");
    assert!(
        verdict.contains("Response verify OK") && verdict.contains("sub2.pem: good"),
        "{backend:?}: {verdict}"
    );

    // ok/authorize: a live -20 contract chain, by chain and by hash data.
    let pem = [contract.to_pem(), sub2.to_pem(), sub1.to_pem()].concat();
    let hash = |certificate: &Certificate, issuer: &Certificate| {
        hash_data(
            &CertId::for_certificate(HashAlgorithm::Sha256, certificate, issuer).unwrap(),
            "",
        )["ocspRequestData"]
            .clone()
    };
    let by_chain = json!({"idToken": {"idToken": emaid, "type": "eMAID"}, "certificate": pem});
    let by_hash = json!({"idToken": {"idToken": emaid, "type": "eMAID"}, "iso15118CertificateHashData": [hash(&contract, &sub2), hash(&sub2, &sub1)]});
    let authorize = |body: Value| {
        let (sandbox, token) = (&sandbox, cpo.token.clone());
        async move {
            let response = sandbox
                .http
                .post(sandbox.url("/v1/ocpp/authorize"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    for body in [&by_chain, &by_hash] {
        let answer = authorize(body.clone()).await;
        assert_eq!(answer["certificateStatus"], "Accepted", "{answer}");
        assert_eq!(answer["idTokenInfo"]["status"], "Accepted", "{answer}");
    }

    // fail/revoked: the eMSP cancels the contract, pnc revokes its certificate
    // (cessationOfOperation); the answer says so once the reused good answer has aged out.
    let response = sandbox
        .http
        .delete(sandbox.url(&format!("/v1/ccp/signedContractData/{emaid}")))
        .bearer_auth(&emsp.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "cancel");
    let body = ocsp_until(&sandbox, &leaf_request, |body| {
        verify(body, "leaf.pem", "sub2.pem").contains("leaf.pem: revoked")
    })
    .await;
    let verdict = verify(&body, "leaf.pem", "sub2.pem");
    assert!(
        verdict.contains("Response verify OK")
            && verdict.contains("leaf.pem: revoked")
            && verdict.contains("Reason: cessationOfOperation"),
        "{backend:?}: {verdict}"
    );

    // ok/crl: at the contract's CRL DP, signed by the -20 MO Sub-CA 2 with ECDSA-SHA512,
    // listing the revoked serial.
    let crl_path = url_path(&contract.crl_urls()[0]);
    let ca_file = write(
        "crl-ca.pem",
        [root.to_pem(), sub1.to_pem(), sub2.to_pem()]
            .concat()
            .as_bytes(),
    );
    let mut text = String::new();
    for _ in 0..50 {
        let response = sandbox
            .http
            .get(sandbox.url(&crl_path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{crl_path}");
        let crl = write("sub2.crl", &response.bytes().await.unwrap());
        text = run(Command::new("openssl")
            .args(["crl", "-inform", "DER", "-in"])
            .arg(&crl)
            .arg("-CAfile")
            .arg(&ca_file)
            .args(["-noout", "-text"]));
        if text.contains(&contract.serial_hex()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        text.contains("verify OK")
            && text.contains(&contract.serial_hex())
            && text.contains("Cessation Of Operation")
            && text.contains("ecdsa-with-SHA512")
            && text.contains("pnc Dev -20 MO Sub-CA 2"),
        "{backend:?}: {text}"
    );

    // fail/authorize: revocation outranks the cancelled contract.
    for body in [&by_chain, &by_hash] {
        let mut answer = Value::Null;
        for _ in 0..50 {
            answer = authorize(body.clone()).await;
            if answer["certificateStatus"] == "CertificateRevoked" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(
            answer["certificateStatus"], "CertificateRevoked",
            "{answer}"
        );
        assert_eq!(answer["idTokenInfo"]["status"], "Invalid", "{answer}");
    }
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn iso20_cas_answer_ocsp_and_crls_with_p521_signers() {
    for backend in Backend::ALL {
        iso20_scenario(backend).await;
    }
}
