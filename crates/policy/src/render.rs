//! A [`NodePlan`] as nftables objects: the `inet weft-policy` table of one node. Pure.
//!
//! ```text
//! forward (hook forward, filter)        input (hook input, filter)
//!   ct state established,related accept   ct state established,related accept
//!   icmpv6 neighbour discovery accept     icmpv6 neighbour discovery accept
//!   ip  saddr vmap @egress4               ip  saddr vmap @egress4
//!   ip6 saddr vmap @egress6               ip6 saddr vmap @egress6
//!   ip  daddr vmap @ingress4
//!   ip6 daddr vmap @ingress6
//!
//! eg-<G> (the egress of pods in group G; in-<G> alike, with saddr)
//!   ip daddr @eg-<G>-any4 counter log group .. prefix "..allowed" return
//!   ip daddr . meta l4proto . th dport @eg-<G>-p4 counter log .. return
//!   (the same for ip6)
//!   counter log group .. prefix "..denied" drop
//! ```
//!
//! A packet costs the same whatever the number of pods and policies: one verdict-map
//! lookup per direction and at most four set lookups. The vmaps jump (not goto), so an
//! allowed egress returns to the base chain and the destination's ingress is judged
//! next. Replies pass as established. Traffic the node sends to its pods (probes) goes
//! through `output`, which this table does not hook. Names of a group's objects derive
//! from its [`GroupId`] (a hash of its content), so a group's objects never change:
//! they are created or deleted whole.

mod disjoint;

use crate::model::Protocol;
use crate::plan::{AllowSet, FlowMark, GroupId, IpRange, NodePlan, FLOW_LOG_GROUP};
use disjoint::{PortBox, Span};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use weft_kernel::nft::{
    ct_state, priority, Chain, ChainType, Element, Expr, Family, Hook, KeyType, LogTo, PayloadBase, Reg, Rule, Ruleset, Set, SetFlags, Table,
    TableRef, Value, Verdict,
};

pub const TABLE: &str = "weft-policy";
pub const FORWARD: &str = "forward";
pub const INPUT: &str = "input";
/// Bytes of each logged packet sent to the flow recorder: IPv6 and TCP headers fit.
pub const LOG_SNAPLEN: u32 = 128;

pub fn table() -> Table {
    Table::new(Family::Inet, TABLE)
}

pub fn table_ref() -> TableRef {
    table().table_ref()
}

/// Which side of a connection a group judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// The pod is the source; the peer is the destination.
    Egress,
    /// The pod is the destination; the peer is the source.
    Ingress,
}

impl Dir {
    fn tag(self) -> &'static str {
        match self {
            Dir::Egress => "eg",
            Dir::Ingress => "in",
        }
    }

    /// The verdict map keyed by the pod's address.
    pub fn vmap(self, v6: bool) -> &'static str {
        match (self, v6) {
            (Dir::Egress, false) => "egress4",
            (Dir::Egress, true) => "egress6",
            (Dir::Ingress, false) => "ingress4",
            (Dir::Ingress, true) => "ingress6",
        }
    }

    fn marks(self) -> (FlowMark, FlowMark) {
        match self {
            Dir::Egress => (FlowMark::EgressAllowed, FlowMark::EgressDenied),
            Dir::Ingress => (FlowMark::IngressAllowed, FlowMark::IngressDenied),
        }
    }
}

/// The chain of a group in one direction: `eg-<id>` / `in-<id>`.
pub fn group_chain(dir: Dir, g: GroupId) -> String {
    format!("{}-{g}", dir.tag())
}

/// A group's set: `any` (peers on every port) or `p` (peer . protocol . port), per family.
pub fn group_set(dir: Dir, g: GroupId, ports: bool, v6: bool) -> String {
    format!("{}-{}{}", group_chain(dir, g), if ports { "p" } else { "any" }, if v6 { "6" } else { "4" })
}

/// A chain and its rules (as expression lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainObj {
    pub chain: Chain,
    pub rules: Vec<Vec<Expr>>,
}

