//! XML signature over EXI per ISO 15118-2 §7.9.2.4 / Annex J and ISO 15118-20.
//!
//! - Reference digest = hash of the referenced element encoded as an EXI *fragment* of the
//!   message schema set (header byte included); verifiers always re-encode from decoded values.
//! - `SignatureValue` = ECDSA over `SignedInfo` encoded as a fragment of the xmldsig schema
//!   alone, raw `r‖s` (P-256/SHA-256 for -2, P-521/SHA-512 for -20), or for -20's Ed448
//!   alternative the 114-byte Ed448 signature with SHAKE256 digests — every Ed448 parameter
//!   is **unconfirmed** and sits in [`unconfirmed_ed448`].
//! - [V2G2-771]: no `SignedInfo@Id`, `SignatureValue@Id`, `Reference@Type`, `HMACOutputLength`,
//!   `KeyInfo`, `Object`; [V2G2-909]: at most 4 references.
//!
//! Signing is abstract ([`ExiSigner`]) so software keys and HSMs plug in.

use crate::error::ExiError;
use crate::iso2::{CertificateChain, IdBytes, IdString};
use crate::tree::Element;
use crate::xmldsig::{Reference, Signature, SignedInfo};
use crate::{Schema, encode_fragment};
use openssl::bn::BigNum;
use openssl::ec::EcKey;
use openssl::ecdsa::EcdsaSig;
use openssl::pkey::{PKey, Private, Public};
use sha2::Digest;

pub const C14N_EXI: &str = "http://www.w3.org/TR/canonical-exi/";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const ECDSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512";
pub const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const DIGEST_SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// [V2G2-909]
pub const MAX_REFERENCES: usize = 4;

/// The Ed448 profile of ISO 15118-20 ([V2G20-2319] Ed448, [V2G20-2318] SHAKE256), in one
/// place because none of it could be checked against the standard's text (iso15118-notes
/// §13.5, §15). Change these, and only these, once it can.
pub mod unconfirmed_ed448 {
    /// SignatureMethod. **UNVERIFIED**: RFC 9231's URI, as OpenChargingCloud uses it.
    pub const SIGNATURE_METHOD: &str = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed448";
    /// DigestMethod. **UNVERIFIED**: RFC 9231's SHAKE256 URI.
    pub const DIGEST_METHOD: &str = "http://www.w3.org/2021/04/xmldsig-more#shake256";
    /// SHAKE256 output length of a reference digest. **UNVERIFIED**: 64 bytes (512 bits, the
    /// security level of Ed448 doubled, as SHA-512 in the ECDSA profile).
    pub const DIGEST_LEN: usize = 64;
    /// Pure Ed448 (RFC 8032, empty context) over the SignedInfo EXI, not Ed448ph.
    /// **UNVERIFIED**. The signature is RFC 8032's 114 bytes (R ‖ S, 57 each).
    pub const SIGNATURE_LEN: usize = 114;
}

/// Which ISO 15118 part's signature profile applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// ISO 15118-2: P-256, SHA-256, fragments of the -2 schema set
    Iso2,
    /// ISO 15118-20: P-521, SHA-512, fragments of the -20 schema set
    Iso20,
    /// ISO 15118-20 with Ed448 keys: [`unconfirmed_ed448`], fragments of the -20 schema set
    Iso20Ed448,
}

impl Profile {
    pub fn schema(self) -> Schema {
        match self {
            Profile::Iso2 => Schema::Iso2,
            Profile::Iso20 | Profile::Iso20Ed448 => Schema::Iso20,
        }
    }
    pub fn signature_method(self) -> &'static str {
        match self {
            Profile::Iso2 => ECDSA_SHA256,
            Profile::Iso20 => ECDSA_SHA512,
            Profile::Iso20Ed448 => unconfirmed_ed448::SIGNATURE_METHOD,
        }
    }
    pub fn digest_method(self) -> &'static str {
        match self {
            Profile::Iso2 => DIGEST_SHA256,
            Profile::Iso20 => DIGEST_SHA512,
            Profile::Iso20Ed448 => unconfirmed_ed448::DIGEST_METHOD,
        }
    }
    /// Size of r and s in the raw signature (R and S for Ed448).
    pub fn scalar_len(self) -> usize {
        match self {
            Profile::Iso2 => 32,
            Profile::Iso20 => 66,
            Profile::Iso20Ed448 => unconfirmed_ed448::SIGNATURE_LEN / 2,
        }
    }
    /// The reference digest (and, for ECDSA, the hash that is signed).
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            // The sha2 crate, not OpenSSL 3: its one-shot digests look the algorithm up in the
            // provider on every call, 5-8 times the hashing itself for these small inputs.
            Profile::Iso2 => sha2::Sha256::digest(data).to_vec(),
            Profile::Iso20 => sha2::Sha512::digest(data).to_vec(),
            Profile::Iso20Ed448 => shake256(data, unconfirmed_ed448::DIGEST_LEN),
        }
    }
    /// The -20 profile of a key: Ed448 keys sign with [`Profile::Iso20Ed448`], others ECDSA.
    pub fn iso20_for_key<T: openssl::pkey::HasPublic>(key: &PKey<T>) -> Profile {
        if key.id() == openssl::pkey::Id::ED448 {
            Profile::Iso20Ed448
        } else {
            Profile::Iso20
        }
    }
}

