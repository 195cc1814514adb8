//! Expressions from netlink, as the kernel dumps them back. Attributes the
//! kernel adds on its own (defaults, derived flags) are folded back so that
//! what was written reads back equal.

use super::expr::*;
use super::msg::{self, bad, Attrs, Decoded};
use super::sys as c;
use super::value::{Data, Reg, Value};
use std::time::Duration;

/// Attributes of one level by type, like the kernel's nla_parse.
pub(crate) struct AttrTable<'a>(Vec<Option<&'a [u8]>>);

impl<'a> AttrTable<'a> {
    pub(crate) fn parse(buf: &'a [u8]) -> Decoded<AttrTable<'a>> {
        let mut t = vec![None; 32];
        for a in Attrs::new(buf) {
            let (ty, v) = a?;
            if (ty as usize) < t.len() {
                t[ty as usize] = Some(v);
            }
        }
        Ok(AttrTable(t))
    }

    pub(crate) fn get(&self, ty: u16) -> Option<&'a [u8]> {
        self.0[ty as usize]
    }

    pub(crate) fn need(&self, ty: u16, what: &str) -> Decoded<&'a [u8]> {
        self.get(ty).map_or_else(|| bad(format!("missing {what}")), Ok)
    }

    pub(crate) fn u32(&self, ty: u16, what: &str) -> Decoded<u32> {
        msg::be32(self.need(ty, what)?)
    }

    pub(crate) fn opt_u32(&self, ty: u16) -> Decoded<Option<u32>> {
        self.get(ty).map(msg::be32).transpose()
    }

    pub(crate) fn opt_u64(&self, ty: u16) -> Decoded<Option<u64>> {
        self.get(ty).map(msg::be64).transpose()
    }

    pub(crate) fn str(&self, ty: u16, what: &str) -> Decoded<String> {
        msg::cstr(self.need(ty, what)?)
    }

    pub(crate) fn opt_str(&self, ty: u16) -> Decoded<Option<String>> {
        self.get(ty).map(msg::cstr).transpose()
    }

    fn reg(&self, ty: u16, what: &str) -> Decoded<Reg> {
        Reg::from_raw(self.u32(ty, what)?)
    }

    fn opt_reg(&self, ty: u16) -> Decoded<Option<Reg>> {
        self.opt_u32(ty)?.map(Reg::from_raw).transpose()
    }

    fn value(&self, ty: u16, what: &str) -> Decoded<Value> {
        Data::decode_value(self.need(ty, what)?)
    }
}

/// Decodes an NFTA_RULE_EXPRESSIONS list.
pub(crate) fn decode_list(buf: &[u8]) -> Decoded<Vec<Expr>> {
    let mut out = Vec::new();
    for a in Attrs::new(buf) {
        let (ty, el) = a?;
        if ty != c::NFTA_LIST_ELEM {
            continue;
        }
        let t = AttrTable::parse(el)?;
        let name = t.str(c::NFTA_EXPR_NAME, "expression name")?;
        let data = t.get(c::NFTA_EXPR_DATA).unwrap_or(&[]);
        let e = decode_one(&name, &AttrTable::parse(data)?).map_err(|e| msg::DecodeError(format!("{name} expression: {e}")))?;
        out.push(e);
    }
    Ok(out)
}

fn optional_max(min: Option<Reg>, max: Option<Reg>) -> Option<Reg> {
    if max == min {
        None
    } else {
        max
    }
}

