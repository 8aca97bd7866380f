//! Revocation of foreign OEM provisioning certificates at installation time, end to end on
//! both backends: an OEM PKI made with the openssl CLI (root in the pool as an OEM root,
//! Sub-CA 1 and 2 named only in the PCP registrations, vehicle leaves whose AIA names a real
//! `openssl ocsp` responder on loopback), vehicles registered through OPCP PCP, contracts
//! generated, and the EV's CertificateInstallationReq sent through the OCPP-shaped endpoint.
//! A revoked leaf gets FAILED_CertificateRevoked, a good one its contract; with the
//! responder gone and nothing cached, `pki.revocation_unavailable` decides. The same runs on
//! the ISO 15118-20 path with a P-521 OEM PKI (WARNING_CertificateRevoked for a revoked leaf).

mod provisioning_support;

use std::path::Path;

use pnc_common::config::RevocationUnavailable;
use pnc_pki::dev::DevCert;
use pnc_proto::principal::Role;
use pnc_tests::openssl_ocsp::free_port;
use pnc_tests::openssl_oem::{KeyType, OemPki};
use pnc_tests::{Backend, Sandbox};
use provisioning_support::*;

const SESSION_ID: [u8; 8] = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80];
const WMI: &str = "TST";

/// Which installation path a scenario drives.
#[derive(Clone, Copy, Debug)]
enum Standard {
    /// ISO 15118-2: a P-256 OEM PKI.
    Iso2,
    /// ISO 15118-20: a P-521 OEM PKI (ecdsa-with-SHA512), SubCertificates sent by the EV.
    Iso20,
}

impl Standard {
    fn key_type(self) -> KeyType {
        match self {
            Standard::Iso2 => KeyType::P256,
            Standard::Iso20 => KeyType::P521,
        }
    }

    /// (good, revoked, never asked): 17 characters for -2, 18 for -20 (the length the -20
    /// AES-GCM AAD takes as it is [V2G20-2492]).
    fn pcids(self) -> [&'static str; 3] {
        match self {
            Standard::Iso2 => [
                "TSTGOODVEHICLE001",
                "TSTREVOKEDVEHIC01",
                "TSTLATEVEHICLE001",
            ],
            Standard::Iso20 => [
                "TSTGOODVEHICLE0201",
                "TSTREVOKEDVEHIC201",
                "TSTLATEVEHICLE0201",
            ],
        }
    }

    /// The ResponseCode of a revoked certificate (for -20: install20::unconfirmed).
    fn revoked(self) -> &'static str {
        match self {
            Standard::Iso2 => "FAILED_CertificateRevoked",
            Standard::Iso20 => "WARNING_CertificateRevoked",
        }
    }
}

/// The OEM PKI of a scenario, every vehicle naming `responder_url`.
fn oem_pki(dir: &Path, responder_url: &str, standard: Standard, pcids: &[&str]) -> OemPki {
    let key_type = standard.key_type();
    let vehicles: Vec<(&str, KeyType)> = pcids.iter().map(|pcid| (*pcid, key_type)).collect();
    OemPki::create(dir, key_type, &vehicles, Some(responder_url))
}

/// Puts the OEM root into the pool, registers every vehicle through PCP (the only place the
/// Sub-CAs are named: provisioning makes them known CAs once it has validated a chain, so
/// the OCSP service finds the vehicles' issuer) and generates a contract for each; returns
/// the CPO token.
async fn prepare(sandbox: &Sandbox, pki: &OemPki, standard: Standard, pcids: &[&str]) -> String {
    let dev = dev_pki(sandbox);
    let admin = sandbox.admin().await;
    wait_for_dev_roots(sandbox, &admin.token, &dev).await;
    add_oem_root(sandbox, &admin.token, &pki.certificate("root")).await;
    let oem = sandbox.client(Role::Oem, &[WMI], &[], &[]).await;
    let emsp = sandbox.client(Role::Emsp, &[], &[PROVIDER], &[]).await;
    let (namespace, contract_namespace) = match standard {
        Standard::Iso2 => (ISO2_NAMESPACE, Some(ISO2_NAMESPACE)),
        // Without a namespace the vehicle's P-521 key makes the contract a -20 one.
        Standard::Iso20 => (ISO20_MSG_DEF, None),
    };
    for (position, pcid) in pcids.iter().enumerate() {
        let [leaf, sub2, sub1] = pki.chain(pcid);
        let (status, body) =
            register_vehicle_as(sandbox, &oem.token, &[&leaf, &sub2, &sub1], namespace).await;
        assert_eq!(status, 200, "PCP upload of {pcid}: {body}");
        let emaid = format!("DEPNCC{:08}", 100 + position);
        let (status, body) =
            generate_as(sandbox, &emsp.token, &emaid, pcid, contract_namespace).await;
        assert_eq!(status, 201, "generate for {pcid}: {body}");
    }
    sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await.token
}

