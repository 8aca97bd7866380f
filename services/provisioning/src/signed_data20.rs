//! ISO 15118-20 signed installation data (iso15118-notes §13.3, §13.5): one
//! `SignedInstallationData` per contract and CPS chain, signed once at registration with the
//! CPS leaf (ECDSA P-521 / SHA-512, a single reference [V2G20-1077], [V2G20-2674]; SECP521 or
//! X448 installation data by the vehicle's key) and rendered
//! per request with the session's SessionID, TimeStamp and RemainingContractCertificateChains,
//! none of which the signature covers.
//!
//! Stored in the registry's `SignedContractData` like the -2 form, per (PCID, eMAID, V2G
//! root), marked by `schema_namespace` (field layout in `contracts.proto`).

use pnc_common::PncError;
use pnc_exi::iso20::{
    CertificateChain, CertificateInstallationRes, EcdhCurve, EncryptedPrivateKey, EvseProcessing,
    Header, NS_CM, ResponseCode, SignedInstallationData,
};
use pnc_exi::signature::{self, C14N_EXI, DIGEST_SHA512, ECDSA_SHA512, SignatureError};
use pnc_exi::xmldsig::{Reference, Signature, SignedInfo};
use pnc_pki::Certificate;
use pnc_pki::key_transport::iso20::{Curve, SealedContractKey};
use pnc_proto::common::v1::Certificate as ProtoCertificate;
use pnc_proto::registry::v1::{SignedContractData, SignedReference};

use crate::pki::CpsSigner;

/// The `Id` of `SignedInstallationData`: the only Id in the answer, so any NCName is unique.
pub const SIGNED_INSTALLATION_DATA_ID: &str = "id1";

/// -20 SessionIDs are exactly 8 bytes; answers rendered outside a session carry zeros.
pub const NO_SESSION: [u8; 8] = [0; 8];

fn internal(what: &str, error: impl std::fmt::Display) -> PncError {
    tracing::error!(%error, "{what}");
    PncError::internal(what.to_string())
}

/// Whether stored signed data is the -20 form.
pub fn is_iso20(signed: &SignedContractData) -> bool {
    signed.schema_namespace == NS_CM
}

fn curve_of(encrypted_private_key: &[u8]) -> Option<Curve> {
    [Curve::Secp521, Curve::X448]
        .into_iter()
        .find(|curve| curve.encrypted_private_key_len() == encrypted_private_key.len())
}

fn chain(certificates: &[Certificate]) -> Result<CertificateChain, PncError> {
    let (leaf, sub_cas) = certificates
        .split_first()
        .ok_or_else(|| PncError::invalid("the certificate chain is empty"))?;
    Ok(CertificateChain {
        id: None,
        certificate: leaf.der().to_vec(),
        sub_certificates: sub_cas.iter().map(|cert| cert.der().to_vec()).collect(),
    })
}

fn chain_of(certificates: &[ProtoCertificate]) -> CertificateChain {
    let mut ders = certificates
        .iter()
        .map(|certificate| certificate.der.clone());
    CertificateChain {
        id: None,
        certificate: ders.next().unwrap_or_default(),
        sub_certificates: ders.collect(),
    }
}

fn proto_certificate(certificate: &Certificate) -> ProtoCertificate {
    ProtoCertificate {
        der: certificate.der().to_vec(),
    }
}

fn installation_data(
    contract_chain: CertificateChain,
    sealed_curve: Curve,
    encrypted_private_key: Vec<u8>,
    dh_public_key: Vec<u8>,
    id: &str,
) -> SignedInstallationData {
    let (ecdh_curve, encrypted_private_key) = match sealed_curve {
        Curve::Secp521 => (
            EcdhCurve::Secp521,
            EncryptedPrivateKey::Secp521(encrypted_private_key),
        ),
        Curve::X448 => (
            EcdhCurve::X448,
            EncryptedPrivateKey::X448(encrypted_private_key),
        ),
    };
    SignedInstallationData {
        id: id.to_string(),
        contract_certificate_chain: contract_chain,
        ecdh_curve,
        dh_public_key,
        encrypted_private_key,
    }
}

