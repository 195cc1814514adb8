//! The enforcer: makes a node's `inet weft-policy` table match a [`NodePlan`], touching
//! only what changed, and never opening a gap.
//!
//! - The first [`PolicyApplier::apply`] after [`PolicyApplier::open`] (and any after an
//!   error) reads the table back and writes only what differs from the plan: a
//!   restarted agent rewrites nothing that is already right, and the table stays in
//!   force while no agent runs (fail closed). It never deletes the table; only a set or
//!   base chain whose *definition* changed (a new weft version) forces a replacement,
//!   and that is one atomic transaction.
//! - Later applies diff the new plan against the last one by group id (a group's
//!   objects are a function of its id, see [`crate::render`]): new groups are created,
//!   verdict-map elements switched, old groups removed, as one transaction, or when
//!   very large in the three phases of [`diff`], each safe on its own.
//!
//! Blocking (netlink): from async code, call it in `spawn_blocking`.

mod diff;

pub use diff::{diff, Diff};

use crate::plan::{GroupId, NodePlan};
use crate::render::{self, Dir, Objects};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use weft_kernel::nft::{Batch, Nft, DEFAULT_PART_WEIGHT};
use weft_kernel::Netns;

/// Why an apply failed. A kernel error leaves the applier to re-read the table on the
/// next apply; a plan error changes nothing.
#[derive(Debug)]
pub enum ApplyError {
    Plan(String),
    Kernel(weft_kernel::Error),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Plan(e) => write!(f, "{e}"),
            ApplyError::Kernel(e) => write!(f, "table inet {}: {e}", render::TABLE),
        }
    }
}

impl std::error::Error for ApplyError {}

impl From<weft_kernel::Error> for ApplyError {
    fn from(e: weft_kernel::Error) -> ApplyError {
        ApplyError::Kernel(e)
    }
}

/// What one apply wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Kernel transactions committed (0: the kernel already matched).
    pub transactions: usize,
    /// Operations written (elements count one each).
    pub weight: usize,
    /// The table was read back and compared (first apply, or after an error).
    pub read_back: bool,
    /// The table was replaced whole (in one transaction): a definition had changed.
    pub replaced: bool,
    pub took: Duration,
}

pub struct PolicyApplier {
    nft: Nft,
    /// The plan the kernel holds, once known.
    applied: Option<NodePlan>,
    part_weight: usize,
}

impl PolicyApplier {
    /// An applier for the table in `ns`. Reads and writes nothing yet.
    pub fn open(ns: &Netns) -> weft_kernel::Result<PolicyApplier> {
        Ok(PolicyApplier { nft: Nft::open(ns)?, applied: None, part_weight: DEFAULT_PART_WEIGHT })
    }

    /// Changes heavier than this (elements and other operations, one each) are cut
    /// into phases (see [`diff`]).
    pub fn with_part_weight(mut self, w: usize) -> PolicyApplier {
        self.part_weight = w.max(1);
        self
    }

    /// The plan last written (or found in place), if any.
    pub fn applied(&self) -> Option<&NodePlan> {
        self.applied.as_ref()
    }

    /// Makes the table match `plan`.
    pub fn apply(&mut self, plan: &NodePlan) -> Result<ApplyReport, ApplyError> {
        render::check(plan).map_err(ApplyError::Plan)?;
        let Some(old) = &self.applied else {
            return self.resync(plan);
        };
        let started = Instant::now();
        if old == plan {
            return Ok(ApplyReport { took: started.elapsed(), ..Default::default() });
        }
        let (have, want) = incremental(old, plan).map_err(ApplyError::Plan)?;
        let d = diff(&have, &want);
        let mut report = self.write(&d, false).inspect_err(|_| self.applied = None)?;
        self.applied = Some(plan.clone());
        report.took = started.elapsed();
        tracing::debug!(weight = report.weight, transactions = report.transactions, took_us = report.took.as_micros() as u64, "policy table updated");
        Ok(report)
    }

    /// Reads the table back and writes what differs from `plan`.
    pub fn resync(&mut self, plan: &NodePlan) -> Result<ApplyReport, ApplyError> {
        let started = Instant::now();
        self.applied = None;
        let want = render::render(plan).map_err(ApplyError::Plan)?;
        let t = render::table_ref();
        let actual = self.nft.ruleset(&t)?;
        let have = actual.as_ref().map(Objects::from_ruleset).unwrap_or_default();
        let d = diff(&have, &want);
        let mut report = if d.redefined.is_empty() {
            self.write(&d, actual.is_none())?
        } else {
            tracing::warn!(redefined = ?d.redefined, "policy table: definitions changed; replacing the table in one transaction");
            let mut b = Batch::new();
            b.replace_ruleset(&want.to_ruleset());
            self.nft.commit(&b)?;
            ApplyReport { transactions: 1, weight: b.weight(), replaced: true, ..Default::default() }
        };
        report.read_back = true;
        report.took = started.elapsed();
        self.applied = Some(plan.clone());
        tracing::info!(
            ingress_isolated = plan.ingress.len(),
            egress_isolated = plan.egress.len(),
            groups = plan.groups.len(),
            weight = report.weight,
            transactions = report.transactions,
            took_ms = report.took.as_millis() as u64,
            "policy table in sync with the kernel"
        );
        Ok(report)
    }