/// The vehicle's CertificateInstallationReq through the OCPP-shaped endpoint; the ISO
/// ResponseCode and the reason pnc gives.
async fn install(
    sandbox: &Sandbox,
    cpo: &str,
    pki: &OemPki,
    standard: Standard,
    pcid: &str,
) -> (String, String) {
    let dev = dev_pki(sandbox);
    let body = match standard {
        Standard::Iso2 => {
            let (_, exi) = installation_request(
                &pki.signer(pcid),
                &pki.certificate(pcid),
                &SESSION_ID,
                vec![root_id(dev.certificate(DevCert::V2gRoot))],
            );
            let (status, body) = ocpp_install(sandbox, cpo, &exi).await;
            assert_eq!(status, 200, "{pcid}: {body}");
            body
        }
        Standard::Iso20 => {
            let [leaf, sub2, sub1] = pki.chain(pcid);
            let exi = request20(
                &pki.signer(pcid),
                &[&leaf, &sub2, &sub1],
                vec![root_id(dev.certificate(DevCert::Iso20V2gRoot))],
                1,
                &[],
            );
            let (status, body) = ocpp_install20(sandbox, cpo, &exi, "Install").await;
            assert_eq!(status, 200, "{pcid}: {body}");
            body
        }
    };
    assert_eq!(body["status"], "Accepted", "{pcid}: {body}");
    match standard {
        Standard::Iso2 => {
            let (code, session, _) =
                decode_answer(body["exiResponse"].as_str().expect("exiResponse"));
            assert_eq!(session, SESSION_ID, "{pcid}: SessionID echoed");
            let reason = body["statusInfo"]["additionalInfo"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (code, reason)
        }
        Standard::Iso20 => answer20_code(&body),
    }
}

fn no_prefetch(config: &mut pnc_common::Config) {
    config.ocsp.prefetch_interval_seconds = 0;
}

async fn revocation_scenario(backend: Backend, standard: Standard) {
    let work = tempfile::tempdir().expect("dir");
    let port = free_port();
    let pcids = standard.pcids();
    let [good, revoked, late] = pcids;
    let pki = oem_pki(
        work.path(),
        &format!("http://127.0.0.1:{port}"),
        standard,
        &pcids,
    );
    let mut responder = pki.start_responder(port);
    let sandbox = Sandbox::start_with(backend, no_prefetch).await;
    let cpo = prepare(&sandbox, &pki, standard, &pcids).await;

    // ok/good: the responder says good; the vehicle gets its contract.
    let (code, reason) = install(&sandbox, &cpo, &pki, standard, good).await;
    assert_eq!(code, "OK", "ok/good: {reason}");
    // fail/revoked: revocation comes before the contract.
    let (code, reason) = install(&sandbox, &cpo, &pki, standard, revoked).await;
    assert_eq!(code, standard.revoked(), "fail/revoked: {reason}");
    assert!(reason.contains("revoked (OCSP)"), "{reason}");

    // With the responder gone, the cached answers still hold until their nextUpdate.
    responder.stop();
    let (code, reason) = install(&sandbox, &cpo, &pki, standard, revoked).await;
    assert_eq!(code, standard.revoked(), "cached revoked: {reason}");
    let (code, reason) = install(&sandbox, &cpo, &pki, standard, good).await;
    assert_eq!(code, "OK", "cached good: {reason}");
    // ok/unavailable-accepted: never asked, no responder, the default accepts.
    let (code, reason) = install(&sandbox, &cpo, &pki, standard, late).await;
    assert_eq!(code, "OK", "unavailable, accepted by default: {reason}");
    sandbox.stop().await;
}

/// `pki.revocation_unavailable = "refuse"`: no status, no contract (FAILED on both paths).
async fn unavailable_refused_scenario(standard: Standard) {
    let work = tempfile::tempdir().expect("dir");
    let port = free_port();
    let good = standard.pcids()[0];
    let pki = oem_pki(
        work.path(),
        &format!("http://127.0.0.1:{port}"),
        standard,
        &[good],
    );
    // No responder is started: nothing listens on the AIA's port.
    let sandbox = Sandbox::start_with(Backend::Sqlite, |config| {
        no_prefetch(config);
        config.pki.revocation_unavailable = RevocationUnavailable::Refuse;
    })
    .await;
    let cpo = prepare(&sandbox, &pki, standard, &[good]).await;
    let (code, reason) = install(&sandbox, &cpo, &pki, standard, good).await;
    assert_eq!(code, "FAILED", "{reason}");
    assert!(reason.contains("revocation status unavailable"), "{reason}");
    // The responder comes up: the same vehicle is answered.
    let _responder = pki.start_responder(port);
    let (code, reason) = install(&sandbox, &cpo, &pki, standard, good).await;
    assert_eq!(code, "OK", "{reason}");
    sandbox.stop().await;
}

#[tokio::test]
async fn ok_foreign_oem_revocation_checked_by_ocsp_sqlite() {
    revocation_scenario(Backend::Sqlite, Standard::Iso2).await;
}

#[tokio::test]
async fn ok_foreign_oem_revocation_checked_by_ocsp_postgres() {
    revocation_scenario(Backend::Postgres, Standard::Iso2).await;
}

/// `pki.revocation_unavailable = "refuse"`: no status, no contract.
#[tokio::test]
async fn fail_revocation_unavailable_refused_when_configured_sqlite() {
    unavailable_refused_scenario(Standard::Iso2).await;
}

/// The -20 path: a foreign P-521 OEM PKI (pnc issued none of it) is checked through the OCSP
/// service against the same `openssl ocsp` responder.
#[tokio::test]
async fn ok_iso20_foreign_oem_revocation_checked_by_ocsp_sqlite() {
    revocation_scenario(Backend::Sqlite, Standard::Iso20).await;
}

#[tokio::test]
async fn ok_iso20_foreign_oem_revocation_checked_by_ocsp_postgres() {
    revocation_scenario(Backend::Postgres, Standard::Iso20).await;
}

#[tokio::test]
async fn fail_iso20_revocation_unavailable_refused_when_configured_sqlite() {
    unavailable_refused_scenario(Standard::Iso20).await;
}