/// Signs the `SignedInstallationData` of one contract with the CPS leaf of `cps` (CPU work:
/// call from `spawn_blocking`) and checks the result as an EV would before storing it.
/// `contract_chain` is the contract leaf, Sub-CA 2, Sub-CA 1 (SubCertificates are mandatory
/// in -20's ContractCertificateChain).
pub fn sign(
    cps: &CpsSigner,
    emaid: &str,
    contract_chain: &[Certificate],
    sealed: &SealedContractKey,
) -> Result<SignedContractData, PncError> {
    if contract_chain.len() < 2 {
        return Err(PncError::invalid(
            "an ISO 15118-20 contract chain needs at least one Sub-CA",
        ));
    }
    let data = installation_data(
        chain(contract_chain)?,
        sealed.curve,
        sealed.encrypted_private_key.clone(),
        sealed.dh_public_key.clone(),
        SIGNED_INSTALLATION_DATA_ID,
    );
    let signer = cps.signer.clone();
    let exi_signer = move |signed_info_exi: &[u8]| -> Result<Vec<u8>, SignatureError> {
        signer
            .sign_raw(signed_info_exi)
            .map_err(|error| SignatureError::Signer(error.to_string()))
    };
    let signature = signature::sign_iso20_installation_data(&data, &exi_signer)
        .map_err(|error| internal("signing the installation data failed", error))?;
    let signed = SignedContractData {
        v2g_root_fingerprint: cps.root_fingerprint.clone(),
        cps_chain: cps.chain().into_iter().map(proto_certificate).collect(),
        contract_chain: contract_chain.iter().map(proto_certificate).collect(),
        encrypted_private_key: sealed.encrypted_private_key.clone(),
        dh_public_key: sealed.dh_public_key.clone(),
        emaid: emaid.to_string(),
        contract_chain_id: SIGNED_INSTALLATION_DATA_ID.to_string(),
        encrypted_private_key_id: String::new(),
        dh_public_key_id: String::new(),
        emaid_id: String::new(),
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
        schema_namespace: NS_CM.to_string(),
    };
    verify(&signed, &cps.leaf)?;
    Ok(signed)
}

