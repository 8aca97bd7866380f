//! A minimal DER writer: enough to build a TBSCertificate byte for byte.
//!
//! Writing DER by hand keeps the TBS deterministic (the same template always gives the same bytes)
//! and lets any [`crate::Signer`] sign it, including a future PKCS#11 one that never exposes an
//! OpenSSL key object.

use time::OffsetDateTime;

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_IA5_STRING: u8 = 0x16;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;

/// Tag, length, value.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let len_bytes = len.to_be_bytes();
        let first_non_zero = len_bytes
            .iter()
            .position(|byte| *byte != 0)
            .unwrap_or(len_bytes.len() - 1);
        let significant = &len_bytes[first_non_zero..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

pub(crate) fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SET, &parts.concat())
}

/// Context-specific constructed tag `[n]` (explicit tagging).
pub(crate) fn explicit(tag_number: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | tag_number, content)
}

/// Context-specific primitive tag `[n]` (implicit tagging of a primitive type).
pub(crate) fn implicit_primitive(tag_number: u8, content: &[u8]) -> Vec<u8> {
    tlv(0x80 | tag_number, content)
}

pub(crate) fn boolean(value: bool) -> Vec<u8> {
    tlv(TAG_BOOLEAN, &[if value { 0xff } else { 0x00 }])
}

pub(crate) fn null() -> Vec<u8> {
    tlv(TAG_NULL, &[])
}

/// A non-negative INTEGER from big-endian magnitude bytes, minimally encoded.
pub(crate) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let first_non_zero = magnitude.iter().position(|byte| *byte != 0);
    let trimmed: &[u8] = match first_non_zero {
        Some(index) => &magnitude[index..],
        None => &[0],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(TAG_INTEGER, &content)
}

pub(crate) fn small_integer(value: u64) -> Vec<u8> {
    unsigned_integer(&value.to_be_bytes())
}

pub(crate) fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, content)
}

/// BIT STRING with zero unused bits.
pub(crate) fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(content.len() + 1);
    value.push(0);
    value.extend_from_slice(content);
    tlv(TAG_BIT_STRING, &value)
}

/// Named-bit BIT STRING (KeyUsage): bit 0 is the most significant bit of the first byte;
/// trailing zero bits are removed as DER requires (X.690 11.2.2).
pub(crate) fn named_bits(bits: &[u8]) -> Vec<u8> {
    let highest = bits.iter().copied().max();
    let Some(highest) = highest else {
        return tlv(TAG_BIT_STRING, &[0]);
    };
    let byte_count = usize::from(highest / 8) + 1;
    let mut bytes = vec![0u8; byte_count];
    for bit in bits {
        bytes[usize::from(bit / 8)] |= 0x80 >> (bit % 8);
    }
    let last = bytes[byte_count - 1];
    let unused = last.trailing_zeros() as u8;
    let mut value = Vec::with_capacity(byte_count + 1);
    value.push(unused);
    value.extend_from_slice(&bytes);
    tlv(TAG_BIT_STRING, &value)
}

/// OBJECT IDENTIFIER from its arcs.
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    tlv(TAG_OID, &oid_content(arcs))
}

pub(crate) fn oid_content(arcs: &[u64]) -> Vec<u8> {
    let mut content = Vec::new();
    if arcs.len() < 2 {
        return content;
    }
    encode_base128(&mut content, arcs[0] * 40 + arcs[1]);
    for arc in &arcs[2..] {
        encode_base128(&mut content, *arc);
    }
    content
}

fn encode_base128(out: &mut Vec<u8>, mut value: u64) {
    let mut groups = [0u8; 10];
    let mut count = 0;
    loop {
        groups[count] = (value & 0x7f) as u8;
        count += 1;
        value >>= 7;
        if value == 0 {
            break;
        }
    }
    for index in (0..count).rev() {
        let continuation = if index == 0 { 0 } else { 0x80 };
        out.push(groups[index] | continuation);
    }
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always in UTC with seconds.
pub(crate) fn time(value: OffsetDateTime) -> Vec<u8> {
    let utc = value.to_offset(time::UtcOffset::UTC);
    let year = utc.year();
    if (1950..2050).contains(&year) {
        let text = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            year % 100,
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        );
        tlv(TAG_UTC_TIME, text.as_bytes())
    } else {
        let text = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            year,
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        );
        tlv(TAG_GENERALIZED_TIME, text.as_bytes())
    }
}

/// Object identifiers pnc writes, as arcs.
pub(crate) mod oids {
    pub const ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
    pub const ECDSA_WITH_SHA512: &[u64] = &[1, 2, 840, 10045, 4, 3, 4];
    pub const COMMON_NAME: &[u64] = &[2, 5, 4, 3];
    pub const COUNTRY: &[u64] = &[2, 5, 4, 6];
    pub const ORGANIZATION: &[u64] = &[2, 5, 4, 10];
    pub const DOMAIN_COMPONENT: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 25];
    pub const BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
    pub const KEY_USAGE: &[u64] = &[2, 5, 29, 15];
    pub const EXTENDED_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
    pub const SUBJECT_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 14];
    pub const AUTHORITY_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 35];
    pub const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
    pub const CRL_DISTRIBUTION_POINTS: &[u64] = &[2, 5, 29, 31];
    pub const AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
    pub const AD_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
    pub const OCSP_NOCHECK: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_values() {
        assert_eq!(
            oid(oids::ECDSA_WITH_SHA256),
            hex::decode("06082a8648ce3d040302").unwrap()
        );
        assert_eq!(
            oid(oids::DOMAIN_COMPONENT),
            hex::decode("060a0992268993f22c640119").unwrap()
        );
        assert_eq!(
            unsigned_integer(&[0x00, 0x80]),
            vec![0x02, 0x02, 0x00, 0x80]
        );
        assert_eq!(unsigned_integer(&[0, 0]), vec![0x02, 0x01, 0x00]);
        // digitalSignature(0) + keyAgreement(4): 03 02 03 88
        assert_eq!(named_bits(&[0, 4]), vec![0x03, 0x02, 0x03, 0x88]);
        // keyCertSign(5) + cRLSign(6): 03 02 01 06
        assert_eq!(named_bits(&[5, 6]), vec![0x03, 0x02, 0x01, 0x06]);
        let long = tlv(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
