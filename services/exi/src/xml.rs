//! XML text <-> [`Element`] tree (quick-xml). Reads what XML tools write: any prefixes, default
//! namespaces, prefixes re-bound in nested elements, CDATA, character references. The tree keeps
//! whitespace text; the encoder drops whitespace-only text in element-only content.

use crate::tree::{Attribute, Element, Node, QName, XSI_NS};
use quick_xml::events::Event;
use quick_xml::name::{QName as XQName, ResolveResult};
use quick_xml::reader::NsReader;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("XML syntax error at byte {pos}: {msg}")]
    Syntax { pos: u64, msg: String },
    #[error("unbound namespace prefix {0:?}")]
    UnboundPrefix(String),
    #[error("document has no root element")]
    NoRoot,
    #[error("content after the root element")]
    TrailingContent,
    #[error("nesting too deep")]
    TooDeep,
}

const MAX_DEPTH: usize = 100;

fn resolved_ns(r: &ResolveResult) -> Result<String, XmlError> {
    match r {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(XmlError::UnboundPrefix(
            String::from_utf8_lossy(p).into_owned(),
        )),
    }
}

/// Parses XML text into an element tree.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    let mut r = NsReader::from_str(text);
    let mut stack: Vec<Element> = vec![];
    let mut root: Option<Element> = None;
    let syntax = |r: &NsReader<&[u8]>, e: &dyn std::fmt::Display| XmlError::Syntax {
        pos: r.buffer_position(),
        msg: e.to_string(),
    };
    loop {
        let step = r
            .read_resolved_event()
            .map(|(res, ev)| (resolved_ns(&res), ev))
            .map_err(|e| e.to_string());
        let (res, ev) = match step {
            Ok(x) => x,
            Err(msg) => {
                return Err(XmlError::Syntax {
                    pos: r.buffer_position(),
                    msg,
                });
            }
        };
        let is_empty = matches!(ev, Event::Empty(_));
        match (res, ev) {
            (res, Event::Start(s)) | (res, Event::Empty(s)) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                if root.is_some() {
                    return Err(XmlError::TrailingContent);
                }
                let ns = res?;
                let local = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
                let mut el = Element::new(ns, local);
                for a in s.attributes() {
                    let a = a.map_err(|e| syntax(&r, &e))?;
                    let key = a.key;
                    if key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:") {
                        continue;
                    }
                    let (ares, alocal) = r.resolve_attribute(key);
                    let ans = resolved_ns(&ares)?;
                    let mut value = a.unescape_value().map_err(|e| syntax(&r, &e))?.into_owned();
                    let alocal = String::from_utf8_lossy(alocal.as_ref()).into_owned();
                    if ans == XSI_NS && alocal == "type" {
                        // QName-valued: resolve the prefix now, store Clark notation
                        let v = value.trim().to_string();
                        let (tres, tlocal) = r.resolve_element(XQName(v.as_bytes()));
                        let tns = resolved_ns(&tres)?;
                        value = format!("{{{tns}}}{}", String::from_utf8_lossy(tlocal.as_ref()));
                    }
                    el.attrs.push(Attribute {
                        name: QName::new(ans, alocal),
                        value,
                    });
                }
                if is_empty {
                    match stack.last_mut() {
                        Some(p) => p.children.push(Node::Element(el)),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            (_, Event::End(_)) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| syntax(&r, &"unbalanced end tag"))?;
                match stack.last_mut() {
                    Some(p) => p.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            (_, Event::Text(t)) => {
                let s = t.unescape().map_err(|e| syntax(&r, &e))?;
                match stack.last_mut() {
                    Some(p) => push_text(p, &s),
                    None => {
                        if !s.trim().is_empty() {
                            return Err(syntax(&r, &"text outside the root element"));
                        }
                    }
                }
            }
            (_, Event::CData(c)) => {
                let s = String::from_utf8_lossy(&c.into_inner()).into_owned();
                if let Some(p) = stack.last_mut() {
                    push_text(p, &s);
                }
            }
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax {
            pos: text.len() as u64,
            msg: "unclosed element".into(),
        });
    }
    root.ok_or(XmlError::NoRoot)
}

fn push_text(e: &mut Element, s: &str) {
    if let Some(Node::Text(prev)) = e.children.last_mut() {
        prev.push_str(s);
    } else {
        e.children.push(Node::Text(s.to_string()));
    }
}

