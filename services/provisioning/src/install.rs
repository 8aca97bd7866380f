//! ISO 15118-2 CertificateInstallation: the car plugs in, the charger forwards its request,
//! pnc answers from pre-signed contract data (iso15118-notes §1, §14).
//!
//! Checks run in the order clients rely on: request signature → certificate validity →
//! chain → revocation → contract. Every failure the EV must hear about becomes a complete
//! negative EXI answer with the request's SessionID (notes §8); only a request that cannot be
//! decoded at all is a gRPC error, because no ISO answer can be built without its SessionID.

use std::sync::Arc;

use pnc_common::config::RevocationUnavailable;
use pnc_common::ids::Pcid;
use pnc_common::{ErrorKind, PncError};
use pnc_exi::iso2::{Body, CertificateInstallationReq, NS_DEF, ResponseCode, V2gMessage};
use pnc_exi::{Schema, signature};
use pnc_pki::public_key::PublicKey;
use pnc_pki::{Certificate, PathError, ValidationOptions};
use pnc_proto::principal::{Principal, Role};
use pnc_proto::provisioning::v1::{InstallRequest, InstallResponse};
use pnc_proto::registry::v1::{
    ContractLookup, GetInstallationContextRequest, GetInstallationContextResponse,
    GetIssuedRequest, IssuanceKey, IssuanceStatus, IssuedStatus, get_issued_request,
};

use crate::oem_trust::ForeignStatus;
use crate::root_ids;
use crate::service::{ProvisioningService, forward};
use crate::signed_data;

/// An EXI request is about 1 KB (notes §10.2); OCPP 2.1 allows 11000 base64 characters.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// The OCPP 2.0.1 `exiResponse` limit in EXI bytes (5600 base64 characters, notes §10.2).
pub const OCPP_201_MAX_RESPONSE_BYTES: usize = 4200;

/// The namespaces callers use for ISO 15118-20 (notes §2).
const ISO20_NAMESPACES: [&str; 3] = [
    "urn:iso:std:iso:15118:-20:CommonMessages",
    "urn:iso:15118:20:2022:MsgDef",
    "urn:iso:15118:20:2020:MsgDef",
];

/// A V2GTP header (`01 FE 80 01` + length) is stripped if present (notes §9).
fn strip_v2gtp(exi: &[u8]) -> &[u8] {
    if exi.len() > 8 && exi[..4] == [0x01, 0xFE, 0x80, 0x01] {
        &exi[8..]
    } else {
        exi
    }
}

/// A decoded request whose signature has been checked.
struct CheckedRequest {
    session_id: Vec<u8>,
    request: CertificateInstallationReq,
    /// The OEM provisioning certificate, when it parses.
    oem_certificate: Option<Certificate>,
    /// `Err(reason)` when the request signature does not verify.
    signature: Result<(), String>,
}

/// A decoded request of either kind, its signature checked.
enum Decoded {
    Install(CheckedRequest),
    Update(crate::update::CheckedUpdate),
}

/// Decodes the message and verifies the EV's signature (notes §6.5). CPU work.
fn decode_and_verify(exi: &[u8], action: &str) -> Result<Decoded, PncError> {
    let root = pnc_exi::decode_document(Schema::Iso2, exi)
        .map_err(|error| PncError::invalid(format!("EXI format is invalid: {error}")))?;
    let message = V2gMessage::from_element(&root)
        .map_err(|error| PncError::invalid(format!("EXI format is invalid: {error}")))?;
    let session_id = message.header.session_id;
    let header_signature = message.header.signature;
    match (message.body, action) {
        (Body::CertificateInstallationReq(request), "" | "Install") => {
            let oem_certificate = Certificate::from_der(&request.oem_provisioning_cert).ok();
            let signature = verify_request_signature(
                &root,
                header_signature.as_ref(),
                &request.id,
                oem_certificate.as_ref(),
            );
            Ok(Decoded::Install(CheckedRequest {
                session_id,
                request,
                oem_certificate,
                signature,
            }))
        }
        (Body::CertificateUpdateReq(request), "" | "Update") => {
            let chain = &request.contract_signature_cert_chain;
            let contract_chain: Vec<Certificate> = std::iter::once(&chain.certificate)
                .chain(&chain.sub_certificates)
                .map_while(|der| Certificate::from_der(der).ok())
                .collect();
            let signature = verify_request_signature(
                &root,
                header_signature.as_ref(),
                &request.id,
                contract_chain.first(),
            );
            Ok(Decoded::Update(crate::update::CheckedUpdate {
                session_id,
                request,
                contract_chain,
                signature,
            }))
        }
        (Body::CertificateInstallationReq(_) | Body::CertificateUpdateReq(_), action) => {
            Err(PncError::invalid(format!(
                "the EXI message does not match the action `{}`",
                action.chars().take(20).collect::<String>()
            )))
        }
        _ => Err(PncError::invalid(
            "the EXI message is not a CertificateInstallationReq or CertificateUpdateReq",
        )),
    }
}

