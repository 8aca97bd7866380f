//! Just enough DER for OCSP (RFC 6960) and CRLs (RFC 5280): a bounds-checked reader for the
//! structures pnc parses and a writer for the ones it builds. Only low tag numbers occur in
//! these structures, so tags are single bytes.

use time::OffsetDateTime;

pub const TAG_BOOLEAN: u8 = 0x01;
pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_BIT_STRING: u8 = 0x03;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_NULL: u8 = 0x05;
pub const TAG_OID: u8 = 0x06;
pub const TAG_ENUMERATED: u8 = 0x0a;
pub const TAG_UTC_TIME: u8 = 0x17;
pub const TAG_GENERALIZED_TIME: u8 = 0x18;
pub const TAG_SEQUENCE: u8 = 0x30;

/// Context-specific tag `[n]`, constructed.
pub const fn explicit(number: u8) -> u8 {
    0xa0 | number
}

/// Context-specific tag `[n]`, primitive.
pub const fn implicit(number: u8) -> u8 {
    0x80 | number
}

/// The input is not the DER that was expected; says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

/// One element: its tag, its content, and its whole encoding (tag and length included).
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub encoded: &'a [u8],
}

impl<'a> Element<'a> {
    /// The content of a constructed element, to read its children.
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.content)
    }
}

/// Reads consecutive elements from a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// The next element, whatever its tag.
    pub fn read_any(&mut self) -> Result<Element<'a>, DerError> {
        let tag = *self.data.first().ok_or(DerError("unexpected end"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("high tag numbers are not used here"));
        }
        let first_length = *self.data.get(1).ok_or(DerError("missing length"))?;
        let (length, header) = if first_length < 0x80 {
            (usize::from(first_length), 2)
        } else {
            let count = usize::from(first_length & 0x7f);
            if count == 0 || count > 4 {
                return Err(DerError("unsupported length"));
            }
            let bytes = self
                .data
                .get(2..2 + count)
                .ok_or(DerError("truncated length"))?;
            if bytes[0] == 0 {
                return Err(DerError("non-minimal length"));
            }
            let length = bytes
                .iter()
                .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
            if length < 0x80 {
                return Err(DerError("non-minimal length"));
            }
            (length, 2 + count)
        };
        let end = header
            .checked_add(length)
            .filter(|end| *end <= self.data.len())
            .ok_or(DerError("length beyond the input"))?;
        let element = Element {
            tag,
            content: &self.data[header..end],
            encoded: &self.data[..end],
        };
        self.data = &self.data[end..];
        Ok(element)
    }

    /// The next element, which must carry `tag`.
    pub fn read(&mut self, tag: u8, what: &'static str) -> Result<Element<'a>, DerError> {
        let element = self.read_any()?;
        if element.tag != tag {
            return Err(DerError(what));
        }
        Ok(element)
    }

    /// The next element if it carries `tag`.
    pub fn read_optional(&mut self, tag: u8) -> Result<Option<Element<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read_any().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless everything was read.
    pub fn finish(&self, what: &'static str) -> Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(DerError(what))
        }
    }
}

/// Parses a whole input that must be exactly one element with `tag`.
pub fn parse_single<'a>(
    data: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<Element<'a>, DerError> {
    let mut reader = Reader::new(data);
    let element = reader.read(tag, what)?;
    reader.finish("trailing bytes")?;
    Ok(element)
}

/// Appends the DER length of `length` bytes of content.
fn push_length(out: &mut Vec<u8>, length: usize) {
    if length < 0x80 {
        out.push(length as u8);
        return;
    }
    let bytes = length.to_be_bytes();
    let first = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len() - 1);
    out.push(0x80 | (bytes.len() - first) as u8);
    out.extend_from_slice(&bytes[first..]);
}

/// One element from its tag and content.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A constructed element from already-encoded children.
pub fn constructed(tag: u8, children: &[&[u8]]) -> Vec<u8> {
    let content: Vec<u8> = children.concat();
    tlv(tag, &content)
}

pub fn sequence(children: &[&[u8]]) -> Vec<u8> {
    constructed(TAG_SEQUENCE, children)
}

/// INTEGER from an unsigned big-endian magnitude (a zero byte is added when the high bit
/// is set, leading zeros are dropped).
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    tlv(TAG_INTEGER, &integer_content_from_magnitude(magnitude))
}

/// The minimal two's-complement content of a non-negative INTEGER.
pub fn integer_content_from_magnitude(magnitude: &[u8]) -> Vec<u8> {
    let first = magnitude
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(magnitude.len());
    let trimmed = &magnitude[first..];
    if trimmed.is_empty() {
        return vec![0];
    }
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    content
}

