//! Reading back: tables, chains, sets with their elements, and rules of a
//! table, decoded into the same types a batch is written with.

use super::chain::Chain;
use super::client::Nft;
use super::elem::{self, Element};
use super::expr_decode::AttrTable;
use super::msg::{nfnl_type, AttrWriter};
use super::rule::Rule;
use super::ruleset::Ruleset;
use super::set::Set;
use super::sys as c;
use super::table::{Family, Table, TableRef};
use crate::error::{Error, Result};

fn nft_type(msg: u16) -> u16 {
    nfnl_type(c::NFNL_SUBSYS_NFTABLES, msg)
}

impl Nft {
    /// The ruleset generation: it changes with every committed transaction.
    pub fn generation(&mut self) -> Result<u32> {
        let replies = self.sock.request(nft_type(c::NFT_MSG_GETGEN), 0, 0, &[], "read", "nftables generation")?;
        for payload in replies {
            let t = AttrTable::parse(payload.get(4..).unwrap_or(&[])).map_err(|e| Error::invalid("decode", "nftables generation", e.0))?;
            if let Some(id) = t.opt_u32(c::NFTA_GEN_ID).map_err(|e| Error::invalid("decode", "nftables generation", e.0))? {
                return Ok(id);
            }
        }
        Err(Error::invalid("read", "nftables generation", "the kernel sent no generation id"))
    }

    /// Tables of one family, or of all families.
    pub fn tables(&mut self, family: Option<Family>) -> Result<Vec<Table>> {
        let mut out = Vec::new();
        let fam = family.map_or(0, |f| f.code() as u8);
        self.sock.dump(nft_type(c::NFT_MSG_GETTABLE), fam, &[], "tables", |m| {
            let (family, attrs) = m.nfgen()?;
            out.push(Table::decode(family, attrs)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The table, if it exists.
    pub fn table(&mut self, table: &TableRef) -> Result<Option<Table>> {
        Ok(self.tables(Some(table.family))?.into_iter().find(|t| t.name == table.name))
    }

    /// Chains of a table, in the kernel's order.
    pub fn chains(&mut self, table: &TableRef) -> Result<Vec<Chain>> {
        let mut out = Vec::new();
        let mut w = AttrWriter::new();
        w.str(c::NFTA_CHAIN_TABLE, &table.name);
        self.sock.dump(nft_type(c::NFT_MSG_GETCHAIN), table.family.code() as u8, &w.buf, &format!("chains of table {table}"), |m| {
            let (_, attrs) = m.nfgen()?;
            let t = AttrTable::parse(attrs)?;
            if t.str(c::NFTA_CHAIN_TABLE, "chain table")? == table.name {
                out.push(Chain::decode(table.family, &t)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Sets and maps of a table (without elements: see [`Nft::elements`]).
    pub fn sets(&mut self, table: &TableRef) -> Result<Vec<Set>> {
        let mut out = Vec::new();
        let mut w = AttrWriter::new();
        w.str(c::NFTA_SET_TABLE, &table.name);
        self.sock.dump(nft_type(c::NFT_MSG_GETSET), table.family.code() as u8, &w.buf, &format!("sets of table {table}"), |m| {
            let (_, attrs) = m.nfgen()?;
            let t = AttrTable::parse(attrs)?;
            if t.str(c::NFTA_SET_TABLE, "set table")? == table.name {
                out.push(Set::decode(&t)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Elements of a set, with ranges put back together (`set` as read
    /// back or as written: its shape says how elements are stored).
    pub fn elements(&mut self, table: &TableRef, set: &Set) -> Result<Vec<Element>> {
        let mut raw = Vec::new();
        let mut w = AttrWriter::new();
        w.str(c::NFTA_SET_ELEM_LIST_TABLE, &table.name).str(c::NFTA_SET_ELEM_LIST_SET, &set.name);
        self.sock.dump(nft_type(c::NFT_MSG_GETSETELEM), table.family.code() as u8, &w.buf, &format!("elements of set {table}/{}", set.name), |m| {
            let (_, attrs) = m.nfgen()?;
            let t = AttrTable::parse(attrs)?;
            if let Some(list) = t.get(c::NFTA_SET_ELEM_LIST_ELEMENTS) {
                elem::decode_elements(list, &mut raw)?;
            }
            Ok(())
        })?;
        Ok(elem::assemble(set, raw))
    }

    /// Rules of a table (of one chain when `chain` is given), in chain order.
    pub fn rules(&mut self, table: &TableRef, chain: Option<&str>) -> Result<Vec<Rule>> {
        let mut out = Vec::new();
        let mut w = AttrWriter::new();
        w.str(c::NFTA_RULE_TABLE, &table.name);
        if let Some(ch) = chain {
            w.str(c::NFTA_RULE_CHAIN, ch);
        }
        let what = match chain {
            Some(ch) => format!("rules of chain {table}/{ch}"),
            None => format!("rules of table {table}"),
        };
        self.sock.dump(nft_type(c::NFT_MSG_GETRULE), table.family.code() as u8, &w.buf, &what, |m| {
            let (_, attrs) = m.nfgen()?;
            let t = AttrTable::parse(attrs)?;
            let rule = Rule::decode(&t).map_err(|e| super::msg::DecodeError(format!("rule handle {:?}: {e}", t.opt_u64(c::NFTA_RULE_HANDLE).ok().flatten())))?;
            if t.str(c::NFTA_RULE_TABLE, "rule table")? == table.name && chain.is_none_or(|ch| ch == rule.chain) {
                out.push(rule);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Everything in a table, or `None` if there is no such table. Not one
    /// atomic snapshot: compare [`Nft::generation`] before and after when a
    /// concurrent writer is possible.
    pub fn ruleset(&mut self, table: &TableRef) -> Result<Option<Ruleset>> {
        let Some(t) = self.table(table)? else {
            return Ok(None);
        };
        let chains = self.chains(table)?;
        let mut sets = Vec::new();
        for set in self.sets(table)? {
            let elems = self.elements(table, &set)?;
            sets.push((set, elems));
        }
        let rules = self.rules(table, None)?;
        Ok(Some(Ruleset { table: t, chains, sets, rules }))
    }
}
