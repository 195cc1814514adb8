//! What to write to move the table from one set of objects to another. Pure.
//!
//! Three phases, so that a change too large for one transaction can be cut without a
//! moment where a pod is less isolated than both the old and the new plan say:
//! 1. `create`: new sets with their elements, new chains with their rules. Nothing
//!    refers to them yet, so cutting this phase anywhere is safe.
//! 2. `switch`: rewritten chains, and element changes (the verdict maps pointing
//!    pods at their new groups). Always one transaction: a changed map element is a
//!    delete and an add of the same key, which must land together.
//! 3. `remove`: chains, then sets, that nothing refers to any more.

use crate::render::{canonical_set, ChainObj, Objects};
use std::collections::BTreeMap;
use weft_kernel::nft::{Batch, Element, Rule, Set, TableRef};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub add_sets: Vec<(Set, Vec<Element>)>,
    pub add_chains: Vec<ChainObj>,
    /// Chains whose rules are rewritten (flushed, then added).
    pub set_rules: Vec<ChainObj>,
    pub delete_elements: BTreeMap<String, (Set, Vec<Element>)>,
    pub add_elements: BTreeMap<String, (Set, Vec<Element>)>,
    pub delete_chains: Vec<String>,
    pub delete_sets: Vec<String>,
    /// Sets (or base chains) whose definition differs: only a whole-table replacement
    /// can change them (named here for the log).
    pub redefined: Vec<String>,
}

