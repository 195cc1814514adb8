//! Expressions to netlink: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }.

use super::expr::{Expr, LogTo, NatFlags, Reject};
use super::msg::AttrWriter;
use super::sys as c;
use super::value::{Data, Reg};

/// Writes a list of expressions as NFTA_LIST_ELEMs into `w`.
pub(crate) fn encode_list(exprs: &[Expr], w: &mut AttrWriter) {
    for e in exprs {
        w.nest(c::NFTA_LIST_ELEM, |el| {
            el.str(c::NFTA_EXPR_NAME, e.kind());
            el.nest(c::NFTA_EXPR_DATA, |d| encode_data(e, d));
        });
    }
}

fn reg(w: &mut AttrWriter, ty: u16, r: Reg) {
    w.be32(ty, r.raw());
}

fn opt_reg(w: &mut AttrWriter, ty: u16, r: Option<Reg>) {
    if let Some(r) = r {
        reg(w, ty, r);
    }
}

fn value(w: &mut AttrWriter, ty: u16, v: &super::value::Value) {
    Data::Value(v.clone()).encode(w, ty);
}

fn encode_data(e: &Expr, w: &mut AttrWriter) {
    match e {
        Expr::Payload { base, offset, len, dreg } => {
            reg(w, c::NFTA_PAYLOAD_DREG, *dreg);
            w.be32(c::NFTA_PAYLOAD_BASE, base.code())
                .be32(c::NFTA_PAYLOAD_OFFSET, *offset)
                .be32(c::NFTA_PAYLOAD_LEN, *len);
        }
        Expr::Meta { key, dreg } => {
            w.be32(c::NFTA_META_KEY, key.code());
            reg(w, c::NFTA_META_DREG, *dreg);
        }
        Expr::MetaSet { key, sreg } => {
            w.be32(c::NFTA_META_KEY, key.code());
            reg(w, c::NFTA_META_SREG, *sreg);
        }
        Expr::Ct { key, dir, dreg } => {
            reg(w, c::NFTA_CT_DREG, *dreg);
            w.be32(c::NFTA_CT_KEY, key.code());
            if let Some(d) = dir {
                w.u8(c::NFTA_CT_DIRECTION, d.code() as u8);
            }
        }
        Expr::CtSet { key, sreg } => {
            reg(w, c::NFTA_CT_SREG, *sreg);
            w.be32(c::NFTA_CT_KEY, key.code());
        }
        Expr::Cmp { sreg, op, data } => {
            reg(w, c::NFTA_CMP_SREG, *sreg);
            w.be32(c::NFTA_CMP_OP, op.code());
            value(w, c::NFTA_CMP_DATA, data);
        }
        Expr::Bitwise { sreg, dreg, mask, xor } => {
            reg(w, c::NFTA_BITWISE_SREG, *sreg);
            reg(w, c::NFTA_BITWISE_DREG, *dreg);
            w.be32(c::NFTA_BITWISE_LEN, mask.len() as u32);
            w.be32(c::NFTA_BITWISE_OP, c::NFT_BITWISE_MASK_XOR);
            value(w, c::NFTA_BITWISE_MASK, mask);
            value(w, c::NFTA_BITWISE_XOR, xor);
        }
        Expr::Bitwise2 { op, sreg, sreg2, dreg, len } => {
            reg(w, c::NFTA_BITWISE_SREG, *sreg);
            reg(w, c::NFTA_BITWISE_SREG2, *sreg2);
            reg(w, c::NFTA_BITWISE_DREG, *dreg);
            w.be32(c::NFTA_BITWISE_LEN, *len);
            w.be32(c::NFTA_BITWISE_OP, op.code());
        }
        Expr::Range { sreg, negate, from, to } => {
            reg(w, c::NFTA_RANGE_SREG, *sreg);
            w.be32(c::NFTA_RANGE_OP, if *negate { c::NFT_RANGE_NEQ } else { c::NFT_RANGE_EQ });
            value(w, c::NFTA_RANGE_FROM_DATA, from);
            value(w, c::NFTA_RANGE_TO_DATA, to);
        }
        Expr::Immediate { dreg, data } => {
            reg(w, c::NFTA_IMMEDIATE_DREG, *dreg);
            data.encode(w, c::NFTA_IMMEDIATE_DATA);
        }
        Expr::Lookup { set, sreg, dreg, invert } => {
            w.str(c::NFTA_LOOKUP_SET, set);
            reg(w, c::NFTA_LOOKUP_SREG, *sreg);
            opt_reg(w, c::NFTA_LOOKUP_DREG, *dreg);
            if *invert {
                w.be32(c::NFTA_LOOKUP_FLAGS, c::NFT_LOOKUP_F_INV);
            }
        }
        Expr::Dynset { set, op, sreg_key, sreg_data, timeout } => {
            w.str(c::NFTA_DYNSET_SET_NAME, set);
            w.be32(c::NFTA_DYNSET_OP, op.code());
            reg(w, c::NFTA_DYNSET_SREG_KEY, *sreg_key);
            opt_reg(w, c::NFTA_DYNSET_SREG_DATA, *sreg_data);
            if let Some(t) = timeout {
                w.be64(c::NFTA_DYNSET_TIMEOUT, t.as_millis() as u64);
            }
        }
        Expr::Nat { kind, family, addr, addr_max, proto, proto_max, flags } => {
            w.be32(c::NFTA_NAT_TYPE, kind.code()).be32(c::NFTA_NAT_FAMILY, family.code());
            opt_reg(w, c::NFTA_NAT_REG_ADDR_MIN, *addr);
            opt_reg(w, c::NFTA_NAT_REG_ADDR_MAX, *addr_max);
            opt_reg(w, c::NFTA_NAT_REG_PROTO_MIN, *proto);
            opt_reg(w, c::NFTA_NAT_REG_PROTO_MAX, *proto_max);
            if *flags != NatFlags::NONE {
                w.be32(c::NFTA_NAT_FLAGS, flags.0);
            }
        }
        Expr::Masquerade { flags, proto, proto_max } => {
            if *flags != NatFlags::NONE {
                w.be32(c::NFTA_MASQ_FLAGS, flags.0);
            }
            opt_reg(w, c::NFTA_MASQ_REG_PROTO_MIN, *proto);
            opt_reg(w, c::NFTA_MASQ_REG_PROTO_MAX, *proto_max);
        }
        Expr::Numgen { dreg, kind, modulus, offset } => {
            reg(w, c::NFTA_NG_DREG, *dreg);
            w.be32(c::NFTA_NG_MODULUS, *modulus)
                .be32(c::NFTA_NG_TYPE, kind.code())
                .be32(c::NFTA_NG_OFFSET, *offset);
        }
        Expr::Counter { packets, bytes } => {
            w.be64(c::NFTA_COUNTER_BYTES, *bytes).be64(c::NFTA_COUNTER_PACKETS, *packets);
        }
        Expr::Log { prefix, to } => {
            if let Some(p) = prefix {
                w.str(c::NFTA_LOG_PREFIX, p);
            }
            match to {
                LogTo::Syslog { level, flags } => {
                    w.be32(c::NFTA_LOG_LEVEL, *level);
                    if *flags != 0 {
                        w.be32(c::NFTA_LOG_FLAGS, *flags);
                    }
                }
                LogTo::Group { group, snaplen } => {
                    w.be16(c::NFTA_LOG_GROUP, *group);
                    if *snaplen != 0 {
                        w.be32(c::NFTA_LOG_SNAPLEN, *snaplen);
                    }
                }
            }
        }
        Expr::Reject(r) => match r {
            Reject::Icmp(code) => {
                w.be32(c::NFTA_REJECT_TYPE, c::NFT_REJECT_ICMP_UNREACH).u8(c::NFTA_REJECT_ICMP_CODE, *code);
            }
            Reject::Icmpx(code) => {
                w.be32(c::NFTA_REJECT_TYPE, c::NFT_REJECT_ICMPX_UNREACH)
                    .u8(c::NFTA_REJECT_ICMP_CODE, code.code() as u8);
            }
            Reject::TcpReset => {
                w.be32(c::NFTA_REJECT_TYPE, c::NFT_REJECT_TCP_RST);
            }
        },
        Expr::Fib { flags, result, dreg } => {
            reg(w, c::NFTA_FIB_DREG, *dreg);
            w.be32(c::NFTA_FIB_RESULT, result.code()).be32(c::NFTA_FIB_FLAGS, flags.0);
        }
        Expr::Limit { rate, per, burst, kind, invert } => {
            w.be64(c::NFTA_LIMIT_RATE, *rate)
                .be64(c::NFTA_LIMIT_UNIT, per.as_secs())
                .be32(c::NFTA_LIMIT_BURST, *burst)
                .be32(c::NFTA_LIMIT_TYPE, kind.code())
                .be32(c::NFTA_LIMIT_FLAGS, if *invert { c::NFT_LIMIT_F_INV } else { 0 });
        }
    }
}