fn shake256(data: &[u8], len: usize) -> Vec<u8> {
    use openssl::hash::{Hasher, MessageDigest};
    let mut out = vec![0u8; len];
    // SHAKE256 cannot fail on in-memory input short of allocation failure in OpenSSL; an
    // all-zero digest would then simply not match.
    let _ = Hasher::new(MessageDigest::shake_256()).and_then(|mut hasher| {
        hasher.update(data)?;
        hasher.finish_xof(&mut out)
    });
    out
}

/// Errors a provisioning service maps to ISO ResponseCodes (mostly `FAILED_SignatureError`).
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("message carries no signature")]
    MissingSignature,
    #[error("forbidden signature part {0} ([V2G2-771])")]
    ForbiddenElement(&'static str),
    #[error("{0} references (at most 4, [V2G2-909])")]
    TooManyReferences(usize),
    #[error("signature has no reference")]
    NoReferences,
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("reference {0} does not resolve to exactly one element")]
    UnresolvedReference(String),
    #[error("reference {0:?} is not a same-document #Id reference")]
    BadReferenceUri(Option<String>),
    #[error("digest mismatch for reference {uri}")]
    DigestMismatch { uri: String },
    #[error("signature value does not verify")]
    BadSignature,
    #[error("signature value has {0} bytes (expected raw r||s)")]
    BadSignatureLength(usize),
    #[error("bad key: {0}")]
    BadKey(String),
    #[error("signer failed: {0}")]
    Signer(String),
    #[error(transparent)]
    Exi(#[from] ExiError),
}

/// Produces a raw `r‖s` signature over the EXI bytes of `SignedInfo` (the signer hashes).
pub trait ExiSigner {
    fn sign(&self, signed_info_exi: &[u8]) -> Result<Vec<u8>, SignatureError>;
}

impl<F> ExiSigner for F
where
    F: Fn(&[u8]) -> Result<Vec<u8>, SignatureError>,
{
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignatureError> {
        self(data)
    }
}

/// Software signer over an OpenSSL key: ECDSA (P-256 for -2, P-521 for -20) or Ed448.
pub struct OpensslSigner {
    key: SignerKey,
    profile: Profile,
}

enum SignerKey {
    Ec(EcKey<Private>),
    Ed448(PKey<Private>),
}

impl OpensslSigner {
    pub fn new(key: &PKey<Private>, profile: Profile) -> Result<Self, SignatureError> {
        let key = match (profile, key.id()) {
            (Profile::Iso20Ed448, openssl::pkey::Id::ED448) => SignerKey::Ed448(key.clone()),
            (Profile::Iso20Ed448, _) => {
                return Err(SignatureError::BadKey(
                    "the Ed448 profile needs an Ed448 key".into(),
                ));
            }
            _ => SignerKey::Ec(
                key.ec_key()
                    .map_err(|e| SignatureError::BadKey(e.to_string()))?,
            ),
        };
        Ok(OpensslSigner { key, profile })
    }
}

/// Pure Ed448 over `data` (RFC 8032, empty context).
pub fn sign_ed448(key: &PKey<Private>, data: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let mut signer = openssl::sign::Signer::new_without_digest(key)
        .map_err(|e| SignatureError::Signer(e.to_string()))?;
    signer
        .sign_oneshot_to_vec(data)
        .map_err(|e| SignatureError::Signer(e.to_string()))
}

impl ExiSigner for OpensslSigner {
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let ec = match &self.key {
            SignerKey::Ed448(key) => return sign_ed448(key, data),
            SignerKey::Ec(ec) => ec,
        };
        let h = self.profile.hash(data);
        let sig = EcdsaSig::sign(&h, ec).map_err(|e| SignatureError::Signer(e.to_string()))?;
        let n = self.profile.scalar_len() as i32;
        let mut out = sig
            .r()
            .to_vec_padded(n)
            .map_err(|e| SignatureError::Signer(e.to_string()))?;
        out.extend(
            sig.s()
                .to_vec_padded(n)
                .map_err(|e| SignatureError::Signer(e.to_string()))?,
        );
        Ok(out)
    }
}

