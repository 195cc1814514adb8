//! A transaction: an ordered list of typed operations that the kernel
//! applies all together or not at all. Building and encoding are pure; the
//! client ([`super::Nft::commit`]) sends it.

use super::chain::Chain;
use super::elem::Element;
use super::rule::Rule;
use super::set::Set;
use super::table::{Table, TableRef};

/// `Add` succeeds when the object exists (nft `add`); `Create` fails with
/// "exists" instead (nft `create`, NLM_F_EXCL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Add,
    Create,
}

/// Where a new rule goes in its chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Append,
    Prepend,
    After(u64),
    Before(u64),
}

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Table { table: Table, mode: Mode },
    DeleteTable { table: TableRef },
    Chain { table: TableRef, chain: Chain, mode: Mode },
    FlushChain { table: TableRef, chain: String },
    DeleteChain { table: TableRef, chain: String },
    Set { table: TableRef, set: Set, mode: Mode },
    FlushSet { table: TableRef, set: String },
    DeleteSet { table: TableRef, set: String },
    Elements { table: TableRef, set: Set, elems: Vec<Element>, mode: Mode },
    DeleteElements { table: TableRef, set: Set, elems: Vec<Element> },
    Rule { table: TableRef, rule: Rule, at: Position },
    ReplaceRule { table: TableRef, rule: Rule, handle: u64 },
    DeleteRule { table: TableRef, chain: String, handle: u64 },
}

impl Op {
    /// How much kernel work this is, for splitting: one per element, else one.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Op::Elements { elems, .. } | Op::DeleteElements { elems, .. } => elems.len(),
            _ => 1,
        }
    }
}

