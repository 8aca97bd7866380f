//! Golden vectors from other implementations (test-vectors.md §3, §4): Hubject OPCP QA messages
//! and RISE-V2G signature fragments. Read from ../shared (never copied into the repo).

use base64::Engine as _;
use pnc_exi::iso2::{self, Body, CertificateChain, IdBytes, IdString, V2gMessage};
use pnc_exi::signature::{self, Profile, SignatureError};
use pnc_exi::xmldsig::{Reference, SignedInfo};
use pnc_exi::*;
use serde_json::Value;
use std::path::PathBuf;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}
fn hubject(name: &str) -> Vec<u8> {
    std::fs::read(shared().join("vectors/hubject-opcp").join(name)).expect("vector file")
}
fn rise() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(shared().join("vectors/rise-v2g-signature.json"))
            .expect("rise json"),
    )
    .expect("json")
}
fn sha256_hex(b: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(b))
}
fn pem_der(pem: &str) -> Vec<u8> {
    openssl::x509::X509::from_pem(pem.as_bytes())
        .expect("pem")
        .to_der()
        .expect("der")
}
fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("b64")
}

#[test]
fn hubject_documents_roundtrip_byte_identical() {
    for (f, sha) in [
        (
            "hubject_install_req.exi",
            "b778d3ffc6aa9bceec688a2ebffdb173611710c9ff834ef69b99120f141b7e31",
        ),
        (
            "hubject_install_res.exi",
            "1af24c56ff8e6e3004fe4f9bff9346621cadd8f309bb3f1a5443b3aeb6d662b4",
        ),
        (
            "hubject_install_res_failed.exi",
            "6b3205574207b2abc0fc8bc04b488747089503444f5a31fc057af6c229f6bd60",
        ),
    ] {
        let data = hubject(f);
        assert_eq!(sha256_hex(&data), sha, "{f}");
        let tree = decode_document(Schema::Iso2, &data).unwrap();
        assert_eq!(
            encode_document(Schema::Iso2, &tree).unwrap(),
            data,
            "{f}: generic tree"
        );
        let msg = V2gMessage::decode(&data).unwrap();
        assert_eq!(msg.encode().unwrap(), data, "{f}: typed");
        // through XML text and back
        let x = xml::write(&tree);
        let back = xml::parse(&x).unwrap();
        assert_eq!(
            encode_document(Schema::Iso2, &back).unwrap(),
            data,
            "{f}: via XML"
        );
    }
}

#[test]
fn hubject_request_fields_and_signature() {
    let data = hubject("hubject_install_req.exi");
    let msg = V2gMessage::decode(&data).unwrap();
    assert_eq!(
        hex::encode_upper(&msg.header.session_id),
        "69FC09895168C8B2"
    );
    let Body::CertificateInstallationReq(req) = &msg.body else {
        panic!("not a CertificateInstallationReq")
    };
    assert_eq!(req.id, "ID1");
    assert_eq!(req.oem_provisioning_cert.len(), 613);
    assert_eq!(req.list_of_root_certificate_ids.len(), 1);
    assert_eq!(
        req.list_of_root_certificate_ids[0].issuer_name,
        "DC=V2G,C=DE,O=RISE V2G Project,CN=V2GRootCA"
    );
    assert_eq!(req.list_of_root_certificate_ids[0].serial_number, "12345");

    // digest of the body element as an -2 fragment
    let frag = encode_fragment(Schema::Iso2, &req.to_element().unwrap()).unwrap();
    assert_eq!(frag.len(), 671);
    assert_eq!(
        sha256_hex(&frag),
        "ad4ef309cab7a79f0ef477a56202c5dda4c99089dc72844b671a4b20bc3ffcdc"
    );
    let sig = msg.header.signature.as_ref().unwrap();
    assert_eq!(
        signature::signed_info_exi(&sig.signed_info).unwrap().len(),
        209
    );

    let key = signature::public_key_from_cert_der(&req.oem_provisioning_cert).unwrap();
    let tree = decode_document(Schema::Iso2, &data).unwrap();
    signature::verify_iso2_message(&tree, &key).unwrap();

    // tampering with the body breaks the digest
    let mut bad = msg.clone();
    if let Body::CertificateInstallationReq(r) = &mut bad.body {
        r.list_of_root_certificate_ids[0].serial_number = "12346".into();
    }
    let bad_tree = bad.to_element().unwrap();
    assert!(matches!(
        signature::verify_iso2_message(&bad_tree, &key),
        Err(SignatureError::DigestMismatch { .. })
    ));
}

