//! The whole content of one table: what a planner produces and what
//! [`super::Nft::ruleset`] reads back, so the two can be compared.

use super::batch::Batch;
use super::chain::Chain;
use super::elem::Element;
use super::expr::Expr;
use super::rule::Rule;
use super::set::{Set, DYNAMIC_SET_DEFAULT_SIZE};
use super::table::{Table, TableRef};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ruleset {
    pub table: Table,
    pub chains: Vec<Chain>,
    /// Sets and maps with their elements.
    pub sets: Vec<(Set, Vec<Element>)>,
    /// Rules, in order within each chain.
    pub rules: Vec<Rule>,
}

impl Ruleset {
    pub fn new(table: Table) -> Ruleset {
        Ruleset { table, chains: Vec::new(), sets: Vec::new(), rules: Vec::new() }
    }

    pub fn table_ref(&self) -> TableRef {
        self.table.table_ref()
    }

    pub fn chain(&mut self, chain: Chain) -> &mut Self {
        self.chains.push(chain);
        self
    }

    pub fn set(&mut self, set: Set, elements: Vec<Element>) -> &mut Self {
        self.sets.push((set, elements));
        self
    }

    pub fn rule(&mut self, rule: Rule) -> &mut Self {
        self.rules.push(rule);
        self
    }

    /// A form for comparing desired and actual state: no kernel-assigned
    /// handles, counters and expiry times zeroed, defaults the kernel fills
    /// in filled in (the size of a dynamic set), chains, sets and elements
    /// sorted, rules grouped by chain (their order within a chain kept).
    pub fn canonical(&self) -> Ruleset {
        let mut table = self.table.clone();
        table.handle = None;
        let mut chains: Vec<Chain> = self.chains.iter().cloned().map(|c| Chain { handle: None, ..c }).collect();
        chains.sort_by(|a, b| a.name.cmp(&b.name));
        let mut sets: Vec<(Set, Vec<Element>)> = self
            .sets
            .iter()
            .map(|(s, elems)| {
                let mut elems: Vec<Element> = elems.iter().cloned().map(|e| Element { expires: None, ..e }).collect();
                elems.sort_by(|a, b| (&a.key, &a.key_end).cmp(&(&b.key, &b.key_end)));
                let size = s.size.or(s.flags.dynamic.then_some(DYNAMIC_SET_DEFAULT_SIZE));
                (Set { handle: None, size, ..s.clone() }, elems)
            })
            .collect();
        sets.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let mut rules: Vec<Rule> = self
            .rules
            .iter()
            .map(|r| Rule {
                handle: None,
                exprs: r
                    .exprs
                    .iter()
                    .map(|e| match e {
                        Expr::Counter { .. } => Expr::counter(),
                        other => other.clone(),
                    })
                    .collect(),
                ..r.clone()
            })
            .collect();
        rules.sort_by(|a, b| a.chain.cmp(&b.chain));
        Ruleset { table, chains, sets, rules }
    }
}

impl Batch {
    /// Adds everything in `rs`: table, chains, sets, rules, then elements.
    /// Jumps, lookups and verdict maps find what they refer to, and rules
    /// bind maps while they are still empty (the kernel re-checks every
    /// element of a map whenever a rule in another chain binds it). Each new
    /// element is still checked against every rule that binds its map, so
    /// keep a big map bound from few chains (examples/nft_bench.rs shards).
    pub fn add_ruleset(&mut self, rs: &Ruleset) -> &mut Self {
        let t = rs.table_ref();
        self.add_table(&rs.table);
        for c in &rs.chains {
            self.add_chain(&t, c);
        }
        for (s, _) in &rs.sets {
            self.add_set(&t, s);
        }
        // A constant set takes elements only before a rule binds it.
        for (s, elems) in rs.sets.iter().filter(|(s, _)| s.flags.constant) {
            self.add_elements(&t, s, elems.iter().cloned());
        }
        for r in &rs.rules {
            self.add_rule(&t, r);
        }
        for (s, elems) in rs.sets.iter().filter(|(s, _)| !s.flags.constant) {
            self.add_elements(&t, s, elems.iter().cloned());
        }
        self
    }

    /// Replaces the table with exactly `rs`, atomically: packets see the old
    /// table or the new one, never a mix.
    pub fn replace_ruleset(&mut self, rs: &Ruleset) -> &mut Self {
        self.delete_table_if_exists(&rs.table_ref());
        self.add_ruleset(rs)
    }
}
