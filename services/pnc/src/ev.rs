//! `pnc ev`: plays the car. It builds and signs an ISO 15118-2 CertificateInstallationReq
//! (or CertificateUpdateReq), sends it through the OCPP-shaped endpoint as a charger's CSMS
//! would, and checks the answer the way an EV does: SessionID echoed, the signature with the
//! CPS leaf, the CPS chain to a root the car listed, the contract key decrypted with the
//! car's key and matching the contract certificate. A demo for users, a smoke test for
//! operators.
//!
//! With `--iso20`, `pnc ev install` speaks ISO 15118-20 instead: a P-521 or Ed448 car signs its
//! OEMProvisioningCertificateChain, lists `--prioritized-emaid`s and how many contracts it
//! takes, and checks the single-reference signature over SignedInstallationData and the
//! AES-GCM-sealed contract key (`pnc_pki::key_transport::iso20`; an Ed448 car opens an X448
//! key with the X448 key it derives from its Ed448 key, `key_transport::curve448`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use pnc_exi::iso2::{
    Body, CertificateChain, CertificateInstallationReq, CertificateUpdateReq, MessageHeader,
    ResponseCode, V2gMessage, X509IssuerSerial,
};
use pnc_exi::signature::{self, Profile};
use pnc_pki::key_transport::iso2::{SealedContractKey, open};
use pnc_pki::{Certificate, Signer, SoftwareSigner, validate_path};
use serde_json::Value;

const ISO2_NAMESPACE: &str = "urn:iso:15118:2:2013:MsgDef";

/// What both `pnc ev install` and `pnc ev update` need.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Base URL of pnc's HTTP edge, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub url: String,
    /// An access token of a CPO (or a charger) client.
    #[arg(long)]
    pub token: String,
    /// A V2G root the car trusts (PEM or DER; repeatable, at least one).
    #[arg(long = "root", required = true)]
    pub roots: Vec<PathBuf>,
    /// The V2G session's ID as hex (up to 8 bytes); random if absent.
    #[arg(long)]
    pub session_id: Option<String>,
    /// Write the new contract's private key here (PKCS#8 PEM, mode 0600), for a later
    /// `pnc ev update`.
    #[arg(long)]
    pub out_key: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The car's OEM provisioning certificate (PEM or DER).
    #[arg(long)]
    pub oem_cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long)]
    pub oem_key: PathBuf,
    /// The OEM Sub-CAs (PEM): ISO 15118-2 sends only the leaf, -20 sends them as
    /// SubCertificates (a bundle that starts with the leaf is fine).
    #[arg(long)]
    pub oem_chain: Option<PathBuf>,
    /// Speak ISO 15118-20 (a P-521 or Ed448 car) instead of ISO 15118-2.
    #[arg(long)]
    pub iso20: bool,
    /// -20: MaximumContractCertificateChains, how many contracts the car can take.
    #[arg(long, default_value_t = 1, requires = "iso20")]
    pub maximum_contracts: u8,
    /// -20: an eMAID the car prefers (repeatable, up to 8, in order of preference).
    #[arg(long = "prioritized-emaid", requires = "iso20")]
    pub prioritized_emaids: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The car's current contract certificate (PEM or DER).
    #[arg(long)]
    pub contract_cert: PathBuf,
    /// Its private key (PEM), e.g. what `pnc ev install --out-key` wrote.
    #[arg(long)]
    pub contract_key: PathBuf,
    /// The contract certificate's Sub-CAs (PEM, Sub-CA 2 then Sub-CA 1).
    #[arg(long)]
    pub contract_chain: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum EvCommand {
    /// Ask for a contract with the car's OEM provisioning certificate.
    Install(InstallArgs),
    /// Renew the car's contract with its current contract certificate.
    Update(UpdateArgs),
}

