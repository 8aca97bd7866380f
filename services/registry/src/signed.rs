//! Contract data signed by a CPS outside pnc (OPCP `PUT /v1/ccp/signedContractData`, OPNC
//! `PUT /opnc/v1/ccp/signedcontractdata`) and deliveries of contract data to OEM back ends
//! (`pnc.registry.v1.ContractDataPool`).
//!
//! pnc stores such data only after checking it the way an EV would: the CPS signature over
//! all four signed elements, the CPS chain to a V2G root of the pool and the contract chain
//! to an MO or V2G root, at the validity clock's time.

use pnc_common::PncError;
use pnc_common::ids::{Emaid, Pcid};
use pnc_exi::Element;
use pnc_exi::iso2::{CertificateChain, CertificateInstallationRes, ResponseCode};
use pnc_exi::signature;
use pnc_exi::xmldsig::Signature;
use pnc_proto::common::v1::Certificate as CertificateMessage;
use pnc_proto::principal::Role;
use pnc_proto::registry::v1::contract_data_pool_server::ContractDataPool;
use pnc_proto::registry::v1::{
    Contract, ContractMode, PutContractRequest, RecordDeliveryToOemRequest,
    RecordDeliveryToOemResponse, SignedContractData, SignedReference,
    StoreSignedContractDataRequest,
};
use pnc_proto::truststore::v1::{ListRootsRequest, RootType};
use tonic::{Request, Response, Status};

use crate::RegistryCore;
use crate::access::Caller;
use crate::contracts::parse_fingerprint;
use crate::events::{Audience, Event};
use crate::pcp::{parse_certificate, path_error, sha256_hex_upper};

/// A signed CertificateInstallationRes is about 4.5 kB as EXI and 8 kB as XML (four
/// certificates of at most 800 bytes each, [V2G2-010], in base64); more is not one.
pub const MAX_SIGNED_MESSAGE: usize = 24 * 1024;

const NS_MSG_DEF: &str = "urn:iso:15118:2:2013:MsgDef";
const NS_MSG_BODY: &str = "urn:iso:15118:2:2013:MsgBody";

/// The signed message, decoded from EXI or XML.
struct SignedMessage {
    /// The whole `V2G_Message` tree the signature is verified on.
    root: Element,
    signature: Signature,
    response: CertificateInstallationRes,
}

fn invalid(what: impl std::fmt::Display) -> PncError {
    PncError::invalid(format!("signed contract data: {what}"))
}

/// Decodes a `V2G_Message` sent as XML (what OPCP's CPS returns) or EXI (OPNC's
/// `certificateInstallationRes`).
fn decode_message(bytes: &[u8]) -> Result<SignedMessage, PncError> {
    if bytes.is_empty() {
        return Err(invalid("the message is empty"));
    }
    if bytes.len() > MAX_SIGNED_MESSAGE {
        return Err(invalid(format!(
            "the message is larger than {MAX_SIGNED_MESSAGE} bytes"
        )));
    }
    let text_start = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .map(|start| &bytes[start..])
        .unwrap_or_default();
    let text_start = text_start
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(text_start);
    let root = if text_start.starts_with(b"<") {
        let text = std::str::from_utf8(text_start).map_err(|_| invalid("the XML is not UTF-8"))?;
        pnc_exi::xml::parse(text).map_err(|error| invalid(format!("invalid XML: {error}")))?
    } else {
        pnc_exi::decode_document(pnc_exi::Schema::Iso2, bytes)
            .map_err(|error| invalid(format!("EXI format is invalid: {error}")))?
    };
    if root.name.ns != NS_MSG_DEF || root.name.local != "V2G_Message" {
        return Err(invalid(format!(
            "the document is a {} (expected an ISO 15118-2 V2G_Message)",
            root.name.local
        )));
    }
    let header = root
        .find("Header")
        .ok_or_else(|| invalid("the message has no Header"))?;
    let signature_element = header
        .find("Signature")
        .ok_or_else(|| invalid("the message is not signed (no Signature in the Header)"))?;
    let signature = Signature::from_element(signature_element)
        .map_err(|error| invalid(format!("the Signature is malformed: {error}")))?;
    let body = root
        .find("Body")
        .and_then(|body| body.elements().next())
        .ok_or_else(|| invalid("the message has an empty Body"))?;
    if body.name.ns != NS_MSG_BODY || body.name.local != "CertificateInstallationRes" {
        return Err(invalid(format!(
            "the Body holds a {} (expected a CertificateInstallationRes)",
            body.name.local
        )));
    }
    let response = CertificateInstallationRes::from_element(body).map_err(|error| {
        invalid(format!(
            "the CertificateInstallationRes is malformed: {error}"
        ))
    })?;
    Ok(SignedMessage {
        root,
        signature,
        response,
    })
}

