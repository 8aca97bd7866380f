//! The generic element tree every schema decodes into.

use std::borrow::Cow;

/// Namespace of `xsi:type` / `xsi:nil`.
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// An expanded name (namespace URI, local name); prefixes are not part of the infoset EXI keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QName {
    pub ns: Cow<'static, str>,
    pub local: Cow<'static, str>,
}

impl QName {
    pub fn new(ns: impl Into<Cow<'static, str>>, local: impl Into<Cow<'static, str>>) -> Self {
        QName {
            ns: ns.into(),
            local: local.into(),
        }
    }
    /// Clark notation `{ns}local` (used for xsi:type values in the tree).
    pub fn clark(&self) -> String {
        format!("{{{}}}{}", self.ns, self.local)
    }
    pub fn from_clark(s: &str) -> Option<Self> {
        let rest = s.strip_prefix('{')?;
        let (ns, local) = rest.split_once('}')?;
        Some(QName::new(ns.to_string(), local.to_string()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: QName,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An element with qualified name, attributes and children. `xsi:type` values are stored in
/// Clark notation (`{ns}local`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub name: QName,
    pub attrs: Vec<Attribute>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn new(ns: impl Into<Cow<'static, str>>, local: impl Into<Cow<'static, str>>) -> Self {
        Element {
            name: QName::new(ns, local),
            attrs: vec![],
            children: vec![],
        }
    }
    pub fn attr(
        mut self,
        ns: impl Into<Cow<'static, str>>,
        local: impl Into<Cow<'static, str>>,
        v: impl Into<String>,
    ) -> Self {
        self.attrs.push(Attribute {
            name: QName::new(ns, local),
            value: v.into(),
        });
        self
    }
    pub fn child(mut self, e: Element) -> Self {
        self.children.push(Node::Element(e));
        self
    }
    pub fn text(mut self, t: impl Into<String>) -> Self {
        self.children.push(Node::Text(t.into()));
        self
    }
    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }
    /// First child element with this local name (any namespace).
    pub fn find(&self, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.name.local == local)
    }
    pub fn find_all<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name.local == local)
    }
    /// Concatenated text content.
    pub fn text_content(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }
    /// Attribute value by local name (any namespace).
    pub fn attr_value(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name.local == local)
            .map(|a| a.value.as_str())
    }
    /// A copy without whitespace-only text nodes in element-only content (recursive), as
    /// schema-informed EXI drops them.
    pub fn normalized(&self) -> Element {
        let has_elem = self.elements().next().is_some();
        let mut out = Element {
            name: self.name.clone(),
            attrs: self.attrs.clone(),
            children: vec![],
        };
        out.attrs.sort_by(|a, b| a.name.cmp(&b.name));
        for n in &self.children {
            match n {
                Node::Element(e) => out.children.push(Node::Element(e.normalized())),
                Node::Text(t) => {
                    if has_elem && t.trim().is_empty() {
                        continue;
                    }
                    if let Some(Node::Text(prev)) = out.children.last_mut() {
                        prev.push_str(t);
                    } else {
                        out.children.push(Node::Text(t.clone()));
                    }
                }
            }
        }
        out
    }
}
