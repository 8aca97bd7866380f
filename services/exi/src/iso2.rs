//! Typed ISO 15118-2 messages pnc handles: `V2G_Message` with header and the certificate
//! installation / update bodies. Every other body decodes into [`Body::Other`] (generic tree).

use crate::codec::Encoder;
use crate::error::ExiError;
use crate::sink::{Sink, TreeBuilder};
use crate::tree::Element;
use crate::typed::{attr, b64, child, hexbin, string_enum};
use crate::xmldsig::{self, Signature};
use crate::{Schema, decode_document};

pub const NS_DEF: &str = "urn:iso:15118:2:2013:MsgDef";
pub const NS_HDR: &str = "urn:iso:15118:2:2013:MsgHeader";
pub const NS_BODY: &str = "urn:iso:15118:2:2013:MsgBody";
pub const NS_DT: &str = "urn:iso:15118:2:2013:MsgDataTypes";

string_enum!(
    /// `responseCodeType` (26 values).
    ResponseCode {
        Ok = "OK",
        OkNewSessionEstablished = "OK_NewSessionEstablished",
        OkOldSessionJoined = "OK_OldSessionJoined",
        OkCertificateExpiresSoon = "OK_CertificateExpiresSoon",
        Failed = "FAILED",
        FailedSequenceError = "FAILED_SequenceError",
        FailedServiceIdInvalid = "FAILED_ServiceIDInvalid",
        FailedUnknownSession = "FAILED_UnknownSession",
        FailedServiceSelectionInvalid = "FAILED_ServiceSelectionInvalid",
        FailedPaymentSelectionInvalid = "FAILED_PaymentSelectionInvalid",
        FailedCertificateExpired = "FAILED_CertificateExpired",
        FailedSignatureError = "FAILED_SignatureError",
        FailedNoCertificateAvailable = "FAILED_NoCertificateAvailable",
        FailedCertChainError = "FAILED_CertChainError",
        FailedChallengeInvalid = "FAILED_ChallengeInvalid",
        FailedContractCanceled = "FAILED_ContractCanceled",
        FailedWrongChargeParameter = "FAILED_WrongChargeParameter",
        FailedPowerDeliveryNotApplied = "FAILED_PowerDeliveryNotApplied",
        FailedTariffSelectionInvalid = "FAILED_TariffSelectionInvalid",
        FailedChargingProfileInvalid = "FAILED_ChargingProfileInvalid",
        FailedMeteringSignatureNotValid = "FAILED_MeteringSignatureNotValid",
        FailedNoChargeServiceSelected = "FAILED_NoChargeServiceSelected",
        FailedWrongEnergyTransferMode = "FAILED_WrongEnergyTransferMode",
        FailedContactorError = "FAILED_ContactorError",
        FailedCertificateNotAllowedAtThisEvse = "FAILED_CertificateNotAllowedAtThisEVSE",
        FailedCertificateRevoked = "FAILED_CertificateRevoked",
    }
);

string_enum!(
    /// `faultCodeType`.
    FaultCode { ParsingError = "ParsingError", NoTlsRootCertificatAvailable = "NoTLSRootCertificatAvailable", UnknownError = "UnknownError" }
);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2gMessage {
    pub header: MessageHeader,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// hexBinary, at most 8 bytes
    pub session_id: Vec<u8>,
    pub notification: Option<Notification>,
    pub signature: Option<Signature>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub fault_code: FaultCode,
    pub fault_msg: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Body {
    CertificateInstallationReq(CertificateInstallationReq),
    CertificateInstallationRes(CertificateInstallationRes),
    CertificateUpdateReq(CertificateUpdateReq),
    CertificateUpdateRes(CertificateUpdateRes),
    /// Any other body element (generic tree), or `None` for an empty `Body`.
    Other(Option<Element>),
}

/// `xmlsig:X509IssuerSerialType` (an entry of `ListOfRootCertificateIDs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct X509IssuerSerial {
    pub issuer_name: String,
    /// xs:integer in decimal; unbounded and possibly negative
    pub serial_number: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInstallationReq {
    /// `Id` (MsgBody namespace)
    pub id: String,
    pub oem_provisioning_cert: Vec<u8>,
    /// 1..20
    pub list_of_root_certificate_ids: Vec<X509IssuerSerial>,
}

/// `CertificateChainType`: leaf + optional 1..4 sub-certificates.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CertificateChain {
    /// `Id` (MsgDataTypes namespace)
    pub id: Option<String>,
    pub certificate: Vec<u8>,
    /// empty = no `SubCertificates` element
    pub sub_certificates: Vec<Vec<u8>>,
}