/// A contract the car accepted.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub emaid: String,
    /// Contract leaf, then its Sub-CAs.
    pub contract_chain: Vec<Certificate>,
    /// SHA-256 (upper-case hex) of the root the CPS chain ended at.
    pub cps_root_fingerprint: String,
    pub session_id: Vec<u8>,
    /// -20: RemainingContractCertificateChains of the answer.
    pub remaining_contract_certificate_chains: Option<u8>,
    /// The contract's private key as PKCS#8 PEM (only kept to write `--out-key`).
    contract_key_pem: zeroize::Zeroizing<Vec<u8>>,
}

/// Why the car refused, or why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum EvError {
    #[error("{0}")]
    Input(String),
    #[error("request to pnc failed: {0}")]
    Transport(String),
    #[error("pnc answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("pnc answered with ISO ResponseCode {0}")]
    Refused(String),
    #[error("the car rejects the answer: {0}")]
    Rejected(String),
}

fn input(context: &str) -> impl Fn(String) -> EvError + '_ {
    move |error| EvError::Input(format!("{context}: {error}"))
}

fn read_certificate(path: &Path) -> Result<Certificate, EvError> {
    let bytes =
        std::fs::read(path).map_err(|e| EvError::Input(format!("{}: {e}", path.display())))?;
    Certificate::from_pem_or_der(&bytes)
        .map_err(|e| EvError::Input(format!("{}: {e}", path.display())))
}

fn read_chain(path: Option<&Path>) -> Result<Vec<Certificate>, EvError> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let bytes =
        std::fs::read(path).map_err(|e| EvError::Input(format!("{}: {e}", path.display())))?;
    Certificate::all_from_pem(&bytes)
        .map_err(|e| EvError::Input(format!("{}: {e}", path.display())))
}

fn read_key(path: &Path) -> Result<SoftwareSigner, EvError> {
    let pem = zeroize::Zeroizing::new(
        std::fs::read(path).map_err(|e| EvError::Input(format!("{}: {e}", path.display())))?,
    );
    SoftwareSigner::from_pem("ev", &pem)
        .map_err(|e| EvError::Input(format!("{}: {e}", path.display())))
}

/// A `RootCertificateID` as EVs write it: the issuer in RFC 4514 order (reversed relative to
/// the certificate) and the serial in decimal.
pub fn root_certificate_id(root: &Certificate) -> Result<X509IssuerSerial, EvError> {
    let issuer_name = root
        .subject()
        .rdns()
        .iter()
        .rev()
        .flatten()
        .map(|attribute| {
            let name = match attribute.oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "0.9.2342.19200300.100.1.25" => "DC",
                other => other,
            };
            format!("{name}={}", attribute.value)
        })
        .collect::<Vec<_>>()
        .join(",");
    let serial = BigNum::from_slice(root.serial())
        .and_then(|serial| serial.to_dec_str().map(|text| text.to_string()))
        .map_err(|e| EvError::Input(format!("root serial: {e}")))?;
    Ok(X509IssuerSerial {
        issuer_name,
        serial_number: serial,
    })
}

fn session_id(connection: &Connection) -> Result<Vec<u8>, EvError> {
    match &connection.session_id {
        Some(text) => {
            let bytes =
                hex::decode(text).map_err(|e| EvError::Input(format!("--session-id: {e}")))?;
            if bytes.is_empty() || bytes.len() > 8 {
                return Err(EvError::Input(
                    "--session-id must be 1 to 8 bytes of hex".into(),
                ));
            }
            Ok(bytes)
        }
        None => {
            let mut bytes = vec![0u8; 8];
            openssl::rand::rand_bytes(&mut bytes).map_err(|e| EvError::Input(e.to_string()))?;
            Ok(bytes)
        }
    }
}