#[test]
fn hubject_response_digests_and_signature() {
    let data = hubject("hubject_install_res.exi");
    let msg = V2gMessage::decode(&data).unwrap();
    assert_eq!(hex::encode_upper(&msg.header.session_id), "00");
    let Body::CertificateInstallationRes(res) = &msg.body else {
        panic!("not a CertificateInstallationRes")
    };
    assert_eq!(res.response_code, iso2::ResponseCode::Ok);
    assert_eq!(res.emaid.value, "EMP99CQAPAB004");
    let parts = [
        (
            res.contract_signature_cert_chain
                .to_element("ContractSignatureCertChain")
                .unwrap(),
            "ID1",
            1798,
            "7f97a15384f79ad3814fa455f6a3e834d3a58b5255fbeea5e90e7532eacfea41",
        ),
        (
            res.contract_signature_encrypted_private_key
                .to_element("ContractSignatureEncryptedPrivateKey")
                .unwrap(),
            "ID2",
            57,
            "5d1d5f6a9f3b91e7c4d0dea90065cddfc4b8d922a46358aa891c47162caa53c1",
        ),
        (
            res.dh_public_key.to_element("DHpublickey").unwrap(),
            "ID3",
            74,
            "11b642c84f56bae887e238abb07524fbd4421fca6b9e02e4f4cfe1df2b2cf7bf",
        ),
        (
            res.emaid.to_element("eMAID").unwrap(),
            "ID4",
            26,
            "516c9d1eb395c6d06101a21b8566804529aefefad96f5cf6ec8fe8be4226bd09",
        ),
    ];
    for (el, id, len, sha) in &parts {
        assert_eq!(el.attr_value("Id"), Some(*id));
        let f = encode_fragment(Schema::Iso2, el).unwrap();
        assert_eq!(f.len(), *len, "{id}");
        assert_eq!(sha256_hex(&f), *sha, "{id}");
    }
    let sig = msg.header.signature.as_ref().unwrap();
    let si = signature::signed_info_exi(&sig.signed_info).unwrap();
    assert_eq!(si.len(), 559);
    assert_eq!(
        sha256_hex(&si),
        "176c60290c2b99f6a6ec57df2a4b10d85a91eee21d81831566b90693cf3ce9bf"
    );
    let leaf =
        signature::public_key_from_cert_der(&res.sa_provisioning_certificate_chain.certificate)
            .unwrap();
    let tree = decode_document(Schema::Iso2, &data).unwrap();
    signature::verify_iso2_message(&tree, &leaf).unwrap();
    // a Sub-CA key must not verify
    let sub = signature::public_key_from_cert_der(
        &res.sa_provisioning_certificate_chain.sub_certificates[0],
    )
    .unwrap();
    assert!(matches!(
        signature::verify_iso2_message(&tree, &sub),
        Err(SignatureError::BadSignature)
    ));
    // changing the SessionID does not need re-signing (the header is not signed)
    let mut m2 = msg.clone();
    m2.header.session_id = hex::decode("2A3DC6D75411F647").unwrap();
    let re = m2.encode().unwrap();
    signature::verify_iso2_message(&decode_document(Schema::Iso2, &re).unwrap(), &leaf).unwrap();
}

#[test]
fn hubject_negative_response_tolerates_facet_violations() {
    let data = hubject("hubject_install_res_failed.exi");
    let msg = V2gMessage::decode(&data).unwrap();
    assert_eq!(
        hex::encode_upper(&msg.header.session_id),
        "2A3DC6D75411F647"
    );
    let n = msg.header.notification.as_ref().unwrap();
    assert_eq!(n.fault_code, iso2::FaultCode::UnknownError);
    assert_eq!(n.fault_msg.as_deref(), Some("CPO certInstall status"));
    let Body::CertificateInstallationRes(res) = &msg.body else {
        panic!()
    };
    assert_eq!(
        res.response_code,
        iso2::ResponseCode::FailedNoCertificateAvailable
    );
    assert_eq!(
        res.emaid,
        IdString {
            id: "0".into(),
            value: "0".into()
        }
    );
    assert_eq!(res.dh_public_key.value, vec![0]);
    assert!(msg.header.signature.is_none());
}

