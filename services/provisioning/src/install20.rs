//! ISO 15118-20 CertificateInstallation (iso15118-notes §13): the EV's
//! CertificateInstallationReq → a CertificateInstallationRes carrying one pre-signed
//! `SignedInstallationData`, chosen among the vehicle's contracts by the EV's
//! `PrioritizedEMAIDs`, with `RemainingContractCertificateChains`.
//!
//! Checks run in the same order as for -2: request signature (P-521/SHA-512, or Ed448 for an
//! Ed448 vehicle, over `OEMProvisioningCertificateChain`) → certificate validity → chain →
//! revocation → contract. The chain and revocation checks are -2's: the cached OEM trust view
//! and validated Sub-CA paths of [`crate::oem_trust::OemTrust`], issuance statuses read per
//! request in the one registry call, OCSP for foreign OEM certificates.
//! Every failure the EV must hear about is a complete negative EXI answer with the request's
//! SessionID; only an undecodable request is an error (no SessionID to answer with).
//! The ResponseCode of each failure is in [`unconfirmed`].

use pnc_common::ids::{Emaid, Pcid};
use pnc_common::{ErrorKind, PncError};
use pnc_exi::iso20::{CertificateInstallationReq, ResponseCode, X509IssuerSerial};
use pnc_exi::{Schema, signature};
use pnc_pki::{Certificate, PathError, ValidationOptions};
use pnc_proto::principal::Principal;
use pnc_proto::provisioning::v1::{InstallRequest, InstallResponse};
use pnc_proto::registry::v1::{
    Contract, ListContractsRequest, SignedContractData, list_contracts_request,
};

use crate::install::{MAX_REQUEST_BYTES, OemContext, oem_context};
use crate::root_ids;
use crate::service::{ProvisioningService, forward};
use crate::signed_data20;

/// Why an installation is refused, before it becomes a -20 ResponseCode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The request signature is missing, malformed or does not verify.
    Signature,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    /// The provisioning chain does not reach a registered OEM root.
    CertificateChain,
    /// No live contract for the PCID (unknown PCID, none registered, all cancelled).
    NoContractForPcid,
    /// Contracts exist, but none the EV can take (no CPS chain under a root it trusts, expired
    /// certificates, MaximumContractCertificateChains = 0).
    NoCertificateAvailable,
    /// A dependency failed; the charger would answer FAILED after its timeout as well.
    Backend,
}

/// The -20 parameters of this module that we could not confirm from the standard's text.
pub mod unconfirmed {
    use super::{Failure, ResponseCode};

    /// **UNVERIFIED** (iso15118-notes §13.1, §15): -20 has no per-message table of
    /// ResponseCodes in our sources and no `FAILED_NoCertificateAvailable`,
    /// `FAILED_CertificateExpired` etc. Chosen: the certificate-related `WARNING_*` codes of
    /// -20's `responseCodeType` (the session may go on with EIM), `FAILED_SignatureError` for
    /// a bad request signature, `FAILED` for pnc's own failures.
    pub fn response_code(failure: Failure) -> ResponseCode {
        match failure {
            Failure::Signature => ResponseCode::FailedSignatureError,
            Failure::CertificateExpired => ResponseCode::WarningCertificateExpired,
            Failure::CertificateNotYetValid => ResponseCode::WarningCertificateNotYetValid,
            Failure::CertificateRevoked => ResponseCode::WarningCertificateRevoked,
            Failure::CertificateChain => ResponseCode::WarningCertificateValidationError,
            Failure::NoContractForPcid => ResponseCode::WarningNoContractMatchingPCIDFound,
            Failure::NoCertificateAvailable => ResponseCode::WarningNoCertificateAvailable,
            Failure::Backend => ResponseCode::Failed,
        }
    }
}

struct Negative {
    failure: Failure,
    reason: String,
}

fn negative(failure: Failure, reason: impl Into<String>) -> Negative {
    Negative {
        failure,
        reason: reason.into(),
    }
}

fn backend_failure(what: &str, error: PncError) -> Negative {
    tracing::warn!(%error, "{what} failed while answering an iso 15118-20 ev");
    negative(Failure::Backend, format!("{what} is unavailable"))
}