/// The request signature: exactly one reference, to the body element itself (notes §6.3,
/// §6.5), verified with `certificate`'s key (OEM provisioning for Install, the current
/// contract certificate for Update).
fn verify_request_signature(
    root: &pnc_exi::Element,
    header_signature: Option<&pnc_exi::xmldsig::Signature>,
    body_id: &str,
    certificate: Option<&Certificate>,
) -> Result<(), String> {
    let header_signature = header_signature.ok_or("the request carries no signature")?;
    let references = &header_signature.signed_info.references;
    let expected_uri = format!("#{body_id}");
    if body_id.is_empty()
        || references.len() != 1
        || references[0].uri.as_deref() != Some(expected_uri.as_str())
    {
        return Err("the signature must reference exactly the request body".into());
    }
    let certificate = certificate.ok_or("the signer's certificate does not parse")?;
    // Built from the point the certificate parser already holds: OpenSSL 3's decoder would
    // cost more than the verification itself.
    let key = PublicKey::of(certificate)
        .map_err(|error| format!("the signer's key is unusable: {error}"))?;
    match &key {
        PublicKey::Ec(key) => signature::verify_iso2_message(root, key),
        PublicKey::Other(key) => signature::verify_iso2_message(root, key),
    }
    .map_err(|error| error.to_string())
}

pub(crate) struct Negative {
    pub code: ResponseCode,
    pub reason: String,
}

pub(crate) fn negative(code: ResponseCode, reason: impl Into<String>) -> Negative {
    Negative {
        code,
        reason: reason.into(),
    }
}

/// A dependency failure during the checks: the EV gets FAILED (the charger would answer the
/// same after a timeout, [V2G2-917]).
pub(crate) fn backend_failure(what: &str, error: PncError) -> Negative {
    tracing::warn!(%error, "{what} failed while answering an ev");
    negative(ResponseCode::Failed, format!("{what} is unavailable"))
}

