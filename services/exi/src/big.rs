//! Minimal arbitrary-precision helpers for unbounded xs:integer values (e.g. X509SerialNumber):
//! decimal text <-> 7-bit groups of the EXI Unsigned Integer representation (§7.1.6).

/// Parses an unsigned decimal string (digits only) into little-endian u32 limbs.
fn parse_limbs(digits: &str) -> Option<Vec<u32>> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut limbs: Vec<u32> = vec![0];
    for b in digits.bytes() {
        let mut carry = u64::from(b - b'0');
        for l in limbs.iter_mut() {
            let v = u64::from(*l) * 10 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    Some(limbs)
}

/// Decimal digits -> 7-bit groups, least significant first.
pub fn decimal_to_groups(digits: &str) -> Option<Vec<u8>> {
    let mut limbs = parse_limbs(digits)?;
    let mut out = vec![];
    loop {
        // divide by 128
        let mut rem = 0u64;
        for l in limbs.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*l);
            *l = (v >> 7) as u32;
            rem = v & 0x7f;
        }
        out.push(rem as u8);
        while limbs.len() > 1 && limbs.last() == Some(&0) {
            limbs.pop();
        }
        if limbs == [0] {
            return Some(out);
        }
    }
}

/// 7-bit groups (least significant first) -> decimal digits.
pub fn groups_to_decimal(groups: &[u8]) -> String {
    let mut limbs: Vec<u32> = vec![0];
    for &g in groups.iter().rev() {
        let mut carry = u64::from(g & 0x7f);
        for l in limbs.iter_mut() {
            let v = (u64::from(*l) << 7) | carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    let mut digits = vec![];
    loop {
        let mut rem = 0u64;
        for l in limbs.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*l);
            *l = (v / 10) as u32;
            rem = v % 10;
        }
        digits.push(b'0' + rem as u8);
        while limbs.len() > 1 && limbs.last() == Some(&0) {
            limbs.pop();
        }
        if limbs == [0] {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Adds one to a decimal digit string (for the Integer representation of negatives, §7.1.5).
pub fn decimal_add_one(d: &str) -> String {
    let mut v: Vec<u8> = d.bytes().collect();
    let mut i = v.len();
    loop {
        if i == 0 {
            v.insert(0, b'1');
            break;
        }
        i -= 1;
        if v[i] == b'9' {
            v[i] = b'0';
        } else {
            v[i] += 1;
            break;
        }
    }
    String::from_utf8(v).unwrap_or_default()
}

/// Subtracts one from a positive decimal digit string.
pub fn decimal_sub_one(d: &str) -> Option<String> {
    let mut v: Vec<u8> = d.bytes().collect();
    let mut i = v.len();
    loop {
        if i == 0 {
            return None;
        }
        i -= 1;
        if v[i] == b'0' {
            v[i] = b'9';
        } else {
            v[i] -= 1;
            break;
        }
    }
    let s = String::from_utf8(v).ok()?;
    let t = s.trim_start_matches('0');
    Some(if t.is_empty() { "0".into() } else { t.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip() {
        for s in [
            "0",
            "1",
            "127",
            "128",
            "12345",
            "18446744073709551616",
            "340282366920938463463374607431768211457123",
        ] {
            let g = decimal_to_groups(s).unwrap();
            assert_eq!(groups_to_decimal(&g), s);
        }
        assert_eq!(decimal_add_one("199"), "200");
        assert_eq!(decimal_sub_one("1000").unwrap(), "999");
        assert_eq!(decimal_sub_one("1").unwrap(), "0");
    }
}