/// base64Binary content with a required `Id` (ContractSignatureEncryptedPrivateKey, DHpublickey).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IdBytes {
    pub id: String,
    pub value: Vec<u8>,
}

/// `EMAIDType`: string content with a required `Id`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IdString {
    pub id: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInstallationRes {
    pub response_code: ResponseCode,
    pub sa_provisioning_certificate_chain: CertificateChain,
    pub contract_signature_cert_chain: CertificateChain,
    pub contract_signature_encrypted_private_key: IdBytes,
    pub dh_public_key: IdBytes,
    pub emaid: IdString,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateUpdateReq {
    pub id: String,
    pub contract_signature_cert_chain: CertificateChain,
    /// plain `eMAIDType` (no Id)
    pub emaid: String,
    pub list_of_root_certificate_ids: Vec<X509IssuerSerial>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateUpdateRes {
    pub response_code: ResponseCode,
    pub sa_provisioning_certificate_chain: CertificateChain,
    pub contract_signature_cert_chain: CertificateChain,
    pub contract_signature_encrypted_private_key: IdBytes,
    pub dh_public_key: IdBytes,
    pub emaid: IdString,
    pub retry_counter: Option<i16>,
}

// ------------------------------------------------------------------------------- writing

impl V2gMessage {
    /// Decodes an EXI `V2G_Message` document.
    pub fn decode(exi: &[u8]) -> Result<Self, ExiError> {
        Self::from_element(&decode_document(Schema::Iso2, exi)?)
    }

    /// Encodes as an EXI document.
    pub fn encode(&self) -> Result<Vec<u8>, ExiError> {
        let mut e = Encoder::new(Schema::Iso2.tables(), false);
        self.write(&mut e)?;
        e.finish()
    }

    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS_DEF, "V2G_Message")?;
        s.start(NS_DEF, "Header")?;
        s.start(NS_HDR, "SessionID")?;
        s.hex(&self.header.session_id)?;
        s.end()?;
        if let Some(n) = &self.header.notification {
            s.start(NS_HDR, "Notification")?;
            s.text_element(NS_DT, "FaultCode", n.fault_code.as_str())?;
            if let Some(m) = &n.fault_msg {
                s.text_element(NS_DT, "FaultMsg", m)?;
            }
            s.end()?;
        }
        if let Some(sig) = &self.header.signature {
            sig.write(s)?;
        }
        s.end()?;
        s.start(NS_DEF, "Body")?;
        match &self.body {
            Body::CertificateInstallationReq(b) => b.write(s)?,
            Body::CertificateInstallationRes(b) => b.write(s)?,
            Body::CertificateUpdateReq(b) => b.write(s)?,
            Body::CertificateUpdateRes(b) => b.write(s)?,
            Body::Other(Some(e)) => s.element(e)?,
            Body::Other(None) => {}
        }
        s.end()?;
        s.end()
    }

    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }

    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        if e.name.ns != NS_DEF || e.name.local != "V2G_Message" {
            return Err(ExiError::Structure(format!(
                "root is {} (expected V2G_Message)",
                e.name.local
            )));
        }
        let h = child(e, "Header")?;
        let header = MessageHeader {
            session_id: hexbin(child(h, "SessionID")?)?,
            notification: match h.find("Notification") {
                Some(n) => Some(Notification {
                    fault_code: child(n, "FaultCode")?.text_content().parse()?,
                    fault_msg: n.find("FaultMsg").map(|m| m.text_content()),
                }),
                None => None,
            },
            signature: h
                .find("Signature")
                .map(Signature::from_element)
                .transpose()?,
        };
        let b = child(e, "Body")?;
        let body = match b.elements().next() {
            None => Body::Other(None),
            Some(x) if x.name.ns == NS_BODY => match x.name.local.as_ref() {
                "CertificateInstallationReq" => {
                    Body::CertificateInstallationReq(CertificateInstallationReq::from_element(x)?)
                }
                "CertificateInstallationRes" => {
                    Body::CertificateInstallationRes(CertificateInstallationRes::from_element(x)?)
                }
                "CertificateUpdateReq" => {
                    Body::CertificateUpdateReq(CertificateUpdateReq::from_element(x)?)
                }
                "CertificateUpdateRes" => {
                    Body::CertificateUpdateRes(CertificateUpdateRes::from_element(x)?)
                }
                _ => Body::Other(Some(x.clone())),
            },
            Some(x) => Body::Other(Some(x.clone())),
        };
        Ok(V2gMessage { header, body })
    }

    /// The body element as a generic tree (e.g. to re-encode it as a digest fragment).
    pub fn body_element(&self) -> Result<Option<Element>, ExiError> {
        let mut b = TreeBuilder::new();
        match &self.body {
            Body::CertificateInstallationReq(x) => x.write(&mut b)?,
            Body::CertificateInstallationRes(x) => x.write(&mut b)?,
            Body::CertificateUpdateReq(x) => x.write(&mut b)?,
            Body::CertificateUpdateRes(x) => x.write(&mut b)?,
            Body::Other(e) => return Ok(e.clone()),
        }
        b.finish().map(Some)
    }
}

