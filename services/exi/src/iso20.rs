//! Typed ISO 15118-20 CertificateInstallationReq / CertificateInstallationRes with
//! `SignedInstallationData`.
//! The codec follows the XSD: `DHPublicKey` is 133 bytes in the schema, even for X448.

use crate::codec::Encoder;
use crate::error::ExiError;
use crate::sink::{Sink, TreeBuilder};
use crate::tree::Element;
use crate::typed::{attr, b64, child, hexbin, string_enum};
use crate::xmldsig::{self, Signature};
use crate::{Schema, decode_document};

pub const NS_CM: &str = "urn:iso:std:iso:15118:-20:CommonMessages";
pub const NS_CT: &str = "urn:iso:std:iso:15118:-20:CommonTypes";

string_enum!(
    /// -20 `responseCodeType` (CommonTypes).
    ResponseCode {
        Ok = "OK",
        OkCertificateExpiresSoon = "OK_CertificateExpiresSoon",
        OkNewSessionEstablished = "OK_NewSessionEstablished",
        OkOldSessionJoined = "OK_OldSessionJoined",
        OkPowerToleranceConfirmed = "OK_PowerToleranceConfirmed",
        WarningAuthorizationSelectionInvalid = "WARNING_AuthorizationSelectionInvalid",
        WarningCertificateExpired = "WARNING_CertificateExpired",
        WarningCertificateNotYetValid = "WARNING_CertificateNotYetValid",
        WarningCertificateRevoked = "WARNING_CertificateRevoked",
        WarningCertificateValidationError = "WARNING_CertificateValidationError",
        WarningChallengeInvalid = "WARNING_ChallengeInvalid",
        WarningEIMAuthorizationFailure = "WARNING_EIMAuthorizationFailure",
        WarningEMSPUnknown = "WARNING_eMSPUnknown",
        WarningEVPowerProfileViolation = "WARNING_EVPowerProfileViolation",
        WarningGeneralPnCAuthorizationError = "WARNING_GeneralPnCAuthorizationError",
        WarningNoCertificateAvailable = "WARNING_NoCertificateAvailable",
        WarningNoContractMatchingPCIDFound = "WARNING_NoContractMatchingPCIDFound",
        WarningPowerToleranceNotConfirmed = "WARNING_PowerToleranceNotConfirmed",
        WarningScheduleRenegotiationFailed = "WARNING_ScheduleRenegotiationFailed",
        WarningStandbyNotAllowed = "WARNING_StandbyNotAllowed",
        WarningWpt = "WARNING_WPT",
        Failed = "FAILED",
        FailedAssociationError = "FAILED_AssociationError",
        FailedContactorError = "FAILED_ContactorError",
        FailedEVPowerProfileInvalid = "FAILED_EVPowerProfileInvalid",
        FailedEVPowerProfileViolation = "FAILED_EVPowerProfileViolation",
        FailedMeteringSignatureNotValid = "FAILED_MeteringSignatureNotValid",
        FailedNoEnergyTransferServiceSelected = "FAILED_NoEnergyTransferServiceSelected",
        FailedNoServiceRenegotiationSupported = "FAILED_NoServiceRenegotiationSupported",
        FailedPauseNotAllowed = "FAILED_PauseNotAllowed",
        FailedPowerDeliveryNotApplied = "FAILED_PowerDeliveryNotApplied",
        FailedPowerToleranceNotConfirmed = "FAILED_PowerToleranceNotConfirmed",
        FailedScheduleRenegotiation = "FAILED_ScheduleRenegotiation",
        FailedScheduleSelectionInvalid = "FAILED_ScheduleSelectionInvalid",
        FailedSequenceError = "FAILED_SequenceError",
        FailedServiceIDInvalid = "FAILED_ServiceIDInvalid",
        FailedServiceSelectionInvalid = "FAILED_ServiceSelectionInvalid",
        FailedSignatureError = "FAILED_SignatureError",
        FailedUnknownSession = "FAILED_UnknownSession",
        FailedWrongChargeParameter = "FAILED_WrongChargeParameter",
    }
);

string_enum!(
    /// `processingType` (EVSEProcessing).
    EvseProcessing { Finished = "Finished", Ongoing = "Ongoing", OngoingWaitingForCustomerInteraction = "Ongoing_WaitingForCustomerInteraction" }
);

string_enum!(
    /// `ecdhCurveType`.
    EcdhCurve { Secp521 = "SECP521", X448 = "X448" }
);

/// `MessageHeaderType` (-20): SessionID is exactly 8 bytes in the schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub session_id: Vec<u8>,
    pub time_stamp: u64,
    pub signature: Option<Signature>,
}

/// `X509IssuerSerialType` entry of `ListOfRootCertificateIDs`.
pub use crate::iso2::X509IssuerSerial;

