//! Bit-packed stream I/O (EXI 1.0 §7.1, alignment option "bit-packed").

use crate::error::ExiError;

#[derive(Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// pending bits, right-aligned; fewer than 8 between calls
    acc: u64,
    n: u32,
}

impl BitWriter {
    pub fn with_capacity(cap: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(cap),
            acc: 0,
            n: 0,
        }
    }

    /// Writes the `n` low bits of `v` (n <= 56), most significant first (§7.1.9).
    #[inline]
    pub fn bits(&mut self, v: u64, n: u8) {
        if n == 0 {
            return;
        }
        let n = u32::from(n);
        let v = if n >= 64 { v } else { v & ((1u64 << n) - 1) };
        self.acc = (self.acc << n) | v;
        self.n += n;
        while self.n >= 8 {
            self.n -= 8;
            self.buf.push((self.acc >> self.n) as u8);
        }
        self.acc &= (1u64 << self.n) - 1;
    }

    /// A whole octet (binary content, unsigned-integer groups).
    #[inline]
    pub fn byte(&mut self, b: u8) {
        if self.n == 0 {
            self.buf.push(b);
        } else {
            self.bits(u64::from(b), 8);
        }
    }

    pub fn bytes(&mut self, b: &[u8]) {
        if self.n == 0 {
            self.buf.extend_from_slice(b);
        } else {
            let s = self.n;
            let mut acc = self.acc;
            self.buf.reserve(b.len());
            for &x in b {
                acc = (acc << 8) | u64::from(x);
                self.buf.push((acc >> s) as u8);
                acc &= (1u64 << s) - 1;
            }
            self.acc = acc;
        }
    }

    /// Unsigned Integer (§7.1.6): 7-bit groups, least significant first.
    #[inline]
    pub fn uint(&mut self, mut v: u64) {
        loop {
            let g = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.byte(g);
                return;
            }
            self.byte(g | 0x80);
        }
    }

    /// Pads with zero bits to the byte boundary and returns the stream.
    pub fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.buf.push((self.acc << pad) as u8);
        }
        self.buf
    }
}

pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Current position in bits.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining_bits(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Reads `n` bits (n <= 56), most significant first.
    #[inline]
    pub fn bits(&mut self, n: u8) -> Result<u64, ExiError> {
        if n == 0 {
            return Ok(0);
        }
        if (n as usize) > self.remaining_bits() || n > 56 {
            return Err(ExiError::Truncated { bit: self.pos });
        }
        let i = self.pos / 8;
        let off = (self.pos % 8) as u32;
        let mut w = [0u8; 8];
        let avail = self.data.len().saturating_sub(i).min(8);
        if let (Some(dst), Some(src)) = (w.get_mut(..avail), self.data.get(i..i + avail)) {
            dst.copy_from_slice(src);
        }
        let v = (u64::from_be_bytes(w) << off) >> (64 - u32::from(n));
        self.pos += n as usize;
        Ok(v)
    }

    #[inline]
    pub fn byte(&mut self) -> Result<u8, ExiError> {
        if self.pos.is_multiple_of(8) {
            let b = *self
                .data
                .get(self.pos / 8)
                .ok_or(ExiError::Truncated { bit: self.pos })?;
            self.pos += 8;
            Ok(b)
        } else {
            Ok(self.bits(8)? as u8)
        }
    }

    /// `len` whole octets (binary content); the caller has checked `len` against the input.
    pub fn read_bytes(&mut self, len: usize) -> Result<Vec<u8>, ExiError> {
        if len.saturating_mul(8) > self.remaining_bits() {
            return Err(ExiError::Truncated { bit: self.pos });
        }
        let i = self.pos / 8;
        let off = (self.pos % 8) as u32;
        let out = if off == 0 {
            self.data
                .get(i..i + len)
                .map(<[u8]>::to_vec)
                .unwrap_or_default()
        } else {
            // len (+1 if available) source octets, each output octet straddles two
            let end = (i + len + 1).min(self.data.len());
            let src = self.data.get(i..end).unwrap_or_default();
            let mut v = Vec::with_capacity(len);
            v.extend(
                src.windows(2)
                    .take(len)
                    .map(|w| (w[0] << off) | (w[1] >> (8 - off))),
            );
            if v.len() < len
                && let Some(&last) = src.last()
            {
                v.push(last << off);
            }
            v
        };
        self.pos += len * 8;
        Ok(out)
    }

    /// Unsigned Integer (§7.1.6) that must fit in 64 bits.
    pub fn uint(&mut self) -> Result<u64, ExiError> {
        let start = self.pos;
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            let g = u64::from(b & 0x7f);
            if i == 9 && (g > 1 || b & 0x80 != 0) {
                return Err(ExiError::IntegerOverflow { bit: start });
            }
            v |= g << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ExiError::IntegerOverflow { bit: start })
    }

    /// Unsigned Integer of any size as 7-bit groups (least significant first), at most `max_groups`.
    pub fn uint_groups(&mut self, max_groups: usize) -> Result<Vec<u8>, ExiError> {
        let start = self.pos;
        let mut g = Vec::new();
        loop {
            let b = self.byte()?;
            g.push(b & 0x7f);
            if b & 0x80 == 0 {
                return Ok(g);
            }
            if g.len() >= max_groups {
                return Err(ExiError::IntegerOverflow { bit: start });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_reader_agree_at_every_offset() {
        for off in 0..8u8 {
            let payload: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(73) ^ 0x5A).collect();
            let mut w = BitWriter::with_capacity(64);
            w.bits(0b1011_0110 >> (8 - off.max(1)), off);
            w.uint(300);
            w.bytes(&payload);
            w.bits(0x2A, 6);
            w.byte(0xC3);
            let data = w.finish();
            let mut r = BitReader::new(&data);
            assert_eq!(
                r.bits(off).unwrap(),
                u64::from(0b1011_0110u8 >> (8 - off.max(1))) & ((1 << off) - 1)
            );
            assert_eq!(r.uint().unwrap(), 300);
            assert_eq!(r.read_bytes(payload.len()).unwrap(), payload);
            assert_eq!(r.bits(6).unwrap(), 0x2A);
            assert_eq!(r.byte().unwrap(), 0xC3);
            assert!(r.read_bytes(2).is_err());
        }
    }
}
