//! Set and map elements: keys, ranges, data, timeouts. How a range is stored
//! depends on the set: over a concatenation it is one element with an end
//! key; otherwise it is a start element plus an "interval end" element one
//! past the range (and no end element when the range runs to the maximum).

use super::expr_decode::AttrTable;
use super::msg::{self, AttrWriter, Attrs, Decoded};
use super::set::Set;
use super::sys as c;
use super::udata;
use super::value::{Data, Value, Verdict};
use std::time::Duration;

/// One element. `expires` is read-only (time left, reported by the kernel).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Element {
    pub key: Value,
    /// Inclusive end of a range (interval sets only); `None` for one value.
    pub key_end: Option<Value>,
    /// The mapped value or verdict (maps only).
    pub data: Option<Data>,
    /// This element's timeout; `None` means the set's default.
    pub timeout: Option<Duration>,
    pub comment: Option<String>,
    pub expires: Option<Duration>,
}

impl Element {
    pub fn new(key: Value) -> Element {
        Element { key, key_end: None, data: None, timeout: None, comment: None, expires: None }
    }

    /// A range `from..=to` (interval sets).
    pub fn range(from: Value, to: Value) -> Element {
        Element { key_end: Some(to), ..Element::new(from) }
    }

    /// A map element.
    pub fn mapping(key: Value, data: impl Into<Data>) -> Element {
        Element { data: Some(data.into()), ..Element::new(key) }
    }

    /// A verdict map element.
    pub fn verdict(key: Value, v: Verdict) -> Element {
        Element::mapping(key, Data::Verdict(v))
    }

    pub fn with_timeout(mut self, t: Duration) -> Element {
        self.timeout = Some(t);
        self
    }

    pub fn with_comment(mut self, comment: &str) -> Element {
        self.comment = Some(comment.to_string());
        self
    }
}

/// Writes the kernel elements for `elems` as NFTA_LIST_ELEMs; with `keys_only`
/// (deletion) data, timeouts and comments are left out.
pub(crate) fn encode_elements(set: &Set, elems: &[Element], keys_only: bool, w: &mut AttrWriter) {
    for e in elems {
        encode_one(set, e, keys_only, w);
    }
}

fn encode_one(set: &Set, e: &Element, keys_only: bool, w: &mut AttrWriter) {
    let value = |w: &mut AttrWriter, ty: u16, v: &Value| Data::Value(v.clone()).encode(w, ty);
    w.nest(c::NFTA_LIST_ELEM, |el| {
        value(el, c::NFTA_SET_ELEM_KEY, &e.key);
        if set.concat_ranges() {
            value(el, c::NFTA_SET_ELEM_KEY_END, e.key_end.as_ref().unwrap_or(&e.key));
        }
        if !keys_only {
            if let Some(d) = &e.data {
                d.encode(el, c::NFTA_SET_ELEM_DATA);
            }
            if let Some(t) = e.timeout {
                el.be64(c::NFTA_SET_ELEM_TIMEOUT, t.as_millis() as u64);
            }
            if let Some(comment) = &e.comment {
                el.bytes(c::NFTA_SET_ELEM_USERDATA, &udata::comment(udata::ELEM_COMMENT, comment));
            }
        }
    });
    if set.flags.interval && !set.concat_ranges() {
        // The end element sits one past the range; none if it runs to the top.
        if let Some(end) = e.key_end.as_ref().unwrap_or(&e.key).successor() {
            w.nest(c::NFTA_LIST_ELEM, |el| {
                value(el, c::NFTA_SET_ELEM_KEY, &end);
                el.be32(c::NFTA_SET_ELEM_FLAGS, c::NFT_SET_ELEM_INTERVAL_END);
            });
        }
    }
}

struct Raw {
    elem: Element,
    interval_end: bool,
}

/// Decodes the NFTA_SET_ELEM_LIST_ELEMENTS of one dump message into `out`.
pub(crate) fn decode_elements(buf: &[u8], out: &mut Vec<RawElement>) -> Decoded<()> {
    for a in Attrs::new(buf) {
        let (ty, el) = a?;
        if ty != c::NFTA_LIST_ELEM {
            continue;
        }
        let t = AttrTable::parse(el)?;
        let flags = t.opt_u32(c::NFTA_SET_ELEM_FLAGS)?.unwrap_or(0);
        if flags & c::NFT_SET_ELEM_CATCHALL != 0 {
            return msg::bad("catch-all set elements are not supported by weft's nft client");
        }
        let key = Data::decode_value(t.need(c::NFTA_SET_ELEM_KEY, "element key")?)?;
        let elem = Element {
            key,
            key_end: t.get(c::NFTA_SET_ELEM_KEY_END).map(Data::decode_value).transpose()?,
            data: t.get(c::NFTA_SET_ELEM_DATA).map(Data::decode).transpose()?,
            timeout: t.opt_u64(c::NFTA_SET_ELEM_TIMEOUT)?.map(Duration::from_millis),
            comment: t.get(c::NFTA_SET_ELEM_USERDATA).and_then(|u| udata::find_comment(u, udata::ELEM_COMMENT)),
            expires: t.opt_u64(c::NFTA_SET_ELEM_EXPIRATION)?.map(Duration::from_millis),
        };
        out.push(RawElement(Raw { elem, interval_end: flags & c::NFT_SET_ELEM_INTERVAL_END != 0 }));
    }
    Ok(())
}

