//! `pnc ev install` and `pnc ev update` against a running pnc: the simulator builds and signs the
//! request from files, as an operator's smoke test would, and checks the answer as the car
//! does (SessionID, CPS signature and chain to a root it listed, decrypted contract key).

mod provisioning_support;

use pnc::ev::{Connection, EvError, InstallArgs, UpdateArgs, install, update};
use pnc_pki::PlaintextTestKeys;
use pnc_pki::dev::DevCert;
use pnc_pki::keystore::{Kek, KeyStore};
use pnc_proto::principal::Role;
use pnc_tests::{Backend, Sandbox};
use provisioning_support::*;

/// The sandbox's dev PKI written out with the example vehicle's key in plaintext, as
/// `pnc pki init --dev` does for a user who wants to play the car.
fn write_test_material(pki: &pnc_pki::DevPki) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("out dir");
    let key_store = KeyStore::open(
        out.path().join("keys"),
        Kek::load_or_create(&out.path().join("kek")).expect("kek"),
    )
    .expect("key store");
    pki.write_out(out.path(), &key_store, PlaintextTestKeys::Write)
        .expect("write dev pki");
    out
}

fn connection(sandbox: &Sandbox, token: &str, roots: Vec<std::path::PathBuf>) -> Connection {
    Connection {
        url: sandbox.base_url.clone(),
        token: token.to_string(),
        roots,
        session_id: Some("2A3DC6D75411F647".to_string()),
        out_key: None,
    }
}

async fn simulator_installs_a_contract_on(backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    let pki = dev_pki(&sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(&sandbox, &admin.token, &pki).await;
    register_dev_vehicle(&sandbox, &pki).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (status, body) = generate(&sandbox, &emsp.token, EMAID, EXAMPLE_PCID).await;
    assert_eq!(status, 201, "{body}");
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;

    let files = write_test_material(&pki);
    let path = |name: &str| files.path().join(name);
    let mut args = InstallArgs {
        connection: connection(&sandbox, &cpo.token, vec![path("v2g-root.pem")]),
        oem_cert: path("oem-provisioning.pem"),
        oem_key: path("oem-provisioning-key.pem"),
        oem_chain: None,
        iso20: false,
        maximum_contracts: 1,
        prioritized_emaids: Vec::new(),
    };
    let outcome = install(&args).await.expect("the car accepts the contract");
    assert_eq!(outcome.emaid, EMAID);
    assert_eq!(outcome.session_id, hex::decode("2A3DC6D75411F647").unwrap());
    assert_eq!(
        outcome.cps_root_fingerprint,
        hex::encode_upper(pki.certificate(DevCert::V2gRoot).sha256_fingerprint())
    );
    assert_eq!(
        outcome.contract_chain.len(),
        3,
        "leaf, MO Sub-CA 2, MO Sub-CA 1"
    );
    assert_eq!(outcome.contract_chain[0].common_name(), Some(EMAID));
    let report = outcome.report();
    assert!(report.starts_with(&format!("eMAID: {EMAID}\n")), "{report}");
    assert!(report.contains("-----BEGIN CERTIFICATE-----"), "{report}");

    // The contract key it decrypted is the certificate's: write it and use it.
    let key_file = path("contract-key.pem");
    outcome.write_key(&key_file).expect("write key");
    let key = pnc_pki::SoftwareSigner::from_pem("contract", &std::fs::read(&key_file).unwrap())
        .expect("a PEM key");
    assert_eq!(
        pnc_pki::Signer::public_key_spki_der(&key),
        outcome.contract_chain[0].public_key_spki_der()
    );

    // A car that trusts only a root pnc has no CPS chain under gets no contract.
    let foreign = pnc_pki::DevPki::generate(&pnc_pki::DevPkiOptions::default()).expect("pki");
    let foreign_root = path("foreign-root.pem");
    std::fs::write(
        &foreign_root,
        foreign.certificate(DevCert::V2gRoot).to_pem(),
    )
    .unwrap();
    args.connection.roots = vec![foreign_root];
    match install(&args).await {
        Err(EvError::Refused(code)) => assert!(code.starts_with("FAILED"), "{code}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Bad input is the operator's mistake, named.
    args.connection.roots = vec![path("v2g-root.pem")];
    args.oem_key = path("secc-key.pem");
    match install(&args).await {
        Err(EvError::Input(message)) => assert!(message.contains("does not belong"), "{message}"),
        other => panic!("expected an input error, got {other:?}"),
    }

    // The car renews the contract it holds: CertificateUpdateReq signed with the contract
    // key; the new key comes back encrypted to the old contract certificate [V2G2-821].
    let update_args = UpdateArgs {
        connection: connection(&sandbox, &cpo.token, vec![path("v2g-root.pem")]),
        contract_cert: {
            let file = path("contract.pem");
            std::fs::write(&file, outcome.contract_chain[0].to_pem()).unwrap();
            file
        },
        contract_key: key_file,
        contract_chain: {
            let file = path("contract-chain.pem");
            let chain: String = outcome.contract_chain[1..]
                .iter()
                .map(|c| c.to_pem())
                .collect();
            std::fs::write(&file, chain).unwrap();
            Some(file)
        },
    };
    let renewed = update(&update_args)
        .await
        .expect("the car accepts the renewal");
    assert_eq!(renewed.emaid, EMAID);
    assert_eq!(renewed.contract_chain[0].common_name(), Some(EMAID));
    assert_ne!(
        renewed.contract_chain[0].der(),
        outcome.contract_chain[0].der(),
        "a new contract certificate"
    );
    assert_ne!(
        renewed.contract_chain[0].public_key_spki_der(),
        outcome.contract_chain[0].public_key_spki_der(),
        "with a new key"
    );
}

#[tokio::test]
async fn ok_simulator_installs_a_contract_sqlite() {
    simulator_installs_a_contract_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn ok_simulator_installs_a_contract_postgres() {
    simulator_installs_a_contract_on(Backend::Postgres).await;
}
