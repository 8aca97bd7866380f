//! The gRPC face of the provisioning service: the RA decisions (who may register which
//! contract, which chain is acceptable) around the CA work in [`crate::contract`] and the EV
//! flow in [`crate::install`].

use std::sync::Arc;

use pnc_common::grpc::GrpcChannel;
use pnc_common::ids::{Emaid, Pcid, ProviderId};
use pnc_common::{ErrorKind, PncError};
use pnc_pki::Certificate;
use pnc_proto::common::v1::Certificate as ProtoCertificate;
use pnc_proto::principal::{Principal, Role};
use pnc_proto::provisioning::v1::{
    ContractResponse, CpsChain, GenerateContractRequest, InstallRequest, InstallResponse,
    ListCpsChainsRequest, ListCpsChainsResponse, RenderContractRequest, SignContractDataRequest,
    SignedContractDataView, provisioning_server::Provisioning,
};
use pnc_proto::registry::v1::contracts_client::ContractsClient;
use pnc_proto::registry::v1::issued_certificates_client::IssuedCertificatesClient;
use pnc_proto::registry::v1::{
    Contract, ContractMode, GetProvisioningCertificateRequest, GetSignedContractDataRequest,
    IssuedRecord, PutContractRequest, SignedContractData,
};
use pnc_proto::truststore::v1::trust_store_client::TrustStoreClient;
use pnc_proto::truststore::v1::{GetRootRequest, ListRootsRequest, RootType};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::contract;
use crate::pki::{CpsSigner, Holdings};
use crate::signed_data;

/// The clients of the services provisioning calls (registry, truststore; never upward).
#[derive(Debug, Clone)]
pub struct Downstream {
    pub contracts: ContractsClient<GrpcChannel>,
    pub issued: IssuedCertificatesClient<GrpcChannel>,
    pub truststore: TrustStoreClient<GrpcChannel>,
}

#[derive(Debug, Clone)]
pub struct ProvisioningService {
    pub holdings: Arc<Holdings>,
    pub downstream: Downstream,
    pub enforce_emaid_check_digit: bool,
    /// When an eMSP's contract chain is judged valid (the system clock outside tests).
    pub validity_clock: pnc_common::runtime::ValidityClock,
    /// Cached OEM roots, Sub-CAs, validated Sub-CA paths and foreign OCSP answers.
    pub oem_trust: Arc<crate::oem_trust::OemTrust>,
    /// `pki.revocation_unavailable`.
    pub revocation_unavailable: pnc_common::config::RevocationUnavailable,
}

impl ProvisioningService {
    /// The moment certificate validity is judged at for a request arriving now.
    pub fn validity_now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.validity_clock.unix_now())
            .unwrap_or_else(|_| OffsetDateTime::now_utc())
    }
}

/// A downstream request carrying the caller's principal on, so the registry can enforce
/// scope again (defence in depth).
pub fn forward<T>(principal: Option<&Principal>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(principal) = principal {
        pnc_proto::principal::attach(request.metadata_mut(), principal);
    }
    request
}

/// Only eMSPs (for their provider IDs) and admins register contracts (OPCP roles, §2.3).
pub fn authorize_contract_write(
    principal: Option<&Principal>,
    emaid: &Emaid,
) -> Result<(), PncError> {
    let principal = principal
        .ok_or_else(|| PncError::permission_denied("no caller identity on the request"))?;
    match Role::try_from(principal.role).unwrap_or(Role::Unspecified) {
        Role::Admin => Ok(()),
        Role::Emsp => {
            let wanted = emaid.provider_id();
            let allowed = principal
                .provider_ids
                .iter()
                .filter_map(|id| ProviderId::parse(id).ok())
                .any(|id| id == wanted);
            if allowed {
                Ok(())
            } else {
                Err(PncError::permission_denied(format!(
                    "this client may not register contracts of provider {wanted}"
                )))
            }
        }
        _ => Err(PncError::permission_denied(
            "only eMSP clients register contracts",
        )),
    }
}

fn parse_certificate(der: &[u8], what: &str) -> Result<Certificate, PncError> {
    Certificate::from_der(der).map_err(|error| PncError::invalid(format!("{what}: {error}")))
}