fn decode_one(name: &str, t: &AttrTable<'_>) -> Decoded<Expr> {
    Ok(match name {
        "payload" => {
            if t.get(c::NFTA_PAYLOAD_SREG).is_some() {
                return bad("payload writes are not supported");
            }
            Expr::Payload {
                base: PayloadBase::from_code(t.u32(c::NFTA_PAYLOAD_BASE, "base")?)?,
                offset: t.u32(c::NFTA_PAYLOAD_OFFSET, "offset")?,
                len: t.u32(c::NFTA_PAYLOAD_LEN, "len")?,
                dreg: t.reg(c::NFTA_PAYLOAD_DREG, "dreg")?,
            }
        }
        "meta" => {
            let key = MetaKey::from_code(t.u32(c::NFTA_META_KEY, "key")?)?;
            match t.opt_reg(c::NFTA_META_DREG)? {
                Some(dreg) => Expr::Meta { key, dreg },
                None => Expr::MetaSet { key, sreg: t.reg(c::NFTA_META_SREG, "sreg")? },
            }
        }
        "ct" => {
            let key = CtKey::from_code(t.u32(c::NFTA_CT_KEY, "key")?)?;
            match t.opt_reg(c::NFTA_CT_DREG)? {
                Some(dreg) => Expr::Ct {
                    key,
                    dir: t.get(c::NFTA_CT_DIRECTION).map(|v| msg::u8_of(v).and_then(|d| CtDir::from_code(d as u32))).transpose()?,
                    dreg,
                },
                None => Expr::CtSet { key, sreg: t.reg(c::NFTA_CT_SREG, "sreg")? },
            }
        }
        "cmp" => Expr::Cmp {
            sreg: t.reg(c::NFTA_CMP_SREG, "sreg")?,
            op: CmpOp::from_code(t.u32(c::NFTA_CMP_OP, "op")?)?,
            data: t.value(c::NFTA_CMP_DATA, "data")?,
        },
        "bitwise" => {
            let op = t.opt_u32(c::NFTA_BITWISE_OP)?.unwrap_or(c::NFT_BITWISE_MASK_XOR);
            if t.get(c::NFTA_BITWISE_SREG2).is_some() {
                return Ok(Expr::Bitwise2 {
                    op: BoolOp::from_code(op)?,
                    sreg: t.reg(c::NFTA_BITWISE_SREG, "sreg")?,
                    sreg2: t.reg(c::NFTA_BITWISE_SREG2, "sreg2")?,
                    dreg: t.reg(c::NFTA_BITWISE_DREG, "dreg")?,
                    len: t.u32(c::NFTA_BITWISE_LEN, "len")?,
                });
            }
            if op != c::NFT_BITWISE_MASK_XOR {
                return bad(format!("bitwise op {op} (shifts) is not supported"));
            }
            Expr::Bitwise {
                sreg: t.reg(c::NFTA_BITWISE_SREG, "sreg")?,
                dreg: t.reg(c::NFTA_BITWISE_DREG, "dreg")?,
                mask: t.value(c::NFTA_BITWISE_MASK, "mask")?,
                xor: t.value(c::NFTA_BITWISE_XOR, "xor")?,
            }
        }
        "range" => Expr::Range {
            sreg: t.reg(c::NFTA_RANGE_SREG, "sreg")?,
            negate: t.u32(c::NFTA_RANGE_OP, "op")? == c::NFT_RANGE_NEQ,
            from: t.value(c::NFTA_RANGE_FROM_DATA, "from")?,
            to: t.value(c::NFTA_RANGE_TO_DATA, "to")?,
        },
        "immediate" => Expr::Immediate {
            dreg: t.reg(c::NFTA_IMMEDIATE_DREG, "dreg")?,
            data: Data::decode(t.need(c::NFTA_IMMEDIATE_DATA, "data")?)?,
        },
        "lookup" => Expr::Lookup {
            set: t.str(c::NFTA_LOOKUP_SET, "set")?,
            sreg: t.reg(c::NFTA_LOOKUP_SREG, "sreg")?,
            dreg: t.opt_reg(c::NFTA_LOOKUP_DREG)?,
            invert: t.opt_u32(c::NFTA_LOOKUP_FLAGS)?.unwrap_or(0) & c::NFT_LOOKUP_F_INV != 0,
        },
        "dynset" => Expr::Dynset {
            set: t.str(c::NFTA_DYNSET_SET_NAME, "set")?,
            op: DynsetOp::from_code(t.u32(c::NFTA_DYNSET_OP, "op")?)?,
            sreg_key: t.reg(c::NFTA_DYNSET_SREG_KEY, "sreg_key")?,
            sreg_data: t.opt_reg(c::NFTA_DYNSET_SREG_DATA)?,
            timeout: t.opt_u64(c::NFTA_DYNSET_TIMEOUT)?.filter(|&ms| ms != 0).map(Duration::from_millis),
        },
        "nat" => {
            let addr = t.opt_reg(c::NFTA_NAT_REG_ADDR_MIN)?;
            let proto = t.opt_reg(c::NFTA_NAT_REG_PROTO_MIN)?;
            Expr::Nat {
                kind: NatKind::from_code(t.u32(c::NFTA_NAT_TYPE, "type")?)?,
                family: NatFamily::from_code(t.u32(c::NFTA_NAT_FAMILY, "family")?)?,
                addr,
                addr_max: optional_max(addr, t.opt_reg(c::NFTA_NAT_REG_ADDR_MAX)?),
                proto,
                proto_max: optional_max(proto, t.opt_reg(c::NFTA_NAT_REG_PROTO_MAX)?),
                flags: NatFlags(t.opt_u32(c::NFTA_NAT_FLAGS)?.unwrap_or(0) & !NatFlags::DERIVED),
            }
        }
        "masq" => {
            let proto = t.opt_reg(c::NFTA_MASQ_REG_PROTO_MIN)?;
            Expr::Masquerade {
                flags: NatFlags(t.opt_u32(c::NFTA_MASQ_FLAGS)?.unwrap_or(0) & !NatFlags::DERIVED),
                proto,
                proto_max: optional_max(proto, t.opt_reg(c::NFTA_MASQ_REG_PROTO_MAX)?),
            }
        }
        "numgen" => Expr::Numgen {
            dreg: t.reg(c::NFTA_NG_DREG, "dreg")?,
            kind: NumgenKind::from_code(t.u32(c::NFTA_NG_TYPE, "type")?)?,
            modulus: t.u32(c::NFTA_NG_MODULUS, "modulus")?,
            offset: t.opt_u32(c::NFTA_NG_OFFSET)?.unwrap_or(0),
        },
        "counter" => Expr::Counter {
            packets: t.opt_u64(c::NFTA_COUNTER_PACKETS)?.unwrap_or(0),
            bytes: t.opt_u64(c::NFTA_COUNTER_BYTES)?.unwrap_or(0),
        },
        "log" => Expr::Log {
            prefix: t.opt_str(c::NFTA_LOG_PREFIX)?,
            to: match t.get(c::NFTA_LOG_GROUP) {
                Some(g) => LogTo::Group { group: msg::be16(g)?, snaplen: t.opt_u32(c::NFTA_LOG_SNAPLEN)?.unwrap_or(0) },
                None => LogTo::Syslog {
                    level: t.opt_u32(c::NFTA_LOG_LEVEL)?.unwrap_or(4),
                    flags: t.opt_u32(c::NFTA_LOG_FLAGS)?.unwrap_or(0),
                },
            },
        },
        "reject" => {
            let code = || t.get(c::NFTA_REJECT_ICMP_CODE).map_or(Ok(0), msg::u8_of);
            Expr::Reject(match t.u32(c::NFTA_REJECT_TYPE, "type")? {
                c::NFT_REJECT_ICMP_UNREACH => Reject::Icmp(code()?),
                c::NFT_REJECT_ICMPX_UNREACH => Reject::Icmpx(IcmpxCode::from_code(code()? as u32)?),
                c::NFT_REJECT_TCP_RST => Reject::TcpReset,
                other => return bad(format!("reject type {other}")),
            })
        }
        "fib" => Expr::Fib {
            flags: FibFlags(t.u32(c::NFTA_FIB_FLAGS, "flags")?),
            result: FibResult::from_code(t.u32(c::NFTA_FIB_RESULT, "result")?)?,
            dreg: t.reg(c::NFTA_FIB_DREG, "dreg")?,
        },
        "limit" => Expr::Limit {
            rate: t.opt_u64(c::NFTA_LIMIT_RATE)?.unwrap_or(0),
            per: Duration::from_secs(t.opt_u64(c::NFTA_LIMIT_UNIT)?.unwrap_or(1)),
            burst: t.opt_u32(c::NFTA_LIMIT_BURST)?.unwrap_or(0),
            kind: LimitKind::from_code(t.opt_u32(c::NFTA_LIMIT_TYPE)?.unwrap_or(0))?,
            invert: t.opt_u32(c::NFTA_LIMIT_FLAGS)?.unwrap_or(0) & c::NFT_LIMIT_F_INV != 0,
        },
        other => return bad(format!("expression kind {other:?} is not supported by weft's nft client")),
    })
}

