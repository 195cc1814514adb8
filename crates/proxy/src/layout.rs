//! The fixed part of the proxy's nf_tables table `inet weft-proxy`: its sets and maps,
//! base chains and helper chains, following kube-proxy's nftables hook layout.
//!
//! ```text
//! nat-prerouting, nat-output (dstnat)  → services: daddr.proto.port vmap @service-ips[-v6],
//!                                         local daddr (not loopback) proto.port vmap @service-nodeports[-v6]
//! nat-postrouting (srcnat)             → masquerading: hairpin, then the 0x4000 mark
//! filter-prerouting (dstnat-10)        → firewall-check: vmap @firewall-ips[-v6] (LB source ranges)
//! filter-input/forward/output (dstnat-10) → service-endpoints-check / nodeport-endpoints-check:
//!                                         vmap @no-endpoint-*: reject or drop
//! ```
//!
//! Most service ports are plain: a ClusterIP, Cluster traffic policy, no session affinity,
//! at most [`MAX_DISPATCHED`] endpoints. Those have no chain of their own: `service-dispatch`
//! maps their address to `id . endpoint count`, a vmap on the count jumps to the shared
//! chain `balance-v4-N` (masquerade unless from pods, pick one of N slots at random, DNAT
//! to `endpoints-v4[id . slot]`). Adding, changing or removing such a service writes map
//! elements only, which the kernel takes without revalidating the table's chain graph
//! (a verdict element or rule does cost that walk, 10-30 ms at 10,000 services).
//!
//! The other ports have their chains (see [`crate::plan`]); their endpoints live in 64 shard maps per family, `endpoints-v4-S`: `service id . slot` →
//! `address . port` (S = id mod 64); session affinity in `affinity-v4-S`, a dynamic map
//! `affinity id . client address` → `address . port` with per-element timeouts. One global map
//! bound from thousands of chains makes loads quadratic in the kernel, and a map per
//! service makes set lookups by name quadratic (see weft-kernel's examples/nft_bench.rs).

use crate::plan::NodeContext;
use crate::service::Family;
use std::collections::BTreeMap;
use weft_kernel::nft::{self, ct_state, ct_status, priority, BoolOp, Chain, ChainType, Element, Expr, Hook, IcmpxCode, KeyType, MetaKey, NatFlags, Reg, Reject, Set, SetFlags, Value};

pub const TABLE: &str = "weft-proxy";
pub const SHARDS: u32 = 64;
/// The mark bit meaning "masquerade this in postrouting", as kube-proxy's.
pub const MASQ_MARK: u32 = 0x4000;

pub const SERVICES: &str = "services";
pub const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";
pub const MASQUERADING: &str = "masquerading";
pub const REJECT_CHAIN: &str = "reject-chain";
const FIREWALL_CHECK: &str = "firewall-check";
const SERVICE_ENDPOINTS_CHECK: &str = "service-endpoints-check";
const NODEPORT_ENDPOINTS_CHECK: &str = "nodeport-endpoints-check";

pub fn table() -> nft::Table {
    nft::Table::new(nft::Family::Inet, TABLE)
}

pub fn table_ref() -> nft::TableRef {
    table().table_ref()
}

fn suffix(f: Family) -> &'static str {
    match f {
        Family::V4 => "",
        Family::V6 => "-v6",
    }
}

fn short(f: Family) -> &'static str {
    match f {
        Family::V4 => "v4",
        Family::V6 => "v6",
    }
}

pub fn addr_type(f: Family) -> KeyType {
    match f {
        Family::V4 => KeyType::Ipv4Addr,
        Family::V6 => KeyType::Ipv6Addr,
    }
}

