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

use crate::diff::{diff_taking, removal, Diff};
use crate::layout::{self, ChainObj, Objects};
use crate::plan::{NodeContext, Target};
use crate::render;
use crate::registry::{has_affinity, is_dynamic, is_per_id, Registry};
use crate::service::Family;
use crate::state::{Change, Compiled, PortKey, ProxyState};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use weft_kernel::nft::{self, Batch, Conntrack, Data, Element, Nft, Ruleset, Set, Value};
use weft_kernel::Netns;

/// Transactions of a full sync are cut at this weight (elements, rules and chains): small
/// enough that rendering the next one overlaps the kernel's work on this one, and that
/// none holds the nftables mutex long; large enough that the kernel's per-transaction
/// validation of the table stays a small part.
pub const PART_WEIGHT: usize = 15_000;

/// What one sync wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Kernel transactions committed.
    pub transactions: usize,
    /// Elements, rules and chains written.
    pub weight: usize,
    /// Map elements added or deleted.
    pub elements: usize,
    /// Rules written.
    pub rules: usize,
    /// The table was (re)created from scratch (first start, or a layout change).
    pub recreated: bool,
    pub took: Duration,
    /// The longest single kernel transaction.
    pub longest_transaction: Duration,
}

impl SyncReport {
    fn count(&mut self, d: &Diff) {
        self.weight += d.weight();
        self.elements += d.delete_elements.values().chain(d.add_elements.values()).map(Vec::len).sum::<usize>();
        self.rules += d.set_rules.iter().map(|r| r.1.len()).sum::<usize>();
    }
}

pub struct Applier {
    nft: Nft,
    ct: Conntrack,
    sets: HashMap<String, Set>,
    reg: Registry,
    part_weight: usize,
}

