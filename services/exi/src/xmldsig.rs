//! Typed xmldsig `Signature` / `SignedInfo` / `Reference` as ISO 15118 uses them.

use crate::error::ExiError;
use crate::sink::{Sink, TreeBuilder};
use crate::tree::Element;
use crate::typed::{attr, b64, child};

pub const NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// `ds:Signature`. Fields forbidden by [V2G2-771] are kept as flags so verifiers can reject them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub id: Option<String>,
    pub signed_info: SignedInfo,
    /// raw r||s
    pub signature_value: Vec<u8>,
    pub signature_value_id: Option<String>,
    /// `KeyInfo` present (forbidden by [V2G2-771]; not modelled further)
    pub has_key_info: bool,
    /// `Object` present (forbidden by [V2G2-771])
    pub has_object: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedInfo {
    pub id: Option<String>,
    pub canonicalization_method: String,
    pub signature_method: String,
    /// `HMACOutputLength` (forbidden by [V2G2-771])
    pub hmac_output_length: Option<String>,
    pub references: Vec<Reference>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub id: Option<String>,
    pub uri: Option<String>,
    /// `Type` attribute (forbidden by [V2G2-771])
    pub type_: Option<String>,
    /// Transform algorithms, in order (`None` = no `Transforms` element)
    pub transforms: Option<Vec<String>>,
    pub digest_method: String,
    pub digest_value: Vec<u8>,
}

impl Signature {
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS, "Signature")?;
        if let Some(id) = &self.id {
            s.attr("", "Id", id)?;
        }
        self.signed_info.write(s)?;
        s.start(NS, "SignatureValue")?;
        if let Some(id) = &self.signature_value_id {
            s.attr("", "Id", id)?;
        }
        s.bytes(&self.signature_value)?;
        s.end()?;
        s.end()
    }

    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }

    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        let si = child(e, "SignedInfo")?;
        let sv = child(e, "SignatureValue")?;
        Ok(Signature {
            id: attr(e, "Id"),
            signed_info: SignedInfo::from_element(si)?,
            signature_value: b64(sv)?,
            signature_value_id: attr(sv, "Id"),
            has_key_info: e.find("KeyInfo").is_some(),
            has_object: e.find("Object").is_some(),
        })
    }
}

impl SignedInfo {
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS, "SignedInfo")?;
        if let Some(id) = &self.id {
            s.attr("", "Id", id)?;
        }
        s.start(NS, "CanonicalizationMethod")?;
        s.attr("", "Algorithm", &self.canonicalization_method)?;
        s.end()?;
        s.start(NS, "SignatureMethod")?;
        s.attr("", "Algorithm", &self.signature_method)?;
        if let Some(h) = &self.hmac_output_length {
            s.text_element(NS, "HMACOutputLength", h)?;
        }
        s.end()?;
        for r in &self.references {
            r.write(s)?;
        }
        s.end()
    }

    pub fn to_element(&self) -> Result<Element, ExiError> {
        let mut b = TreeBuilder::new();
        self.write(&mut b)?;
        b.finish()
    }

    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        let sm = child(e, "SignatureMethod")?;
        Ok(SignedInfo {
            id: attr(e, "Id"),
            canonicalization_method: attr(child(e, "CanonicalizationMethod")?, "Algorithm")
                .unwrap_or_default(),
            signature_method: attr(sm, "Algorithm").unwrap_or_default(),
            hmac_output_length: sm.find("HMACOutputLength").map(|h| h.text_content()),
            references: e
                .find_all("Reference")
                .map(Reference::from_element)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl Reference {
    pub fn write<S: Sink>(&self, s: &mut S) -> Result<(), ExiError> {
        s.start(NS, "Reference")?;
        if let Some(v) = &self.id {
            s.attr("", "Id", v)?;
        }
        if let Some(v) = &self.type_ {
            s.attr("", "Type", v)?;
        }
        if let Some(v) = &self.uri {
            s.attr("", "URI", v)?;
        }
        if let Some(ts) = &self.transforms {
            s.start(NS, "Transforms")?;
            for t in ts {
                s.start(NS, "Transform")?;
                s.attr("", "Algorithm", t)?;
                s.end()?;
            }
            s.end()?;
        }
        s.start(NS, "DigestMethod")?;
        s.attr("", "Algorithm", &self.digest_method)?;
        s.end()?;
        s.bytes_element(NS, "DigestValue", &self.digest_value)?;
        s.end()
    }

    pub fn from_element(e: &Element) -> Result<Self, ExiError> {
        Ok(Reference {
            id: attr(e, "Id"),
            uri: attr(e, "URI"),
            type_: attr(e, "Type"),
            transforms: e.find("Transforms").map(|t| {
                t.find_all("Transform")
                    .map(|x| attr(x, "Algorithm").unwrap_or_default())
                    .collect()
            }),
            digest_method: attr(child(e, "DigestMethod")?, "Algorithm").unwrap_or_default(),
            digest_value: b64(child(e, "DigestValue")?)?,
        })
    }
}