/// An element's identity in its set: its key, and the end of its range.
pub type ElemKey = (Value, Option<Value>);

/// A set and its elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetObj {
    pub set: Set,
    pub elements: BTreeMap<ElemKey, Element>,
}

/// Objects of the table, by name: what is rendered, and what is read back, compare.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Objects {
    pub chains: BTreeMap<String, ChainObj>,
    pub sets: BTreeMap<String, SetObj>,
}

impl Objects {
    pub fn chain(&mut self, chain: Chain, rules: Vec<Vec<Expr>>) {
        self.chains.insert(chain.name.clone(), ChainObj { chain, rules });
    }

    pub fn set(&mut self, set: Set, elements: impl IntoIterator<Item = Element>) {
        let elements = elements.into_iter().map(|e| ((e.key.clone(), e.key_end.clone()), e)).collect();
        self.sets.insert(set.name.clone(), SetObj { set, elements });
    }

    pub fn extend(&mut self, o: Objects) {
        self.chains.extend(o.chains);
        self.sets.extend(o.sets);
    }

    /// Elements of all sets.
    pub fn element_count(&self) -> usize {
        self.sets.values().map(|s| s.elements.len()).sum()
    }

    /// What a kernel table holds, in the same form (handles, counters, expiry dropped).
    pub fn from_ruleset(rs: &Ruleset) -> Objects {
        let rs = rs.canonical();
        let mut o = Objects::default();
        for c in &rs.chains {
            let rules = rs.rules.iter().filter(|r| r.chain == c.name).map(|r| r.exprs.clone()).collect();
            o.chain(c.clone(), rules);
        }
        for (s, elems) in &rs.sets {
            o.set(s.clone(), elems.iter().cloned());
        }
        o
    }

    /// As a ruleset (for a whole-table replacement).
    pub fn to_ruleset(&self) -> Ruleset {
        let mut rs = Ruleset::new(table());
        for c in self.chains.values() {
            rs.chain(c.chain.clone());
            for r in &c.rules {
                rs.rule(Rule::new(&c.chain.name, r.clone()));
            }
        }
        for s in self.sets.values() {
            rs.set(s.set.clone(), s.elements.values().cloned().collect());
        }
        rs
    }
}

/// A set's definition as the kernel reports it back, for comparing definitions.
pub fn canonical_set(s: &Set) -> Set {
    let mut rs = Ruleset::new(table());
    rs.set(s.clone(), Vec::new());
    rs.canonical().sets.remove(0).0
}

fn interval() -> SetFlags {
    SetFlags { interval: true, ..Default::default() }
}

fn addr_key(v6: bool) -> KeyType {
    if v6 {
        KeyType::Ipv6Addr
    } else {
        KeyType::Ipv4Addr
    }
}

fn port_key(v6: bool) -> [KeyType; 3] {
    [addr_key(v6), KeyType::InetProto, KeyType::InetService]
}

fn guard(v6: bool) -> Vec<Expr> {
    if v6 {
        Expr::only_ipv6()
    } else {
        Expr::only_ipv4()
    }
}

/// Loads the source (or the destination) address into `reg`.
fn addr(v6: bool, source: bool, reg: Reg) -> Expr {
    match (v6, source) {
        (false, true) => Expr::ip_saddr(reg),
        (false, false) => Expr::ip_daddr(reg),
        (true, true) => Expr::ip6_saddr(reg),
        (true, false) => Expr::ip6_daddr(reg),
    }
}

fn log(mark: FlowMark) -> Expr {
    Expr::Log { prefix: Some(mark.prefix().to_string()), to: LogTo::Group { group: FLOW_LOG_GROUP, snaplen: LOG_SNAPLEN } }
}

/// ICMPv6 types 133-137 (router and neighbour discovery, redirect): without them pods
/// on one bridge could not resolve each other's IPv6 addresses once isolated.
fn icmpv6_nd() -> Vec<Expr> {
    let mut e = Expr::only_ipv6();
    e.extend([
        Expr::l4proto(Reg::R1),
        Expr::cmp_eq(Reg::R1, Value::proto(58)),
        Expr::Payload { base: PayloadBase::Transport, offset: 0, len: 1, dreg: Reg::R1 },
        Expr::Range { sreg: Reg::R1, negate: false, from: Value::u8(133), to: Value::u8(137) },
        Expr::accept(),
    ]);
    e
}

