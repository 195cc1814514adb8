//! Shorthands for the expressions rules are usually written with, so call
//! sites read like nft syntax instead of offsets and register numbers.

use super::expr::*;
use super::value::{Data, Reg, Value, Verdict};
use std::time::Duration;

impl Expr {
    fn payload(base: PayloadBase, offset: u32, len: u32, dreg: Reg) -> Expr {
        Expr::Payload { base, offset, len, dreg }
    }

    /// `meta nfproto ipv4`: in inet (and bridge/netdev) tables, put this
    /// before `ip_*` loads, as nft does implicitly, so IPv6 packets are not
    /// read at IPv4 offsets.
    pub fn only_ipv4() -> Vec<Expr> {
        vec![Expr::meta(MetaKey::NfProto, Reg::R1), Expr::cmp_eq(Reg::R1, Value::u8(2))]
    }

    /// `meta nfproto ipv6`, the guard for `ip6_*` loads in inet tables.
    pub fn only_ipv6() -> Vec<Expr> {
        vec![Expr::meta(MetaKey::NfProto, Reg::R1), Expr::cmp_eq(Reg::R1, Value::u8(10))]
    }

    /// `ip saddr` (raw network-header offsets: see [`Expr::only_ipv4`]).
    pub fn ip_saddr(dreg: Reg) -> Expr {
        Expr::payload(PayloadBase::Network, 12, 4, dreg)
    }

    /// `ip daddr`
    pub fn ip_daddr(dreg: Reg) -> Expr {
        Expr::payload(PayloadBase::Network, 16, 4, dreg)
    }

    /// `ip6 saddr`
    pub fn ip6_saddr(dreg: Reg) -> Expr {
        Expr::payload(PayloadBase::Network, 8, 16, dreg)
    }

    /// `ip6 daddr`
    pub fn ip6_daddr(dreg: Reg) -> Expr {
        Expr::payload(PayloadBase::Network, 24, 16, dreg)
    }

    /// `th sport` (TCP, UDP and SCTP keep ports at the same offsets).
    pub fn th_sport(dreg: Reg) -> Expr {
        Expr::payload(PayloadBase::Transport, 0, 2, dreg)
    }

    /// `th dport`
    pub fn th_dport(dreg: Reg) -> Expr {
        Expr::payload(PayloadBase::Transport, 2, 2, dreg)
    }

    /// `meta l4proto`
    pub fn l4proto(dreg: Reg) -> Expr {
        Expr::Meta { key: MetaKey::L4Proto, dreg }
    }

    pub fn meta(key: MetaKey, dreg: Reg) -> Expr {
        Expr::Meta { key, dreg }
    }

    pub fn ct(key: CtKey, dreg: Reg) -> Expr {
        Expr::Ct { key, dir: None, dreg }
    }

    pub fn cmp_eq(sreg: Reg, data: Value) -> Expr {
        Expr::Cmp { sreg, op: CmpOp::Eq, data }
    }

    pub fn cmp_neq(sreg: Reg, data: Value) -> Expr {
        Expr::Cmp { sreg, op: CmpOp::Neq, data }
    }

    /// A value into a register.
    pub fn load(dreg: Reg, value: Value) -> Expr {
        Expr::Immediate { dreg, data: Data::Value(value) }
    }

    pub fn verdict(v: Verdict) -> Expr {
        Expr::Immediate { dreg: Reg::VERDICT, data: Data::Verdict(v) }
    }

    pub fn accept() -> Expr {
        Expr::verdict(Verdict::Accept)
    }

    pub fn drop() -> Expr {
        Expr::verdict(Verdict::Drop)
    }

    pub fn ret() -> Expr {
        Expr::verdict(Verdict::Return)
    }

    pub fn jump(chain: &str) -> Expr {
        Expr::verdict(Verdict::Jump(chain.to_string()))
    }

    pub fn goto(chain: &str) -> Expr {
        Expr::verdict(Verdict::Goto(chain.to_string()))
    }

    /// `sreg @set`
    pub fn in_set(set: &str, sreg: Reg) -> Expr {
        Expr::Lookup { set: set.to_string(), sreg, dreg: None, invert: false }
    }