fn sign_body(
    body_element: &pnc_exi::Element,
    key: &SoftwareSigner,
) -> Result<pnc_exi::xmldsig::Signature, EvError> {
    let sign = |signed_info: &[u8]| -> Result<Vec<u8>, signature::SignatureError> {
        key.sign_raw(signed_info)
            .map_err(|error| signature::SignatureError::Signer(error.to_string()))
    };
    signature::sign_elements(Profile::Iso2, &[body_element], &sign)
        .map_err(|e| EvError::Input(format!("signing the request: {e}")))
}

/// `pnc ev install`, as a function.
pub async fn install(args: &InstallArgs) -> Result<Outcome, EvError> {
    if args.iso20 {
        return install20(args).await;
    }
    let oem_certificate = read_certificate(&args.oem_cert)?;
    let oem_key = read_key(&args.oem_key)?;
    if oem_key.public_key_spki_der() != oem_certificate.public_key_spki_der() {
        return Err(EvError::Input(
            "--oem-key does not belong to --oem-cert".into(),
        ));
    }
    let _ = read_chain(args.oem_chain.as_deref())?;
    let roots = read_roots(&args.connection.roots)?;
    let session = session_id(&args.connection)?;
    let request = CertificateInstallationReq {
        id: "ID1".to_string(),
        oem_provisioning_cert: oem_certificate.der().to_vec(),
        list_of_root_certificate_ids: roots
            .iter()
            .map(root_certificate_id)
            .collect::<Result<_, _>>()?,
    };
    let element = request
        .to_element()
        .map_err(|e| input("request")(e.to_string()))?;
    let message = V2gMessage {
        header: MessageHeader {
            session_id: session.clone(),
            notification: None,
            signature: Some(sign_body(&element, &oem_key)?),
        },
        body: Body::CertificateInstallationReq(request),
    };
    let exi = message
        .encode()
        .map_err(|e| input("encoding the request")(e.to_string()))?;
    let answer = exchange(&args.connection, ISO2_NAMESPACE, "Install", &exi).await?;
    accept(&answer, &session, &roots, &oem_key)
}

/// `pnc ev update`, as a function.
pub async fn update(args: &UpdateArgs) -> Result<Outcome, EvError> {
    let contract_certificate = read_certificate(&args.contract_cert)?;
    let contract_key = read_key(&args.contract_key)?;
    if contract_key.public_key_spki_der() != contract_certificate.public_key_spki_der() {
        return Err(EvError::Input(
            "--contract-key does not belong to --contract-cert".into(),
        ));
    }
    let sub_cas = read_chain(args.contract_chain.as_deref())?;
    let emaid = contract_certificate
        .common_name()
        .map(|cn| cn.replace('-', "").to_ascii_uppercase())
        .ok_or_else(|| EvError::Input("the contract certificate has no CN (eMAID)".into()))?;
    let roots = read_roots(&args.connection.roots)?;
    let session = session_id(&args.connection)?;
    let request = CertificateUpdateReq {
        id: "ID1".to_string(),
        contract_signature_cert_chain: CertificateChain {
            id: Some("ID2".to_string()),
            certificate: contract_certificate.der().to_vec(),
            sub_certificates: sub_cas.iter().map(|ca| ca.der().to_vec()).collect(),
        },
        emaid,
        list_of_root_certificate_ids: roots
            .iter()
            .map(root_certificate_id)
            .collect::<Result<_, _>>()?,
    };
    let element = request
        .to_element()
        .map_err(|e| input("request")(e.to_string()))?;
    let message = V2gMessage {
        header: MessageHeader {
            session_id: session.clone(),
            notification: None,
            signature: Some(sign_body(&element, &contract_key)?),
        },
        body: Body::CertificateUpdateReq(request),
    };
    let exi = message
        .encode()
        .map_err(|e| input("encoding the request")(e.to_string()))?;
    let answer = exchange(&args.connection, ISO2_NAMESPACE, "Update", &exi).await?;
    // [V2G2-821]: the new key is encrypted to the old contract certificate's key.
    accept(&answer, &session, &roots, &contract_key)
}

