//! Generator for the EXI grammar tables of `pnc-exi`.
//!
//! Reads an XSD set, builds the schema-informed EXI 1.0 grammars (proto-grammars of §8.5.4.1,
//! normalised per §8.5.4.2, event codes per §8.5.4.3), the document grammar (§8.5.1), the
//! fragment grammar (§8.5.2) with the element fragment grammar (§8.5.3) and the pre-populated
//! string tables (Appendix D), and writes them as Rust statics. The non-strict additions of
//! §8.5.4.4 are derived at run time from the per-state flags written here.
//!
//! Usage: `pnc-exi-codegen SCHEMA_DIR OUT_DIR` (see services/exi/README.md).

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const XS: &str = "http://www.w3.org/2001/XMLSchema";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

type Res<T> = Result<T, String>;

// ---------------------------------------------------------------- mini DOM

#[derive(Clone, Debug)]
struct XNode {
    ns: String,
    local: String,
    attrs: Vec<(String, String)>,
    scope: Vec<(String, String)>,
    children: Vec<XNode>,
}

impl XNode {
    fn attr(&self, n: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    }
    fn is(&self, local: &str) -> bool {
        self.ns == XS && self.local == local
    }
    fn xs_children(&self) -> impl Iterator<Item = &XNode> {
        self.children
            .iter()
            .filter(|c| c.ns == XS && c.local != "annotation")
    }
    fn child(&self, local: &str) -> Option<&XNode> {
        self.xs_children().find(|c| c.local == local)
    }
    /// Resolves a QName-valued attribute against the in-scope namespace declarations.
    fn resolve(&self, v: &str) -> Res<QNs> {
        let (p, l) = match v.split_once(':') {
            Some((p, l)) => (p, l),
            None => ("", v),
        };
        let ns = self
            .scope
            .iter()
            .rev()
            .find(|(pp, _)| pp == p)
            .map(|(_, u)| u.clone());
        match ns {
            Some(u) => Ok(QNs::new(&u, l)),
            None if p.is_empty() => Ok(QNs::new("", l)),
            None => Err(format!("unbound prefix in {v}")),
        }
    }
}