fn preferred_prefix(ns: &str) -> &'static str {
    match ns {
        "urn:iso:15118:2:2013:MsgDef" => "v2g",
        "urn:iso:15118:2:2013:MsgHeader" => "hdr",
        "urn:iso:15118:2:2013:MsgBody" => "body",
        "urn:iso:15118:2:2013:MsgDataTypes" => "dt",
        "http://www.w3.org/2000/09/xmldsig#" => "ds",
        "http://www.w3.org/2001/XMLSchema-instance" => "xsi",
        "urn:iso:std:iso:15118:-20:CommonMessages" => "cm",
        "urn:iso:std:iso:15118:-20:CommonTypes" => "ct",
        "urn:iso:15118:2:2010:AppProtocol" => "app",
        _ => "ns",
    }
}

fn collect_ns(e: &Element, out: &mut BTreeMap<String, String>) {
    let add = |ns: &str, out: &mut BTreeMap<String, String>| {
        if !ns.is_empty() && !out.contains_key(ns) {
            let base = preferred_prefix(ns);
            let p = if base != "ns" && !out.values().any(|v| v == base) {
                base.to_string()
            } else {
                let mut i = out.len();
                loop {
                    let c = format!("ns{i}");
                    if !out.values().any(|v| *v == c) {
                        break c;
                    }
                    i += 1;
                }
            };
            out.insert(ns.to_string(), p);
        }
    };
    add(&e.name.ns, out);
    for a in &e.attrs {
        add(&a.name.ns, out);
        if a.name.ns == XSI_NS
            && a.name.local == "type"
            && let Some(q) = QName::from_clark(&a.value)
        {
            add(&q.ns, out);
        }
    }
    for c in e.elements() {
        collect_ns(c, out);
    }
}

/// Writes the tree as XML text with generated prefixes declared on the root element (compact:
/// no whitespace is added anywhere).
pub fn write(root: &Element) -> String {
    write_with(root, false)
}

/// Like [`write`], indented for humans. Indentation is only added inside element-only content,
/// where schema-informed EXI ignores it; never inside the mixed-content xmldsig types, undeclared
/// elements or elements with text, so the output re-encodes to the same EXI.
pub fn write_pretty(root: &Element) -> String {
    write_with(root, true)
}

fn write_with(root: &Element, pretty: bool) -> String {
    let mut map = BTreeMap::new();
    collect_ns(root, &mut map);
    let mut out = String::with_capacity(4096);
    write_el(
        root,
        &map,
        true,
        &mut out,
        if pretty { 0 } else { usize::MAX },
    );
    out.push('\n');
    out
}

/// Element-only content where added whitespace is insignificant.
fn indentable(e: &Element) -> bool {
    const MIXED: [&str; 8] = [
        "CanonicalizationMethod",
        "SignatureMethod",
        "Transform",
        "DigestMethod",
        "KeyInfo",
        "KeyValue",
        "Object",
        "SignatureProperty",
    ];
    let mixed_dsig =
        e.name.ns == "http://www.w3.org/2000/09/xmldsig#" && MIXED.contains(&e.name.local.as_ref());
    let typed = e
        .attrs
        .iter()
        .any(|a| a.name.ns == XSI_NS && a.name.local == "type");
    let element_only =
        !e.children.is_empty() && e.children.iter().all(|c| matches!(c, Node::Element(_)));
    element_only && !e.name.ns.is_empty() && !mixed_dsig && !typed
}

fn name(q: &QName, map: &BTreeMap<String, String>) -> String {
    match map.get(q.ns.as_ref()) {
        Some(p) => format!("{p}:{}", q.local),
        None => q.local.to_string(),
    }
}

fn esc(s: &str, attr: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

fn write_el(
    e: &Element,
    map: &BTreeMap<String, String>,
    root: bool,
    out: &mut String,
    depth: usize,
) {
    out.push('<');
    out.push_str(&name(&e.name, map));
    if root {
        for (ns, p) in map {
            out.push_str(&format!(" xmlns:{p}=\""));
            esc(ns, true, out);
            out.push('"');
        }
    }
    for a in &e.attrs {
        out.push(' ');
        out.push_str(&name(&a.name, map));
        out.push_str("=\"");
        if a.name.ns == XSI_NS
            && a.name.local == "type"
            && let Some(q) = QName::from_clark(&a.value)
        {
            esc(&name(&q, map), true, out);
        } else {
            esc(&a.value, true, out);
        }
        out.push('"');
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    // depth usize::MAX = compact output
    let pretty = depth != usize::MAX && indentable(e);
    let child_depth = if depth == usize::MAX {
        depth
    } else {
        depth + 1
    };
    for c in &e.children {
        if pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(depth + 1));
        }
        match c {
            Node::Element(ch) => write_el(ch, map, false, out, child_depth),
            Node::Text(t) => esc(t, false, out),
        }
    }
    if pretty {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    }
    out.push_str("</");
    out.push_str(&name(&e.name, map));
    out.push('>');
}
