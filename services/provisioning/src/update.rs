//! ISO 15118-2 CertificateUpdate: an EV renews its contract shortly before it expires
//! (iso15118-notes §3.4, §3.5).
//!
//! Checks in the same spirit as installation: request signature (with the current contract
//! certificate) → validity → contract chain to an MO or V2G root → revocation → eMAID and
//! contract. Generate-mode contracts are renewed on the spot: a new key and certificate
//! (same lifetime as the old one, from now, clamped to the issuer), the key sealed to the
//! old contract certificate [V2G2-821] for this answer and to the OEM provisioning
//! certificate for later installations, stored in one registry transaction. pnc never holds
//! an eMSP-PKI contract's key, so those are answered with the renewal their eMSP supplied
//! (sealed to the old certificate, pre-signed by pnc's CPS; a pnc extension of the CPS sign
//! endpoints), which then becomes the contract's certificate; until the eMSP supplies one
//! the EV hears FAILED_NoCertificateAvailable with RetryCounter 0 (try again later).

use pnc_common::PncError;
use pnc_common::ids::{Emaid, Pcid};
use pnc_exi::iso2::{CertificateUpdateReq, ResponseCode};
use pnc_pki::{Certificate, PathError};
use pnc_proto::common::v1::Certificate as ProtoCertificate;
use pnc_proto::provisioning::v1::InstallResponse;
use pnc_proto::registry::v1::{
    ApplyContractRenewalRequest, Contract, ContractMode, GetProvisioningCertificateRequest,
    IssuedRecord, ListContractsRequest, PutContractRequest, list_contracts_request,
};
use pnc_proto::truststore::v1::{ListRootsRequest, RootType};
use time::OffsetDateTime;

use crate::contract;
use crate::install::{Negative, backend_failure, check_revocation, negative, trusted_roots};
use crate::pki::CpsSigner;
use crate::service::{ProvisioningService, forward};
use crate::signed_data;

/// A decoded CertificateUpdateReq, its signature checked.
pub(crate) struct CheckedUpdate {
    pub session_id: Vec<u8>,
    pub request: CertificateUpdateReq,
    /// Leaf, Sub-CA 2, Sub-CA 1 as far as they parse.
    pub contract_chain: Vec<Certificate>,
    pub signature: Result<(), String>,
}

/// RetryCounter (notes §3.5): a cancelled contract is final, a missing one may appear.
fn retry_counter(code: ResponseCode) -> Option<i16> {
    match code {
        ResponseCode::FailedContractCanceled => Some(-1),
        ResponseCode::FailedNoCertificateAvailable => Some(0),
        _ => None,
    }
}

pub(crate) async fn update(
    service: &ProvisioningService,
    checked: CheckedUpdate,
) -> Result<InstallResponse, PncError> {
    match renew(service, &checked).await {
        Ok(positive) => {
            tracing::info!(emaid = %positive.emaid, pcid = %positive.pcid, "renewed an ev's contract");
            Ok(positive)
        }
        Err(Negative { code, reason }) => {
            tracing::info!(code = code.as_str(), %reason, "refused an ev's update request");
            Ok(InstallResponse {
                exi_response: signed_data::render_negative_update(
                    &checked.session_id,
                    code,
                    retry_counter(code),
                )?,
                response_code: code.as_str().to_string(),
                failure_reason: reason,
                ..InstallResponse::default()
            })
        }
    }
}

