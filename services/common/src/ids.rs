//! The identifiers of Plug & Charge as validated newtypes (iso15118-notes §12, OPCP
//! `05_handling-of-ids.md`). Parse once at the edge; past it, an [`Emaid`] or a [`Pcid`]
//! can only hold a well-formed value.
//!
//! - [`Emaid`]: upper case without separators, 14 characters or 15 with a check digit, in
//!   the form the eMSP registered; [`Emaid::lookup_key`] (the first 14 characters) makes
//!   every equivalent spelling compare equal.
//! - [`Pcid`]: 17 or 18 alphanumerics, kept as received, compared case-insensitively.
//! - [`Wmi`], [`ProviderId`], [`OperatorId`]: the scopes of OEM, eMSP and CPO clients.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use pnc_proto::error::PncError;

/// Why an identifier is refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "eMAID `{0}` is malformed: expected country (2 letters), provider (3), instance (9) \
         and an optional check digit, e.g. DE-PNC-C00000001-X"
    )]
    MalformedEmaid(String),
    #[error("eMAID `{value}` has check digit `{found}`, the eMI3 check digit is `{expected}`")]
    WrongCheckDigit {
        value: String,
        found: char,
        expected: char,
    },
    #[error("PCID `{0}` is malformed: expected 17 or 18 letters or digits")]
    MalformedPcid(String),
    #[error("WMI `{0}` is malformed: expected 3 letters or digits")]
    MalformedWmi(String),
    #[error(
        "provider ID `{0}` is malformed: expected a country code and 3 characters, e.g. DE-PNC"
    )]
    MalformedProviderId(String),
    #[error(
        "operator ID `{0}` is malformed: expected a country code and 3 characters, e.g. DE*PNC"
    )]
    MalformedOperatorId(String),
}

impl From<IdError> for PncError {
    fn from(error: IdError) -> PncError {
        PncError::invalid(error.to_string())
    }
}

/// Echoes of malformed input are cut so an error message stays small.
fn shown(input: &str) -> String {
    input.chars().take(40).collect()
}

fn is_upper_alphanumeric(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit()
}

/// eMAID in the canonical wire form: 14 characters (country 2 letters, provider 3, instance 9)
/// plus an optional check digit, upper case, no separators.
pub fn is_canonical_emaid(value: &str) -> bool {
    let bytes = value.as_bytes();
    (14..=15).contains(&bytes.len())
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..].iter().copied().all(is_upper_alphanumeric)
}

