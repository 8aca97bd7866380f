//! OCPP 2.0.1 C07: the certificateStatus of a contract certificate, from its chain or from
//! its hash data (docs/ecosystem-apis.md §7). One contract check per request
//! (citrineos-core#892): the chain when the station sent one, the hash data otherwise.

use std::sync::Arc;

use pnc_pki::{Certificate, PathError};
use pnc_proto::ocsp::v1::ContractCertificateStatus;
use pnc_proto::truststore::v1::{ListRootsRequest, RootType};
use time::OffsetDateTime;

use crate::cert_id::{CertId, HashAlgorithm};
use crate::codec::CertStatus;
use crate::engine::{Engine, StatusError};

/// A verdict and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: ContractCertificateStatus,
    pub detail: String,
}

fn verdict(status: ContractCertificateStatus, detail: impl Into<String>) -> Verdict {
    Verdict {
        status,
        detail: detail.into(),
    }
}

/// eMAIDs compare without hyphens and case (ISO 15118-2 Annex H / eMI3).
fn normalized_emaid(value: &str) -> String {
    value
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Status of hash data alone: every CertID must be known and good.
pub async fn check_hash_data(engine: &Arc<Engine>, hash_data: &[CertId]) -> Verdict {
    for cert_id in hash_data {
        match engine.status(cert_id, None, None).await {
            Ok(cached) => match cached.answer.status {
                CertStatus::Good => {}
                CertStatus::Revoked { .. } => {
                    return verdict(
                        ContractCertificateStatus::CertificateRevoked,
                        "a certificate of the contract chain is revoked",
                    );
                }
                // C07.FR.17: an unverifiable status is a chain error, not "no certificate".
                CertStatus::Unknown => {
                    return verdict(
                        ContractCertificateStatus::CertChainError,
                        "the responder does not know a certificate of the contract chain",
                    );
                }
            },
            Err(error) => {
                return verdict(ContractCertificateStatus::CertChainError, error.to_string());
            }
        }
    }
    verdict(ContractCertificateStatus::Accepted, "")
}

/// Status of a contract chain (leaf first): leaf CN = idToken, validity, path to a V2G or
/// MO root, then the revocation status of every certificate but the root.
pub async fn check_chain(engine: &Arc<Engine>, chain: &[Certificate], id_token: &str) -> Verdict {
    let Some(leaf) = chain.first() else {
        return verdict(
            ContractCertificateStatus::NoCertificateAvailable,
            "no contract certificate",
        );
    };
    if !id_token.is_empty()
        && leaf.common_name().map(normalized_emaid) != Some(normalized_emaid(id_token))
    {
        return verdict(
            ContractCertificateStatus::CertChainError,
            "the contract certificate's CN is not the idToken",
        );
    }
    let now = OffsetDateTime::now_utc();
    if let Some(expired) = chain
        .iter()
        .find(|certificate| !certificate.is_valid_at(now))
    {
        return verdict(
            ContractCertificateStatus::CertificateExpired,
            format!("{} is outside its validity period", expired.subject()),
        );
    }
    let mut roots = Vec::new();
    // Contract chains end at a V2G or an MO root (libevse-security PR #105).
    for root_type in [RootType::V2g, RootType::Mo] {
        let request = ListRootsRequest {
            root_type: root_type as i32,
            ..Default::default()
        };
        match engine
            .downstream()
            .truststore
            .clone()
            .list_roots(request)
            .await
        {
            Ok(response) => roots.extend(
                response
                    .into_inner()
                    .roots
                    .into_iter()
                    .filter_map(|root| root.certificate.map(|certificate| certificate.der)),
            ),
            Err(status) => {
                return verdict(
                    ContractCertificateStatus::CertChainError,
                    format!("cannot read the root pool: {}", status.message()),
                );
            }
        }
    }
    let anchors: Vec<&[u8]> = roots.iter().map(Vec::as_slice).collect();
    let intermediates: Vec<&[u8]> = chain[1..].iter().map(Certificate::der).collect();
    let path = match pnc_pki::validate_path(leaf.der(), &intermediates, &anchors, now) {
        Ok(path) => path,
        Err(PathError::BadSignature { which, .. }) => {
            return verdict(
                ContractCertificateStatus::SignatureError,
                format!("bad signature on the {which}"),
            );
        }
        Err(error @ (PathError::Expired { .. } | PathError::NotYetValid { .. })) => {
            return verdict(
                ContractCertificateStatus::CertificateExpired,
                error.to_string(),
            );
        }
        Err(error) => {
            return verdict(ContractCertificateStatus::CertChainError, error.to_string());
        }
    };
    // Revocation of every certificate below the anchor, issuer taken from the path.
    let certificates = &path.certificates;
    for pair in certificates.windows(2) {
        let (certificate, issuer) = (&pair[0], &pair[1]);
        let cert_id = match CertId::for_certificate(HashAlgorithm::Sha256, certificate, issuer) {
            Ok(cert_id) => cert_id,
            Err(error) => {
                return verdict(ContractCertificateStatus::CertChainError, error.to_string());
            }
        };
        match engine.status(&cert_id, None, Some(certificate)).await {
            Ok(cached) => match cached.answer.status {
                CertStatus::Good => {}
                CertStatus::Revoked { .. } => {
                    return verdict(
                        ContractCertificateStatus::CertificateRevoked,
                        format!("{} is revoked", certificate.subject()),
                    );
                }
                CertStatus::Unknown => {
                    return verdict(
                        ContractCertificateStatus::CertChainError,
                        format!("the responder does not know {}", certificate.subject()),
                    );
                }
            },
            // A certificate without any revocation source is accepted on that count
            // (pnc-pki leniency for foreign chains); any other failure is a chain error.
            Err(StatusError::Unavailable(_)) if certificate.ocsp_urls().is_empty() => {}
            Err(error) => {
                return verdict(ContractCertificateStatus::CertChainError, error.to_string());
            }
        }
    }
    verdict(ContractCertificateStatus::Accepted, "")
}
