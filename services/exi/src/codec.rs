//! Table-driven schema-informed EXI 1.0 encoder and decoder (bit-packed, non-strict,
//! no fidelity options, header 0x80, no value string table).
//!
//! The generated tables hold the normalised first-level productions (§8.5.4.2/§8.5.4.3). The
//! second-level productions that non-strict grammars add (§8.5.4.4.1) are derived from the
//! state flags: `EE` (if not already on the first level), `AT(xsi:type)` and `AT(xsi:nil)`
//! (first state only), `AT(*)` and the third-level `AT(qname) [untyped value]` (start-tag
//! states), then `SE(*)` and `CH [untyped value]`.

use crate::bits::{BitReader, BitWriter};
use crate::error::ExiError;
use crate::grammar::*;
use crate::tree::{Attribute, Element, Node, QName, XSI_NS};
use base64::Engine as _;
use std::borrow::Cow;

/// Hard cap on any string or binary length when the schema sets none (bytes / characters).
pub const HARD_CAP: u64 = 1 << 20;
/// Maximum element nesting depth accepted by the decoder.
pub const MAX_DEPTH: usize = 100;
/// Maximum 7-bit groups of an unbounded integer (~ 1400 bits).
const MAX_INT_GROUPS: usize = 200;

/// Debug aid: `PNC_EXI_TRACE=1` prints every decoded event with its bit position to stderr.
fn trace_on() -> bool {
    static T: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *T.get_or_init(|| std::env::var_os("PNC_EXI_TRACE").is_some())
}

const BUILTIN_START: u32 = u32::MAX - 1;
/// StartTagContent of a built-in grammar that already holds one learned production: EXIficient
/// learns AT(xsi:type) at the first occurrence of an undeclared element (the EXI profile does
/// not count AT(xsi:type) against maximumNumberOfBuiltInProductions), so later occurrences of
/// the same qname carry a 1-bit first level (0 = AT(xsi:type), 1 = second level).
const BUILTIN_START_LEARNED: u32 = u32::MAX - 2;

fn is_builtin_start(s: u32) -> bool {
    s == BUILTIN_START || s == BUILTIN_START_LEARNED
}
const NO_GRAMMAR: u32 = u32::MAX;