fn established() -> Vec<Expr> {
    let mut e = Expr::ct_state_any(ct_state::ESTABLISHED | ct_state::RELATED);
    e.push(Expr::accept());
    e
}

fn vmap_rule(dir: Dir, v6: bool) -> Vec<Expr> {
    let mut e = guard(v6);
    e.push(addr(v6, dir == Dir::Egress, Reg::R1));
    e.push(Expr::vmap(dir.vmap(v6), Reg::R1));
    e
}

/// The table's fixed part: base chains and the (empty) verdict maps.
pub fn skeleton() -> Objects {
    let mut o = Objects::default();
    for dir in [Dir::Egress, Dir::Ingress] {
        for v6 in [false, true] {
            o.set(Set::vmap(dir.vmap(v6), &[addr_key(v6)]), []);
        }
    }
    let head = || vec![established(), icmpv6_nd()];
    let mut forward = head();
    let mut input = head();
    for v6 in [false, true] {
        forward.push(vmap_rule(Dir::Egress, v6));
        input.push(vmap_rule(Dir::Egress, v6));
    }
    for v6 in [false, true] {
        forward.push(vmap_rule(Dir::Ingress, v6));
    }
    o.chain(Chain::base(FORWARD, ChainType::Filter, Hook::Forward, priority::FILTER).with_comment("NetworkPolicy: egress of local pods, then ingress of local pods"), forward);
    o.chain(Chain::base(INPUT, ChainType::Filter, Hook::Input, priority::FILTER).with_comment("NetworkPolicy: egress of local pods to this node"), input);
    o
}

fn span(r: &IpRange) -> Option<(bool, Span)> {
    match (r.first, r.last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Some((false, (u32::from(a) as u128, u32::from(b) as u128))),
        (IpAddr::V6(a), IpAddr::V6(b)) => Some((true, (u128::from(a), u128::from(b)))),
        _ => None,
    }
}

fn addr_value(v6: bool, n: u128) -> Value {
    if v6 {
        Value::ipv6(Ipv6Addr::from(n))
    } else {
        Value::ipv4(Ipv4Addr::from(n as u32))
    }
}

fn range_element(first: Value, last: Value) -> Element {
    if first == last {
        Element::new(first)
    } else {
        Element::range(first, last)
    }
}

