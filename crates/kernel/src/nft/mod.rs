//! An nf_tables client over netlink (NFNL_SUBSYS_NFTABLES), with no `nft`
//! binary and no libnftnl, plus a small ctnetlink client.
//!
//! - Model: [`Table`], [`Chain`], [`Set`] (sets and maps, concatenated keys,
//!   intervals, timeouts), [`Element`], [`Rule`] made of typed [`Expr`]s over
//!   [`Value`]s and [`Reg`]isters; [`Ruleset`] is the whole of one table.
//! - Writing: a [`Batch`] of operations commits atomically through
//!   [`Nft::commit`]; a refused operation is named in the error and nothing
//!   changes. Huge element loads can be cut into several transactions
//!   ([`Nft::commit_in_parts`]).
//! - Reading: [`Nft::ruleset`] and friends decode the kernel's state into the
//!   same types, so desired and actual state compare with `==` (after
//!   [`Ruleset::canonical`]).
//! - [`Conntrack`]: list entries, delete the ones matching a filter.
//!
//! ```no_run
//! use weft_kernel::nft::*;
//! # fn main() -> weft_kernel::Result<()> {
//! let t = Table::new(Family::Ip, "weft");
//! let services = Set::vmap("services", &[KeyType::Ipv4Addr, KeyType::InetProto, KeyType::InetService]);
//! let mut rs = Ruleset::new(t.clone());
//! rs.chain(Chain::base("nat-output", ChainType::Nat, Hook::Output, priority::DSTNAT))
//!     .chain(Chain::regular("svc-dns"))
//!     .set(services.clone(), vec![Element::verdict(
//!         Value::concat([Value::ipv4([10, 96, 0, 10].into()), Value::proto(17), Value::port(53)]),
//!         Verdict::Goto("svc-dns".into()),
//!     )])
//!     .rule(Rule::new("nat-output", [Expr::ipv4_service_key(), vec![Expr::vmap("services", Reg::R1)]].concat()));
//! let mut nft = Nft::current()?;
//! nft.commit(Batch::new().replace_ruleset(&rs))?;
//! assert_eq!(nft.ruleset(&t.table_ref())?.unwrap().canonical(), rs.canonical());
//! # Ok(()) }
//! ```

mod batch;
mod batch_encode;
mod chain;
mod client;
mod conntrack;
mod elem;
mod expr;
mod expr_build;
mod expr_decode;
mod expr_encode;
mod msg;
mod read;
mod rule;
mod ruleset;
mod set;
mod socket;
mod sys;
mod table;
mod udata;
mod value;

pub use batch::{Batch, Mode, Position};
pub use chain::{priority, BaseChain, Chain, ChainType, Hook, Policy};
pub use client::{Nft, DEFAULT_PART_WEIGHT};
pub use conntrack::{Conntrack, CtEntry, CtFilter, CtTuple};
pub use elem::Element;
pub use expr::{
    addr_type, ct_state, BoolOp, ct_status, CmpOp, CtDir, CtKey, DynsetOp, Expr, FibFlags, FibResult, IcmpxCode, LimitKind, LogTo,
    MetaKey, NatFamily, NatFlags, NatKind, NumgenKind, PayloadBase, Reject,
};
pub use msg::DecodeError;
pub use rule::Rule;
pub use ruleset::Ruleset;
pub use set::{KeyType, Set, SetData, SetFlags, DYNAMIC_SET_DEFAULT_SIZE};
pub use table::{Family, Table, TableRef};
pub use udata::MAX_COMMENT_LEN;
pub use value::{Data, Reg, Value, Verdict};
