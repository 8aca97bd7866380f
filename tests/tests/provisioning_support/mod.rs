//! Shared steps of the provisioning and EV-installation suites: wait for pnc's own roots,
//! load the sandbox's dev PKI (the example vehicle's key), register the example vehicle,
//! generate a contract, and verify signed contract data the way an EV does.
#![allow(dead_code)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_exi::signature::{self, Profile};
use pnc_pki::dev::{DevCert, DevPki, KEYS_DIR};
use pnc_pki::keystore::{Kek, KeyStore};
use pnc_pki::{Certificate, validate_path};
use pnc_proto::principal::Role;
use pnc_tests::{Sandbox, TestClient};
use serde_json::{Value, json};
use time::OffsetDateTime;

pub const ISO2_NAMESPACE: &str = "urn:iso:15118:2:2013:MsgDef";
/// The -20 namespace OPCP uses (`xsdMsgDefNamespace`).
pub const ISO20_MSG_DEF: &str = "urn:iso:15118:20:2022:MsgDef";
/// The -20 schema namespace OCPP names (`iso15118SchemaVersion`).
pub const ISO20_SCHEMA: &str = "urn:iso:std:iso:15118:-20:CommonMessages";
/// The SessionID of the -20 requests these helpers build.
pub const ISO20_SESSION_ID: [u8; 8] = [0x5E, 0x55, 0x10, 0x20, 0x15, 0x11, 0x8A, 0x0F];
/// The dev PKI's example vehicle (DevPkiOptions::default).
pub const EXAMPLE_PCID: &str = "PNCDEMOVEHICLE0011";
pub const PROVIDER: &str = "DEPNC";
pub const EMAID: &str = "DEPNCC00000001";

/// An eMSP-PKI contract as OPCP's `contractData` holds it: a fresh contract key, its
/// certificate for `emaid` under `mo_pki`'s MO Sub-CA 2 (with both MO Sub-CAs), and the key
/// sealed to `oem_pki`'s example vehicle; with the contract certificate.
pub fn emsp_contract_data(mo_pki: &DevPki, oem_pki: &DevPki, emaid: &str) -> (Value, Certificate) {
    use pnc_pki::key_transport::iso2;
    let contract_key = iso2::generate_contract_key().expect("contract key");
    let contract = mo_pki
        .issue_contract(
            emaid,
            contract_key.public_key_spki_der(),
            time::Duration::days(90),
        )
        .expect("contract certificate");
    let sealed = iso2::seal(
        oem_pki
            .certificate(DevCert::OemProvisioning)
            .public_key_spki_der(),
        contract_key.private_key(),
    )
    .expect("seal the contract key");
    let base64 = |der: &[u8]| STANDARD.encode(der);
    let data = json!({
        "contractCertificate": base64(contract.der()),
        "contractSubCa2Certificate": base64(mo_pki.certificate(DevCert::MoSubCa2).der()),
        "contractSubCa1Certificate": base64(mo_pki.certificate(DevCert::MoSubCa1).der()),
        "contractSignatureEncryptedPrivateKey": base64(&sealed.encrypted_private_key),
        "dHpublickey": base64(&sealed.dh_public_key),
    });
    (data, contract)
}

/// The sandbox's dev PKI, loaded from its data dir as the provisioning service does.
pub fn dev_pki(sandbox: &Sandbox) -> DevPki {
    let directory = sandbox.data_dir.path().join("pki");
    let kek = Kek::load(&directory.join("kek")).expect("kek");
    let key_store = KeyStore::open(directory.join(KEYS_DIR), kek).expect("key store");
    DevPki::load(&directory, &key_store).expect("dev pki")
}