fn read_roots(paths: &[PathBuf]) -> Result<Vec<Certificate>, EvError> {
    if paths.is_empty() || paths.len() > 20 {
        return Err(EvError::Input("give 1 to 20 --root certificates".into()));
    }
    paths.iter().map(|path| read_certificate(path)).collect()
}

/// Sends the request through `POST /v1/ocpp/get-15118-ev-certificate`; the EXI answer.
async fn exchange(
    connection: &Connection,
    namespace: &str,
    action: &str,
    exi: &[u8],
) -> Result<Vec<u8>, EvError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| EvError::Transport(e.to_string()))?;
    let url = format!(
        "{}/v1/ocpp/get-15118-ev-certificate",
        connection.url.trim_end_matches('/')
    );
    let response = client
        .post(url)
        .bearer_auth(&connection.token)
        .json(&serde_json::json!({
            "iso15118SchemaVersion": namespace,
            "action": action,
            "exiRequest": STANDARD.encode(exi),
        }))
        .send()
        .await
        .map_err(|e| EvError::Transport(e.to_string()))?;
    let status = response.status().as_u16();
    let body: Value = response
        .json()
        .await
        .map_err(|e| EvError::Transport(format!("answer is not JSON: {e}")))?;
    if status != 200 || body["status"] != "Accepted" {
        return Err(EvError::Http {
            status,
            body: body.to_string(),
        });
    }
    let exi_response = body["exiResponse"].as_str().unwrap_or_default();
    STANDARD
        .decode(exi_response)
        .map_err(|e| EvError::Rejected(format!("exiResponse is not base64: {e}")))
}

/// What the car checks before it stores a contract.
fn accept(
    answer: &[u8],
    session: &[u8],
    roots: &[Certificate],
    decryption_key: &SoftwareSigner,
) -> Result<Outcome, EvError> {
    let rejected = |what: String| EvError::Rejected(what);
    let message =
        V2gMessage::decode(answer).map_err(|e| rejected(format!("undecodable EXI: {e}")))?;
    if message.header.session_id != session {
        return Err(rejected(format!(
            "SessionID {} is not the session's {}",
            hex::encode_upper(&message.header.session_id),
            hex::encode_upper(session)
        )));
    }
    let (code, cps_chain, contract_chain, encrypted_key, dh_public_key, emaid) = match &message.body
    {
        Body::CertificateInstallationRes(res) => (
            res.response_code,
            &res.sa_provisioning_certificate_chain,
            &res.contract_signature_cert_chain,
            &res.contract_signature_encrypted_private_key.value,
            &res.dh_public_key.value,
            &res.emaid.value,
        ),
        Body::CertificateUpdateRes(res) => (
            res.response_code,
            &res.sa_provisioning_certificate_chain,
            &res.contract_signature_cert_chain,
            &res.contract_signature_encrypted_private_key.value,
            &res.dh_public_key.value,
            &res.emaid.value,
        ),
        _ => return Err(rejected("the answer is not a certificate response".into())),
    };
    if code != ResponseCode::Ok {
        return Err(EvError::Refused(code.as_str().to_string()));
    }

    // The CPS chain must end at a root the car listed.
    let cps_leaf = cps_chain.certificate.as_slice();
    let cps_intermediates: Vec<&[u8]> = cps_chain
        .sub_certificates
        .iter()
        .map(Vec::as_slice)
        .collect();
    let anchors: Vec<&[u8]> = roots.iter().map(Certificate::der).collect();
    let path = validate_path(
        cps_leaf,
        &cps_intermediates,
        &anchors,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| rejected(format!("CPS chain: {e}")))?;
    let anchor = path
        .certificates
        .last()
        .ok_or_else(|| rejected("CPS chain: empty path".into()))?;

    // The signature over the four elements, with the CPS leaf.
    let tree = pnc_exi::decode_document(pnc_exi::Schema::Iso2, answer)
        .map_err(|e| rejected(format!("undecodable EXI: {e}")))?;
    let cps_key = signature::public_key_from_cert_der(cps_leaf)
        .map_err(|e| rejected(format!("CPS leaf key: {e}")))?;
    signature::verify_iso2_message(&tree, &cps_key)
        .map_err(|e| rejected(format!("signature: {e}")))?;

    // The contract key, decrypted and checked against the contract certificate [V2G2-823].
    let contract_leaf = Certificate::from_der(&contract_chain.certificate)
        .map_err(|e| rejected(format!("contract certificate: {e}")))?;
    let sealed = SealedContractKey::from_slices(encrypted_key, dh_public_key)
        .map_err(|e| rejected(format!("sealed key: {e}")))?;
    let scalar = open(decryption_key, &sealed, contract_leaf.public_key_spki_der())
        .map_err(|e| rejected(format!("contract key: {e}")))?;
    let contract_key_pem = pkcs8_pem(Nid::X9_62_PRIME256V1, &scalar[..], &contract_leaf)?;

    let mut chain = vec![contract_leaf];
    for sub_ca in &contract_chain.sub_certificates {
        chain.push(
            Certificate::from_der(sub_ca).map_err(|e| rejected(format!("contract Sub-CA: {e}")))?,
        );
    }
    Ok(Outcome {
        emaid: emaid.clone(),
        contract_chain: chain,
        cps_root_fingerprint: hex::encode_upper(anchor.sha256_fingerprint()),
        session_id: session.to_vec(),
        remaining_contract_certificate_chains: None,
        contract_key_pem,
    })
}

