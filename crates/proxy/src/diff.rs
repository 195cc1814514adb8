//! What to write to move the kernel from one set of objects to another: pure, so the
//! same code serves the first sync after a (re)start (kernel state → desired state) and
//! each incremental update (a service port's old objects → its new ones).
//!
//! The operations go in an order where nothing ever points at something missing, so a
//! batch cut into several transactions is still consistent after each one:
//! new chains, then rules of new and changed chains, then deleted map elements, then new
//! ones, then deleted chains (once no element points at them).

use crate::layout::{ChainObj, Objects};
use std::collections::{BTreeMap, HashMap};
use weft_kernel::nft::{Batch, Chain, Element, Rule, Set, TableRef, Value};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    pub add_chains: Vec<Chain>,
    /// Chains whose rules are (re)written: `(chain, rules, flush first)`.
    pub set_rules: Vec<(String, Vec<Rule>, bool)>,
    pub delete_elements: BTreeMap<String, Vec<Element>>,
    pub add_elements: BTreeMap<String, Vec<Element>>,
    pub delete_chains: Vec<String>,
}

fn rules_of(c: ChainObj) -> Vec<Rule> {
    let name = c.chain.name;
    c.rules.into_iter().map(|e| Rule::new(&name, e)).collect()
}

/// What to write so that the kernel, holding `have`, holds `new`'s objects too; the
/// objects of `have` that `new` also names are taken out of it, so what is left in
/// `have` afterwards is what nothing wanted (see [`removal`]). A full sync goes through
/// the kernel's objects this way one service port at a time.
pub fn diff_taking(have: &mut Objects, new: Objects) -> Diff {
    let mut d = Diff::default();
    for (name, c) in new.chains {
        match have.chains.remove(&name) {
            None => {
                d.add_chains.push(c.chain.clone());
                if !c.rules.is_empty() {
                    d.set_rules.push((name, rules_of(c), false));
                }
            }
            Some(o) if o.rules != c.rules => d.set_rules.push((name, rules_of(c), true)),
            Some(_) => {}
        }
    }
    for (set, elems) in new.elements {
        let mut had = have.elements.get_mut(&set);
        let mut del: Vec<Element> = Vec::new();
        let mut add: Vec<Element> = Vec::new();
        for (k, e) in elems {
            match had.as_mut().and_then(|h| h.remove(&k)) {
                None => add.push(e),
                Some(old) if old.data != e.data => {
                    del.push(old);
                    add.push(e);
                }
                Some(_) => {}
            }
        }
        if had.is_some_and(|h| h.is_empty()) {
            have.elements.remove(&set);
        }
        if !del.is_empty() {
            d.delete_elements.insert(set.clone(), del);
        }
        if !add.is_empty() {
            d.add_elements.insert(set, add);
        }
    }
    d
}

/// What to write to remove `have`'s objects (elements before the chains they point at).
pub fn removal(have: Objects) -> Diff {
    Diff {
        delete_elements: have.elements.into_iter().filter(|(_, e)| !e.is_empty()).map(|(s, e)| (s, e.into_values().collect())).collect(),
        delete_chains: have.chains.into_keys().collect(),
        ..Default::default()
    }
}