#[cfg(test)]
mod tests {
    use super::super::expr_encode::encode_list;
    use super::super::msg::AttrWriter;
    use super::super::value::Verdict;
    use super::*;

    /// One of every kind; the kernel round trip is in tests/nft_roundtrip.rs.
    pub(crate) fn every_kind() -> Vec<Expr> {
        vec![
            Expr::Payload { base: PayloadBase::Network, offset: 16, len: 4, dreg: Reg::r32(0) },
            Expr::Meta { key: MetaKey::L4Proto, dreg: Reg::r32(1) },
            Expr::MetaSet { key: MetaKey::Mark, sreg: Reg::R2 },
            Expr::Ct { key: CtKey::ProtoDst, dir: Some(CtDir::Original), dreg: Reg::R1 },
            Expr::CtSet { key: CtKey::Mark, sreg: Reg::R1 },
            Expr::Cmp { sreg: Reg::R1, op: CmpOp::Neq, data: Value::u32(0) },
            Expr::Bitwise { sreg: Reg::R1, dreg: Reg::R1, mask: Value::u32(6), xor: Value::u32(0) },
            Expr::Bitwise2 { op: BoolOp::Xor, sreg: Reg::R1, sreg2: Reg::R2, dreg: Reg::R1, len: 4 },
            Expr::Range { sreg: Reg::R1, negate: true, from: Value::port(1000), to: Value::port(2000) },
            Expr::Immediate { dreg: Reg::VERDICT, data: Data::Verdict(Verdict::Goto("x".into())) },
            Expr::Immediate { dreg: Reg::R2, data: Data::Value(Value::port(8080)) },
            Expr::Lookup { set: "s".into(), sreg: Reg::R1, dreg: Some(Reg::VERDICT), invert: false },
            Expr::Lookup { set: "s".into(), sreg: Reg::R1, dreg: None, invert: true },
            Expr::Dynset { set: "d".into(), op: DynsetOp::Update, sreg_key: Reg::R1, sreg_data: None, timeout: Some(Duration::from_secs(10800)) },
            Expr::Nat { kind: NatKind::Dnat, family: NatFamily::Ipv4, addr: Some(Reg::R1), addr_max: None, proto: Some(Reg::r32(1)), proto_max: None, flags: NatFlags::PERSISTENT },
            Expr::Masquerade { flags: NatFlags::FULLY_RANDOM, proto: None, proto_max: None },
            Expr::Numgen { dreg: Reg::R1, kind: NumgenKind::Random, modulus: 3, offset: 0 },
            Expr::Counter { packets: 0, bytes: 0 },
            Expr::Log { prefix: Some("weft: ".into()), to: LogTo::Syslog { level: 4, flags: 0 } },
            Expr::Log { prefix: None, to: LogTo::Group { group: 2, snaplen: 64 } },
            Expr::Reject(Reject::Icmpx(IcmpxCode::PortUnreachable)),
            Expr::Reject(Reject::Icmp(3)),
            Expr::Reject(Reject::TcpReset),
            Expr::Fib { flags: FibFlags::DADDR, result: FibResult::AddrType, dreg: Reg::R1 },
            Expr::Limit { rate: 10, per: Duration::from_secs(60), burst: 5, kind: LimitKind::Packets, invert: false },
        ]
    }

