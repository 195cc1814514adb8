//! The applier: moves the node's `inet weft-proxy` table to the desired state, touching
//! only what differs, each change one atomic transaction (very large syncs are cut into
//! transactions of bounded size, in an order where nothing points at something missing).
//!
//! - [`Applier::resync`] (at start, or after an error): reads the table back, recovers
//!   the service ids from the chains' comments, and writes only the difference, so a
//!   restart rebuilds nothing that did not change and established connections keep
//!   their NAT state.
//! - [`Applier::apply`]: the changes from [`ProxyState::flush`], one service port's old
//!   objects against its new ones; then stale UDP conntrack entries and affinity entries
//!   pointing at endpoints that went away.
//!
//! Blocking (netlink): call it from a thread of its own or `spawn_blocking`.

use crate::diff::{diff, Diff};
use crate::layout::{self, ChainObj, Objects};
use crate::plan::{Rule, Target};
use crate::render;
use crate::service::Family;
use crate::state::{Change, Compiled, PortKey, ProxyState};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use weft_kernel::nft::{self, Batch, Conntrack, Data, Element, Nft, Ruleset, Set, Value, DEFAULT_PART_WEIGHT};
use weft_kernel::Netns;

/// What one sync wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Kernel transactions committed.
    pub transactions: usize,
    /// Elements, rules and chains written.
    pub weight: usize,
    /// The table was (re)created from scratch (first start, or a layout change).
    pub recreated: bool,
    pub took: Duration,
    /// The longest single kernel transaction.
    pub longest_transaction: Duration,
}

pub struct Applier {
    nft: Nft,
    ct: Conntrack,
    sets: HashMap<String, Set>,
    ids: HashMap<PortKey, u32>,
    next_id: u32,
    /// Address keys a port's render had but that another port holds: what was written for
    /// a port is its render minus these (so nothing rendered is kept in memory).
    withheld: HashMap<PortKey, BTreeSet<(String, Value)>>,
    /// Which service port holds each address-keyed element (two services may claim the
    /// same external IP and port: the first keeps it, as a map holds one verdict per key).
    owners: HashMap<(String, Value), PortKey>,
    /// Endpoints that affinity entries of each service id may point at.
    affinity: HashMap<u32, BTreeSet<Target>>,
    part_weight: usize,
}

fn is_dynamic(set: &str) -> bool {
    set.starts_with("affinity-")
}

fn is_per_id(set: &str) -> bool {
    set.starts_with("endpoints-") || is_dynamic(set)
}

/// The objects a kernel table holds (static sets only: affinity entries come from packets).
pub fn kernel_objects(rs: &Ruleset) -> Objects {
    let mut o = Objects::default();
    for c in &rs.chains {
        let rules = rs.rules.iter().filter(|r| r.chain == c.name).map(|r| r.exprs.clone()).collect();
        o.chains.insert(c.name.clone(), ChainObj { chain: nft::Chain { handle: None, ..c.clone() }, rules });
    }
    for (s, elems) in &rs.sets {
        if is_dynamic(&s.name) {
            continue;
        }
        for e in elems {
            o.element(&s.name, e.clone());
        }
    }
    o
}

/// The service id a chain's comment records.
pub fn chain_id(c: &nft::Chain) -> Option<u32> {
    c.comment.as_deref()?.parse().ok()
}

fn affinity_targets(c: &Compiled) -> Option<BTreeSet<Target>> {
    let mut any = false;
    let mut out = BTreeSet::new();
    for r in c.rules.chains.values().flatten() {
        if let Rule::Balance { endpoints, affinity_seconds: Some(_) } = r {
            any = true;
            out.extend(endpoints.iter().copied());
        }
    }
    any.then_some(out)
}

