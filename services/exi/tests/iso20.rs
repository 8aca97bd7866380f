//! ISO 15118-20 typed messages and the single-reference P-521/SHA-512 signature.

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use pnc_exi::iso20::*;
use pnc_exi::signature::{self, Profile, SignatureError};
use pnc_exi::{Schema, decode_document};

fn res() -> CertificateInstallationRes {
    CertificateInstallationRes {
        header: Header {
            session_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
            time_stamp: 1_700_000_000,
            signature: None,
        },
        response_code: ResponseCode::Ok,
        evse_processing: EvseProcessing::Finished,
        cps_certificate_chain: CertificateChain {
            id: None,
            certificate: vec![0x30; 700],
            sub_certificates: vec![vec![0x31; 650]],
        },
        signed_installation_data: SignedInstallationData {
            id: "SID1".into(),
            contract_certificate_chain: CertificateChain {
                id: None,
                certificate: vec![0x30; 600],
                sub_certificates: vec![vec![1; 640], vec![2; 640]],
            },
            ecdh_curve: EcdhCurve::Secp521,
            dh_public_key: vec![4; 133],
            encrypted_private_key: EncryptedPrivateKey::Secp521(vec![7; 94]),
        },
        remaining_contract_certificate_chains: 0,
    }
}

#[test]
fn iso20_res_sign_encode_decode_verify() {
    let group = EcGroup::from_curve_name(Nid::SECP521R1).unwrap();
    let sk = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let pk = PKey::public_key_from_pem(&sk.public_key_to_pem().unwrap()).unwrap();
    let signer = signature::OpensslSigner::new(&sk, Profile::Iso20).unwrap();
    let mut r = res();
    let sig =
        signature::sign_iso20_installation_data(&r.signed_installation_data, &signer).unwrap();
    assert_eq!(sig.signature_value.len(), 132);
    assert_eq!(sig.signed_info.signature_method, signature::ECDSA_SHA512);
    assert_eq!(sig.signed_info.references[0].digest_value.len(), 64);
    r.header.signature = Some(sig);
    let exi = r.encode().unwrap();
    let back = CertificateInstallationRes::decode(&exi).unwrap();
    assert_eq!(back, r);
    let tree = decode_document(Schema::Iso20, &exi).unwrap();
    signature::verify_iso20_message(&tree, &pk).unwrap();
    // tamper with the signed data
    let mut bad = r.clone();
    bad.signed_info_mut().dh_public_key[0] = 5;
    let t2 = decode_document(Schema::Iso20, &bad.encode().unwrap()).unwrap();
    assert!(matches!(
        signature::verify_iso20_message(&t2, &pk),
        Err(SignatureError::DigestMismatch { .. })
    ));
}

trait Mut {
    fn signed_info_mut(&mut self) -> &mut SignedInstallationData;
}
impl Mut for CertificateInstallationRes {
    fn signed_info_mut(&mut self) -> &mut SignedInstallationData {
        &mut self.signed_installation_data
    }
}

#[test]
fn iso20_req_roundtrip_and_x448_dh_length_follows_xsd() {
    let req = CertificateInstallationReq {
        header: Header {
            session_id: vec![9; 8],
            time_stamp: u64::MAX,
            signature: None,
        },
        oem_provisioning_certificate_chain: CertificateChain {
            id: Some("id1".into()),
            certificate: vec![3; 1600],
            sub_certificates: vec![vec![4; 900]; 3],
        },
        list_of_root_certificate_ids: (0..20)
            .map(|i| X509IssuerSerial {
                issuer_name: format!("CN=Root{i}"),
                serial_number: format!("-{}123456789012345678901234567890", i + 1),
            })
            .collect(),
        maximum_contract_certificate_chains: 255,
        prioritized_emaids: vec!["DEABCC123ABC56".into(); 8],
    };
    let exi = req.encode().unwrap();
    assert_eq!(CertificateInstallationReq::decode(&exi).unwrap(), req);
    // a 57-byte X448 DHPublicKey still encodes (EXI does not enforce length facets; the layer above decides)
    let mut r = res();
    r.signed_installation_data.ecdh_curve = EcdhCurve::X448;
    r.signed_installation_data.dh_public_key = vec![1; 57];
    r.signed_installation_data.encrypted_private_key = EncryptedPrivateKey::X448(vec![2; 84]);
    let exi = r.encode().unwrap();
    assert_eq!(CertificateInstallationRes::decode(&exi).unwrap(), r);
}

#[test]
fn typed_enums_match_the_schema_enumerations() {
    use pnc_exi::grammar::Dt;
    let find = |schema: pnc_exi::Schema, probe: &str| -> Vec<&'static str> {
        schema
            .tables()
            .datatypes
            .iter()
            .find_map(|d| match d {
                Dt::Enum { values } if values.contains(&probe) => Some(values.to_vec()),
                _ => None,
            })
            .unwrap()
    };
    let s20: Vec<&str> = ResponseCode::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(s20, find(pnc_exi::Schema::Iso20, "WARNING_eMSPUnknown"));
    let s2: Vec<&str> = pnc_exi::iso2::ResponseCode::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    assert_eq!(s2, find(pnc_exi::Schema::Iso2, "FAILED_CertChainError"));
    let p: Vec<&str> = EvseProcessing::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        p,
        find(
            pnc_exi::Schema::Iso20,
            "Ongoing_WaitingForCustomerInteraction"
        )
    );
    let c: Vec<&str> = EcdhCurve::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(c, find(pnc_exi::Schema::Iso20, "X448"));
}

