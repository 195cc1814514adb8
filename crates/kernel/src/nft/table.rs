//! Tables and the address families they live in.

use super::expr::code_enum;
use super::expr_decode::AttrTable;
use super::msg::{AttrWriter, Decoded};
use super::sys as c;
use std::fmt;

code_enum!(
    /// The family of a table (NFPROTO_*): which packets its base chains see.
    Family { Inet = 1, Ip = 2, Arp = 3, Netdev = 5, Bridge = 7, Ip6 = 10 }
);

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Arp => "arp",
            Family::Netdev => "netdev",
            Family::Bridge => "bridge",
            Family::Ip6 => "ip6",
        }
    }
}

/// Names a table: what every chain, set and rule operation is scoped to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    pub family: Family,
    pub name: String,
}

impl TableRef {
    pub fn new(family: Family, name: &str) -> TableRef {
        TableRef { family, name: name.to_string() }
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.family.name(), self.name)
    }
}

/// A table. `handle` is assigned by the kernel and only set on read-back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Table {
    pub family: Family,
    pub name: String,
    /// A dormant table's base chains see no packets.
    pub dormant: bool,
    pub handle: Option<u64>,
}

impl Table {
    pub fn new(family: Family, name: &str) -> Table {
        Table { family, name: name.to_string(), dormant: false, handle: None }
    }

    pub fn table_ref(&self) -> TableRef {
        TableRef { family: self.family, name: self.name.clone() }
    }

    pub(crate) fn encode(&self, w: &mut AttrWriter) {
        w.str(c::NFTA_TABLE_NAME, &self.name);
        w.be32(c::NFTA_TABLE_FLAGS, if self.dormant { c::NFT_TABLE_F_DORMANT } else { 0 });
    }

    pub(crate) fn decode(family: u8, attrs: &[u8]) -> Decoded<Table> {
        let t = AttrTable::parse(attrs)?;
        Ok(Table {
            family: Family::from_code(family as u32)?,
            name: t.str(c::NFTA_TABLE_NAME, "table name")?,
            dormant: t.opt_u32(c::NFTA_TABLE_FLAGS)?.unwrap_or(0) & c::NFT_TABLE_F_DORMANT != 0,
            handle: t.opt_u64(c::NFTA_TABLE_HANDLE)?,
        })
    }
}
