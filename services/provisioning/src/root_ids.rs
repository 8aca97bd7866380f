//! Matching the EV's `ListOfRootCertificateIDs` against V2G roots (iso15118-notes §3.2).
//!
//! A `RootCertificateID` is an issuer name plus a serial number. EVs write the name in
//! several ways — RFC 4514 order (`DC=V2G,C=DE,O=…,CN=…`), certificate order, OpenSSL's
//! `/C=DE/O=…` form, Josev's `<Name(CN=…,O=…)>` — so names are parsed into a multiset of
//! (attribute, normalised value) pairs and compared without regard to order. The serial is an
//! unbounded xs:integer; it is compared as a magnitude.

use openssl::bn::BigNum;
use pnc_pki::Certificate;

/// Attribute type names and OIDs EVs use, mapped to the dotted OID.
fn attribute_oid(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "cn" | "commonname" | "2.5.4.3" => "2.5.4.3",
        "c" | "countryname" | "2.5.4.6" => "2.5.4.6",
        "o" | "organizationname" | "2.5.4.10" => "2.5.4.10",
        "ou" | "organizationalunitname" | "2.5.4.11" => "2.5.4.11",
        "dc" | "domaincomponent" | "0.9.2342.19200300.100.1.25" => "0.9.2342.19200300.100.1.25",
        "l" | "localityname" | "2.5.4.7" => "2.5.4.7",
        "st" | "s" | "stateorprovincename" | "2.5.4.8" => "2.5.4.8",
        "serialnumber" | "2.5.4.5" => "2.5.4.5",
        "emailaddress" | "e" | "1.2.840.113549.1.9.1" => "1.2.840.113549.1.9.1",
        _ => return None,
    })
}

