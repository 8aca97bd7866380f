//! Property tests (decode ∘ encode = id on the typed messages) and bad-input behaviour:
//! truncated streams, wrong headers, corrupted bytes and absurd lengths give typed errors and
//! never panic.

use pnc_exi::iso2::*;
use pnc_exi::xmldsig::{Reference, Signature, SignedInfo};
use pnc_exi::*;
use proptest::prelude::*;

fn shared(p: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared")
            .join(p),
    )
    .unwrap()
}

fn any_serial() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<i128>().prop_map(|v| v.to_string()),
        ("[1-9][0-9]{0,60}", any::<bool>()).prop_map(|(d, neg)| if neg {
            format!("-{d}")
        } else {
            d
        }),
    ]
}

fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(|v| v.into_iter().collect())
}

fn any_bytes(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), min..=max)
}

fn any_root_ids() -> impl Strategy<Value = Vec<X509IssuerSerial>> {
    proptest::collection::vec(
        (any_text(40), any_serial()).prop_map(|(issuer_name, serial_number)| X509IssuerSerial {
            issuer_name,
            serial_number,
        }),
        1..=20,
    )
}

fn any_chain(with_id: bool) -> impl Strategy<Value = CertificateChain> {
    (
        any_bytes(0, 800),
        proptest::collection::vec(any_bytes(0, 800), 0..=4),
        "[A-Za-z_][A-Za-z0-9]{0,5}",
    )
        .prop_map(
            move |(certificate, sub_certificates, id)| CertificateChain {
                id: with_id.then_some(id),
                certificate,
                sub_certificates,
            },
        )
}

fn any_signature() -> impl Strategy<Value = Option<Signature>> {
    proptest::option::of(
        (
            proptest::collection::vec(("#[a-z0-9]{1,4}", any_bytes(32, 32)), 1..=4),
            any_bytes(64, 64),
        )
            .prop_map(|(refs, sv)| Signature {
                id: None,
                signed_info: SignedInfo {
                    id: None,
                    canonicalization_method: pnc_exi::signature::C14N_EXI.into(),
                    signature_method: pnc_exi::signature::ECDSA_SHA256.into(),
                    hmac_output_length: None,
                    references: refs
                        .into_iter()
                        .map(|(uri, d)| Reference {
                            id: None,
                            uri: Some(uri),
                            type_: None,
                            transforms: Some(vec![pnc_exi::signature::C14N_EXI.into()]),
                            digest_method: pnc_exi::signature::DIGEST_SHA256.into(),
                            digest_value: d,
                        })
                        .collect(),
                },
                signature_value: sv,
                signature_value_id: None,
                has_key_info: false,
                has_object: false,
            }),
    )
}

fn any_header() -> impl Strategy<Value = MessageHeader> {
    (
        any_bytes(0, 8),
        proptest::option::of((
            proptest::sample::select(FaultCode::ALL),
            proptest::option::of(any_text(64)),
        )),
        any_signature(),
    )
        .prop_map(|(session_id, n, signature)| MessageHeader {
            session_id,
            notification: n.map(|(fault_code, fault_msg)| Notification {
                fault_code,
                fault_msg,
            }),
            signature,
        })
}

fn any_res_parts() -> impl Strategy<
    Value = (
        ResponseCode,
        CertificateChain,
        CertificateChain,
        IdBytes,
        IdBytes,
        IdString,
    ),
> {
    (
        proptest::sample::select(ResponseCode::ALL),
        any_chain(false),
        any_chain(true),
        any_bytes(0, 48).prop_map(|value| IdBytes {
            id: "id2".into(),
            value,
        }),
        any_bytes(0, 65).prop_map(|value| IdBytes {
            id: "id3".into(),
            value,
        }),
        "[A-Z0-9]{0,15}".prop_map(|value| IdString {
            id: "id4".into(),
            value,
        }),
    )
}

