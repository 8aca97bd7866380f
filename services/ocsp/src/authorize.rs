//! OCPP 2.0.1 C07: the certificateStatus of a contract certificate, from its chain or from
//! its hash data (docs/ecosystem-apis.md §7). One certificate check per request
//! (citrineos-core#892): the chain when the station sent one, the hash data otherwise;
//! then, for a valid chain, the contract behind it ([`check_contract`], C07.FR.13).

use std::sync::Arc;

use pnc_common::PncError;
use pnc_common::db::unix_now;
use pnc_common::ids::Emaid;
use pnc_pki::{Certificate, PathError};
use pnc_proto::ocsp::v1::ContractCertificateStatus;
use pnc_proto::registry::v1::FindContractsRequest;
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
    /// With ContractCancelled: the token's OCPP AuthorizationStatus; empty otherwise.
    pub id_token_status: &'static str,
}

fn verdict(status: ContractCertificateStatus, detail: impl Into<String>) -> Verdict {
    Verdict {
        status,
        detail: detail.into(),
        id_token_status: "",
    }
}

fn contract_cancelled(id_token_status: &'static str, detail: impl Into<String>) -> Verdict {
    Verdict {
        status: ContractCertificateStatus::ContractCancelled,
        detail: detail.into(),
        id_token_status,
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

/// The contract certificate a contract check is about: the leaf of a chain, or the first
/// hash data entry when the station sent no chain.
#[derive(Debug, Clone, Copy)]
pub enum ContractLeaf<'a> {
    Certificate(&'a Certificate),
    HashData(&'a CertId),
}

/// Whether one of pnc's own CAs issued the contract certificate.
async fn issued_by_pnc(engine: &Arc<Engine>, leaf: ContractLeaf<'_>) -> bool {
    let Some(own) = engine.own.get().await else {
        return false;
    };
    match leaf {
        ContractLeaf::HashData(cert_id) => own.find(cert_id).is_some(),
        ContractLeaf::Certificate(certificate) => own.cas.iter().any(|ca| {
            CertId::for_certificate(HashAlgorithm::Sha256, certificate, &ca.certificate)
                .is_ok_and(|cert_id| own.find(&cert_id).is_some())
                && crate::engine::issued_by(certificate, &ca.certificate)
        }),
    }
}

/// C07.FR.13: a valid chain whose token is not authorised is `ContractCancelled`, with the
/// token's status. pnc's registry decides for the eMAIDs it holds: a live contract is
/// Accepted, a cancelled one Blocked, one past its end Expired. An eMAID it holds nothing
/// for is Unknown when pnc's own CA issued the certificate (every certificate pnc issues
/// comes with a contract) and left to the chain verdict otherwise (another eMSP's contract,
/// e.g. roaming: pnc is not its authority). A registry that does not answer is an error,
/// not an acceptance.
pub async fn check_contract(
    engine: &Arc<Engine>,
    emaid: &str,
    leaf: ContractLeaf<'_>,
) -> Result<Verdict, PncError> {
    let contracts = match Emaid::parse(emaid) {
        Ok(emaid) => {
            engine
                .downstream()
                .contracts
                .clone()
                .find_contracts(FindContractsRequest {
                    emaid: emaid.as_str().to_string(),
                })
                .await
                .map_err(PncError::from)?
                .into_inner()
                .contracts
        }
        Err(_) => Vec::new(),
    };
    let now = unix_now();
    let live = || contracts.iter().filter(|contract| !contract.cancelled);
    if live().any(|contract| contract.contract_ends == 0 || contract.contract_ends > now) {
        return Ok(verdict(ContractCertificateStatus::Accepted, ""));
    }
    if live().next().is_some() {
        return Ok(contract_cancelled(
            "Expired",
            format!("the contract of {emaid} has ended"),
        ));
    }
    if !contracts.is_empty() {
        return Ok(contract_cancelled(
            "Blocked",
            format!("the contract of {emaid} was cancelled by its eMSP"),
        ));
    }
    if issued_by_pnc(engine, leaf).await {
        return Ok(contract_cancelled(
            "Unknown",
            format!("pnc issued this contract certificate but holds no contract for {emaid}"),
        ));
    }
    Ok(verdict(ContractCertificateStatus::Accepted, ""))
}
