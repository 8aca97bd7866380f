//! The HTTPS edge: TLS with optional client certificates (mTLS) for chargers and CSMSs.
//!
//! rustls verifies a presented client certificate against the configured CAs; the
//! handler sees it as a [`ClientCertificate`] request extension, from which
//! [`crate::auth::Authenticated`] derives a principal. A client without a certificate can
//! still use a bearer token on this listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pnc_common::config::HttpTlsConfig;
use pnc_proto::principal::{Principal, Role};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

/// The verified client certificate of the connection a request came on (DER).
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<Vec<u8>>);

impl ClientCertificate {
    /// The principal a station or CSMS certificate stands for: role `charger`, client ID
    /// `cert:` + the first 16 hex digits of its SHA-256, and the operator ID from the
    /// subject's O attribute when it has the shape of one (`DE*PNC`, `DEPNC`).
    pub fn principal(&self) -> Principal {
        let fingerprint = hex::encode(Sha256::digest(self.0.as_slice()));
        let operator_ids = x509_parser::parse_x509_certificate(&self.0)
            .ok()
            .and_then(|(_, cert)| {
                cert.subject()
                    .iter_organization()
                    .next()
                    .and_then(|o| o.as_str().ok())
                    .map(str::to_string)
            })
            .map(|organization| {
                organization
                    .chars()
                    .filter(|c| *c != '*' && *c != '-')
                    .collect::<String>()
                    .to_ascii_uppercase()
            })
            .filter(|id| id.len() == 5 && id.chars().all(|c| c.is_ascii_alphanumeric()))
            .into_iter()
            .collect();
        Principal {
            client_id: format!("cert:{}", &fingerprint[..16]),
            role: Role::Charger as i32,
            wmis: Vec::new(),
            provider_ids: Vec::new(),
            operator_ids,
        }
    }
}

/// The rustls server config of the HTTPS edge.
pub fn server_config(config: &HttpTlsConfig) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let cert_file = config
        .cert_file
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("http.tls.listen is set but http.tls.cert_file is not"))?;
    let key_file = config
        .key_file
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("http.tls.listen is set but http.tls.key_file is not"))?;
    let chain = read_certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|error| anyhow::anyhow!("http.tls.key_file {}: {error}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if config.client_ca_files.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for file in &config.client_ca_files {
            for certificate in read_certificates(file)? {
                roots
                    .add(certificate)
                    .map_err(|error| anyhow::anyhow!("client CA in {}: {error}", file.display()))?;
            }
        }
        // Certificates are optional: token clients use the same listener.
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut server = builder.with_single_cert(chain, key)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("{}: no certificate", path.display());
    }
    Ok(certificates)
}

/// The HTTPS listener's step before HTTP: the TLS handshake, bounded in time, and the
/// client certificate rustls verified.
#[derive(Clone)]
pub struct TlsHandshake(pub tokio_rustls::TlsAcceptor);

impl TlsHandshake {
    pub fn new(tls: Arc<rustls::ServerConfig>) -> TlsHandshake {
        TlsHandshake(tokio_rustls::TlsAcceptor::from(tls))
    }
}

impl crate::serve::Handshake for TlsHandshake {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;

    async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<crate::serve::Accepted<Self::Stream>> {
        // A client that never finishes the handshake must not hold a task forever.
        let handshake = tokio::time::timeout(Duration::from_secs(10), self.0.accept(stream));
        let stream = match handshake.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "tls handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%peer, "tls handshake timed out");
                return None;
            }
        };
        let client_certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certificates| certificates.first())
            .map(|certificate| ClientCertificate(Arc::new(certificate.to_vec())));
        let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        Some(crate::serve::Accepted {
            stream,
            client_certificate,
            http2,
        })
    }
}