fn proto_certificate(certificate: &Certificate) -> ProtoCertificate {
    ProtoCertificate {
        der: certificate.der().to_vec(),
    }
}

fn timestamp(seconds: i64, what: &str) -> Result<OffsetDateTime, PncError> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| PncError::invalid(format!("{what} is out of range")))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PncError> + Send + 'static,
) -> Result<T, PncError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        tracing::error!(%error, "blocking task failed");
        PncError::internal("blocking task failed")
    })?
}

/// The OPCP view of one signed data set: XML for OPCP, EXI for OPNC.
pub fn view(
    holdings: &Holdings,
    signed: SignedContractData,
) -> Result<SignedContractDataView, PncError> {
    let v2g_root_distinguished_name = holdings
        .cps_signer(&signed.v2g_root_fingerprint)
        .or_else(|| holdings.iso20.cps_signer(&signed.v2g_root_fingerprint))
        .map(|cps| rfc4514(&cps.root))
        .unwrap_or_default();
    Ok(SignedContractDataView {
        signed_xml: signed_data::render_signed_xml(&signed)?,
        certificate_installation_res: signed_data::render_exi(&signed, &signed_data::NO_SESSION)?,
        v2g_root_distinguished_name,
        signed_data: Some(signed),
    })
}

/// RFC 4514 string order (last RDN first), as OPCP's `cpsRootDistinguishedName` examples.
pub fn rfc4514(certificate: &Certificate) -> String {
    certificate
        .subject()
        .rdns()
        .iter()
        .rev()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let name = match attribute.oid.as_str() {
                        "2.5.4.3" => "CN",
                        "2.5.4.6" => "C",
                        "2.5.4.10" => "O",
                        "2.5.4.11" => "OU",
                        "2.5.4.8" => "ST",
                        "2.5.4.7" => "L",
                        "0.9.2342.19200300.100.1.25" => "DC",
                        other => other,
                    };
                    let value = attribute
                        .value
                        .replace('\\', "\\\\")
                        .replace(',', "\\,")
                        .replace('+', "\\+");
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl ProvisioningService {
    /// The CPS chains to sign with: the one under the requested V2G root (fingerprint or
    /// OPCP rootCertificateId), or all.
    async fn cps_signers(
        &self,
        principal: Option<&Principal>,
        requested_root: &str,
    ) -> Result<Vec<usize>, PncError> {
        let requested_root = requested_root.trim();
        if requested_root.is_empty() {
            return Ok((0..self.holdings.cps_signers.len()).collect());
        }
        let fingerprint = if requested_root.len() == 64
            && requested_root.bytes().all(|byte| byte.is_ascii_hexdigit())
        {
            requested_root.to_ascii_uppercase()
        } else {
            // OPCP's schema types the field as a UUID (its rootCertificateId); resolve it.
            let root = self
                .downstream
                .truststore
                .clone()
                .get_root(forward(
                    principal,
                    GetRootRequest {
                        id: requested_root.to_string(),
                    },
                ))
                .await
                .map_err(PncError::from)
                .map_err(|error| match error.kind {
                    ErrorKind::NotFound | ErrorKind::InvalidArgument => PncError::invalid(format!(
                        "cpsV2GRootCertificateFingerprint `{requested_root}` names no root of the pool"
                    )),
                    _ => error,
                })?
                .into_inner();
            root.sha256_fingerprint.to_ascii_uppercase()
        };
        let chosen: Vec<usize> = self
            .holdings
            .cps_signers
            .iter()
            .enumerate()
            .filter(|(_, cps)| cps.root_fingerprint == fingerprint)
            .map(|(index, _)| index)
            .collect();
        if chosen.is_empty() {
            return Err(PncError::invalid(format!(
                "pnc holds no CPS certificate under the V2G root {fingerprint}"
            )));
        }
        Ok(chosen)
    }

    pub(crate) async fn store(
        &self,
        principal: Option<&Principal>,
        contract: Contract,
        issued: Option<IssuedRecord>,
    ) -> Result<Contract, PncError> {
        self.downstream
            .contracts
            .clone()
            .put_contract(forward(
                principal,
                PutContractRequest {
                    contract: Some(contract),
                    issued,
                    renews_certificate_fingerprint: String::new(),
                },
            ))
            .await
            .map(Response::into_inner)
            .map_err(PncError::from)
            // OPCP answers a clash ("EMAID is already used by other PCID") with 400.
            .map_err(|error| match error.kind {
                ErrorKind::AlreadyExists => PncError::invalid(error.message),
                _ => error,
            })
    }

    /// Stores an eMSP-PKI renewal as the pending renewal of the contract certificate with
    /// fingerprint `renews` (PutContract with `renews_certificate_fingerprint`).
    async fn store_renewal(
        &self,
        principal: Option<&Principal>,
        contract: Contract,
        renews: &str,
    ) -> Result<Contract, PncError> {
        self.downstream
            .contracts
            .clone()
            .put_contract(forward(
                principal,
                PutContractRequest {
                    contract: Some(contract),
                    issued: None,
                    renews_certificate_fingerprint: renews.to_ascii_uppercase(),
                },
            ))
            .await
            .map(Response::into_inner)
            .map_err(PncError::from)
    }

    pub(crate) async fn respond(
        &self,
        contract: Contract,
        signed: Vec<SignedContractData>,
    ) -> Result<ContractResponse, PncError> {
        let holdings = self.holdings.clone();
        let views = blocking(move || {
            signed
                .into_iter()
                .map(|signed| view(&holdings, signed))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        Ok(ContractResponse {
            contract: Some(contract),
            signed: views,
        })
    }

    pub async fn generate_contract(
        &self,
        principal: Option<&Principal>,
        request: GenerateContractRequest,
    ) -> Result<ContractResponse, PncError> {
        let emaid = Emaid::parse_checked(&request.emaid, self.enforce_emaid_check_digit)?;
        let pcid = Pcid::parse(&request.pcid)?;
        authorize_contract_write(principal, &emaid)?;
        let provisioning = self
            .downstream
            .contracts
            .clone()
            .get_provisioning_certificate(forward(
                principal,
                GetProvisioningCertificateRequest {
                    pcid: pcid.as_str().to_string(),
                },
            ))
            .await
            .map_err(PncError::from)
            .map_err(|error| match error.kind {
                // OPCP's documented answer for an unknown PCID is a 400.
                ErrorKind::NotFound => PncError::invalid(
                    "The OEM provisioning certificate with the given PCID is not available.",
                ),
                _ => error,
            })?
            .into_inner();
        let oem_certificate = parse_certificate(
            &provisioning.certificate.unwrap_or_default().der,
            "the registered OEM provisioning certificate",
        )?;
        // The vehicle's key decides the ISO 15118 part (P-521 or X448: -20).
        if crate::contract20::vehicle_curve(&oem_certificate).is_some() {
            return self
                .generate_contract20(principal, &request, emaid, pcid, oem_certificate)
                .await;
        }
        let contract_begins = timestamp(request.contract_begins, "contractBegins")?;
        let contract_ends = timestamp(request.contract_ends, "contractEnds")?;
        let (not_before, not_after) = contract::contract_validity(
            &self.holdings.contract_issuer.sub_ca_2,
            contract_begins,
            contract_ends,
            OffsetDateTime::now_utc(),
        )?;
        let wanted_mo_root = request.mo_root_fingerprint.trim();
        let issuer_root = crate::pki::fingerprint(&self.holdings.contract_issuer.root);
        if !wanted_mo_root.is_empty() && !wanted_mo_root.eq_ignore_ascii_case(&issuer_root) {
            return Err(PncError::invalid(format!(
                "pnc issues contracts under the root {issuer_root}, not under {wanted_mo_root}"
            )));
        }
        let cps_indices = self
            .cps_signers(principal, &request.cps_v2g_root_fingerprint)
            .await?;

        let holdings = self.holdings.clone();
        let generated_emaid = emaid.clone();
        let produced = blocking(move || {
            let signers: Vec<&CpsSigner> = cps_indices
                .iter()
                .map(|index| &holdings.cps_signers[*index])
                .collect();
            contract::generate(
                &holdings.contract_issuer,
                &signers,
                &generated_emaid,
                &oem_certificate,
                not_before,
                not_after,
            )
        })
        .await?;

        let contract = Contract {
            emaid: emaid.as_str().to_string(),
            pcid: pcid.as_str().to_string(),
            is_default: false,
            mode: ContractMode::Generated as i32,
            contract_chain: produced
                .contract_chain
                .iter()
                .map(proto_certificate)
                .collect(),
            contract_begins: produced.not_before.unix_timestamp(),
            contract_ends: produced.not_after.unix_timestamp(),
            cancelled: false,
            signed_data: produced.signed.clone(),
            certificate_not_before: produced.not_before.unix_timestamp(),
            certificate_not_after: produced.not_after.unix_timestamp(),
        };
        let issued = IssuedRecord {
            issuer: Some(proto_certificate(&self.holdings.contract_issuer.sub_ca_2)),
            profile: pnc_pki::Profile::Contract.name().to_string(),
        };
        let stored = self.store(principal, contract, Some(issued)).await?;
        tracing::info!(
            emaid = %emaid,
            pcid = %pcid,
            serial = %produced.contract_chain[0].serial_hex(),
            "generated a contract"
        );
        self.respond(stored, produced.signed).await
    }

    /// Roots a contract chain may end at: MO roots, and V2G roots (Hubject issues contracts
    /// under its V2G root).
    async fn contract_anchors(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Vec<Vec<u8>>, PncError> {
        let mut anchors = Vec::new();
        for root_type in [RootType::Mo, RootType::V2g] {
            let roots = self
                .downstream
                .truststore
                .clone()
                .list_roots(forward(
                    principal,
                    ListRootsRequest {
                        root_type: root_type as i32,
                        ..ListRootsRequest::default()
                    },
                ))
                .await
                .map_err(PncError::from)?
                .into_inner()
                .roots;
            anchors.extend(
                roots
                    .into_iter()
                    .filter(|root| !root.revoked)
                    .filter_map(|root| root.certificate.map(|certificate| certificate.der)),
            );
        }
        Ok(anchors)
    }

    pub async fn sign_contract_data(
        &self,
        principal: Option<&Principal>,
        request: SignContractDataRequest,
    ) -> Result<ContractResponse, PncError> {
        let emaid = Emaid::parse_checked(&request.emaid, self.enforce_emaid_check_digit)?;
        authorize_contract_write(principal, &emaid)?;
        // pnc extension: a renewal is always stored, on the renewed contract's PCID (the
        // registry checks the renewed contract in the same transaction as the write).
        let renews = request
            .renews_contract_certificate_fingerprint
            .trim()
            .to_string();
        if !renews.is_empty()
            && (renews.len() != 64 || !renews.bytes().all(|byte| byte.is_ascii_hexdigit()))
        {
            return Err(PncError::invalid(
                "renewsContractCertificateFingerprint must be the SHA-256 hex fingerprint of the renewed contract certificate",
            ));
        }
        let store = request.store || !renews.is_empty();
        let pcid = match (request.pcid.trim().is_empty(), store && renews.is_empty()) {
            (true, true) => {
                return Err(PncError::invalid("pcid is required to store contract data"));
            }
            (true, false) => None,
            (false, _) => Some(Pcid::parse(&request.pcid)?),
        };
        if request.contract_chain.is_empty() || request.contract_chain.len() > 3 {
            return Err(PncError::invalid(
                "the contract chain must hold the contract certificate and one or two Sub-CAs",
            ));
        }
        let chain = request
            .contract_chain
            .iter()
            .enumerate()
            .map(|(position, certificate)| {
                let what = if position == 0 {
                    "contract certificate".to_string()
                } else {
                    format!("contract Sub-CA {}", 3 - position)
                };
                if certificate.der.len() > 800 {
                    return Err(PncError::invalid(format!(
                        "{what} is larger than 800 bytes [V2G2-010]"
                    )));
                }
                parse_certificate(&certificate.der, &what)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let leaf_emaid = chain[0]
            .common_name()
            .and_then(|name| Emaid::parse(name).ok())
            .ok_or_else(|| PncError::invalid("the contract certificate's CN is not an eMAID"))?;
        if !leaf_emaid.same_account(&emaid) {
            return Err(PncError::invalid(format!(
                "the contract certificate is for {leaf_emaid}, not for {emaid} [V2G2-108]"
            )));
        }
        contract::check_emsp_key_material(&request.encrypted_private_key, &request.dh_public_key)?;
        let anchors = self.contract_anchors(principal).await?;
        let intermediates: Vec<&[u8]> = chain[1..].iter().map(Certificate::der).collect();
        let anchor_refs: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
        pnc_pki::validate_path(
            chain[0].der(),
            &intermediates,
            &anchor_refs,
            self.validity_now(),
        )
        .map_err(|error| match error {
            pnc_pki::PathError::Expired { .. } | pnc_pki::PathError::NotYetValid { .. } => {
                PncError::new(
                    ErrorKind::CertificateExpired,
                    format!("contract chain: {error}"),
                )
            }
            other => PncError::new(
                ErrorKind::CertificateChain,
                format!("the contract chain does not reach a registered MO or V2G root: {other}"),
            ),
        })?;

        let cps_indices = self
            .cps_signers(principal, &request.cps_v2g_root_fingerprint)
            .await?;
        let holdings = self.holdings.clone();
        let signing_chain = chain.clone();
        let signing_emaid = emaid.clone();
        let encrypted_private_key = request.encrypted_private_key.clone();
        let dh_public_key = request.dh_public_key.clone();
        let signed = blocking(move || {
            let signers: Vec<&CpsSigner> = cps_indices
                .iter()
                .map(|index| &holdings.cps_signers[*index])
                .collect();
            contract::sign_all(
                &signers,
                &signed_data::ContractElements {
                    emaid: signing_emaid.as_str(),
                    contract_chain: &signing_chain,
                    encrypted_private_key: &encrypted_private_key,
                    dh_public_key: &dh_public_key,
                },
            )
        })
        .await?;
        let contract = Contract {
            emaid: emaid.as_str().to_string(),
            pcid: pcid
                .as_ref()
                .map(|pcid| pcid.as_str().to_string())
                .unwrap_or_default(),
            is_default: false,
            mode: ContractMode::EmspPki as i32,
            contract_chain: request.contract_chain,
            contract_begins: chain[0].not_before().unix_timestamp(),
            contract_ends: chain[0].not_after().unix_timestamp(),
            cancelled: false,
            signed_data: signed.clone(),
            certificate_not_before: chain[0].not_before().unix_timestamp(),
            certificate_not_after: chain[0].not_after().unix_timestamp(),
        };
        let contract = if !renews.is_empty() {
            self.store_renewal(principal, contract, &renews).await?
        } else if store {
            self.store(principal, contract, None).await?
        } else {
            contract
        };
        self.respond(contract, signed).await
    }
}

impl ProvisioningService {
    /// A stored contract's answer with the caller's SessionID (OEM back-end delivery); the
    /// registry checks that the caller may see the contract (an OEM its WMIs, an eMSP its
    /// provider IDs). A contract holds -2 or -20 signed data, and the answer is a
    /// CertificateInstallationRes of that standard; a -20 answer is the one contract asked
    /// for, so its RemainingContractCertificateChains is 0 (docs/decisions.md).
    pub async fn render_contract(
        &self,
        principal: Option<&Principal>,
        request: RenderContractRequest,
    ) -> Result<InstallResponse, PncError> {
        let emaid = Emaid::parse(&request.emaid)?;
        let pcid = Pcid::parse(&request.pcid)?;
        let wanted_iso20 = match request.schema_namespace.trim() {
            "" => None,
            pnc_exi::iso2::NS_DEF => Some(false),
            pnc_exi::iso20::NS_CM => Some(true),
            other => {
                return Err(PncError::invalid(format!(
                    "unknown schema namespace `{}`",
                    other.chars().take(80).collect::<String>()
                )));
            }
        };
        if request.session_id.len() > 8 {
            return Err(PncError::invalid("sessionID is longer than 8 bytes"));
        }
        let roots = match request.v2g_root_fingerprint.trim() {
            "" => Vec::new(),
            fingerprint => vec![fingerprint.to_ascii_uppercase()],
        };
        let found = self
            .downstream
            .contracts
            .clone()
            .get_signed_contract_data(forward(
                principal,
                GetSignedContractDataRequest {
                    pcid: pcid.as_str().to_string(),
                    emaid: emaid.as_str().to_string(),
                    v2g_root_fingerprints: roots,
                },
            ))
            .await
            .map_err(PncError::from)?
            .into_inner();
        let signed = found
            .signed_data
            .ok_or_else(|| PncError::not_found("no signed contract data for this contract"))?;
        let iso20 = crate::signed_data20::is_iso20(&signed);
        if wanted_iso20.is_some_and(|wanted| wanted != iso20) {
            return Err(PncError::not_found(format!(
                "the contract has no ISO 15118-{} signed data (it is an ISO 15118-{} contract)",
                if iso20 { 2 } else { 20 },
                if iso20 { 20 } else { 2 },
            )));
        }
        let (session_id, response_code, schema_namespace, remaining_contracts) = if iso20 {
            let session_id = match request.session_id.len() {
                0 => crate::signed_data20::NO_SESSION.to_vec(),
                8 => request.session_id,
                _ => {
                    return Err(PncError::invalid(
                        "an ISO 15118-20 sessionID has exactly 8 bytes",
                    ));
                }
            };
            let ok = pnc_exi::iso20::ResponseCode::Ok.as_str();
            (session_id, ok, pnc_exi::iso20::NS_CM, 0)
        } else {
            let session_id = if request.session_id.is_empty() {
                signed_data::NO_SESSION.to_vec()
            } else {
                request.session_id
            };
            let ok = pnc_exi::iso2::ResponseCode::Ok.as_str();
            (
                session_id,
                ok,
                pnc_exi::iso2::NS_DEF,
                found.remaining_contracts,
            )
        };
        let exi_response = blocking({
            let signed = signed.clone();
            // Renders the -20 form for -20 data (RemainingContractCertificateChains 0).
            move || signed_data::render_exi(&signed, &session_id)
        })
        .await?;
        Ok(InstallResponse {
            exi_response,
            response_code: response_code.to_string(),
            emaid: signed.emaid,
            pcid: pcid.as_str().to_string(),
            v2g_root_fingerprint: signed.v2g_root_fingerprint,
            remaining_contracts,
            failure_reason: String::new(),
            schema_namespace: schema_namespace.to_string(),
        })
    }
}

#[tonic::async_trait]
impl Provisioning for ProvisioningService {
    async fn render_contract(
        &self,
        request: Request<RenderContractRequest>,
    ) -> Result<Response<InstallResponse>, Status> {
        let principal = pnc_proto::principal::from_metadata(request.metadata());
        let response = self
            .render_contract(principal.as_ref(), request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn list_cps_chains(
        &self,
        _request: Request<ListCpsChainsRequest>,
    ) -> Result<Response<ListCpsChainsResponse>, Status> {
        let chains = self
            .holdings
            .cps_signers
            .iter()
            .map(|cps| CpsChain {
                chain: cps.chain().into_iter().map(proto_certificate).collect(),
                v2g_root: Some(proto_certificate(&cps.root)),
                v2g_root_fingerprint: cps.root_fingerprint.clone(),
            })
            .collect();
        Ok(Response::new(ListCpsChainsResponse { chains }))
    }

    async fn generate_contract(
        &self,
        request: Request<GenerateContractRequest>,
    ) -> Result<Response<ContractResponse>, Status> {
        let principal = pnc_proto::principal::from_metadata(request.metadata());
        let response = self
            .generate_contract(principal.as_ref(), request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn sign_contract_data(
        &self,
        request: Request<SignContractDataRequest>,
    ) -> Result<Response<ContractResponse>, Status> {
        let principal = pnc_proto::principal::from_metadata(request.metadata());
        let response = self
            .sign_contract_data(principal.as_ref(), request.into_inner())
            .await?;
        Ok(Response::new(response))
    }

    async fn install(
        &self,
        request: Request<InstallRequest>,
    ) -> Result<Response<InstallResponse>, Status> {
        let principal = pnc_proto::principal::from_metadata(request.metadata());
        let response =
            crate::install::install(self, principal.as_ref(), request.into_inner()).await?;
        Ok(Response::new(response))
    }
}