/// -20's Ed448 alternative: the EV signs OEMProvisioningCertificateChain with its Ed448 key
/// (parameters in `signature::unconfirmed_ed448`). Checked by hand with OpenSSL alone: the
/// SHAKE256 digest of the fragment and the pure-Ed448 signature over the SignedInfo fragment.
#[test]
fn iso20_ed448_request_signature_verifies_and_binds_the_chain() {
    use signature::unconfirmed_ed448;
    let sk = PKey::generate_ed448().unwrap();
    let pk = PKey::public_key_from_der(&sk.public_key_to_der().unwrap()).unwrap();
    let chain = CertificateChain {
        id: Some("id1".into()),
        certificate: vec![3; 700],
        sub_certificates: vec![vec![4; 500]],
    };
    let element = chain.to_element("OEMProvisioningCertificateChain").unwrap();
    let signer = signature::OpensslSigner::new(&sk, Profile::Iso20Ed448).unwrap();
    let sig = signature::sign_elements(Profile::Iso20Ed448, &[&element], &signer).unwrap();
    assert_eq!(
        sig.signed_info.signature_method,
        unconfirmed_ed448::SIGNATURE_METHOD
    );
    assert_eq!(sig.signature_value.len(), 114);
    let reference = &sig.signed_info.references[0];
    assert_eq!(reference.digest_method, unconfirmed_ed448::DIGEST_METHOD);
    let mut expected_digest = vec![0u8; 64];
    openssl::hash::hash_xof(
        openssl::hash::MessageDigest::shake_256(),
        &pnc_exi::encode_fragment(Schema::Iso20, &element).unwrap(),
        &mut expected_digest,
    )
    .unwrap();
    assert_eq!(reference.digest_value, expected_digest);
    let signed_info = signature::signed_info_exi(&sig.signed_info).unwrap();
    let mut verifier = openssl::sign::Verifier::new_without_digest(&pk).unwrap();
    assert!(
        verifier
            .verify_oneshot(&sig.signature_value, &signed_info)
            .unwrap()
    );

    let request = |signature| CertificateInstallationReq {
        header: Header {
            session_id: vec![1; 8],
            time_stamp: 1,
            signature: Some(signature),
        },
        oem_provisioning_certificate_chain: chain.clone(),
        list_of_root_certificate_ids: vec![X509IssuerSerial {
            issuer_name: "CN=Root".into(),
            serial_number: "1".into(),
        }],
        maximum_contract_certificate_chains: 1,
        prioritized_emaids: vec![],
    };
    let tree = decode_document(Schema::Iso20, &request(sig.clone()).encode().unwrap()).unwrap();
    signature::verify_iso20_message(&tree, &pk).unwrap();

    // Another Ed448 key, a flipped signature bit, a P-521 key: refused.
    let other = PKey::generate_ed448().unwrap();
    let other = PKey::public_key_from_der(&other.public_key_to_der().unwrap()).unwrap();
    assert!(matches!(
        signature::verify_iso20_message(&tree, &other),
        Err(SignatureError::BadSignature)
    ));
    let mut flipped = sig.clone();
    flipped.signature_value[3] ^= 1;
    let tree = decode_document(Schema::Iso20, &request(flipped).encode().unwrap()).unwrap();
    assert!(matches!(
        signature::verify_iso20_message(&tree, &pk),
        Err(SignatureError::BadSignature)
    ));
    let group = EcGroup::from_curve_name(Nid::SECP521R1).unwrap();
    let p521 = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let p521 = PKey::public_key_from_der(&p521.public_key_to_der().unwrap()).unwrap();
    let tree = decode_document(Schema::Iso20, &request(sig).encode().unwrap()).unwrap();
    assert!(matches!(
        signature::verify_iso20_message(&tree, &p521),
        Err(SignatureError::UnsupportedAlgorithm(_))
    ));
    // An ECDSA-profile signature does not pass for an Ed448 key either.
    let ecdsa_signer = signature::OpensslSigner::new(
        &PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap(),
        Profile::Iso20,
    )
    .unwrap();
    let ecdsa = signature::sign_elements(Profile::Iso20, &[&element], &ecdsa_signer).unwrap();
    let tree = decode_document(Schema::Iso20, &request(ecdsa).encode().unwrap()).unwrap();
    assert!(matches!(
        signature::verify_iso20_message(&tree, &pk),
        Err(SignatureError::UnsupportedAlgorithm(_))
    ));
    assert!(signature::OpensslSigner::new(&sk, Profile::Iso20).is_err());
}