async fn renew(
    service: &ProvisioningService,
    checked: &CheckedUpdate,
) -> Result<InstallResponse, Negative> {
    // 1. The request signature, with the current contract certificate.
    if let Err(reason) = &checked.signature {
        return Err(negative(ResponseCode::FailedSignatureError, reason.clone()));
    }
    let old_leaf = checked.contract_chain.first().ok_or_else(|| {
        negative(
            ResponseCode::FailedSignatureError,
            "the contract certificate does not parse",
        )
    })?;

    // 2. Validity, 3. the chain to an MO (or, in Hubject's layout, V2G) root.
    let now = OffsetDateTime::now_utc();
    let mut anchors: Vec<Vec<u8>> = Vec::new();
    for root_type in [RootType::Mo, RootType::V2g] {
        let roots = service
            .downstream
            .truststore
            .clone()
            .list_roots(forward(
                None,
                ListRootsRequest {
                    root_type: root_type as i32,
                    ..ListRootsRequest::default()
                },
            ))
            .await
            .map_err(PncError::from)
            .map_err(|error| backend_failure("the truststore", error))?
            .into_inner()
            .roots;
        anchors.extend(
            roots
                .into_iter()
                .filter_map(|root| root.certificate.map(|certificate| certificate.der)),
        );
    }
    let intermediates: Vec<&[u8]> = checked.contract_chain[1..]
        .iter()
        .map(Certificate::der)
        .collect();
    let anchor_refs: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
    let path = match pnc_pki::validate_path(old_leaf.der(), &intermediates, &anchor_refs, now) {
        Ok(path) => path.certificates,
        Err(error @ PathError::Expired { .. }) => {
            return Err(negative(
                ResponseCode::FailedCertificateExpired,
                format!("contract chain: {error}"),
            ));
        }
        Err(error) => {
            return Err(negative(
                ResponseCode::FailedCertChainError,
                format!("contract chain: {error}"),
            ));
        }
    };

    // 4. Revocation.
    check_revocation(service, &path).await?;

    // 5. The eMAID of the body is the certificate's, and pnc knows the contract.
    let emaid = Emaid::parse(&checked.request.emaid)
        .map_err(|error| negative(ResponseCode::Failed, error.to_string()))?;
    let certificate_emaid = old_leaf
        .common_name()
        .and_then(|name| Emaid::parse(name).ok())
        .ok_or_else(|| negative(ResponseCode::Failed, "the contract CN is not an eMAID"))?;
    if !certificate_emaid.same_account(&emaid) {
        return Err(negative(
            ResponseCode::Failed,
            "the eMAID does not match the contract certificate",
        ));
    }
    let contracts = service
        .downstream
        .contracts
        .clone()
        .list_contracts(forward(
            None,
            ListContractsRequest {
                selector: Some(list_contracts_request::Selector::Emaid(
                    emaid.as_str().to_string(),
                )),
                v2g_root_fingerprint: String::new(),
            },
        ))
        .await
        .map_err(PncError::from)
        .map_err(|error| backend_failure("the contract pool", error))?
        .into_inner()
        .contracts;
    let trusted = trusted_roots(service, &checked.request.list_of_root_certificate_ids);
    let Some(contract) = contracts.into_iter().find(|contract| {
        contract
            .contract_chain
            .first()
            .is_some_and(|leaf| leaf.der == old_leaf.der())
    }) else {
        // An EV whose answer got lost retries with its old certificate after its eMSP's
        // renewal was applied: it hears the same renewal again.
        return supplied_renewal(service, checked, old_leaf, &trusted)
            .await
            .map_err(|refused| match refused.code {
                ResponseCode::FailedContractCanceled => refused,
                _ => negative(
                    ResponseCode::FailedNoCertificateAvailable,
                    format!("no live contract of {emaid} holds this certificate"),
                ),
            });
    };
    if contract.cancelled {
        return Err(negative(
            ResponseCode::FailedContractCanceled,
            format!("the contract {emaid} was cancelled by its eMSP"),
        ));
    }
    if contract.mode != ContractMode::Generated as i32 {
        return supplied_renewal(service, checked, old_leaf, &trusted).await;
    }
    let Some(answer_root) = trusted.first().cloned() else {
        return Err(negative(
            ResponseCode::FailedNoCertificateAvailable,
            "the EV trusts none of the V2G roots pnc signs contract data under",
        ));
    };
    let pcid = Pcid::parse(&contract.pcid)
        .map_err(|error| backend_failure("the contract pool", error.into()))?;
    let vehicle = service
        .downstream
        .contracts
        .clone()
        .get_provisioning_certificate(forward(
            None,
            GetProvisioningCertificateRequest {
                pcid: pcid.as_str().to_string(),
            },
        ))
        .await
        .map_err(PncError::from)
        .map_err(|error| match error.kind {
            pnc_common::ErrorKind::NotFound => negative(
                ResponseCode::FailedNoCertificateAvailable,
                format!("the vehicle {pcid} is no longer registered"),
            ),
            _ => backend_failure("the provisioning certificate pool", error),
        })?
        .into_inner();
    let vehicle_certificate = Certificate::from_der(&vehicle.certificate.unwrap_or_default().der)
        .map_err(|error| {
        backend_failure(
            "the provisioning certificate pool",
            PncError::internal(error.to_string()),
        )
    })?;

    // 6. Renew: same lifetime as the old certificate, from now, within the issuer.
    let lifetime = old_leaf.not_after() - old_leaf.not_before();
    let (not_before, not_after) = contract::contract_validity(
        &service.holdings.contract_issuer.sub_ca_2,
        now,
        now + lifetime,
        now,
    )
    .map_err(|error| negative(ResponseCode::FailedNoCertificateAvailable, error.message))?;
    let holdings = service.holdings.clone();
    let renewal_emaid = Emaid::parse(&contract.emaid)
        .map_err(|error| backend_failure("the contract pool", error.into()))?;
    let old_certificate = old_leaf.clone();
    let produced = tokio::task::spawn_blocking(move || {
        let signers: Vec<&CpsSigner> = holdings.cps_signers.iter().collect();
        let (key, chain) = contract::issue_contract(
            &holdings.contract_issuer,
            &renewal_emaid,
            not_before,
            not_after,
        )?;
        // For this answer: sealed to the old contract key [V2G2-821]; for later
        // installations: sealed to the vehicle [V2G2-820].
        let for_update =
            contract::seal_and_sign(&signers, &renewal_emaid, &chain, &key, &old_certificate)?;
        let for_install =
            contract::seal_and_sign(&signers, &renewal_emaid, &chain, &key, &vehicle_certificate)?;
        Ok::<_, PncError>((chain, for_update, for_install))
    })
    .await
    .map_err(|error| backend_failure("renewal", PncError::internal(error.to_string())))?
    .map_err(|error| backend_failure("renewal", error))?;
    let (chain, for_update, for_install) = produced;

    let renewed = Contract {
        emaid: contract.emaid.clone(),
        pcid: contract.pcid.clone(),
        mode: ContractMode::Generated as i32,
        contract_chain: chain
            .iter()
            .map(|certificate| ProtoCertificate {
                der: certificate.der().to_vec(),
            })
            .collect(),
        contract_begins: chain[0].not_before().unix_timestamp(),
        contract_ends: chain[0].not_after().unix_timestamp(),
        certificate_not_before: chain[0].not_before().unix_timestamp(),
        certificate_not_after: chain[0].not_after().unix_timestamp(),
        signed_data: for_install,
        ..Contract::default()
    };
    service
        .downstream
        .contracts
        .clone()
        .put_contract(forward(
            None,
            PutContractRequest {
                contract: Some(renewed),
                issued: Some(IssuedRecord {
                    issuer: Some(ProtoCertificate {
                        der: service.holdings.contract_issuer.sub_ca_2.der().to_vec(),
                    }),
                    profile: pnc_pki::Profile::Contract.name().to_string(),
                }),
                renews_certificate_fingerprint: String::new(),
            },
        ))
        .await
        .map_err(PncError::from)
        .map_err(|error| backend_failure("the contract pool", error))?;

    let signed = for_update
        .into_iter()
        .find(|signed| signed.v2g_root_fingerprint == answer_root)
        .ok_or_else(|| {
            backend_failure(
                "renewal",
                PncError::internal("no signed data under the EV's root"),
            )
        })?;
    let exi_response = signed_data::render_update_exi(&signed, &checked.session_id)
        .map_err(|error| backend_failure("rendering the answer", error))?;
    Ok(InstallResponse {
        exi_response,
        response_code: ResponseCode::Ok.as_str().to_string(),
        emaid: signed.emaid.clone(),
        pcid: contract.pcid,
        v2g_root_fingerprint: signed.v2g_root_fingerprint,
        remaining_contracts: 0,
        failure_reason: String::new(),
        schema_namespace: pnc_exi::iso2::NS_DEF.to_string(),
    })
}

