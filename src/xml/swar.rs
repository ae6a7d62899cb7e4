//! Bytes looked at eight at a time, as one `u64`: where text has a byte to find every few
//! bytes (the escapes of a modulo in a Body, the strings of a scheda), a call into memchr for
//! each costs more than the scan.

const UNI: u64 = 0x0101_0101_0101_0101;
const ALTI: u64 = 0x8080_8080_8080_8080;

/// The eight bytes of `b` from `i`, the first the lowest; None past its end.
pub fn parola(b: &[u8], i: usize) -> Option<u64> {
    let mut w = [0u8; 8];
    w.copy_from_slice(b.get(i..i.checked_add(8)?)?);
    Some(u64::from_le_bytes(w))
}

/// The high bit of each byte of `x` under `n` (`n` at most 128), and maybe of bytes after the
/// first: zero when there is none, and the lowest bit set marks the first ([`primo`]). A byte
/// of 128 or more is never under it.
pub fn sotto(x: u64, n: u8) -> u64 {
    x.wrapping_sub(UNI * u64::from(n)) & !x & ALTI
}

/// As [`sotto`], for the bytes of `x` equal to `c`.
pub fn uguali(x: u64, c: u8) -> u64 {
    sotto(x ^ (UNI * u64::from(c)), 1)
}

/// The place in its word of the first byte a non-zero mask of [`sotto`] or [`uguali`] marks,
/// or of the first byte two words differ in, given their `^`.
pub fn primo(m: u64) -> usize {
    (m.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_byte_is_judged_as_one_at_a_time() {
        // Every byte value at every place, beside bytes that would borrow into it.
        for v in 0..=255u8 {
            for posto in 0..8 {
                for sfondo in [0u8, 1, 0x20, 0x7f, 0x80, 0xff] {
                    let mut b = [sfondo; 8];
                    b[posto] = v;
                    let x = parola(&b, 0).unwrap();
                    for n in [1u8, 0x20, 0x80] {
                        let atteso = b.iter().position(|&c| c < n);
                        let m = sotto(x, n);
                        assert_eq!((m != 0).then(|| primo(m)), atteso, "{b:?} < {n}");
                    }
                    let atteso = b.iter().position(|&c| c == b'&');
                    let m = uguali(x, b'&');
                    assert_eq!((m != 0).then(|| primo(m)), atteso, "{b:?}");
                }
            }
        }
        assert_eq!(parola(b"12345678", 1), None);
        assert_eq!(
            parola(b"123456789", 1),
            Some(u64::from_le_bytes(*b"23456789"))
        );
    }
}
