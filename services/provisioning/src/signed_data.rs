//! Signed contract data: the four signed elements of an ISO 15118-2
//! CertificateInstallationRes and their CPS signature (iso15118-notes §6.3, §6.6), made once at
//! registration and rendered per request with the session's SessionID.
//!
//! The signature covers only the four body elements, never the header, so the SessionID can
//! change without re-signing (notes §4).

use pnc_common::PncError;
use pnc_exi::iso2::{
    Body, CertificateChain, CertificateInstallationRes, CertificateUpdateRes, IdBytes, IdString,
    MessageHeader, ResponseCode, V2gMessage,
};
use pnc_exi::signature::{self, C14N_EXI, DIGEST_SHA256, ECDSA_SHA256, SignatureError};
use pnc_exi::xmldsig::{Reference, Signature, SignedInfo};
use pnc_pki::Certificate;
use pnc_proto::common::v1::Certificate as ProtoCertificate;
use pnc_proto::registry::v1::{SignedContractData, SignedReference};

use crate::pki::CpsSigner;

/// Short Ids, as RISE-V2G advises for embedded EVCCs (notes §6.2): valid NCNames, unique.
pub const CONTRACT_CHAIN_ID: &str = "id1";
pub const ENCRYPTED_PRIVATE_KEY_ID: &str = "id2";
pub const DH_PUBLIC_KEY_ID: &str = "id3";
pub const EMAID_ID: &str = "id4";

/// The SessionID of answers rendered outside a session (OPNC `certificateInstallationRes`,
/// Hubject's stored examples carry `00` as well, notes §4).
pub const NO_SESSION: [u8; 1] = [0x00];

fn internal(what: &str, error: impl std::fmt::Display) -> PncError {
    tracing::error!(%error, "{what}");
    PncError::internal(what.to_string())
}

/// The contract material an EV receives, before signing.
pub struct ContractElements<'a> {
    pub emaid: &'a str,
    /// Contract leaf, Sub-CA 2, Sub-CA 1.
    pub contract_chain: &'a [Certificate],
    pub encrypted_private_key: &'a [u8],
    pub dh_public_key: &'a [u8],
}

fn typed_elements(
    elements: &ContractElements<'_>,
) -> Result<(CertificateChain, IdBytes, IdBytes, IdString), PncError> {
    let (leaf, sub_cas) = elements
        .contract_chain
        .split_first()
        .ok_or_else(|| PncError::invalid("the contract chain is empty"))?;
    Ok((
        CertificateChain {
            id: Some(CONTRACT_CHAIN_ID.to_string()),
            certificate: leaf.der().to_vec(),
            sub_certificates: sub_cas.iter().map(|cert| cert.der().to_vec()).collect(),
        },
        IdBytes {
            id: ENCRYPTED_PRIVATE_KEY_ID.to_string(),
            value: elements.encrypted_private_key.to_vec(),
        },
        IdBytes {
            id: DH_PUBLIC_KEY_ID.to_string(),
            value: elements.dh_public_key.to_vec(),
        },
        IdString {
            id: EMAID_ID.to_string(),
            value: elements.emaid.to_string(),
        },
    ))
}

fn proto_certificate(certificate: &Certificate) -> ProtoCertificate {
    ProtoCertificate {
        der: certificate.der().to_vec(),
    }
}

