//! The identifier rules certificate profiles need (iso15118-notes §12). Syntax only; the typed
//! newtypes for the rest of pnc live in `pnc-common`.

/// eMAID in the canonical wire form: 14 characters (country 2 letters, provider 3, instance 9)
/// plus an optional check digit, upper case, no separators.
pub fn is_canonical_emaid(value: &str) -> bool {
    let bytes = value.as_bytes();
    if !(14..=15).contains(&bytes.len()) {
        return false;
    }
    bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..]
            .iter()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit())
}

/// ISO 15118-2 Annex H / eMI3 check digit of the first 14 characters (iso15118-notes §12.2).
pub fn emaid_check_digit(first_14: &str) -> Option<char> {
    let bytes = first_14.as_bytes();
    if bytes.len() != 14 {
        return None;
    }
    const TABLE: [(u8, u8); 36] = [
        (b'0', 0),
        (b'1', 16),
        (b'2', 32),
        (b'3', 4),
        (b'4', 20),
        (b'5', 36),
        (b'6', 8),
        (b'7', 24),
        (b'8', 40),
        (b'9', 2),
        (b'A', 18),
        (b'B', 34),
        (b'C', 6),
        (b'D', 22),
        (b'E', 38),
        (b'F', 10),
        (b'G', 26),
        (b'H', 42),
        (b'I', 1),
        (b'J', 17),
        (b'K', 33),
        (b'L', 5),
        (b'M', 21),
        (b'N', 37),
        (b'O', 9),
        (b'P', 25),
        (b'Q', 41),
        (b'R', 3),
        (b'S', 19),
        (b'T', 35),
        (b'U', 7),
        (b'V', 23),
        (b'W', 39),
        (b'X', 11),
        (b'Y', 27),
        (b'Z', 43),
    ];
    let value_of = |character: u8| {
        TABLE
            .iter()
            .find(|(c, _)| *c == character.to_ascii_uppercase())
            .map(|(_, v)| *v)
    };
    let multiply = |vector: [i64; 2], matrix: [[i64; 2]; 2], modulus: i64| {
        [
            (vector[0] * matrix[0][0] + vector[1] * matrix[1][0]).rem_euclid(modulus),
            (vector[0] * matrix[0][1] + vector[1] * matrix[1][1]).rem_euclid(modulus),
        ]
    };
    let p1 = [[0, 1], [1, 1]];
    let p2 = [[0, 1], [1, 2]];
    let mut t1 = [0i64; 2];
    let mut t2 = [0i64; 2];
    for (index, character) in bytes.iter().enumerate() {
        let v = i64::from(value_of(*character)?);
        let mut q = [v & 1, (v >> 1) & 1];
        let mut r = [(v >> 2) & 3, v >> 4];
        for _ in 0..=index {
            q = multiply(q, p1, 2);
            r = multiply(r, p2, 3);
        }
        t1 = [(t1[0] + q[0]) % 2, (t1[1] + q[1]) % 2];
        t2 = [(t2[0] + r[0]) % 3, (t2[1] + r[1]) % 3];
    }
    let t2 = multiply(t2, [[0, 2], [2, 1]], 3);
    let wanted = (t1[0] | (t1[1] << 1) | (t2[0] << 2) | (t2[1] << 4)) as u8;
    TABLE
        .iter()
        .find(|(_, v)| *v == wanted)
        .map(|(c, _)| char::from(*c))
}

/// PCID: 17 or 18 ASCII alphanumerics (WMI 3 + 14 + optional check character).
pub fn is_pcid(value: &str) -> bool {
    (17..=18).contains(&value.len()) && value.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_match_the_published_vectors() {
        for (input, expected) in [
            ("NN123ABCDEFGHI", 'T'),
            ("FRXYZ123456789", '2'),
            ("ITA1B2C3E4F5G6", '4'),
            ("ESZU8WOX834H1D", 'R'),
            ("PT73902837ABCZ", 'Z'),
            ("DE83DUIEN83QGZ", 'D'),
            ("DE83DUIEN83ZGQ", 'M'),
            ("DE8AA001234567", '0'),
        ] {
            assert_eq!(emaid_check_digit(input), Some(expected), "{input}");
        }
        assert_eq!(emaid_check_digit("short"), None);
        assert_eq!(emaid_check_digit("DE8AA00123456!"), None);
    }

    #[test]
    fn syntax() {
        assert!(is_canonical_emaid("DE8AA0012345670"));
        assert!(!is_canonical_emaid("DE-8AA-001234567"));
        assert!(is_pcid("hubjectopenpnc0001"));
        assert!(is_pcid("huboemprovcqa0615"));
        assert!(!is_pcid("short"));
    }
}