/// The difference from `old` to `new`.
pub fn diff(old: &Objects, new: &Objects) -> Diff {
    let mut d = Diff::default();
    for (name, s) in &new.sets {
        match old.sets.get(name) {
            None => d.add_sets.push((s.set.clone(), s.elements.values().cloned().collect())),
            Some(o) => {
                if canonical_set(&o.set) != canonical_set(&s.set) {
                    d.redefined.push(format!("set {name}"));
                    continue;
                }
                let del: Vec<Element> = o.elements.iter().filter(|(k, e)| s.elements.get(*k).is_none_or(|n| n.data != e.data)).map(|(_, e)| e.clone()).collect();
                let add: Vec<Element> = s.elements.iter().filter(|(k, e)| o.elements.get(*k).is_none_or(|o| o.data != e.data)).map(|(_, e)| e.clone()).collect();
                if !del.is_empty() {
                    d.delete_elements.insert(name.clone(), (s.set.clone(), del));
                }
                if !add.is_empty() {
                    d.add_elements.insert(name.clone(), (s.set.clone(), add));
                }
            }
        }
    }
    for (name, c) in &new.chains {
        match old.chains.get(name) {
            None => d.add_chains.push(c.clone()),
            Some(o) if o.chain.base != c.chain.base => d.redefined.push(format!("chain {name}")),
            Some(o) if o.rules != c.rules => d.set_rules.push(c.clone()),
            Some(_) => {}
        }
    }
    d.delete_chains = old.chains.keys().filter(|n| !new.chains.contains_key(*n)).cloned().collect();
    d.delete_sets = old.sets.keys().filter(|n| !new.sets.contains_key(*n)).cloned().collect();
    d
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        *self == Diff::default()
    }

    fn rules(b: &mut Batch, t: &TableRef, c: &ChainObj) {
        for r in &c.rules {
            b.add_rule(t, &Rule::new(&c.chain.name, r.clone()));
        }
    }

    /// Phase 1: new sets and chains, nothing points at them yet.
    pub fn create(&self, b: &mut Batch, t: &TableRef) {
        for (s, _) in &self.add_sets {
            b.add_set(t, s);
        }
        for c in &self.add_chains {
            b.add_chain(t, &c.chain);
        }
        // Rules bind sets while they are empty; then elements (a new verdict map's
        // point at chains made above).
        for c in &self.add_chains {
            Diff::rules(b, t, c);
        }
        for (s, elems) in &self.add_sets {
            b.add_elements(t, s, elems.iter().cloned());
        }
    }

    /// Phase 2: rewritten chains and element changes, one transaction.
    pub fn switch(&self, b: &mut Batch, t: &TableRef) {
        for c in &self.set_rules {
            b.flush_chain(t, &c.chain.name);
            Diff::rules(b, t, c);
        }
        for (s, elems) in self.delete_elements.values() {
            b.delete_elements(t, s, elems.iter().cloned());
        }
        for (s, elems) in self.add_elements.values() {
            b.add_elements(t, s, elems.iter().cloned());
        }
    }

    /// Phase 3: what nothing refers to any more; chains first (their rules use the sets).
    pub fn remove(&self, b: &mut Batch, t: &TableRef) {
        for c in &self.delete_chains {
            b.flush_chain(t, c);
        }
        for c in &self.delete_chains {
            b.delete_chain(t, c);
        }
        for s in &self.delete_sets {
            b.delete_set(t, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;
    use crate::plan::{AllowSet, GroupId, IpRange, NodePlan, PortAllow};
    use crate::render::render;
    use std::net::IpAddr;
    use weft_kernel::nft::{Value, Verdict};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn allow_from(peer: &str, port: u16) -> AllowSet {
        AllowSet { any: vec![], ports: vec![PortAllow { peer: IpRange { first: ip(peer), last: ip(peer) }, protocol: Protocol::Tcp, first: port, last: port }] }
    }

    fn plan(ingress: &[(&str, u64)], groups: &[(u64, AllowSet)]) -> NodePlan {
        NodePlan {
            ingress: ingress.iter().map(|(a, g)| (ip(a), GroupId(*g))).collect(),
            egress: Default::default(),
            groups: groups.iter().map(|(g, a)| (GroupId(*g), a.clone())).collect(),
        }
    }

    #[test]
    fn the_same_plan_writes_nothing() {
        let p = plan(&[("10.244.0.2", 1)], &[(1, allow_from("10.244.0.3", 80))]);
        assert!(diff(&render(&p).unwrap(), &render(&p).unwrap()).is_empty());
    }

    #[test]
    fn moving_a_pod_to_a_new_group_creates_it_switches_the_map_and_removes_the_old() {
        let a = plan(&[("10.244.0.2", 1), ("10.244.0.4", 3)], &[(1, allow_from("10.244.0.3", 80)), (3, AllowSet::default())]);
        let b = plan(&[("10.244.0.2", 2), ("10.244.0.4", 3)], &[(2, allow_from("10.244.0.3", 81)), (3, AllowSet::default())]);
        let d = diff(&render(&a).unwrap(), &render(&b).unwrap());
        assert_eq!(d.add_sets.iter().map(|s| s.0.name.as_str()).collect::<Vec<_>>(), ["in-0000000000000002-p4"]);
        assert_eq!(d.add_chains.iter().map(|c| c.chain.name.as_str()).collect::<Vec<_>>(), ["in-0000000000000002"]);
        assert!(d.set_rules.is_empty(), "base chains and the unchanged group are left alone");
        let key = Value::ip(ip("10.244.0.2"));
        assert_eq!(d.delete_elements["ingress4"].1.iter().map(|e| &e.key).collect::<Vec<_>>(), [&key]);
        let added = &d.add_elements["ingress4"].1;
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].data, Some(Verdict::Jump("in-0000000000000002".into()).into()));
        assert_eq!(d.delete_chains, ["in-0000000000000001"]);
        assert_eq!(d.delete_sets, ["in-0000000000000001-p4"]);
        assert!(d.redefined.is_empty());
        let t = crate::render::table_ref();
        // create: a set, its elements, a chain, its 2 rules; switch: a delete and an add; remove: flush, delete chain, delete set.
        let len = |f: fn(&Diff, &mut Batch, &TableRef)| {
            let mut b = Batch::new();
            f(&d, &mut b, &t);
            b.len()
        };
        assert_eq!((len(Diff::create), len(Diff::switch), len(Diff::remove)), (5, 2, 3));
    }

    #[test]
    fn a_pod_that_is_no_longer_isolated_only_loses_its_map_element() {
        let a = plan(&[("10.244.0.2", 1), ("10.244.0.3", 1)], &[(1, AllowSet::default())]);
        let b = plan(&[("10.244.0.3", 1)], &[(1, AllowSet::default())]);
        let d = diff(&render(&a).unwrap(), &render(&b).unwrap());
        assert_eq!(d.delete_elements.keys().collect::<Vec<_>>(), ["ingress4"]);
        assert!(d.add_elements.is_empty() && d.add_chains.is_empty() && d.delete_chains.is_empty() && d.delete_sets.is_empty());
    }

    #[test]
    fn a_changed_base_chain_rule_is_rewritten_and_a_changed_set_definition_is_reported() {
        let p = plan(&[("10.244.0.2", 1)], &[(1, AllowSet::default())]);
        let want = render(&p).unwrap();
        let mut have = want.clone();
        have.chains.get_mut("forward").unwrap().rules.pop();
        have.sets.get_mut("egress6").unwrap().set.flags.interval = true;
        let d = diff(&have, &want);
        assert_eq!(d.set_rules.iter().map(|c| c.chain.name.as_str()).collect::<Vec<_>>(), ["forward"]);
        assert_eq!(d.redefined, ["set egress6"]);
    }
}
