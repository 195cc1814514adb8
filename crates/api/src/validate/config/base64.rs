//! Standard base64 decoding of Secret and ConfigMap `binaryData` values, reporting the
//! first bad byte as Go's decoder does (`illegal base64 data at input byte 4`).

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes padded standard base64; `Err(i)` names the offending input byte.
pub fn decode(s: &str) -> Result<Vec<u8>, usize> {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return Err(b.len() - b.len() % 4);
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (q, chunk) in b.chunks(4).enumerate() {
        let last = q == b.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err(q * 4 + chunk.iter().position(|&c| c == b'=').unwrap_or(0));
        }
        let mut n: u32 = 0;
        for (i, &c) in chunk[..4 - pad].iter().enumerate() {
            n |= (sextet(c).ok_or(q * 4 + i)? as u32) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_padded_base64_and_locates_bad_bytes() {
        assert_eq!(decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode("YWJj").unwrap(), b"abc");
        assert_eq!(decode("aGV$bG8="), Err(3));
        assert_eq!(decode("abc"), Err(0));
    }
}