/// Hash of `e` encoded as an EXI fragment of the profile's schema set.
pub fn digest_fragment(profile: Profile, e: &Element) -> Result<Vec<u8>, ExiError> {
    Ok(profile.hash(&encode_fragment(profile.schema(), e)?))
}

/// `SignedInfo` as an EXI fragment of the xmldsig schema alone (Annex J).
pub fn signed_info_exi(si: &SignedInfo) -> Result<Vec<u8>, ExiError> {
    let mut enc = crate::codec::Encoder::new(Schema::XmlDsig.tables(), true);
    si.write(&mut enc)?;
    enc.finish()
}

fn id_of(e: &Element) -> Option<&str> {
    e.attr_value("Id")
}

/// Builds `SignedInfo` with one reference per element (URI `#Id`) and signs it.
pub fn sign_elements(
    profile: Profile,
    elements: &[&Element],
    signer: &dyn ExiSigner,
) -> Result<Signature, SignatureError> {
    if elements.is_empty() {
        return Err(SignatureError::NoReferences);
    }
    if elements.len() > MAX_REFERENCES {
        return Err(SignatureError::TooManyReferences(elements.len()));
    }
    let mut references = Vec::with_capacity(elements.len());
    for e in elements {
        let id = id_of(e).ok_or(SignatureError::BadReferenceUri(None))?;
        references.push(Reference {
            id: None,
            uri: Some(format!("#{id}")),
            type_: None,
            transforms: Some(vec![C14N_EXI.to_string()]),
            digest_method: profile.digest_method().to_string(),
            digest_value: digest_fragment(profile, e)?,
        });
    }
    let signed_info = SignedInfo {
        id: None,
        canonicalization_method: C14N_EXI.to_string(),
        signature_method: profile.signature_method().to_string(),
        hmac_output_length: None,
        references,
    };
    let exi = signed_info_exi(&signed_info)?;
    let value = signer.sign(&exi)?;
    if value.len() != 2 * profile.scalar_len() {
        return Err(SignatureError::BadSignatureLength(value.len()));
    }
    Ok(Signature {
        id: None,
        signed_info,
        signature_value: value,
        signature_value_id: None,
        has_key_info: false,
        has_object: false,
    })
}

/// The 4-reference signature of a CertificateInstallationRes / CertificateUpdateRes (-2):
/// ContractSignatureCertChain, ContractSignatureEncryptedPrivateKey, DHpublickey, eMAID.
pub fn sign_iso2_certificate_response(
    contract_chain: &CertificateChain,
    encrypted_private_key: &IdBytes,
    dh_public_key: &IdBytes,
    emaid: &IdString,
    signer: &dyn ExiSigner,
) -> Result<Signature, SignatureError> {
    if contract_chain.id.is_none() {
        return Err(SignatureError::BadReferenceUri(None));
    }
    let a = contract_chain.to_element("ContractSignatureCertChain")?;
    let b = encrypted_private_key.to_element("ContractSignatureEncryptedPrivateKey")?;
    let c = dh_public_key.to_element("DHpublickey")?;
    let d = emaid.to_element("eMAID")?;
    sign_elements(Profile::Iso2, &[&a, &b, &c, &d], signer)
}

/// Checks algorithms and the structural restrictions of [V2G2-771] / [V2G2-909].
pub fn check_structure(sig: &Signature, profile: Profile) -> Result<(), SignatureError> {
    if sig.signed_info.id.is_some() {
        return Err(SignatureError::ForbiddenElement("SignedInfo@Id"));
    }
    if sig.signature_value_id.is_some() {
        return Err(SignatureError::ForbiddenElement("SignatureValue@Id"));
    }
    if sig.signed_info.hmac_output_length.is_some() {
        return Err(SignatureError::ForbiddenElement("HMACOutputLength"));
    }
    if sig.has_key_info {
        return Err(SignatureError::ForbiddenElement("KeyInfo"));
    }
    if sig.has_object {
        return Err(SignatureError::ForbiddenElement("Object"));
    }
    let refs = &sig.signed_info.references;
    if refs.is_empty() {
        return Err(SignatureError::NoReferences);
    }
    if refs.len() > MAX_REFERENCES {
        return Err(SignatureError::TooManyReferences(refs.len()));
    }
    if sig.signed_info.canonicalization_method != C14N_EXI {
        return Err(SignatureError::UnsupportedAlgorithm(
            sig.signed_info.canonicalization_method.clone(),
        ));
    }
    if sig.signed_info.signature_method != profile.signature_method() {
        return Err(SignatureError::UnsupportedAlgorithm(
            sig.signed_info.signature_method.clone(),
        ));
    }
    for r in refs {
        if r.type_.is_some() {
            return Err(SignatureError::ForbiddenElement("Reference@Type"));
        }
        if r.digest_method != profile.digest_method() {
            return Err(SignatureError::UnsupportedAlgorithm(
                r.digest_method.clone(),
            ));
        }
        if let Some(ts) = &r.transforms
            && ts.iter().any(|t| t != C14N_EXI)
        {
            return Err(SignatureError::UnsupportedAlgorithm(ts.join(",")));
        }
        match &r.uri {
            Some(u) if u.starts_with('#') && u.len() > 1 => {}
            u => return Err(SignatureError::BadReferenceUri(u.clone())),
        }
    }
    Ok(())
}