/// The decrypted scalar (P-256 for -2, P-521 for -20) as a PKCS#8 PEM key.
fn pkcs8_pem(
    curve: Nid,
    scalar: &[u8],
    certificate: &Certificate,
) -> Result<zeroize::Zeroizing<Vec<u8>>, EvError> {
    let failed = |e: openssl::error::ErrorStack| EvError::Rejected(format!("contract key: {e}"));
    let group = EcGroup::from_curve_name(curve).map_err(failed)?;
    let mut context = BigNumContext::new().map_err(failed)?;
    let point_bytes = certificate
        .public_key_uncompressed()
        .ok_or_else(|| EvError::Rejected("contract certificate key is not EC".into()))?;
    let point = EcPoint::from_bytes(&group, &point_bytes, &mut context).map_err(failed)?;
    let private = BigNum::from_slice(scalar).map_err(failed)?;
    let key = EcKey::from_private_components(&group, &private, &point).map_err(failed)?;
    key.check_key().map_err(failed)?;
    let pkey = PKey::from_ec_key(key).map_err(failed)?;
    Ok(zeroize::Zeroizing::new(
        pkey.private_key_to_pem_pkcs8().map_err(failed)?,
    ))
}

/// A -20 car's OEM provisioning key: P-521 (ECDSA, ECDH on P-521) or Ed448 (Ed448
/// signatures, X448 agreement with the derived key).
enum Car20 {
    P521(SoftwareSigner),
    Ed448 {
        key: PKey<openssl::pkey::Private>,
        agreement: pnc_pki::key_transport::curve448::Ed448AgreementKey,
    },
}

impl Car20 {
    fn read(path: &Path) -> Result<Self, EvError> {
        let pem = zeroize::Zeroizing::new(
            std::fs::read(path).map_err(|e| EvError::Input(format!("{}: {e}", path.display())))?,
        );
        if let Ok(key) = PKey::private_key_from_pem(&pem)
            && key.id() == openssl::pkey::Id::ED448
        {
            let agreement = pnc_pki::key_transport::curve448::Ed448AgreementKey::from_ed448(&key)
                .map_err(|e| EvError::Input(format!("{}: {e}", path.display())))?;
            return Ok(Self::Ed448 { key, agreement });
        }
        let signer = read_key(path)?;
        if signer.algorithm() != pnc_pki::SignatureAlgorithm::EcdsaP521Sha512 {
            return Err(EvError::Input(
                "--iso20 needs a P-521 or Ed448 OEM provisioning key".into(),
            ));
        }
        Ok(Self::P521(signer))
    }