/// Maps keyed `daddr . l4proto . dport`.
pub fn service_ips(f: Family) -> String {
    format!("service-ips{}", suffix(f))
}
/// Sets keyed like `no-endpoint-*` of the addresses that reject (nothing serves them): a
/// set, not a vmap element going to the reject chain, so that adding one does not make
/// the kernel walk the table's chain graph.
pub fn reject_services(f: Family) -> String {
    format!("reject-services{}", suffix(f))
}
pub fn reject_nodeports(f: Family) -> String {
    format!("reject-nodeports{}", suffix(f))
}
pub fn no_endpoint_services(f: Family) -> String {
    format!("no-endpoint-services{}", suffix(f))
}
pub fn firewall_ips(f: Family) -> String {
    format!("firewall-ips{}", suffix(f))
}
/// Maps keyed `l4proto . dport`, for node addresses.
pub fn service_nodeports(f: Family) -> String {
    format!("service-nodeports{}", suffix(f))
}
pub fn no_endpoint_nodeports(f: Family) -> String {
    format!("no-endpoint-nodeports{}", suffix(f))
}
/// `daddr . l4proto . dport` -> `id . endpoint count` of plain service ports.
pub fn service_dispatch(f: Family) -> String {
    format!("service-dispatch{}", suffix(f))
}
/// Endpoint count -> goto the shared balance chain for that count.
pub fn balance_by_count(f: Family) -> String {
    format!("balance-by-count-{}", short(f))
}
pub fn balance_chain(f: Family, n: u32) -> String {
    format!("balance-{}-{n}", short(f))
}
/// `id . slot` -> `address . port`, the endpoints of plain service ports.
pub fn endpoints_dispatched(f: Family) -> String {
    format!("endpoints-{}", short(f))
}
/// Plain service ports with more endpoints than this get chains of their own.
pub const MAX_DISPATCHED: u32 = 128;

pub fn endpoints_shard(f: Family, id: u32) -> String {
    format!("endpoints-{}-{}", short(f), id % SHARDS)
}
pub fn affinity_shard(f: Family, id: u32) -> String {
    format!("affinity-{}-{}", short(f), id % SHARDS)
}

/// Every set and map of the table.
pub fn sets() -> Vec<Set> {
    let mut out = Vec::new();
    for f in [Family::V4, Family::V6] {
        let svc_key = [addr_type(f), KeyType::InetProto, KeyType::InetService];
        let port_key = [KeyType::InetProto, KeyType::InetService];
        out.push(Set::vmap(&service_ips(f), &svc_key));
        out.push(Set::vmap(&no_endpoint_services(f), &svc_key));
        out.push(Set::vmap(&firewall_ips(f), &svc_key));
        out.push(Set::vmap(&service_nodeports(f), &port_key));
        out.push(Set::vmap(&no_endpoint_nodeports(f), &port_key));
        out.push(Set::new(&reject_services(f), &svc_key));
        out.push(Set::new(&reject_nodeports(f), &port_key));
        out.push(Set::map(&service_dispatch(f), &svc_key, &[KeyType::Integer32, KeyType::Integer32]));
        out.push(Set::vmap(&balance_by_count(f), &[KeyType::Integer32]));
        out.push(Set::map(&endpoints_dispatched(f), &[KeyType::Integer32, KeyType::Integer32], &[addr_type(f), KeyType::InetService]));
        for s in 0..SHARDS {
            out.push(Set::map(&endpoints_shard(f, s), &[KeyType::Integer32, KeyType::Integer32], &[addr_type(f), KeyType::InetService]));
            out.push(
                Set::map(&affinity_shard(f, s), &[KeyType::Integer32, addr_type(f)], &[addr_type(f), KeyType::InetService])
                    .with_flags(SetFlags { dynamic: true, timeout: true, ..Default::default() }),
            );
        }
    }
    out
}

/// A chain with its rules: what the applier compares and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainObj {
    pub chain: Chain,
    pub rules: Vec<Vec<Expr>>,
}

/// nf_tables objects: chains with their rules, and map elements by map and key. The
/// table's skeleton and each service port own disjoint objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objects {
    pub chains: BTreeMap<String, ChainObj>,
    pub elements: BTreeMap<String, BTreeMap<Value, Element>>,
}

impl Objects {
    pub fn chain(&mut self, chain: Chain, rules: Vec<Vec<Expr>>) {
        self.chains.insert(chain.name.clone(), ChainObj { chain, rules });
    }

    pub fn element(&mut self, set: &str, e: Element) {
        self.elements.entry(set.to_string()).or_default().insert(e.key.clone(), e);
    }

    /// Adds `other`'s objects (disjoint from ours) to these.
    pub fn extend(&mut self, other: &Objects) {
        for (n, c) in &other.chains {
            self.chains.insert(n.clone(), c.clone());
        }
        for (s, elems) in &other.elements {
            let mine = self.elements.entry(s.clone()).or_default();
            for (k, e) in elems {
                mine.insert(k.clone(), e.clone());
            }
        }
    }