fn rise_elements(v: &Value) -> (CertificateChain, IdBytes, IdBytes, IdString) {
    let certs = &v["certificates"];
    let der = |k: &str| pem_der(certs[format!("{k}_pem")].as_str().unwrap());
    let vals = &v["values"];
    let order: Vec<String> = vals["contract_signature_cert_chain_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    let chain = CertificateChain {
        id: Some("id1".into()),
        certificate: der(&order[0]),
        sub_certificates: order[1..].iter().map(|k| der(k)).collect(),
    };
    let key = IdBytes {
        id: "id2".into(),
        value: hex::decode(
            vals["contract_signature_encrypted_private_key_hex"]
                .as_str()
                .unwrap(),
        )
        .unwrap(),
    };
    let dh = IdBytes {
        id: "id3".into(),
        value: hex::decode(vals["dh_public_key_hex"].as_str().unwrap()).unwrap(),
    };
    let emaid = IdString {
        id: "id4".into(),
        value: vals["emaid"].as_str().unwrap().into(),
    };
    (chain, key, dh, emaid)
}

#[test]
fn rise_fragments_encode_and_decode() {
    let v = rise();
    let (chain, key, dh, emaid) = rise_elements(&v);
    let els = [
        chain.to_element("ContractSignatureCertChain").unwrap(),
        key.to_element("ContractSignatureEncryptedPrivateKey")
            .unwrap(),
        dh.to_element("DHpublickey").unwrap(),
        emaid.to_element("eMAID").unwrap(),
    ];
    let frags = v["fragments"].as_array().unwrap();
    for (el, f) in els.iter().zip(frags) {
        let name = f["name"].as_str().unwrap();
        assert_eq!(el.name.local, name);
        let enc = encode_fragment(Schema::Iso2, el).unwrap();
        assert_eq!(
            hex::encode_upper(&enc),
            f["exi_hex"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            sha256_hex(&enc).to_uppercase(),
            f["sha256_hex"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            openssl::sha::sha256(&enc).to_vec(),
            b64(f["digest_value_b64"].as_str().unwrap())
        );
        // decoding gives the same tree back
        let dec = decode_fragment(Schema::Iso2, &enc).unwrap();
        assert_eq!(dec.normalized(), el.normalized(), "{name}");
        assert_eq!(encode_fragment(Schema::Iso2, &dec).unwrap(), enc);
    }
    // the eMAID element-fragment grammar (iso15118-notes §6.4)
    assert_eq!(
        hex::encode_upper(encode_fragment(Schema::Iso2, &els[3]).unwrap()),
        "80EC0202B4B21A40041111505090D0CC4C8CD05090CD4DBD3D00"
    );
    // typed decode of the fragments
    let d = decode_fragment(
        Schema::Iso2,
        &hex::decode(frags[0]["exi_hex"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(CertificateChain::from_element(&d).unwrap(), chain);
    let d = decode_fragment(
        Schema::Iso2,
        &hex::decode(frags[3]["exi_hex"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(IdString::from_element(&d).unwrap(), emaid);
}

#[test]
fn rise_fragments_from_xml_text() {
    let x = r#"<b:eMAID xmlns:b="urn:iso:15118:2:2013:MsgBody"
           xmlns:t="urn:iso:15118:2:2013:MsgDataTypes" t:Id="id4">DEABCC123ABC56</b:eMAID>"#;
    let e = xml::parse(x).unwrap();
    assert_eq!(
        hex::encode_upper(encode_fragment(Schema::Iso2, &e).unwrap()),
        "80EC0202B4B21A40041111505090D0CC4C8CD05090CD4DBD3D00"
    );
    // an unqualified Id is a different attribute: bytes change
    let x2 = r#"<b:eMAID xmlns:b="urn:iso:15118:2:2013:MsgBody" Id="id4">DEABCC123ABC56</b:eMAID>"#;
    let e2 = xml::parse(x2).unwrap();
    assert_ne!(
        encode_fragment(Schema::Iso2, &e2).unwrap(),
        encode_fragment(Schema::Iso2, &e).unwrap()
    );
}

fn rise_signed_info(v: &Value) -> SignedInfo {
    let frags = v["fragments"].as_array().unwrap();
    let references = v["signedinfo_reference_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let u = u.as_str().unwrap();
            let f = frags
                .iter()
                .find(|f| format!("#{}", f["id"].as_str().unwrap()) == u)
                .unwrap();
            Reference {
                id: None,
                uri: Some(u.to_string()),
                type_: None,
                transforms: Some(vec![signature::C14N_EXI.into()]),
                digest_method: signature::DIGEST_SHA256.into(),
                digest_value: b64(f["digest_value_b64"].as_str().unwrap()),
            }
        })
        .collect();
    SignedInfo {
        id: None,
        canonicalization_method: signature::C14N_EXI.into(),
        signature_method: signature::ECDSA_SHA256.into(),
        hmac_output_length: None,
        references,
    }
}

#[test]
fn rise_signed_info_and_signature() {
    let v = rise();
    let si = rise_signed_info(&v);
    let exi = signature::signed_info_exi(&si).unwrap();
    assert_eq!(exi.len(), 559, "no value string table: 559 bytes, not 304");
    assert_eq!(
        hex::encode_upper(&exi),
        v["signedinfo_exi_hex"].as_str().unwrap()
    );
    assert_eq!(
        sha256_hex(&exi).to_uppercase(),
        v["signedinfo_sha256_hex"].as_str().unwrap()
    );
    let sigval = hex::decode(v["signature_value_hex"].as_str().unwrap()).unwrap();
    let leaf_pem = v["certificates"]["cps_leaf_pem"].as_str().unwrap();
    let leaf = signature::public_key_from_cert_der(&pem_der(leaf_pem)).unwrap();
    signature::verify_raw(Profile::Iso2, &leaf, &exi, &sigval).unwrap();
    let point = hex::decode(v["signer_public_key_uncompressed_hex"].as_str().unwrap()).unwrap();
    let k2 = signature::public_key_from_sec1(Profile::Iso2, &point).unwrap();
    signature::verify_raw(Profile::Iso2, &k2, &exi, &sigval).unwrap();
    let sub2 = signature::public_key_from_cert_der(&pem_der(
        v["certificates"]["cps_sub_ca2_pem"].as_str().unwrap(),
    ))
    .unwrap();
    assert!(matches!(
        signature::verify_raw(Profile::Iso2, &sub2, &exi, &sigval),
        Err(SignatureError::BadSignature)
    ));
}

#[test]
fn rise_full_message_verifies_and_negatives() {
    let v = rise();
    let x =
        std::fs::read_to_string(shared().join("vectors/rise-v2g/rise_install_res.xml")).unwrap();
    let tree = xml::parse(&x).unwrap();
    let leaf = signature::public_key_from_cert_der(&pem_der(
        v["certificates"]["cps_leaf_pem"].as_str().unwrap(),
    ))
    .unwrap();
    signature::verify_iso2_message(&tree, &leaf).unwrap();
    // EXI document round trip of the XML
    let exi = encode_document(Schema::Iso2, &tree).unwrap();
    let back = decode_document(Schema::Iso2, &exi).unwrap();
    assert_eq!(encode_document(Schema::Iso2, &back).unwrap(), exi);
    signature::verify_iso2_message(&back, &leaf).unwrap();

    // our encoder never produces the negative vectors
    let (chain, key, dh, emaid) = rise_elements(&v);
    let ours = [
        encode_fragment(
            Schema::Iso2,
            &chain.to_element("ContractSignatureCertChain").unwrap(),
        )
        .unwrap(),
        encode_fragment(
            Schema::Iso2,
            &key.to_element("ContractSignatureEncryptedPrivateKey")
                .unwrap(),
        )
        .unwrap(),
        encode_fragment(Schema::Iso2, &dh.to_element("DHpublickey").unwrap()).unwrap(),
        encode_fragment(Schema::Iso2, &emaid.to_element("eMAID").unwrap()).unwrap(),
    ];
    let neg = &v["negative_vectors"];
    for f in neg["empty_namespace_fragments"]["fragments"]
        .as_array()
        .unwrap()
    {
        let bad = hex::decode(f["exi_hex"].as_str().unwrap()).unwrap();
        assert!(ours.iter().all(|o| *o != bad));
        // they still decode (schema deviations: SE(*) + xsi:type anyType), into the empty namespace
        let d = decode_fragment(Schema::Iso2, &bad).unwrap();
        assert_eq!(d.name.ns, "");
        assert_eq!(
            encode_fragment(Schema::Iso2, &d).unwrap(),
            bad,
            "{}",
            f["name"]
        );
    }
    let wrong = hex::decode(
        neg["known_wrong_emaid_fragment"]["exi_hex"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(ours.iter().all(|o| *o != wrong));

    // a SignedInfo whose eMAID digest was computed over the wrong bytes: mismatch on #id4 only
    let mut t2 = tree.clone();
    let wrong_digest =
        base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha256(&wrong));
    fn patch(e: &mut Element, d: &str) {
        if e.name.local == "Reference" && e.attr_value("URI") == Some("#id4") {
            for c in e.children.iter_mut() {
                if let Node::Element(x) = c
                    && x.name.local == "DigestValue"
                {
                    x.children = vec![Node::Text(d.to_string())];
                }
            }
        }
        for c in e.children.iter_mut() {
            if let Node::Element(x) = c {
                patch(x, d);
            }
        }
    }
    patch(&mut t2, &wrong_digest);
    match signature::verify_iso2_message(&t2, &leaf) {
        Err(SignatureError::DigestMismatch { uri }) => assert_eq!(uri, "#id4"),
        other => panic!("expected digest mismatch on #id4, got {other:?}"),
    }
}

#[test]
fn own_signature_verifies_independently() {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    let v = rise();
    let (chain, key, dh, emaid) = rise_elements(&v);
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let sk = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let pk = PKey::public_key_from_pem(&sk.public_key_to_pem().unwrap()).unwrap();
    let signer = signature::OpensslSigner::new(&sk, Profile::Iso2).unwrap();
    let sig =
        signature::sign_iso2_certificate_response(&chain, &key, &dh, &emaid, &signer).unwrap();
    assert_eq!(sig.signed_info.references.len(), 4);
    assert_eq!(sig.signature_value.len(), 64);
    // RISE's digests are the same elements: the references must carry the same digest values
    for r in &sig.signed_info.references {
        let id = &r.uri.as_ref().unwrap()[1..];
        let f = v["fragments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap();
        assert_eq!(r.digest_value, b64(f["digest_value_b64"].as_str().unwrap()));
    }
    // independent check: OpenSSL's DER-based verifier over the SignedInfo bytes
    let exi = signature::signed_info_exi(&sig.signed_info).unwrap();
    let r = openssl::bn::BigNum::from_slice(&sig.signature_value[..32]).unwrap();
    let s = openssl::bn::BigNum::from_slice(&sig.signature_value[32..]).unwrap();
    let der = openssl::ecdsa::EcdsaSig::from_private_components(r, s)
        .unwrap()
        .to_der()
        .unwrap();
    let mut ver =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &pk).unwrap();
    ver.update(&exi).unwrap();
    assert!(ver.verify(&der).unwrap());
    // and in a full message, through our verifier
    let msg = V2gMessage {
        header: iso2::MessageHeader {
            session_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
            notification: None,
            signature: Some(sig),
        },
        body: Body::CertificateInstallationRes(iso2::CertificateInstallationRes {
            response_code: iso2::ResponseCode::Ok,
            sa_provisioning_certificate_chain: CertificateChain {
                id: None,
                certificate: vec![1, 2, 3],
                sub_certificates: vec![vec![4]],
            },
            contract_signature_cert_chain: chain,
            contract_signature_encrypted_private_key: key,
            dh_public_key: dh,
            emaid,
        }),
    };
    let exi = msg.encode().unwrap();
    signature::verify_iso2_message(&decode_document(Schema::Iso2, &exi).unwrap(), &pk).unwrap();
    assert_eq!(V2gMessage::decode(&exi).unwrap(), msg);
}

#[test]
fn forbidden_signature_parts_are_rejected() {
    let data = hubject("hubject_install_req.exi");
    let msg = V2gMessage::decode(&data).unwrap();
    let base = msg.header.signature.clone().unwrap();
    type Mutation = Box<dyn Fn(&mut pnc_exi::xmldsig::Signature)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|s| s.signed_info.id = Some("x".into())),
            "SignedInfo@Id",
        ),
        (
            Box::new(|s| s.signature_value_id = Some("x".into())),
            "SignatureValue@Id",
        ),
        (
            Box::new(|s| s.signed_info.references[0].type_ = Some("t".into())),
            "Reference@Type",
        ),
        (
            Box::new(|s| s.signed_info.hmac_output_length = Some("8".into())),
            "HMACOutputLength",
        ),
        (Box::new(|s| s.has_key_info = true), "KeyInfo"),
        (Box::new(|s| s.has_object = true), "Object"),
    ];
    for (f, what) in cases {
        let mut s = base.clone();
        f(&mut s);
        match signature::check_structure(&s, Profile::Iso2) {
            Err(SignatureError::ForbiddenElement(w)) => assert_eq!(w, what),
            other => panic!("{what}: {other:?}"),
        }
    }
    let mut s = base.clone();
    let r = s.signed_info.references[0].clone();
    s.signed_info.references = vec![r; 5];
    assert!(matches!(
        signature::check_structure(&s, Profile::Iso2),
        Err(SignatureError::TooManyReferences(5))
    ));
}

#[test]
fn hubject_cps_signed_xml_verifies_and_survives_session_id_insertion() {
    // test-vectors.md §4.4: CPS-signed contract data as XML, no SessionID (storage form)
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(shared().join("specs/opcp-1.0.0/cps.v1.json")).unwrap(),
    )
    .unwrap();
    let b64x = spec["components"]["schemas"]["SignedContractDataResponse"]["x-examples"]["example-1"]["signedData"]
        .as_str()
        .unwrap();
    let x = String::from_utf8(b64(b64x)).unwrap();
    let tree = xml::parse(&x).unwrap();
    let res = tree
        .find("Body")
        .unwrap()
        .find("CertificateInstallationRes")
        .unwrap();
    let res = iso2::CertificateInstallationRes::from_element(res).unwrap();
    assert_eq!(res.emaid.value, "EMP99CQATEST001");
    // fragment sizes of test-vectors.md §4.4
    let sizes = [
        encode_fragment(
            Schema::Iso2,
            &res.contract_signature_cert_chain
                .to_element("ContractSignatureCertChain")
                .unwrap(),
        )
        .unwrap()
        .len(),
        encode_fragment(
            Schema::Iso2,
            &res.contract_signature_encrypted_private_key
                .to_element("ContractSignatureEncryptedPrivateKey")
                .unwrap(),
        )
        .unwrap()
        .len(),
        encode_fragment(
            Schema::Iso2,
            &res.dh_public_key.to_element("DHpublickey").unwrap(),
        )
        .unwrap()
        .len(),
        encode_fragment(Schema::Iso2, &res.emaid.to_element("eMAID").unwrap())
            .unwrap()
            .len(),
    ];
    assert_eq!(sizes, [1799, 57, 74, 27]);
    let leaf =
        signature::public_key_from_cert_der(&res.sa_provisioning_certificate_chain.certificate)
            .unwrap();
    signature::verify_iso2_message(&tree, &leaf).unwrap();
    // insert the request's SessionID, encode the document, decode, verify again
    let sig = pnc_exi::xmldsig::Signature::from_element(
        tree.find("Header").unwrap().find("Signature").unwrap(),
    )
    .unwrap();
    assert_eq!(
        signature::signed_info_exi(&sig.signed_info).unwrap().len(),
        559
    );
    let msg = V2gMessage {
        header: iso2::MessageHeader {
            session_id: hex::decode("69FC09895168C8B2").unwrap(),
            notification: None,
            signature: Some(sig),
        },
        body: Body::CertificateInstallationRes(res),
    };
    let exi = msg.encode().unwrap();
    let back = decode_document(Schema::Iso2, &exi).unwrap();
    signature::verify_iso2_message(&back, &leaf).unwrap();
    assert_eq!(V2gMessage::decode(&exi).unwrap(), msg);
}
