//! The expressions a rule is made of, typed. Each variant maps to one kernel
//! expression (`payload`, `meta`, `ct`, `nat`, ...); `expr_encode` and
//! `expr_decode` translate them to and from netlink, and `expr_build` has
//! the shorthands a ruleset is usually written with.

use super::msg::Decoded;
use super::sys as c;
use super::value::{Data, Reg, Value};
use std::time::Duration;

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $code:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            pub(crate) fn code(self) -> u32 {
                match self { $($name::$v => $code),+ }
            }
            pub(crate) fn from_code(code: u32) -> Decoded<$name> {
                $(if code == $code { return Ok($name::$v); })+
                $crate::nft::msg::bad(format!("unsupported {} {code}", stringify!($name)))
            }
        }
    };
}
pub(crate) use code_enum;

code_enum!(
    /// Which header a payload offset counts from.
    PayloadBase { Link = c::NFT_PAYLOAD_LL_HEADER, Network = c::NFT_PAYLOAD_NETWORK_HEADER, Transport = c::NFT_PAYLOAD_TRANSPORT_HEADER, Inner = c::NFT_PAYLOAD_INNER_HEADER }
);

code_enum!(
    /// Packet metadata (`meta KEY`).
    MetaKey {
        Len = c::NFT_META_LEN, Protocol = c::NFT_META_PROTOCOL, Priority = c::NFT_META_PRIORITY,
        Mark = c::NFT_META_MARK, Iif = c::NFT_META_IIF, Oif = c::NFT_META_OIF,
        IifName = c::NFT_META_IIFNAME, OifName = c::NFT_META_OIFNAME, IifType = c::NFT_META_IFTYPE,
        OifType = c::NFT_META_OIFTYPE, SkUid = c::NFT_META_SKUID, SkGid = c::NFT_META_SKGID,
        NfTrace = c::NFT_META_NFTRACE, NfProto = c::NFT_META_NFPROTO, L4Proto = c::NFT_META_L4PROTO,
        PktType = c::NFT_META_PKTTYPE, Cpu = c::NFT_META_CPU, IifGroup = c::NFT_META_IIFGROUP,
        OifGroup = c::NFT_META_OIFGROUP, Cgroup = c::NFT_META_CGROUP, PRandom = c::NFT_META_PRANDOM,
        IifKind = c::NFT_META_IIFKIND, OifKind = c::NFT_META_OIFKIND,
    }
);

code_enum!(
    /// Conntrack fields (`ct KEY`).
    CtKey {
        State = c::NFT_CT_STATE, Direction = c::NFT_CT_DIRECTION, Status = c::NFT_CT_STATUS,
        Mark = c::NFT_CT_MARK, Expiration = c::NFT_CT_EXPIRATION, Helper = c::NFT_CT_HELPER,
        L3Protocol = c::NFT_CT_L3PROTOCOL, Protocol = c::NFT_CT_PROTOCOL,
        ProtoSrc = c::NFT_CT_PROTO_SRC, ProtoDst = c::NFT_CT_PROTO_DST, Labels = c::NFT_CT_LABELS,
        Pkts = c::NFT_CT_PKTS, Bytes = c::NFT_CT_BYTES, AvgPkt = c::NFT_CT_AVGPKT, Zone = c::NFT_CT_ZONE,
        EventMask = c::NFT_CT_EVENTMASK, SrcIp = c::NFT_CT_SRC_IP, DstIp = c::NFT_CT_DST_IP,
        SrcIp6 = c::NFT_CT_SRC_IP6, DstIp6 = c::NFT_CT_DST_IP6, Id = c::NFT_CT_ID,
    }
);

code_enum!(
    /// Conntrack tuple direction, for the per-direction keys (addresses, ports, counters).
    CtDir { Original = 0, Reply = 1 }
);

code_enum!(CmpOp { Eq = c::NFT_CMP_EQ, Neq = c::NFT_CMP_NEQ, Lt = c::NFT_CMP_LT, Lte = c::NFT_CMP_LTE, Gt = c::NFT_CMP_GT, Gte = c::NFT_CMP_GTE });

code_enum!(NatKind { Snat = c::NFT_NAT_SNAT, Dnat = c::NFT_NAT_DNAT });