/// An element as the kernel stores it (before ranges are put back together).
pub(crate) struct RawElement(Raw);

/// Turns the kernel's elements back into the caller's: for interval sets over
/// one field, start and end elements pair up into ranges.
pub(crate) fn assemble(set: &Set, raw: Vec<RawElement>) -> Vec<Element> {
    if !set.flags.interval || set.concat_ranges() {
        return raw
            .into_iter()
            .map(|RawElement(r)| {
                let mut e = r.elem;
                if e.key_end.as_ref() == Some(&e.key) {
                    e.key_end = None;
                }
                e
            })
            .collect();
    }
    let mut raw: Vec<Raw> = raw.into_iter().map(|r| r.0).collect();
    // At equal keys an end (of the previous range) sorts before a start.
    raw.sort_by(|a, b| a.elem.key.cmp(&b.elem.key).then(b.interval_end.cmp(&a.interval_end)));
    let mut out = Vec::new();
    let mut open: Option<Element> = None;
    for r in raw {
        if r.interval_end {
            if let Some(mut start) = open.take() {
                let last = r.elem.key.predecessor().unwrap_or_else(|| r.elem.key.clone());
                start.key_end = (last != start.key).then_some(last);
                out.push(start);
            }
        } else {
            if let Some(start) = open.take() {
                out.push(to_the_top(start));
            }
            open = Some(r.elem);
        }
    }
    if let Some(start) = open {
        out.push(to_the_top(start));
    }
    out
}

/// A range with no end element runs to the largest key.
fn to_the_top(mut start: Element) -> Element {
    let top = Value::from_bytes(&vec![0xff; start.key.len()]);
    start.key_end = (top != start.key).then_some(top);
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::set::{KeyType, SetFlags};

    fn decode_all(buf: &[u8]) -> Vec<RawElement> {
        let mut raw = Vec::new();
        decode_elements(buf, &mut raw).unwrap();
        raw
    }

    #[test]
    fn single_field_ranges_become_start_and_end_elements_and_back() {
        let set = Set::new("ports", &[KeyType::InetService]).with_flags(SetFlags { interval: true, ..Default::default() });
        let elems = vec![
            Element::range(Value::port(80), Value::port(89)).with_comment("web"),
            Element::new(Value::port(443)),
            Element::range(Value::port(90), Value::port(99)),
            Element::range(Value::port(60000), Value::port(65535)),
        ];
        let mut w = AttrWriter::new();
        encode_elements(&set, &elems, false, &mut w);
        // 3 ranges with end elements, the last one runs to the top: 7 kernel elements.
        assert_eq!(Attrs::new(&w.buf).count(), 7);
        let back = assemble(&set, decode_all(&w.buf));
        let mut want = elems.clone();
        want.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(back, want);
    }

    #[test]
    fn concatenated_ranges_carry_an_end_key() {
        let set = Set::new("nets", &[KeyType::Ipv4Addr, KeyType::InetService]).with_flags(SetFlags { interval: true, ..Default::default() });
        let a = |o: u8, p: u16| Value::concat([Value::ipv4([10, 0, 0, o].into()), Value::port(p)]);
        let elems = vec![Element::range(a(0, 80), a(255, 80)), Element::new(a(9, 53))];
        let mut w = AttrWriter::new();
        encode_elements(&set, &elems, false, &mut w);
        assert_eq!(Attrs::new(&w.buf).count(), 2);
        assert_eq!(assemble(&set, decode_all(&w.buf)), elems);
    }

    #[test]
    fn map_elements_keep_data_timeouts_and_comments() {
        let set = Set::vmap("svc", &[KeyType::Ipv4Addr]).with_timeout(Duration::from_secs(60));
        let elems = vec![Element::verdict(Value::ipv4([10, 96, 0, 1].into()), Verdict::Goto("svc-a".into()))
            .with_timeout(Duration::from_secs(5))
            .with_comment("default/a")];
        let mut w = AttrWriter::new();
        encode_elements(&set, &elems, false, &mut w);
        assert_eq!(assemble(&set, decode_all(&w.buf)), elems);
        let mut keys = AttrWriter::new();
        encode_elements(&set, &elems, true, &mut keys);
        assert!(keys.len() < w.len());
        assert_eq!(assemble(&set, decode_all(&keys.buf)), vec![Element::new(elems[0].key.clone())]);
    }
}