fn chain_certificates(chain: &CertificateChain) -> Vec<CertificateMessage> {
    std::iter::once(&chain.certificate)
        .chain(chain.sub_certificates.iter())
        .map(|der| CertificateMessage { der: der.clone() })
        .collect()
}

/// The references must cover exactly the four elements an EV relies on [V2G2-771]: a
/// signature over fewer would let the others be swapped.
fn check_references(
    signature: &Signature,
    response: &CertificateInstallationRes,
) -> Result<(), PncError> {
    let Some(contract_chain_id) = response.contract_signature_cert_chain.id.as_deref() else {
        return Err(invalid("ContractSignatureCertChain has no Id"));
    };
    let mut wanted = [
        contract_chain_id,
        response
            .contract_signature_encrypted_private_key
            .id
            .as_str(),
        response.dh_public_key.id.as_str(),
        response.emaid.id.as_str(),
    ]
    .map(|id| format!("#{id}"));
    wanted.sort();
    let mut referenced: Vec<String> = signature
        .signed_info
        .references
        .iter()
        .map(|reference| reference.uri.clone().unwrap_or_default())
        .collect();
    referenced.sort();
    if referenced != wanted {
        return Err(invalid(format!(
            "the signature must reference exactly the contract chain, the encrypted private \
             key, the DH public key and the eMAID ({}), it references {}",
            wanted.join(", "),
            referenced.join(", ")
        )));
    }
    Ok(())
}

impl RegistryCore {
    /// The DER of the active pool roots of `types`, with their fingerprints and IDs.
    async fn pool_roots(
        &self,
        types: &[RootType],
    ) -> Result<Vec<(Vec<u8>, String, String)>, PncError> {
        let mut roots = Vec::new();
        for root_type in types {
            let listed = self
                .truststore()
                .list_roots(ListRootsRequest {
                    root_type: *root_type as i32,
                    ..ListRootsRequest::default()
                })
                .await
                .map_err(|status| {
                    PncError::unavailable(format!(
                        "cannot read the pool's roots from the truststore: {}",
                        PncError::from(status).message
                    ))
                })?
                .into_inner()
                .roots;
            for root in listed
                .into_iter()
                .filter(|root| !root.revoked && !root.expired)
            {
                if let Some(certificate) = root.certificate {
                    roots.push((certificate.der, root.sha256_fingerprint, root.id));
                }
            }
        }
        Ok(roots)
    }