code_enum!(
    /// The address family of NAT targets (NFPROTO_IPV4/IPV6).
    NatFamily { Ipv4 = 2, Ipv6 = 10 }
);

code_enum!(
    /// A boolean op between two registers (`ip saddr ^ ip daddr`, Linux 6.13+).
    BoolOp { And = c::NFT_BITWISE_AND, Or = c::NFT_BITWISE_OR, Xor = c::NFT_BITWISE_XOR }
);

code_enum!(NumgenKind { Inc = c::NFT_NG_INCREMENTAL, Random = c::NFT_NG_RANDOM });

code_enum!(DynsetOp { Add = c::NFT_DYNSET_OP_ADD, Update = c::NFT_DYNSET_OP_UPDATE, Delete = c::NFT_DYNSET_OP_DELETE });

code_enum!(
    /// What a fib lookup returns.
    FibResult { Oif = c::NFT_FIB_RESULT_OIF, OifName = c::NFT_FIB_RESULT_OIFNAME, AddrType = c::NFT_FIB_RESULT_ADDRTYPE }
);

code_enum!(LimitKind { Packets = c::NFT_LIMIT_PKTS, Bytes = c::NFT_LIMIT_PKT_BYTES });

code_enum!(
    /// Family-independent ICMP codes for `reject with icmpx`.
    IcmpxCode {
        NoRoute = c::NFT_REJECT_ICMPX_NO_ROUTE, PortUnreachable = c::NFT_REJECT_ICMPX_PORT_UNREACH,
        HostUnreachable = c::NFT_REJECT_ICMPX_HOST_UNREACH, AdminProhibited = c::NFT_REJECT_ICMPX_ADMIN_PROHIBITED,
    }
);

/// NAT range flags the caller chooses (the kernel derives "map ips" and
/// "proto specified" from the registers given, and they are not shown here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NatFlags(pub u32);

impl NatFlags {
    pub const NONE: NatFlags = NatFlags(0);
    pub const RANDOM: NatFlags = NatFlags(1 << 2);
    pub const PERSISTENT: NatFlags = NatFlags(1 << 3);
    pub const FULLY_RANDOM: NatFlags = NatFlags(1 << 4);
    pub const NETMAP: NatFlags = NatFlags(1 << 6);
    pub(crate) const DERIVED: u32 = 0b11;
}

/// Inputs of a fib lookup (`fib daddr . iif`), as bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FibFlags(pub u32);

impl FibFlags {
    pub const SADDR: FibFlags = FibFlags(c::NFTA_FIB_F_SADDR);
    pub const DADDR: FibFlags = FibFlags(c::NFTA_FIB_F_DADDR);
    pub const MARK: FibFlags = FibFlags(c::NFTA_FIB_F_MARK);
    pub const IIF: FibFlags = FibFlags(c::NFTA_FIB_F_IIF);
    pub const OIF: FibFlags = FibFlags(c::NFTA_FIB_F_OIF);
    pub const PRESENT: FibFlags = FibFlags(c::NFTA_FIB_F_PRESENT);
}

impl std::ops::BitOr for FibFlags {
    type Output = FibFlags;
    fn bitor(self, o: FibFlags) -> FibFlags {
        FibFlags(self.0 | o.0)
    }
}

/// Address types a `fib ... type` lookup yields (RTN_*), host order u32.
pub mod addr_type {
    pub const UNICAST: u32 = 1;
    pub const LOCAL: u32 = 2;
    pub const BROADCAST: u32 = 3;
    pub const MULTICAST: u32 = 5;
}

/// Conntrack state bits as `ct state` loads them (host order u32).
pub mod ct_state {
    pub const INVALID: u32 = 1;
    pub const ESTABLISHED: u32 = 1 << 1;
    pub const RELATED: u32 = 1 << 2;
    pub const NEW: u32 = 1 << 3;
    pub const UNTRACKED: u32 = 1 << 6;
}

/// Conntrack status bits as `ct status` loads them (host order u32).
pub mod ct_status {
    pub const EXPECTED: u32 = 1;
    pub const SEEN_REPLY: u32 = 1 << 1;
    pub const ASSURED: u32 = 1 << 2;
    pub const CONFIRMED: u32 = 1 << 3;
    pub const SNAT: u32 = 1 << 4;
    pub const DNAT: u32 = 1 << 5;
}

