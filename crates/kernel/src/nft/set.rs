//! Named sets and maps: key and data types (with concatenations), flags,
//! timeouts.

use super::expr_decode::AttrTable;
use super::msg::{bad, AttrWriter, Attrs, Decoded};
use super::sys as c;
use super::udata;
use std::time::Duration;

/// Field types of set keys and map data, as nft names them. The code is nft's
/// datatype number (so `nft list` prints elements right); the length is the
/// bytes a register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyType {
    Ipv4Addr,
    Ipv6Addr,
    EtherAddr,
    InetProto,
    InetService,
    Mark,
    IfIndex,
    IfName,
    CtState,
    /// A 32-bit host-order number (e.g. a numgen result).
    Integer32,
}

const TYPE_BITS: u32 = 6;

/// The size the kernel gives a dynamic set created without one.
pub const DYNAMIC_SET_DEFAULT_SIZE: u32 = 65535;

impl KeyType {
    fn code(self) -> u32 {
        match self {
            KeyType::Integer32 => 4,
            KeyType::Ipv4Addr => 7,
            KeyType::Ipv6Addr => 8,
            KeyType::EtherAddr => 9,
            KeyType::InetProto => 12,
            KeyType::InetService => 13,
            KeyType::Mark => 19,
            KeyType::IfIndex => 20,
            KeyType::CtState => 26,
            KeyType::IfName => 41,
        }
    }

    pub fn size(self) -> u32 {
        match self {
            KeyType::Ipv4Addr | KeyType::Mark | KeyType::IfIndex | KeyType::CtState | KeyType::Integer32 => 4,
            KeyType::Ipv6Addr | KeyType::IfName => 16,
            KeyType::EtherAddr => 6,
            KeyType::InetProto => 1,
            KeyType::InetService => 2,
        }
    }

    fn from_code(code: u32) -> Decoded<KeyType> {
        Ok(match code {
            4 => KeyType::Integer32,
            7 => KeyType::Ipv4Addr,
            8 => KeyType::Ipv6Addr,
            9 => KeyType::EtherAddr,
            12 => KeyType::InetProto,
            13 => KeyType::InetService,
            19 => KeyType::Mark,
            20 => KeyType::IfIndex,
            26 => KeyType::CtState,
            41 => KeyType::IfName,
            other => return bad(format!("set field type {other} is not supported by weft's nft client")),
        })
    }

    /// nft's code for a concatenation: each field's code in 6-bit digits.
    pub(crate) fn concat_code(fields: &[KeyType]) -> u32 {
        fields.iter().fold(0, |acc, f| (acc << TYPE_BITS) | f.code())
    }

    pub(crate) fn split_code(mut code: u32) -> Decoded<Vec<KeyType>> {
        let mut out = Vec::new();
        while code != 0 {
            out.push(KeyType::from_code(code & ((1 << TYPE_BITS) - 1))?);
            code >>= TYPE_BITS;
        }
        out.reverse();
        Ok(out)
    }

    /// Bytes of a key made of these fields (each padded to 4 when concatenated).
    pub fn key_len(fields: &[KeyType]) -> u32 {
        match fields {
            [one] => one.size(),
            many => many.iter().map(|f| f.size().div_ceil(4) * 4).sum(),
        }
    }
}

/// What a map maps to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SetData {
    /// A verdict map (`vmap`).
    Verdict,
    /// Values of these fields (e.g. `[Ipv4Addr, InetService]` for DNAT targets).
    Value(Vec<KeyType>),
}

/// Flags a caller sets. Map and concatenation flags follow from the key and data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetFlags {
    /// Elements can only be added with the set, in the same transaction.
    pub constant: bool,
    /// Elements are ranges.
    pub interval: bool,
    /// Elements may expire (needed for element and default timeouts).
    pub timeout: bool,
    /// Rules may add elements from the packet path (dynset).
    pub dynamic: bool,
}

