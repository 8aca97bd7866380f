//! `pnc-exi`: schema-informed EXI 1.0 codec for ISO 15118 and XML signatures over EXI.
//!
//! Module layout:
//! - [`grammar`]: table types; [`generated`]: grammar tables generated from the XSDs by
//!   `services/exi/codegen` (ISO 15118-2 MsgDef set, ISO 15118-20 CommonMessages set, xmldsig
//!   alone, AppProtocol).
//! - [`codec`]: the table-driven encoder/decoder (bit-packed, non-strict, header 0x80, ISO 15118
//!   profile: no value string table).
//! - [`tree`]: the generic element tree every message decodes into; [`xml`]: XML text <-> tree.
//! - [`iso2`], [`iso20`], [`xmldsig`]: typed messages for what pnc handles.
//! - [`signature`]: XML signature over EXI (digests of EXI fragments, ECDSA) per ISO 15118.
//! - [`cli`]: `pnc exi decode|encode`.
//! - [`sink`]: the event sink typed messages write through (straight into the encoder on the hot
//!   path, or into a tree); [`bits`], [`big`]: bit-packed I/O and unbounded integers.
//!
//! Hot path (one request, one response):
//!
//! ```no_run
//! use pnc_exi::iso2::{Body, V2gMessage};
//! use pnc_exi::{Schema, decode_document, signature};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let exi: Vec<u8> = vec![];
//! let tree = decode_document(Schema::Iso2, &exi)?;          // generic tree (for verification)
//! let req = V2gMessage::from_element(&tree)?;                // typed view
//! if let Body::CertificateInstallationReq(r) = &req.body {
//!     let key = signature::public_key_from_cert_der(&r.oem_provisioning_cert)?;
//!     signature::verify_iso2_message(&tree, &key)?;          // digests + ECDSA, [V2G2-771]
//! }
//! # Ok(()) }
//! ```
//!
//! The response side signs the four contract elements with
//! [`signature::sign_iso2_certificate_response`] (any [`signature::ExiSigner`], e.g. a closure
//! over an HSM) and encodes with [`iso2::V2gMessage::encode`].

pub mod big;
pub mod bits;
pub mod cli;
pub mod codec;
pub mod error;
pub mod generated;
pub mod grammar;
pub mod iso2;
pub mod iso20;
pub mod signature;
pub mod sink;
pub mod tree;
mod typed;
pub mod xml;
pub mod xmldsig;

pub use error::ExiError;
pub use tree::{Attribute, Element, Node, QName};

use grammar::SchemaTables;

/// The schema sets (grammar tables) the codec knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Schema {
    /// ISO 15118-2:2014 (`V2G_CI_MsgDef.xsd` and its imports, incl. xmldsig)
    Iso2,
    /// ISO 15118-20:2022 (`V2G_CI_CommonMessages.xsd` and its imports)
    Iso20,
    /// `xmldsig-core-schema.xsd` alone (SignedInfo fragments)
    XmlDsig,
    /// `V2G_CI_AppProtocol.xsd`
    AppProtocol,
}

impl Schema {
    pub fn tables(self) -> &'static SchemaTables {
        match self {
            Schema::Iso2 => &generated::iso2::TABLES,
            Schema::Iso20 => &generated::iso20::TABLES,
            Schema::XmlDsig => &generated::xmldsig::TABLES,
            Schema::AppProtocol => &generated::app::TABLES,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Schema::Iso2 => "iso-2",
            Schema::Iso20 => "iso-20",
            Schema::XmlDsig => "xmldsig",
            Schema::AppProtocol => "app",
        }
    }
}

impl std::str::FromStr for Schema {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "iso-2" | "iso2" => Ok(Schema::Iso2),
            "iso-20" | "iso20" => Ok(Schema::Iso20),
            "xmldsig" => Ok(Schema::XmlDsig),
            "app" | "appprotocol" => Ok(Schema::AppProtocol),
            _ => Err(format!(
                "unknown schema {s:?} (iso-2, iso-20, xmldsig, app)"
            )),
        }
    }
}

impl std::fmt::Display for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Decodes an EXI document (header 0x80) into its root element.
pub fn decode_document(schema: Schema, exi: &[u8]) -> Result<Element, ExiError> {
    codec::Decoder::new(schema.tables(), exi)?.document()
}

/// Encodes `root` as an EXI document.
pub fn encode_document(schema: Schema, root: &Element) -> Result<Vec<u8>, ExiError> {
    let mut e = codec::Encoder::new(schema.tables(), false);
    e.element(root)?;
    e.finish()
}

/// Decodes an EXI fragment holding exactly one element (digest inputs, SignedInfo).
pub fn decode_fragment(schema: Schema, exi: &[u8]) -> Result<Element, ExiError> {
    let mut v = codec::Decoder::new(schema.tables(), exi)?.fragment()?;
    if v.len() != 1 {
        return Err(ExiError::Unsupported(format!(
            "fragment with {} elements (expected 1)",
            v.len()
        )));
    }
    v.pop()
        .ok_or_else(|| ExiError::Unsupported("empty fragment".into()))
}

/// Decodes an EXI fragment with any number of top-level elements.
pub fn decode_fragment_all(schema: Schema, exi: &[u8]) -> Result<Vec<Element>, ExiError> {
    codec::Decoder::new(schema.tables(), exi)?.fragment()
}

/// Encodes `elem` as an EXI fragment (§8.5.2).
pub fn encode_fragment(schema: Schema, elem: &Element) -> Result<Vec<u8>, ExiError> {
    let mut e = codec::Encoder::new(schema.tables(), true);
    e.element(elem)?;
    e.finish()
}