/// A public key ISO 15118 signatures are verified with: a decoded `PKey` (any of the
/// editions' keys), or an `EcKey` built straight from a certificate's point, which spares the
/// hot path OpenSSL 3's decoder (`pnc_pki::public_key`).
pub trait VerifyingKey {
    /// Verifies raw `r‖s` (or an Ed448 signature) over `data`.
    fn verify_raw(&self, profile: Profile, data: &[u8], rs: &[u8]) -> Result<(), SignatureError>;
}

impl VerifyingKey for EcKey<Public> {
    fn verify_raw(&self, profile: Profile, data: &[u8], rs: &[u8]) -> Result<(), SignatureError> {
        let n = profile.scalar_len();
        if rs.len() != 2 * n {
            return Err(SignatureError::BadSignatureLength(rs.len()));
        }
        if profile == Profile::Iso20Ed448 {
            return Err(SignatureError::BadKey("not an Ed448 key".into()));
        }
        let bad_key = |e: openssl::error::ErrorStack| SignatureError::BadKey(e.to_string());
        let r = BigNum::from_slice(&rs[..n]).map_err(bad_key)?;
        let s = BigNum::from_slice(&rs[n..]).map_err(bad_key)?;
        let sig = EcdsaSig::from_private_components(r, s).map_err(bad_key)?;
        match sig.verify(&profile.hash(data), self) {
            Ok(true) => Ok(()),
            _ => Err(SignatureError::BadSignature),
        }
    }
}

impl VerifyingKey for PKey<Public> {
    fn verify_raw(&self, profile: Profile, data: &[u8], rs: &[u8]) -> Result<(), SignatureError> {
        let n = profile.scalar_len();
        if rs.len() != 2 * n {
            return Err(SignatureError::BadSignatureLength(rs.len()));
        }
        if profile != Profile::Iso20Ed448 {
            return self
                .ec_key()
                .map_err(|e| SignatureError::BadKey(e.to_string()))?
                .verify_raw(profile, data, rs);
        }
        if self.id() != openssl::pkey::Id::ED448 {
            return Err(SignatureError::BadKey("not an Ed448 key".into()));
        }
        let mut verifier = openssl::sign::Verifier::new_without_digest(self)
            .map_err(|e| SignatureError::BadKey(e.to_string()))?;
        match verifier.verify_oneshot(rs, data) {
            Ok(true) => Ok(()),
            _ => Err(SignatureError::BadSignature),
        }
    }
}

/// Verifies raw `r‖s` (or an Ed448 signature) over `data` with `key`.
pub fn verify_raw(
    profile: Profile,
    key: &(impl VerifyingKey + ?Sized),
    data: &[u8],
    rs: &[u8],
) -> Result<(), SignatureError> {
    key.verify_raw(profile, data, rs)
}

/// Verifies a decoded `ds:Signature` element: structure, every reference digest (resolved
/// through `resolve(id)`), then the signature over the re-encoded `SignedInfo`.
pub fn verify<'a>(
    profile: Profile,
    signature: &Element,
    resolve: impl Fn(&str) -> Result<&'a Element, SignatureError>,
    key: &(impl VerifyingKey + ?Sized),
) -> Result<(), SignatureError> {
    let sig = Signature::from_element(signature)?;
    check_structure(&sig, profile)?;
    for r in &sig.signed_info.references {
        let uri = r.uri.clone().unwrap_or_default();
        let el = resolve(&uri[1..])?;
        if digest_fragment(profile, el)? != r.digest_value {
            return Err(SignatureError::DigestMismatch { uri });
        }
    }
    // re-encode SignedInfo from the decoded tree (never the received bytes)
    let si = signature
        .find("SignedInfo")
        .ok_or(SignatureError::MissingSignature)?;
    let exi = encode_fragment(Schema::XmlDsig, si)?;
    verify_raw(profile, key, &exi, &sig.signature_value)
}