    pub fn element_count(&self) -> usize {
        self.elements.values().map(BTreeMap::len).sum()
    }

    pub fn rule_count(&self) -> usize {
        self.chains.values().map(|c| c.rules.len()).sum()
    }
}

pub fn guard(f: Family) -> Vec<Expr> {
    match f {
        Family::V4 => Expr::only_ipv4(),
        Family::V6 => Expr::only_ipv6(),
    }
}

pub fn saddr(f: Family, r: Reg) -> Expr {
    match f {
        Family::V4 => Expr::ip_saddr(r),
        Family::V6 => Expr::ip6_saddr(r),
    }
}

pub fn daddr(f: Family, r: Reg) -> Expr {
    match f {
        Family::V4 => Expr::ip_daddr(r),
        Family::V6 => Expr::ip6_daddr(r),
    }
}

/// `daddr . l4proto . dport` into r32(0..).
pub fn service_key(f: Family) -> Vec<Expr> {
    match f {
        Family::V4 => Expr::ipv4_service_key(),
        Family::V6 => Expr::ipv6_service_key(),
    }
}

/// The destination is an address of this node, not loopback (NodePorts).
fn local_not_loopback(f: Family) -> Vec<Expr> {
    let mut v = Expr::fib_daddr_is_local();
    match f {
        Family::V4 => v.extend([
            Expr::ip_daddr(Reg::R1),
            Expr::Bitwise { sreg: Reg::R1, dreg: Reg::R1, mask: Value::ipv4([255, 0, 0, 0].into()), xor: Value::ipv4([0, 0, 0, 0].into()) },
            Expr::cmp_neq(Reg::R1, Value::ipv4([127, 0, 0, 0].into())),
        ]),
        Family::V6 => v.extend([Expr::ip6_daddr(Reg::R1), Expr::cmp_neq(Reg::R1, Value::ipv6(std::net::Ipv6Addr::LOCALHOST))]),
    }
    v
}

fn port_key() -> Vec<Expr> {
    vec![Expr::l4proto(Reg::r32(0)), Expr::th_dport(Reg::r32(1))]
}

fn ct_new() -> Vec<Expr> {
    Expr::ct_state_any(ct_state::NEW)
}

fn mark_bits(mask: u32, xor: u32) -> Vec<Expr> {
    vec![
        Expr::meta(MetaKey::Mark, Reg::R1),
        Expr::Bitwise { sreg: Reg::R1, dreg: Reg::R1, mask: Value::u32(mask), xor: Value::u32(xor) },
        Expr::MetaSet { key: MetaKey::Mark, sreg: Reg::R1 },
    ]
}

fn masquerade() -> Expr {
    Expr::Masquerade { flags: NatFlags::FULLY_RANDOM, proto: None, proto_max: None }
}

/// Hairpin: a DNATed connection leaving towards its own source (a pod that reached itself
/// through its service) is masqueraded, or the pod would answer itself directly and drop
/// the reply. `saddr ^ daddr == 0` compares two registers (Linux 6.13+). Not over
/// loopback: a host process reaching a host-network endpoint is not hairpin.
fn hairpin(f: Family) -> Vec<Expr> {
    let len = match f {
        Family::V4 => 4,
        Family::V6 => 16,
    };
    let zero = Value::from_bytes(&vec![0; len as usize]);
    [
        guard(f),
        Expr::ct_status_any(ct_status::DNAT),
        vec![
            Expr::meta(MetaKey::OifName, Reg::R1),
            Expr::cmp_neq(Reg::R1, Value::ifname("lo")),
            saddr(f, Reg::R1),
            daddr(f, Reg::R2),
            Expr::Bitwise2 { op: BoolOp::Xor, sreg: Reg::R1, sreg2: Reg::R2, dreg: Reg::R1, len },
            Expr::cmp_eq(Reg::R1, zero),
            masquerade(),
        ],
    ]
    .concat()
}

