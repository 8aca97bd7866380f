//! Error types.

/// EXI encoding/decoding error; decoding errors carry the bit position in the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExiError {
    #[error("stream truncated at bit {bit}")]
    Truncated { bit: usize },
    #[error("unsupported EXI header byte 0x{byte:02X} (ISO 15118 uses 0x80)")]
    BadHeader { byte: u8 },
    #[error("event code {code} not allowed here at bit {bit}")]
    BadEventCode { code: u64, bit: usize },
    #[error("integer too large at bit {bit}")]
    IntegerOverflow { bit: usize },
    #[error("value {value} out of range for its type at bit {bit}")]
    OutOfRange { value: String, bit: usize },
    #[error("length {len} exceeds the limit {max} at bit {bit}")]
    TooLong { len: u64, max: u64, bit: usize },
    #[error("invalid character code point at bit {bit}")]
    BadChar { bit: usize },
    #[error("string table hit at bit {bit}, but the ISO 15118 profile has no value string table")]
    StringTableHit { bit: usize },
    #[error("unknown compact identifier {id} at bit {bit}")]
    BadIdentifier { id: u64, bit: usize },
    #[error("nesting deeper than {max} at bit {bit}")]
    TooDeep { max: usize, bit: usize },
    #[error("trailing data after end of document at bit {bit}")]
    Trailing { bit: usize },
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("unexpected message structure: {0}")]
    Structure(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
}