fn write_root_ids<S: Sink>(s: &mut S, ids: &[X509IssuerSerial]) -> Result<(), ExiError> {
    s.start(NS_BODY, "ListOfRootCertificateIDs")?;
    for r in ids {
        s.start(NS_DT, "RootCertificateID")?;
        s.text_element(xmldsig::NS, "X509IssuerName", &r.issuer_name)?;
        s.text_element(xmldsig::NS, "X509SerialNumber", &r.serial_number)?;
        s.end()?;
    }
    s.end()
}

fn read_root_ids(e: &Element) -> Result<Vec<X509IssuerSerial>, ExiError> {
    e.find_all("RootCertificateID")
        .map(|r| {
            Ok(X509IssuerSerial {
                issuer_name: child(r, "X509IssuerName")?.text_content(),
                serial_number: child(r, "X509SerialNumber")?
                    .text_content()
                    .trim()
                    .to_string(),
            })
        })
        .collect()
}

impl CertificateChain {
    /// Writes the chain as element `{MsgBody}local` (the only namespace it is used with in bodies).
    pub fn write<S: Sink>(&self, s: &mut S, local: &'static str) -> Result<(), ExiError> {
        s.start(NS_BODY, local)?;
        if let Some(id) = &self.id {
            s.attr(NS_DT, "Id", id)?;
        }
        s.bytes_element(NS_DT, "Certificate", &self.certificate)?;
        if !self.sub_certificates.is_empty() {
            s.start(NS_DT, "SubCertificates")?;
            for c in &self.sub_certificates {
                s.bytes_element(NS_DT, "Certificate", c)?;
            }
            s.end()?;
        }
        s.end()
    }

    pub fn to_element(&self, local: &'static str) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b, local)?;
        b.finish()
    }

    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        Ok(CertificateChain {
            id: attr(e, "Id"),
            certificate: b64(child(e, "Certificate")?)?,
            sub_certificates: match e.find("SubCertificates") {
                Some(sc) => sc
                    .find_all("Certificate")
                    .map(b64)
                    .collect::<Result<_, _>>()?,
                None => vec![],
            },
        })
    }
}

impl IdBytes {
    pub fn write<S: Sink>(&self, s: &mut S, local: &'static str) -> Result<(), ExiError> {
        s.start(NS_BODY, local)?;
        s.attr(NS_DT, "Id", &self.id)?;
        s.bytes(&self.value)?;
        s.end()
    }
    pub fn to_element(&self, local: &'static str) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b, local)?;
        b.finish()
    }
    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        Ok(IdBytes {
            id: attr(e, "Id").unwrap_or_default(),
            value: b64(e)?,
        })
    }
}

impl IdString {
    pub fn write<S: Sink>(&self, s: &mut S, local: &'static str) -> Result<(), ExiError> {
        s.start(NS_BODY, local)?;
        s.attr(NS_DT, "Id", &self.id)?;
        s.text(&self.value)?;
        s.end()
    }
    pub fn to_element(&self, local: &'static str) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b, local)?;
        b.finish()
    }
    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        Ok(IdString {
            id: attr(e, "Id").unwrap_or_default(),
            value: e.text_content(),
        })
    }
}

impl CertificateInstallationReq {
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS_BODY, "CertificateInstallationReq")?;
        s.attr(NS_BODY, "Id", &self.id)?;
        s.bytes_element(NS_BODY, "OEMProvisioningCert", &self.oem_provisioning_cert)?;
        write_root_ids(s, &self.list_of_root_certificate_ids)?;
        s.end()
    }
    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }
    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        Ok(CertificateInstallationReq {
            id: attr(e, "Id").unwrap_or_default(),
            oem_provisioning_cert: b64(child(e, "OEMProvisioningCert")?)?,
            list_of_root_certificate_ids: read_root_ids(child(e, "ListOfRootCertificateIDs")?)?,
        })
    }
}