/// The difference from `old` to `new`.
pub fn diff(old: &Objects, new: &Objects) -> Diff {
    let mut have = old.clone();
    let mut d = diff_taking(&mut have, new.clone());
    d.merge(removal(have));
    d
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.add_chains.is_empty() && self.set_rules.is_empty() && self.delete_elements.is_empty() && self.add_elements.is_empty() && self.delete_chains.is_empty()
    }

    /// Adds another diff over disjoint objects (another service port).
    pub fn merge(&mut self, o: Diff) {
        self.add_chains.extend(o.add_chains);
        self.set_rules.extend(o.set_rules);
        for (s, e) in o.delete_elements {
            self.delete_elements.entry(s).or_default().extend(e);
        }
        for (s, e) in o.add_elements {
            self.add_elements.entry(s).or_default().extend(e);
        }
        self.delete_chains.extend(o.delete_chains);
    }

    /// Elements this diff adds or deletes, and rules it writes: a measure of its size.
    pub fn weight(&self) -> usize {
        self.add_chains.len()
            + self.set_rules.iter().map(|r| r.1.len() + r.2 as usize).sum::<usize>()
            + self.delete_elements.values().map(Vec::len).sum::<usize>()
            + self.add_elements.values().map(Vec::len).sum::<usize>()
            + self.delete_chains.len()
    }

    /// The operations, in dependency order. `sets` gives each map's key and data shape.
    pub fn to_batch(&self, t: &TableRef, sets: &HashMap<String, Set>) -> Batch {
        let mut b = Batch::new();
        self.write_into(&mut b, t, sets);
        b
    }

    /// Appends the operations to `b`.
    pub fn write_into(&self, b: &mut Batch, t: &TableRef, sets: &HashMap<String, Set>) {
        for c in &self.add_chains {
            b.add_chain(t, c);
        }
        for (chain, rules, flush) in &self.set_rules {
            if *flush {
                b.flush_chain(t, chain);
            }
            for r in rules {
                b.add_rule(t, r);
            }
        }
        for (s, elems) in &self.delete_elements {
            b.delete_elements(t, &sets[s], elems.iter().cloned());
        }
        for (s, elems) in &self.add_elements {
            b.add_elements(t, &sets[s], elems.iter().cloned());
        }
        for c in &self.delete_chains {
            b.flush_chain(t, c);
            b.delete_chain(t, c);
        }
    }
}

/// Keys of `set`'s elements in `o` (for tests and introspection).
pub fn keys(o: &Objects, set: &str) -> Vec<Value> {
    o.elements.get(set).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_kernel::nft::{Expr, Verdict};

    fn objects(chains: &[(&str, usize)], elems: &[(u16, &str)]) -> Objects {
        let mut o = Objects::default();
        for (c, n) in chains {
            o.chain(Chain::regular(c), (0..*n).map(|i| vec![Expr::load(weft_kernel::nft::Reg::R1, Value::u32(i as u32)), Expr::accept()]).collect());
        }
        for (k, target) in elems {
            o.element("m", Element::verdict(Value::port(*k), Verdict::Goto(target.to_string())));
        }
        o
    }

    #[test]
    fn nothing_changed_means_nothing_to_write() {
        let o = objects(&[("a", 2)], &[(1, "a")]);
        assert!(diff(&o, &o.clone()).is_empty());
    }

    #[test]
    fn a_changed_element_is_deleted_then_added_and_a_gone_chain_goes_last() {
        let old = objects(&[("a", 1), ("b", 1)], &[(1, "a"), (2, "b")]);
        let new = objects(&[("a", 2), ("c", 1)], &[(1, "c"), (3, "a")]);
        let d = diff(&old, &new);
        assert_eq!(d.add_chains.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(d.set_rules.iter().map(|r| (r.0.as_str(), r.1.len(), r.2)).collect::<Vec<_>>(), [("a", 2, true), ("c", 1, false)]);
        assert_eq!(d.delete_elements["m"].iter().map(|e| e.key.clone()).collect::<Vec<_>>(), [Value::port(1), Value::port(2)]);
        assert_eq!(d.add_elements["m"].iter().map(|e| e.key.clone()).collect::<Vec<_>>(), [Value::port(1), Value::port(3)]);
        assert_eq!(d.delete_chains, ["b"]);
        let sets = HashMap::from([("m".to_string(), Set::vmap("m", &[weft_kernel::nft::KeyType::InetService]))]);
        let b = d.to_batch(&crate::layout::table_ref(), &sets);
        // add c, rules: flush a + 2, c + 1, delete elems, add elems, flush b + delete b.
        assert_eq!(b.len(), 1 + 3 + 1 + 1 + 1 + 2);
    }
}
