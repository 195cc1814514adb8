//! Netlink framing for nfnetlink: message headers (nlmsghdr + nfgenmsg) and
//! nested attributes (nlattr), both ways. nf_tables numbers are big endian
//! on the wire; strings are NUL-terminated.

use super::sys;
use std::fmt;

pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NFGEN_HDRLEN: usize = 4;
const NLA_HDRLEN: usize = 4;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
/// An attribute's length is a u16, header included.
pub(crate) const NLA_MAX_PAYLOAD: usize = u16::MAX as usize - NLA_HDRLEN;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_APPEND: u16 = 0x800;
pub(crate) const NLM_F_DUMP: u16 = 0x300;

pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSGERR_ATTR_MSG: u16 = 1;
pub(crate) const NLM_F_ACK_TLVS: u16 = 0x200;
const NLM_F_CAPPED: u16 = 0x100;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The netlink message type of an nfnetlink message: subsystem in the high byte.
pub(crate) fn nfnl_type(subsys: u8, msg: u16) -> u16 {
    ((subsys as u16) << 8) | msg
}

/// Builds attributes into a buffer; nests are closed by [`AttrWriter::nest`].
#[derive(Default)]
pub(crate) struct AttrWriter {
    pub(crate) buf: Vec<u8>,
}

impl AttrWriter {
    pub(crate) fn new() -> AttrWriter {
        AttrWriter::default()
    }

    pub(crate) fn bytes(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = NLA_HDRLEN + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub(crate) fn str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.bytes(ty, &v)
    }

    pub(crate) fn u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.bytes(ty, &[v])
    }

    pub(crate) fn be16(&mut self, ty: u16, v: u16) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    pub(crate) fn be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    pub(crate) fn be64(&mut self, ty: u16, v: u64) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    /// A nested attribute whose content `f` writes.
    pub(crate) fn nest(&mut self, ty: u16, f: impl FnOnce(&mut AttrWriter)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        let mut inner = AttrWriter {
            buf: std::mem::take(&mut self.buf),
        };
        f(&mut inner);
        self.buf = inner.buf;
        let len = self.buf.len() - start;
        debug_assert!(len <= u16::MAX as usize, "nested attribute {ty} over 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        self
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

/// Appends one nfnetlink message (headers + attributes) to `out`.
pub(crate) fn put_message(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &[u8]) {
    let len = NLMSG_HDRLEN + NFGEN_HDRLEN + attrs.len();
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.push(family);
    out.push(sys::NFNETLINK_V0);
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(attrs);
    out.resize(align4(out.len()), 0);
}

/// A malformed reply from the kernel (or a bug in our encoder, in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type Decoded<T> = std::result::Result<T, DecodeError>;

pub(crate) fn bad<T>(what: impl Into<String>) -> Decoded<T> {
    Err(DecodeError(what.into()))
}

/// One netlink message seen in a receive buffer.
pub(crate) struct RawMsg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    /// Everything after the nlmsghdr.
    pub payload: &'a [u8],
}

impl RawMsg<'_> {
    /// For nfnetlink messages: the nfgenmsg family and the attributes after it.
    pub(crate) fn nfgen(&self) -> Decoded<(u8, &[u8])> {
        if self.payload.len() < NFGEN_HDRLEN {
            return bad("nfnetlink message shorter than its nfgenmsg header");
        }
        Ok((self.payload[0], &self.payload[NFGEN_HDRLEN..]))
    }
}

/// Splits a receive buffer into messages.
pub(crate) fn messages(buf: &[u8]) -> Decoded<Vec<RawMsg<'_>>> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return bad(format!("netlink message length {len} does not fit the {} bytes received", rest.len()));
        }
        out.push(RawMsg {
            ty: u16::from_ne_bytes(rest[4..6].try_into().unwrap()),
            flags: u16::from_ne_bytes(rest[6..8].try_into().unwrap()),
            seq: u32::from_ne_bytes(rest[8..12].try_into().unwrap()),
            payload: &rest[NLMSG_HDRLEN..len],
        });
        rest = &rest[align4(len).min(rest.len())..];
    }
    Ok(out)
}

/// An NLMSG_ERROR reply: errno 0 is an ack. `msg` is the kernel's extended-ack text.
pub(crate) struct NlError {
    pub errno: i32,
    pub msg: Option<String>,
}