/// `SignedCertificateChainType` (Id required) or `CertificateChainType` / `ContractCertificateChainType`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CertificateChain {
    /// `Id` (CommonMessages namespace); only `SignedCertificateChainType` has it
    pub id: Option<String>,
    pub certificate: Vec<u8>,
    /// 0..3 (empty = no SubCertificates element; mandatory in ContractCertificateChain)
    pub sub_certificates: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInstallationReq {
    pub header: Header,
    pub oem_provisioning_certificate_chain: CertificateChain,
    pub list_of_root_certificate_ids: Vec<X509IssuerSerial>,
    pub maximum_contract_certificate_chains: u8,
    /// 1..8 (empty = absent)
    pub prioritized_emaids: Vec<String>,
}

/// The encrypted-key choice of `SignedInstallationData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncryptedPrivateKey {
    /// 94 bytes
    Secp521(Vec<u8>),
    /// 84 bytes
    X448(Vec<u8>),
    /// 206 bytes
    Tpm(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedInstallationData {
    /// `Id` (CommonMessages namespace), required; the single signed reference
    pub id: String,
    pub contract_certificate_chain: CertificateChain,
    pub ecdh_curve: EcdhCurve,
    pub dh_public_key: Vec<u8>,
    pub encrypted_private_key: EncryptedPrivateKey,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInstallationRes {
    pub header: Header,
    pub response_code: ResponseCode,
    pub evse_processing: EvseProcessing,
    pub cps_certificate_chain: CertificateChain,
    pub signed_installation_data: SignedInstallationData,
    pub remaining_contract_certificate_chains: u8,
}

impl Header {
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS_CT, "Header")?;
        s.start(NS_CT, "SessionID")?;
        s.hex(&self.session_id)?;
        s.end()?;
        s.text_element(NS_CT, "TimeStamp", &self.time_stamp.to_string())?;
        if let Some(sig) = &self.signature {
            sig.write(s)?;
        }
        s.end()
    }
    fn from_element(h: &Element) -> Result<Self, ExiError> {
        Ok(Header {
            session_id: hexbin(child(h, "SessionID")?)?,
            time_stamp: child(h, "TimeStamp")?
                .text_content()
                .trim()
                .parse()
                .map_err(|_| ExiError::Structure("TimeStamp".into()))?,
            signature: h
                .find("Signature")
                .map(Signature::from_element)
                .transpose()?,
        })
    }
}

impl CertificateChain {
    pub fn write<S: Sink>(&self, s: &mut S, local: &'static str) -> Result<(), ExiError> {
        s.start(NS_CM, local)?;
        if let Some(id) = &self.id {
            s.attr(NS_CM, "Id", id)?;
        }
        s.bytes_element(NS_CM, "Certificate", &self.certificate)?;
        if !self.sub_certificates.is_empty() {
            s.start(NS_CM, "SubCertificates")?;
            for c in &self.sub_certificates {
                s.bytes_element(NS_CM, "Certificate", c)?;
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

impl CertificateInstallationReq {
    pub fn decode(exi: &[u8]) -> Result<Self, ExiError> {
        Self::from_element(&decode_document(Schema::Iso20, exi)?)
    }
    pub fn encode(&self) -> Result<Vec<u8>, ExiError> {
        let mut e = Encoder::new(Schema::Iso20.tables(), false);
        self.write(&mut e)?;
        e.finish()
    }
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS_CM, "CertificateInstallationReq")?;
        self.header.write(s)?;
        self.oem_provisioning_certificate_chain
            .write(s, "OEMProvisioningCertificateChain")?;
        s.start(NS_CM, "ListOfRootCertificateIDs")?;
        for r in &self.list_of_root_certificate_ids {
            s.start(NS_CT, "RootCertificateID")?;
            s.text_element(xmldsig::NS, "X509IssuerName", &r.issuer_name)?;
            s.text_element(xmldsig::NS, "X509SerialNumber", &r.serial_number)?;
            s.end()?;
        }
        s.end()?;
        s.text_element(
            NS_CM,
            "MaximumContractCertificateChains",
            &self.maximum_contract_certificate_chains.to_string(),
        )?;
        if !self.prioritized_emaids.is_empty() {
            s.start(NS_CM, "PrioritizedEMAIDs")?;
            for e in &self.prioritized_emaids {
                s.text_element(NS_CM, "EMAID", e)?;
            }
            s.end()?;
        }
        s.end()
    }
    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }
    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        if e.name.ns != NS_CM || e.name.local != "CertificateInstallationReq" {
            return Err(ExiError::Structure(format!(
                "root is {} (expected CertificateInstallationReq)",
                e.name.local
            )));
        }
        Ok(CertificateInstallationReq {
            header: Header::from_element(child(e, "Header")?)?,
            oem_provisioning_certificate_chain: CertificateChain::from_element(child(
                e,
                "OEMProvisioningCertificateChain",
            )?)?,
            list_of_root_certificate_ids: child(e, "ListOfRootCertificateIDs")?
                .find_all("RootCertificateID")
                .map(|r| {
                    Ok(X509IssuerSerial {
                        issuer_name: child(r, "X509IssuerName")?.text_content(),
                        serial_number: child(r, "X509SerialNumber")?
                            .text_content()
                            .trim()
                            .to_string(),
                    })
                })
                .collect::<Result<_, ExiError>>()?,
            maximum_contract_certificate_chains: child(e, "MaximumContractCertificateChains")?
                .text_content()
                .trim()
                .parse()
                .map_err(|_| ExiError::Structure("MaximumContractCertificateChains".into()))?,
            prioritized_emaids: e
                .find("PrioritizedEMAIDs")
                .map(|p| p.find_all("EMAID").map(|x| x.text_content()).collect())
                .unwrap_or_default(),
        })
    }
}