/// Seeding runs in order and records the example vehicle's issuance last: once that
/// record exists, pnc's roots and Sub-CAs are known to the truststore too.
async fn seeding_done(sandbox: &Sandbox, pki: &DevPki) -> bool {
    let Ok(database) = pnc_registry::open_database(&sandbox.storage()).await else {
        return false;
    };
    let issuer_key_id = pki
        .certificate(DevCert::OemSubCa2)
        .subject_key_identifier()
        .unwrap_or_default()
        .to_vec();
    pnc_registry::issued::IssuedStore::new(database)
        .get(
            &pnc_proto::registry::v1::get_issued_request::Issuer::IssuerKeyId(issuer_key_id),
            pki.certificate(DevCert::OemProvisioning).serial(),
        )
        .await
        .is_ok()
}

/// Waits until the provisioning service has put pnc's V2G, MO and OEM roots into the pool
/// and registered its Sub-CAs and issuance records.
pub async fn wait_for_dev_roots(sandbox: &Sandbox, token: &str, pki: &DevPki) {
    let wanted: Vec<String> = [DevCert::V2gRoot, DevCert::MoRoot, DevCert::OemRoot]
        .into_iter()
        .map(|which| STANDARD.encode(pki.certificate(which).der()))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let response = sandbox
            .http
            .get(sandbox.url("/v1/root/rootCerts"))
            .bearer_auth(token)
            .send()
            .await
            .expect("list roots");
        if response.status() == 200 {
            let body: Value = response.json().await.expect("json");
            let present: Vec<&str> = body["RootCertificateCollection"]["rootCertificates"]
                .as_array()
                .map(|roots| {
                    roots
                        .iter()
                        .filter_map(|root| root["caCertificate"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            if wanted.iter().all(|root| present.contains(&root.as_str()))
                && seeding_done(sandbox, pki).await
            {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pnc's dev roots did not appear in the root pool"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Puts `root` into the pool as an OEM root through RCP (the truststore checks its
/// self-signature); fails the test when refused.
pub async fn add_oem_root(sandbox: &Sandbox, admin_token: &str, root: &Certificate) {
    let response = sandbox
        .http
        .put(sandbox.url("/v1/root/rootCerts"))
        .bearer_auth(admin_token)
        .json(&json!({
            "caCertificate": STANDARD.encode(root.der()),
            "rootType": "OEM",
        }))
        .send()
        .await
        .expect("put root");
    let status = response.status();
    assert!(
        status.is_success(),
        "put the OEM root: {}",
        response.text().await.unwrap_or_default()
    );
}

/// Registers the dev PKI's example vehicle (its provisioning certificate and OEM Sub-CAs)
/// as an OEM of WMI `PNC`; the OEM's client, for tests that act as it again.
pub async fn register_dev_vehicle(sandbox: &Sandbox, pki: &DevPki) -> TestClient {
    let oem = sandbox.client(Role::Oem, &["PNC"], &[], &[]).await;
    register_vehicle(
        sandbox,
        &oem.token,
        &[
            pki.certificate(DevCert::OemProvisioning),
            pki.certificate(DevCert::OemSubCa2),
            pki.certificate(DevCert::OemSubCa1),
        ],
    )
    .await;
    oem
}

/// Registers a provisioning certificate chain through OPCP PCP as an OEM of its WMI.
pub async fn register_vehicle(sandbox: &Sandbox, oem_token: &str, chain: &[&Certificate]) {
    let (status, body) = register_vehicle_as(sandbox, oem_token, chain, ISO2_NAMESPACE).await;
    assert_eq!(status, 200, "PCP upload: {body}");
}

/// `PUT /v1/oem/provCerts` of leaf, Sub-CA 2, Sub-CA 1 under `namespace`; status and body.
pub async fn register_vehicle_as(
    sandbox: &Sandbox,
    oem_token: &str,
    chain: &[&Certificate],
    namespace: &str,
) -> (u16, String) {
    let response = sandbox
        .http
        .put(sandbox.url("/v1/oem/provCerts"))
        .bearer_auth(oem_token)
        .json(&json!({
            "vehicleCertificate": STANDARD.encode(chain[0].der()),
            "subCA2Certificate": STANDARD.encode(chain[1].der()),
            "subCA1Certificate": STANDARD.encode(chain[2].der()),
            "xsdMsgDefNamespace": namespace,
        }))
        .send()
        .await
        .expect("put provisioning certificate");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

pub fn rfc3339(moment: OffsetDateTime) -> String {
    moment
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// `PUT /v1/cps/generate/signedContractData` for -2; returns status and body.
pub async fn generate(sandbox: &Sandbox, token: &str, emaid: &str, pcid: &str) -> (u16, Value) {
    generate_as(sandbox, token, emaid, pcid, Some(ISO2_NAMESPACE)).await
}

/// `PUT /v1/cps/generate/signedContractData` under `namespace`; without one the vehicle's
/// key decides (-20 for P-521 and Ed448). Returns status and body.
pub async fn generate_as(
    sandbox: &Sandbox,
    token: &str,
    emaid: &str,
    pcid: &str,
    namespace: Option<&str>,
) -> (u16, Value) {
    let now = OffsetDateTime::now_utc();
    let mut body = json!({
        "contractBegins": rfc3339(now - time::Duration::days(30)),
        "contractEnds": rfc3339(now + time::Duration::days(365)),
        "emaid": emaid,
        "pcid": pcid,
    });
    if let Some(namespace) = namespace {
        body["xsdMsgDefNamespace"] = json!(namespace);
    }
    let response = sandbox
        .http
        .put(sandbox.url("/v1/cps/generate/signedContractData"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("generate");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// What an EV receives, taken apart.
pub struct ContractAnswer {
    pub contract_chain: Vec<Certificate>,
    pub cps_chain: Vec<Certificate>,
    pub encrypted_private_key: Vec<u8>,
    pub dh_public_key: Vec<u8>,
    pub emaid: String,
}

fn certificates(chain: &pnc_exi::Element) -> Vec<Certificate> {
    let mut ders = vec![
        STANDARD
            .decode(
                chain
                    .find("Certificate")
                    .expect("certificate")
                    .text_content()
                    .trim(),
            )
            .expect("base64"),
    ];
    if let Some(subs) = chain.find("SubCertificates") {
        for sub in subs.find_all("Certificate") {
            ders.push(STANDARD.decode(sub.text_content().trim()).expect("base64"));
        }
    }
    ders.iter()
        .map(|der| Certificate::from_der(der).expect("certificate parses"))
        .collect()
}

/// Verifies a `V2G_Message` tree (from EXI or the CPS's XML) as an EV does: the four
/// references re-encoded as EXI fragments, the signature with the CPS leaf of the message,
/// the CPS chain up to `v2g_root`. Returns the parts.
pub fn verify_answer(message: &pnc_exi::Element, v2g_root: &Certificate) -> ContractAnswer {
    let message = message.normalized();
    let body = message.find("Body").expect("Body");
    let res = body
        .find("CertificateInstallationRes")
        .or_else(|| body.find("CertificateUpdateRes"))
        .expect("CertificateInstallationRes or CertificateUpdateRes");
    let cps_chain = certificates(
        res.find("SAProvisioningCertificateChain")
            .expect("SA chain"),
    );
    let key = signature::public_key_from_cert_der(cps_chain[0].der()).expect("cps key");
    let header = message.find("Header").expect("Header");
    let signature_element = header.find("Signature").expect("Signature");
    let references = signature_element
        .find("SignedInfo")
        .expect("SignedInfo")
        .find_all("Reference")
        .count();
    assert_eq!(references, 4, "exactly the four signed elements");
    signature::verify(
        Profile::Iso2,
        signature_element,
        signature::resolver(body),
        &key,
    )
    .expect("the answer verifies with the CPS leaf");
    let intermediates: Vec<&[u8]> = cps_chain[1..].iter().map(Certificate::der).collect();
    validate_path(
        cps_chain[0].der(),
        &intermediates,
        &[v2g_root.der()],
        OffsetDateTime::now_utc(),
    )
    .expect("the CPS chain reaches the V2G root");
    let bytes_of = |name: &str| {
        STANDARD
            .decode(res.find(name).expect(name).text_content().trim())
            .expect("base64")
    };
    ContractAnswer {
        contract_chain: certificates(
            res.find("ContractSignatureCertChain")
                .expect("contract chain"),
        ),
        cps_chain,
        encrypted_private_key: bytes_of("ContractSignatureEncryptedPrivateKey"),
        dh_public_key: bytes_of("DHpublickey"),
        emaid: res.find("eMAID").expect("eMAID").text_content(),
    }
}

/// Opens the sealed contract key with the vehicle's key and checks it matches the
/// contract certificate [V2G2-823]; returns the contract key as the EV now holds it.
pub fn open_contract_key(pki: &DevPki, answer: &ContractAnswer) -> HeldKey {
    open_contract_key_with(
        pki.software_signer(DevCert::OemProvisioning).as_ref(),
        answer,
    )
}

/// A private key the EV holds (its contract key after installation).
pub struct HeldKey {
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    spki: Vec<u8>,
}

impl HeldKey {
    pub fn from_scalar(scalar: &[u8]) -> HeldKey {
        use openssl::bn::{BigNum, BigNumContext};
        use openssl::ec::{EcGroup, EcKey, EcPoint};
        let group = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("group");
        let private = BigNum::from_slice(scalar).expect("scalar");
        let mut context = BigNumContext::new().expect("context");
        let mut public = EcPoint::new(&group).expect("point");
        public
            .mul_generator2(&group, &private, &mut context)
            .expect("public point");
        let key = openssl::pkey::PKey::from_ec_key(
            EcKey::from_private_components(&group, &private, &public).expect("ec key"),
        )
        .expect("pkey");
        let spki = key.public_key_to_der().expect("spki");
        HeldKey { key, spki }
    }

    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// Raw r ‖ s over `message` with SHA-256 (ISO 15118-2 signatures).
    pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &self.key)
                .expect("signer");
        signer.update(message).expect("update");
        let der = signer.sign_to_vec().expect("sign");
        pnc_pki::signer::ecdsa_der_to_raw(&der, 32).expect("raw")
    }
}

impl pnc_pki::KeyAgreement for HeldKey {
    fn agree(
        &self,
        peer_public_key_spki_der: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, pnc_pki::SignerError> {
        let peer = openssl::pkey::PKey::public_key_from_der(peer_public_key_spki_der)
            .map_err(|error| pnc_pki::SignerError::Backend(error.to_string()))?;
        let mut deriver = openssl::derive::Deriver::new(&self.key)
            .map_err(|error| pnc_pki::SignerError::Backend(error.to_string()))?;
        deriver
            .set_peer(&peer)
            .map_err(|error| pnc_pki::SignerError::Backend(error.to_string()))?;
        Ok(zeroize::Zeroizing::new(deriver.derive_to_vec().map_err(
            |error| pnc_pki::SignerError::Backend(error.to_string()),
        )?))
    }

    fn agreement_public_key_spki_der(&self) -> &[u8] {
        &self.spki
    }
}

/// Opens the sealed contract key with `receiver` (the vehicle for Install, the old contract
/// key for Update) and checks it matches the contract certificate [V2G2-823].
pub fn open_contract_key_with(
    receiver: &dyn pnc_pki::KeyAgreement,
    answer: &ContractAnswer,
) -> HeldKey {
    let vehicle = receiver;
    let sealed = pnc_pki::key_transport::iso2::SealedContractKey::from_slices(
        &answer.encrypted_private_key,
        &answer.dh_public_key,
    )
    .expect("sealed key lengths");
    let scalar = pnc_pki::key_transport::iso2::open(
        vehicle,
        &sealed,
        answer.contract_chain[0].public_key_spki_der(),
    )
    .expect("the contract key opens with the receiver's key and matches the certificate");
    HeldKey::from_scalar(&scalar[..])
}

/// A `RootCertificateID` naming `root`, with the issuer written the RFC 4514 way (as the EV
/// simulator writes it).
pub fn root_id(root: &Certificate) -> pnc_exi::iso2::X509IssuerSerial {
    pnc::ev::root_certificate_id(root).expect("root certificate ID")
}

/// The EV's side: a CertificateInstallationReq signed with the vehicle key, as EXI.
pub fn installation_request(
    vehicle_key: &dyn pnc_pki::Signer,
    vehicle_certificate: &Certificate,
    session_id: &[u8],
    root_ids: Vec<pnc_exi::iso2::X509IssuerSerial>,
) -> (pnc_exi::iso2::V2gMessage, Vec<u8>) {
    use pnc_exi::iso2::{Body, CertificateInstallationReq, MessageHeader, V2gMessage};
    let request = CertificateInstallationReq {
        id: "req".to_string(),
        oem_provisioning_cert: vehicle_certificate.der().to_vec(),
        list_of_root_certificate_ids: root_ids,
    };
    let element = request.to_element().expect("request element");
    let sign = |signed_info: &[u8]| -> Result<Vec<u8>, signature::SignatureError> {
        vehicle_key
            .sign_raw(signed_info)
            .map_err(|error| signature::SignatureError::Signer(error.to_string()))
    };
    let signature = signature::sign_elements(Profile::Iso2, &[&element], &sign).expect("sign");
    let message = V2gMessage {
        header: MessageHeader {
            session_id: session_id.to_vec(),
            notification: None,
            signature: Some(signature),
        },
        body: Body::CertificateInstallationReq(request),
    };
    let exi = message.encode().expect("encode request");
    (message, exi)
}

/// `POST /v1/ocpp/get-15118-ev-certificate`; returns status and body.
pub async fn ocpp_install(sandbox: &Sandbox, token: &str, exi: &[u8]) -> (u16, Value) {
    let response = sandbox
        .http
        .post(sandbox.url("/v1/ocpp/get-15118-ev-certificate"))
        .bearer_auth(token)
        .json(&json!({
            "iso15118SchemaVersion": ISO2_NAMESPACE,
            "action": "Install",
            "exiRequest": STANDARD.encode(exi),
        }))
        .send()
        .await
        .expect("get-15118-ev-certificate");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Decodes an `exiResponse` and returns the ResponseCode, SessionID and the decoded tree.
pub fn decode_answer(exi_base64: &str) -> (String, Vec<u8>, pnc_exi::Element) {
    let exi = STANDARD.decode(exi_base64).expect("base64");
    let root = pnc_exi::decode_document(pnc_exi::Schema::Iso2, &exi).expect("the answer decodes");
    let message = pnc_exi::iso2::V2gMessage::from_element(&root).expect("typed answer");
    let pnc_exi::iso2::Body::CertificateInstallationRes(res) = &message.body else {
        panic!("not a CertificateInstallationRes");
    };
    (
        res.response_code.as_str().to_string(),
        message.header.session_id.clone(),
        root,
    )
}

/// The -20 EV's side: a CertificateInstallationReq whose OEMProvisioningCertificateChain
/// (leaf, then SubCertificates) is signed with `vehicle_key` (P-521, SHA-512), as EXI, with
/// [`ISO20_SESSION_ID`].
pub fn request20(
    vehicle_key: &dyn pnc_pki::Signer,
    chain: &[&Certificate],
    root_ids: Vec<pnc_exi::iso20::X509IssuerSerial>,
    maximum: u8,
    prioritized: &[&str],
) -> Vec<u8> {
    let sign = |signed_info: &[u8]| -> Result<Vec<u8>, signature::SignatureError> {
        vehicle_key
            .sign_raw(signed_info)
            .map_err(|error| signature::SignatureError::Signer(error.to_string()))
    };
    request20_signed(Profile::Iso20, &sign, chain, root_ids, maximum, prioritized)
}

/// [`request20`] with any -20 signature profile and signing function (Ed448 vehicles).
pub fn request20_signed(
    profile: Profile,
    signer: &dyn signature::ExiSigner,
    chain: &[&Certificate],
    root_ids: Vec<pnc_exi::iso20::X509IssuerSerial>,
    maximum: u8,
    prioritized: &[&str],
) -> Vec<u8> {
    use pnc_exi::iso20::{CertificateChain, CertificateInstallationReq, Header};
    let oem_chain = CertificateChain {
        id: Some("chain".to_string()),
        certificate: chain[0].der().to_vec(),
        sub_certificates: chain[1..].iter().map(|c| c.der().to_vec()).collect(),
    };
    let element = oem_chain
        .to_element("OEMProvisioningCertificateChain")
        .expect("element");
    let signature = signature::sign_elements(profile, &[&element], signer).expect("sign");
    CertificateInstallationReq {
        header: Header {
            session_id: ISO20_SESSION_ID.to_vec(),
            time_stamp: 1_763_700_000,
            signature: Some(signature),
        },
        oem_provisioning_certificate_chain: oem_chain,
        list_of_root_certificate_ids: root_ids,
        maximum_contract_certificate_chains: maximum,
        prioritized_emaids: prioritized.iter().map(|e| e.to_string()).collect(),
    }
    .encode()
    .expect("encode request")
}

/// `POST /v1/ocpp/get-15118-ev-certificate` with the -20 schema; status and body.
pub async fn ocpp_install20(
    sandbox: &Sandbox,
    token: &str,
    exi: &[u8],
    action: &str,
) -> (u16, Value) {
    let response = sandbox
        .http
        .post(sandbox.url("/v1/ocpp/get-15118-ev-certificate"))
        .bearer_auth(token)
        .json(&json!({
            "iso15118SchemaVersion": ISO20_SCHEMA,
            "action": action,
            "exiRequest": STANDARD.encode(exi),
            "maximumContractCertificateChains": 8,
        }))
        .send()
        .await
        .expect("get-15118-ev-certificate");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The -20 ResponseCode of an OCPP answer (SessionID checked) and the reason pnc gives.
pub fn answer20_code(body: &Value) -> (String, String) {
    let exi = STANDARD
        .decode(body["exiResponse"].as_str().expect("exiResponse"))
        .expect("base64");
    let res = pnc_exi::iso20::CertificateInstallationRes::decode(&exi).expect("a -20 answer");
    assert_eq!(res.header.session_id, ISO20_SESSION_ID, "SessionID echoed");
    let reason = body["statusInfo"]["additionalInfo"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (res.response_code.as_str().to_string(), reason)
}

/// The EV's CertificateUpdateReq in session `session_id`, signed with its current
/// contract key.
pub fn update_request(
    session_id: &[u8],
    contract_key: &HeldKey,
    contract_chain: &[Certificate],
    emaid: &str,
    root_ids: Vec<pnc_exi::iso2::X509IssuerSerial>,
) -> Vec<u8> {
    use pnc_exi::iso2::{Body, CertificateChain, CertificateUpdateReq, MessageHeader, V2gMessage};
    let request = CertificateUpdateReq {
        id: "upd".to_string(),
        contract_signature_cert_chain: CertificateChain {
            id: None,
            certificate: contract_chain[0].der().to_vec(),
            sub_certificates: contract_chain[1..]
                .iter()
                .map(|certificate| certificate.der().to_vec())
                .collect(),
        },
        emaid: emaid.to_string(),
        list_of_root_certificate_ids: root_ids,
    };
    let element = request.to_element().expect("element");
    let sign = |signed_info: &[u8]| -> Result<Vec<u8>, pnc_exi::signature::SignatureError> {
        Ok(contract_key.sign_raw(signed_info))
    };
    let signature =
        pnc_exi::signature::sign_elements(pnc_exi::signature::Profile::Iso2, &[&element], &sign)
            .expect("sign");
    V2gMessage {
        header: MessageHeader {
            session_id: session_id.to_vec(),
            notification: None,
            signature: Some(signature),
        },
        body: Body::CertificateUpdateReq(request),
    }
    .encode()
    .expect("encode")
}
