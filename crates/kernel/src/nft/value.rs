//! What registers hold: typed values (addresses, ports, marks, concatenations),
//! registers themselves, and verdicts.

use super::msg::{self, bad, AttrWriter, Attrs, Decoded};
use super::sys as c;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Bytes laid out as the kernel compares them in registers. Build with the
/// typed constructors; numbers from packets (ports, addresses) are big
/// endian, numbers the kernel computes (marks, numgen, ct state) are host order.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Value(Vec<u8>);

impl Value {
    pub fn ipv4(a: Ipv4Addr) -> Value {
        Value(a.octets().to_vec())
    }

    pub fn ipv6(a: Ipv6Addr) -> Value {
        Value(a.octets().to_vec())
    }

    pub fn ip(a: IpAddr) -> Value {
        match a {
            IpAddr::V4(a) => Value::ipv4(a),
            IpAddr::V6(a) => Value::ipv6(a),
        }
    }

    /// A transport port (inet_service): 2 bytes, network order.
    pub fn port(p: u16) -> Value {
        Value(p.to_be_bytes().to_vec())
    }

    /// An IP protocol number (inet_proto), e.g. 6 for TCP: 1 byte.
    pub fn proto(p: u8) -> Value {
        Value(vec![p])
    }

    /// A 32-bit number in host order: marks, numgen results, ct state/status bits.
    pub fn u32(n: u32) -> Value {
        Value(n.to_ne_bytes().to_vec())
    }

    /// A 32-bit number in network order (e.g. a 4-byte packet field).
    pub fn be32(n: u32) -> Value {
        Value(n.to_be_bytes().to_vec())
    }

    pub fn u8(n: u8) -> Value {
        Value(vec![n])
    }

    /// An interface name as meta iifname/oifname load it: 16 bytes, zero padded.
    pub fn ifname(name: &str) -> Value {
        let mut v = name.as_bytes().to_vec();
        v.resize(16, 0);
        Value(v)
    }

    /// Fields one after another, each padded to 4 bytes, as a concatenation
    /// (`ip daddr . meta l4proto . th dport`) sits in consecutive registers.
    pub fn concat(fields: impl IntoIterator<Item = Value>) -> Value {
        let mut v = Vec::new();
        for f in fields {
            v.extend_from_slice(&f.0);
            v.resize(v.len().div_ceil(4) * 4, 0);
        }
        Value(v)
    }

    /// Escape hatch for layouts the constructors do not cover.
    pub fn from_bytes(b: &[u8]) -> Value {
        Value(b.to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value plus one, as a big-endian number of the same width (the
    /// exclusive end of an interval). `None` when it overflows.
    pub(crate) fn successor(&self) -> Option<Value> {
        let mut v = self.0.clone();
        for b in v.iter_mut().rev() {
            let (n, carry) = b.overflowing_add(1);
            *b = n;
            if !carry {
                return Some(Value(v));
            }
        }
        None
    }

    /// The value minus one (big endian); `None` below zero.
    pub(crate) fn predecessor(&self) -> Option<Value> {
        let mut v = self.0.clone();
        for b in v.iter_mut().rev() {
            let (n, borrow) = b.overflowing_sub(1);
            *b = n;
            if !borrow {
                return Some(Value(v));
            }
        }
        None
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A register. `Reg::VERDICT` is the verdict register; `R1`..`R4` are the
/// 16-byte registers; `r32(0..16)` are the 32-bit ones that concatenations use.
/// They overlap: `r32(0)` is the first word of `R1`, and the kernel reports it
/// as `R1`, so both spellings compare equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(u32);

impl Reg {
    pub const VERDICT: Reg = Reg(0);
    pub const R1: Reg = Reg(1);
    pub const R2: Reg = Reg(2);
    pub const R3: Reg = Reg(3);
    pub const R4: Reg = Reg(4);

    /// The 32-bit register `n` (0..16).
    pub const fn r32(n: u32) -> Reg {
        if n & 3 == 0 {
            Reg(n / 4 + 1)
        } else {
            Reg(c::NFT_REG32_00 + n)
        }
    }

    /// Which 32-bit word this register starts at.
    pub const fn word(self) -> u32 {
        if self.0 >= c::NFT_REG32_00 {
            self.0 - c::NFT_REG32_00
        } else {
            (self.0 - 1) * 4
        }
    }

    /// The register `words` 32-bit words after this one (e.g. where the port
    /// of an `addr . port` DNAT target lands: +1 for IPv4, +4 for IPv6).
    pub const fn plus_words(self, words: u32) -> Reg {
        Reg::r32(self.word() + words)
    }

    pub(crate) fn raw(self) -> u32 {
        self.0
    }

    pub(crate) fn from_raw(r: u32) -> Decoded<Reg> {
        match r {
            0..=4 => Ok(Reg(r)),
            r if (c::NFT_REG32_00..c::NFT_REG32_00 + 16).contains(&r) => Ok(Reg::r32(r - c::NFT_REG32_00)),
            r => bad(format!("register {r} is out of range")),
        }
    }
}

impl fmt::Debug for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("verdict"),
            1..=4 => write!(f, "reg{}", self.0),
            _ => write!(f, "reg32_{:02}", self.word()),
        }
    }
}

/// What a rule (or a verdict map) decides.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(String),
    Goto(String),
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Verdict::Accept => 1,
            Verdict::Drop => 0,
            Verdict::Continue => -1,
            Verdict::Jump(_) => -3,
            Verdict::Goto(_) => -4,
            Verdict::Return => -5,
        }
    }

    pub(crate) fn encode(&self, w: &mut AttrWriter) {
        w.nest(c::NFTA_DATA_VERDICT, |v| {
            v.be32(c::NFTA_VERDICT_CODE, self.code() as u32);
            if let Verdict::Jump(chain) | Verdict::Goto(chain) = self {
                v.str(c::NFTA_VERDICT_CHAIN, chain);
            }
        });
    }

    fn decode(buf: &[u8]) -> Decoded<Verdict> {
        let (mut code, mut chain) = (None, None);
        for a in Attrs::new(buf) {
            match a? {
                (c::NFTA_VERDICT_CODE, v) => code = Some(msg::be32(v)? as i32),
                (c::NFTA_VERDICT_CHAIN, v) => chain = Some(msg::cstr(v)?),
                _ => {}
            }
        }
        let need_chain = |chain: Option<String>| chain.map_or_else(|| bad("jump/goto verdict without a chain"), Ok);
        Ok(match code {
            Some(1) => Verdict::Accept,
            Some(0) => Verdict::Drop,
            Some(-1) => Verdict::Continue,
            Some(-3) => Verdict::Jump(need_chain(chain)?),
            Some(-4) => Verdict::Goto(need_chain(chain)?),
            Some(-5) => Verdict::Return,
            other => return bad(format!("unsupported verdict code {other:?}")),
        })
    }
}