/// The magnitude of a non-negative INTEGER content (sign padding dropped).
pub fn magnitude_from_integer_content(content: &[u8]) -> &[u8] {
    let first = content
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(content.len());
    &content[first..]
}

pub fn enumerated(value: u8) -> Vec<u8> {
    tlv(TAG_ENUMERATED, &[value])
}

pub fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, content)
}

/// BIT STRING with no unused bits.
pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(TAG_BIT_STRING, &content)
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.2: no fractions).
pub fn generalized_time(unix_seconds: i64) -> Vec<u8> {
    let time =
        OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    tlv(TAG_GENERALIZED_TIME, text.as_bytes())
}

/// UTCTime for years 1950–2049, GeneralizedTime otherwise (RFC 5280 §5.1.2.4).
pub fn x509_time(unix_seconds: i64) -> Vec<u8> {
    let time =
        OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if (1950..2050).contains(&time.year()) {
        let text = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            time.year() % 100,
            u8::from(time.month()),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        );
        tlv(TAG_UTC_TIME, text.as_bytes())
    } else {
        generalized_time(unix_seconds)
    }
}

/// Reads a GeneralizedTime content (`YYYYMMDDHHMMSS[.fff]Z`) as unix seconds.
pub fn parse_generalized_time(content: &[u8]) -> Result<i64, DerError> {
    const BAD: DerError = DerError("bad GeneralizedTime");
    let text = std::str::from_utf8(content).map_err(|_| BAD)?;
    let text = text.strip_suffix('Z').ok_or(BAD)?;
    let whole = text.split('.').next().ok_or(BAD)?;
    if whole.len() != 14 || !whole.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(BAD);
    }
    let number = |range: std::ops::Range<usize>| -> Result<u32, DerError> {
        whole[range].parse::<u32>().map_err(|_| BAD)
    };
    let month = time::Month::try_from(number(4..6)? as u8).map_err(|_| BAD)?;
    let date = time::Date::from_calendar_date(number(0..4)? as i32, month, number(6..8)? as u8)
        .map_err(|_| BAD)?;
    let time = time::Time::from_hms(
        number(8..10)? as u8,
        number(10..12)? as u8,
        number(12..14)? as u8,
    )
    .map_err(|_| BAD)?;
    Ok(date.with_time(time).assume_utc().unix_timestamp())
}

/// Well-known object identifiers, as DER content bytes.
pub mod oid {
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    /// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
    pub const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
    /// id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
    pub const OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
    pub const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub const ECDSA_WITH_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    /// id-ce-cRLNumber, id-ce-cRLReasons, id-ce-authorityKeyIdentifier (RFC 5280).
    pub const CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
    pub const CRL_REASON: &[u8] = &[0x55, 0x1d, 0x15];
    pub const AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x23];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_lengths_round_trip() {
        for length in [0usize, 1, 127, 128, 255, 256, 65_535, 70_000] {
            let content = vec![7u8; length];
            let encoded = tlv(TAG_OCTET_STRING, &content);
            let element = parse_single(&encoded, TAG_OCTET_STRING, "octet string").unwrap();
            assert_eq!(element.content.len(), length);
        }
    }

    #[test]
    fn fail_truncated_and_oversized_lengths() {
        assert!(Reader::new(&[0x30]).read_any().is_err());
        assert!(Reader::new(&[0x30, 0x05, 0x01]).read_any().is_err());
        assert!(
            Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1])
                .read_any()
                .is_err()
        );
        assert!(
            Reader::new(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0])
                .read_any()
                .is_err()
        );
        assert!(Reader::new(&[0x1f, 0x01, 0x00]).read_any().is_err());
    }

    #[test]
    fn ok_integers_and_times() {
        assert_eq!(integer_content_from_magnitude(&[0x80]), vec![0, 0x80]);
        assert_eq!(integer_content_from_magnitude(&[0, 0, 0x7f]), vec![0x7f]);
        assert_eq!(integer_content_from_magnitude(&[]), vec![0]);
        assert_eq!(magnitude_from_integer_content(&[0, 0x80]), &[0x80]);
        let encoded = generalized_time(1_700_000_000);
        let element = parse_single(&encoded, TAG_GENERALIZED_TIME, "time").unwrap();
        assert_eq!(
            parse_generalized_time(element.content).unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_generalized_time(b"20231114221320.123Z").unwrap(),
            1_700_000_000
        );
        assert!(parse_generalized_time(b"2023111422132Z").is_err());
        assert!(parse_generalized_time(b"20231314221320Z").is_err());
    }
}