fn any_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            "[A-Za-z][A-Za-z0-9]{0,8}",
            any_bytes(0, 800),
            any_root_ids()
        )
            .prop_map(|(id, c, r)| Body::CertificateInstallationReq(
                CertificateInstallationReq {
                    id,
                    oem_provisioning_cert: c,
                    list_of_root_certificate_ids: r
                }
            )),
        any_res_parts().prop_map(|(rc, sa, cc, k, d, e)| Body::CertificateInstallationRes(
            CertificateInstallationRes {
                response_code: rc,
                sa_provisioning_certificate_chain: sa,
                contract_signature_cert_chain: cc,
                contract_signature_encrypted_private_key: k,
                dh_public_key: d,
                emaid: e,
            }
        )),
        (
            "[A-Za-z][A-Za-z0-9]{0,8}",
            any_chain(true),
            "[A-Z0-9]{0,15}",
            any_root_ids()
        )
            .prop_map(|(id, cc, emaid, r)| {
                Body::CertificateUpdateReq(CertificateUpdateReq {
                    id,
                    contract_signature_cert_chain: cc,
                    emaid,
                    list_of_root_certificate_ids: r,
                })
            }),
        (any_res_parts(), proptest::option::of(any::<i16>())).prop_map(
            |((rc, sa, cc, k, d, e), retry_counter)| {
                Body::CertificateUpdateRes(CertificateUpdateRes {
                    response_code: rc,
                    sa_provisioning_certificate_chain: sa,
                    contract_signature_cert_chain: cc,
                    contract_signature_encrypted_private_key: k,
                    dh_public_key: d,
                    emaid: e,
                    retry_counter,
                })
            }
        ),
        Just(Body::Other(None)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn typed_messages_roundtrip(header in any_header(), body in any_body()) {
        let m = V2gMessage { header, body };
        let exi = m.encode().unwrap();
        prop_assert_eq!(V2gMessage::decode(&exi).unwrap(), m.clone());
        // the generic tree path encodes the same bytes
        let tree = decode_document(Schema::Iso2, &exi).unwrap();
        prop_assert_eq!(encode_document(Schema::Iso2, &tree).unwrap(), exi.clone());
        prop_assert_eq!(encode_document(Schema::Iso2, &m.to_element().unwrap()).unwrap(), exi.clone());
        // and through XML text (compact and indented), when the strings are XML 1.0 characters
        let xml_ok = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
        let compact = xml::write(&tree);
        if compact.chars().all(xml_ok) {
            for x in [compact, xml::write_pretty(&tree)] {
                let back = xml::parse(&x).unwrap();
                prop_assert_eq!(encode_document(Schema::Iso2, &back).unwrap(), exi.clone());
            }
        }
    }

    #[test]
    fn typed_fragments_roundtrip(c in any_chain(true)) {
        let e = c.to_element("ContractSignatureCertChain").unwrap();
        let f = encode_fragment(Schema::Iso2, &e).unwrap();
        prop_assert_eq!(CertificateChain::from_element(&decode_fragment(Schema::Iso2, &f).unwrap()).unwrap(), c);
    }

    #[test]
    fn random_bytes_never_panic(mut data in any_bytes(0, 600)) {
        if !data.is_empty() { data[0] = 0x80; }
        for s in [Schema::Iso2, Schema::Iso20, Schema::XmlDsig, Schema::AppProtocol] {
            let _ = decode_document(s, &data);
            let _ = decode_fragment_all(s, &data);
        }
    }

    #[test]
    fn corrupted_vectors_never_panic(pos in 0usize..4416, bit in 0u8..8) {
        let mut data = shared("vectors/hubject-opcp/hubject_install_res.exi");
        let p = pos % data.len();
        data[p] ^= 1 << bit;
        let _ = V2gMessage::decode(&data);
        let _ = decode_fragment_all(Schema::Iso2, &data);
    }

    #[test]
    fn xml_parser_never_panics(s in any_text(200)) {
        if let Ok(e) = xml::parse(&s) {
            let _ = encode_document(Schema::Iso2, &e);
        }
    }
}

#[test]
fn every_truncation_is_a_typed_error() {
    for f in [
        "hubject_install_req.exi",
        "hubject_install_res.exi",
        "hubject_install_res_failed.exi",
    ] {
        let data = shared(&format!("vectors/hubject-opcp/{f}"));
        for n in 0..data.len() - 1 {
            match decode_document(Schema::Iso2, &data[..n]) {
                Err(ExiError::Truncated { bit }) => assert!(bit <= n * 8),
                Err(e) => panic!("{f}[..{n}]: unexpected error {e}"),
                Ok(_) => panic!("{f}[..{n}]: truncated stream decoded"),
            }
        }
    }
}

