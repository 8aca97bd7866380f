//! A small event sink so typed messages write straight into the EXI encoder (hot path) or
//! into a generic [`Element`] tree (XML, inspection) with the same code.

use crate::codec::{Encoder, ValRef};
use crate::error::ExiError;
use crate::tree::{Attribute, Element, Node, QName};
use base64::Engine as _;

pub trait Sink {
    fn start(&mut self, ns: &'static str, local: &'static str) -> Result<(), ExiError>;
    fn attr(&mut self, ns: &'static str, local: &'static str, v: &str) -> Result<(), ExiError>;
    fn text(&mut self, v: &str) -> Result<(), ExiError>;
    /// base64Binary content
    fn bytes(&mut self, v: &[u8]) -> Result<(), ExiError>;
    /// hexBinary content
    fn hex(&mut self, v: &[u8]) -> Result<(), ExiError>;
    fn end(&mut self) -> Result<(), ExiError>;
    /// A whole generic subtree.
    fn element(&mut self, e: &Element) -> Result<(), ExiError>;

    /// `<ns:local>text</ns:local>`
    fn text_element(
        &mut self,
        ns: &'static str,
        local: &'static str,
        v: &str,
    ) -> Result<(), ExiError> {
        self.start(ns, local)?;
        self.text(v)?;
        self.end()
    }
    fn bytes_element(
        &mut self,
        ns: &'static str,
        local: &'static str,
        v: &[u8],
    ) -> Result<(), ExiError> {
        self.start(ns, local)?;
        self.bytes(v)?;
        self.end()
    }
}

impl Sink for Encoder {
    fn start(&mut self, ns: &'static str, local: &'static str) -> Result<(), ExiError> {
        self.start_element(ns, local)
    }
    fn attr(&mut self, ns: &'static str, local: &'static str, v: &str) -> Result<(), ExiError> {
        self.attribute(ns, local, ValRef::Str(v))
    }
    fn text(&mut self, v: &str) -> Result<(), ExiError> {
        self.characters(ValRef::Str(v))
    }
    fn bytes(&mut self, v: &[u8]) -> Result<(), ExiError> {
        self.characters(ValRef::Bytes(v))
    }
    fn hex(&mut self, v: &[u8]) -> Result<(), ExiError> {
        self.characters(ValRef::Bytes(v))
    }
    fn end(&mut self) -> Result<(), ExiError> {
        self.end_element()
    }
    fn element(&mut self, e: &Element) -> Result<(), ExiError> {
        Encoder::element(self, e)
    }
}

/// Builds an [`Element`] tree.
#[derive(Default)]
pub struct TreeBuilder {
    stack: Vec<Element>,
    root: Option<Element>,
}

impl TreeBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn finish(self) -> Result<Element, ExiError> {
        if !self.stack.is_empty() {
            return Err(ExiError::Encode("unclosed element".into()));
        }
        self.root
            .ok_or_else(|| ExiError::Encode("no element".into()))
    }
    fn top(&mut self) -> Result<&mut Element, ExiError> {
        self.stack
            .last_mut()
            .ok_or_else(|| ExiError::Encode("no open element".into()))
    }
    fn push_node(&mut self, e: Element) -> Result<(), ExiError> {
        match self.stack.last_mut() {
            Some(p) => p.children.push(Node::Element(e)),
            None => {
                if self.root.is_some() {
                    return Err(ExiError::Encode("second root element".into()));
                }
                self.root = Some(e);
            }
        }
        Ok(())
    }
}

impl Sink for TreeBuilder {
    fn start(&mut self, ns: &'static str, local: &'static str) -> Result<(), ExiError> {
        self.stack.push(Element::new(ns, local));
        Ok(())
    }
    fn attr(&mut self, ns: &'static str, local: &'static str, v: &str) -> Result<(), ExiError> {
        self.top()?.attrs.push(Attribute {
            name: QName::new(ns, local),
            value: v.to_string(),
        });
        Ok(())
    }
    fn text(&mut self, v: &str) -> Result<(), ExiError> {
        self.top()?.children.push(Node::Text(v.to_string()));
        Ok(())
    }
    fn bytes(&mut self, v: &[u8]) -> Result<(), ExiError> {
        let s = base64::engine::general_purpose::STANDARD.encode(v);
        self.top()?.children.push(Node::Text(s));
        Ok(())
    }
    fn hex(&mut self, v: &[u8]) -> Result<(), ExiError> {
        let s = hex::encode_upper(v);
        self.top()?.children.push(Node::Text(s));
        Ok(())
    }
    fn end(&mut self) -> Result<(), ExiError> {
        let e = self
            .stack
            .pop()
            .ok_or_else(|| ExiError::Encode("unbalanced end".into()))?;
        self.push_node(e)
    }
    fn element(&mut self, e: &Element) -> Result<(), ExiError> {
        self.push_node(e.clone())
    }
}