fn parse_xml(text: &str) -> Res<XNode> {
    let mut r = Reader::from_str(text);
    r.config_mut().trim_text(true);
    let mut stack: Vec<XNode> = vec![];
    let mut root = None;
    loop {
        match r.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                let n = open(&e, stack.last())?;
                stack.push(n);
            }
            Event::Empty(e) => {
                let n = open(&e, stack.last())?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Event::End(_) => {
                let n = stack.pop().ok_or("unbalanced")?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    root.ok_or_else(|| "empty document".into())
}

fn open(e: &BytesStart, parent: Option<&XNode>) -> Res<XNode> {
    let mut scope = parent.map(|p| p.scope.clone()).unwrap_or_default();
    let mut attrs = vec![];
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let k = String::from_utf8_lossy(a.key.as_ref()).to_string();
        let v = a.unescape_value().map_err(|e| e.to_string())?.to_string();
        if k == "xmlns" {
            scope.push((String::new(), v));
        } else if let Some(p) = k.strip_prefix("xmlns:") {
            scope.push((p.to_string(), v));
        } else {
            attrs.push((k, v));
        }
    }
    let name = String::from_utf8_lossy(e.name().as_ref()).to_string();
    let mut n = XNode {
        ns: String::new(),
        local: String::new(),
        attrs,
        scope,
        children: vec![],
    };
    let q = n.resolve(&name)?;
    n.ns = q.ns;
    n.local = q.local;
    Ok(n)
}

// ---------------------------------------------------------------- schema model

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct QNs {
    ns: String,
    local: String,
}
impl QNs {
    fn new(ns: &str, local: &str) -> Self {
        QNs {
            ns: ns.into(),
            local: local.into(),
        }
    }
    /// EXI sort key: local name first, then URI (§8.5.4.1.3.2 and elsewhere).
    fn key(&self) -> (String, String) {
        (self.local.clone(), self.ns.clone())
    }
}

#[derive(Clone)]
struct Ctx {
    tns: String,
    elem_qualified: bool,
    attr_qualified: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Dt {
    String {
        max_len: u32,
    },
    Boolean,
    Binary {
        hex: bool,
        max_len: u32,
    },
    /// n-bit unsigned integer with offset (§7.1.9, range < 4096)
    NBit {
        min: i64,
        bits: u8,
    },
    Unsigned {
        max: Option<u128>,
    },
    Integer {
        min: Option<i128>,
        max: Option<i128>,
    },
    Enum {
        values: Vec<String>,
    },
    Decimal,
    Float,
    QName,
    Untyped,
}

#[derive(Clone, Debug)]
struct Facets {
    prim: String,
    enums: Option<Vec<String>>,
    min: Option<i128>,
    max: Option<i128>,
    max_len: Option<u32>,
}

#[derive(Clone, Debug)]
enum Term {
    /// SE(...) for every (qname, type id) of the substitution group, with the schema order index
    Elem(Vec<(QNs, usize)>, u32),
    Any(Option<Vec<String>>, u32),
    Seq(Vec<Particle>),
    Choice(Vec<Particle>),
}

#[derive(Clone, Debug)]
struct Particle {
    min: u32,
    max: Option<u32>,
    term: Term,
}

#[derive(Clone, Debug)]
struct AttrUse {
    qn: QNs,
    dt: Dt,
    required: bool,
}

#[derive(Clone, Debug)]
enum Content {
    Empty,
    Simple(Dt),
    Particle(Particle, bool),
}

#[derive(Clone, Debug)]
struct TypeDef {
    name: Option<QNs>,
    attrs: Vec<AttrUse>,
    any_attr: bool,
    content: Content,
    simple_facets: Option<Facets>,
}

struct Loader {
    docs: Vec<(XNode, Ctx)>,
    loaded: BTreeSet<PathBuf>,
    elements: HashMap<QNs, (XNode, Ctx)>,
    ctypes: HashMap<QNs, (XNode, Ctx)>,
    stypes: HashMap<QNs, (XNode, Ctx)>,
    gattrs: HashMap<QNs, (XNode, Ctx)>,
    groups: HashMap<QNs, (XNode, Ctx)>,
    agroups: HashMap<QNs, (XNode, Ctx)>,
    // resolved
    types: Vec<Option<TypeDef>>,
    type_ids: HashMap<QNs, usize>,
    elem_decls: Vec<(QNs, usize, bool)>,
    global_elem_types: HashMap<QNs, usize>,
    attr_decls: Vec<(QNs, Dt)>,
    order: u32,
}

impl Loader {
    fn load(&mut self, path: &Path) -> Res<()> {
        let canon = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !self.loaded.insert(canon.clone()) {
            return Ok(());
        }
        let text = std::fs::read_to_string(&canon).map_err(|e| e.to_string())?;
        let root = parse_xml(&text)?;
        let ctx = Ctx {
            tns: root.attr("targetNamespace").unwrap_or("").to_string(),
            elem_qualified: root.attr("elementFormDefault") == Some("qualified"),
            attr_qualified: root.attr("attributeFormDefault") == Some("qualified"),
        };
        let dir = canon.parent().unwrap_or(Path::new(".")).to_path_buf();
        for c in root.xs_children() {
            if (c.is("import") || c.is("include"))
                && let Some(loc) = c.attr("schemaLocation")
            {
                self.load(&dir.join(loc))?;
            }
        }
        for c in root.xs_children() {
            let Some(name) = c.attr("name") else { continue };
            let q = QNs::new(&ctx.tns, name);
            let e = (c.clone(), ctx.clone());
            match c.local.as_str() {
                "element" => self.elements.insert(q, e),
                "complexType" => self.ctypes.insert(q, e),
                "simpleType" => self.stypes.insert(q, e),
                "attribute" => self.gattrs.insert(q, e),
                "group" => self.groups.insert(q, e),
                "attributeGroup" => self.agroups.insert(q, e),
                _ => None,
            };
        }
        self.docs.push((root, ctx));
        Ok(())
    }

    fn next_order(&mut self) -> u32 {
        self.order += 1;
        self.order
    }

    // ---- simple types

    fn builtin_facets(local: &str) -> Option<Facets> {
        let (prim, min, max): (&str, Option<i128>, Option<i128>) = match local {
            "string" | "normalizedString" | "token" | "language" | "Name" | "NCName" | "ID"
            | "IDREF" | "ENTITY" | "NMTOKEN" | "anyURI" | "anySimpleType" | "IDREFS"
            | "NMTOKENS" | "ENTITIES" => ("string", None, None),
            "boolean" => ("boolean", None, None),
            "base64Binary" => ("base64Binary", None, None),
            "hexBinary" => ("hexBinary", None, None),
            "decimal" => ("decimal", None, None),
            "float" | "double" => ("float", None, None),
            "QName" | "NOTATION" => ("QName", None, None),
            "integer" => ("integer", None, None),
            "nonNegativeInteger" => ("integer", Some(0), None),
            "positiveInteger" => ("integer", Some(1), None),
            "nonPositiveInteger" => ("integer", None, Some(0)),
            "negativeInteger" => ("integer", None, Some(-1)),
            "long" => ("integer", Some(i64::MIN as i128), Some(i64::MAX as i128)),
            "int" => ("integer", Some(i32::MIN as i128), Some(i32::MAX as i128)),
            "short" => ("integer", Some(i16::MIN as i128), Some(i16::MAX as i128)),
            "byte" => ("integer", Some(-128), Some(127)),
            "unsignedLong" => ("integer", Some(0), Some(u64::MAX as i128)),
            "unsignedInt" => ("integer", Some(0), Some(u32::MAX as i128)),
            "unsignedShort" => ("integer", Some(0), Some(65535)),
            "unsignedByte" => ("integer", Some(0), Some(255)),
            _ => return None,
        };
        Some(Facets {
            prim: prim.into(),
            enums: None,
            min,
            max,
            max_len: None,
        })
    }

    fn simple_facets(&mut self, q: &QNs) -> Res<Facets> {
        if q.ns == XS {
            return Self::builtin_facets(&q.local)
                .ok_or_else(|| format!("unsupported built-in type {}", q.local));
        }
        let (node, _) = self
            .stypes
            .get(q)
            .cloned()
            .ok_or_else(|| format!("unknown simple type {q:?}"))?;
        self.facets_of(&node)
    }

    fn facets_of(&mut self, st: &XNode) -> Res<Facets> {
        if let Some(r) = st.child("restriction") {
            let mut f = match r.attr("base") {
                Some(b) => {
                    let bq = r.resolve(b)?;
                    self.simple_facets(&bq)?
                }
                None => {
                    let inner = r.child("simpleType").ok_or("restriction without base")?;
                    self.facets_of(inner)?
                }
            };
            let mut enums = vec![];
            for c in r.xs_children() {
                let v = c.attr("value").unwrap_or("");
                match c.local.as_str() {
                    "enumeration" => enums.push(v.to_string()),
                    "minInclusive" => f.min = v.parse().ok(),
                    "maxInclusive" => f.max = v.parse().ok(),
                    "minExclusive" => f.min = v.parse::<i128>().ok().map(|x| x + 1),
                    "maxExclusive" => f.max = v.parse::<i128>().ok().map(|x| x - 1),
                    "maxLength" | "length" => f.max_len = v.parse().ok(),
                    _ => {}
                }
            }
            if !enums.is_empty() {
                f.enums = Some(enums);
            }
            return Ok(f);
        }
        if st.child("list").is_some() || st.child("union").is_some() {
            return Err("list/union simple types are not used by the ISO 15118 schemas".into());
        }
        Err("simpleType without restriction".into())
    }

    fn dt_of(f: &Facets) -> Dt {
        if let Some(e) = &f.enums {
            return Dt::Enum { values: e.clone() };
        }
        match f.prim.as_str() {
            "string" => Dt::String {
                max_len: f.max_len.unwrap_or(0),
            },
            "boolean" => Dt::Boolean,
            "base64Binary" => Dt::Binary {
                hex: false,
                max_len: f.max_len.unwrap_or(0),
            },
            "hexBinary" => Dt::Binary {
                hex: true,
                max_len: f.max_len.unwrap_or(0),
            },
            "decimal" => Dt::Decimal,
            "float" => Dt::Float,
            "QName" => Dt::QName,
            _ => match (f.min, f.max) {
                (Some(a), Some(b)) if b >= a && b - a < 4096 => {
                    let range = (b - a + 1) as u64;
                    let mut bits = 0u8;
                    while (1u64 << bits) < range {
                        bits += 1;
                    }
                    Dt::NBit {
                        min: a as i64,
                        bits,
                    }
                }
                (Some(a), b) if a >= 0 => Dt::Unsigned {
                    max: b.map(|x| x as u128),
                },
                (a, b) => Dt::Integer { min: a, max: b },
            },
        }
    }

    /// Datatype of a `type=` reference or inline simple type of an element/attribute.
    fn type_ref_dt(&mut self, node: &XNode) -> Res<Dt> {
        if let Some(t) = node.attr("type") {
            let q = node.resolve(t)?;
            let f = self.simple_facets(&q)?;
            return Ok(Self::dt_of(&f));
        }
        if let Some(st) = node.child("simpleType") {
            let f = self.facets_of(st)?;
            return Ok(Self::dt_of(&f));
        }
        Ok(Dt::String { max_len: 0 })
    }

    // ---- types

    fn named_type(&mut self, q: &QNs) -> Res<usize> {
        if let Some(&id) = self.type_ids.get(q) {
            return Ok(id);
        }
        let id = self.types.len();
        self.types.push(None);
        self.type_ids.insert(q.clone(), id);
        let def = if q.ns == XS && q.local == "anyType" {
            TypeDef {
                name: Some(q.clone()),
                attrs: vec![],
                any_attr: true,
                content: Content::Particle(
                    Particle {
                        min: 0,
                        max: None,
                        term: Term::Any(None, 0),
                    },
                    true,
                ),
                simple_facets: None,
            }
        } else if let Some((node, ctx)) = self.ctypes.get(q).cloned() {
            let mut d = self.complex(&node, &ctx)?;
            d.name = Some(q.clone());
            d
        } else {
            let f = self.simple_facets(q)?;
            TypeDef {
                name: Some(q.clone()),
                attrs: vec![],
                any_attr: false,
                content: Content::Simple(Self::dt_of(&f)),
                simple_facets: Some(f),
            }
        };
        self.types[id] = Some(def);
        Ok(id)
    }

    fn anon(&mut self, def: TypeDef) -> usize {
        self.types.push(Some(def));
        self.types.len() - 1
    }

    fn get(&self, id: usize) -> Res<TypeDef> {
        self.types
            .get(id)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("type {id} used before definition (recursive extension?)"))
    }

    /// Type id of an element declaration node (named type, inline type or anyType).
    fn elem_type(&mut self, node: &XNode, ctx: &Ctx) -> Res<usize> {
        if let Some(t) = node.attr("type") {
            let q = node.resolve(t)?;
            return self.named_type(&q);
        }
        if let Some(ct) = node.child("complexType") {
            let d = self.complex(ct, ctx)?;
            return Ok(self.anon(d));
        }
        if let Some(st) = node.child("simpleType") {
            let f = self.facets_of(st)?;
            return Ok(self.anon(TypeDef {
                name: None,
                attrs: vec![],
                any_attr: false,
                content: Content::Simple(Self::dt_of(&f)),
                simple_facets: Some(f),
            }));
        }
        if let Some(sg) = node.attr("substitutionGroup") {
            let hq = node.resolve(sg)?;
            let (hn, hc) = self
                .elements
                .get(&hq)
                .cloned()
                .ok_or("unknown substitution head")?;
            return self.elem_type(&hn, &hc);
        }
        self.named_type(&QNs::new(XS, "anyType"))
    }

    fn attributes(
        &mut self,
        node: &XNode,
        ctx: &Ctx,
        out: &mut Vec<AttrUse>,
        any: &mut bool,
    ) -> Res<()> {
        for c in node.xs_children() {
            match c.local.as_str() {
                "attribute" => {
                    if c.attr("use") == Some("prohibited") {
                        continue;
                    }
                    let required = c.attr("use") == Some("required");
                    let (qn, dt) = if let Some(r) = c.attr("ref") {
                        let q = c.resolve(r)?;
                        let (an, _) = self
                            .gattrs
                            .get(&q)
                            .cloned()
                            .ok_or("unknown attribute ref")?;
                        (q, self.type_ref_dt(&an)?)
                    } else {
                        let name = c.attr("name").ok_or("attribute without name")?;
                        let qualified = match c.attr("form") {
                            Some(f) => f == "qualified",
                            None => ctx.attr_qualified,
                        };
                        let ns = if qualified { ctx.tns.as_str() } else { "" };
                        (QNs::new(ns, name), self.type_ref_dt(c)?)
                    };
                    self.attr_decls.push((qn.clone(), dt.clone()));
                    out.retain(|a| a.qn != qn);
                    out.push(AttrUse { qn, dt, required });
                }
                "attributeGroup" => {
                    let q = c.resolve(c.attr("ref").ok_or("attributeGroup without ref")?)?;
                    let (g, gc) = self
                        .agroups
                        .get(&q)
                        .cloned()
                        .ok_or("unknown attributeGroup")?;
                    self.attributes(&g, &gc, out, any)?;
                }
                "anyAttribute" => *any = true,
                _ => {}
            }
        }
        Ok(())
    }

    fn complex(&mut self, ct: &XNode, ctx: &Ctx) -> Res<TypeDef> {
        let mut mixed = ct.attr("mixed") == Some("true");
        let mut attrs = vec![];
        let mut any_attr = false;
        let mut content = Content::Empty;
        if let Some(cc) = ct.child("complexContent") {
            if cc.attr("mixed") == Some("true") {
                mixed = true;
            }
            let (deriv, is_ext) = match (cc.child("extension"), cc.child("restriction")) {
                (Some(e), _) => (e, true),
                (_, Some(r)) => (r, false),
                _ => return Err("complexContent without derivation".into()),
            };
            let bq = deriv.resolve(deriv.attr("base").ok_or("no base")?)?;
            let bid = self.named_type(&bq)?;
            let base = self.get(bid)?;
            attrs = base.attrs.clone();
            any_attr = base.any_attr;
            let own = self.particle_of(deriv, ctx)?;
            content = if is_ext {
                match (base.content, own) {
                    (Content::Particle(bp, bm), Some(op)) => Content::Particle(
                        Particle {
                            min: 1,
                            max: Some(1),
                            term: Term::Seq(vec![bp, op]),
                        },
                        bm || mixed,
                    ),
                    (Content::Particle(bp, bm), None) => Content::Particle(bp, bm || mixed),
                    (_, Some(op)) => Content::Particle(op, mixed),
                    (c, None) => c,
                }
            } else {
                match own {
                    Some(op) => Content::Particle(op, mixed),
                    None => Content::Empty,
                }
            };
            self.attributes(deriv, ctx, &mut attrs, &mut any_attr)?;
        } else if let Some(sc) = ct.child("simpleContent") {
            let deriv = sc
                .child("extension")
                .or_else(|| sc.child("restriction"))
                .ok_or("simpleContent")?;
            let bq = deriv.resolve(deriv.attr("base").ok_or("no base")?)?;
            let bid = self.named_type(&bq)?;
            let base = self.get(bid)?;
            attrs = base.attrs.clone();
            any_attr = base.any_attr;
            let mut dt = match base.content {
                Content::Simple(d) => d,
                _ => Dt::String { max_len: 0 },
            };
            if deriv.local == "restriction" {
                let mut f = base.simple_facets.clone().unwrap_or(Facets {
                    prim: "string".into(),
                    enums: None,
                    min: None,
                    max: None,
                    max_len: None,
                });
                let fake = XNode {
                    ns: XS.into(),
                    local: "simpleType".into(),
                    attrs: vec![],
                    scope: deriv.scope.clone(),
                    children: vec![],
                };
                let _ = fake;
                for c in deriv.xs_children() {
                    let v = c.attr("value").unwrap_or("");
                    match c.local.as_str() {
                        "enumeration" => f.enums.get_or_insert_with(Vec::new).push(v.into()),
                        "maxLength" | "length" => f.max_len = v.parse().ok(),
                        "minInclusive" => f.min = v.parse().ok(),
                        "maxInclusive" => f.max = v.parse().ok(),
                        _ => {}
                    }
                }
                dt = Self::dt_of(&f);
            }
            content = Content::Simple(dt);
            self.attributes(deriv, ctx, &mut attrs, &mut any_attr)?;
        } else {
            if let Some(p) = self.particle_of(ct, ctx)? {
                content = Content::Particle(p, mixed);
            } else if mixed {
                content = Content::Particle(
                    Particle {
                        min: 1,
                        max: Some(1),
                        term: Term::Seq(vec![]),
                    },
                    true,
                );
            }
            self.attributes(ct, ctx, &mut attrs, &mut any_attr)?;
        }
        Ok(TypeDef {
            name: None,
            attrs,
            any_attr,
            content,
            simple_facets: None,
        })
    }

    /// The model-group particle directly inside a type definition, if any.
    fn particle_of(&mut self, node: &XNode, ctx: &Ctx) -> Res<Option<Particle>> {
        for c in node.xs_children() {
            if matches!(c.local.as_str(), "sequence" | "choice" | "all" | "group") {
                return Ok(Some(self.particle(c, ctx)?));
            }
        }
        Ok(None)
    }

    fn occurs(node: &XNode) -> (u32, Option<u32>) {
        let min = node
            .attr("minOccurs")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let max = match node.attr("maxOccurs") {
            Some("unbounded") => None,
            Some(v) => v.parse().ok(),
            None => Some(1),
        };
        (min, max)
    }

    fn particle(&mut self, node: &XNode, ctx: &Ctx) -> Res<Particle> {
        let (min, max) = Self::occurs(node);
        let term = match node.local.as_str() {
            "sequence" | "all" | "choice" => {
                let mut parts = vec![];
                for c in node.xs_children() {
                    parts.push(self.particle(c, ctx)?);
                }
                if node.local == "choice" {
                    Term::Choice(parts)
                } else {
                    Term::Seq(parts)
                }
            }
            "group" => {
                let q = node.resolve(node.attr("ref").ok_or("group without ref")?)?;
                let (g, gc) = self.groups.get(&q).cloned().ok_or("unknown group")?;
                let inner = g.xs_children().next().cloned().ok_or("empty group")?;
                let p = self.particle(&inner, &gc)?;
                p.term
            }
            "element" => {
                let order = self.next_order();
                if let Some(r) = node.attr("ref") {
                    let q = node.resolve(r)?;
                    Term::Elem(self.subst_members(&q)?, order)
                } else {
                    let name = node.attr("name").ok_or("element without name")?;
                    let qualified = match node.attr("form") {
                        Some(f) => f == "qualified",
                        None => ctx.elem_qualified,
                    };
                    let qn = QNs::new(if qualified { &ctx.tns } else { "" }, name);
                    let t = self.elem_type(node, ctx)?;
                    let nillable = node.attr("nillable") == Some("true");
                    self.elem_decls.push((qn.clone(), t, nillable));
                    Term::Elem(vec![(qn, t)], order)
                }
            }
            "any" => {
                let order = self.next_order();
                let ns = node.attr("namespace").unwrap_or("##any");
                let set = if ns == "##any" || ns == "##other" {
                    None
                } else {
                    Some(
                        ns.split_whitespace()
                            .map(|u| match u {
                                "##targetNamespace" => ctx.tns.clone(),
                                "##local" => String::new(),
                                u => u.to_string(),
                            })
                            .collect(),
                    )
                };
                Term::Any(set, order)
            }
            other => return Err(format!("unsupported particle {other}")),
        };
        Ok(Particle { min, max, term })
    }

    fn global_elem(&mut self, q: &QNs) -> Res<(usize, bool, bool)> {
        let (n, c) = self
            .elements
            .get(q)
            .cloned()
            .ok_or_else(|| format!("unknown element {q:?}"))?;
        if let Some(&t) = self.global_elem_types.get(q) {
            return Ok((
                t,
                n.attr("abstract") == Some("true"),
                n.attr("nillable") == Some("true"),
            ));
        }
        let t = self.elem_type(&n, &c)?;
        self.global_elem_types.insert(q.clone(), t);
        Ok((
            t,
            n.attr("abstract") == Some("true"),
            n.attr("nillable") == Some("true"),
        ))
    }

    /// Members of the substitution group headed by `head` (itself unless abstract), sorted (§8.5.4.1.6).
    fn subst_members(&mut self, head: &QNs) -> Res<Vec<(QNs, usize)>> {
        let mut set = BTreeSet::new();
        let mut todo = vec![head.clone()];
        while let Some(h) = todo.pop() {
            if !set.insert(h.clone()) {
                continue;
            }
            for (q, (n, _)) in &self.elements {
                if let Some(sg) = n.attr("substitutionGroup")
                    && n.resolve(sg)? == h
                {
                    todo.push(q.clone());
                }
            }
        }
        let mut out = vec![];
        for q in set {
            // EXIficient (and so every ISO 15118 stack) keeps abstract members in the list
            let (t, _abs, _) = self.global_elem(&q)?;
            out.push((q, t));
        }
        out.sort_by_key(|(q, _)| q.key());
        Ok(out)
    }
}

// ---------------------------------------------------------------- grammars

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Lab {
    At(QNs, Dt),
    /// AT(uri:*): no `anyAttribute` with a namespace list in these schemas, kept for completeness
    #[allow(dead_code)]
    AtUri(String),
    AtAny,
    /// qname, type id of the child element, schema order
    Se(QNs, usize, u32),
    SeUri(String, u32),
    SeAny(u32),
    Ch(Option<Dt>),
}

#[derive(Default)]
struct Nfa {
    edges: Vec<Vec<(Option<Lab>, usize)>>,
    accept: Vec<bool>,
    attr_phase: Vec<bool>,
}
impl Nfa {
    fn add(&mut self, attr: bool) -> usize {
        self.edges.push(vec![]);
        self.accept.push(false);
        self.attr_phase.push(attr);
        self.edges.len() - 1
    }
    fn eps(&mut self, a: usize, b: usize) {
        self.edges[a].push((None, b));
    }
    fn lab(&mut self, a: usize, l: Lab, b: usize) {
        self.edges[a].push((Some(l), b));
    }
    /// Builds `p` from `start`, returns its end state (EE of the particle, §8.5.4.1.5).
    fn particle(&mut self, p: &Particle, start: usize) -> usize {
        let mut cur = start;
        for _ in 0..p.min {
            cur = self.term(&p.term, cur);
        }
        match p.max {
            None => {
                let l = self.add(false);
                self.eps(cur, l);
                let e = self.term(&p.term, l);
                self.eps(e, l);
                let end = self.add(false);
                self.eps(l, end);
                end
            }
            Some(max) => {
                let end = self.add(false);
                for _ in p.min..max {
                    self.eps(cur, end);
                    cur = self.term(&p.term, cur);
                }
                self.eps(cur, end);
                end
            }
        }
    }
    fn term(&mut self, t: &Term, start: usize) -> usize {
        match t {
            Term::Elem(members, order) => {
                let end = self.add(false);
                for (q, ty) in members {
                    self.lab(start, Lab::Se(q.clone(), *ty, *order), end);
                }
                end
            }
            Term::Any(None, order) => {
                let end = self.add(false);
                self.lab(start, Lab::SeAny(*order), end);
                end
            }
            Term::Any(Some(uris), order) => {
                let end = self.add(false);
                for u in uris {
                    self.lab(start, Lab::SeUri(u.clone(), *order), end);
                }
                end
            }
            Term::Seq(parts) => {
                let mut cur = start;
                for p in parts {
                    let n = self.add(false);
                    self.eps(cur, n);
                    cur = self.particle(p, n);
                }
                cur
            }
            Term::Choice(parts) => {
                let end = self.add(false);
                if parts.is_empty() {
                    self.eps(start, end);
                }
                for p in parts {
                    let n = self.add(false);
                    self.eps(start, n);
                    let e = self.particle(p, n);
                    self.eps(e, end);
                }
                end
            }
        }
    }
    fn closure(&self, set: &BTreeSet<usize>) -> BTreeSet<usize> {
        let mut out = set.clone();
        let mut todo: Vec<usize> = set.iter().copied().collect();
        while let Some(s) = todo.pop() {
            for (l, t) in &self.edges[s] {
                if l.is_none() && out.insert(*t) {
                    todo.push(*t);
                }
            }
        }
        out
    }
}

const F_FIRST: u8 = 1;
const F_START_TAG: u8 = 2;
const F_HAS_EE: u8 = 4;

#[derive(Clone, Debug)]
enum Prod {
    At(QNs, Dt, usize),
    AtUri(String, usize),
    AtAny(usize),
    /// qname, grammar of the child (type id resolved later), next
    Se(QNs, GRef, usize),
    SeUri(String, usize),
    SeAny(usize),
    Ee,
    Ch(Option<Dt>, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GRef {
    Type(usize),
    Grammar(usize),
}

#[derive(Clone, Debug)]
struct DState {
    prods: Vec<Prod>,
    flags: u8,
}

struct GrammarOut {
    start: usize,
    content2: usize,
    empty: usize,
    attrs: Vec<(QNs, Dt)>,
    name: Option<QNs>,
}

struct Builder {
    states: Vec<DState>,
    grammars: Vec<GrammarOut>,
}

impl Builder {
    /// Subset construction (normalisation §8.5.4.2) + event-code ordering (§8.5.4.3).
    /// Returns (start state, content2 state).
    fn determinize(&mut self, nfa: &Nfa, s0: usize, content: usize) -> (usize, usize) {
        let base = self.states.len();
        let mut map: BTreeMap<BTreeSet<usize>, usize> = BTreeMap::new();
        let mut queue = vec![];
        let start = nfa.closure(&BTreeSet::from([s0]));
        let c2 = nfa.closure(&BTreeSet::from([content]));
        for set in [start.clone(), c2.clone()] {
            if !map.contains_key(&set) {
                map.insert(set.clone(), base + map.len());
                self.states.push(DState {
                    prods: vec![],
                    flags: 0,
                });
                queue.push(set);
            }
        }
        let start_id = map[&start];
        let c2_id = map[&c2];
        while let Some(set) = queue.pop() {
            let id = map[&set];
            let mut trans: BTreeMap<Lab, BTreeSet<usize>> = BTreeMap::new();
            // group by terminal identity (ignoring schema order for SE keys)
            let mut keyed: BTreeMap<(u8, QNs, String), (Lab, BTreeSet<usize>)> = BTreeMap::new();
            for &s in &set {
                for (l, t) in &nfa.edges[s] {
                    let Some(l) = l else { continue };
                    let key = match l {
                        Lab::At(q, _) => (0, q.clone(), String::new()),
                        Lab::AtUri(u) => (1, QNs::new("", ""), u.clone()),
                        Lab::AtAny => (2, QNs::new("", ""), String::new()),
                        Lab::Se(q, _, _) => (3, q.clone(), String::new()),
                        Lab::SeUri(u, _) => (4, QNs::new("", ""), u.clone()),
                        Lab::SeAny(_) => (5, QNs::new("", ""), String::new()),
                        Lab::Ch(_) => (7, QNs::new("", ""), String::new()),
                    };
                    let e = keyed
                        .entry(key)
                        .or_insert_with(|| (l.clone(), BTreeSet::new()));
                    // keep the smallest schema order
                    match (&mut e.0, l) {
                        (Lab::Se(_, _, o), Lab::Se(_, _, o2)) if o2 < o => *o = *o2,
                        (Lab::SeUri(_, o), Lab::SeUri(_, o2)) if o2 < o => *o = *o2,
                        (Lab::SeAny(o), Lab::SeAny(o2)) if o2 < o => *o = *o2,
                        _ => {}
                    }
                    e.1.insert(*t);
                }
            }
            for (_, (l, targets)) in keyed {
                trans.insert(l, targets);
            }
            let mut prods = vec![];
            for (l, targets) in trans {
                let tset = nfa.closure(&targets);
                let tid = match map.get(&tset) {
                    Some(&t) => t,
                    None => {
                        let t = base + map.len();
                        map.insert(tset.clone(), t);
                        self.states.push(DState {
                            prods: vec![],
                            flags: 0,
                        });
                        queue.push(tset);
                        t
                    }
                };
                prods.push((l, tid));
            }
            let has_ee = set.iter().any(|&s| nfa.accept[s]);
            let start_tag = set.iter().any(|&s| nfa.attr_phase[s]);
            // §8.5.4.3 ordering
            let rank = |l: &Lab| -> (u8, String, String, u32) {
                match l {
                    Lab::At(q, _) => (0, q.local.clone(), q.ns.clone(), 0),
                    Lab::AtUri(u) => (1, u.clone(), String::new(), 0),
                    Lab::AtAny => (2, String::new(), String::new(), 0),
                    Lab::Se(_, _, o) => (3, String::new(), String::new(), *o),
                    Lab::SeUri(_, o) => (4, String::new(), String::new(), *o),
                    Lab::SeAny(o) => (5, String::new(), String::new(), *o),
                    Lab::Ch(_) => (8, String::new(), String::new(), 0),
                }
            };
            prods.sort_by(|a, b| {
                rank(&a.0)
                    .cmp(&rank(&b.0))
                    .then_with(|| match (&a.0, &b.0) {
                        (Lab::Se(qa, _, _), Lab::Se(qb, _, _)) => qa.key().cmp(&qb.key()),
                        _ => std::cmp::Ordering::Equal,
                    })
            });
            let mut out = vec![];
            let mut ee_done = false;
            for (l, t) in prods {
                let r = rank(&l).0;
                if r >= 7 && has_ee && !ee_done {
                    out.push(Prod::Ee);
                    ee_done = true;
                }
                out.push(match l {
                    Lab::At(q, d) => Prod::At(q, d, t),
                    Lab::AtUri(u) => Prod::AtUri(u, t),
                    Lab::AtAny => Prod::AtAny(t),
                    Lab::Se(q, ty, _) => Prod::Se(q, GRef::Type(ty), t),
                    Lab::SeUri(u, _) => Prod::SeUri(u, t),
                    Lab::SeAny(_) => Prod::SeAny(t),
                    Lab::Ch(d) => Prod::Ch(d, t),
                });
            }
            if has_ee && !ee_done {
                out.push(Prod::Ee);
            }
            let mut flags = 0;
            if has_ee {
                flags |= F_HAS_EE;
            }
            if start_tag {
                flags |= F_START_TAG;
            }
            if id == start_id {
                flags |= F_FIRST | F_START_TAG;
            }
            self.states[id] = DState { prods: out, flags };
        }
        (start_id, c2_id)
    }

    fn type_grammar(&mut self, t: &TypeDef, empty: bool) -> (usize, usize) {
        let mut nfa = Nfa::default();
        let s0 = nfa.add(true);
        let mut attrs = t.attrs.clone();
        attrs.sort_by_key(|a| a.qn.key());
        let mut cur = s0;
        for a in &attrs {
            let n = nfa.add(true);
            nfa.lab(cur, Lab::At(a.qn.clone(), a.dt.clone()), n);
            if !a.required {
                nfa.eps(cur, n);
            }
            cur = n;
        }
        if t.any_attr {
            nfa.lab(cur, Lab::AtAny, cur);
        }
        let content = nfa.add(false);
        nfa.eps(cur, content);
        if empty {
            nfa.accept[content] = true;
        } else {
            match &t.content {
                Content::Empty => nfa.accept[content] = true,
                Content::Simple(dt) => {
                    let e = nfa.add(false);
                    nfa.lab(content, Lab::Ch(Some(dt.clone())), e);
                    nfa.accept[e] = true;
                }
                Content::Particle(p, mixed) => {
                    let first_content = nfa.edges.len();
                    let e = nfa.particle(p, content);
                    nfa.accept[e] = true;
                    if *mixed {
                        for s in (first_content - 1)..nfa.edges.len() {
                            nfa.lab(s, Lab::Ch(None), s);
                        }
                    }
                }
            }
        }
        self.determinize(&nfa, s0, content)
    }
}

// ---------------------------------------------------------------- schema set output

struct SchemaOut {
    uris: Vec<String>,
    locals: Vec<Vec<String>>,
}

fn build(name: &str, entry: &Path, out_dir: &Path) -> Res<()> {
    let mut l = Loader {
        docs: vec![],
        loaded: BTreeSet::new(),
        elements: HashMap::new(),
        ctypes: HashMap::new(),
        stypes: HashMap::new(),
        gattrs: HashMap::new(),
        groups: HashMap::new(),
        agroups: HashMap::new(),
        types: vec![],
        type_ids: HashMap::new(),
        elem_decls: vec![],
        global_elem_types: HashMap::new(),
        attr_decls: vec![],
        order: 0,
    };
    l.load(entry)?;
    // resolve everything: global elements (sorted for determinism), named types
    let mut globals: Vec<QNs> = l.elements.keys().cloned().collect();
    globals.sort_by_key(|q| q.key());
    let mut named: Vec<QNs> = l.ctypes.keys().chain(l.stypes.keys()).cloned().collect();
    named.sort_by_key(|q| q.key());
    for q in &named {
        l.named_type(q)?;
    }
    // built-in types, reachable through xsi:type (anyType is what EXIficient announces for
    // undeclared elements under maximumNumberOfBuiltInElementGrammars=0)
    for t in XSD_TYPES {
        if t == "anyType" || Loader::builtin_facets(t).is_some() {
            l.named_type(&QNs::new(XS, t))?;
        }
    }
    let mut global_info = vec![];
    for q in &globals {
        let (t, abs, nil) = l.global_elem(q)?;
        global_info.push((q.clone(), t, abs, nil));
        l.elem_decls.push((q.clone(), t, nil));
    }
    // global attributes
    let gattrs: Vec<(QNs, XNode)> = l
        .gattrs
        .iter()
        .map(|(q, (n, _))| (q.clone(), n.clone()))
        .collect();
    let mut gattr_dts = vec![];
    for (q, n) in gattrs {
        let dt = l.type_ref_dt(&n)?;
        l.attr_decls.push((q.clone(), dt.clone()));
        gattr_dts.push((q, dt));
    }
    gattr_dts.sort_by_key(|(q, _)| q.key());

    // grammars for every type
    let mut b = Builder {
        states: vec![],
        grammars: vec![],
    };
    let ntypes = l.types.len();
    let mut type_grammar = vec![0usize; ntypes];
    for (id, slot) in type_grammar.iter_mut().enumerate() {
        let t = l.get(id)?;
        let (s, c2) = b.type_grammar(&t, false);
        let (es, ec2) = b.type_grammar(&t, true);
        let mut attrs: Vec<(QNs, Dt)> = t
            .attrs
            .iter()
            .map(|a| (a.qn.clone(), a.dt.clone()))
            .collect();
        attrs.sort_by_key(|(q, _)| q.key());
        let gid = b.grammars.len();
        b.grammars.push(GrammarOut {
            start: s,
            content2: c2,
            empty: gid + 1,
            attrs: attrs.clone(),
            name: t.name.clone(),
        });
        b.grammars.push(GrammarOut {
            start: es,
            content2: ec2,
            empty: gid + 1,
            attrs,
            name: None,
        });
        *slot = gid;
    }

    // fragment grammar (§8.5.2): every element qname once; element fragment grammar (§8.5.3)
    // where declarations of one qname differ in type or nillable.
    let mut by_q: BTreeMap<(String, String), BTreeSet<(usize, bool)>> = BTreeMap::new();
    for (q, t, nil) in &l.elem_decls {
        by_q.entry(q.key()).or_default().insert((*t, *nil));
    }
    let mut attr_q: BTreeMap<(String, String), BTreeSet<Dt>> = BTreeMap::new();
    for (q, d) in &l.attr_decls {
        attr_q.entry(q.key()).or_default().insert(d.clone());
    }
    let ef_gid = b.grammars.len();
    let frag_elems: Vec<(QNs, GRef)> = by_q
        .iter()
        .map(|((loc, ns), set)| {
            let q = QNs::new(ns, loc);
            let r = if set.len() == 1 {
                GRef::Type(set.iter().next().map(|x| x.0).unwrap_or(0))
            } else {
                GRef::Grammar(ef_gid)
            };
            (q, r)
        })
        .collect();
    let frag_attrs: Vec<(QNs, Dt)> = attr_q
        .iter()
        .map(|((loc, ns), set)| {
            let dt = if set.len() == 1 {
                set.iter().next().cloned().unwrap_or(Dt::Untyped)
            } else {
                Dt::Untyped
            };
            (QNs::new(ns, loc), dt)
        })
        .collect();
    {
        // ElementFragment_0 (first), _1 (after attributes), _2 (content); TypeEmpty_0/_1
        let s0 = b.states.len();
        let (s1, s2, e0, e1) = (s0 + 1, s0 + 2, s0 + 3, s0 + 4);
        let mk = |next_at: usize, with_content: bool| {
            let mut p = vec![];
            for (q, d) in &frag_attrs {
                p.push(Prod::At(q.clone(), d.clone(), next_at));
            }
            p.push(Prod::AtAny(next_at));
            if with_content {
                for (q, r) in &frag_elems {
                    p.push(Prod::Se(q.clone(), *r, s2));
                }
                p.push(Prod::SeAny(s2));
                p.push(Prod::Ee);
                p.push(Prod::Ch(None, s2));
            } else {
                p.push(Prod::Ee);
            }
            p
        };
        b.states.push(DState {
            prods: mk(s1, true),
            flags: F_FIRST | F_START_TAG | F_HAS_EE,
        });
        b.states.push(DState {
            prods: mk(s1, true),
            flags: F_START_TAG | F_HAS_EE,
        });
        let mut p2 = vec![];
        for (q, r) in &frag_elems {
            p2.push(Prod::Se(q.clone(), *r, s2));
        }
        p2.push(Prod::SeAny(s2));
        p2.push(Prod::Ee);
        p2.push(Prod::Ch(None, s2));
        b.states.push(DState {
            prods: p2,
            flags: F_HAS_EE,
        });
        b.states.push(DState {
            prods: mk(e1, false),
            flags: F_FIRST | F_START_TAG | F_HAS_EE,
        });
        b.states.push(DState {
            prods: vec![Prod::Ee],
            flags: F_HAS_EE,
        });
        let attrs = frag_attrs.clone();
        b.grammars.push(GrammarOut {
            start: s0,
            content2: s2,
            empty: ef_gid + 1,
            attrs: attrs.clone(),
            name: None,
        });
        b.grammars.push(GrammarOut {
            start: e0,
            content2: e1,
            empty: ef_gid + 1,
            attrs,
            name: None,
        });
    }

    // string tables (Appendix D.1-D.3)
    let mut uri_set: BTreeSet<String> = BTreeSet::new();
    let mut locals: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (q, _, _) in &l.elem_decls {
        uri_set.insert(q.ns.clone());
        locals
            .entry(q.ns.clone())
            .or_default()
            .insert(q.local.clone());
    }
    for (q, _) in &l.attr_decls {
        uri_set.insert(q.ns.clone());
        locals
            .entry(q.ns.clone())
            .or_default()
            .insert(q.local.clone());
    }
    for t in l.types.iter().flatten() {
        if let Some(q) = &t.name
            && q.ns != XS
        {
            uri_set.insert(q.ns.clone());
            locals
                .entry(q.ns.clone())
                .or_default()
                .insert(q.local.clone());
        }
    }
    let mut so = SchemaOut {
        uris: vec!["".into(), XML_NS.into(), XSI.into(), XS.into()],
        locals: vec![
            vec![],
            ["base", "id", "lang", "space"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ["nil", "type"].iter().map(|s| s.to_string()).collect(),
            XSD_TYPES.iter().map(|s| s.to_string()).collect(),
        ],
    };
    for u in uri_set {
        if !so.uris.contains(&u) {
            so.uris.push(u);
            so.locals.push(vec![]);
        }
    }
    for (u, set) in locals {
        let i = so.uris.iter().position(|x| *x == u).unwrap_or(0);
        let mut v: BTreeSet<String> = so.locals[i].iter().cloned().collect();
        v.extend(set);
        so.locals[i] = v.into_iter().collect();
    }

    // ---- emit
    let mut dts: Vec<Dt> = vec![];
    let dt_id = |d: &Dt, dts: &mut Vec<Dt>| -> usize {
        match dts.iter().position(|x| x == d) {
            Some(i) => i,
            None => {
                dts.push(d.clone());
                dts.len() - 1
            }
        }
    };
    let qn = |q: &QNs| -> Res<String> {
        let u = so.uris.iter().position(|x| *x == q.ns).ok_or("uri")?;
        let li = so.locals[u]
            .iter()
            .position(|x| *x == q.local)
            .ok_or("local")?;
        Ok(format!("QN::new({u}, {li})"))
    };
    let uri_idx = |u: &str| so.uris.iter().position(|x| x == u).unwrap_or(0);
    let gref = |r: &GRef| match r {
        GRef::Type(t) => type_grammar[*t],
        GRef::Grammar(g) => *g,
    };
    let mut o = String::new();
    writeln!(
        o,
        "// @generated by pnc-exi-codegen from the {name} XSD set; do not edit."
    )
    .ok();
    writeln!(o, "// Regenerate: see services/exi/README.md.").ok();
    writeln!(o, "use crate::grammar::*;\n").ok();
    let mut states_src = String::new();
    for (i, s) in b.states.iter().enumerate() {
        let mut ps = vec![];
        for p in &s.prods {
            ps.push(match p {
                Prod::At(q, d, n) => format!("P::At({}, {}, {n})", qn(q)?, dt_id(d, &mut dts)),
                Prod::AtUri(u, n) => format!("P::AtUri({}, {n})", uri_idx(u)),
                Prod::AtAny(n) => format!("P::AtAny({n})"),
                Prod::Se(q, r, n) => format!("P::Se({}, {}, {n})", qn(q)?, gref(r)),
                Prod::SeUri(u, n) => format!("P::SeUri({}, {n})", uri_idx(u)),
                Prod::SeAny(n) => format!("P::SeAny({n})"),
                Prod::Ee => "P::Ee".into(),
                Prod::Ch(Some(d), n) => format!("P::Ch({}, {n})", dt_id(d, &mut dts)),
                Prod::Ch(None, n) => format!("P::Ch(UNTYPED, {n})"),
            });
        }
        writeln!(
            states_src,
            "    /* {i} */ State {{ flags: {}, prods: &[{}] }},",
            s.flags,
            ps.join(", ")
        )
        .ok();
    }
    let mut grammars_src = String::new();
    for (i, g) in b.grammars.iter().enumerate() {
        let attrs: Res<Vec<String>> = g
            .attrs
            .iter()
            .map(|(q, d)| Ok(format!("({}, {})", qn(q)?, dt_id(d, &mut dts))))
            .collect();
        writeln!(
            grammars_src,
            "    /* {i} {} */ Grammar {{ start: {}, content2: {}, empty: {}, attrs: &[{}] }},",
            g.name.as_ref().map(|q| q.local.as_str()).unwrap_or(""),
            g.start,
            g.content2,
            g.empty,
            attrs?.join(", ")
        )
        .ok();
    }
    let mut doc = vec![];
    for (q, t, _abs, _) in &global_info {
        doc.push(format!("({}, {})", qn(q)?, type_grammar[*t]));
    }
    let mut frag = vec![];
    for (q, r) in &frag_elems {
        frag.push(format!("({}, {})", qn(q)?, gref(r)));
    }
    let mut gat = vec![];
    for (q, d) in &gattr_dts {
        gat.push(format!("({}, {})", qn(q)?, dt_id(d, &mut dts)));
    }
    let mut types_src = vec![];
    let mut named_sorted: Vec<(QNs, usize)> = l
        .type_ids
        .iter()
        .map(|(q, id)| (q.clone(), type_grammar[*id]))
        .collect();
    named_sorted.sort_by_key(|(q, _)| (so.uris.iter().position(|x| *x == q.ns), q.local.clone()));
    for (q, g) in &named_sorted {
        if let Ok(s) = qn(q) {
            types_src.push(format!("({s}, {g})"));
        }
    }
    let mut dts_src = String::new();
    for (i, d) in dts.iter().enumerate() {
        let s = match d {
            Dt::String { max_len } => format!("Dt::String {{ max_len: {max_len} }}"),
            Dt::Boolean => "Dt::Boolean".into(),
            Dt::Binary { hex, max_len } => {
                format!("Dt::Binary {{ hex: {hex}, max_len: {max_len} }}")
            }
            Dt::NBit { min, bits } => format!("Dt::NBit {{ min: {min}, bits: {bits} }}"),
            Dt::Unsigned { max } => format!("Dt::Unsigned {{ max: {max:?} }}"),
            Dt::Integer { min, max } => format!("Dt::Integer {{ min: {min:?}, max: {max:?} }}"),
            Dt::Enum { values } => format!("Dt::Enum {{ values: &{values:?} }}"),
            Dt::Decimal => "Dt::Decimal".into(),
            Dt::Float => "Dt::Float".into(),
            Dt::QName => "Dt::QName".into(),
            Dt::Untyped => "Dt::String { max_len: 0 }".into(),
        };
        writeln!(dts_src, "    /* {i} */ {s},").ok();
    }
    writeln!(o, "pub static URIS: &[&str] = &{:?};", so.uris).ok();
    writeln!(o, "pub static LOCAL_NAMES: &[&[&str]] = &[").ok();
    for p in &so.locals {
        writeln!(o, "    &{p:?},").ok();
    }
    writeln!(o, "];\n").ok();
    writeln!(o, "pub static DATATYPES: &[Dt] = &[\n{dts_src}];\n").ok();
    writeln!(
        o,
        "pub static GRAMMARS: &[Grammar] = &[\n{grammars_src}];\n"
    )
    .ok();
    writeln!(o, "pub static STATES: &[State] = &[\n{states_src}];\n").ok();
    writeln!(
        o,
        "/// Global element declarations, sorted (DocContent, §8.5.1)."
    )
    .ok();
    writeln!(
        o,
        "pub static DOC_ELEMENTS: &[(QN, u32)] = &[{}];\n",
        doc.join(", ")
    )
    .ok();
    writeln!(
        o,
        "/// Every element qname of the schema set, sorted (FragmentContent, §8.5.2)."
    )
    .ok();
    writeln!(
        o,
        "pub static FRAG_ELEMENTS: &[(QN, u32)] = &[{}];\n",
        frag.join(", ")
    )
    .ok();
    writeln!(
        o,
        "pub static GLOBAL_ATTRS: &[(QN, u16)] = &[{}];\n",
        gat.join(", ")
    )
    .ok();
    writeln!(
        o,
        "pub static NAMED_TYPES: &[(QN, u32)] = &[{}];\n",
        types_src.join(", ")
    )
    .ok();
    writeln!(
        o,
        "pub static TABLES: SchemaTables = SchemaTables {{ name: {name:?}, uris: URIS, local_names: LOCAL_NAMES, datatypes: DATATYPES, grammars: GRAMMARS, states: STATES, doc_elements: DOC_ELEMENTS, frag_elements: FRAG_ELEMENTS, global_attrs: GLOBAL_ATTRS, named_types: NAMED_TYPES }};"
    )
    .ok();
    let file = out_dir.join(format!("{name}.rs"));
    std::fs::write(&file, o).map_err(|e| e.to_string())?;
    eprintln!(
        "{name}: {} states, {} grammars, {} global elements, {} fragment qnames -> {}",
        b.states.len(),
        b.grammars.len(),
        global_info.len(),
        frag_elems.len(),
        file.display()
    );
    Ok(())
}

/// Built-in XML Schema type names pre-populated in the XMLSchema local-name partition (Appendix D.3).
const XSD_TYPES: [&str; 46] = [
    "ENTITIES",
    "ENTITY",
    "ID",
    "IDREF",
    "IDREFS",
    "NCName",
    "NMTOKEN",
    "NMTOKENS",
    "NOTATION",
    "Name",
    "QName",
    "anySimpleType",
    "anyType",
    "anyURI",
    "base64Binary",
    "boolean",
    "byte",
    "date",
    "dateTime",
    "decimal",
    "double",
    "duration",
    "float",
    "gDay",
    "gMonth",
    "gMonthDay",
    "gYear",
    "gYearMonth",
    "hexBinary",
    "int",
    "integer",
    "language",
    "long",
    "negativeInteger",
    "nonNegativeInteger",
    "nonPositiveInteger",
    "normalizedString",
    "positiveInteger",
    "short",
    "string",
    "time",
    "token",
    "unsignedByte",
    "unsignedInt",
    "unsignedLong",
    "unsignedShort",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: pnc-exi-codegen SCHEMA_DIR OUT_DIR");
        std::process::exit(2);
    };
    let dir = Path::new(dir);
    let out = Path::new(out);
    let sets = [
        ("iso2", dir.join("iso15118-2/V2G_CI_MsgDef.xsd")),
        ("iso20", dir.join("iso15118-20/V2G_CI_CommonMessages.xsd")),
        ("xmldsig", dir.join("xmldsig-core-schema.xsd")),
        ("app", dir.join("V2G_CI_AppProtocol.xsd")),
    ];
    for (name, path) in sets {
        if let Err(e) = build(name, &path, out) {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The committed tables must be what the generator produces from the reference XSDs.
    #[test]
    fn generated_tables_are_up_to_date() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let schemas = root.join("../../../../shared/schemas");
        let out = std::env::temp_dir().join(format!("pnc-exi-codegen-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        for (name, path) in [
            ("iso2", "iso15118-2/V2G_CI_MsgDef.xsd"),
            ("iso20", "iso15118-20/V2G_CI_CommonMessages.xsd"),
            ("xmldsig", "xmldsig-core-schema.xsd"),
            ("app", "V2G_CI_AppProtocol.xsd"),
        ] {
            super::build(name, &schemas.join(path), &out).unwrap();
            let fresh = std::fs::read_to_string(out.join(format!("{name}.rs"))).unwrap();
            let committed =
                std::fs::read_to_string(root.join(format!("../src/generated/{name}.rs"))).unwrap();
            assert!(
                fresh == committed,
                "{name}.rs is stale: rerun pnc-exi-codegen (see services/exi/README.md)"
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}