fn normalise_value(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Splits on unescaped separators, dropping RFC 4514 backslash escapes and quotes.
fn split_unescaped(text: &str, separators: &[char]) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    let mut quoted = false;
    while let Some(character) = chars.next() {
        match character {
            '\\' => {
                if let Some(escaped) = chars.next() {
                    current.push(escaped);
                }
            }
            '"' => quoted = !quoted,
            c if !quoted && separators.contains(&c) => {
                parts.push(std::mem::take(&mut current));
            }
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// The (OID, normalised value) pairs of an issuer string, sorted; `None` when it does not
/// parse as a name.
pub fn parse_issuer_name(text: &str) -> Option<Vec<(&'static str, String)>> {
    let mut trimmed = text.trim();
    // Josev: `<Name(CN=V2GRootCA,O=Switch,C=UK,DC=V2G)>` (Python's repr of a Name).
    if let Some(inner) = trimmed
        .strip_prefix("<Name(")
        .and_then(|rest| rest.strip_suffix(")>"))
    {
        trimmed = inner;
    }
    // OpenSSL oneline: `/C=DE/O=pnc/CN=Root`.
    let parts = if let Some(oneline) = trimmed.strip_prefix('/') {
        split_unescaped(oneline, &['/'])
    } else {
        split_unescaped(trimmed, &[',', ';', '+'])
    };
    let mut attributes = Vec::new();
    for part in parts {
        if part.trim().is_empty() {
            continue;
        }
        let (name, value) = part.split_once('=')?;
        attributes.push((attribute_oid(name)?, normalise_value(value)));
    }
    if attributes.is_empty() {
        return None;
    }
    attributes.sort();
    Some(attributes)
}

fn name_attributes(certificate: &Certificate) -> Vec<(&'static str, String)> {
    let mut attributes: Vec<_> = certificate
        .subject()
        .rdns()
        .iter()
        .flatten()
        .filter_map(|attribute| {
            attribute_oid(&attribute.oid).map(|oid| (oid, normalise_value(&attribute.value)))
        })
        .collect();
    attributes.sort();
    attributes
}

/// The serial's magnitude, big-endian without leading zeros; `None` when not an integer.
pub fn parse_serial(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
    if digits.is_empty() || digits.len() > 100 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = BigNum::from_dec_str(digits).ok()?;
    Some(number.to_vec())
}

/// Whether the EV's `RootCertificateID` names `root`.
pub fn names_root(issuer_name: &str, serial_number: &str, root: &Certificate) -> bool {
    let Some(serial) = parse_serial(serial_number) else {
        return false;
    };
    let root_serial: &[u8] = root.serial();
    let root_serial = match root_serial.iter().position(|byte| *byte != 0) {
        Some(first) => &root_serial[first..],
        None => &[],
    };
    if serial != root_serial {
        return false;
    }
    match parse_issuer_name(issuer_name) {
        Some(attributes) => attributes == name_attributes(root),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnc_pki::{DevCert, DevPki, DevPkiOptions};

    fn decimal_serial(certificate: &Certificate) -> String {
        BigNum::from_slice(certificate.serial())
            .expect("bn")
            .to_dec_str()
            .expect("dec")
            .to_string()
    }

    #[test]
    fn ok_every_issuer_spelling_names_the_root() {
        let pki = DevPki::generate(&DevPkiOptions {
            ocsp_signers: false,
            ..DevPkiOptions::default()
        })
        .expect("dev pki");
        let root = pki.certificate(DevCert::V2gRoot);
        let serial = decimal_serial(root);
        for spelling in [
            "CN=pnc V2G Root CA,O=pnc dev,C=DE,DC=V2G",
            "DC=V2G,C=DE,O=pnc dev,CN=pnc V2G Root CA",
            "DC=V2G, C=DE, O=pnc dev, CN=pnc V2G Root CA",
            "<Name(CN=pnc V2G Root CA,O=pnc dev,C=DE,DC=V2G)>",
            "/DC=V2G/C=DE/O=pnc dev/CN=pnc V2G Root CA",
            "commonName=PNC V2G ROOT CA, organizationName=pnc dev, countryName=de, domainComponent=v2g",
            "2.5.4.3=pnc V2G Root CA,2.5.4.10=pnc dev,2.5.4.6=DE,0.9.2342.19200300.100.1.25=V2G",
        ] {
            assert!(names_root(spelling, &serial, root), "ok/{spelling}");
        }
    }

    #[test]
    fn fail_other_names_serials_and_garbage() {
        let pki = DevPki::generate(&DevPkiOptions {
            ocsp_signers: false,
            ..DevPkiOptions::default()
        })
        .expect("dev pki");
        let root = pki.certificate(DevCert::V2gRoot);
        let serial = decimal_serial(root);
        let name = "CN=pnc V2G Root CA,O=pnc dev,C=DE,DC=V2G";
        assert!(!names_root(name, "12345", root), "fail/other-serial");
        assert!(
            !names_root("CN=pnc MO Root CA,O=pnc dev,C=DE,DC=V2G", &serial, root),
            "fail/other-name"
        );
        assert!(
            !names_root("CN=pnc V2G Root CA,O=pnc dev,C=DE", &serial, root),
            "fail/missing-attribute"
        );
        assert!(!names_root("garbage", &serial, root), "fail/garbage");
        assert!(!names_root(name, "12a", root), "fail/serial-not-a-number");
        assert!(!names_root(name, "", root), "fail/empty-serial");
    }

    #[test]
    fn ok_rfc4514_escapes_and_big_serials() {
        assert_eq!(
            parse_issuer_name(r"CN=a\,b,O=x").expect("parses"),
            vec![
                ("2.5.4.10", "x".to_string()),
                ("2.5.4.3", "a,b".to_string())
            ]
        );
        // Hubject's V2G Root CA G2 has a 15-byte serial (notes §3.2).
        let big = "123456789012345678901234567890123456";
        assert_eq!(
            parse_serial(big).expect("parses"),
            BigNum::from_dec_str(big).expect("bn").to_vec()
        );
    }
}