/// The objects a kernel table holds (static sets only: affinity entries come from packets).
pub fn kernel_objects(rs: &Ruleset) -> Objects {
    let mut o = Objects::default();
    let mut rules: HashMap<&str, Vec<Vec<nft::Expr>>> = HashMap::new();
    for r in &rs.rules {
        rules.entry(r.chain.as_str()).or_default().push(r.exprs.clone());
    }
    for c in &rs.chains {
        let rules = rules.remove(c.name.as_str()).unwrap_or_default();
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

/// Commits `b`, cut into transactions of at most `part_weight`; returns how many, and
/// the longest.
fn commit(nft: &mut Nft, b: &Batch, part_weight: usize) -> weft_kernel::Result<(usize, Duration)> {
    let split;
    let parts = if b.weight() > part_weight {
        split = b.split(part_weight);
        split.as_slice()
    } else {
        std::slice::from_ref(b)
    };
    let mut longest = Duration::ZERO;
    let mut n = 0;
    for (i, part) in parts.iter().filter(|p| !p.is_empty()).enumerate() {
        let t = Instant::now();
        nft.commit(part).map_err(|e| e.with_detail(Some(format!("transaction {} of {}; the ones before it are committed", i + 1, parts.len()))))?;
        longest = longest.max(t.elapsed());
        n += 1;
    }
    Ok((n, longest))
}

impl Applier {
    pub fn open(ns: &Netns) -> weft_kernel::Result<Applier> {
        Ok(Applier {
            nft: Nft::open(ns)?,
            ct: Conntrack::open(ns)?,
            sets: layout::sets().into_iter().map(|s| (s.name.clone(), s)).collect(),
            reg: Registry::default(),
            part_weight: PART_WEIGHT,
        })
    }

    /// Transactions are cut at this weight (elements, rules and chains).
    pub fn with_part_weight(mut self, w: usize) -> Applier {
        self.part_weight = w.max(1);
        self
    }

    /// The id of a service port, if it has one.
    pub fn id(&self, key: &PortKey) -> Option<u32> {
        self.reg.id(key)
    }

    /// The objects written for a service port compiled to `c`: its render, minus the
    /// address keys another port holds.
    pub fn objects(&self, key: &PortKey, c: &Compiled) -> Objects {
        self.reg.written(key, c)
    }

    /// Reads the table back and writes whatever differs from everything in `state`.
    pub fn resync(&mut self, state: &ProxyState) -> weft_kernel::Result<SyncReport> {
        self.resync_ports(state.node(), state.compiled().map(|(k, c)| (k, &**c)))
    }

    /// [`Applier::resync`] from the compiled service ports themselves.
    ///
    /// One service port at a time, its render is compared with what the kernel holds
    /// (taken out of the read-back copy as it goes), and the differences gather into a
    /// transaction; each full transaction goes to a thread that commits it while the next
    /// one is rendered. Nothing of the whole ruleset is held twice. What is left of the
    /// kernel's objects at the end (services that went away) is deleted last.
    pub fn resync_ports<'a>(&mut self, node: &NodeContext, ports: impl IntoIterator<Item = (&'a PortKey, &'a Compiled)>) -> weft_kernel::Result<SyncReport> {
        let started = Instant::now();
        let t = layout::table_ref();
        let actual = self.nft.ruleset(&t)?;
        let skeleton = layout::skeleton(node);
        let same_layout = actual.as_ref().is_some_and(|rs| self.same_layout(rs, &skeleton));
        let (mut have, dynamic) = match (actual, same_layout) {
            (Some(rs), true) => (kernel_objects(&rs), rs.sets.into_iter().filter(|(s, _)| is_dynamic(&s.name)).collect()),
            _ => (Objects::default(), Vec::new()),
        };
        // Ids from the kernel, so unchanged services keep their chains and elements.
        let recovered: HashMap<&str, u32> = have.chains.values().filter_map(|c| Some((c.chain.name.as_str(), chain_id(&c.chain)?))).collect();
        let mut compiled: Vec<(&PortKey, &Compiled)> = ports.into_iter().collect();
        compiled.sort_by(|a, b| a.0.cmp(b.0));
        let dispatched_ids = [Family::V4, Family::V6].into_iter().filter_map(|f| have.elements.get(&layout::service_dispatch(f))).flat_map(|m| m.values().filter_map(|e| render::dispatch_id(&e.data)));
        self.reg.reset(recovered.values().copied().chain(dispatched_ids).max());
        let mut taken = BTreeSet::new();
        for (key, c) in &compiled {
            // Plain ports keep their id in their dispatch element, the others in their chains.
            let id = match render::dispatch_key(&c.port, &c.rules) {
                Some((set, key)) => have.elements.get(&set).and_then(|m| m.get(&key)).and_then(|e| render::dispatch_id(&e.data)),
                None => c.rules.chains.keys().find_map(|n| recovered.get(n.as_str())).copied(),
            };
            if let Some(id) = id {
                if taken.insert(id) {
                    self.reg.adopt(key, id);
                }
            }
        }
        drop(recovered);
        let mut report = SyncReport { recreated: !same_layout, ..Default::default() };
        let mut first = Batch::new();
        if !same_layout {
            first.delete_table_if_exists(&t).add_table(&layout::table());
            for s in layout::sets() {
                first.add_set(&t, &s);
            }
        }
        let skeleton_diff = diff_taking(&mut have, skeleton);
        report.count(&skeleton_diff);
        report.weight += first.weight();
        skeleton_diff.write_into(&mut first, &t, &self.sets);

        let Applier { nft, reg, sets, part_weight, .. } = self;
        let part_weight = *part_weight;
        let (tx, rx) = mpsc::sync_channel::<Batch>(1);
        let committed = std::thread::scope(|s| {
            let committer = s.spawn(move || -> weft_kernel::Result<(usize, Duration)> {
                let (mut n, mut longest) = (0, Duration::ZERO);
                for b in rx {
                    let (k, l) = commit(nft, &b, 2 * part_weight)?;
                    n += k;
                    longest = longest.max(l);
                }
                Ok((n, longest))
            });
            let mut pending = Diff::default();
            let mut pending_weight = first.weight();
            let mut batch = Some(first);
            let send = |pending: &mut Diff, batch: &mut Option<Batch>| -> bool {
                let mut b = batch.take().unwrap_or_default();
                std::mem::take(pending).write_into(&mut b, &t, sets);
                b.is_empty() || tx.send(b).is_ok()
            };
            let mut ok = true;
            for (key, c) in &compiled {
                let o = reg.render_and_own(key, c);
                reg.remember_affinity(key, Some(c));
                let d = diff_taking(&mut have, o);
                report.count(&d);
                pending_weight += d.weight();
                pending.merge(d);
                if pending_weight >= part_weight {
                    pending_weight = 0;
                    if !send(&mut pending, &mut batch) {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                let gone = removal(std::mem::take(&mut have));
                report.count(&gone);
                pending.merge(gone);
                send(&mut pending, &mut batch);
            }
            drop(tx);
            committer.join().expect("the commit thread panicked")
        });
        let (transactions, longest_transaction) = committed?;
        report.transactions = transactions;
        report.longest_transaction = longest_transaction;
        if same_layout {
            self.gc_affinity(dynamic)?;
        }
        report.took = started.elapsed();
        tracing::info!(services = compiled.len(), weight = report.weight, transactions, recreated = report.recreated, took_ms = report.took.as_millis() as u64, "proxy table in sync");
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
        let mut report = SyncReport::default();
        let mut affinity_touched = BTreeSet::new();
        let written = |reg: &Registry, ch: &Change| ch.old.as_ref().map(|c| reg.written(&ch.key, c)).unwrap_or_default();
        // Releases first, so an address moving between services in one batch is free to take.
        let mut olds: Vec<Objects> = Vec::with_capacity(changes.len());
        for ch in changes {
            let old = written(&self.reg, ch);
            self.reg.release(&ch.key, &old);
            if ch.old.as_deref().is_some_and(has_affinity) {
                affinity_touched.extend(self.reg.id(&ch.key));
            }
            olds.push(old);
        }
        for (ch, mut old) in changes.iter().zip(olds) {
            if let Some(new) = &ch.new {
                let o = self.reg.render_and_own(&ch.key, new);
                d.merge(diff_taking(&mut old, o));
            }
            d.merge(removal(old));
        }
        report.count(&d);
        let b = d.to_batch(&t, &self.sets);
        (report.transactions, report.longest_transaction) = commit(&mut self.nft, &b, self.part_weight)?;
        for ch in changes {
            self.reg.remember_affinity(&ch.key, ch.new.as_deref());
            if ch.new.is_none() {
                self.reg.forget(&ch.key);
            }
        }
        if !affinity_touched.is_empty() {
            let mut dynamic = Vec::new();
            let shards: BTreeSet<String> = affinity_touched.iter().flat_map(|id| [layout::affinity_shard(Family::V4, *id), layout::affinity_shard(Family::V6, *id)]).collect();
            for name in shards {
                let set = self.sets[&name].clone();
                let elems = self.nft.elements(&t, &set)?;
                dynamic.push((set, elems.into_iter().filter(|e| key_id(&e.key).is_some_and(|id| affinity_touched.contains(&id))).collect()));
            }
            self.gc_affinity(dynamic)?;
        }
        self.flush_conntrack(changes);
        report.took = started.elapsed();
        tracing::debug!(changes = changes.len(), weight = report.weight, took_us = report.took.as_micros() as u64, "proxy changes applied");
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
        self.reg.affinity_is_live(id, &target)
    }

    /// UDP has no connection to end: entries to an endpoint that went away keep clients
    /// sending into the void, and entries made while a service rejected keep them refused.
    fn flush_conntrack(&mut self, changes: &[Change]) {
        let mut stale: Vec<(IpAddr, Vec<IpAddr>, u16)> = Vec::new();
        let mut served: Vec<(IpAddr, u16)> = Vec::new();
        // As kube-proxy: entries to the node port on any node address.
        let mut served_node_ports: Vec<u16> = Vec::new();
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
            served_node_ports.extend(ch.udp_node_port_now_served());
        }
        if stale.is_empty() && served.is_empty() && served_node_ports.is_empty() {
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
            let was_refused = served.iter().any(|(a, p)| e.orig.dst == *a && e.orig.dport == *p) || served_node_ports.contains(&e.orig.dport);
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

    /// The id the kernel records for a service port compiled to `c` (in its dispatch
    /// element for a plain port, in its chains' comments otherwise), for introspection.
    pub fn recorded_id(nft: &mut Nft, c: &Compiled) -> weft_kernel::Result<Option<u32>> {
        let t = layout::table_ref();
        if let Some((set, key)) = render::dispatch_key(&c.port, &c.rules) {
            let set = layout::sets().into_iter().find(|s| s.name == set).expect("the dispatch map is in the layout");
            return Ok(nft.elements(&t, &set)?.into_iter().find(|e| e.key == key).and_then(|e| render::dispatch_id(&e.data)));
        }
        Ok(nft.chains(&t)?.iter().filter(|k| c.rules.chains.contains_key(&k.name)).find_map(chain_id))
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
            let own_shard = per_id && id.is_some_and(|id| [Family::V4, Family::V6].into_iter().any(|f| s.name == layout::endpoints_shard(f, id) || s.name == layout::endpoints_dispatched(f)));
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