    /// `sreg != @set`
    pub fn not_in_set(set: &str, sreg: Reg) -> Expr {
        Expr::Lookup { set: set.to_string(), sreg, dreg: None, invert: true }
    }

    /// `sreg map @set` into `dreg`.
    pub fn map(set: &str, sreg: Reg, dreg: Reg) -> Expr {
        Expr::Lookup { set: set.to_string(), sreg, dreg: Some(dreg), invert: false }
    }

    /// `sreg vmap @set`: the map's verdict becomes the rule's.
    pub fn vmap(set: &str, sreg: Reg) -> Expr {
        Expr::map(set, sreg, Reg::VERDICT)
    }

    pub fn counter() -> Expr {
        Expr::Counter { packets: 0, bytes: 0 }
    }

    /// `dnat to <addr in addr>[:<port in port>]`.
    pub fn dnat(family: NatFamily, addr: Reg, port: Option<Reg>) -> Expr {
        Expr::Nat { kind: NatKind::Dnat, family, addr: Some(addr), addr_max: None, proto: port, proto_max: None, flags: NatFlags::NONE }
    }

    /// `snat to <addr in addr>[:<port in port>]`.
    pub fn snat(family: NatFamily, addr: Reg, port: Option<Reg>) -> Expr {
        Expr::Nat { kind: NatKind::Snat, family, addr: Some(addr), addr_max: None, proto: port, proto_max: None, flags: NatFlags::NONE }
    }

    pub fn masquerade() -> Expr {
        Expr::Masquerade { flags: NatFlags::NONE, proto: None, proto_max: None }
    }

    /// `numgen random mod modulus` into `dreg`.
    pub fn numgen_random(dreg: Reg, modulus: u32) -> Expr {
        Expr::Numgen { dreg, kind: NumgenKind::Random, modulus, offset: 0 }
    }

    /// `update @set { key [timeout t] }`: adds the key, or refreshes its timeout.
    pub fn update_set(set: &str, key: Reg, timeout: Option<Duration>) -> Expr {
        Expr::Dynset { set: set.to_string(), op: DynsetOp::Update, sreg_key: key, sreg_data: None, timeout }
    }

    pub fn reject(r: Reject) -> Expr {
        Expr::Reject(r)
    }

    /// `ip daddr . meta l4proto . th dport` into r32(0..3): the key of an IPv4
    /// service map (`Value::concat([ipv4, proto, port])`).
    pub fn ipv4_service_key() -> Vec<Expr> {
        vec![Expr::ip_daddr(Reg::r32(0)), Expr::l4proto(Reg::r32(1)), Expr::th_dport(Reg::r32(2))]
    }

    /// `ip6 daddr . meta l4proto . th dport` into r32(0..6).
    pub fn ipv6_service_key() -> Vec<Expr> {
        vec![Expr::ip6_daddr(Reg::r32(0)), Expr::l4proto(Reg::r32(4)), Expr::th_dport(Reg::r32(5))]
    }

    /// `ct state & bits != 0`, e.g. `ct_state_any(ct_state::ESTABLISHED | ct_state::RELATED)`.
    pub fn ct_state_any(bits: u32) -> Vec<Expr> {
        Expr::ct_bits(CtKey::State, bits)
    }

    /// `ct status & bits != 0`, e.g. `ct_status_any(ct_status::DNAT)`.
    pub fn ct_status_any(bits: u32) -> Vec<Expr> {
        Expr::ct_bits(CtKey::Status, bits)
    }

    fn ct_bits(key: CtKey, bits: u32) -> Vec<Expr> {
        vec![
            Expr::ct(key, Reg::R1),
            Expr::Bitwise { sreg: Reg::R1, dreg: Reg::R1, mask: Value::u32(bits), xor: Value::u32(0) },
            Expr::cmp_neq(Reg::R1, Value::u32(0)),
        ]
    }

    /// `fib daddr type local`.
    pub fn fib_daddr_is_local() -> Vec<Expr> {
        vec![
            Expr::Fib { flags: FibFlags::DADDR, result: FibResult::AddrType, dreg: Reg::R1 },
            Expr::cmp_eq(Reg::R1, Value::u32(addr_type::LOCAL)),
        ]
    }
}
