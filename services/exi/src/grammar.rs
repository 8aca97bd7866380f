//! Grammar table types shared by the generated tables and the codec.

/// A qualified name as indices into the pre-populated string tables (URI, local name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QN {
    pub uri: u16,
    pub local: u16,
}

impl QN {
    pub const fn new(uri: u16, local: u16) -> Self {
        QN { uri, local }
    }
}

/// Datatype index meaning "untyped" (string) content.
pub const UNTYPED: u16 = u16::MAX;

/// Datatype representations of EXI 1.0 §7.1 used by the schemas.
#[derive(Debug)]
pub enum Dt {
    /// String (§7.1.10); `max_len` 0 = no maxLength facet.
    String {
        max_len: u32,
    },
    Boolean,
    /// base64Binary / hexBinary (§7.1.1)
    Binary {
        hex: bool,
        max_len: u32,
    },
    /// n-bit unsigned integer with offset (§7.1.9, bounded range below 4096)
    NBit {
        min: i64,
        bits: u8,
    },
    /// Unsigned Integer (§7.1.6) for types with a non-negative lower bound
    Unsigned {
        max: Option<u128>,
    },
    /// Integer (§7.1.5)
    Integer {
        min: Option<i128>,
        max: Option<i128>,
    },
    /// Enumeration (§7.2): n-bit index into `values`
    Enum {
        values: &'static [&'static str],
    },
    Decimal,
    Float,
    QName,
}

/// A production of a normalised schema-informed grammar; event code = index in the state.
#[derive(Debug)]
pub enum P {
    /// AT(qname) [schema-typed value] -> next state
    At(QN, u16, u32),
    /// AT(uri:*)
    AtUri(u16, u32),
    /// AT(*)
    AtAny(u32),
    /// SE(qname) with the child's grammar -> next state
    Se(QN, u32, u32),
    /// SE(uri:*)
    SeUri(u16, u32),
    /// SE(*)
    SeAny(u32),
    Ee,
    /// CH [schema-typed value] (datatype or UNTYPED for mixed content)
    Ch(u16, u32),
}

/// State flags.
pub const F_FIRST: u8 = 1;
pub const F_START_TAG: u8 = 2;
pub const F_HAS_EE: u8 = 4;

#[derive(Debug)]
pub struct State {
    pub flags: u8,
    pub prods: &'static [P],
}

/// The grammar of a type (Element_i of §8.5.4.1.3) with its TypeEmpty twin.
#[derive(Debug)]
pub struct Grammar {
    pub start: u32,
    /// Content state entered after `SE(*)` / `CH [untyped]` in a start tag (§8.5.4.4.1).
    pub content2: u32,
    /// TypeEmpty grammar (after xsi:nil="true").
    pub empty: u32,
    /// Declared attributes (for `AT(qname) [untyped value]`, third level).
    pub attrs: &'static [(QN, u16)],
}

#[derive(Debug)]
pub struct SchemaTables {
    pub name: &'static str,
    pub uris: &'static [&'static str],
    pub local_names: &'static [&'static [&'static str]],
    pub datatypes: &'static [Dt],
    pub grammars: &'static [Grammar],
    pub states: &'static [State],
    pub doc_elements: &'static [(QN, u32)],
    pub frag_elements: &'static [(QN, u32)],
    pub global_attrs: &'static [(QN, u16)],
    pub named_types: &'static [(QN, u32)],
}