/// Signs the four elements with the CPS leaf of `cps` (CPU work: call from
/// `spawn_blocking`) and checks the result the way an EV would before handing it out.
pub fn sign(
    cps: &CpsSigner,
    elements: &ContractElements<'_>,
) -> Result<SignedContractData, PncError> {
    let (contract_chain, encrypted_private_key, dh_public_key, emaid) = typed_elements(elements)?;
    let signer = cps.signer.clone();
    let exi_signer = move |signed_info_exi: &[u8]| -> Result<Vec<u8>, SignatureError> {
        signer
            .sign_raw(signed_info_exi)
            .map_err(|error| SignatureError::Signer(error.to_string()))
    };
    let signature = signature::sign_iso2_certificate_response(
        &contract_chain,
        &encrypted_private_key,
        &dh_public_key,
        &emaid,
        &exi_signer,
    )
    .map_err(|error| internal("signing contract data failed", error))?;
    let signed = SignedContractData {
        v2g_root_fingerprint: cps.root_fingerprint.clone(),
        cps_chain: cps.chain().into_iter().map(proto_certificate).collect(),
        contract_chain: elements
            .contract_chain
            .iter()
            .map(proto_certificate)
            .collect(),
        encrypted_private_key: elements.encrypted_private_key.to_vec(),
        dh_public_key: elements.dh_public_key.to_vec(),
        emaid: elements.emaid.to_string(),
        contract_chain_id: CONTRACT_CHAIN_ID.to_string(),
        encrypted_private_key_id: ENCRYPTED_PRIVATE_KEY_ID.to_string(),
        dh_public_key_id: DH_PUBLIC_KEY_ID.to_string(),
        emaid_id: EMAID_ID.to_string(),
        references: signature
            .signed_info
            .references
            .iter()
            .map(|reference| SignedReference {
                uri: reference.uri.clone().unwrap_or_default(),
                sha256_digest: reference.digest_value.clone(),
            })
            .collect(),
        signature_value: signature.signature_value,
        v2g_root_distinguished_name: crate::service::rfc4514(&cps.root),
        schema_namespace: String::new(),
    };
    // [notes §6.6 step 5] Self-check before anything leaves pnc.
    verify(&signed, &cps.leaf)?;
    Ok(signed)
}

/// The `ds:Signature` of stored signed data; SignedInfo is fully determined by the
/// references under the ISO 15118-2 profile.
pub fn signature_of(signed: &SignedContractData) -> Signature {
    Signature {
        id: None,
        signed_info: SignedInfo {
            id: None,
            canonicalization_method: C14N_EXI.to_string(),
            signature_method: ECDSA_SHA256.to_string(),
            hmac_output_length: None,
            references: signed
                .references
                .iter()
                .map(|reference| Reference {
                    id: None,
                    uri: Some(reference.uri.clone()),
                    type_: None,
                    transforms: Some(vec![C14N_EXI.to_string()]),
                    digest_method: DIGEST_SHA256.to_string(),
                    digest_value: reference.sha256_digest.clone(),
                })
                .collect(),
        },
        signature_value: signed.signature_value.clone(),
        signature_value_id: None,
        has_key_info: false,
        has_object: false,
    }
}

fn chain_of(certificates: &[ProtoCertificate], id: Option<String>) -> CertificateChain {
    let mut ders = certificates
        .iter()
        .map(|certificate| certificate.der.clone());
    CertificateChain {
        id,
        certificate: ders.next().unwrap_or_default(),
        sub_certificates: ders.collect(),
    }
}

/// The positive CertificateInstallationRes message for `session_id`.
pub fn installation_message(signed: &SignedContractData, session_id: &[u8]) -> V2gMessage {
    V2gMessage {
        header: MessageHeader {
            session_id: session_id.to_vec(),
            notification: None,
            signature: Some(signature_of(signed)),
        },
        body: Body::CertificateInstallationRes(CertificateInstallationRes {
            response_code: ResponseCode::Ok,
            sa_provisioning_certificate_chain: chain_of(&signed.cps_chain, None),
            contract_signature_cert_chain: chain_of(
                &signed.contract_chain,
                Some(signed.contract_chain_id.clone()),
            ),
            contract_signature_encrypted_private_key: IdBytes {
                id: signed.encrypted_private_key_id.clone(),
                value: signed.encrypted_private_key.clone(),
            },
            dh_public_key: IdBytes {
                id: signed.dh_public_key_id.clone(),
                value: signed.dh_public_key.clone(),
            },
            emaid: IdString {
                id: signed.emaid_id.clone(),
                value: signed.emaid.clone(),
            },
        }),
    }
}

/// The EXI answer to an EV: no signing, only the header changes per session.
pub fn render_exi(signed: &SignedContractData, session_id: &[u8]) -> Result<Vec<u8>, PncError> {
    if crate::signed_data20::is_iso20(signed) {
        return crate::signed_data20::render_exi(signed, session_id, 0);
    }
    installation_message(signed, session_id)
        .encode()
        .map_err(|error| internal("encoding the installation answer failed", error))
}