/// A named set, or a map when `data` is set. `handle` is only set on read-back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Set {
    pub name: String,
    /// One field, or several for a concatenation (`ipv4_addr . inet_proto . inet_service`).
    pub key: Vec<KeyType>,
    pub data: Option<SetData>,
    pub flags: SetFlags,
    /// Default element timeout.
    pub timeout: Option<Duration>,
    pub gc_interval: Option<Duration>,
    /// Maximum number of elements.
    pub size: Option<u32>,
    pub comment: Option<String>,
    pub handle: Option<u64>,
}

impl Set {
    pub fn new(name: &str, key: &[KeyType]) -> Set {
        Set {
            name: name.to_string(),
            key: key.to_vec(),
            data: None,
            flags: SetFlags::default(),
            timeout: None,
            gc_interval: None,
            size: None,
            comment: None,
            handle: None,
        }
    }

    /// A verdict map.
    pub fn vmap(name: &str, key: &[KeyType]) -> Set {
        Set { data: Some(SetData::Verdict), ..Set::new(name, key) }
    }

    /// A map to values of `data` fields.
    pub fn map(name: &str, key: &[KeyType], data: &[KeyType]) -> Set {
        Set { data: Some(SetData::Value(data.to_vec())), ..Set::new(name, key) }
    }

    pub fn with_flags(mut self, flags: SetFlags) -> Set {
        self.flags = flags;
        self
    }

    /// A default timeout; turns the timeout flag on.
    pub fn with_timeout(mut self, t: Duration) -> Set {
        self.timeout = Some(t);
        self.flags.timeout = true;
        self
    }

    pub fn with_comment(mut self, comment: &str) -> Set {
        self.comment = Some(comment.to_string());
        self
    }

    pub fn key_len(&self) -> u32 {
        KeyType::key_len(&self.key)
    }

    pub(crate) fn data_len(&self) -> Option<u32> {
        match &self.data {
            Some(SetData::Value(fields)) => Some(KeyType::key_len(fields)),
            _ => None,
        }
    }

    /// Ranges over a concatenation (kernel "pipapo" sets) carry an explicit
    /// end key; other interval sets store an end element instead.
    pub(crate) fn concat_ranges(&self) -> bool {
        self.flags.interval && self.key.len() > 1
    }

    fn kernel_flags(&self) -> u32 {
        let f = &self.flags;
        let mut v = 0;
        for (on, bit) in [
            (f.constant, c::NFT_SET_CONSTANT),
            (f.interval, c::NFT_SET_INTERVAL),
            (f.timeout, c::NFT_SET_TIMEOUT),
            (f.dynamic, c::NFT_SET_EVAL),
            (self.data.is_some(), c::NFT_SET_MAP),
            (self.concat_ranges(), c::NFT_SET_CONCAT),
        ] {
            if on {
                v |= bit;
            }
        }
        v
    }

    pub(crate) fn encode(&self, id: u32, w: &mut AttrWriter) {
        w.str(c::NFTA_SET_NAME, &self.name);
        w.be32(c::NFTA_SET_FLAGS, self.kernel_flags());
        w.be32(c::NFTA_SET_KEY_TYPE, KeyType::concat_code(&self.key));
        w.be32(c::NFTA_SET_KEY_LEN, self.key_len());
        match &self.data {
            Some(SetData::Verdict) => {
                w.be32(c::NFTA_SET_DATA_TYPE, c::NFT_DATA_VERDICT);
            }
            Some(SetData::Value(fields)) => {
                w.be32(c::NFTA_SET_DATA_TYPE, KeyType::concat_code(fields));
                w.be32(c::NFTA_SET_DATA_LEN, KeyType::key_len(fields));
            }
            None => {}
        }
        if let Some(t) = self.timeout {
            w.be64(c::NFTA_SET_TIMEOUT, t.as_millis() as u64);
        }
        if let Some(t) = self.gc_interval {
            w.be32(c::NFTA_SET_GC_INTERVAL, t.as_millis() as u32);
        }
        if self.size.is_some() || self.concat_ranges() {
            w.nest(c::NFTA_SET_DESC, |d| {
                if let Some(size) = self.size {
                    d.be32(c::NFTA_SET_DESC_SIZE, size);
                }
                if self.concat_ranges() {
                    d.nest(c::NFTA_SET_DESC_CONCAT, |cc| {
                        for f in &self.key {
                            cc.nest(c::NFTA_LIST_ELEM, |el| {
                                el.be32(c::NFTA_SET_FIELD_LEN, f.size());
                            });
                        }
                    });
                }
            });
        }
        w.be32(c::NFTA_SET_ID, id);
        if let Some(comment) = &self.comment {
            w.bytes(c::NFTA_SET_USERDATA, &udata::comment(udata::SET_COMMENT, comment));
        }
    }