    #[test]
    fn every_expression_kind_decodes_to_what_was_encoded() {
        let exprs = every_kind();
        let mut w = AttrWriter::new();
        encode_list(&exprs, &mut w);
        assert_eq!(decode_list(&w.buf).unwrap(), exprs);
    }

    #[test]
    fn kernel_filled_fields_fold_back() {
        // The kernel reports max registers equal to min and adds derived NAT flags.
        let mut w = AttrWriter::new();
        w.nest(c::NFTA_LIST_ELEM, |el| {
            el.str(c::NFTA_EXPR_NAME, "nat").nest(c::NFTA_EXPR_DATA, |d| {
                d.be32(c::NFTA_NAT_TYPE, 1).be32(c::NFTA_NAT_FAMILY, 2);
                d.be32(c::NFTA_NAT_REG_ADDR_MIN, 1).be32(c::NFTA_NAT_REG_ADDR_MAX, 1);
                d.be32(c::NFTA_NAT_REG_PROTO_MIN, 9).be32(c::NFTA_NAT_REG_PROTO_MAX, 9);
                d.be32(c::NFTA_NAT_FLAGS, 0b11);
            });
        });
        let got = decode_list(&w.buf).unwrap();
        assert_eq!(got, vec![Expr::Nat { kind: NatKind::Dnat, family: NatFamily::Ipv4, addr: Some(Reg::R1), addr_max: None, proto: Some(Reg::r32(1)), proto_max: None, flags: NatFlags::NONE }]);
    }

    #[test]
    fn unknown_expressions_are_named_in_the_error() {
        let mut w = AttrWriter::new();
        w.nest(c::NFTA_LIST_ELEM, |el| {
            el.str(c::NFTA_EXPR_NAME, "quota");
        });
        let err = decode_list(&w.buf).unwrap_err().to_string();
        assert!(err.contains("quota"), "{err}");
    }
}