#[test]
fn wrong_header_and_absurd_lengths() {
    assert!(matches!(
        decode_document(Schema::Iso2, &[]),
        Err(ExiError::Truncated { .. })
    ));
    assert!(matches!(
        decode_document(Schema::Iso2, &[0x24, 0x45, 0x58, 0x49]),
        Err(ExiError::BadHeader { byte: 0x24 })
    ));
    assert!(matches!(
        decode_document(Schema::Iso2, &[0xA0, 0x00]),
        Err(ExiError::BadHeader { .. })
    ));
    // SessionSetupReq EVCCID (hexBinary maxLength 6) claiming 2^62 bytes: rejected before allocation
    let mut enc = pnc_exi::codec::Encoder::new(Schema::Iso2.tables(), false);
    enc.start_element(NS_DEF, "V2G_Message").unwrap();
    enc.start_element(NS_DEF, "Header").unwrap();
    enc.start_element(NS_HDR, "SessionID").unwrap();
    enc.characters(pnc_exi::codec::ValRef::Bytes(&[1])).unwrap();
    enc.end_element().unwrap();
    enc.end_element().unwrap();
    let prefix = enc.start_element(NS_DEF, "Body").map(|_| ());
    assert!(prefix.is_ok());
    // over-long values are refused by the encoder
    let e = Element::new(NS_BODY, "eMAID")
        .attr(NS_DT, "Id", "a")
        .text("X".repeat(16));
    assert!(
        encode_fragment(Schema::Iso2, &e).is_ok(),
        "EMAIDType in the fragment grammar is untyped in the element fragment grammar"
    );
    let too_long = CertificateChain {
        id: Some("a".into()),
        certificate: vec![0; 801],
        sub_certificates: vec![],
    };
    assert!(
        encode_fragment(
            Schema::Iso2,
            &too_long.to_element("ContractSignatureCertChain").unwrap()
        )
        .is_err()
    );
    // a decoder reading a length beyond the schema limit reports it with the position
    let ok = CertificateChain {
        id: Some("a".into()),
        certificate: vec![0; 10],
        sub_certificates: vec![],
    };
    let mut f = encode_fragment(
        Schema::Iso2,
        &ok.to_element("ContractSignatureCertChain").unwrap(),
    )
    .unwrap();
    // find the length byte 10 of the certificate and make it huge (0xFF 0xFF 0xFF 0x7F)
    let i = f.windows(1).position(|w| w[0] == 10).unwrap_or(3);
    f.splice(i..=i, [0xFF, 0xFF, 0xFF, 0x7F]);
    assert!(decode_fragment(Schema::Iso2, &f).is_err());
}

#[test]
fn out_of_range_integers_are_rejected() {
    // RetryCounter is xs:short: 40000 does not encode as typed (becomes a schema deviation
    // the typed decoder refuses)
    let x = r#"<v2g:V2G_Message xmlns:v2g="urn:iso:15118:2:2013:MsgDef" xmlns:h="urn:iso:15118:2:2013:MsgHeader" xmlns:b="urn:iso:15118:2:2013:MsgBody"><v2g:Header><h:SessionID>00</h:SessionID></v2g:Header><v2g:Body><b:SessionSetupRes><b:ResponseCode>OK</b:ResponseCode><b:EVSEID>DE*ABC*E123</b:EVSEID><b:EVSETimeStamp>99999999999999999999</b:EVSETimeStamp></b:SessionSetupRes></v2g:Body></v2g:V2G_Message>"#;
    let tree = xml::parse(x).unwrap();
    // EVSETimeStamp is xs:long: the value is out of range, so it is written untyped (deviation)
    let exi = encode_document(Schema::Iso2, &tree).unwrap();
    let back = decode_document(Schema::Iso2, &exi).unwrap();
    assert_eq!(back.normalized(), tree.normalized());
}

#[test]
fn empty_mixed_content_without_first_level_ee_terminates() {
    // regression (found by fuzzing): CH("") + EE must not loop on untyped mixed content
    let e = Element::new(pnc_exi::xmldsig::NS, "SignatureProperty").attr("", "Target", "#t");
    let f = encode_fragment(Schema::XmlDsig, &e).unwrap();
    assert_eq!(
        decode_fragment(Schema::XmlDsig, &f).unwrap().normalized(),
        e.normalized()
    );
}

fn frag_index(schema: Schema, ns: &str, local: &str) -> u64 {
    let t = schema.tables();
    t.frag_elements
        .iter()
        .position(|(q, _)| {
            t.uris[q.uri as usize] == ns && t.local_names[q.uri as usize][q.local as usize] == local
        })
        .unwrap() as u64
}

#[test]
fn integer_beyond_type_range_is_a_typed_error_with_position() {
    use pnc_exi::bits::BitWriter;
    // fragment: header, SE(EVSETimeStamp) (xs:long), CH, sign +, magnitude 2^63
    let idx = frag_index(Schema::Iso2, NS_BODY, "EVSETimeStamp");
    let n = Schema::Iso2.tables().frag_elements.len();
    assert!(n + 2 <= 256);
    let mut w = BitWriter::with_capacity(16);
    w.bits(0x80, 8);
    w.bits(idx, 8);
    w.bits(0, 1);
    w.bits(0, 1);
    for _ in 0..9 {
        w.byte(0x80);
    }
    w.byte(0x01);
    w.bits(0, 1); // EE
    let data = w.finish();
    match decode_fragment(Schema::Iso2, &data) {
        Err(ExiError::OutOfRange { value, bit }) => {
            assert_eq!(value, "9223372036854775808");
            assert_eq!(bit, 17);
        }
        other => panic!("expected OutOfRange, got {other:?}"),
    }
    // a string claiming 2^40 characters: rejected before allocating, with its position
    let idx = frag_index(Schema::Iso2, NS_BODY, "EVSEID");
    let mut w = BitWriter::with_capacity(16);
    w.bits(0x80, 8);
    w.bits(idx, 8);
    w.bits(0, 1);
    w.uint((1u64 << 40) + 2);
    let data = w.finish();
    assert!(matches!(
        decode_fragment(Schema::Iso2, &data),
        Err(ExiError::TooLong { bit: 17, .. })
    ));
}