    fn public_key_spki_der(&self) -> Result<Vec<u8>, EvError> {
        match self {
            Self::P521(signer) => Ok(signer.public_key_spki_der().to_vec()),
            Self::Ed448 { key, .. } => key
                .public_key_to_der()
                .map_err(|e| EvError::Input(format!("--oem-key: {e}"))),
        }
    }

    fn profile(&self) -> Profile {
        match self {
            Self::P521(_) => Profile::Iso20,
            Self::Ed448 { .. } => Profile::Iso20Ed448,
        }
    }

    fn sign(&self, signed_info: &[u8]) -> Result<Vec<u8>, signature::SignatureError> {
        match self {
            Self::P521(signer) => signer
                .sign_raw(signed_info)
                .map_err(|error| signature::SignatureError::Signer(error.to_string())),
            Self::Ed448 { key, .. } => signature::sign_ed448(key, signed_info),
        }
    }

    fn receiver(
        &self,
    ) -> (
        &dyn pnc_pki::KeyAgreement,
        pnc_pki::key_transport::iso20::Curve,
    ) {
        use pnc_pki::key_transport::iso20::Curve;
        match self {
            Self::P521(signer) => (signer, Curve::Secp521),
            Self::Ed448 { agreement, .. } => (agreement, Curve::X448),
        }
    }
}

/// `pnc ev install --iso20`: the ISO 15118-20 CertificateInstallation of a P-521 or Ed448 car.
async fn install20(args: &InstallArgs) -> Result<Outcome, EvError> {
    use pnc_exi::iso20;
    let oem_certificate = read_certificate(&args.oem_cert)?;
    let oem_key = Car20::read(&args.oem_key)?;
    if oem_key.public_key_spki_der()? != oem_certificate.public_key_spki_der() {
        return Err(EvError::Input(
            "--oem-key does not belong to --oem-cert".into(),
        ));
    }
    let pcid = oem_certificate
        .common_name()
        .ok_or_else(|| EvError::Input("the OEM provisioning certificate has no CN".into()))?
        .to_string();
    let sub_cas: Vec<Certificate> = read_chain(args.oem_chain.as_deref())?
        .into_iter()
        .filter(|certificate| certificate != &oem_certificate)
        .collect();
    if sub_cas.len() > 3 {
        return Err(EvError::Input("--oem-chain holds at most 3 Sub-CAs".into()));
    }
    if args.prioritized_emaids.len() > 8 {
        return Err(EvError::Input("give at most 8 --prioritized-emaid".into()));
    }
    let roots = read_roots(&args.connection.roots)?;
    let session = session_id(&args.connection)?;
    if session.len() != 8 {
        return Err(EvError::Input(
            "an ISO 15118-20 --session-id has exactly 8 bytes".into(),
        ));
    }
    let oem_chain = iso20::CertificateChain {
        id: Some("id1".to_string()),
        certificate: oem_certificate.der().to_vec(),
        sub_certificates: sub_cas.iter().map(|ca| ca.der().to_vec()).collect(),
    };
    let element = oem_chain
        .to_element("OEMProvisioningCertificateChain")
        .map_err(|e| input("request")(e.to_string()))?;
    let sign = |signed_info: &[u8]| oem_key.sign(signed_info);
    let request_signature = signature::sign_elements(oem_key.profile(), &[&element], &sign)
        .map_err(|e| EvError::Input(format!("signing the request: {e}")))?;
    let request = iso20::CertificateInstallationReq {
        header: iso20::Header {
            session_id: session.clone(),
            time_stamp: u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp())
                .unwrap_or_default(),
            signature: Some(request_signature),
        },
        oem_provisioning_certificate_chain: oem_chain,
        list_of_root_certificate_ids: roots
            .iter()
            .map(root_certificate_id)
            .collect::<Result<_, _>>()?,
        maximum_contract_certificate_chains: args.maximum_contracts,
        prioritized_emaids: args.prioritized_emaids.clone(),
    };
    let exi = request
        .encode()
        .map_err(|e| input("encoding the request")(e.to_string()))?;
    let answer = exchange(&args.connection, iso20::NS_CM, "Install", &exi).await?;
    accept20(&answer, &session, &roots, &oem_key, &pcid)
}