    fn write(&mut self, d: &Diff, create_table: bool) -> Result<ApplyReport, ApplyError> {
        let t = render::table_ref();
        let mut create = Batch::new();
        if create_table {
            create.add_table(&render::table());
        }
        d.create(&mut create, &t);
        let mut switch = Batch::new();
        d.switch(&mut switch, &t);
        let mut remove = Batch::new();
        d.remove(&mut remove, &t);
        let weight = create.weight() + switch.weight() + remove.weight();
        let mut transactions = 0;
        if weight <= self.part_weight {
            let mut all = create;
            d.switch(&mut all, &t);
            d.remove(&mut all, &t);
            if !all.is_empty() {
                self.nft.commit(&all)?;
                transactions = 1;
            }
        } else {
            transactions += self.nft.commit_in_parts(&create, self.part_weight)?;
            if !switch.is_empty() {
                self.nft.commit(&switch)?;
                transactions += 1;
            }
            transactions += self.nft.commit_in_parts(&remove, self.part_weight)?;
        }
        Ok(ApplyReport { transactions, weight, ..Default::default() })
    }
}

/// The objects that differ between two plans, rendered on both sides: the skeleton and
/// the verdict maps (small: one element per local pod), and the groups that one plan
/// uses and the other does not (or whose content differs). Groups both use alike are
/// left out, so the cost follows the change, not the number of groups.
fn incremental(old: &NodePlan, new: &NodePlan) -> Result<(Objects, Objects), String> {
    let (ou, nu) = (render::uses(old), render::uses(new));
    let changed = |u: &&(Dir, GroupId)| old.groups.get(&u.1) != new.groups.get(&u.1);
    let only_old: BTreeSet<(Dir, GroupId)> = ou.iter().filter(|u| !nu.contains(u) || changed(u)).copied().collect();
    let only_new: BTreeSet<(Dir, GroupId)> = nu.iter().filter(|u| !ou.contains(u) || changed(u)).copied().collect();
    // Verdict-map entries that are the same on both sides and point at a group that
    // did not change make no difference to the diff: only the others are rendered, so a
    // change costs what it touches, not the node's pod count.
    let rewritten: BTreeSet<GroupId> = only_old.iter().chain(&only_new).map(|u| u.1).filter(|g| old.groups.get(g) != new.groups.get(g)).collect();
    let differing = |a: &NodePlan, b: &NodePlan| NodePlan {
        egress: a.egress.iter().filter(|(ip, g)| b.egress.get(ip) != Some(g) || rewritten.contains(g)).map(|(ip, g)| (*ip, *g)).collect(),
        ingress: a.ingress.iter().filter(|(ip, g)| b.ingress.get(ip) != Some(g) || rewritten.contains(g)).map(|(ip, g)| (*ip, *g)).collect(),
        groups: Default::default(),
    };
    let side = |p: &NodePlan, entries: &NodePlan, which: &BTreeSet<(Dir, GroupId)>| -> Result<Objects, String> {
        let mut o = render::skeleton();
        o.extend(render::vmap_elements(entries));
        o.extend(render::groups(p, which)?);
        Ok(o)
    };
    Ok((side(old, &differing(old, new), &only_old)?, side(new, &differing(new, old), &only_new)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;
    use crate::plan::{AllowSet, IpRange, PortAllow};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn allow(port: u16) -> AllowSet {
        let peer = IpRange { first: ip("10.244.1.0"), last: ip("10.244.1.255") };
        AllowSet { any: vec![], ports: vec![PortAllow { peer, protocol: Protocol::Tcp, first: port, last: port }] }
    }

    #[test]
    fn an_incremental_change_equals_the_full_diff() {
        let many: Vec<(IpAddr, GroupId)> = (2..60).map(|i| (ip(&format!("10.244.0.{i}")), GroupId(i % 5))).collect();
        let old = NodePlan { ingress: many.iter().copied().collect(), egress: many[..10].iter().copied().collect(), groups: (0..5).map(|g| (GroupId(g), allow(g as u16 + 80))).collect() };
        let mut new = old.clone();
        // One pod moves to a new group, one group goes, one pod stops being egress-isolated.
        new.groups.insert(GroupId(9), allow(8080));
        new.ingress.insert(ip("10.244.0.2"), GroupId(9));
        new.ingress.retain(|_, g| *g != GroupId(4));
        new.egress.retain(|_, g| *g != GroupId(4));
        new.groups.remove(&GroupId(4));
        new.egress.remove(&ip("10.244.0.3"));
        let (have, want) = incremental(&old, &new).unwrap();
        let small = diff(&have, &want);
        let full = diff(&render::render(&old).unwrap(), &render::render(&new).unwrap());
        assert_eq!(small, full);
        assert!(have.chains.len() < render::render(&old).unwrap().chains.len(), "unchanged groups are not rendered");
    }

    #[test]
    fn a_group_whose_content_changed_under_the_same_id_is_rewritten() {
        let old = NodePlan { ingress: [(ip("10.244.0.2"), GroupId(1))].into(), egress: Default::default(), groups: [(GroupId(1), allow(80))].into() };
        let mut new = old.clone();
        new.groups.insert(GroupId(1), allow(81));
        let (have, want) = incremental(&old, &new).unwrap();
        let d = diff(&have, &want);
        assert_eq!(d.delete_elements.keys().collect::<Vec<_>>(), ["in-0000000000000001-p4"]);
        assert_eq!(d.add_elements.keys().collect::<Vec<_>>(), ["in-0000000000000001-p4"]);
    }
}