impl SignedInstallationData {
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS_CM, "SignedInstallationData")?;
        s.attr(NS_CM, "Id", &self.id)?;
        self.contract_certificate_chain
            .write(s, "ContractCertificateChain")?;
        s.text_element(NS_CM, "ECDHCurve", self.ecdh_curve.as_str())?;
        s.bytes_element(NS_CM, "DHPublicKey", &self.dh_public_key)?;
        match &self.encrypted_private_key {
            EncryptedPrivateKey::Secp521(k) => {
                s.bytes_element(NS_CM, "SECP521_EncryptedPrivateKey", k)?
            }
            EncryptedPrivateKey::X448(k) => {
                s.bytes_element(NS_CM, "X448_EncryptedPrivateKey", k)?
            }
            EncryptedPrivateKey::Tpm(k) => s.bytes_element(NS_CM, "TPM_EncryptedPrivateKey", k)?,
        }
        s.end()
    }
    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }
    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        let key = if let Some(k) = e.find("SECP521_EncryptedPrivateKey") {
            EncryptedPrivateKey::Secp521(b64(k)?)
        } else if let Some(k) = e.find("X448_EncryptedPrivateKey") {
            EncryptedPrivateKey::X448(b64(k)?)
        } else {
            EncryptedPrivateKey::Tpm(b64(child(e, "TPM_EncryptedPrivateKey")?)?)
        };
        Ok(SignedInstallationData {
            id: attr(e, "Id").unwrap_or_default(),
            contract_certificate_chain: CertificateChain::from_element(child(
                e,
                "ContractCertificateChain",
            )?)?,
            ecdh_curve: child(e, "ECDHCurve")?.text_content().parse()?,
            dh_public_key: b64(child(e, "DHPublicKey")?)?,
            encrypted_private_key: key,
        })
    }
}

impl CertificateInstallationRes {
    pub fn decode(exi: &[u8]) -> Result<Self, ExiError> {
        Self::from_element(&decode_document(Schema::Iso20, exi)?)
    }
    pub fn encode(&self) -> Result<Vec<u8>, ExiError> {
        let mut e = Encoder::new(Schema::Iso20.tables(), false);
        self.write(&mut e)?;
        e.finish()
    }
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS_CM, "CertificateInstallationRes")?;
        self.header.write(s)?;
        s.text_element(NS_CT, "ResponseCode", self.response_code.as_str())?;
        s.text_element(NS_CM, "EVSEProcessing", self.evse_processing.as_str())?;
        self.cps_certificate_chain.write(s, "CPSCertificateChain")?;
        self.signed_installation_data.write(s)?;
        s.text_element(
            NS_CM,
            "RemainingContractCertificateChains",
            &self.remaining_contract_certificate_chains.to_string(),
        )?;
        s.end()
    }
    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }
    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        if e.name.ns != NS_CM || e.name.local != "CertificateInstallationRes" {
            return Err(ExiError::Structure(format!(
                "root is {} (expected CertificateInstallationRes)",
                e.name.local
            )));
        }
        Ok(CertificateInstallationRes {
            header: Header::from_element(child(e, "Header")?)?,
            response_code: child(e, "ResponseCode")?.text_content().parse()?,
            evse_processing: child(e, "EVSEProcessing")?.text_content().parse()?,
            cps_certificate_chain: CertificateChain::from_element(child(
                e,
                "CPSCertificateChain",
            )?)?,
            signed_installation_data: SignedInstallationData::from_element(child(
                e,
                "SignedInstallationData",
            )?)?,
            remaining_contract_certificate_chains: child(e, "RemainingContractCertificateChains")?
                .text_content()
                .trim()
                .parse()
                .map_err(|_| ExiError::Structure("RemainingContractCertificateChains".into()))?,
        })
    }
}