fn target_of(data: &Option<Data>, family: Family) -> Option<Target> {
    let Some(Data::Value(v)) = data else { return None };
    let b = v.as_bytes();
    let (addr, port_at): (IpAddr, usize) = match family {
        Family::V4 if b.len() >= 8 => (IpAddr::from(<[u8; 4]>::try_from(&b[0..4]).ok()?), 4),
        Family::V6 if b.len() >= 20 => (IpAddr::from(<[u8; 16]>::try_from(&b[0..16]).ok()?), 16),
        _ => return None,
    };
    Some(Target { addr, port: u16::from_be_bytes([b[port_at], b[port_at + 1]]) })
}

fn key_id(key: &Value) -> Option<u32> {
    let b = key.as_bytes();
    Some(u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?) & !(1 << 31))
}

impl Applier {
    pub fn open(ns: &Netns) -> weft_kernel::Result<Applier> {
        Ok(Applier {
            nft: Nft::open(ns)?,
            ct: Conntrack::open(ns)?,
            sets: layout::sets().into_iter().map(|s| (s.name.clone(), s)).collect(),
            ids: HashMap::new(),
            next_id: 1,
            withheld: HashMap::new(),
            owners: HashMap::new(),
            affinity: HashMap::new(),
            part_weight: DEFAULT_PART_WEIGHT,
        })
    }

    /// Transactions are cut at this weight (elements, rules and chains).
    pub fn with_part_weight(mut self, w: usize) -> Applier {
        self.part_weight = w.max(1);
        self
    }

    /// The id of a service port, if it has one.
    pub fn id(&self, key: &PortKey) -> Option<u32> {
        self.ids.get(key).copied()
    }

    /// The objects written for a service port compiled to `c`: its render, minus the
    /// address keys another port holds.
    pub fn objects(&self, key: &PortKey, c: &Compiled) -> Objects {
        let Some(id) = self.ids.get(key) else { return Objects::default() };
        let mut o = render::service(&c.port, &c.rules, *id);
        for (set, k) in self.withheld.get(key).into_iter().flatten() {
            if let Some(m) = o.elements.get_mut(set) {
                m.remove(k);
            }
        }
        o
    }