pub(crate) fn parse_error(m: &RawMsg<'_>) -> Decoded<NlError> {
    let p = m.payload;
    if p.len() < 4 + NLMSG_HDRLEN {
        return bad("NLMSG_ERROR shorter than its header");
    }
    let errno = -i32::from_ne_bytes(p[0..4].try_into().unwrap());
    let mut msg = None;
    if m.flags & NLM_F_ACK_TLVS != 0 {
        // With NETLINK_CAP_ACK the echoed request is its header only.
        let orig_len = u32::from_ne_bytes(p[4..8].try_into().unwrap()) as usize;
        let echoed = if m.flags & NLM_F_CAPPED != 0 { NLMSG_HDRLEN } else { align4(orig_len) };
        if let Some(tlvs) = p.get(4 + echoed..) {
            for a in Attrs::new(tlvs) {
                let (ty, v) = a?;
                if ty == NLMSGERR_ATTR_MSG {
                    msg = Some(cstr(v)?);
                }
            }
        }
    }
    Ok(NlError { errno, msg })
}

/// Iterates the attributes in a buffer as (type without flags, payload).
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Attrs<'a> {
        Attrs { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Decoded<(u16, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < NLA_HDRLEN {
            return None;
        }
        let len = u16::from_ne_bytes([self.rest[0], self.rest[1]]) as usize;
        let ty = u16::from_ne_bytes([self.rest[2], self.rest[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > self.rest.len() {
            self.rest = &[];
            return Some(bad(format!("attribute {ty} has length {len}, beyond its message")));
        }
        let data = &self.rest[NLA_HDRLEN..len];
        self.rest = &self.rest[align4(len).min(self.rest.len())..];
        Some(Ok((ty, data)))
    }
}

pub(crate) fn be16(v: &[u8]) -> Decoded<u16> {
    v.try_into().map(u16::from_be_bytes).or_else(|_| bad(format!("expected 2 bytes, got {}", v.len())))
}

pub(crate) fn be32(v: &[u8]) -> Decoded<u32> {
    v.try_into().map(u32::from_be_bytes).or_else(|_| bad(format!("expected 4 bytes, got {}", v.len())))
}

pub(crate) fn be64(v: &[u8]) -> Decoded<u64> {
    v.try_into().map(u64::from_be_bytes).or_else(|_| bad(format!("expected 8 bytes, got {}", v.len())))
}

pub(crate) fn u8_of(v: &[u8]) -> Decoded<u8> {
    match v {
        [b] => Ok(*b),
        _ => bad(format!("expected 1 byte, got {}", v.len())),
    }
}

pub(crate) fn cstr(v: &[u8]) -> Decoded<String> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8(v[..end].to_vec()).or_else(|_| bad("string attribute is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_carry_their_length_and_flag() {
        let mut w = AttrWriter::new();
        w.str(1, "ab").nest(2, |n| {
            n.be32(1, 0x0102_0304).u8(2, 7);
        });
        // "ab\0" is 3 bytes: header 4 + 3 = 7, padded to 8.
        assert_eq!(&w.buf[0..8], &[7, 0, 1, 0, b'a', b'b', 0, 0]);
        let nest_len = u16::from_ne_bytes([w.buf[8], w.buf[9]]);
        assert_eq!(nest_len, 4 + 8 + 8);
        assert_eq!(u16::from_ne_bytes([w.buf[10], w.buf[11]]), 2 | NLA_F_NESTED);
        assert_eq!(&w.buf[12..20], &[8, 0, 1, 0, 1, 2, 3, 4]);
        let top: Vec<_> = Attrs::new(&w.buf).collect::<Decoded<_>>().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(cstr(top[0].1).unwrap(), "ab");
        assert_eq!(top[1].0, 2, "the nested flag is masked off");
        let inner: Vec<_> = Attrs::new(top[1].1).collect::<Decoded<_>>().unwrap();
        assert_eq!(be32(inner[0].1).unwrap(), 0x0102_0304);
        assert_eq!(u8_of(inner[1].1).unwrap(), 7);
    }

    #[test]
    fn messages_round_trip_and_truncation_is_an_error() {
        let mut out = Vec::new();
        put_message(&mut out, nfnl_type(10, 0), NLM_F_REQUEST, 7, 2, 0, &[8, 0, 1, 0, 9, 9, 9, 9]);
        put_message(&mut out, 0x10, NLM_F_REQUEST, 8, 0, 10, &[]);
        let msgs = messages(&out).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].ty, msgs[0].seq), (0x0a00, 7));
        let (family, attrs) = msgs[0].nfgen().unwrap();
        assert_eq!((family, attrs.len()), (2, 8));
        // res_id is big endian: subsystem 10 for batch messages.
        assert_eq!(&msgs[1].payload[2..4], &[0, 10]);
        assert!(messages(&out[..out.len() - 3]).is_err());
        let mut broken = AttrWriter::new();
        broken.bytes(1, &[1, 2, 3, 4]);
        broken.buf[0] = 40;
        assert!(Attrs::new(&broken.buf).next().unwrap().is_err());
    }
}