/// The base chains, helper chains and shared balance chains, with their rules (the
/// balance chains masquerade by `node`'s pod CIDRs).
pub fn skeleton(node: &NodeContext) -> Objects {
    let mut o = Objects::default();
    let filter = |name: &str, hook| Chain::base(name, ChainType::Filter, hook, priority::DSTNAT - 10);
    let jump_new = |chain: &str| [ct_new(), vec![Expr::jump(chain)]].concat();
    o.chain(Chain::base("nat-prerouting", ChainType::Nat, Hook::Prerouting, priority::DSTNAT), vec![vec![Expr::jump(SERVICES)]]);
    o.chain(Chain::base("nat-output", ChainType::Nat, Hook::Output, priority::DSTNAT), vec![vec![Expr::jump(SERVICES)]]);
    o.chain(Chain::base("nat-postrouting", ChainType::Nat, Hook::Postrouting, priority::SRCNAT), vec![vec![Expr::jump(MASQUERADING)]]);
    o.chain(filter("filter-prerouting", Hook::Prerouting), vec![jump_new(FIREWALL_CHECK)]);
    o.chain(filter("filter-input", Hook::Input), vec![jump_new(NODEPORT_ENDPOINTS_CHECK), jump_new(SERVICE_ENDPOINTS_CHECK)]);
    o.chain(filter("filter-forward", Hook::Forward), vec![jump_new(SERVICE_ENDPOINTS_CHECK)]);
    o.chain(filter("filter-output", Hook::Output), vec![jump_new(SERVICE_ENDPOINTS_CHECK), jump_new(FIREWALL_CHECK)]);

    let by_key = |map: fn(Family) -> String| -> Vec<Vec<Expr>> { [Family::V4, Family::V6].into_iter().map(|f| [guard(f), service_key(f), vec![Expr::vmap(&map(f), Reg::R1)]].concat()).collect() };
    let by_port = |map: fn(Family) -> String| -> Vec<Vec<Expr>> {
        [Family::V4, Family::V6].into_iter().map(|f| [guard(f), local_not_loopback(f), port_key(), vec![Expr::vmap(&map(f), Reg::R1)]].concat()).collect()
    };
    let dispatch: Vec<Vec<Expr>> = [Family::V4, Family::V6]
        .into_iter()
        .map(|f| [guard(f), service_key(f), vec![Expr::map(&service_dispatch(f), Reg::r32(0), Reg::r32(5)), Expr::vmap(&balance_by_count(f), Reg::r32(6))]].concat())
        .collect();
    o.chain(Chain::regular(SERVICES), [dispatch, by_key(service_ips), by_port(service_nodeports)].concat());
    for f in [Family::V4, Family::V6] {
        for n in 1..=MAX_DISPATCHED {
            let name = balance_chain(f, n);
            o.chain(Chain::regular(&name), crate::render::shared_balance(f, n, node));
            o.element(&balance_by_count(f), Element::verdict(Value::u32(n), nft::Verdict::Goto(name)));
        }
    }
    o.chain(Chain::regular(FIREWALL_CHECK), by_key(firewall_ips));
    let reject_by_key = [Family::V4, Family::V6].into_iter().map(|f| [guard(f), service_key(f), vec![Expr::in_set(&reject_services(f), Reg::R1), Expr::goto(REJECT_CHAIN)]].concat());
    let reject_by_port = [Family::V4, Family::V6].into_iter().map(|f| [guard(f), local_not_loopback(f), port_key(), vec![Expr::in_set(&reject_nodeports(f), Reg::R1), Expr::goto(REJECT_CHAIN)]].concat());
    o.chain(Chain::regular(SERVICE_ENDPOINTS_CHECK), reject_by_key.chain(by_key(no_endpoint_services)).collect());
    o.chain(Chain::regular(NODEPORT_ENDPOINTS_CHECK), reject_by_port.chain(by_port(no_endpoint_nodeports)).collect());
    o.chain(Chain::regular(REJECT_CHAIN), vec![vec![Expr::reject(Reject::Icmpx(IcmpxCode::PortUnreachable))]]);
    o.chain(Chain::regular(MARK_FOR_MASQUERADE), vec![mark_bits(!MASQ_MARK, MASQ_MARK)]);
    o.chain(
        Chain::regular(MASQUERADING),
        vec![
            hairpin(Family::V4),
            hairpin(Family::V6),
            vec![
                Expr::meta(MetaKey::Mark, Reg::R1),
                Expr::Bitwise { sreg: Reg::R1, dreg: Reg::R1, mask: Value::u32(MASQ_MARK), xor: Value::u32(0) },
                Expr::cmp_eq(Reg::R1, Value::u32(0)),
                Expr::ret(),
            ],
            [mark_bits(!MASQ_MARK, 0), vec![masquerade()]].concat(),
        ],
    );
    o
}