/// A CertificateInstallationRes body turned into the CertificateUpdateRes with the same six
/// elements (notes §3.5).
fn as_update(message: V2gMessage, retry_counter: Option<i16>) -> V2gMessage {
    let body = match message.body {
        Body::CertificateInstallationRes(res) => Body::CertificateUpdateRes(CertificateUpdateRes {
            response_code: res.response_code,
            sa_provisioning_certificate_chain: res.sa_provisioning_certificate_chain,
            contract_signature_cert_chain: res.contract_signature_cert_chain,
            contract_signature_encrypted_private_key: res.contract_signature_encrypted_private_key,
            dh_public_key: res.dh_public_key,
            emaid: res.emaid,
            retry_counter,
        }),
        other => other,
    };
    V2gMessage {
        header: message.header,
        body,
    }
}

/// The positive CertificateUpdateRes for `session_id` (the four elements are signed alike).
pub fn render_update_exi(
    signed: &SignedContractData,
    session_id: &[u8],
) -> Result<Vec<u8>, PncError> {
    as_update(installation_message(signed, session_id), None)
        .encode()
        .map_err(|error| internal("encoding the update answer failed", error))
}

/// A complete negative CertificateUpdateRes; `retry_counter` as the notes describe (§3.5):
/// days until a retry, 0 at the next opportunity, -1 never.
pub fn render_negative_update(
    session_id: &[u8],
    response_code: ResponseCode,
    retry_counter: Option<i16>,
) -> Result<Vec<u8>, PncError> {
    let installation = render_negative(session_id, response_code)?;
    let message = V2gMessage::decode(&installation)
        .map_err(|error| internal("decoding a negative answer failed", error))?;
    as_update(message, retry_counter)
        .encode()
        .map_err(|error| internal("encoding a negative update answer failed", error))
}

/// The CPS's XML form (OPCP `signedData`): the signed message without a SessionID, as
/// Hubject's CPS returns it (ecosystem-apis §2.8).
pub fn render_signed_xml(signed: &SignedContractData) -> Result<String, PncError> {
    if crate::signed_data20::is_iso20(signed) {
        return crate::signed_data20::render_signed_xml(signed);
    }
    let mut root = installation_message(signed, &NO_SESSION)
        .to_element()
        .map_err(|error| internal("building the signed xml failed", error))?;
    for node in &mut root.children {
        if let pnc_exi::Node::Element(header) = node
            && header.name.local == "Header"
        {
            header.children.retain(|child| {
                !matches!(child, pnc_exi::Node::Element(element) if element.name.local == "SessionID")
            });
        }
    }
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>{}",
        pnc_exi::xml::write(&root)
    ))
}

/// Verifies stored signed data as an EV does: re-encode the four elements, compare digests,
/// verify the signature over the re-encoded SignedInfo with the CPS leaf key.
pub fn verify(signed: &SignedContractData, cps_leaf: &Certificate) -> Result<(), PncError> {
    let exi = render_exi(signed, &NO_SESSION)?;
    let decoded = pnc_exi::decode_document(pnc_exi::Schema::Iso2, &exi)
        .map_err(|error| internal("decoding the rendered answer failed", error))?;
    let key = signature::public_key_from_cert_der(cps_leaf.der())
        .map_err(|error| internal("the cps leaf key is unusable", error))?;
    signature::verify_iso2_message(&decoded, &key)
        .map_err(|error| internal("signed contract data does not verify", error))
}

