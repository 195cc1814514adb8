//! One service port's compiled rules ([`crate::plan`]) → its nf_tables objects: map
//! elements that capture its addresses, its chains, and its endpoints in the shard map of
//! its service id. Pure.
//!
//! Registers of a balance rule (32-bit words): affinity key `aff id . saddr` at 0..=4,
//! endpoint key `id . slot` at 5..=6, the chosen `address . port` from word 8 (R3).

use crate::layout::{self, affinity_shard, endpoints_shard, saddr, Objects};
use crate::plan::{NodeContext, Rule, ServiceRules, Target, Verdict};
use crate::service::{Family, Proto, ServicePort};
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Duration;
use weft_kernel::nft::{self, Chain, Element, Expr, FibFlags, FibResult, NatFamily, Reg, Value};

pub fn proto_number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Sctp => 132,
    }
}

fn nat_family(f: Family) -> NatFamily {
    match f {
        Family::V4 => NatFamily::Ipv4,
        Family::V6 => NatFamily::Ipv6,
    }
}

/// The words an address takes in registers.
fn addr_words(f: Family) -> u32 {
    match f {
        Family::V4 => 1,
        Family::V6 => 4,
    }
}

pub fn service_key(addr: IpAddr, proto: Proto, port: u16) -> Value {
    Value::concat([Value::ip(addr), Value::proto(proto_number(proto)), Value::port(port)])
}

pub fn port_key(proto: Proto, port: u16) -> Value {
    Value::concat([Value::proto(proto_number(proto)), Value::port(port)])
}

pub fn endpoint_key(id: u32, slot: u32) -> Value {
    Value::concat([Value::u32(id), Value::u32(slot)])
}

pub fn target_value(t: &Target) -> Value {
    Value::concat([Value::ip(t.addr), Value::port(t.port)])
}

/// The affinity key of the `n`th balance rule of service `id` (cluster and local policy
/// remember clients apart, as upstream's per-endpoint sets of each chain do).
pub fn affinity_id(id: u32, n: u32) -> u32 {
    id | (n << 31)
}

fn verdict(v: &Verdict) -> nft::Verdict {
    match v {
        Verdict::Goto(c) => nft::Verdict::Goto(c.clone()),
        Verdict::Reject => nft::Verdict::Goto(layout::REJECT_CHAIN.to_string()),
        Verdict::Drop => nft::Verdict::Drop,
    }
}

fn bounds(net: &IpNet) -> (Value, Value) {
    (Value::ip(net.network()), Value::ip(net.broadcast()))
}

fn range(f: Family, net: &IpNet, negate: bool) -> Vec<Expr> {
    let (from, to) = bounds(net);
    vec![saddr(f, Reg::R1), Expr::Range { sreg: Reg::R1, negate, from, to }]
}

fn to_service(f: Family, daddr: IpAddr, proto: Proto, port: u16) -> Vec<Expr> {
    vec![
        layout::daddr(f, Reg::R1),
        Expr::cmp_eq(Reg::R1, Value::ip(daddr)),
        Expr::l4proto(Reg::R1),
        Expr::cmp_eq(Reg::R1, Value::proto(proto_number(proto))),
        Expr::th_dport(Reg::R1),
        Expr::cmp_eq(Reg::R1, Value::port(port)),
    ]
}

fn from_node() -> Vec<Expr> {
    vec![Expr::Fib { flags: FibFlags::SADDR, result: FibResult::AddrType, dreg: Reg::R1 }, Expr::cmp_eq(Reg::R1, Value::u32(nft::addr_type::LOCAL))]
}

/// Renders one rule into nf_tables rules; `balance` counts the balance rules so far
/// (for slots and affinity ids), `slot` the endpoint slots used.
struct Ctx<'a> {
    f: Family,
    id: u32,
    balance: u32,
    slot: u32,
    objects: &'a mut Objects,
}

