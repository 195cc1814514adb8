//! User data: opaque to the kernel, a list of (type u8, len u8, value) records
//! by libnftnl's convention. weft stores comments there the way nft does, so
//! `nft list ruleset` shows them.

pub(crate) const RULE_COMMENT: u8 = 0;
pub(crate) const CHAIN_COMMENT: u8 = 0;
pub(crate) const SET_COMMENT: u8 = 7;
pub(crate) const ELEM_COMMENT: u8 = 0;

/// The longest comment accepted (nft's own limit).
pub const MAX_COMMENT_LEN: usize = 128;

/// One comment record (NUL-terminated, as nft writes it).
pub(crate) fn comment(ty: u8, text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 3);
    v.push(ty);
    v.push((text.len() + 1).min(255) as u8);
    v.extend_from_slice(&text.as_bytes()[..text.len().min(254)]);
    v.push(0);
    v
}

/// The comment among the records, if they parse and one is there.
pub(crate) fn find_comment(mut buf: &[u8], ty: u8) -> Option<String> {
    while buf.len() >= 2 {
        let (t, len) = (buf[0], buf[1] as usize);
        let value = buf.get(2..2 + len)?;
        if t == ty {
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            return String::from_utf8(value[..end].to_vec()).ok();
        }
        buf = &buf[2 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_found_among_other_records() {
        let mut buf = vec![0, 4, 1, 0, 0, 0];
        buf.extend(comment(SET_COMMENT, "services"));
        assert_eq!(find_comment(&buf, SET_COMMENT).as_deref(), Some("services"));
        assert_eq!(find_comment(&buf[..buf.len() - 2], SET_COMMENT), None);
        assert_eq!(&comment(RULE_COMMENT, "ab"), &[0, 3, b'a', b'b', 0]);
    }
}