/// Data in an immediate expression or a map element: bytes or a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Data {
    Value(Value),
    Verdict(Verdict),
}

impl Data {
    /// Writes `ty` as a nested NFTA_DATA_*.
    pub(crate) fn encode(&self, w: &mut AttrWriter, ty: u16) {
        w.nest(ty, |d| match self {
            Data::Value(v) => {
                d.bytes(c::NFTA_DATA_VALUE, v.as_bytes());
            }
            Data::Verdict(v) => v.encode(d),
        });
    }

    pub(crate) fn decode(buf: &[u8]) -> Decoded<Data> {
        for a in Attrs::new(buf) {
            match a? {
                (c::NFTA_DATA_VALUE, v) => return Ok(Data::Value(Value::from_bytes(v))),
                (c::NFTA_DATA_VERDICT, v) => return Ok(Data::Verdict(Verdict::decode(v)?)),
                _ => {}
            }
        }
        bad("data attribute holds neither a value nor a verdict")
    }

    pub(crate) fn decode_value(buf: &[u8]) -> Decoded<Value> {
        match Data::decode(buf)? {
            Data::Value(v) => Ok(v),
            Data::Verdict(v) => bad(format!("expected a value, got verdict {v:?}")),
        }
    }
}

impl From<Verdict> for Data {
    fn from(v: Verdict) -> Data {
        Data::Verdict(v)
    }
}

impl From<Value> for Data {
    fn from(v: Value) -> Data {
        Data::Value(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenations_pad_each_field_to_a_word() {
        let v = Value::concat([Value::ipv4(Ipv4Addr::new(10, 96, 0, 1)), Value::proto(6), Value::port(80)]);
        assert_eq!(v.as_bytes(), &[10, 96, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0]);
    }

    #[test]
    fn registers_of_the_same_word_are_one_register() {
        assert_eq!(Reg::r32(0), Reg::R1);
        assert_eq!(Reg::r32(4), Reg::R2);
        assert_eq!(Reg::r32(1).raw(), 9);
        assert_eq!(Reg::R1.plus_words(1), Reg::r32(1));
        assert_eq!(Reg::R1.plus_words(4), Reg::R2);
        assert_eq!(Reg::from_raw(12).unwrap(), Reg::R2);
        assert!(Reg::from_raw(5).is_err());
    }

    #[test]
    fn successor_and_predecessor_carry_across_bytes() {
        assert_eq!(Value::port(0x00ff).successor(), Some(Value::port(0x0100)));
        assert_eq!(Value::port(0xffff).successor(), None);
        assert_eq!(Value::port(0x0100).predecessor(), Some(Value::port(0x00ff)));
        assert_eq!(Value::port(0).predecessor(), None);
    }

    #[test]
    fn verdicts_round_trip_through_data_attributes() {
        for v in [Verdict::Accept, Verdict::Drop, Verdict::Continue, Verdict::Return, Verdict::Jump("a".into()), Verdict::Goto("b".into())] {
            let mut w = AttrWriter::new();
            Data::Verdict(v.clone()).encode(&mut w, 1);
            let (_, inner) = Attrs::new(&w.buf).next().unwrap().unwrap();
            assert_eq!(Data::decode(inner).unwrap(), Data::Verdict(v));
        }
    }
}