/// `reject with ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// An ICMP (ip) or ICMPv6 (ip6) destination-unreachable with this code.
    Icmp(u8),
    /// For inet tables: the matching ICMP or ICMPv6 code for the packet's family.
    Icmpx(IcmpxCode),
    TcpReset,
}

/// Where `log` sends packets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogTo {
    /// The kernel log, at a syslog level (4 = warning) with NF_LOG_* flags.
    Syslog { level: u32, flags: u32 },
    /// An nflog group, copying up to `snaplen` bytes (0 = all).
    Group { group: u16, snaplen: u32 },
}

/// One expression of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expr {
    /// Load `len` bytes at `offset` from a header into `dreg`.
    Payload { base: PayloadBase, offset: u32, len: u32, dreg: Reg },
    Meta { key: MetaKey, dreg: Reg },
    MetaSet { key: MetaKey, sreg: Reg },
    Ct { key: CtKey, dir: Option<CtDir>, dreg: Reg },
    CtSet { key: CtKey, sreg: Reg },
    Cmp { sreg: Reg, op: CmpOp, data: Value },
    /// `dreg = (sreg & mask) ^ xor`, over `mask.len()` bytes.
    Bitwise { sreg: Reg, dreg: Reg, mask: Value, xor: Value },
    /// `dreg = sreg OP sreg2`, over `len` bytes (Linux 6.13+).
    Bitwise2 { op: BoolOp, sreg: Reg, sreg2: Reg, dreg: Reg, len: u32 },
    /// `from <= sreg <= to` (or outside it when `negate`).
    Range { sreg: Reg, negate: bool, from: Value, to: Value },
    /// A value into a register, or a verdict (into `Reg::VERDICT`).
    Immediate { dreg: Reg, data: Data },
    /// Set membership of `sreg` (or, with `dreg`, a map lookup into it).
    Lookup { set: String, sreg: Reg, dreg: Option<Reg>, invert: bool },
    /// Add/update/delete an element of a dynamic set from the packet path.
    Dynset { set: String, op: DynsetOp, sreg_key: Reg, sreg_data: Option<Reg>, timeout: Option<Duration> },
    /// SNAT/DNAT to the address (and port) held in registers. `*_max` of
    /// `None` means a single address (port), not a range.
    Nat {
        kind: NatKind,
        family: NatFamily,
        addr: Option<Reg>,
        addr_max: Option<Reg>,
        proto: Option<Reg>,
        proto_max: Option<Reg>,
        flags: NatFlags,
    },
    Masquerade { flags: NatFlags, proto: Option<Reg>, proto_max: Option<Reg> },
    /// `numgen random|inc mod modulus offset offset` into `dreg` (host-order u32).
    Numgen { dreg: Reg, kind: NumgenKind, modulus: u32, offset: u32 },
    Counter { packets: u64, bytes: u64 },
    Log { prefix: Option<String>, to: LogTo },
    Reject(Reject),
    Fib { flags: FibFlags, result: FibResult, dreg: Reg },
    /// `limit rate [over] rate/unit burst burst`.
    Limit { rate: u64, per: Duration, burst: u32, kind: LimitKind, invert: bool },
}

impl Expr {
    /// The kernel's name for this expression.
    pub fn kind(&self) -> &'static str {
        match self {
            Expr::Payload { .. } => "payload",
            Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
            Expr::Ct { .. } | Expr::CtSet { .. } => "ct",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } | Expr::Bitwise2 { .. } => "bitwise",
            Expr::Range { .. } => "range",
            Expr::Immediate { .. } => "immediate",
            Expr::Lookup { .. } => "lookup",
            Expr::Dynset { .. } => "dynset",
            Expr::Nat { .. } => "nat",
            Expr::Masquerade { .. } => "masq",
            Expr::Numgen { .. } => "numgen",
            Expr::Counter { .. } => "counter",
            Expr::Log { .. } => "log",
            Expr::Reject(_) => "reject",
            Expr::Fib { .. } => "fib",
            Expr::Limit { .. } => "limit",
        }
    }
}