/// eMSP PKI mode: the renewal the eMSP supplied for this contract certificate, applied in
/// the registry (the contract's certificate becomes the renewed one) and answered under the
/// first V2G root the EV lists that the renewal was signed under.
async fn supplied_renewal(
    service: &ProvisioningService,
    checked: &CheckedUpdate,
    old_leaf: &Certificate,
    trusted_roots: &[String],
) -> Result<InstallResponse, Negative> {
    let renewal = service
        .downstream
        .contracts
        .clone()
        .apply_contract_renewal(forward(
            None,
            ApplyContractRenewalRequest {
                old_certificate_fingerprint: hex::encode_upper(old_leaf.sha256_fingerprint()),
                v2g_root_fingerprints: trusted_roots.to_vec(),
            },
        ))
        .await
        .map_err(PncError::from)
        .map_err(|error| match error.kind {
            pnc_common::ErrorKind::NotFound => negative(
                ResponseCode::FailedNoCertificateAvailable,
                format!(
                    "this contract comes from its eMSP's own PKI and no usable renewal was supplied: {}",
                    error.message
                ),
            ),
            pnc_common::ErrorKind::ContractCanceled => {
                negative(ResponseCode::FailedContractCanceled, error.message)
            }
            _ => backend_failure("the contract pool", error),
        })?
        .into_inner();
    let signed = trusted_roots
        .iter()
        .find_map(|root| {
            renewal
                .signed_data
                .iter()
                .find(|signed| &signed.v2g_root_fingerprint == root)
        })
        .ok_or_else(|| {
            negative(
                ResponseCode::FailedNoCertificateAvailable,
                "the supplied renewal is signed under none of the V2G roots the EV trusts",
            )
        })?;
    let exi_response = signed_data::render_update_exi(signed, &checked.session_id)
        .map_err(|error| backend_failure("rendering the answer", error))?;
    Ok(InstallResponse {
        exi_response,
        response_code: ResponseCode::Ok.as_str().to_string(),
        emaid: signed.emaid.clone(),
        pcid: renewal.pcid.clone(),
        v2g_root_fingerprint: signed.v2g_root_fingerprint.clone(),
        remaining_contracts: 0,
        failure_reason: String::new(),
        schema_namespace: pnc_exi::iso2::NS_DEF.to_string(),
    })
}