    /// Checks an eMSP's signed contract data and stores it as its contract.
    pub async fn store_signed_contract_data(
        &self,
        caller: &Caller,
        request: StoreSignedContractDataRequest,
    ) -> Result<Contract, PncError> {
        caller.require_role(&[Role::Emsp])?;
        let emaid = Emaid::parse_checked(&request.emaid, self.config.enforce_emaid_check_digit)?;
        let pcid = Pcid::parse(&request.pcid)?;
        caller.require_provider_of(&emaid)?;
        let namespace = match request.xsd_msg_def_namespace.trim() {
            "" => crate::ISO2_NAMESPACE.to_string(),
            given => crate::normalise_namespace(given)?,
        };
        if namespace != crate::ISO2_NAMESPACE {
            return Err(PncError::invalid(
                "xsdMsgDefNamespace: ISO 15118-20 contract data is not supported yet",
            ));
        }
        let message = decode_message(&request.signed_message)?;
        let response = &message.response;
        if response.response_code != ResponseCode::Ok {
            return Err(invalid(format!(
                "the ResponseCode is {} (only a positive answer carries a contract)",
                response.response_code.as_str()
            )));
        }
        let signed_emaid = Emaid::parse(&response.emaid.value)
            .map_err(|error| invalid(format!("its eMAID: {error}")))?;
        if !signed_emaid.same_account(&emaid) {
            return Err(invalid(format!(
                "it carries eMAID {signed_emaid}, the request names {emaid}"
            )));
        }
        check_references(&message.signature, response)?;
        signature::check_structure(&message.signature, signature::Profile::Iso2)
            .map_err(|error| invalid(format!("the Signature is not ISO 15118-2's: {error}")))?;

        let cps_chain = chain_certificates(&response.sa_provisioning_certificate_chain);
        if cps_chain.len() > 3 {
            return Err(invalid(
                "SAProvisioningCertificateChain holds more than the CPS leaf and two Sub-CAs",
            ));
        }
        let cps_leaf = parse_certificate("the CPS certificate", &cps_chain[0].der)?;
        for (index, certificate) in cps_chain.iter().enumerate().skip(1) {
            parse_certificate(&format!("CPS Sub-CA #{index}"), &certificate.der)?;
        }
        let key = signature::public_key_from_cert_der(cps_leaf.der())
            .map_err(|error| invalid(format!("the CPS certificate's key: {error}")))?;
        signature::verify_iso2_message(&message.root, &key).map_err(|error| {
            invalid(format!(
                "the CPS signature does not verify with the CPS certificate: {error}"
            ))
        })?;

        // The CPS chain must end at a V2G root of the pool (that root names the data).
        let at = self.validity_now();
        let v2g_roots = self.pool_roots(&[RootType::V2g]).await?;
        let anchors: Vec<&[u8]> = v2g_roots.iter().map(|(der, _, _)| der.as_slice()).collect();
        let cps_intermediates: Vec<&[u8]> = cps_chain[1..]
            .iter()
            .map(|certificate| certificate.der.as_slice())
            .collect();
        let cps_path = pnc_pki::validate_path(cps_leaf.der(), &cps_intermediates, &anchors, at)
            .map_err(|error| path_error(error, "V2G"))?;
        let root_fingerprint = cps_path
            .certificates
            .last()
            .map(|root| sha256_hex_upper(root.der()))
            .ok_or_else(|| PncError::internal("a validated path without a root"))?;
        let selector = request.cps_v2g_root_selector.trim();
        if !selector.is_empty() {
            let chosen = v2g_roots.iter().find(|(_, fingerprint, id)| {
                fingerprint.eq_ignore_ascii_case(&root_fingerprint)
                    && (fingerprint.eq_ignore_ascii_case(selector)
                        || id.eq_ignore_ascii_case(selector))
            });
            if chosen.is_none() {
                return Err(invalid(format!(
                    "the CPS chain ends at the V2G root {root_fingerprint}, not at \
                     cpsV2GRootCertificateFingerprint {}",
                    selector.chars().take(70).collect::<String>()
                )));
            }
        }

        // The contract chain must reach an MO or V2G root, and be valid now.
        let contract_chain = chain_certificates(&response.contract_signature_cert_chain);
        if contract_chain.len() > 3 {
            return Err(invalid(
                "ContractSignatureCertChain holds more than the contract and two Sub-CAs",
            ));
        }
        let contract_leaf = parse_certificate("the contract certificate", &contract_chain[0].der)?;
        let contract_roots = self.pool_roots(&[RootType::Mo, RootType::V2g]).await?;
        let contract_anchors: Vec<&[u8]> = contract_roots
            .iter()
            .map(|(der, _, _)| der.as_slice())
            .collect();
        let contract_intermediates: Vec<&[u8]> = contract_chain[1..]
            .iter()
            .map(|certificate| certificate.der.as_slice())
            .collect();
        pnc_pki::validate_path(
            contract_leaf.der(),
            &contract_intermediates,
            &contract_anchors,
            at,
        )
        .map_err(|error| match error {
            pnc_pki::PathError::Expired { .. } => PncError::new(
                pnc_proto::error::ErrorKind::CertificateExpired,
                format!("The validUntil date of contract certificate is in the past ({error})"),
            ),
            other => path_error(other, "MO or V2G"),
        })?;

        let signed = SignedContractData {
            v2g_root_fingerprint: parse_fingerprint(&root_fingerprint)?,
            cps_chain,
            contract_chain: contract_chain.clone(),
            encrypted_private_key: response
                .contract_signature_encrypted_private_key
                .value
                .clone(),
            dh_public_key: response.dh_public_key.value.clone(),
            emaid: response.emaid.value.clone(),
            contract_chain_id: response
                .contract_signature_cert_chain
                .id
                .clone()
                .unwrap_or_default(),
            encrypted_private_key_id: response.contract_signature_encrypted_private_key.id.clone(),
            dh_public_key_id: response.dh_public_key.id.clone(),
            emaid_id: response.emaid.id.clone(),
            references: message
                .signature
                .signed_info
                .references
                .iter()
                .map(|reference| SignedReference {
                    uri: reference.uri.clone().unwrap_or_default(),
                    sha256_digest: reference.digest_value.clone(),
                })
                .collect(),
            signature_value: message.signature.signature_value.clone(),
            v2g_root_distinguished_name: String::new(),
            // Uploads are ISO 15118-2 answers (the -20 namespaces are refused above).
            schema_namespace: String::new(),
        };
        // Data under other V2G roots for the same contract certificate stays; data for
        // another certificate is replaced.
        let new_root = signed.v2g_root_fingerprint.clone();
        let mut signed_data = vec![signed];
        let pcid_key = pcid.lookup_key();
        let mut connection = self
            .database
            .pool()
            .acquire()
            .await
            .map_err(pnc_common::db::map_sqlx_error)?;
        let existing = self
            .contracts_of_pcid(&mut connection, &pcid_key, true)
            .await?
            .into_iter()
            .find(|contract| {
                Emaid::parse(&contract.emaid).is_ok_and(|stored| stored.same_account(&emaid))
            });
        if let Some(existing) = existing
            && !existing.cancelled
            && existing.contract_chain.first() == contract_chain.first()
        {
            let kept = self
                .signed_data_of(&mut connection, &pcid_key, emaid.lookup_key(), None)
                .await?
                .into_iter()
                .filter(|data| data.v2g_root_fingerprint != new_root);
            signed_data.extend(kept);
        }
        drop(connection);
        let contract = Contract {
            emaid: emaid.as_str().to_string(),
            pcid: pcid.as_str().to_string(),
            is_default: false,
            mode: ContractMode::EmspPki as i32,
            contract_chain,
            contract_begins: contract_leaf.not_before().unix_timestamp(),
            contract_ends: contract_leaf.not_after().unix_timestamp(),
            cancelled: false,
            signed_data,
            certificate_not_before: 0,
            certificate_not_after: 0,
        };
        self.put_contract(
            caller,
            PutContractRequest {
                contract: Some(contract),
                issued: None,
                renews_certificate_fingerprint: String::new(),
            },
        )
        .await
    }