/// What a -20 car checks before it stores a contract.
fn accept20(
    answer: &[u8],
    session: &[u8],
    roots: &[Certificate],
    oem_key: &Car20,
    pcid: &str,
) -> Result<Outcome, EvError> {
    use pnc_exi::iso20::{CertificateInstallationRes, EncryptedPrivateKey, ResponseCode};
    use pnc_pki::key_transport::iso20 as key20;
    let rejected = |what: String| EvError::Rejected(what);
    let tree = pnc_exi::decode_document(pnc_exi::Schema::Iso20, answer)
        .map_err(|e| rejected(format!("undecodable EXI: {e}")))?;
    let res = CertificateInstallationRes::from_element(&tree)
        .map_err(|e| rejected(format!("not a CertificateInstallationRes: {e}")))?;
    if res.header.session_id != session {
        return Err(rejected(format!(
            "SessionID {} is not the session's {}",
            hex::encode_upper(&res.header.session_id),
            hex::encode_upper(session)
        )));
    }
    if res.response_code != ResponseCode::Ok {
        return Err(EvError::Refused(res.response_code.as_str().to_string()));
    }

    // The CPS chain must end at a root the car listed.
    let cps_leaf = res.cps_certificate_chain.certificate.as_slice();
    let cps_intermediates: Vec<&[u8]> = res
        .cps_certificate_chain
        .sub_certificates
        .iter()
        .map(Vec::as_slice)
        .collect();
    let anchors: Vec<&[u8]> = roots.iter().map(Certificate::der).collect();
    let path = validate_path(
        cps_leaf,
        &cps_intermediates,
        &anchors,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| rejected(format!("CPS chain: {e}")))?;
    let anchor = path
        .certificates
        .last()
        .ok_or_else(|| rejected("CPS chain: empty path".into()))?;

    // One reference, to SignedInstallationData, verified with the CPS leaf (P-521, SHA-512).
    let data = &res.signed_installation_data;
    let references = res
        .header
        .signature
        .as_ref()
        .map(|signature| signature.signed_info.references.len())
        .unwrap_or_default();
    if references != 1 {
        return Err(rejected(format!(
            "the signature has {references} references, not one to SignedInstallationData"
        )));
    }
    let cps_key = signature::public_key_from_cert_der(cps_leaf)
        .map_err(|e| rejected(format!("CPS leaf key: {e}")))?;
    signature::verify_iso20_message(&tree, &cps_key)
        .map_err(|e| rejected(format!("signature: {e}")))?;

    // The contract key, decrypted and checked against the contract certificate.
    let contract_leaf = Certificate::from_der(&data.contract_certificate_chain.certificate)
        .map_err(|e| rejected(format!("contract certificate: {e}")))?;
    let (curve, encrypted) = match &data.encrypted_private_key {
        EncryptedPrivateKey::Secp521(key) => (key20::Curve::Secp521, key),
        EncryptedPrivateKey::X448(key) => (key20::Curve::X448, key),
        EncryptedPrivateKey::Tpm(_) => {
            return Err(rejected(
                "a TPM-encrypted key is for a TPM, not for this car".into(),
            ));
        }
    };
    let (receiver, car_curve) = oem_key.receiver();
    if curve != car_curve {
        return Err(rejected(format!(
            "this car takes {car_curve:?} keys only, the answer has {curve:?}"
        )));
    }
    let sealed = key20::SealedContractKey {
        curve,
        encrypted_private_key: encrypted.clone(),
        dh_public_key: data.dh_public_key.clone(),
    };
    let ski = contract_leaf
        .subject_key_identifier()
        .ok_or_else(|| rejected("the contract certificate has no SKI".into()))?;
    let scalar = key20::open(
        receiver,
        &sealed,
        pcid,
        ski,
        contract_leaf.public_key_spki_der(),
    )
    .map_err(|e| rejected(format!("contract key: {e}")))?;
    let contract_key_pem = match curve {
        key20::Curve::Secp521 => pkcs8_pem(Nid::SECP521R1, &scalar[..], &contract_leaf)?,
        key20::Curve::X448 => {
            let failed =
                |e: openssl::error::ErrorStack| EvError::Rejected(format!("contract key: {e}"));
            let key = PKey::private_key_from_raw_bytes(&scalar[..], openssl::pkey::Id::X448)
                .map_err(failed)?;
            zeroize::Zeroizing::new(key.private_key_to_pem_pkcs8().map_err(failed)?)
        }
    };
    let emaid = contract_leaf
        .common_name()
        .ok_or_else(|| rejected("the contract certificate has no CN (eMAID)".into()))?
        .to_string();

    let mut chain = vec![contract_leaf];
    for sub_ca in &data.contract_certificate_chain.sub_certificates {
        chain.push(
            Certificate::from_der(sub_ca).map_err(|e| rejected(format!("contract Sub-CA: {e}")))?,
        );
    }
    Ok(Outcome {
        emaid,
        contract_chain: chain,
        cps_root_fingerprint: hex::encode_upper(anchor.sha256_fingerprint()),
        session_id: session.to_vec(),
        remaining_contract_certificate_chains: Some(res.remaining_contract_certificate_chains),
        contract_key_pem,
    })
}