/// A decoded -20 request whose signature has been checked.
struct CheckedRequest {
    request: CertificateInstallationReq,
    /// Leaf, then the SubCertificates, as far as they parse.
    oem_chain: Vec<Certificate>,
    /// `Err(reason)` when the request signature does not verify.
    signature: Result<(), String>,
}

/// A V2GTP header (`01 FE 80 01` + length) is stripped if present (notes §9).
fn strip_v2gtp(exi: &[u8]) -> &[u8] {
    if exi.len() > 8 && exi[..4] == [0x01, 0xFE, 0x80, 0x01] {
        &exi[8..]
    } else {
        exi
    }
}

/// Decodes the message and verifies the EV's signature. CPU work.
fn decode_and_verify(exi: &[u8]) -> Result<CheckedRequest, PncError> {
    let root = pnc_exi::decode_document(Schema::Iso20, exi)
        .map_err(|error| PncError::invalid(format!("EXI format is invalid: {error}")))?;
    if root.name.local != "CertificateInstallationReq" {
        return Err(PncError::invalid(format!(
            "the ISO 15118-20 message is a {}, not a CertificateInstallationReq",
            root.name.local.chars().take(40).collect::<String>()
        )));
    }
    let request = CertificateInstallationReq::from_element(&root)
        .map_err(|error| PncError::invalid(format!("EXI format is invalid: {error}")))?;
    if request.header.session_id.len() != signed_data20::NO_SESSION.len() {
        return Err(PncError::invalid(
            "an ISO 15118-20 SessionID has exactly 8 bytes",
        ));
    }
    let chain = &request.oem_provisioning_certificate_chain;
    let oem_chain: Vec<Certificate> = std::iter::once(&chain.certificate)
        .chain(&chain.sub_certificates)
        .map_while(|der| Certificate::from_der(der).ok())
        .collect();
    let signature = verify_request_signature(&root, &request, oem_chain.first());
    Ok(CheckedRequest {
        request,
        oem_chain,
        signature,
    })
}

/// The request signature: exactly one reference, to `OEMProvisioningCertificateChain`
/// (notes §13.2), verified with the provisioning certificate's key under the -20 profile of
/// that key (ECDSA P-521/SHA-512, or `pnc_exi::signature::unconfirmed_ed448` for Ed448).
fn verify_request_signature(
    root: &pnc_exi::Element,
    request: &CertificateInstallationReq,
    oem_certificate: Option<&Certificate>,
) -> Result<(), String> {
    let header_signature = request
        .header
        .signature
        .as_ref()
        .ok_or("the request carries no signature")?;
    let chain_id = request
        .oem_provisioning_certificate_chain
        .id
        .as_deref()
        .unwrap_or_default();
    let references = &header_signature.signed_info.references;
    let expected_uri = format!("#{chain_id}");
    if chain_id.is_empty()
        || references.len() != 1
        || references[0].uri.as_deref() != Some(expected_uri.as_str())
    {
        return Err(
            "the signature must reference exactly the OEMProvisioningCertificateChain".into(),
        );
    }
    let certificate = oem_certificate.ok_or("the OEM provisioning certificate does not parse")?;
    let key = signature::public_key_from_cert_der(certificate.der())
        .map_err(|error| format!("the signer's key is unusable: {error}"))?;
    signature::verify_iso20_message(root, &key).map_err(|error| error.to_string())
}