impl Ctx<'_> {
    fn rule(&mut self, r: &Rule) -> Vec<Vec<Expr>> {
        let f = self.f;
        let mark = || Expr::jump(layout::MARK_FOR_MASQUERADE);
        match r {
            Rule::MasqueradeUnlessFromPods { daddr, proto, port, pod_cidrs } => {
                let mut e = to_service(f, *daddr, *proto, *port);
                for net in pod_cidrs {
                    e.extend(range(f, net, true));
                }
                e.push(mark());
                vec![e]
            }
            Rule::MasqueradeTo { daddr, proto, port } => vec![[to_service(f, *daddr, *proto, *port), vec![mark()]].concat()],
            Rule::Masquerade => vec![vec![mark()]],
            Rule::GotoIfFromPods { pod_cidrs, chain } => pod_cidrs.iter().map(|net| [range(f, net, false), vec![Expr::goto(chain)]].concat()).collect(),
            Rule::MasqueradeIfFromNode => vec![[from_node(), vec![mark()]].concat()],
            Rule::GotoIfFromNode { chain } => vec![[from_node(), vec![Expr::goto(chain)]].concat()],
            Rule::Goto(chain) => vec![vec![Expr::goto(chain)]],
            Rule::DropUnlessFrom(nets) => {
                let mut out: Vec<Vec<Expr>> = nets.iter().map(|net| [range(f, net, false), vec![Expr::ret()]].concat()).collect();
                out.push(vec![Expr::drop()]);
                out
            }
            Rule::Balance { endpoints, affinity_seconds } => self.balance(endpoints, *affinity_seconds),
        }
    }

    fn balance(&mut self, endpoints: &[Target], affinity_seconds: Option<u32>) -> Vec<Vec<Expr>> {
        let (f, id) = (self.f, self.id);
        let first = self.slot;
        self.slot += endpoints.len() as u32;
        let n = self.balance;
        self.balance += 1;
        if endpoints.is_empty() {
            return vec![vec![Expr::goto(layout::REJECT_CHAIN)]];
        }
        let shard = endpoints_shard(f, id);
        for (i, t) in endpoints.iter().enumerate() {
            self.objects.element(&shard, Element::mapping(endpoint_key(id, first + i as u32), target_value(t)));
        }
        let chosen = Reg::R3;
        let dnat = Expr::dnat(nat_family(f), chosen, Some(chosen.plus_words(addr_words(f))));
        let pick = vec![
            Expr::load(Reg::r32(5), Value::u32(id)),
            Expr::Numgen { dreg: Reg::r32(6), kind: nft::NumgenKind::Random, modulus: endpoints.len() as u32, offset: first },
            Expr::map(&shard, Reg::r32(5), chosen),
        ];
        let Some(secs) = affinity_seconds else {
            return vec![[pick, vec![dnat]].concat()];
        };
        let aff = affinity_shard(f, id);
        let key = vec![Expr::load(Reg::r32(0), Value::u32(affinity_id(id, n))), saddr(f, Reg::r32(1))];
        let remember = Expr::Dynset { set: aff.clone(), op: nft::DynsetOp::Update, sreg_key: Reg::r32(0), sreg_data: Some(chosen), timeout: Some(Duration::from_secs(secs as u64)) };
        vec![
            // A client seen lately goes where it went before (refreshing its timeout).
            [key.clone(), vec![Expr::map(&aff, Reg::r32(0), chosen), remember.clone(), dnat.clone()]].concat(),
            [pick, key, vec![remember, dnat]].concat(),
        ]
    }
}

/// The rules of the shared chain `balance-F-N`: masquerade unless from pods (or always,
/// with masquerade-all), then DNAT to one of the N endpoint slots of the service's id.
/// The kernel lets a rule read only registers it wrote itself, so the pick looks the
/// id up again from the packet's `daddr . l4proto . dport`.
pub fn shared_balance(f: Family, n: u32, node: &NodeContext) -> Vec<Vec<Expr>> {
    let pod_cidrs: Vec<&IpNet> = node.pod_cidrs.iter().filter(|c| Family::of(&c.addr()) == f).collect();
    let mut masq = Vec::new();
    if !node.masquerade_all {
        for net in pod_cidrs {
            masq.extend(range(f, net, true));
        }
    }
    masq.push(Expr::jump(layout::MARK_FOR_MASQUERADE));
    let chosen = Reg::R3;
    let mut pick = layout::service_key(f);
    pick.extend([
        Expr::map(&layout::service_dispatch(f), Reg::r32(0), Reg::r32(5)),
        Expr::Numgen { dreg: Reg::r32(6), kind: nft::NumgenKind::Random, modulus: n, offset: 0 },
        Expr::map(&layout::endpoints_dispatched(f), Reg::r32(5), chosen),
        Expr::dnat(nat_family(f), chosen, Some(chosen.plus_words(addr_words(f)))),
    ]);
    vec![masq, pick]
}