pub async fn install(
    service: &ProvisioningService,
    principal: Option<&Principal>,
    request: InstallRequest,
) -> Result<InstallResponse, PncError> {
    let role = principal
        .map(|principal| Role::try_from(principal.role).unwrap_or(Role::Unspecified))
        .unwrap_or(Role::Unspecified);
    if !matches!(role, Role::Cpo | Role::Charger | Role::Admin) {
        return Err(PncError::permission_denied(
            "only CPOs and charging stations ask for contract installations",
        ));
    }
    let namespace = request.schema_namespace.trim();
    if ISO20_NAMESPACES.contains(&namespace) {
        return crate::install20::install(service, principal, request).await;
    }
    if !namespace.is_empty() && namespace != NS_DEF {
        return Err(PncError::invalid(format!(
            "unknown schema namespace `{}`; expected {NS_DEF}",
            namespace.chars().take(80).collect::<String>()
        )));
    }
    if request.exi_request.len() > MAX_REQUEST_BYTES {
        return Err(PncError::new(
            ErrorKind::TooLarge,
            format!("the EXI request is larger than {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    let exi = strip_v2gtp(&request.exi_request);
    let action = request.action.trim();
    // Inline, not on the blocking pool: decoding at most MAX_REQUEST_BYTES and one ECDSA
    // verification take well under 0.1 ms, less than the two thread hand-offs that
    // spawn_blocking would add to every installation.
    let decoded = decode_and_verify(exi, action)?;
    let checked = match decoded {
        Decoded::Install(checked) => checked,
        Decoded::Update(checked) => return crate::update::update(service, checked).await,
    };

    let session_id = checked.session_id.clone();
    let pcid = checked
        .oem_certificate
        .as_ref()
        .and_then(Certificate::common_name)
        .and_then(|name| Pcid::parse(name).ok());
    // Past the role check provisioning reads as itself, the RA: the registry scopes reads to
    // tenants, and a CPO or charger is no tenant of vehicle or contract records.
    let outcome = answer(service, &checked, pcid.as_ref()).await;
    let pcid_text = pcid
        .map(|pcid| pcid.as_str().to_string())
        .unwrap_or_default();
    match outcome {
        Ok(positive) => {
            if positive.exi_response.len() > OCPP_201_MAX_RESPONSE_BYTES {
                tracing::warn!(
                    bytes = positive.exi_response.len(),
                    "the answer exceeds OCPP 2.0.1's exiResponse limit (fits OCPP 2.1)"
                );
            }
            tracing::info!(pcid = %pcid_text, emaid = %positive.emaid, "answered an ev with its contract");
            Ok(InstallResponse {
                pcid: pcid_text,
                ..positive
            })
        }
        Err(Negative { code, reason }) => {
            tracing::info!(pcid = %pcid_text, code = code.as_str(), %reason, "refused an ev's installation request");
            Ok(InstallResponse {
                exi_response: signed_data::render_negative(&session_id, code)?,
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
        return Err(negative(ResponseCode::FailedSignatureError, reason.clone()));
    }
    let oem_certificate = checked.oem_certificate.as_ref().ok_or_else(|| {
        negative(
            ResponseCode::FailedSignatureError,
            "the OEM provisioning certificate does not parse",
        )
    })?;

    // 2. The provisioning certificate's validity, at the request time.
    let now = service.validity_now();
    if now > oem_certificate.not_after() {
        return Err(negative(
            ResponseCode::FailedCertificateExpired,
            "the OEM provisioning certificate has expired",
        ));
    }
    if now < oem_certificate.not_before() {
        return Err(negative(
            ResponseCode::Failed,
            "the OEM provisioning certificate is not valid yet",
        ));
    }

    // Everything the remaining checks need, in one registry call beside the cached trust
    // view: the PCID's registered chain, issuance statuses, the contract's signed data.
    let trust = &service.oem_trust;
    let trusted_roots = trusted_roots(service, &checked.request.list_of_root_certificate_ids);
    let OemContext {
        known_sub_cas,
        context,
        roots,
    } = oem_context(
        service,
        std::slice::from_ref(oem_certificate),
        pcid,
        trusted_roots.clone(),
    )
    .await
    .map_err(|(what, error)| backend_failure(what, error))?;

    // 3. Its chain, through the OEM Sub-CAs pnc knows, to a registered OEM root.
    let registered_sub_cas: Vec<Vec<u8>> = context
        .provisioning_certificate
        .as_ref()
        .map(|registered| {
            registered
                .sub_cas
                .iter()
                .map(|certificate| certificate.der.clone())
                .collect()
        })
        .unwrap_or_default();
    let path = match trust
        .validate(
            oem_certificate,
            &registered_sub_cas,
            &known_sub_cas,
            &roots,
            now,
            // ISO 15118-2 chains are ECDSA P-256 / SHA-256 throughout [V2G2-006], [V2G2-007].
            &ValidationOptions::default().iso2(),
        )
        .await
    {
        Ok(path) => path.certificates,
        Err(error @ PathError::Expired { .. }) => {
            return Err(negative(
                ResponseCode::FailedCertificateExpired,
                format!("OEM provisioning chain: {error}"),
            ));
        }
        // CertificateInstallationRes has no FAILED_CertChainError (notes §8.2).
        Err(error) => {
            return Err(negative(
                ResponseCode::Failed,
                format!("OEM provisioning chain: {error}"),
            ));
        }
    };

    // 4. Revocation: issuance records for what pnc issued, OCSP for the rest.
    check_oem_revocation(service, &path, &context.statuses).await?;

    // 5. The contract, under a V2G root the EV trusts.
    let pcid = pcid.ok_or_else(|| {
        negative(
            ResponseCode::FailedNoCertificateAvailable,
            "the OEM provisioning certificate's CN is not a PCID",
        )
    })?;
    if trusted_roots.is_empty() {
        return Err(negative(
            ResponseCode::FailedNoCertificateAvailable,
            "the EV trusts none of the V2G roots pnc signs contract data under",
        ));
    }
    let found = match ContractLookup::try_from(context.contract_lookup) {
        Ok(ContractLookup::Found) => context.signed_contract_data.unwrap_or_default(),
        Ok(ContractLookup::NotFound) => {
            return Err(negative(
                ResponseCode::FailedNoCertificateAvailable,
                if context.contract_message.is_empty() {
                    format!("no contract for PCID {pcid}")
                } else {
                    context.contract_message
                },
            ));
        }
        Ok(ContractLookup::Canceled) => {
            return Err(negative(
                ResponseCode::FailedContractCanceled,
                context.contract_message,
            ));
        }
        _ => {
            return Err(backend_failure(
                "the contract pool",
                PncError::internal("the registry did not look the contract up"),
            ));
        }
    };
    let contract = found.contract.unwrap_or_default();
    if contract.cancelled {
        return Err(negative(
            ResponseCode::FailedContractCanceled,
            format!("the contract {} was cancelled by its eMSP", contract.emaid),
        ));
    }
    let signed = found.signed_data.ok_or_else(|| {
        negative(
            ResponseCode::FailedNoCertificateAvailable,
            format!("no signed contract data for PCID {pcid} under a root the EV trusts"),
        )
    })?;
    let exi_response = signed_data::render_exi(&signed, &checked.session_id)
        .map_err(|error| backend_failure("rendering the answer", error))?;
    Ok(InstallResponse {
        exi_response,
        response_code: ResponseCode::Ok.as_str().to_string(),
        emaid: signed.emaid.clone(),
        pcid: String::new(),
        v2g_root_fingerprint: signed.v2g_root_fingerprint.clone(),
        remaining_contracts: found.remaining_contracts,
        failure_reason: String::new(),
        schema_namespace: pnc_exi::iso2::NS_DEF.to_string(),
    })
}

/// The leaf and its Sub-CAs: the request's bound on issuance look-ups (the registry's is 8).
const MAX_STATUS_LOOKUPS: usize = 6;

/// What an installation's chain and revocation checks read, for -2 and -20 alike.
pub(crate) struct OemContext {
    /// The OEM Sub-CAs the truststore knows above the leaf (cached view).
    pub known_sub_cas: Vec<Certificate>,
    /// The PCID's registered chain, issuance statuses, and with V2G roots the -2 contract.
    pub context: GetInstallationContextResponse,
    /// The pool's OEM roots (cached view).
    pub roots: Arc<Vec<Certificate>>,
}

/// Reads the [`OemContext`] of `oem_chain` (the leaf, then any SubCertificates the EV sent):
/// one registry call beside the cached trust view, asking for the issuance statuses of the
/// chain and the known Sub-CAs. A failure names the dependency that failed.
pub(crate) async fn oem_context(
    service: &ProvisioningService,
    oem_chain: &[Certificate],
    pcid: Option<&Pcid>,
    v2g_root_fingerprints: Vec<String>,
) -> Result<OemContext, (&'static str, PncError)> {
    let trust = &service.oem_trust;
    let Some(leaf) = oem_chain.first() else {
        return Err((
            "the request",
            PncError::invalid("no OEM provisioning certificate"),
        ));
    };
    let known_sub_cas = trust
        .sub_cas_above(leaf)
        .await
        .map_err(|error| ("the truststore", error))?;
    let mut certificates: Vec<IssuanceKey> = Vec::new();
    for key in oem_chain
        .iter()
        .chain(&known_sub_cas)
        .filter_map(issuance_key)
    {
        if !certificates.contains(&key) {
            certificates.push(key);
        }
    }
    certificates.truncate(MAX_STATUS_LOOKUPS);
    let context_request = GetInstallationContextRequest {
        pcid: pcid
            .map(|pcid| pcid.as_str().to_string())
            .unwrap_or_default(),
        v2g_root_fingerprints,
        certificates,
    };
    let mut contracts = service.downstream.contracts.clone();
    let (context, roots) = tokio::join!(
        contracts.get_installation_context(forward(None, context_request)),
        trust.oem_roots()
    );
    let context = context
        .map_err(|status| ("the contract pool", PncError::from(status)))?
        .into_inner();
    let roots = roots.map_err(|error| ("the truststore", error))?;
    Ok(OemContext {
        known_sub_cas,
        context,
        roots,
    })
}

/// How the issuance records key a certificate: its AKI and serial. `None` without an AKI
/// (pnc's CAs always set one, so such a certificate is not pnc's).
fn issuance_key(certificate: &Certificate) -> Option<IssuanceKey> {
    Some(IssuanceKey {
        issuer_key_id: certificate.authority_key_identifier()?.to_vec(),
        serial: certificate.serial().to_vec(),
    })
}

/// Revocation of the OEM path below its root. A certificate issued by one of pnc's own CAs
/// has its status in the issuance records (read in the same registry call). A foreign one
/// with an OCSP URL is asked about through the OCSP service; when no status can be had, the
/// `pki.revocation_unavailable` setting decides. A foreign certificate with neither an OCSP
/// URL nor a CRL distribution point has no revocation source and passes.
pub(crate) async fn check_oem_revocation(
    service: &ProvisioningService,
    path: &[Certificate],
    statuses: &[IssuanceStatus],
) -> Result<(), Negative> {
    for (index, certificate) in path.iter().enumerate().take(path.len().saturating_sub(1)) {
        let issuer = &path[index + 1];
        let recorded = issuance_key(certificate).and_then(|key| {
            statuses
                .iter()
                .find(|status| status.key.as_ref() == Some(&key))
                .map(|status| status.status)
        });
        if recorded == Some(IssuedStatus::Revoked as i32) {
            return Err(negative(
                ResponseCode::FailedCertificateRevoked,
                format!("{} is revoked", certificate.subject()),
            ));
        }
        if recorded == Some(IssuedStatus::Good as i32) || service.oem_trust.is_own_ca(issuer) {
            continue;
        }
        check_foreign_revocation(service, certificate, issuer).await?;
    }
    Ok(())
}

/// Revocation of a certificate a foreign CA issued: asked about through the OCSP service
/// when it names an OCSP URL; when no status can be had, `pki.revocation_unavailable`
/// decides. Neither an OCSP URL nor a CRL distribution point: no revocation source, passes.
pub(crate) async fn check_foreign_revocation(
    service: &ProvisioningService,
    certificate: &Certificate,
    issuer: &Certificate,
) -> Result<(), Negative> {
    let unavailable = if !certificate.ocsp_urls().is_empty() {
        match service.oem_trust.foreign_status(certificate, issuer).await {
            ForeignStatus::Good => return Ok(()),
            ForeignStatus::Revoked => {
                return Err(negative(
                    ResponseCode::FailedCertificateRevoked,
                    format!("{} is revoked (OCSP)", certificate.subject()),
                ));
            }
            ForeignStatus::Unavailable(reason) => reason,
        }
    } else if !certificate.crl_urls().is_empty() {
        // pnc does not fetch foreign CRLs at request time.
        format!(
            "{} names only a CRL, which pnc does not fetch",
            certificate.subject()
        )
    } else {
        return Ok(());
    };
    match service.revocation_unavailable {
        RevocationUnavailable::Accept => {
            tracing::warn!(reason = %unavailable, "revocation status unavailable; accepted (pki.revocation_unavailable = accept)");
            Ok(())
        }
        RevocationUnavailable::Refuse => Err(negative(
            ResponseCode::Failed,
            format!("revocation status unavailable: {unavailable}"),
        )),
    }
}

/// The V2G roots (fingerprints) pnc holds a CPS chain under that the EV lists, in its order.
pub(crate) fn trusted_roots(
    service: &ProvisioningService,
    root_certificate_ids: &[pnc_exi::iso2::X509IssuerSerial],
) -> Vec<String> {
    let mut trusted: Vec<String> = Vec::new();
    for root_id in root_certificate_ids {
        for cps in &service.holdings.cps_signers {
            if root_ids::names_root(&root_id.issuer_name, &root_id.serial_number, &cps.root)
                && !trusted.contains(&cps.root_fingerprint)
            {
                trusted.push(cps.root_fingerprint.clone());
            }
        }
    }
    trusted
}

/// Certificates pnc issued carry their status in the registry's issuance records (the
/// contract chains of CertificateUpdate); others pass this step.
pub(crate) async fn check_revocation(
    service: &ProvisioningService,
    path: &[Certificate],
) -> Result<(), Negative> {
    let Some((_, below_anchor)) = path.split_last() else {
        return Ok(());
    };
    for certificate in below_anchor {
        let Some(issuer_key_id) = certificate.authority_key_identifier() else {
            continue;
        };
        let status = service
            .downstream
            .issued
            .clone()
            .get_issued(forward(
                None,
                GetIssuedRequest {
                    issuer: Some(get_issued_request::Issuer::IssuerKeyId(
                        issuer_key_id.to_vec(),
                    )),
                    serial: certificate.serial().to_vec(),
                },
            ))
            .await;
        match status {
            Ok(issued) => {
                if issued.into_inner().status == IssuedStatus::Revoked as i32 {
                    return Err(negative(
                        ResponseCode::FailedCertificateRevoked,
                        format!("{} is revoked", certificate.subject()),
                    ));
                }
            }
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                tracing::warn!(
                    "the registry keeps no issuance records yet; revocation not checked"
                );
                return Ok(());
            }
            Err(status) => {
                return Err(backend_failure(
                    "the issuance records",
                    PncError::from(status),
                ));
            }
        }
    }
    Ok(())
}