/// A complete negative answer: every mandatory element present with schema-valid dummies
/// (unique NCName Ids, a 14-character eMAID), no signature, the request's SessionID
/// (notes §8.3).
pub fn render_negative(
    session_id: &[u8],
    response_code: ResponseCode,
) -> Result<Vec<u8>, PncError> {
    let dummy_chain = |id: Option<&str>| CertificateChain {
        id: id.map(str::to_string),
        certificate: vec![0x00],
        sub_certificates: Vec::new(),
    };
    let message = V2gMessage {
        header: MessageHeader {
            session_id: session_id.to_vec(),
            notification: None,
            signature: None,
        },
        body: Body::CertificateInstallationRes(CertificateInstallationRes {
            response_code,
            sa_provisioning_certificate_chain: dummy_chain(None),
            contract_signature_cert_chain: dummy_chain(Some(CONTRACT_CHAIN_ID)),
            contract_signature_encrypted_private_key: IdBytes {
                id: ENCRYPTED_PRIVATE_KEY_ID.to_string(),
                value: vec![0x00],
            },
            dh_public_key: IdBytes {
                id: DH_PUBLIC_KEY_ID.to_string(),
                value: vec![0x00],
            },
            emaid: IdString {
                id: EMAID_ID.to_string(),
                value: "ZZ000000000000".to_string(),
            },
        }),
    };
    message
        .encode()
        .map_err(|error| internal("encoding a negative answer failed", error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnc_pki::{DevCert, DevPki, DevPkiOptions};

    fn cps_signer(pki: &DevPki) -> CpsSigner {
        CpsSigner {
            leaf: pki.certificate(DevCert::CpsLeaf).clone(),
            sub_ca_2: pki.certificate(DevCert::CpsSubCa2).clone(),
            sub_ca_1: pki.certificate(DevCert::CpsSubCa1).clone(),
            root: pki.certificate(DevCert::V2gRoot).clone(),
            root_fingerprint: crate::pki::fingerprint(pki.certificate(DevCert::V2gRoot)),
            signer: pki.signer(DevCert::CpsLeaf),
        }
    }

    fn signed_example(pki: &DevPki) -> SignedContractData {
        let chain = [
            pki.certificate(DevCert::MoSubCa2).clone(),
            pki.certificate(DevCert::MoSubCa1).clone(),
        ];
        sign(
            &cps_signer(pki),
            &ContractElements {
                emaid: "DEPNCC00000001",
                contract_chain: &chain,
                encrypted_private_key: &[7; 48],
                dh_public_key: &[4; 65],
            },
        )
        .expect("signs")
    }

    #[test]
    fn ok_rendered_answer_verifies_for_any_session() {
        let pki = DevPki::generate(&DevPkiOptions {
            ocsp_signers: false,
            ..DevPkiOptions::default()
        })
        .expect("dev pki");
        let signed = signed_example(&pki);
        assert_eq!(signed.references.len(), 4);
        let key = signature::public_key_from_cert_der(pki.certificate(DevCert::CpsLeaf).der())
            .expect("key");
        for session in [&[0x00][..], &[1, 2, 3, 4, 5, 6, 7, 8][..]] {
            let exi = render_exi(&signed, session).expect("render");
            let root = pnc_exi::decode_document(pnc_exi::Schema::Iso2, &exi).expect("decode");
            signature::verify_iso2_message(&root, &key).expect("verifies");
            let message = V2gMessage::from_element(&root).expect("typed");
            assert_eq!(message.header.session_id, session);
        }
    }

    #[test]
    fn fail_tampered_signed_data_does_not_verify() {
        let pki = DevPki::generate(&DevPkiOptions {
            ocsp_signers: false,
            ..DevPkiOptions::default()
        })
        .expect("dev pki");
        let mut signed = signed_example(&pki);
        signed.emaid = "DEPNCC00000002".to_string();
        assert!(verify(&signed, pki.certificate(DevCert::CpsLeaf)).is_err());
    }

    #[test]
    fn ok_negative_answer_is_complete_and_unsigned() {
        let exi =
            render_negative(&[9; 8], ResponseCode::FailedNoCertificateAvailable).expect("render");
        let message = V2gMessage::decode(&exi).expect("decodes");
        assert_eq!(message.header.session_id, vec![9; 8]);
        assert!(message.header.signature.is_none());
        let Body::CertificateInstallationRes(res) = message.body else {
            panic!("not an installation answer");
        };
        assert_eq!(
            res.response_code,
            ResponseCode::FailedNoCertificateAvailable
        );
        assert_eq!(res.emaid.value.len(), 14);
    }
}