/// Number of bits for an event code part with `n` values.
#[inline]
pub(crate) fn width(n: usize) -> u8 {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as u8
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum L2 {
    Ee,
    XsiType,
    XsiNil,
    AtAny,
    AtInvalid,
    SeAny,
    Ch,
}

/// Second-level productions of a schema-informed state (§8.5.4.4.1, fidelity options off).
fn level2(st: &State, _g: &Grammar) -> ([L2; 7], usize) {
    let mut out = [L2::Ee; 7];
    let mut n = 0;
    let mut push = |x| {
        out[n] = x;
        n += 1;
    };
    if st.flags & F_HAS_EE == 0 {
        push(L2::Ee);
    }
    if st.flags & F_FIRST != 0 {
        push(L2::XsiType);
        push(L2::XsiNil);
    }
    if st.flags & F_START_TAG != 0 {
        push(L2::AtAny);
        // present even without declared attributes: its third level also carries the
        // schema-invalid AT(*) (e.g. xsi:nil="maybe"), as in EXIficient
        push(L2::AtInvalid);
    }
    push(L2::SeAny);
    push(L2::Ch);
    (out, n)
}

/// Dynamic part of the URI and local-name string tables (Appendix D; these partitions exist
/// even though the value partitions are disabled by the ISO 15118 profile).
struct NameTable {
    uris: Vec<Cow<'static, str>>,
    locals: Vec<Vec<Cow<'static, str>>>,
}

impl NameTable {
    fn new(t: &'static SchemaTables) -> Self {
        NameTable {
            uris: t.uris.iter().map(|u| Cow::Borrowed(*u)).collect(),
            locals: t
                .local_names
                .iter()
                .map(|p| p.iter().map(|l| Cow::Borrowed(*l)).collect())
                .collect(),
        }
    }
}

/// Finds a qname in the static string tables.
fn lookup(t: &'static SchemaTables, ns: &str, local: &str) -> Option<QN> {
    let u = t.uris.iter().position(|x| *x == ns)?;
    let part = t.local_names.get(u)?;
    let l = part
        .binary_search_by(|x| x.as_bytes().cmp(local.as_bytes()))
        .ok()?;
    Some(QN::new(u as u16, l as u16))
}

fn qname_of(t: &'static SchemaTables, q: QN) -> QName {
    let ns = t.uris.get(q.uri as usize).copied().unwrap_or("");
    let local = t
        .local_names
        .get(q.uri as usize)
        .and_then(|p| p.get(q.local as usize))
        .copied()
        .unwrap_or("");
    QName {
        ns: Cow::Borrowed(ns),
        local: Cow::Borrowed(local),
    }
}

fn global_grammar(t: &'static SchemaTables, ns: &str, local: &str) -> u32 {
    match lookup(t, ns, local) {
        Some(q) => t
            .doc_elements
            .iter()
            .find(|(x, _)| *x == q)
            .map(|(_, g)| *g)
            .unwrap_or(NO_GRAMMAR),
        None => NO_GRAMMAR,
    }
}

fn global_attr_dt(t: &'static SchemaTables, ns: &str, local: &str) -> u16 {
    match lookup(t, ns, local) {
        Some(q) => t
            .global_attrs
            .iter()
            .find(|(x, _)| *x == q)
            .map(|(_, d)| *d)
            .unwrap_or(UNTYPED),
        None => UNTYPED,
    }
}

// ------------------------------------------------------------------------------------ values

/// A value to encode: lexical text, or raw bytes for binary types (fast path).
#[derive(Clone, Copy, Debug)]
pub enum ValRef<'a> {
    Str(&'a str),
    Bytes(&'a [u8]),
}

enum Prepared<'a> {
    Str(&'a str),
    Bool(bool),
    Bytes(Cow<'a, [u8]>),
    NBit(u64, u8),
    UInt(u64),
    UBig(Vec<u8>),
    Int(bool, u64),
    IntBig(bool, Vec<u8>),
    Enum(u64, u8),
    Decimal(bool, Vec<u8>, Vec<u8>),
    Float(i64, i64),
    QName(String, String),
}

fn is_xml_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Decodes base64 tolerating XML whitespace (line-wrapped values).
pub(crate) fn base64_lenient(s: &str) -> Option<Vec<u8>> {
    let e = base64::engine::general_purpose::STANDARD;
    if s.bytes().any(|b| b.is_ascii_whitespace()) {
        let c: String = s.chars().filter(|c| !is_xml_ws(*c)).collect();
        e.decode(c.as_bytes()).ok()
    } else {
        e.decode(s.as_bytes()).ok()
    }
}

/// Parses an integer literal into (negative, magnitude digits without leading zeros).
fn int_lexical(s: &str) -> Option<(bool, &str)> {
    let s = s.trim_matches(is_xml_ws);
    let (neg, d) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = d.trim_start_matches('0');
    let t = if t.is_empty() { "0" } else { t };
    Some((neg && t != "0", t))
}

fn prepare<'a>(dt: &'static Dt, v: ValRef<'a>) -> Result<Option<Prepared<'a>>, ExiError> {
    let s = match v {
        ValRef::Bytes(b) => {
            return match dt {
                Dt::Binary { max_len, .. } => {
                    if *max_len > 0 && b.len() > *max_len as usize {
                        return Err(ExiError::Encode(format!(
                            "binary of {} bytes exceeds maxLength {max_len}",
                            b.len()
                        )));
                    }
                    Ok(Some(Prepared::Bytes(Cow::Borrowed(b))))
                }
                _ => Err(ExiError::Encode("bytes given for a non-binary type".into())),
            };
        }
        ValRef::Str(s) => s,
    };
    Ok(match dt {
        Dt::String { max_len } => {
            if *max_len > 0 && s.chars().count() > *max_len as usize {
                return Err(ExiError::Encode(format!(
                    "string of {} characters exceeds maxLength {max_len}",
                    s.chars().count()
                )));
            }
            Some(Prepared::Str(s))
        }
        Dt::Boolean => match s.trim_matches(is_xml_ws) {
            "true" | "1" => Some(Prepared::Bool(true)),
            "false" | "0" => Some(Prepared::Bool(false)),
            _ => None,
        },
        Dt::Binary { hex, max_len } => {
            let b = if *hex {
                let c: String = s.chars().filter(|c| !is_xml_ws(*c)).collect();
                hex::decode(c).ok()
            } else {
                base64_lenient(s)
            };
            match b {
                Some(b) => {
                    if *max_len > 0 && b.len() > *max_len as usize {
                        return Err(ExiError::Encode(format!(
                            "binary of {} bytes exceeds maxLength {max_len}",
                            b.len()
                        )));
                    }
                    Some(Prepared::Bytes(Cow::Owned(b)))
                }
                None => None,
            }
        }
        Dt::NBit { min, bits } => match int_lexical(s)
            .and_then(|(neg, d)| d.parse::<i128>().ok().map(|m| if neg { -m } else { m }))
        {
            Some(v) if v >= i128::from(*min) && v - i128::from(*min) < (1i128 << *bits) => {
                Some(Prepared::NBit((v - i128::from(*min)) as u64, *bits))
            }
            _ => None,
        },
        Dt::Unsigned { max } => match int_lexical(s) {
            Some((false, d)) => match d.parse::<u128>() {
                Ok(v) if max.is_none_or(|m| v <= m) => {
                    if v <= u128::from(u64::MAX) {
                        Some(Prepared::UInt(v as u64))
                    } else {
                        crate::big::decimal_to_groups(d).map(Prepared::UBig)
                    }
                }
                Ok(_) => None,
                Err(_) if max.is_none() => crate::big::decimal_to_groups(d).map(Prepared::UBig),
                Err(_) => None,
            },
            _ => None,
        },
        Dt::Integer { min, max } => match int_lexical(s) {
            Some((neg, d)) => {
                let small = d.parse::<u64>().ok();
                let bounded = min.is_some() || max.is_some();
                match small {
                    Some(m) => {
                        let v = if neg { -i128::from(m) } else { i128::from(m) };
                        if min.is_some_and(|x| v < x) || max.is_some_and(|x| v > x) {
                            None
                        } else if neg {
                            Some(Prepared::Int(true, m - 1))
                        } else {
                            Some(Prepared::Int(false, m))
                        }
                    }
                    None if bounded => None,
                    None => {
                        // |v| beyond u64: magnitude for negatives is |v| - 1 (§7.1.5)
                        let mag = if neg {
                            crate::big::decimal_sub_one(d)
                        } else {
                            Some(d.to_string())
                        };
                        mag.and_then(|m| crate::big::decimal_to_groups(&m))
                            .map(|g| Prepared::IntBig(neg, g))
                    }
                }
            }
            None => None,
        },
        Dt::Enum { values } => {
            let i = values.iter().position(|x| *x == s).or_else(|| {
                let t = s.trim_matches(is_xml_ws);
                values.iter().position(|x| *x == t)
            });
            i.map(|i| Prepared::Enum(i as u64, width(values.len())))
        }
        Dt::Decimal => {
            let t = s.trim_matches(is_xml_ws);
            let (neg, rest) = match t.as_bytes().first() {
                Some(b'-') => (true, &t[1..]),
                Some(b'+') => (false, &t[1..]),
                _ => (false, t),
            };
            let (i, f) = rest.split_once('.').unwrap_or((rest, ""));
            if (i.is_empty() && f.is_empty())
                || !i.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit())
            {
                None
            } else {
                let i = if i.is_empty() { "0" } else { i };
                let f = f.trim_end_matches('0');
                let frev: String = if f.is_empty() {
                    "0".into()
                } else {
                    f.chars().rev().collect()
                };
                match (
                    crate::big::decimal_to_groups(i),
                    crate::big::decimal_to_groups(&frev),
                ) {
                    (Some(a), Some(b)) => Some(Prepared::Decimal(neg, a, b)),
                    _ => None,
                }
            }
        }
        Dt::Float => parse_float(s.trim_matches(is_xml_ws)).map(|(m, e)| Prepared::Float(m, e)),
        Dt::QName => QName::from_clark(s.trim_matches(is_xml_ws))
            .map(|q| Prepared::QName(q.ns.into_owned(), q.local.into_owned())),
    })
}

/// Float lexical -> (mantissa, exponent) with mantissa * 10^exponent (§7.1.4).
fn parse_float(s: &str) -> Option<(i64, i64)> {
    match s {
        "INF" => return Some((1, -(1 << 14))),
        "-INF" => return Some((-1, -(1 << 14))),
        "NaN" => return Some((0, -(1 << 14))),
        _ => {}
    }
    let (m, e) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (neg, m) = match m.as_bytes().first()? {
        b'-' => (true, &m[1..]),
        b'+' => (false, &m[1..]),
        _ => (false, m),
    };
    let (ip, fp) = m.split_once('.').unwrap_or((m, ""));
    let fp = fp.trim_end_matches('0');
    let digits = format!("{ip}{fp}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut mant: i64 = digits.parse().ok()?;
    let mut exp = e - fp.len() as i64;
    if mant == 0 {
        exp = 0;
    }
    while mant != 0 && mant % 10 == 0 {
        mant /= 10;
        exp += 1;
    }
    if neg {
        mant = -mant;
    }
    if !(-(1 << 14) + 1..(1 << 14)).contains(&exp) {
        return None;
    }
    Some((mant, exp))
}

// ------------------------------------------------------------------------------------ encoder

#[derive(Clone, Copy)]
struct Frame {
    grammar: u32,
    state: u32,
}

/// Event-level EXI encoder for one schema. Build documents with `start_element`, `attribute`,
/// `characters`, `end_element`, then `finish`.
pub struct Encoder {
    t: &'static SchemaTables,
    w: BitWriter,
    stack: Vec<Frame>,
    names: Option<NameTable>,
    fragment: bool,
    roots: usize,
    /// last namespace string seen (address, length) -> URI id: typed writers pass the same
    /// `&'static str` constants over and over
    uri_cache: (usize, usize, u16),
    /// qnames of undeclared elements seen so far (their built-in grammars persist per stream)
    builtin_seen: Vec<(String, String)>,
}

impl Encoder {
    /// `lookup` with a one-entry cache for the namespace.
    fn qn(&mut self, ns: &str, local: &str) -> Option<QN> {
        let t = self.t;
        let key = (ns.as_ptr() as usize, ns.len());
        let cached = self.uri_cache.2;
        let u = if key == (self.uri_cache.0, self.uri_cache.1)
            && t.uris.get(cached as usize) == Some(&ns)
        {
            cached
        } else {
            let u = t.uris.iter().position(|x| *x == ns)? as u16;
            self.uri_cache = (key.0, key.1, u);
            u
        };
        let part = t.local_names.get(u as usize)?;
        let l = part
            .binary_search_by(|x| x.as_bytes().cmp(local.as_bytes()))
            .ok()?;
        Some(QN::new(u, l as u16))
    }

    pub fn new(t: &'static SchemaTables, fragment: bool) -> Self {
        let mut w = BitWriter::with_capacity(4096);
        // EXI header (§5): distinguishing bits 10, no options, version 1 -> 0x80
        w.bits(0x80, 8);
        Encoder {
            t,
            w,
            stack: Vec::with_capacity(16),
            names: None,
            fragment,
            roots: 0,
            uri_cache: (0, 0, 0),
            builtin_seen: Vec::new(),
        }
    }

    /// Writes a qname through the URI and local-name string tables (§7.1.7).
    fn write_qname(&mut self, ns: &str, local: &str) {
        let names = self.names.get_or_insert_with(|| NameTable::new(self.t));
        let n = names.uris.len();
        let u = match names.uris.iter().position(|x| x == ns) {
            Some(i) => {
                self.w.bits(i as u64 + 1, width(n + 1));
                i
            }
            None => {
                self.w.bits(0, width(n + 1));
                write_str_raw(&mut self.w, ns, 0);
                names.uris.push(Cow::Owned(ns.to_string()));
                names.locals.push(vec![]);
                n
            }
        };
        Self::write_local(&mut self.w, names, u, local);
    }

    fn write_local(w: &mut BitWriter, names: &mut NameTable, u: usize, local: &str) {
        let part = &mut names.locals[u];
        match part.iter().position(|x| x == local) {
            Some(i) => {
                w.uint(0);
                w.bits(i as u64, width(part.len()));
            }
            None => {
                write_str_raw(w, local, 1);
                part.push(Cow::Owned(local.to_string()));
            }
        }
    }

    fn child_grammar(&self, ns: &str, local: &str) -> u32 {
        global_grammar(self.t, ns, local)
    }

    fn push_child(&mut self, g: u32, ns: &str, local: &str) {
        let state = if g == NO_GRAMMAR {
            if self.builtin_seen.iter().any(|(a, b)| a == ns && b == local) {
                BUILTIN_START_LEARNED
            } else {
                self.builtin_seen.push((ns.to_string(), local.to_string()));
                BUILTIN_START
            }
        } else {
            self.t.grammars[g as usize].start
        };
        self.stack.push(Frame { grammar: g, state });
    }

    /// Second-level event code `code2` (of EE, AT(*), SE(*), CH) in a built-in StartTagContent.
    fn builtin_start_code(&mut self, state: u32, code2: u64) {
        if state == BUILTIN_START_LEARNED {
            self.w.bits(1, 1);
        }
        self.w.bits(code2, 2);
    }

    pub fn start_element(&mut self, ns: &str, local: &str) -> Result<(), ExiError> {
        let t = self.t;
        let Some(top) = self.stack.last().copied() else {
            // DocContent (§8.5.1) or FragmentContent (§8.5.2)
            let list = if self.fragment {
                t.frag_elements
            } else {
                t.doc_elements
            };
            if !self.fragment && self.roots > 0 {
                return Err(ExiError::Encode(
                    "a document has exactly one root element".into(),
                ));
            }
            self.roots += 1;
            let n = list.len();
            let wd = width(n + if self.fragment { 2 } else { 1 });
            if let Some(q) = lookup(t, ns, local)
                && let Some(i) = list.iter().position(|(x, _)| *x == q)
            {
                self.w.bits(i as u64, wd);
                self.push_child(list[i].1, ns, local);
                return Ok(());
            }
            self.w.bits(n as u64, wd);
            self.write_qname(ns, local);
            let g = self.child_grammar(ns, local);
            self.push_child(g, ns, local);
            return Ok(());
        };
        if top.grammar == NO_GRAMMAR {
            self.announce_any_type()?;
            return self.start_element(ns, local);
        }
        let st = &t.states[top.state as usize];
        let n = st.prods.len();
        let q = self.qn(ns, local);
        for (i, p) in st.prods.iter().enumerate() {
            match *p {
                P::Se(pq, g, next) if Some(pq) == q => {
                    self.w.bits(i as u64, width(n + 1));
                    self.set_state(next);
                    self.push_child(g, ns, local);
                    return Ok(());
                }
                P::SeUri(u, next) if t.uris.get(u as usize) == Some(&ns) => {
                    self.w.bits(i as u64, width(n + 1));
                    let names = self.names.get_or_insert_with(|| NameTable::new(t));
                    Self::write_local(&mut self.w, names, u as usize, local);
                    self.set_state(next);
                    let g = self.child_grammar(ns, local);
                    self.push_child(g, ns, local);
                    return Ok(());
                }
                P::SeAny(next) => {
                    self.w.bits(i as u64, width(n + 1));
                    self.write_qname(ns, local);
                    self.set_state(next);
                    let g = self.child_grammar(ns, local);
                    self.push_child(g, ns, local);
                    return Ok(());
                }
                _ => {}
            }
        }
        // SE(*) on the second level (schema deviation)
        let g = &t.grammars[top.grammar as usize];
        self.level2(st, g, L2::SeAny)?;
        self.write_qname(ns, local);
        if st.flags & F_START_TAG != 0 {
            self.set_state(g.content2);
        }
        let cg = self.child_grammar(ns, local);
        self.push_child(cg, ns, local);
        Ok(())
    }

    fn set_state(&mut self, s: u32) {
        if let Some(f) = self.stack.last_mut() {
            f.state = s;
        }
    }

    fn level2(&mut self, st: &State, g: &Grammar, which: L2) -> Result<(), ExiError> {
        let (l, n2) = level2(st, g);
        let i = l[..n2]
            .iter()
            .position(|x| *x == which)
            .ok_or_else(|| ExiError::Encode(format!("{which:?} not allowed here")))?;
        let n = st.prods.len();
        self.w.bits(n as u64, width(n + 1));
        self.w.bits(i as u64, width(n2));
        Ok(())
    }

    /// An undeclared element (built-in element grammar) that is about to get any event other
    /// than `xsi:type`: with `maximumNumberOfBuiltInElementGrammars=0` EXIficient may not learn,
    /// so it inserts `xsi:type="xs:anyType"` (second-level AT(*)) and continues in the anyType
    /// grammar. This happens before the first attribute, child, text or end tag, and again after
    /// an `xsi:type` naming a type the schema does not know (the grammar stays built-in).
    fn announce_any_type(&mut self) -> Result<(), ExiError> {
        self.xsi_type("http://www.w3.org/2001/XMLSchema", "anyType")?;
        match self.stack.last() {
            Some(f) if f.grammar != NO_GRAMMAR => Ok(()),
            _ => Err(ExiError::Encode("no grammar for xs:anyType".into())),
        }
    }

    /// `xsi:type` (must come before any other attribute): switches to the named type's grammar.
    pub fn xsi_type(&mut self, ns: &str, local: &str) -> Result<(), ExiError> {
        let t = self.t;
        let top = self
            .stack
            .last()
            .copied()
            .ok_or_else(|| ExiError::Encode("xsi:type outside an element".into()))?;
        if top.grammar == NO_GRAMMAR {
            if !is_builtin_start(top.state) {
                return Err(ExiError::Encode("xsi:type after content".into()));
            }
            // AT(*) of the built-in grammar with qname xsi:type and a QName value (EXIficient
            // never uses the learned AT(xsi:type) production when encoding)
            self.builtin_start_code(top.state, 1);
            self.write_qname(XSI_NS, "type");
        } else {
            let st = &t.states[top.state as usize];
            self.level2(st, &t.grammars[top.grammar as usize], L2::XsiType)?;
        }
        self.write_qname(ns, local);
        if let Some(q) = lookup(t, ns, local)
            && let Some((_, g)) = t.named_types.iter().find(|(x, _)| *x == q)
        {
            let start = t.grammars[*g as usize].start;
            if let Some(f) = self.stack.last_mut() {
                *f = Frame {
                    grammar: *g,
                    state: start,
                };
            }
        } else if top.grammar == NO_GRAMMAR
            && let Some(f) = self.stack.last_mut()
        {
            // unknown type: the built-in grammar has now learned AT(xsi:type)
            f.state = BUILTIN_START_LEARNED;
        }
        Ok(())
    }

    /// `xsi:nil`; `true` switches to the TypeEmpty grammar.
    pub fn xsi_nil(&mut self, nil: bool) -> Result<(), ExiError> {
        let t = self.t;
        let top = self
            .stack
            .last()
            .copied()
            .ok_or_else(|| ExiError::Encode("xsi:nil outside an element".into()))?;
        if top.grammar == NO_GRAMMAR {
            // EXIficient treats it as any other attribute: AT(*) in the anyType grammar
            self.announce_any_type()?;
            return self.attribute(
                XSI_NS,
                "nil",
                ValRef::Str(if nil { "true" } else { "false" }),
            );
        }
        let st = &t.states[top.state as usize];
        let g = &t.grammars[top.grammar as usize];
        self.level2(st, g, L2::XsiNil)?;
        self.w.bits(u64::from(nil), 1);
        if nil {
            let eg = g.empty;
            let start = t.grammars[eg as usize].start;
            if let Some(f) = self.stack.last_mut() {
                *f = Frame {
                    grammar: eg,
                    state: start,
                };
            }
        }
        Ok(())
    }

    fn write_value_or_string(&mut self, dt: u16, v: ValRef) -> Result<(), ExiError> {
        if dt != UNTYPED
            && let Some(d) = self.t.datatypes.get(dt as usize)
            && let Some(p) = prepare(d, v)?
        {
            self.write_prepared(p);
            return Ok(());
        }
        let s = val_text(v);
        write_str(&mut self.w, &s);
        Ok(())
    }

    pub fn attribute(&mut self, ns: &str, local: &str, v: ValRef) -> Result<(), ExiError> {
        let t = self.t;
        let top = self
            .stack
            .last()
            .copied()
            .ok_or_else(|| ExiError::Encode("attribute outside an element".into()))?;
        if top.grammar == NO_GRAMMAR {
            self.announce_any_type()?;
            return self.attribute(ns, local, v);
        }
        let st = &t.states[top.state as usize];
        let g = &t.grammars[top.grammar as usize];
        let n = st.prods.len();
        let q = self.qn(ns, local);
        for (i, p) in st.prods.iter().enumerate() {
            match *p {
                P::At(pq, dt, next) if Some(pq) == q => {
                    let d = t
                        .datatypes
                        .get(dt as usize)
                        .ok_or_else(|| ExiError::Encode("datatype".into()))?;
                    match prepare(d, v)? {
                        Some(p) => {
                            self.w.bits(i as u64, width(n + 1));
                            self.write_prepared(p);
                            self.set_state(next);
                            return Ok(());
                        }
                        None => {
                            // AT(qname) [untyped value], third level
                            let k = g.attrs.iter().position(|(x, _)| Some(*x) == q).unwrap_or(0);
                            self.level2(st, g, L2::AtInvalid)?;
                            self.w.bits(k as u64, width(g.attrs.len() + 1));
                            write_str(&mut self.w, &val_text(v));
                            return Ok(());
                        }
                    }
                }
                P::AtUri(u, next) if t.uris.get(u as usize) == Some(&ns) => {
                    self.w.bits(i as u64, width(n + 1));
                    let names = self.names.get_or_insert_with(|| NameTable::new(t));
                    Self::write_local(&mut self.w, names, u as usize, local);
                    self.write_value_or_string(global_attr_dt(t, ns, local), v)?;
                    self.set_state(next);
                    return Ok(());
                }
                P::AtAny(next) => {
                    self.w.bits(i as u64, width(n + 1));
                    self.write_qname(ns, local);
                    self.write_value_or_string(global_attr_dt(t, ns, local), v)?;
                    self.set_state(next);
                    return Ok(());
                }
                _ => {}
            }
        }
        self.level2(st, g, L2::AtAny)?;
        self.write_qname(ns, local);
        self.write_value_or_string(global_attr_dt(t, ns, local), v)
    }

    pub fn characters(&mut self, v: ValRef) -> Result<(), ExiError> {
        // XML has no empty character events: "" is the absence of content (EE follows)
        if matches!(v, ValRef::Str("") | ValRef::Bytes([])) {
            return Ok(());
        }
        if self.stack.is_empty() {
            return Err(ExiError::Encode("text outside an element".into()));
        }
        if !self.significant(v, true) {
            return Ok(());
        }
        self.characters_significant(v)
    }

    /// Whether text is written at all, as EXIficient decides it for a string from the XML
    /// parser: whitespace-only text is kept where the current state's first production is an
    /// untyped or string CH (whitespace facet `preserve`), dropped where it is a CH of another
    /// datatype (`collapse` leaves nothing), and elsewhere (element-only, mixed, anyType
    /// content) kept only as "simple data" between a start tag and its end tag.
    fn significant(&self, v: ValRef, simple: bool) -> bool {
        let ValRef::Str(s) = v else { return true };
        if !s.chars().all(is_xml_ws) {
            return true;
        }
        let Some(top) = self.stack.last() else {
            return false;
        };
        if top.grammar == NO_GRAMMAR {
            return simple;
        }
        match self.t.states[top.state as usize].prods.first() {
            Some(P::Ch(dt, _)) => {
                *dt == UNTYPED
                    || matches!(
                        self.t.datatypes.get(*dt as usize),
                        Some(Dt::String { .. } | Dt::Enum { .. })
                    )
            }
            _ => simple,
        }
    }

    fn characters_significant(&mut self, v: ValRef) -> Result<(), ExiError> {
        let t = self.t;
        let top = self
            .stack
            .last()
            .copied()
            .ok_or_else(|| ExiError::Encode("text outside an element".into()))?;
        if top.grammar == NO_GRAMMAR {
            self.announce_any_type()?;
            return self.characters_significant(v);
        }
        let st = &t.states[top.state as usize];
        let g = &t.grammars[top.grammar as usize];
        let n = st.prods.len();
        for (i, p) in st.prods.iter().enumerate() {
            if let P::Ch(dt, next) = *p {
                if dt == UNTYPED {
                    self.w.bits(i as u64, width(n + 1));
                    write_str(&mut self.w, &val_text(v));
                    self.set_state(next);
                    return Ok(());
                }
                let d = t
                    .datatypes
                    .get(dt as usize)
                    .ok_or_else(|| ExiError::Encode("datatype".into()))?;
                if let Some(p) = prepare(d, v)? {
                    self.w.bits(i as u64, width(n + 1));
                    self.write_prepared(p);
                    self.set_state(next);
                    return Ok(());
                }
                break;
            }
        }
        // CH [untyped value] on the second level (schema deviation)
        self.level2(st, g, L2::Ch)?;
        write_str(&mut self.w, &val_text(v));
        if st.flags & F_START_TAG != 0 {
            self.set_state(g.content2);
        }
        Ok(())
    }

    pub fn end_element(&mut self) -> Result<(), ExiError> {
        let t = self.t;
        let top = self
            .stack
            .last()
            .copied()
            .ok_or_else(|| ExiError::Encode("unbalanced end".into()))?;
        if top.grammar == NO_GRAMMAR {
            self.announce_any_type()?;
            return self.end_element();
        }
        let st = &t.states[top.state as usize];
        let n = st.prods.len();
        if let Some(i) = st.prods.iter().position(|p| matches!(p, P::Ee)) {
            self.w.bits(i as u64, width(n + 1));
            self.stack.pop();
            return Ok(());
        }
        // no first-level EE (e.g. an empty string or binary value): second-level EE, as
        // EXIficient does; an empty value is never written as CH("")
        let g = &t.grammars[top.grammar as usize];
        self.level2(st, g, L2::Ee)?;
        self.stack.pop();
        Ok(())
    }

    /// Ends the stream (ED) and returns the bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, ExiError> {
        if !self.stack.is_empty() {
            return Err(ExiError::Encode("unclosed elements".into()));
        }
        if self.fragment {
            let n = self.t.frag_elements.len();
            self.w.bits(n as u64 + 1, width(n + 2));
        } else if self.roots != 1 {
            return Err(ExiError::Encode(
                "a document has exactly one root element".into(),
            ));
        }
        Ok(self.w.finish())
    }

    fn write_prepared(&mut self, p: Prepared) {
        let w = &mut self.w;
        match p {
            Prepared::Str(s) => write_str(w, s),
            Prepared::Bool(b) => w.bits(u64::from(b), 1),
            Prepared::Bytes(b) => {
                w.uint(b.len() as u64);
                w.bytes(&b);
            }
            Prepared::NBit(v, n) => w.bits(v, n),
            Prepared::UInt(v) => w.uint(v),
            Prepared::UBig(g) => write_groups(w, &g),
            Prepared::Int(neg, m) => {
                w.bits(u64::from(neg), 1);
                w.uint(m);
            }
            Prepared::IntBig(neg, g) => {
                w.bits(u64::from(neg), 1);
                write_groups(w, &g);
            }
            Prepared::Enum(i, n) => w.bits(i, n),
            Prepared::Decimal(neg, i, f) => {
                w.bits(u64::from(neg), 1);
                write_groups(w, &i);
                write_groups(w, &f);
            }
            Prepared::Float(m, e) => {
                write_int(w, m);
                write_int(w, e);
            }
            Prepared::QName(ns, local) => self.write_qname(&ns, &local),
        }
    }

    /// Encodes a whole element subtree.
    pub fn element(&mut self, e: &Element) -> Result<(), ExiError> {
        self.element_depth(e, 0)
    }

    fn element_depth(&mut self, e: &Element, depth: usize) -> Result<(), ExiError> {
        if depth > MAX_DEPTH {
            return Err(ExiError::Encode("nesting too deep".into()));
        }
        self.start_element(&e.name.ns, &e.name.local)?;
        if let Some(a) = e
            .attrs
            .iter()
            .find(|a| a.name.ns == XSI_NS && a.name.local == "type")
        {
            let q = QName::from_clark(&a.value).unwrap_or_else(|| QName::new("", a.value.clone()));
            self.xsi_type(&q.ns, &q.local)?;
        }
        // an undeclared element still without a type grammar (no xsi:type, or one the schema
        // does not know) gets xsi:nil as any other attribute, after the xs:anyType announcement
        let builtin = self.stack.last().is_some_and(|f| f.grammar == NO_GRAMMAR);
        if let Some(a) = e
            .attrs
            .iter()
            .find(|a| a.name.ns == XSI_NS && a.name.local == "nil")
        {
            let v = a.value.trim();
            if builtin {
                // EXIficient sees xsi:nil while the element still has its built-in grammar, so
                // it treats it as any other attribute: the xs:anyType announcement, then AT(*)
                // xsi:nil with an untyped value (even "false"), no TypeEmpty switch
                self.attribute(XSI_NS, "nil", ValRef::Str(&a.value))?;
            } else if v == "true" || v == "1" {
                // xsi:nil="false" carries no information; EXIficient does not write it
                self.xsi_nil(true)?;
            }
        }
        let mut attrs: Vec<&Attribute> = e
            .attrs
            .iter()
            .filter(|a| !(a.name.ns == XSI_NS && (a.name.local == "type" || a.name.local == "nil")))
            .collect();
        attrs.sort_by(|a, b| (&a.name.local, &a.name.ns).cmp(&(&b.name.local, &b.name.ns)));
        for a in attrs {
            self.attribute(&a.name.ns, &a.name.local, ValRef::Str(&a.value))?;
        }
        // merge adjacent text nodes so a typed value is one CH event; whitespace-only text is
        // "simple data" only between the start tag and the end tag (see `significant`)
        let mut pending: Option<Cow<str>> = None;
        let mut had_child = false;
        for c in &e.children {
            match c {
                Node::Text(s) => {
                    pending = Some(match pending {
                        None => Cow::Borrowed(s.as_str()),
                        Some(p) => Cow::Owned(format!("{p}{s}")),
                    });
                }
                Node::Element(ch) => {
                    if let Some(p) = pending.take() {
                        self.text(&p, false)?;
                    }
                    had_child = true;
                    self.element_depth(ch, depth + 1)?;
                }
            }
        }
        if let Some(p) = pending.take() {
            self.text(&p, !had_child)?;
        }
        self.end_element()
    }

    fn text(&mut self, s: &str, simple: bool) -> Result<(), ExiError> {
        if s.is_empty() || !self.significant(ValRef::Str(s), simple) {
            return Ok(());
        }
        self.characters_significant(ValRef::Str(s))
    }
}

fn val_text(v: ValRef) -> Cow<str> {
    match v {
        ValRef::Str(s) => Cow::Borrowed(s),
        ValRef::Bytes(b) => Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

fn write_groups(w: &mut BitWriter, g: &[u8]) {
    for (i, &x) in g.iter().enumerate() {
        w.byte(if i + 1 < g.len() { x | 0x80 } else { x });
    }
}

fn write_int(w: &mut BitWriter, v: i64) {
    if v < 0 {
        w.bits(1, 1);
        w.uint((-(v + 1)) as u64);
    } else {
        w.bits(0, 1);
        w.uint(v as u64);
    }
}

/// String value (§7.1.10) with the value-table miss offset 2 (no value string table hits).
fn write_str(w: &mut BitWriter, s: &str) {
    write_str_raw(w, s, 2);
}

fn write_str_raw(w: &mut BitWriter, s: &str, offset: u64) {
    let n = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    w.uint(n as u64 + offset);
    if s.is_ascii() {
        for b in s.bytes() {
            w.byte(b);
        }
    } else {
        for c in s.chars() {
            w.uint(u64::from(u32::from(c)));
        }
    }
}

// ------------------------------------------------------------------------------------ decoder

pub struct Decoder<'a> {
    t: &'static SchemaTables,
    r: BitReader<'a>,
    names: Option<NameTable>,
    /// qnames of undeclared elements seen so far (see `BUILTIN_START_LEARNED`)
    builtin_seen: Vec<QName>,
}

impl<'a> Decoder<'a> {
    pub fn new(t: &'static SchemaTables, data: &'a [u8]) -> Result<Self, ExiError> {
        let mut r = BitReader::new(data);
        let h = r.bits(8).map_err(|_| ExiError::Truncated { bit: 0 })? as u8;
        if h != 0x80 {
            return Err(ExiError::BadHeader { byte: h });
        }
        Ok(Decoder {
            t,
            r,
            names: None,
            builtin_seen: Vec::new(),
        })
    }

    pub fn document(&mut self) -> Result<Element, ExiError> {
        let t = self.t;
        let n = t.doc_elements.len();
        let pos = self.r.pos();
        let code = self.r.bits(width(n + 1))? as usize;
        let root = if code < n {
            let (q, g) = t.doc_elements[code];
            self.element(qname_of(t, q), g, 0)?
        } else if code == n {
            let q = self.read_qname()?;
            let g = global_grammar(t, &q.ns, &q.local);
            self.element(q, g, 0)?
        } else {
            return Err(ExiError::BadEventCode {
                code: code as u64,
                bit: pos,
            });
        };
        // DocEnd: ED has the only first-level code (0 bits)
        Ok(root)
    }

    pub fn fragment(&mut self) -> Result<Vec<Element>, ExiError> {
        let t = self.t;
        let n = t.frag_elements.len();
        let mut out = vec![];
        loop {
            let pos = self.r.pos();
            let code = self.r.bits(width(n + 2))? as usize;
            if code < n {
                let (q, g) = t.frag_elements[code];
                out.push(self.element(qname_of(t, q), g, 0)?);
            } else if code == n {
                let q = self.read_qname()?;
                let g = global_grammar(t, &q.ns, &q.local);
                out.push(self.element(q, g, 0)?);
            } else if code == n + 1 {
                return Ok(out);
            } else {
                return Err(ExiError::BadEventCode {
                    code: code as u64,
                    bit: pos,
                });
            }
            if out.len() > 1024 {
                return Err(ExiError::Unsupported(
                    "more than 1024 fragment elements".into(),
                ));
            }
        }
    }

    fn names(&mut self) -> &mut NameTable {
        let t = self.t;
        self.names.get_or_insert_with(|| NameTable::new(t))
    }

    fn read_qname(&mut self) -> Result<QName, ExiError> {
        let t = self.t;
        let pos = self.r.pos();
        let n = self
            .names
            .get_or_insert_with(|| NameTable::new(t))
            .uris
            .len();
        let id = self.r.bits(width(n + 1))? as usize;
        let u = if id == 0 {
            let s = read_string_raw(&mut self.r, 0, HARD_CAP)?;
            let names = self.names();
            names.uris.push(Cow::Owned(s));
            names.locals.push(vec![]);
            n
        } else if id <= n {
            id - 1
        } else {
            return Err(ExiError::BadIdentifier {
                id: id as u64,
                bit: pos,
            });
        };
        let local = self.read_local(u)?;
        let ns = self.names().uris[u].clone();
        Ok(QName { ns, local })
    }

    fn read_local(&mut self, u: usize) -> Result<Cow<'static, str>, ExiError> {
        let pos = self.r.pos();
        let v = self.r.uint()?;
        if v == 0 {
            let len = self.names().locals.get(u).map(|p| p.len()).unwrap_or(0);
            let i = self.r.bits(width(len))? as usize;
            self.names()
                .locals
                .get(u)
                .and_then(|p| p.get(i))
                .cloned()
                .ok_or(ExiError::BadIdentifier {
                    id: i as u64,
                    bit: pos,
                })
        } else {
            let s = read_chars(&mut self.r, v - 1, HARD_CAP, pos)?;
            let names = self.names();
            if let Some(p) = names.locals.get_mut(u) {
                p.push(Cow::Owned(s.clone()));
            }
            Ok(Cow::Owned(s))
        }
    }

    fn element(&mut self, name: QName, g: u32, depth: usize) -> Result<Element, ExiError> {
        if depth > MAX_DEPTH {
            return Err(ExiError::TooDeep {
                max: MAX_DEPTH,
                bit: self.r.pos(),
            });
        }
        let e = Element {
            name,
            attrs: vec![],
            children: vec![],
        };
        if g == NO_GRAMMAR {
            return self.builtin_element(e, depth);
        }
        self.element_in(e, g, depth)
    }

    fn element_in(&mut self, mut e: Element, g: u32, depth: usize) -> Result<Element, ExiError> {
        let t = self.t;
        let mut g = g;
        let mut s = t
            .grammars
            .get(g as usize)
            .map(|x| x.start)
            .ok_or(ExiError::Unsupported("grammar".into()))?;
        loop {
            let st = t
                .states
                .get(s as usize)
                .ok_or(ExiError::Unsupported("state".into()))?;
            let n = st.prods.len();
            let pos = self.r.pos();
            let code = self.r.bits(width(n + 1))? as usize;
            if trace_on() {
                eprintln!(
                    "bit {pos}: state {s} ({} prods, flags {}) code {code} {:?}",
                    n,
                    st.flags,
                    st.prods.get(code)
                );
            }
            if code < n {
                match st.prods[code] {
                    P::At(q, dt, next) => {
                        let v = self.value(dt)?;
                        e.attrs.push(Attribute {
                            name: qname_of(t, q),
                            value: v,
                        });
                        s = next;
                    }
                    P::AtUri(u, next) => {
                        let local = self.read_local(u as usize)?;
                        let ns = self
                            .names()
                            .uris
                            .get(u as usize)
                            .cloned()
                            .unwrap_or(Cow::Borrowed(""));
                        let v = self.value(global_attr_dt(t, &ns, &local))?;
                        e.attrs.push(Attribute {
                            name: QName { ns, local },
                            value: v,
                        });
                        s = next;
                    }
                    P::AtAny(next) => {
                        let q = self.read_qname()?;
                        let v = self.value(global_attr_dt(t, &q.ns, &q.local))?;
                        e.attrs.push(Attribute { name: q, value: v });
                        s = next;
                    }
                    P::Se(q, cg, next) => {
                        s = next;
                        let c = self.element(qname_of(t, q), cg, depth + 1)?;
                        e.children.push(Node::Element(c));
                    }
                    P::SeUri(u, next) => {
                        let local = self.read_local(u as usize)?;
                        let ns = self
                            .names()
                            .uris
                            .get(u as usize)
                            .cloned()
                            .unwrap_or(Cow::Borrowed(""));
                        let cg = global_grammar(t, &ns, &local);
                        s = next;
                        let c = self.element(QName { ns, local }, cg, depth + 1)?;
                        e.children.push(Node::Element(c));
                    }
                    P::SeAny(next) => {
                        let q = self.read_qname()?;
                        let cg = global_grammar(t, &q.ns, &q.local);
                        s = next;
                        let c = self.element(q, cg, depth + 1)?;
                        e.children.push(Node::Element(c));
                    }
                    P::Ee => return Ok(e),
                    P::Ch(dt, next) => {
                        let v = self.value(dt)?;
                        push_text(&mut e, v);
                        s = next;
                    }
                }
                continue;
            }
            if code > n {
                return Err(ExiError::BadEventCode {
                    code: code as u64,
                    bit: pos,
                });
            }
            let gr = &t.grammars[g as usize];
            let (l, n2) = level2(st, gr);
            let pos2 = self.r.pos();
            let c2 = self.r.bits(width(n2))? as usize;
            let which = *l[..n2].get(c2).ok_or(ExiError::BadEventCode {
                code: c2 as u64,
                bit: pos2,
            })?;
            if trace_on() {
                eprintln!("bit {pos2}: level2 {which:?} of {:?}", &l[..n2]);
            }
            match which {
                L2::Ee => return Ok(e),
                L2::XsiType => {
                    let q = self.read_qname()?;
                    e.attrs.push(Attribute {
                        name: QName::new(XSI_NS, "type"),
                        value: q.clark(),
                    });
                    if let Some(qq) = lookup(t, &q.ns, &q.local)
                        && let Some((_, ng)) = t.named_types.iter().find(|(x, _)| *x == qq)
                    {
                        g = *ng;
                        s = t.grammars[g as usize].start;
                    }
                }
                L2::XsiNil => {
                    let nil = self.r.bits(1)? == 1;
                    e.attrs.push(Attribute {
                        name: QName::new(XSI_NS, "nil"),
                        value: nil.to_string(),
                    });
                    if nil {
                        g = gr.empty;
                        s = t.grammars[g as usize].start;
                    }
                }
                L2::AtAny => {
                    let q = self.read_qname()?;
                    let v = self.value(global_attr_dt(t, &q.ns, &q.local))?;
                    e.attrs.push(Attribute { name: q, value: v });
                }
                L2::AtInvalid => {
                    let pos3 = self.r.pos();
                    // third level: declared attributes, then one for AT(*) [untyped value]
                    let k = self.r.bits(width(gr.attrs.len() + 1))? as usize;
                    let name = match gr.attrs.get(k) {
                        Some((q, _)) => qname_of(t, *q),
                        None if k == gr.attrs.len() => self.read_qname()?,
                        None => {
                            return Err(ExiError::BadEventCode {
                                code: k as u64,
                                bit: pos3,
                            });
                        }
                    };
                    let v = self.value(UNTYPED)?;
                    e.attrs.push(Attribute { name, value: v });
                }
                L2::SeAny => {
                    let q = self.read_qname()?;
                    let cg = global_grammar(t, &q.ns, &q.local);
                    if st.flags & F_START_TAG != 0 {
                        s = gr.content2;
                    }
                    let c = self.element(q, cg, depth + 1)?;
                    e.children.push(Node::Element(c));
                }
                L2::Ch => {
                    let v = self.value(UNTYPED)?;
                    push_text(&mut e, v);
                    if st.flags & F_START_TAG != 0 {
                        s = gr.content2;
                    }
                }
            }
        }
    }

    fn builtin_element(&mut self, mut e: Element, depth: usize) -> Result<Element, ExiError> {
        let mut start = true;
        let mut learned = self.builtin_seen.contains(&e.name);
        if !learned {
            if self.builtin_seen.len() >= 4096 {
                return Err(ExiError::Unsupported(
                    "too many undeclared element names".into(),
                ));
            }
            self.builtin_seen.push(e.name.clone());
        }
        loop {
            let pos = self.r.pos();
            if start && learned && self.r.bits(1)? == 0 {
                // the learned AT(xsi:type) production: QName value, then the type's grammar
                let ty = self.read_qname()?;
                set_xsi_type(&mut e, ty.clark());
                if let Some(qq) = lookup(self.t, &ty.ns, &ty.local)
                    && let Some((_, ng)) = self.t.named_types.iter().find(|(x, _)| *x == qq)
                {
                    return self.element_in(e, *ng, depth);
                }
                continue;
            }
            let ev = if start {
                self.r.bits(2)?
            } else if self.r.bits(1)? == 0 {
                0
            } else {
                2 + self.r.bits(1)?
            };
            match ev {
                0 => return Ok(e),
                1 if start => {
                    let q = self.read_qname()?;
                    if q.ns == XSI_NS && q.local == "type" {
                        let ty = self.read_qname()?;
                        set_xsi_type(&mut e, ty.clark());
                        // the built-in grammar learns AT(xsi:type); after a type the schema
                        // does not know, EXIficient announces xs:anyType through it next
                        learned = true;
                        if let Some(qq) = lookup(self.t, &ty.ns, &ty.local)
                            && let Some((_, ng)) = self.t.named_types.iter().find(|(x, _)| *x == qq)
                        {
                            return self.element_in(e, *ng, depth);
                        }
                        continue;
                    }
                    let v = self.value(global_attr_dt(self.t, &q.ns, &q.local))?;
                    e.attrs.push(Attribute { name: q, value: v });
                }
                2 => {
                    start = false;
                    let q = self.read_qname()?;
                    let cg = global_grammar(self.t, &q.ns, &q.local);
                    let c = self.element(q, cg, depth + 1)?;
                    e.children.push(Node::Element(c));
                }
                3 => {
                    start = false;
                    let v = self.value(UNTYPED)?;
                    push_text(&mut e, v);
                }
                _ => return Err(ExiError::BadEventCode { code: ev, bit: pos }),
            }
        }
    }

    /// Reads a typed value and returns its canonical lexical form.
    fn value(&mut self, dt: u16) -> Result<String, ExiError> {
        let pos = self.r.pos();
        if dt == UNTYPED {
            return read_string(&mut self.r, HARD_CAP);
        }
        let d = self
            .t
            .datatypes
            .get(dt as usize)
            .ok_or(ExiError::Unsupported("datatype".into()))?;
        Ok(match d {
            Dt::String { max_len } => read_string(
                &mut self.r,
                if *max_len > 0 {
                    u64::from(*max_len)
                } else {
                    HARD_CAP
                },
            )?,
            Dt::Boolean => (self.r.bits(1)? == 1).to_string(),
            Dt::Binary { hex, max_len } => {
                let len = self.r.uint()?;
                let max = if *max_len > 0 {
                    u64::from(*max_len)
                } else {
                    HARD_CAP
                };
                if len > max {
                    return Err(ExiError::TooLong { len, max, bit: pos });
                }
                if len * 8 > self.r.remaining_bits() as u64 {
                    return Err(ExiError::Truncated { bit: pos });
                }
                let b = self.r.read_bytes(len as usize)?;
                if *hex {
                    hex::encode_upper(b)
                } else {
                    base64::engine::general_purpose::STANDARD.encode(b)
                }
            }
            Dt::NBit { min, bits } => {
                (i128::from(self.r.bits(*bits)?) + i128::from(*min)).to_string()
            }
            Dt::Unsigned { max } => match max {
                Some(m) if *m <= u128::from(u64::MAX) => {
                    let v = self.r.uint()?;
                    if u128::from(v) > *m {
                        return Err(ExiError::OutOfRange {
                            value: v.to_string(),
                            bit: pos,
                        });
                    }
                    v.to_string()
                }
                _ => crate::big::groups_to_decimal(&self.r.uint_groups(MAX_INT_GROUPS)?),
            },
            Dt::Integer { min, max } => {
                let neg = self.r.bits(1)? == 1;
                if min.is_some() || max.is_some() {
                    let m = self.r.uint()?;
                    let v = if neg {
                        -i128::from(m) - 1
                    } else {
                        i128::from(m)
                    };
                    if min.is_some_and(|x| v < x) || max.is_some_and(|x| v > x) {
                        return Err(ExiError::OutOfRange {
                            value: v.to_string(),
                            bit: pos,
                        });
                    }
                    v.to_string()
                } else {
                    let d = crate::big::groups_to_decimal(&self.r.uint_groups(MAX_INT_GROUPS)?);
                    if neg {
                        format!("-{}", crate::big::decimal_add_one(&d))
                    } else {
                        d
                    }
                }
            }
            Dt::Enum { values } => {
                let i = self.r.bits(width(values.len()))? as usize;
                values
                    .get(i)
                    .ok_or(ExiError::OutOfRange {
                        value: i.to_string(),
                        bit: pos,
                    })?
                    .to_string()
            }
            Dt::Decimal => {
                let neg = self.r.bits(1)? == 1;
                let i = crate::big::groups_to_decimal(&self.r.uint_groups(MAX_INT_GROUPS)?);
                let f: String = crate::big::groups_to_decimal(&self.r.uint_groups(MAX_INT_GROUPS)?)
                    .chars()
                    .rev()
                    .collect();
                format!("{}{i}.{f}", if neg { "-" } else { "" })
            }
            Dt::Float => {
                let m = read_int(&mut self.r)?;
                let e = read_int(&mut self.r)?;
                if e == -(1 << 14) {
                    match m {
                        1 => "INF".into(),
                        -1 => "-INF".into(),
                        _ => "NaN".into(),
                    }
                } else {
                    format!("{m}E{e}")
                }
            }
            Dt::QName => self.read_qname()?.clark(),
        })
    }
}

/// Sets `xsi:type`; a later one (EXIficient's xs:anyType after an unknown type) replaces it.
fn set_xsi_type(e: &mut Element, v: String) {
    e.attrs
        .retain(|a| !(a.name.ns == XSI_NS && a.name.local == "type"));
    e.attrs.push(Attribute {
        name: QName::new(XSI_NS, "type"),
        value: v,
    });
}

fn push_text(e: &mut Element, v: String) {
    if let Some(Node::Text(prev)) = e.children.last_mut() {
        prev.push_str(&v);
    } else {
        e.children.push(Node::Text(v));
    }
}

fn read_int(r: &mut BitReader) -> Result<i64, ExiError> {
    let pos = r.pos();
    let neg = r.bits(1)? == 1;
    let m = r.uint()?;
    let m = i64::try_from(m).map_err(|_| ExiError::IntegerOverflow { bit: pos })?;
    Ok(if neg { -m - 1 } else { m })
}

fn read_string(r: &mut BitReader, max: u64) -> Result<String, ExiError> {
    let pos = r.pos();
    let v = r.uint()?;
    if v < 2 {
        return Err(ExiError::StringTableHit { bit: pos });
    }
    read_chars(r, v - 2, max, pos)
}

fn read_string_raw(r: &mut BitReader, offset: u64, max: u64) -> Result<String, ExiError> {
    let pos = r.pos();
    let v = r.uint()?;
    read_chars(r, v.saturating_sub(offset), max, pos)
}

fn read_chars(r: &mut BitReader, len: u64, max: u64, pos: usize) -> Result<String, ExiError> {
    if len > max {
        return Err(ExiError::TooLong { len, max, bit: pos });
    }
    // every character takes at least one octet: reject before allocating
    if len.saturating_mul(8) > r.remaining_bits() as u64 {
        return Err(ExiError::Truncated { bit: pos });
    }
    let mut s = String::with_capacity(len as usize);
    for _ in 0..len {
        let cpos = r.pos();
        let c = r.uint()?;
        let ch = u32::try_from(c)
            .ok()
            .and_then(char::from_u32)
            .ok_or(ExiError::BadChar { bit: cpos })?;
        s.push(ch);
    }
    Ok(s)
}