    fn render(&mut self, key: &PortKey, c: &Compiled) -> Objects {
        let id = match self.ids.get(key) {
            Some(id) => *id,
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.ids.insert(key.clone(), id);
                id
            }
        };
        let mut o = render::service(&c.port, &c.rules, id);
        // Keep address keys another service port holds.
        let mut withheld = BTreeSet::new();
        for (set, elems) in o.elements.iter_mut() {
            if is_per_id(set) {
                continue;
            }
            elems.retain(|k, _| match self.owners.get(&(set.clone(), k.clone())) {
                Some(owner) if owner != key => {
                    tracing::warn!(service = %c.port.name, other = %owner.0, set, "two services claim the same address and port; the first one keeps it");
                    withheld.insert((set.clone(), k.clone()));
                    false
                }
                _ => true,
            });
        }
        if withheld.is_empty() {
            self.withheld.remove(key);
        } else {
            self.withheld.insert(key.clone(), withheld);
        }
        o
    }

    fn own(&mut self, key: &PortKey, old: Option<&Objects>, new: Option<&Objects>) {
        for (set, elems) in old.iter().flat_map(|o| o.elements.iter()) {
            for k in elems.keys() {
                if !is_per_id(set) {
                    self.owners.remove(&(set.clone(), k.clone()));
                }
            }
        }
        for (set, elems) in new.iter().flat_map(|o| o.elements.iter()) {
            for k in elems.keys() {
                if !is_per_id(set) {
                    self.owners.insert((set.clone(), k.clone()), key.clone());
                }
            }
        }
    }

    /// Commits `b`, cut into transactions of at most `part_weight`; returns how many,
    /// and the longest.
    fn commit(&mut self, b: &Batch) -> weft_kernel::Result<(usize, Duration)> {
        let parts = if b.weight() > self.part_weight { b.split(self.part_weight) } else { vec![b.clone()] };
        let mut longest = Duration::ZERO;
        let mut n = 0;
        for (i, part) in parts.iter().filter(|p| !p.is_empty()).enumerate() {
            let t = Instant::now();
            self.nft.commit(part).map_err(|e| e.with_detail(Some(format!("transaction {} of {}; the ones before it are committed", i + 1, parts.len()))))?;
            longest = longest.max(t.elapsed());
            n += 1;
        }
        Ok((n, longest))
    }

    fn remember_affinity(&mut self, key: &PortKey, c: Option<&Compiled>) {
        let Some(id) = self.ids.get(key).copied() else { return };
        match c.and_then(affinity_targets) {
            Some(targets) => {
                self.affinity.insert(id, targets);
            }
            None => {
                self.affinity.remove(&id);
            }
        }
    }

    /// Reads the table back and writes whatever differs from everything in `state`.
    pub fn resync(&mut self, state: &ProxyState) -> weft_kernel::Result<SyncReport> {
        self.resync_ports(state.compiled())
    }

    /// [`Applier::resync`] from the compiled service ports themselves.
    pub fn resync_ports<'a>(&mut self, ports: impl IntoIterator<Item = (&'a PortKey, &'a Compiled)>) -> weft_kernel::Result<SyncReport> {
        let started = Instant::now();
        let t = layout::table_ref();
        let actual = self.nft.ruleset(&t)?;
        let skeleton = layout::skeleton();
        let same_layout = actual.as_ref().is_some_and(|rs| self.same_layout(rs, &skeleton));
        let have = match (&actual, same_layout) {
            (Some(rs), true) => kernel_objects(rs),
            _ => Objects::default(),
        };
        // Ids from the kernel, so unchanged services keep their chains and elements.
        let recovered: HashMap<&str, u32> = have.chains.values().filter_map(|c| Some((c.chain.name.as_str(), chain_id(&c.chain)?))).collect();
        self.ids.clear();
        self.owners.clear();
        self.withheld.clear();
        self.affinity.clear();
        self.next_id = recovered.values().max().map_or(1, |m| m + 1);
        let mut taken = BTreeSet::new();
        let mut compiled: Vec<(&PortKey, &Compiled)> = ports.into_iter().collect();
        compiled.sort_by(|a, b| a.0.cmp(b.0));
        for (key, c) in &compiled {
            if let Some(id) = c.rules.chains.keys().find_map(|n| recovered.get(n.as_str())) {
                if taken.insert(*id) {
                    self.ids.insert((*key).clone(), *id);
                }
            }
        }
        let mut want = skeleton;
        for (key, c) in &compiled {
            let o = self.render(key, c);
            self.own(key, None, Some(&o));
            want.extend(&o);
            self.remember_affinity(key, Some(c));
        }
        let d = diff(&have, &want);
        tracing::debug!(
            add_chains = ?d.add_chains.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            set_rules = ?d.set_rules.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            delete_elements = ?d.delete_elements.keys().collect::<Vec<_>>(),
            add_elements = ?d.add_elements.keys().collect::<Vec<_>>(),
            delete_chains = ?d.delete_chains,
            "proxy full sync: what differs from the kernel"
        );
        let mut b = Batch::new();
        if !same_layout {
            b.delete_table_if_exists(&t).add_table(&layout::table());
            for s in layout::sets() {
                b.add_set(&t, &s);
            }
        }
        d.write_into(&mut b, &t, &self.sets);
        let weight = b.weight();
        let (transactions, longest_transaction) = self.commit(&b)?;
        if let (Some(rs), true) = (&actual, same_layout) {
            self.gc_affinity(rs.sets.iter().filter(|(s, _)| is_dynamic(&s.name)).cloned().collect())?;
        }
        let report = SyncReport { transactions, weight, recreated: !same_layout, took: started.elapsed(), longest_transaction };
        tracing::info!(services = compiled.len(), weight, transactions, recreated = report.recreated, took_ms = report.took.as_millis() as u64, "proxy table in sync");
        Ok(report)
    }

    fn same_layout(&self, rs: &Ruleset, skeleton: &Objects) -> bool {
        let canon = |s: &Set| Ruleset { sets: vec![(s.clone(), vec![])], ..Ruleset::new(layout::table()) }.canonical().sets.remove(0).0;
        let have: HashMap<&str, Set> = rs.sets.iter().map(|(s, _)| (s.name.as_str(), canon(s))).collect();
        have.len() == self.sets.len()
            && self.sets.iter().all(|(n, s)| have.get(n.as_str()) == Some(&canon(s)))
            && skeleton.chains.values().all(|c| rs.chains.iter().any(|k| k.name == c.chain.name && k.base == c.chain.base))
    }

    /// Writes what `changes` (from [`ProxyState::flush`]) changed, as one transaction
    /// (or several, in order, when it is very large); then flushes stale UDP conntrack
    /// entries and affinity entries pointing at endpoints that went away.
    pub fn apply(&mut self, changes: &[Change]) -> weft_kernel::Result<SyncReport> {
        let started = Instant::now();
        let t = layout::table_ref();
        let mut d = Diff::default();
        let mut gone: Vec<PortKey> = Vec::new();
        let mut affinity_touched = BTreeSet::new();
        // Releases first, so an address moving between services in one batch is free to take.
        let empty = Objects::default();
        let written = |ap: &Applier, ch: &Change| ch.old.as_ref().map(|c| ap.objects(&ch.key, c)).unwrap_or_default();
        for ch in changes.iter().filter(|c| c.new.is_none()) {
            let old = written(self, ch);
            d.merge(diff(&old, &empty));
            self.own(&ch.key, Some(&old), None);
            gone.push(ch.key.clone());
        }
        for ch in changes {
            let Some(new) = &ch.new else { continue };
            let old = written(self, ch);
            self.own(&ch.key, Some(&old), None);
            let o = self.render(&ch.key, new);
            self.own(&ch.key, None, Some(&o));
            d.merge(diff(&old, &o));
        }
        let b = d.to_batch(&t, &self.sets);
        let weight = b.weight();
        let (transactions, longest_transaction) = self.commit(&b)?;
        for ch in changes {
            if let Some(id) = self.ids.get(&ch.key) {
                if ch.old.as_ref().and_then(affinity_targets).is_some() {
                    affinity_touched.insert(*id);
                }
            }
            self.remember_affinity(&ch.key, ch.new.as_ref());
        }
        for key in gone {
            self.withheld.remove(&key);
            if let Some(id) = self.ids.remove(&key) {
                self.affinity.remove(&id);
            }
        }
        if !affinity_touched.is_empty() {
            let mut dynamic = Vec::new();
            let shards: BTreeSet<String> = affinity_touched.iter().flat_map(|id| [layout::affinity_shard(crate::service::Family::V4, *id), layout::affinity_shard(crate::service::Family::V6, *id)]).collect();
            for name in shards {
                let set = self.sets[&name].clone();
                let elems = self.nft.elements(&t, &set)?;
                dynamic.push((set, elems.into_iter().filter(|e| key_id(&e.key).is_some_and(|id| affinity_touched.contains(&id))).collect()));
            }
            self.gc_affinity(dynamic)?;
        }
        self.flush_conntrack(changes);
        let report = SyncReport { transactions, weight, recreated: false, took: started.elapsed(), longest_transaction };
        tracing::debug!(changes = changes.len(), weight, took_us = report.took.as_micros() as u64, "proxy changes applied");
        Ok(report)
    }

    /// Deletes affinity entries whose service port is gone or no longer has affinity, or
    /// whose endpoint went away.
    fn gc_affinity(&mut self, sets: Vec<(Set, Vec<Element>)>) -> weft_kernel::Result<()> {
        let t = layout::table_ref();
        let mut b = Batch::new();
        for (s, elems) in &sets {
            let family = if s.name.starts_with("affinity-v6") { Family::V6 } else { Family::V4 };
            let doomed: Vec<Element> = elems.iter().filter(|e| !self.affinity_entry_is_live(e, family)).map(|e| Element::new(e.key.clone())).collect();
            b.delete_elements(&t, s, doomed);
        }
        if !b.is_empty() {
            tracing::debug!(entries = b.weight(), "deleting stale session affinity entries");
            // An entry may expire between the read and the delete: that is not an error.
            if let Err(e) = self.nft.commit(&b) {
                tracing::debug!(%e, "deleting stale affinity entries");
            }
        }
        Ok(())
    }

    fn affinity_entry_is_live(&self, e: &Element, family: Family) -> bool {
        let (Some(id), Some(target)) = (key_id(&e.key), target_of(&e.data, family)) else { return false };
        self.affinity.get(&id).is_some_and(|ts| ts.contains(&target))
    }

    /// UDP has no connection to end: entries to an endpoint that went away keep clients
    /// sending into the void, and entries made while a service rejected keep them refused.
    fn flush_conntrack(&mut self, changes: &[Change]) {
        let mut stale: Vec<(IpAddr, Vec<IpAddr>, u16)> = Vec::new();
        let mut served: Vec<(IpAddr, u16)> = Vec::new();
        for ch in changes {
            let gone = ch.stale_udp_endpoints();
            if let (false, Some(old)) = (gone.is_empty(), &ch.old) {
                let addrs: Vec<IpAddr> = std::iter::once(old.port.cluster_ip).chain(old.port.external_ips.iter().copied()).chain(old.port.load_balancer_ips.iter().copied()).collect();
                for ep in gone {
                    stale.push((ep, addrs.clone(), old.port.node_port));
                }
            }
            if let Some(new) = &ch.new {
                served.extend(ch.udp_addresses_now_served().into_iter().map(|a| (a, new.port.port)));
            }
        }
        if stale.is_empty() && served.is_empty() {
            return;
        }
        let entries = match self.ct.list() {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%e, "listing conntrack entries to flush stale UDP ones");
                return;
            }
        };
        const UDP: u8 = 17;
        for e in entries.iter().filter(|e| e.proto == UDP) {
            let to_gone = stale.iter().any(|(ep, addrs, node_port)| e.reply.src == *ep && (addrs.contains(&e.orig.dst) || (*node_port != 0 && e.orig.dport == *node_port)));
            let was_refused = served.iter().any(|(a, p)| e.orig.dst == *a && e.orig.dport == *p);
            if to_gone || was_refused {
                if let Err(err) = self.ct.delete(e) {
                    tracing::warn!(%err, "deleting a stale UDP conntrack entry");
                }
            }
        }
    }

    /// Removes the table (uninstall).
    pub fn remove(ns: &Netns) -> weft_kernel::Result<()> {
        let mut nft = Nft::open(ns)?;
        nft.commit(Batch::new().delete_table_if_exists(&layout::table_ref()))
    }

    /// This service port's objects as the kernel has them now (for introspection).
    pub fn read_back(nft: &mut Nft, want: &Objects, id: Option<u32>) -> weft_kernel::Result<Objects> {
        let t = layout::table_ref();
        let mut o = Objects::default();
        let chains = nft.chains(&t)?;
        for name in want.chains.keys() {
            if let Some(c) = chains.iter().find(|c| &c.name == name) {
                let rules = nft.rules(&t, Some(name))?.into_iter().map(|r| r.exprs).collect();
                o.chains.insert(name.clone(), ChainObj { chain: nft::Chain { handle: None, ..c.clone() }, rules });
            }
        }
        let sets = layout::sets();
        for s in sets.iter().filter(|s| !is_dynamic(&s.name)) {
            let per_id = is_per_id(&s.name);
            let own_shard = per_id && id.is_some_and(|id| s.name == layout::endpoints_shard(Family::V4, id) || s.name == layout::endpoints_shard(Family::V6, id));
            if !want.elements.contains_key(&s.name) && !own_shard {
                continue;
            }
            for e in nft.elements(&t, s)? {
                let mine = if per_id { id.is_some() && key_id(&e.key) == id } else { want.elements.get(&s.name).is_some_and(|m| m.contains_key(&e.key)) };
                if mine {
                    o.element(&s.name, e);
                }
            }
        }
        Ok(o)
    }
}