/// The `ds:Signature` of stored -20 data; SignedInfo is fully determined by the reference
/// under the -20 profile.
pub fn signature_of(signed: &SignedContractData) -> Signature {
    Signature {
        id: None,
        signed_info: SignedInfo {
            id: None,
            canonicalization_method: C14N_EXI.to_string(),
            signature_method: ECDSA_SHA512.to_string(),
            hmac_output_length: None,
            references: signed
                .references
                .iter()
                .map(|reference| Reference {
                    id: None,
                    uri: Some(reference.uri.clone()),
                    type_: None,
                    transforms: Some(vec![C14N_EXI.to_string()]),
                    digest_method: DIGEST_SHA512.to_string(),
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

fn time_stamp() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or_default()
}

/// The positive CertificateInstallationRes for `session_id`.
pub fn installation_message(
    signed: &SignedContractData,
    session_id: &[u8],
    remaining_contract_certificate_chains: u8,
) -> Result<CertificateInstallationRes, PncError> {
    let curve = curve_of(&signed.encrypted_private_key).ok_or_else(|| {
        PncError::internal("stored -20 installation data has an encrypted key of unknown length")
    })?;
    Ok(CertificateInstallationRes {
        header: Header {
            session_id: session_id.to_vec(),
            time_stamp: time_stamp(),
            signature: Some(signature_of(signed)),
        },
        response_code: ResponseCode::Ok,
        evse_processing: EvseProcessing::Finished,
        cps_certificate_chain: chain_of(&signed.cps_chain),
        signed_installation_data: installation_data(
            chain_of(&signed.contract_chain),
            curve,
            signed.encrypted_private_key.clone(),
            signed.dh_public_key.clone(),
            &signed.contract_chain_id,
        ),
        remaining_contract_certificate_chains,
    })
}

/// -20 SessionIDs are 8 bytes; shorter ones (the -2 "no session" 00) are left-padded.
fn session_of(session_id: &[u8]) -> Vec<u8> {
    if session_id.len() >= NO_SESSION.len() {
        return session_id.to_vec();
    }
    let mut padded = vec![0; NO_SESSION.len() - session_id.len()];
    padded.extend_from_slice(session_id);
    padded
}

/// The EXI answer: no signing, only the header and the remaining count change per request.
pub fn render_exi(
    signed: &SignedContractData,
    session_id: &[u8],
    remaining_contract_certificate_chains: u8,
) -> Result<Vec<u8>, PncError> {
    installation_message(
        signed,
        &session_of(session_id),
        remaining_contract_certificate_chains,
    )?
    .encode()
    .map_err(|error| internal("encoding the -20 installation answer failed", error))
}

/// The signed message as XML without a SessionID, the -20 analogue of OPCP's `signedData`.
pub fn render_signed_xml(signed: &SignedContractData) -> Result<String, PncError> {
    let mut root = installation_message(signed, &NO_SESSION, 0)?
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

/// Verifies stored -20 data as an EV does: render, decode, re-encode the signed element,
/// compare the digest, verify the signature over the re-encoded SignedInfo with the CPS leaf.
pub fn verify(signed: &SignedContractData, cps_leaf: &Certificate) -> Result<(), PncError> {
    let exi = render_exi(signed, &NO_SESSION, 0)?;
    let decoded = pnc_exi::decode_document(pnc_exi::Schema::Iso20, &exi)
        .map_err(|error| internal("decoding the rendered -20 answer failed", error))?;
    let key = signature::public_key_from_cert_der(cps_leaf.der())
        .map_err(|error| internal("the cps leaf key is unusable", error))?;
    signature::verify_iso20_message(&decoded, &key)
        .map_err(|error| internal("-20 installation data does not verify", error))
}

/// A complete negative answer: every mandatory element present with schema-valid dummies
/// (DHPublicKey 133 and SECP521_EncryptedPrivateKey 94 zero bytes, a one-certificate
/// SubCertificates), no signature, the request's SessionID.
pub fn render_negative(
    session_id: &[u8],
    response_code: ResponseCode,
) -> Result<Vec<u8>, PncError> {
    let dummy_chain = |sub_certificates: Vec<Vec<u8>>| CertificateChain {
        id: None,
        certificate: vec![0x00],
        sub_certificates,
    };
    CertificateInstallationRes {
        header: Header {
            session_id: session_of(session_id),
            time_stamp: time_stamp(),
            signature: None,
        },
        response_code,
        evse_processing: EvseProcessing::Finished,
        cps_certificate_chain: dummy_chain(Vec::new()),
        signed_installation_data: SignedInstallationData {
            id: SIGNED_INSTALLATION_DATA_ID.to_string(),
            contract_certificate_chain: dummy_chain(vec![vec![0x00]]),
            ecdh_curve: EcdhCurve::Secp521,
            dh_public_key: vec![0; Curve::Secp521.dh_public_key_len()],
            encrypted_private_key: EncryptedPrivateKey::Secp521(vec![
                0;
                Curve::Secp521
                    .encrypted_private_key_len(
                    )
            ]),
        },
        remaining_contract_certificate_chains: 0,
    }
    .encode()
    .map_err(|error| internal("encoding a negative -20 answer failed", error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnc_exi::iso20::CertificateInstallationRes;
    use pnc_pki::{DevCert, DevPki, DevPkiOptions};

    fn signed_example(pki: &DevPki) -> SignedContractData {
        let cps = CpsSigner {
            leaf: pki.certificate(DevCert::Iso20CpsLeaf).clone(),
            sub_ca_2: pki.certificate(DevCert::Iso20CpsSubCa2).clone(),
            sub_ca_1: pki.certificate(DevCert::Iso20CpsSubCa1).clone(),
            root: pki.certificate(DevCert::Iso20V2gRoot).clone(),
            root_fingerprint: crate::pki::fingerprint(pki.certificate(DevCert::Iso20V2gRoot)),
            signer: pki.signer(DevCert::Iso20CpsLeaf),
        };
        let chain = [
            pki.certificate(DevCert::Iso20MoSubCa2).clone(),
            pki.certificate(DevCert::Iso20MoSubCa1).clone(),
        ];
        let sealed = SealedContractKey {
            curve: Curve::Secp521,
            encrypted_private_key: vec![7; 94],
            dh_public_key: vec![4; 133],
        };
        sign(&cps, "DEPNCC00000001", &chain, &sealed).expect("signs")
    }

    fn pki() -> DevPki {
        DevPki::generate(&DevPkiOptions {
            ocsp_signers: false,
            ..DevPkiOptions::default()
        })
        .expect("dev pki")
    }

    #[test]
    fn ok_rendered_answer_verifies_for_any_session_and_remaining_count() {
        let pki = pki();
        let signed = signed_example(&pki);
        assert!(is_iso20(&signed));
        assert_eq!(signed.references.len(), 1);
        assert_eq!(signed.references[0].sha256_digest.len(), 64, "SHA-512");
        assert_eq!(signed.signature_value.len(), 132, "P-521 r || s");
        let key = signature::public_key_from_cert_der(pki.certificate(DevCert::Iso20CpsLeaf).der())
            .expect("key");
        for (session, remaining) in [([0u8; 8], 0u8), ([1, 2, 3, 4, 5, 6, 7, 8], 7)] {
            let exi = render_exi(&signed, &session, remaining).expect("render");
            let root = pnc_exi::decode_document(pnc_exi::Schema::Iso20, &exi).expect("decode");
            signature::verify_iso20_message(&root, &key).expect("verifies");
            let res = CertificateInstallationRes::from_element(&root).expect("typed");
            assert_eq!(res.header.session_id, session);
            assert_eq!(res.remaining_contract_certificate_chains, remaining);
            assert_eq!(res.cps_certificate_chain.sub_certificates.len(), 2);
        }
        // The -2 "no session" 00 is widened to the 8 bytes -20 requires.
        let exi = crate::signed_data::render_exi(&signed, &crate::signed_data::NO_SESSION)
            .expect("render through the -2 entry point");
        let res = CertificateInstallationRes::decode(&exi).expect("a -20 answer");
        assert_eq!(res.header.session_id, NO_SESSION);
    }

    #[test]
    fn fail_tampered_installation_data_does_not_verify() {
        let pki = pki();
        let mut signed = signed_example(&pki);
        signed.encrypted_private_key[20] ^= 1;
        assert!(verify(&signed, pki.certificate(DevCert::Iso20CpsLeaf)).is_err());
    }

    #[test]
    fn ok_negative_answer_is_complete_and_unsigned() {
        let exi = render_negative(&[9; 8], ResponseCode::WarningNoContractMatchingPCIDFound)
            .expect("render");
        let res = CertificateInstallationRes::decode(&exi).expect("decodes");
        assert_eq!(res.header.session_id, vec![9; 8]);
        assert!(res.header.signature.is_none());
        assert_eq!(
            res.response_code,
            ResponseCode::WarningNoContractMatchingPCIDFound
        );
        assert_eq!(res.signed_installation_data.dh_public_key.len(), 133);
    }
}