impl Outcome {
    /// Writes the contract key (PKCS#8 PEM) with mode 0600.
    pub fn write_key(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        file.write_all(&self.contract_key_pem)
    }

    /// What `pnc ev` prints: the eMAID, then the contract chain as PEM.
    pub fn report(&self) -> String {
        let mut text = format!(
            "eMAID: {}\nSessionID: {}\nCPS root SHA-256: {}\n",
            self.emaid,
            hex::encode_upper(&self.session_id),
            self.cps_root_fingerprint
        );
        if let Some(remaining) = self.remaining_contract_certificate_chains {
            text.push_str(&format!(
                "RemainingContractCertificateChains: {remaining}\n"
            ));
        }
        for certificate in &self.contract_chain {
            text.push_str(&certificate.to_pem());
        }
        text
    }
}

/// `pnc ev …` from the command line: exit 0 with the contract printed, 1 when the car
/// would not have a contract, 2 for bad arguments.
pub fn run(command: EvCommand) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pnc: {error}");
            return std::process::ExitCode::from(1);
        }
    };
    let (result, out_key) = runtime.block_on(async {
        match &command {
            EvCommand::Install(args) => (install(args).await, args.connection.out_key.clone()),
            EvCommand::Update(args) => (update(args).await, args.connection.out_key.clone()),
        }
    });
    match result {
        Ok(outcome) => {
            if let Some(path) = out_key
                && let Err(error) = outcome.write_key(&path)
            {
                eprintln!("pnc: cannot write {}: {error}", path.display());
                return std::process::ExitCode::from(1);
            }
            print!("{}", outcome.report());
            std::process::ExitCode::SUCCESS
        }
        Err(error @ EvError::Input(_)) => {
            eprintln!("pnc: {error}");
            std::process::ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("pnc: {error}");
            std::process::ExitCode::from(1)
        }
    }
}