/// PCID syntax: 17 or 18 ASCII alphanumerics (WMI 3 + 14 + optional check character).
pub fn is_pcid(value: &str) -> bool {
    (17..=18).contains(&value.len()) && value.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

/// The eMI3 character values (iso15118-notes §12.2): q1 = v & 1, q2 = (v >> 1) & 1 over
/// GF(2), r1 = (v >> 2) & 3, r2 = v >> 4 over GF(3).
fn check_digit_value(character: u8) -> Option<u8> {
    const VALUES: [u8; 36] = [
        0, 16, 32, 4, 20, 36, 8, 24, 40, 2, // 0-9
        18, 34, 6, 22, 38, 10, 26, 42, 1, 17, 33, 5, 21, 37, 9, 25, 41, 3, 19, 35, 7, 23, 39, 11,
        27, 43, // A-Z
    ];
    match character.to_ascii_uppercase() {
        digit @ b'0'..=b'9' => Some(VALUES[usize::from(digit - b'0')]),
        letter @ b'A'..=b'Z' => Some(VALUES[10 + usize::from(letter - b'A')]),
        _ => None,
    }
}

fn check_digit_character(value: u8) -> Option<char> {
    (b'0'..=b'9')
        .chain(b'A'..=b'Z')
        .find(|character| check_digit_value(*character) == Some(value))
        .map(char::from)
}

/// The eMI3 / ISO 15118-2 Annex H check digit of the first 14 eMAID characters
/// (iso15118-notes §12.2); `None` unless given exactly 14 letters or digits.
pub fn emaid_check_digit(first_14: &str) -> Option<char> {
    let bytes = first_14.as_bytes();
    if bytes.len() != 14 {
        return None;
    }
    type Matrix = [[u32; 2]; 2];
    let times = |vector: [u32; 2], matrix: Matrix, modulus: u32| {
        [
            (vector[0] * matrix[0][0] + vector[1] * matrix[1][0]) % modulus,
            (vector[0] * matrix[0][1] + vector[1] * matrix[1][1]) % modulus,
        ]
    };
    const P1: Matrix = [[0, 1], [1, 1]];
    const P2: Matrix = [[0, 1], [1, 2]];
    // −P2^(−15) over GF(3).
    const MINUS_P2_INVERSE_15: Matrix = [[0, 2], [2, 1]];
    let mut t1 = [0u32; 2];
    let mut t2 = [0u32; 2];
    for (index, character) in bytes.iter().enumerate() {
        let value = u32::from(check_digit_value(*character)?);
        let mut q = [value & 1, (value >> 1) & 1];
        let mut r = [(value >> 2) & 3, value >> 4];
        // Row vector × P^(index + 1).
        for _ in 0..=index {
            q = times(q, P1, 2);
            r = times(r, P2, 3);
        }
        t1 = [(t1[0] + q[0]) % 2, (t1[1] + q[1]) % 2];
        t2 = [(t2[0] + r[0]) % 3, (t2[1] + r[1]) % 3];
    }
    let t2 = times(t2, MINUS_P2_INVERSE_15, 3);
    let wanted = t1[0] | (t1[1] << 1) | (t2[0] << 2) | (t2[1] << 4);
    check_digit_character(u8::try_from(wanted).ok()?)
}

/// An e-Mobility Account Identifier, upper case without separators, 14 characters or 15 with
/// a check digit, as its eMSP registered it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Emaid(String);

impl Emaid {
    /// Accepts any human spelling (`de-pnc-c00000001-x`, `DEPNCC00000001X`): hyphens and
    /// `*` removed, upper-cased. The 15th character is not checked; see [`Emaid::parse_checked`].
    pub fn parse(input: &str) -> Result<Emaid, IdError> {
        let compact: String = input
            .trim()
            .chars()
            .filter(|character| *character != '-' && *character != '*')
            .collect::<String>()
            .to_ascii_uppercase();
        if !is_canonical_emaid(&compact) {
            return Err(IdError::MalformedEmaid(shown(input)));
        }
        Ok(Emaid(compact))
    }

    /// [`Emaid::parse`], and with `enforce_check_digit` a 15th character must be the eMI3
    /// check digit (`config.registry.enforce_emaid_check_digit`; off by default because many
    /// test identifiers carry a 15th character that is not one, notes §12.2).
    pub fn parse_checked(input: &str, enforce_check_digit: bool) -> Result<Emaid, IdError> {
        let emaid = Emaid::parse(input)?;
        if enforce_check_digit && let Some(found) = emaid.check_digit() {
            let expected = emaid.computed_check_digit();
            if expected != found {
                return Err(IdError::WrongCheckDigit {
                    value: emaid.0,
                    found,
                    expected,
                });
            }
        }
        Ok(emaid)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Country, provider and instance: the 14 characters every equivalent form shares.
    pub fn lookup_key(&self) -> &str {
        &self.0[..14]
    }

    /// The 15th character, if the eMSP registered one.
    pub fn check_digit(&self) -> Option<char> {
        self.0.chars().nth(14)
    }

    /// The eMI3 check digit of the first 14 characters.
    pub fn computed_check_digit(&self) -> char {
        // Parsing guarantees 14 upper-case letters or digits, all of which have a value.
        emaid_check_digit(self.lookup_key()).unwrap_or('0')
    }

    /// The eMSP scope: country code and provider ID (`DEPNC`).
    pub fn provider_id(&self) -> ProviderId {
        ProviderId(self.0[..5].to_string())
    }

    /// Whether `other` names the same account (with or without check digit).
    pub fn same_account(&self, other: &Emaid) -> bool {
        self.lookup_key() == other.lookup_key()
    }
}

impl fmt::Display for Emaid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl FromStr for Emaid {
    type Err = IdError;
    fn from_str(input: &str) -> Result<Emaid, IdError> {
        Emaid::parse(input)
    }
}

/// A Provisioning Certificate ID: the CN of an OEM provisioning certificate. Kept as
/// received (mixed case occurs: `hubUsEaTest000003`), compared case-insensitively.
#[derive(Debug, Clone, Eq)]
pub struct Pcid(String);

impl Pcid {
    pub fn parse(input: &str) -> Result<Pcid, IdError> {
        let trimmed = input.trim();
        if !is_pcid(trimmed) {
            return Err(IdError::MalformedPcid(shown(input)));
        }
        Ok(Pcid(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Upper case: the form stored for look-ups.
    pub fn lookup_key(&self) -> String {
        self.0.to_ascii_uppercase()
    }

    /// The OEM scope: the first three characters.
    pub fn wmi(&self) -> Wmi {
        Wmi(self.0[..3].to_ascii_uppercase())
    }
}

impl PartialEq for Pcid {
    fn eq(&self, other: &Pcid) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Hash for Pcid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.lookup_key().hash(state);
    }
}

impl fmt::Display for Pcid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl FromStr for Pcid {
    type Err = IdError;
    fn from_str(input: &str) -> Result<Pcid, IdError> {
        Pcid::parse(input)
    }
}

/// World Manufacturer Identifier: the first three PCID characters, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Wmi(String);

impl Wmi {
    pub fn parse(input: &str) -> Result<Wmi, IdError> {
        let trimmed = input.trim();
        if trimmed.len() != 3 || !trimmed.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return Err(IdError::MalformedWmi(shown(input)));
        }
        Ok(Wmi(trimmed.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Wmi {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Country code (2 letters) and a 3-character party ID, separators removed: `DE-PNC`,
/// `DE*PNC` and `depnc` are all `DEPNC`.
fn parse_party(input: &str) -> Option<String> {
    let compact: String = input
        .trim()
        .chars()
        .filter(|character| *character != '-' && *character != '*')
        .collect::<String>()
        .to_ascii_uppercase();
    let bytes = compact.as_bytes();
    let valid = bytes.len() == 5
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..].iter().copied().all(is_upper_alphanumeric);
    valid.then_some(compact)
}

/// An eMSP's scope: the eMAID prefix of country code and provider ID (`DEPNC`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(String);

impl ProviderId {
    pub fn parse(input: &str) -> Result<ProviderId, IdError> {
        parse_party(input)
            .map(ProviderId)
            .ok_or_else(|| IdError::MalformedProviderId(shown(input)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A CPO's scope: country code and operator ID; `DE*PNC` and `DEPNC` are the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperatorId(String);

impl OperatorId {
    pub fn parse(input: &str) -> Result<OperatorId, IdError> {
        parse_party(input)
            .map(OperatorId)
            .ok_or_else(|| IdError::MalformedOperatorId(shown(input)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of ../shared/vectors/emaid-check-digits.json (mobilityid CheckDigitSpec).
    #[test]
    fn ok_check_digits_match_the_published_vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/emaid-check-digits.json"
        );
        let mut vectors = vec![
            ("NN123ABCDEFGHI".to_string(), 'T'),
            ("FRXYZ123456789".to_string(), '2'),
            ("ITA1B2C3E4F5G6".to_string(), '4'),
            ("ESZU8WOX834H1D".to_string(), 'R'),
            ("PT73902837ABCZ".to_string(), 'Z'),
            ("DE83DUIEN83QGZ".to_string(), 'D'),
            ("DE83DUIEN83ZGQ".to_string(), 'M'),
            ("DE8AA001234567".to_string(), '0'),
        ];
        // Also read the shared file when it is there, so a vector added to it is checked.
        if let Ok(text) = std::fs::read_to_string(path) {
            let document: serde_json::Value = serde_json::from_str(&text).expect("vector json");
            let mut found = 0;
            for vector in document["vectors"].as_array().into_iter().flatten() {
                let (Some(input), Some(digit)) = (
                    vector["emaid_without_check_digit"].as_str(),
                    vector["check_digit"]
                        .as_str()
                        .and_then(|s| s.chars().next()),
                ) else {
                    continue;
                };
                vectors.push((input.to_string(), digit));
                found += 1;
            }
            assert!(found >= 8, "the vector file holds the eight vectors");
        }
        for (input, expected) in vectors {
            assert_eq!(emaid_check_digit(&input), Some(expected), "{input}");
        }
    }

    #[test]
    fn fail_check_digit_of_wrong_length_or_characters() {
        assert_eq!(emaid_check_digit("short"), None);
        assert_eq!(emaid_check_digit("DE8AA00123456!"), None);
    }

    #[test]
    fn ok_emaid_spellings_normalise() {
        let emaid = Emaid::parse("de-8aa-001234567-0").unwrap();
        assert_eq!(emaid.as_str(), "DE8AA0012345670");
        assert_eq!(emaid.lookup_key(), "DE8AA001234567");
        assert_eq!(emaid.provider_id().as_str(), "DE8AA");
        assert!(emaid.same_account(&Emaid::parse("DE8AA001234567").unwrap()));
        assert_eq!(
            Emaid::parse("DE*8AA*001234567").unwrap().as_str(),
            "DE8AA001234567"
        );
    }

    #[test]
    fn fail_malformed_emaids() {
        for input in [
            "",
            "DE8AA00123456",    // 13
            "DE8AA0012345678X", // 16
            "1E8AA001234567",   // country not letters
            "DE8AA00123456!",
            "DE8AA 001234567",
        ] {
            assert!(Emaid::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn check_digit_enforcement_is_a_setting() {
        // Josev's UKSWI123456791A computes to 5 (notes §12.2).
        assert!(Emaid::parse_checked("UKSWI123456791A", false).is_ok());
        assert_eq!(
            Emaid::parse_checked("UKSWI123456791A", true),
            Err(IdError::WrongCheckDigit {
                value: "UKSWI123456791A".into(),
                found: 'A',
                expected: '5'
            })
        );
        assert!(Emaid::parse_checked("UKSWI1234567915", true).is_ok());
        assert!(Emaid::parse_checked("UKSWI123456791", true).is_ok());
    }

    #[test]
    fn ok_pcids_compare_case_insensitively_and_keep_their_case() {
        let pcid = Pcid::parse("hubUsEaTest000003").unwrap();
        assert_eq!(pcid.as_str(), "hubUsEaTest000003");
        assert_eq!(pcid, Pcid::parse("HUBUSEATEST000003").unwrap());
        assert_eq!(pcid.wmi().as_str(), "HUB");
        assert!(Pcid::parse("hubjectopenpnc0001").is_ok());
        for input in ["short", "hubjectopenpnc00011", "hubject-openpnc01", ""] {
            assert!(Pcid::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn ok_party_ids_accept_both_spellings() {
        assert_eq!(OperatorId::parse("DE*PNC").unwrap().as_str(), "DEPNC");
        assert_eq!(OperatorId::parse("DEPNC").unwrap().as_str(), "DEPNC");
        assert_eq!(ProviderId::parse("de-pnc").unwrap().as_str(), "DEPNC");
        assert!(ProviderId::parse("D1PNC").is_err());
        assert!(OperatorId::parse("DE*PN").is_err());
        assert_eq!(Wmi::parse("hub").unwrap().as_str(), "HUB");
        assert!(Wmi::parse("HUBB").is_err());
    }
}