/// Operations to commit as one transaction.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    pub(crate) generation: Option<u32>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Commit only if the ruleset generation is still `gen` (from
    /// [`super::Nft::generation`]); otherwise the commit fails as busy and
    /// nothing changes. For read-diff-write without racing another writer.
    pub fn expect_generation(&mut self, gen: u32) -> &mut Self {
        self.generation = Some(gen);
        self
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Total weight: elements count one each, other operations one.
    pub fn weight(&self) -> usize {
        self.ops.iter().map(Op::weight).sum()
    }

    fn push(&mut self, op: Op) -> &mut Self {
        self.ops.push(op);
        self
    }

    pub fn add_table(&mut self, table: &Table) -> &mut Self {
        self.push(Op::Table { table: table.clone(), mode: Mode::Add })
    }

    pub fn create_table(&mut self, table: &Table) -> &mut Self {
        self.push(Op::Table { table: table.clone(), mode: Mode::Create })
    }

    /// Deletes a table with everything in it.
    pub fn delete_table(&mut self, table: &TableRef) -> &mut Self {
        self.push(Op::DeleteTable { table: table.clone() })
    }

    /// Deletes a table if it is there (adds it first, so the delete cannot
    /// fail for its absence), e.g. to start from a clean slate atomically.
    pub fn delete_table_if_exists(&mut self, table: &TableRef) -> &mut Self {
        self.add_table(&Table::new(table.family, &table.name));
        self.delete_table(table)
    }

    pub fn add_chain(&mut self, table: &TableRef, chain: &Chain) -> &mut Self {
        self.push(Op::Chain { table: table.clone(), chain: chain.clone(), mode: Mode::Add })
    }

    pub fn create_chain(&mut self, table: &TableRef, chain: &Chain) -> &mut Self {
        self.push(Op::Chain { table: table.clone(), chain: chain.clone(), mode: Mode::Create })
    }

    /// Deletes every rule of a chain.
    pub fn flush_chain(&mut self, table: &TableRef, chain: &str) -> &mut Self {
        self.push(Op::FlushChain { table: table.clone(), chain: chain.to_string() })
    }

    pub fn delete_chain(&mut self, table: &TableRef, chain: &str) -> &mut Self {
        self.push(Op::DeleteChain { table: table.clone(), chain: chain.to_string() })
    }

    pub fn add_set(&mut self, table: &TableRef, set: &Set) -> &mut Self {
        self.push(Op::Set { table: table.clone(), set: set.clone(), mode: Mode::Add })
    }

    pub fn create_set(&mut self, table: &TableRef, set: &Set) -> &mut Self {
        self.push(Op::Set { table: table.clone(), set: set.clone(), mode: Mode::Create })
    }

    /// Deletes every element of a set or map.
    pub fn flush_set(&mut self, table: &TableRef, set: &str) -> &mut Self {
        self.push(Op::FlushSet { table: table.clone(), set: set.to_string() })
    }

    pub fn delete_set(&mut self, table: &TableRef, set: &str) -> &mut Self {
        self.push(Op::DeleteSet { table: table.clone(), set: set.to_string() })
    }

    /// Adds elements (existing ones are left as they are). `set` gives the
    /// key and data shape the elements are checked and encoded against.
    pub fn add_elements(&mut self, table: &TableRef, set: &Set, elems: impl IntoIterator<Item = Element>) -> &mut Self {
        self.elements(table, set, elems, Mode::Add)
    }

    /// Adds elements, failing (and so failing the batch) if one exists.
    pub fn create_elements(&mut self, table: &TableRef, set: &Set, elems: impl IntoIterator<Item = Element>) -> &mut Self {
        self.elements(table, set, elems, Mode::Create)
    }

    fn elements(&mut self, table: &TableRef, set: &Set, elems: impl IntoIterator<Item = Element>, mode: Mode) -> &mut Self {
        let elems: Vec<Element> = elems.into_iter().collect();
        if elems.is_empty() {
            return self;
        }
        self.push(Op::Elements { table: table.clone(), set: set.clone(), elems, mode })
    }

    /// Deletes elements by key (ranges by their start and end).
    pub fn delete_elements(&mut self, table: &TableRef, set: &Set, elems: impl IntoIterator<Item = Element>) -> &mut Self {
        let elems: Vec<Element> = elems.into_iter().collect();
        if elems.is_empty() {
            return self;
        }
        self.push(Op::DeleteElements { table: table.clone(), set: set.clone(), elems })
    }

    /// Appends a rule to its chain.
    pub fn add_rule(&mut self, table: &TableRef, rule: &Rule) -> &mut Self {
        self.insert_rule(table, rule, Position::Append)
    }

    pub fn insert_rule(&mut self, table: &TableRef, rule: &Rule, at: Position) -> &mut Self {
        self.push(Op::Rule { table: table.clone(), rule: rule.clone(), at })
    }

    /// Replaces the rule with `handle` in `rule.chain` (it keeps its place and handle).
    pub fn replace_rule(&mut self, table: &TableRef, rule: &Rule, handle: u64) -> &mut Self {
        self.push(Op::ReplaceRule { table: table.clone(), rule: rule.clone(), handle })
    }

    pub fn delete_rule(&mut self, table: &TableRef, chain: &str, handle: u64) -> &mut Self {
        self.push(Op::DeleteRule { table: table.clone(), chain: chain.to_string(), handle })
    }

    /// Cuts this batch into consecutive batches of at most `max_weight`
    /// (elements count one each), keeping the order of operations. Each part
    /// commits atomically; the whole no longer does. For loads so large that
    /// one kernel transaction would hold the nftables mutex too long.
    pub fn split(&self, max_weight: usize) -> Vec<Batch> {
        let max = max_weight.max(1);
        let mut parts = vec![Batch { ops: Vec::new(), generation: self.generation }];
        let mut room = max;
        for op in &self.ops {
            let mut rest = match op {
                Op::Elements { elems, .. } | Op::DeleteElements { elems, .. } => elems.as_slice(),
                other => {
                    if room == 0 {
                        parts.push(Batch::new());
                        room = max;
                    }
                    parts.last_mut().unwrap().ops.push(other.clone());
                    room -= 1;
                    continue;
                }
            };
            while !rest.is_empty() {
                if room == 0 {
                    parts.push(Batch::new());
                    room = max;
                }
                let take = rest.len().min(room);
                let chunk = rest[..take].to_vec();
                rest = &rest[take..];
                room -= take;
                parts.last_mut().unwrap().ops.push(match op {
                    Op::Elements { table, set, mode, .. } => Op::Elements { table: table.clone(), set: set.clone(), elems: chunk, mode: *mode },
                    Op::DeleteElements { table, set, .. } => Op::DeleteElements { table: table.clone(), set: set.clone(), elems: chunk },
                    _ => unreachable!("only element operations are cut"),
                });
            }
        }
        parts.retain(|b| !b.ops.is_empty());
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::set::KeyType;
    use crate::nft::table::Family;
    use crate::nft::value::Value;

    #[test]
    fn split_keeps_order_and_cuts_element_lists() {
        let t = TableRef::new(Family::Ip, "weft");
        let set = Set::new("s", &[KeyType::InetService]);
        let mut b = Batch::new();
        b.expect_generation(7).add_table(&Table::new(Family::Ip, "weft")).add_set(&t, &set);
        b.add_elements(&t, &set, (0..25).map(|p| Element::new(Value::port(p))));
        b.add_chain(&t, &Chain::regular("c"));
        assert_eq!(b.weight(), 28);
        let parts = b.split(10);
        assert_eq!(parts.iter().map(Batch::weight).collect::<Vec<_>>(), [10, 10, 8]);
        assert_eq!(parts[0].generation, Some(7));
        assert_eq!(parts[1].generation, None, "only the first part can check the generation");
        let keys: Vec<Value> = parts
            .iter()
            .flat_map(|p| p.ops.iter())
            .filter_map(|op| match op {
                Op::Elements { elems, .. } => Some(elems.iter().map(|e| e.key.clone())),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(keys, (0..25).map(Value::port).collect::<Vec<_>>());
        assert!(matches!(parts[2].ops.last(), Some(Op::Chain { .. })));
        assert_eq!(b.split(1000).len(), 1);
    }
}
