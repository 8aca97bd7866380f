//! Criterion benchmarks: decode/encode of a CertificateInstallationReq and a full
//! CertificateInstallationRes (Hubject QA vectors), signing and verifying; baseline: the
//! `iso15118` crate (hupe1980) on the same messages, measured in the same run.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use iso15118::exi::ExiDocument;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use pnc_exi::iso2::{Body, V2gMessage};
use pnc_exi::signature::{self, OpensslSigner, Profile};
use pnc_exi::{Schema, decode_document, encode_document};

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/vectors/hubject-opcp")
            .join(name),
    )
    .expect("vector")
}

fn bench(c: &mut Criterion) {
    let req = vector("hubject_install_req.exi");
    let res = vector("hubject_install_res.exi");
    let req_msg = V2gMessage::decode(&req).unwrap();
    let res_msg = V2gMessage::decode(&res).unwrap();
    assert_eq!(res_msg.encode().unwrap(), res);
    let base_req = iso15118::iso2::Document::from_bytes(&req).unwrap();
    let base_res = iso15118::iso2::Document::from_bytes(&res).unwrap();
    assert_eq!(
        base_res.to_vec().unwrap(),
        res,
        "baseline must handle the message"
    );

    let mut g = c.benchmark_group("exi");
    g.bench_function("pnc/decode CertificateInstallationReq (953 B)", |b| {
        b.iter(|| V2gMessage::decode(black_box(&req)).unwrap())
    });
    g.bench_function("iso15118/decode CertificateInstallationReq (953 B)", |b| {
        b.iter(|| iso15118::iso2::Document::from_bytes(black_box(&req)).unwrap())
    });
    g.bench_function("pnc/encode CertificateInstallationReq", |b| {
        b.iter(|| black_box(&req_msg).encode().unwrap())
    });
    g.bench_function("iso15118/encode CertificateInstallationReq", |b| {
        b.iter(|| black_box(&base_req).to_vec().unwrap())
    });
    g.bench_function("pnc/decode CertificateInstallationRes (4416 B)", |b| {
        b.iter(|| V2gMessage::decode(black_box(&res)).unwrap())
    });
    g.bench_function("iso15118/decode CertificateInstallationRes (4416 B)", |b| {
        b.iter(|| iso15118::iso2::Document::from_bytes(black_box(&res)).unwrap())
    });
    g.bench_function("pnc/encode CertificateInstallationRes", |b| {
        b.iter(|| black_box(&res_msg).encode().unwrap())
    });
    g.bench_function("iso15118/encode CertificateInstallationRes", |b| {
        b.iter(|| black_box(&base_res).to_vec().unwrap())
    });
    let tree = decode_document(Schema::Iso2, &res).unwrap();
    g.bench_function("pnc/generic tree decode CertificateInstallationRes", |b| {
        b.iter(|| decode_document(Schema::Iso2, black_box(&res)).unwrap())
    });
    g.bench_function("pnc/generic tree encode CertificateInstallationRes", |b| {
        b.iter(|| encode_document(Schema::Iso2, black_box(&tree)).unwrap())
    });

    // signing: 4 fragments + digests + SignedInfo + ECDSA P-256
    let Body::CertificateInstallationRes(r) = &res_msg.body else {
        unreachable!()
    };
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let sk = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let signer = OpensslSigner::new(&sk, Profile::Iso2).unwrap();
    g.bench_function("pnc/sign 4-reference response signature (P-256)", |b| {
        b.iter(|| {
            signature::sign_iso2_certificate_response(
                &r.contract_signature_cert_chain,
                &r.contract_signature_encrypted_private_key,
                &r.dh_public_key,
                &r.emaid,
                &signer,
            )
            .unwrap()
        })
    });
    let leaf =
        signature::public_key_from_cert_der(&r.sa_provisioning_certificate_chain.certificate)
            .unwrap();
    g.bench_function(
        "pnc/verify Hubject response (decode + 4 digests + ECDSA)",
        |b| {
            b.iter(|| {
                let t = decode_document(Schema::Iso2, black_box(&res)).unwrap();
                signature::verify_iso2_message(&t, &leaf).unwrap()
            })
        },
    );
    let Body::CertificateInstallationReq(q) = &req_msg.body else {
        unreachable!()
    };
    let oem = signature::public_key_from_cert_der(&q.oem_provisioning_cert).unwrap();
    g.bench_function(
        "pnc/verify Hubject request (decode + digest + ECDSA)",
        |b| {
            b.iter(|| {
                let t = decode_document(Schema::Iso2, black_box(&req)).unwrap();
                signature::verify_iso2_message(&t, &oem).unwrap()
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