    /// Emits `mo.contract.delivered.to.oem` after an OEM back end fetched a contract.
    pub async fn record_delivery_to_oem(
        &self,
        caller: &Caller,
        request: RecordDeliveryToOemRequest,
    ) -> Result<usize, PncError> {
        caller.require_role(&[Role::Oem])?;
        let pcid = Pcid::parse(&request.pcid)?;
        let emaid = Emaid::parse(&request.emaid)?;
        caller.require_wmi_of(&pcid)?;
        let mut transaction = self
            .database
            .pool()
            .begin()
            .await
            .map_err(pnc_common::db::map_sqlx_error)?;
        let contract = self
            .contracts_of_pcid(&mut transaction, &pcid.lookup_key(), false)
            .await?
            .into_iter()
            .find(|contract| {
                Emaid::parse(&contract.emaid).is_ok_and(|stored| stored.same_account(&emaid))
            })
            .ok_or_else(|| PncError::not_found(format!("no contract {emaid} on PCID {pcid}")))?;
        let mut event = Event::contract(
            "mo.contract.delivered.to.oem",
            Audience::Emsp(emaid.provider_id()),
            &emaid,
            &pcid,
            contract
                .contract_chain
                .first()
                .map(|leaf| leaf.der.as_slice()),
        );
        let fingerprint = request.v2g_root_fingerprint.trim();
        if !fingerprint.is_empty() {
            event.payload["cpsSignerRootFingerprint"] =
                serde_json::Value::String(fingerprint.to_ascii_lowercase());
        }
        let queued = crate::events::emit(&mut transaction, &[event]).await?;
        transaction
            .commit()
            .await
            .map_err(pnc_common::db::map_sqlx_error)?;
        tracing::info!(pcid = %pcid, emaid = %emaid, queued, "contract delivered to its OEM");
        Ok(queued)
    }
}

pub struct ContractDataPoolService {
    core: RegistryCore,
}

impl ContractDataPoolService {
    pub fn new(core: RegistryCore) -> ContractDataPoolService {
        ContractDataPoolService { core }
    }
}

#[tonic::async_trait]
impl ContractDataPool for ContractDataPoolService {
    async fn store_signed_contract_data(
        &self,
        request: Request<StoreSignedContractDataRequest>,
    ) -> Result<Response<Contract>, Status> {
        let caller = Caller::of(&request);
        Ok(Response::new(
            self.core
                .store_signed_contract_data(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn record_delivery_to_oem(
        &self,
        request: Request<RecordDeliveryToOemRequest>,
    ) -> Result<Response<RecordDeliveryToOemResponse>, Status> {
        let caller = Caller::of(&request);
        let queued = self
            .core
            .record_delivery_to_oem(&caller, request.into_inner())
            .await?;
        Ok(Response::new(RecordDeliveryToOemResponse {
            queued: u32::try_from(queued).unwrap_or(u32::MAX),
        }))
    }
}