    pub(crate) fn decode(t: &AttrTable<'_>) -> Decoded<Set> {
        let name = t.str(c::NFTA_SET_NAME, "set name")?;
        let flags = t.opt_u32(c::NFTA_SET_FLAGS)?.unwrap_or(0);
        let key = KeyType::split_code(t.u32(c::NFTA_SET_KEY_TYPE, "key type")?)?;
        let key_len = t.u32(c::NFTA_SET_KEY_LEN, "key length")?;
        if KeyType::key_len(&key) != key_len {
            return bad(format!("set {name}: key type {key:?} does not add up to its key length {key_len}"));
        }
        let data = match t.opt_u32(c::NFTA_SET_DATA_TYPE)? {
            None => None,
            Some(c::NFT_DATA_VERDICT) => Some(SetData::Verdict),
            Some(code) => Some(SetData::Value(KeyType::split_code(code)?)),
        };
        let mut size = None;
        if let Some(desc) = t.get(c::NFTA_SET_DESC) {
            for a in Attrs::new(desc) {
                if let (c::NFTA_SET_DESC_SIZE, v) = a? {
                    size = Some(super::msg::be32(v)?);
                }
            }
        }
        Ok(Set {
            key,
            data,
            flags: SetFlags {
                constant: flags & c::NFT_SET_CONSTANT != 0,
                interval: flags & c::NFT_SET_INTERVAL != 0,
                timeout: flags & c::NFT_SET_TIMEOUT != 0,
                dynamic: flags & c::NFT_SET_EVAL != 0,
            },
            timeout: t.opt_u64(c::NFTA_SET_TIMEOUT)?.map(Duration::from_millis),
            gc_interval: t.opt_u32(c::NFTA_SET_GC_INTERVAL)?.map(|ms| Duration::from_millis(ms as u64)),
            size,
            comment: t.get(c::NFTA_SET_USERDATA).and_then(|u| udata::find_comment(u, udata::SET_COMMENT)),
            handle: t.opt_u64(c::NFTA_SET_HANDLE)?,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenation_codes_are_six_bit_digits_in_order() {
        let key = [KeyType::Ipv4Addr, KeyType::InetProto, KeyType::InetService];
        assert_eq!(KeyType::concat_code(&key), (7 << 12) | (12 << 6) | 13);
        assert_eq!(KeyType::split_code(KeyType::concat_code(&key)).unwrap(), key);
        assert_eq!(KeyType::key_len(&key), 12);
        assert_eq!(KeyType::key_len(&[KeyType::InetService]), 2);
        assert_eq!(KeyType::key_len(&[KeyType::Ipv6Addr, KeyType::InetService]), 20);
    }

    #[test]
    fn sets_decode_to_what_was_encoded() {
        let set = Set::map("dnat", &[KeyType::Ipv4Addr, KeyType::InetService], &[KeyType::Ipv4Addr, KeyType::InetService])
            .with_flags(SetFlags { interval: true, ..Default::default() })
            .with_timeout(Duration::from_secs(30))
            .with_comment("targets");
        let mut w = AttrWriter::new();
        set.encode(1, &mut w);
        let back = Set::decode(&AttrTable::parse(&w.buf).unwrap()).unwrap();
        assert_eq!(back, set);
    }
}