/// The endpoints of a plain service port (see [`crate::layout`]): its ClusterIP goes to
/// its own cluster chain, which masquerades as the node context says and balances over
/// at most [`layout::MAX_DISPATCHED`] endpoints without affinity; nothing else.
pub fn dispatched<'a>(port: &ServicePort, rules: &'a ServiceRules) -> Option<&'a [Target]> {
    if rules.chains.len() != 1 || !rules.nodeports.is_empty() || !rules.no_endpoint_ips.is_empty() || !rules.no_endpoint_nodeports.is_empty() || !rules.firewall_ips.is_empty() || rules.health_check.is_some() {
        return None;
    }
    let [(ip, _, _, Verdict::Goto(chain))] = rules.service_ips.as_slice() else { return None };
    if *ip != port.cluster_ip {
        return None;
    }
    match rules.chains.get(chain)?.as_slice() {
        [Rule::MasqueradeUnlessFromPods { .. } | Rule::MasqueradeTo { .. }, Rule::Balance { endpoints, affinity_seconds: None }] if (1..=layout::MAX_DISPATCHED as usize).contains(&endpoints.len()) => Some(endpoints),
        _ => None,
    }
}

/// Where a plain service port's id is kept in the kernel: its `service-dispatch` element.
pub fn dispatch_key(port: &ServicePort, rules: &ServiceRules) -> Option<(String, Value)> {
    dispatched(port, rules)?;
    Some((layout::service_dispatch(port.family), service_key(port.cluster_ip, port.name.proto, port.port)))
}

/// The id a `service-dispatch` element's data holds.
pub fn dispatch_id(data: &Option<nft::Data>) -> Option<u32> {
    let Some(nft::Data::Value(v)) = data else { return None };
    Some(u32::from_ne_bytes(v.as_bytes().get(0..4)?.try_into().ok()?))
}

/// The chain comment that records a service port's id, so a restart finds it again.
pub fn id_comment(id: u32) -> String {
    id.to_string()
}

/// Renders service port `port` (compiled to `rules`) as service `id`.
pub fn service(port: &ServicePort, rules: &ServiceRules, id: u32) -> Objects {
    let f = port.family;
    let mut o = Objects::default();
    if let Some(endpoints) = dispatched(port, rules) {
        let key = service_key(port.cluster_ip, port.name.proto, port.port);
        o.element(&layout::service_dispatch(f), Element::mapping(key, Value::concat([Value::u32(id), Value::u32(endpoints.len() as u32)])));
        for (slot, t) in endpoints.iter().enumerate() {
            o.element(&layout::endpoints_dispatched(f), Element::mapping(endpoint_key(id, slot as u32), target_value(t)));
        }
        return o;
    }
    for (addr, proto, p, v) in &rules.service_ips {
        o.element(&layout::service_ips(f), Element::verdict(service_key(*addr, *proto, *p), verdict(v)));
    }
    for (addr, proto, p, v) in &rules.no_endpoint_ips {
        let key = service_key(*addr, *proto, *p);
        match v {
            Verdict::Reject => o.element(&layout::reject_services(f), Element::new(key)),
            v => o.element(&layout::no_endpoint_services(f), Element::verdict(key, verdict(v))),
        }
    }
    for (addr, proto, p, v) in &rules.firewall_ips {
        o.element(&layout::firewall_ips(f), Element::verdict(service_key(*addr, *proto, *p), verdict(v)));
    }
    for (proto, p, v) in &rules.nodeports {
        o.element(&layout::service_nodeports(f), Element::verdict(port_key(*proto, *p), verdict(v)));
    }
    for (proto, p, v) in &rules.no_endpoint_nodeports {
        match v {
            Verdict::Reject => o.element(&layout::reject_nodeports(f), Element::new(port_key(*proto, *p))),
            v => o.element(&layout::no_endpoint_nodeports(f), Element::verdict(port_key(*proto, *p), verdict(v))),
        }
    }
    let mut chains = Vec::new();
    {
        let mut ctx = Ctx { f, id, balance: 0, slot: 0, objects: &mut o };
        for (name, rs) in &rules.chains {
            let body: Vec<Vec<Expr>> = rs.iter().flat_map(|r| ctx.rule(r)).collect();
            chains.push((Chain::regular(name).with_comment(&id_comment(id)), body));
        }
    }
    for (c, body) in chains {
        o.chain(c, body);
    }
    o
}

#[cfg(test)]
mod tests;