/// A group's chain and sets in one direction. Errors name the group and the range
/// whose ends are of different families or out of order.
pub fn group(dir: Dir, g: GroupId, allow: &AllowSet) -> Result<Objects, String> {
    let mut any: [Vec<Span>; 2] = Default::default();
    let mut ports: BTreeMap<(bool, Protocol), Vec<PortBox>> = BTreeMap::new();
    let bad = |r: &IpRange| format!("policy group {g}: peer range {}-{} mixes families or is reversed", r.first, r.last);
    for r in &allow.any {
        let (v6, s) = span(r).filter(|(_, s)| s.0 <= s.1).ok_or_else(|| bad(r))?;
        any[v6 as usize].push(s);
    }
    for p in &allow.ports {
        let (v6, s) = span(&p.peer).filter(|(_, s)| s.0 <= s.1).ok_or_else(|| bad(&p.peer))?;
        if p.first > p.last {
            return Err(format!("policy group {g}: port range {}-{} is reversed", p.first, p.last));
        }
        ports.entry((v6, p.protocol)).or_default().push(PortBox { peers: s, first: p.first, last: p.last });
    }
    let (allowed, denied) = dir.marks();
    let peer_is_source = dir == Dir::Ingress;
    let mut o = Objects::default();
    let mut rules = Vec::new();
    for v6 in [false, true] {
        let spans = disjoint::merge(std::mem::take(&mut any[v6 as usize]));
        if !spans.is_empty() {
            let name = group_set(dir, g, false, v6);
            o.set(Set::new(&name, &[addr_key(v6)]).with_flags(interval()), spans.iter().map(|(a, b)| range_element(addr_value(v6, *a), addr_value(v6, *b))));
            let mut r = guard(v6);
            r.extend([addr(v6, peer_is_source, Reg::R1), Expr::in_set(&name, Reg::R1), Expr::counter(), log(allowed), Expr::ret()]);
            rules.push(r);
        }
        let mut elems = Vec::new();
        for proto in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
            let Some(bs) = ports.get(&(v6, proto)) else { continue };
            for b in disjoint::boxes(bs) {
                let key = |ip: u128, port: u16| Value::concat([addr_value(v6, ip), Value::proto(proto.number()), Value::port(port)]);
                elems.push(range_element(key(b.peers.0, b.first), key(b.peers.1, b.last)));
            }
        }
        if !elems.is_empty() {
            let name = group_set(dir, g, true, v6);
            o.set(Set::new(&name, &port_key(v6)).with_flags(interval()), elems);
            // The key holds the protocol, so a packet of another protocol (whose
            // "port" bytes are something else) never matches.
            let words = if v6 { 4 } else { 1 };
            let mut r = guard(v6);
            r.extend([
                addr(v6, peer_is_source, Reg::r32(0)),
                Expr::l4proto(Reg::r32(words)),
                Expr::th_dport(Reg::r32(words + 1)),
                Expr::in_set(&name, Reg::R1),
                Expr::counter(),
                log(allowed),
                Expr::ret(),
            ]);
            rules.push(r);
        }
    }
    rules.push(vec![Expr::counter(), log(denied), Expr::drop()]);
    o.chain(Chain::regular(&group_chain(dir, g)), rules);
    Ok(o)
}

/// `(direction, group)` of every chain the plan needs.
pub fn uses(plan: &NodePlan) -> BTreeSet<(Dir, GroupId)> {
    let eg = plan.egress.values().map(|g| (Dir::Egress, *g));
    let ing = plan.ingress.values().map(|g| (Dir::Ingress, *g));
    eg.chain(ing).collect()
}

/// The verdict-map elements: each isolated pod address jumps to its group's chain.
pub fn vmap_elements(plan: &NodePlan) -> Objects {
    let mut o = Objects::default();
    for (dir, map) in [(Dir::Egress, &plan.egress), (Dir::Ingress, &plan.ingress)] {
        for v6 in [false, true] {
            let elems = map
                .iter()
                .filter(|(ip, _)| ip.is_ipv6() == v6)
                .map(|(ip, g)| Element::verdict(Value::ip(*ip), Verdict::Jump(group_chain(dir, *g))));
            o.set(Set::vmap(dir.vmap(v6), &[addr_key(v6)]), elems);
        }
    }
    o
}

/// Checks that every group the maps name is in `groups`.
pub fn check(plan: &NodePlan) -> Result<(), String> {
    for (dir, map) in [("egress", &plan.egress), ("ingress", &plan.ingress)] {
        for (ip, g) in map {
            if !plan.groups.contains_key(g) {
                return Err(format!("node plan: {dir} of pod address {ip} names group {g}, which the plan does not define"));
            }
        }
    }
    Ok(())
}

/// The objects of these group uses.
pub fn groups<'a>(plan: &NodePlan, which: impl IntoIterator<Item = &'a (Dir, GroupId)>) -> Result<Objects, String> {
    let mut o = Objects::default();
    for (dir, g) in which {
        let allow = plan.groups.get(g).ok_or_else(|| format!("node plan: group {g} is used but not defined"))?;
        o.extend(group(*dir, *g, allow)?);
    }
    Ok(o)
}

/// The whole table for `plan`.
pub fn render(plan: &NodePlan) -> Result<Objects, String> {
    check(plan)?;
    let mut o = skeleton();
    o.extend(vmap_elements(plan));
    o.extend(groups(plan, &uses(plan))?);
    Ok(o)
}

#[cfg(test)]
mod tests;