/// The answer to an ISO 15118-20 CertificateInstallationReq (the caller's role is checked
/// by [`crate::install::install`], which dispatches here by schema namespace).
pub async fn install(
    service: &ProvisioningService,
    _principal: Option<&Principal>,
    request: InstallRequest,
) -> Result<InstallResponse, PncError> {
    if !matches!(request.action.trim(), "" | "Install") {
        return Err(PncError::invalid(
            "ISO 15118-20 has no CertificateUpdate; the action must be Install",
        ));
    }
    if request.exi_request.len() > MAX_REQUEST_BYTES {
        return Err(PncError::new(
            ErrorKind::TooLarge,
            format!("the EXI request is larger than {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    let exi = strip_v2gtp(&request.exi_request).to_vec();
    let checked = tokio::task::spawn_blocking(move || decode_and_verify(&exi))
        .await
        .map_err(|error| {
            tracing::error!(%error, "decoding task failed");
            PncError::internal("decoding task failed")
        })??;
    let session_id = checked.request.header.session_id.clone();
    let pcid = checked
        .oem_chain
        .first()
        .and_then(Certificate::common_name)
        .and_then(|name| Pcid::parse(name).ok());
    let outcome = answer(service, &checked, pcid.as_ref()).await;
    let pcid_text = pcid
        .map(|pcid| pcid.as_str().to_string())
        .unwrap_or_default();
    match outcome {
        Ok(positive) => {
            tracing::info!(
                pcid = %pcid_text,
                emaid = %positive.emaid,
                remaining = positive.remaining_contracts,
                "answered an iso 15118-20 ev with a contract"
            );
            Ok(InstallResponse {
                pcid: pcid_text,
                ..positive
            })
        }
        Err(Negative { failure, reason }) => {
            let code = unconfirmed::response_code(failure);
            tracing::info!(pcid = %pcid_text, code = code.as_str(), %reason, "refused an iso 15118-20 installation request");
            Ok(InstallResponse {
                exi_response: signed_data20::render_negative(&session_id, code)?,
                response_code: code.as_str().to_string(),
                pcid: pcid_text,
                failure_reason: reason,
                ..InstallResponse::default()
            })
        }
    }
}

async fn answer(
    service: &ProvisioningService,
    checked: &CheckedRequest,
    pcid: Option<&Pcid>,
) -> Result<InstallResponse, Negative> {
    // 1. The request signature.
    if let Err(reason) = &checked.signature {
        return Err(negative(Failure::Signature, reason.clone()));
    }
    let oem_certificate = checked.oem_chain.first().ok_or_else(|| {
        negative(
            Failure::Signature,
            "the OEM provisioning certificate does not parse",
        )
    })?;

    // 2. The provisioning certificate's validity, at the request time.
    let now = service.validity_now();
    if now > oem_certificate.not_after() {
        return Err(negative(
            Failure::CertificateExpired,
            "the OEM provisioning certificate has expired",
        ));
    }
    if now < oem_certificate.not_before() {
        return Err(negative(
            Failure::CertificateNotYetValid,
            "the OEM provisioning certificate is not valid yet",
        ));
    }

    // What the chain and revocation checks need, in one registry call beside the cached
    // trust view (as for -2): the PCID's registered Sub-CAs and the issuance statuses of
    // the leaf and every Sub-CA in sight. The contracts are listed after the checks.
    let trust = &service.oem_trust;
    // No V2G roots: no -2 contract look-up.
    let OemContext {
        known_sub_cas,
        context,
        roots,
    } = oem_context(service, &checked.oem_chain, pcid, Vec::new())
        .await
        .map_err(|(what, error)| backend_failure(what, error))?;

    // 3. Its chain to a registered OEM root, through the SubCertificates the EV sent, the
    // PCID's registered Sub-CAs and the OEM Sub-CAs the truststore knows by name (so a valid
    // vehicle nobody registered still validates and then hears that no contract matches).
    let mut candidate_sub_cas: Vec<Vec<u8>> = checked.oem_chain[1..]
        .iter()
        .map(|certificate| certificate.der().to_vec())
        .collect();
    for registered in context
        .provisioning_certificate
        .iter()
        .flat_map(|registered| &registered.sub_cas)
    {
        if !candidate_sub_cas.contains(&registered.der) {
            candidate_sub_cas.push(registered.der.clone());
        }
    }
    let path = match trust
        .validate(
            oem_certificate,
            &candidate_sub_cas,
            &known_sub_cas,
            &roots,
            now,
            // P-521 / SHA-512 and Ed448 OEM PKIs only, as -20 allows.
            &ValidationOptions::default().iso20(),
        )
        .await
    {
        Ok(path) => path.certificates,
        Err(error @ PathError::Expired { .. }) => {
            return Err(negative(
                Failure::CertificateExpired,
                format!("OEM provisioning chain: {error}"),
            ));
        }
        Err(error @ PathError::NotYetValid { .. }) => {
            return Err(negative(
                Failure::CertificateNotYetValid,
                format!("OEM provisioning chain: {error}"),
            ));
        }
        Err(error) => {
            return Err(negative(
                Failure::CertificateChain,
                format!("OEM provisioning chain: {error}"),
            ));
        }
    };

    // 4. Revocation: pnc's issuance records (read above) for what pnc issued, the OCSP
    // service for certificates of foreign OEM CAs, exactly as for ISO 15118-2.
    crate::install::check_oem_revocation(service, &path, &context.statuses)
        .await
        .map_err(|refused| {
            let failure = if refused.code == pnc_exi::iso2::ResponseCode::FailedCertificateRevoked {
                Failure::CertificateRevoked
            } else {
                Failure::Backend
            };
            negative(failure, refused.reason)
        })?;

    // 5. The contracts.
    let pcid = pcid.ok_or_else(|| {
        negative(
            Failure::NoContractForPcid,
            "the OEM provisioning certificate's CN is not a PCID",
        )
    })?;
    let trusted_roots = trusted_roots(service, &checked.request.list_of_root_certificate_ids);
    if trusted_roots.is_empty() {
        return Err(negative(
            Failure::NoCertificateAvailable,
            "the EV trusts none of the V2G roots pnc signs ISO 15118-20 installation data under",
        ));
    }
    let contracts = service
        .downstream
        .contracts
        .clone()
        .list_contracts(forward(
            None,
            ListContractsRequest {
                selector: Some(list_contracts_request::Selector::Pcid(
                    pcid.as_str().to_string(),
                )),
                v2g_root_fingerprint: String::new(),
            },
        ))
        .await
        .map_err(PncError::from)
        .map_err(|error| match error.kind {
            ErrorKind::NotFound => negative(
                Failure::NoContractForPcid,
                format!("no contract for PCID {pcid}"),
            ),
            _ => backend_failure("the contract pool", error),
        })?
        .into_inner()
        .contracts;
    let live: Vec<Contract> = contracts
        .into_iter()
        .filter(|contract| !contract.cancelled)
        .collect();
    if live.is_empty() {
        return Err(negative(
            Failure::NoContractForPcid,
            format!("no live contract for PCID {pcid}"),
        ));
    }
    let usable = usable_contracts(
        live,
        &trusted_roots,
        &checked.request.prioritized_emaids,
        now.unix_timestamp(),
    );
    let maximum = checked.request.maximum_contract_certificate_chains;
    let Some((first, _)) = usable.first() else {
        return Err(negative(
            Failure::NoCertificateAvailable,
            format!(
                "no contract of PCID {pcid} has ISO 15118-20 installation data under a root the EV trusts"
            ),
        ));
    };
    if maximum == 0 {
        return Err(negative(
            Failure::NoCertificateAvailable,
            "the EV takes no contract certificate chains (MaximumContractCertificateChains = 0)",
        ));
    }
    let remaining = remaining_contract_certificate_chains(usable.len(), maximum);
    let signed = first.clone();
    let session_id = checked.request.header.session_id.clone();
    let exi_response = tokio::task::spawn_blocking(move || {
        signed_data20::render_exi(&signed, &session_id, remaining)
    })
    .await
    .map_err(|error| {
        backend_failure(
            "rendering the answer",
            PncError::internal(error.to_string()),
        )
    })?
    .map_err(|error| backend_failure("rendering the answer", error))?;
    Ok(InstallResponse {
        exi_response,
        response_code: ResponseCode::Ok.as_str().to_string(),
        emaid: first.emaid.clone(),
        pcid: String::new(),
        v2g_root_fingerprint: first.v2g_root_fingerprint.clone(),
        remaining_contracts: u32::from(remaining),
        failure_reason: String::new(),
        schema_namespace: pnc_exi::iso20::NS_CM.to_string(),
    })
}

/// `RemainingContractCertificateChains` = min(available − 1, Maximum − 1) (notes §13.6).
pub fn remaining_contract_certificate_chains(available: usize, maximum: u8) -> u8 {
    let available = u8::try_from(available).unwrap_or(u8::MAX);
    available.min(maximum).saturating_sub(1)
}

/// The contracts the EV can take, each with its -20 installation data under the first root
/// the EV lists, in the order the EV gets them: its `PrioritizedEMAIDs` first (in its order),
/// then the PCID's default contract, then the others as registered.
pub fn usable_contracts(
    contracts: Vec<Contract>,
    trusted_roots: &[String],
    prioritized_emaids: &[String],
    now: i64,
) -> Vec<(SignedContractData, Contract)> {
    let mut usable: Vec<(SignedContractData, Contract)> = contracts
        .into_iter()
        .filter(|contract| {
            contract.certificate_not_after == 0 || contract.certificate_not_after > now
        })
        .filter_map(|mut contract| {
            let signed = trusted_roots.iter().find_map(|root| {
                contract.signed_data.iter().find(|signed| {
                    signed_data20::is_iso20(signed) && signed.v2g_root_fingerprint == *root
                })
            })?;
            let signed = signed.clone();
            contract.signed_data.clear();
            Some((signed, contract))
        })
        .collect();
    let priority = |contract: &Contract| -> (usize, usize) {
        let listed = Emaid::parse(&contract.emaid).ok().and_then(|emaid| {
            prioritized_emaids.iter().position(|wanted| {
                Emaid::parse(wanted).is_ok_and(|wanted| wanted.same_account(&emaid))
            })
        });
        match listed {
            Some(position) => (0, position),
            None if contract.is_default => (1, 0),
            None => (2, 0),
        }
    };
    // A stable sort keeps the registry's order (registration time) within a rank.
    usable.sort_by_key(|(_, contract)| priority(contract));
    usable
}

/// The -20 V2G roots (fingerprints) pnc holds a CPS chain under that the EV lists, in its order.
fn trusted_roots(service: &ProvisioningService, root_ids: &[X509IssuerSerial]) -> Vec<String> {
    let mut trusted: Vec<String> = Vec::new();
    for root_id in root_ids {
        for cps in &service.holdings.iso20.cps_signers {
            if root_ids::names_root(&root_id.issuer_name, &root_id.serial_number, &cps.root)
                && !trusted.contains(&cps.root_fingerprint)
            {
                trusted.push(cps.root_fingerprint.clone());
            }
        }
    }
    trusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnc_proto::registry::v1::SignedContractData;

    fn contract(emaid: &str, is_default: bool, roots: &[&str]) -> Contract {
        Contract {
            emaid: emaid.to_string(),
            is_default,
            signed_data: roots
                .iter()
                .map(|root| SignedContractData {
                    v2g_root_fingerprint: root.to_string(),
                    emaid: emaid.to_string(),
                    schema_namespace: pnc_exi::iso20::NS_CM.to_string(),
                    ..SignedContractData::default()
                })
                .collect(),
            ..Contract::default()
        }
    }

    #[test]
    fn ok_remaining_is_min_of_available_and_maximum_minus_one() {
        assert_eq!(remaining_contract_certificate_chains(3, 8), 2);
        assert_eq!(remaining_contract_certificate_chains(3, 2), 1);
        assert_eq!(remaining_contract_certificate_chains(1, 1), 0);
        assert_eq!(remaining_contract_certificate_chains(5, 0), 0);
        assert_eq!(remaining_contract_certificate_chains(300, 255), 254);
    }

    #[test]
    fn ok_prioritized_emaids_then_default_then_registration_order() {
        let contracts = vec![
            contract("DEPNCC00000001", false, &["A"]),
            contract("DEPNCC00000002", true, &["A"]),
            contract("DEPNCC00000003", false, &["A"]),
            contract("DEPNCC00000004", false, &["B"]),
        ];
        let order = |prioritized: &[&str]| -> Vec<String> {
            let prioritized: Vec<String> = prioritized.iter().map(|s| s.to_string()).collect();
            usable_contracts(contracts.clone(), &["A".to_string()], &prioritized, 0)
                .into_iter()
                .map(|(signed, _)| signed.emaid)
                .collect()
        };
        assert_eq!(
            order(&[]),
            ["DEPNCC00000002", "DEPNCC00000001", "DEPNCC00000003"]
        );
        // Separators and case as an EV may send them; the unknown one is ignored.
        assert_eq!(
            order(&["de-pnc-c00000003", "DEPNCC99999999", "DEPNCC00000001"]),
            ["DEPNCC00000003", "DEPNCC00000001", "DEPNCC00000002"]
        );
    }

    #[test]
    fn fail_contracts_without_iso20_data_or_expired_are_not_usable() {
        let mut iso2_only = contract("DEPNCC00000001", true, &["A"]);
        iso2_only.signed_data[0].schema_namespace = String::new();
        let mut expired = contract("DEPNCC00000002", false, &["A"]);
        expired.certificate_not_after = 100;
        let usable = usable_contracts(vec![iso2_only, expired], &["A".to_string()], &[], 200);
        assert!(usable.is_empty());
    }
}
