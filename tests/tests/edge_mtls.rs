//! The HTTPS edge: a charger authenticates with a station certificate from a configured
//! CA (no token), token clients still work over HTTPS, and a certificate from any other CA
//! is refused in the handshake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};
use pnc_common::config::HttpTlsConfig;
use pnc_pki::dev::DevCert;
use pnc_proto::principal::Role;
use pnc_tests::{Backend, Sandbox};

fn p256() -> PKey<Private> {
    PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap()
}

fn certificate(
    common_name: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    ca: bool,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    builder
        .set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder
        .set_issuer_name(issuer.map_or(&name, |(cert, _)| cert.subject_name()))
        .unwrap();
    builder.set_pubkey(key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    if ca {
        builder
            .append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        builder
            .append_extension(KeyUsage::new().critical().key_cert_sign().build().unwrap())
            .unwrap();
    } else {
        builder
            .append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        builder
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        builder
            .append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .build(&builder.x509v3_context(issuer.map(|(cert, _)| cert.as_ref()), None))
            .unwrap();
        builder.append_extension(san).unwrap();
    }
    let signing_key = issuer.map_or(key, |(_, key)| key);
    builder.sign(signing_key, MessageDigest::sha256()).unwrap();
    builder.build()
}

struct EdgeFiles {
    edge_ca: X509,
    cert: PathBuf,
    key: PathBuf,
}

/// An edge certificate for 127.0.0.1 under a CA the test's clients trust.
fn edge_files(dir: &Path) -> EdgeFiles {
    let ca_key = p256();
    let edge_ca = certificate("edge test CA", &ca_key, None, true);
    let key = p256();
    let cert = certificate("127.0.0.1", &key, Some((&edge_ca, &ca_key)), false);
    let cert_file = dir.join("edge.pem");
    let key_file = dir.join("edge-key.pem");
    std::fs::write(&cert_file, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    EdgeFiles {
        edge_ca,
        cert: cert_file,
        key: key_file,
    }
}

/// A station certificate from `pki`'s charging-station CA, as reqwest's identity.
fn station_identity(pki: &pnc_pki::DevPki, station: &str) -> reqwest::Identity {
    let key = p256();
    let spki = key.public_key_to_der().unwrap();
    let certificate = pki
        .issue_charging_station(station, &spki, time::Duration::days(1))
        .unwrap();
    let mut pem = certificate.to_pem().into_bytes();
    pem.extend(key.private_key_to_pem_pkcs8().unwrap());
    reqwest::Identity::from_pem(&pem).unwrap()
}

fn https_client(edge_ca: &X509, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&edge_ca.to_pem().unwrap()).unwrap());
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn ok_station_certificates_authenticate_on_the_https_edge() {
    let dir = tempfile::tempdir().unwrap();
    let edge = edge_files(dir.path());
    let stations = pnc_pki::DevPki::generate(&pnc_pki::DevPkiOptions::default()).unwrap();
    let station_ca_file = dir.path().join("station-ca.pem");
    std::fs::write(
        &station_ca_file,
        stations.certificate(DevCert::ChargingStationCa).to_pem(),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls_listen = SocketAddr::from(([127, 0, 0, 1], port));
    let (cert, key) = (edge.cert.clone(), edge.key.clone());
    let sandbox = Sandbox::start_with(Backend::Sqlite, move |config| {
        config.http.tls = HttpTlsConfig {
            listen: Some(tls_listen),
            cert_file: Some(cert),
            key_file: Some(key),
            client_ca_files: vec![station_ca_file],
        };
    })
    .await;
    let roots = format!("https://127.0.0.1:{port}/v1/root/rootCerts");

    // A station certificate alone authenticates, as a charger.
    let station = https_client(&edge.edge_ca, Some(station_identity(&stations, "CS-0001")));
    let response = station.get(&roots).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let response = station
        .put(&roots)
        .json(&serde_json::json!({"caCertificate": "AA==", "rootType": "V2G"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "a charger is no admin");

    // Without a certificate: a token still works, nothing is 401.
    let anonymous = https_client(&edge.edge_ca, None);
    let response = anonymous.get(&roots).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;
    let response = anonymous
        .get(&roots)
        .bearer_auth(&cpo.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A station of a CA pnc was not told to trust is refused in the handshake.
    let strangers = pnc_pki::DevPki::generate(&pnc_pki::DevPkiOptions::default()).unwrap();
    let stranger = https_client(&edge.edge_ca, Some(station_identity(&strangers, "CS-EVIL")));
    assert!(stranger.get(&roots).send().await.is_err());

    // HTTP/2 where ALPN chose it: the same station, the same answer.
    let over_http2 = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&edge.edge_ca.to_pem().unwrap()).unwrap(),
        )
        .identity(station_identity(&stations, "CS-0002"))
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = over_http2.get(&roots).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    // The plain listener speaks HTTP/1.1 only: cleartext HTTP/2 (h2c) is not taken.
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let answer = h2c.get(sandbox.url("/healthz")).send().await;
    assert!(answer.is_err(), "{answer:?}");

    // The plain HTTP edge is unaffected.
    let response = sandbox
        .http
        .get(sandbox.url("/v1/root/rootCerts"))
        .bearer_auth(&cpo.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The frame types an HTTP/2 server sends on a connection that opens (TLS, ALPN h2, the
/// preface and empty SETTINGS) and then asks nothing, until the server closes it or
/// `bound` passes; and how long that took from the preface. The client acknowledges the
/// server's SETTINGS, and its PINGs if `answer_pings`.
fn http2_frames_until_closed(
    port: u16,
    edge_ca: &X509,
    bound: std::time::Duration,
    answer_pings: bool,
) -> (Vec<u8>, std::time::Duration) {
    use std::io::{Read, Write};
    let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
    builder.cert_store_mut().add_cert(edge_ca.clone()).unwrap();
    builder.set_alpn_protos(b"\x02h2").unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(bound)).unwrap();
    let mut tls = builder
        .build()
        .configure()
        .unwrap()
        .connect("127.0.0.1", tcp)
        .unwrap();
    assert_eq!(tls.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    const SETTINGS: u8 = 0x4;
    const PING: u8 = 0x6;
    const ACK: u8 = 0x1;
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    tls.write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]).unwrap();
    let started = std::time::Instant::now();
    let mut types = Vec::new();
    let mut header = [0u8; 9];
    while tls.read_exact(&mut header).is_ok() {
        let length =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let mut payload = vec![0u8; length];
        if tls.read_exact(&mut payload).is_err() {
            break;
        }
        types.push(header[3]);
        if header[3] == SETTINGS && header[4] & ACK == 0 {
            tls.write_all(&[0, 0, 0, SETTINGS, ACK, 0, 0, 0, 0])
                .unwrap();
        }
        if header[3] == PING && header[4] & ACK == 0 && answer_pings {
            tls.write_all(&[0, 0, 8, PING, ACK, 0, 0, 0, 0]).unwrap();
            tls.write_all(&payload).unwrap();
        }
    }
    (types, started.elapsed())
}

/// An HTTP/2 connection with no request in flight for `http.header_read_timeout_ms` is shut
/// down with GOAWAY and closed (HTTP/2 has no header-read timer of its own); a client that
/// comes back later reconnects and is answered.
#[tokio::test]
async fn ok_idle_http2_connections_are_shut_down() {
    const IDLE_MS: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let edge = edge_files(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (cert, key) = (edge.cert.clone(), edge.key.clone());
    let sandbox = Sandbox::start_with(Backend::Sqlite, move |config| {
        config.http.header_read_timeout_ms = IDLE_MS;
        config.http.tls = HttpTlsConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            cert_file: Some(cert),
            key_file: Some(key),
            client_ca_files: vec![],
        };
    })
    .await;

    // fail/idle: shut down with GOAWAY and closed, whether the client answers the server's
    // PING (as clients do) or not (then dropped a timeout later). The bound is far above the
    // timeout, so a busy machine does not fail the test.
    let bound = std::time::Duration::from_secs(20);
    for answer_pings in [true, false] {
        let edge_ca = edge.edge_ca.clone();
        let (types, elapsed) = tokio::task::spawn_blocking(move || {
            http2_frames_until_closed(port, &edge_ca, bound, answer_pings)
        })
        .await
        .unwrap();
        const GOAWAY: u8 = 0x7;
        assert!(types.contains(&GOAWAY), "{answer_pings}: frames {types:?}");
        assert!(
            elapsed < bound,
            "{answer_pings}: still open after {elapsed:?}"
        );
        // The timer cannot fire early: the close is the idle timeout's, not an error's.
        assert!(
            elapsed >= std::time::Duration::from_millis(IDLE_MS / 2),
            "{answer_pings}: closed after {elapsed:?}"
        );
    }

    // ok/back-after-idle: the client's pooled connection was shut down; it reconnects.
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&edge.edge_ca.to_pem().unwrap()).unwrap(),
        )
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let health = format!("https://127.0.0.1:{port}/healthz");
    for _ in 0..2 {
        let response = client.get(&health).send().await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(3 * IDLE_MS)).await;
    }
    sandbox.stop().await;
}