fn collect_ids<'a>(e: &'a Element, id: &str, out: &mut Vec<&'a Element>) {
    if e.attrs
        .iter()
        .any(|a| a.name.local == "Id" && a.value == id)
    {
        out.push(e);
    }
    for c in e.elements() {
        collect_ids(c, id, out);
    }
}

/// Resolves `#id` inside `scope`; the Id must be unique.
pub fn resolver<'a>(
    scope: &'a Element,
) -> impl Fn(&str) -> Result<&'a Element, SignatureError> + 'a {
    move |id: &str| -> Result<&'a Element, SignatureError> {
        let mut v = vec![];
        collect_ids(scope, id, &mut v);
        if v.len() == 1 {
            Ok(v[0])
        } else {
            Err(SignatureError::UnresolvedReference(format!("#{id}")))
        }
    }
}

/// Verifies the header signature of a decoded ISO 15118-2 `V2G_Message` (request side:
/// CertificateInstallationReq with the OEM provisioning key, CertificateUpdateReq with the
/// contract key; or a response with the CPS leaf key). References resolve inside `Body`.
pub fn verify_iso2_message(
    msg: &Element,
    key: &(impl VerifyingKey + ?Sized),
) -> Result<(), SignatureError> {
    let header = msg.find("Header").ok_or(SignatureError::MissingSignature)?;
    let sig = header
        .find("Signature")
        .ok_or(SignatureError::MissingSignature)?;
    let body = msg.find("Body").ok_or(SignatureError::MissingSignature)?;
    verify(Profile::Iso2, sig, resolver(body), key)
}

/// Public key from an uncompressed SEC1 point on the profile's curve.
pub fn public_key_from_sec1(
    profile: Profile,
    point: &[u8],
) -> Result<PKey<Public>, SignatureError> {
    use openssl::ec::{EcGroup, EcPoint};
    use openssl::nid::Nid;
    let nid = match profile {
        Profile::Iso2 => Nid::X9_62_PRIME256V1,
        Profile::Iso20 => Nid::SECP521R1,
        Profile::Iso20Ed448 => {
            return Err(SignatureError::BadKey(
                "Ed448 keys have no SEC1 point form".into(),
            ));
        }
    };
    let bad = |e: openssl::error::ErrorStack| SignatureError::BadKey(e.to_string());
    let group = EcGroup::from_curve_name(nid).map_err(bad)?;
    let mut ctx = openssl::bn::BigNumContext::new().map_err(bad)?;
    let p = EcPoint::from_bytes(&group, point, &mut ctx).map_err(bad)?;
    let k = EcKey::from_public_key(&group, &p).map_err(bad)?;
    PKey::from_ec_key(k).map_err(bad)
}

/// Public key of a DER certificate.
pub fn public_key_from_cert_der(der: &[u8]) -> Result<PKey<Public>, SignatureError> {
    let c =
        openssl::x509::X509::from_der(der).map_err(|e| SignatureError::BadKey(e.to_string()))?;
    c.public_key()
        .map_err(|e| SignatureError::BadKey(e.to_string()))
}

/// Signs the single reference of ISO 15118-20 `SignedInstallationData` (P-521/SHA-512,
/// [V2G20-1077]) with the CPS leaf key.
pub fn sign_iso20_installation_data(
    sid: &crate::iso20::SignedInstallationData,
    signer: &dyn ExiSigner,
) -> Result<Signature, SignatureError> {
    let e = sid.to_element()?;
    sign_elements(Profile::Iso20, &[&e], signer)
}

/// Verifies the header signature of a decoded ISO 15118-20 message (e.g. a
/// CertificateInstallationReq signed over OEMProvisioningCertificateChain, or a
/// CertificateInstallationRes signed over SignedInstallationData). References resolve in the
/// message outside its Header. The key decides the profile: Ed448 keys verify with
/// [`Profile::Iso20Ed448`], all others with ECDSA P-521/SHA-512.
pub fn verify_iso20_message(msg: &Element, key: &PKey<Public>) -> Result<(), SignatureError> {
    let header = msg.find("Header").ok_or(SignatureError::MissingSignature)?;
    let sig = header
        .find("Signature")
        .ok_or(SignatureError::MissingSignature)?;
    let mut body = msg.clone();
    body.children
        .retain(|c| !matches!(c, crate::Node::Element(e) if e.name.local == "Header"));
    verify(Profile::iso20_for_key(key), sig, resolver(&body), key)
}