impl CertificateUpdateReq {
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS_BODY, "CertificateUpdateReq")?;
        s.attr(NS_BODY, "Id", &self.id)?;
        self.contract_signature_cert_chain
            .write(s, "ContractSignatureCertChain")?;
        s.text_element(NS_BODY, "eMAID", &self.emaid)?;
        write_root_ids(s, &self.list_of_root_certificate_ids)?;
        s.end()
    }
    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }
    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        Ok(CertificateUpdateReq {
            id: attr(e, "Id").unwrap_or_default(),
            contract_signature_cert_chain: CertificateChain::from_element(child(
                e,
                "ContractSignatureCertChain",
            )?)?,
            emaid: child(e, "eMAID")?.text_content(),
            list_of_root_certificate_ids: read_root_ids(child(e, "ListOfRootCertificateIDs")?)?,
        })
    }
}

/// The six common elements of CertificateInstallationRes / CertificateUpdateRes.
#[allow(clippy::too_many_arguments)]
fn write_res_common<S: Sink>(
    s: &mut S,
    rc: ResponseCode,
    sa: &CertificateChain,
    cc: &CertificateChain,
    key: &IdBytes,
    dh: &IdBytes,
    emaid: &IdString,
) -> Result<(), ExiError> {
    s.text_element(NS_BODY, "ResponseCode", rc.as_str())?;
    sa.write(s, "SAProvisioningCertificateChain")?;
    cc.write(s, "ContractSignatureCertChain")?;
    key.write(s, "ContractSignatureEncryptedPrivateKey")?;
    dh.write(s, "DHpublickey")?;
    emaid.write(s, "eMAID")
}

type ResParts = (
    ResponseCode,
    CertificateChain,
    CertificateChain,
    IdBytes,
    IdBytes,
    IdString,
);

fn read_res_common(e: &Element) -> Result<ResParts, ExiError> {
    Ok((
        child(e, "ResponseCode")?.text_content().parse()?,
        CertificateChain::from_element(child(e, "SAProvisioningCertificateChain")?)?,
        CertificateChain::from_element(child(e, "ContractSignatureCertChain")?)?,
        IdBytes::from_element(child(e, "ContractSignatureEncryptedPrivateKey")?)?,
        IdBytes::from_element(child(e, "DHpublickey")?)?,
        IdString::from_element(child(e, "eMAID")?)?,
    ))
}

impl CertificateInstallationRes {
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS_BODY, "CertificateInstallationRes")?;
        write_res_common(
            s,
            self.response_code,
            &self.sa_provisioning_certificate_chain,
            &self.contract_signature_cert_chain,
            &self.contract_signature_encrypted_private_key,
            &self.dh_public_key,
            &self.emaid,
        )?;
        s.end()
    }
    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }
    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        let (response_code, sa, cc, key, dh, emaid) = read_res_common(e)?;
        Ok(CertificateInstallationRes {
            response_code,
            sa_provisioning_certificate_chain: sa,
            contract_signature_cert_chain: cc,
            contract_signature_encrypted_private_key: key,
            dh_public_key: dh,
            emaid,
        })
    }
}

impl CertificateUpdateRes {
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS_BODY, "CertificateUpdateRes")?;
        write_res_common(
            s,
            self.response_code,
            &self.sa_provisioning_certificate_chain,
            &self.contract_signature_cert_chain,
            &self.contract_signature_encrypted_private_key,
            &self.dh_public_key,
            &self.emaid,
        )?;
        if let Some(r) = self.retry_counter {
            s.text_element(NS_BODY, "RetryCounter", &r.to_string())?;
        }
        s.end()
    }
    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }
    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        let (response_code, sa, cc, key, dh, emaid) = read_res_common(e)?;
        Ok(CertificateUpdateRes {
            response_code,
            sa_provisioning_certificate_chain: sa,
            contract_signature_cert_chain: cc,
            contract_signature_encrypted_private_key: key,
            dh_public_key: dh,
            emaid,
            retry_counter: match e.find("RetryCounter") {
                Some(r) => Some(
                    r.text_content()
                        .trim()
                        .parse()
                        .map_err(|_| ExiError::Structure("RetryCounter".into()))?,
                ),
                None => None,
            },
        })
    }
}
