//! Chains: base chains hooked into the packet path, and regular chains that
//! rules jump or go to.

use super::expr_decode::AttrTable;
use super::msg::{self, bad, AttrWriter, Decoded};
use super::sys as c;
use super::table::Family;
use super::udata;

/// Where a base chain sees packets. `Ingress`/`Egress` are for netdev tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    Ingress,
    Egress,
}

impl Hook {
    fn code(self) -> u32 {
        match self {
            Hook::Prerouting | Hook::Ingress => 0,
            Hook::Input | Hook::Egress => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }

    fn from_code(family: Family, code: u32) -> Decoded<Hook> {
        Ok(match (family, code) {
            (Family::Netdev, 0) => Hook::Ingress,
            (Family::Netdev, 1) => Hook::Egress,
            (Family::Inet, 5) => Hook::Ingress,
            (_, 0) => Hook::Prerouting,
            (_, 1) => Hook::Input,
            (_, 2) => Hook::Forward,
            (_, 3) => Hook::Output,
            (_, 4) => Hook::Postrouting,
            (f, n) => return bad(format!("hook {n} in a {} table", f.name())),
        })
    }

    fn code_in(self, family: Family) -> u32 {
        match (family, self) {
            (Family::Inet, Hook::Ingress) => 5,
            _ => self.code(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChainType {
    Filter,
    Nat,
    Route,
}

impl ChainType {
    fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }

    fn from_name(s: &str) -> Decoded<ChainType> {
        Ok(match s {
            "filter" => ChainType::Filter,
            "nat" => ChainType::Nat,
            "route" => ChainType::Route,
            other => return bad(format!("chain type {other:?}")),
        })
    }
}

/// What a base chain does with packets no rule decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    Accept,
    Drop,
}

/// Standard priorities, as nft names them.
pub mod priority {
    pub const RAW: i32 = -300;
    pub const MANGLE: i32 = -150;
    pub const DSTNAT: i32 = -100;
    pub const FILTER: i32 = 0;
    pub const SECURITY: i32 = 50;
    pub const SRCNAT: i32 = 100;
}

/// The hook of a base chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BaseChain {
    pub kind: ChainType,
    pub hook: Hook,
    pub priority: i32,
    pub policy: Policy,
    /// The device, for netdev ingress/egress hooks.
    pub device: Option<String>,
}

/// A chain. `base` is `None` for a regular chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub comment: Option<String>,
    pub handle: Option<u64>,
}

impl Chain {
    /// A regular chain (only reached by jump/goto).
    pub fn regular(name: &str) -> Chain {
        Chain { name: name.to_string(), base: None, comment: None, handle: None }
    }

    /// A base chain with policy accept.
    pub fn base(name: &str, kind: ChainType, hook: Hook, priority: i32) -> Chain {
        Chain {
            name: name.to_string(),
            base: Some(BaseChain { kind, hook, priority, policy: Policy::Accept, device: None }),
            comment: None,
            handle: None,
        }
    }

    pub fn with_policy(mut self, policy: Policy) -> Chain {
        if let Some(b) = self.base.as_mut() {
            b.policy = policy;
        }
        self
    }

    pub fn with_comment(mut self, comment: &str) -> Chain {
        self.comment = Some(comment.to_string());
        self
    }

    pub(crate) fn encode(&self, family: Family, w: &mut AttrWriter) {
        w.str(c::NFTA_CHAIN_NAME, &self.name);
        if let Some(b) = &self.base {
            w.nest(c::NFTA_CHAIN_HOOK, |h| {
                h.be32(c::NFTA_HOOK_HOOKNUM, b.hook.code_in(family));
                h.be32(c::NFTA_HOOK_PRIORITY, b.priority as u32);
                if let Some(dev) = &b.device {
                    h.str(c::NFTA_HOOK_DEV, dev);
                }
            });
            w.str(c::NFTA_CHAIN_TYPE, b.kind.name());
            w.be32(c::NFTA_CHAIN_POLICY, if b.policy == Policy::Accept { 1 } else { 0 });
        }
        if let Some(comment) = &self.comment {
            w.bytes(c::NFTA_CHAIN_USERDATA, &udata::comment(udata::CHAIN_COMMENT, comment));
        }
    }

    pub(crate) fn decode(family: Family, t: &AttrTable<'_>) -> Decoded<Chain> {
        let base = match t.get(c::NFTA_CHAIN_HOOK) {
            None => None,
            Some(hook) => {
                let h = AttrTable::parse(hook)?;
                Some(BaseChain {
                    kind: ChainType::from_name(&t.str(c::NFTA_CHAIN_TYPE, "chain type")?)?,
                    hook: Hook::from_code(family, h.u32(c::NFTA_HOOK_HOOKNUM, "hook number")?)?,
                    priority: h.u32(c::NFTA_HOOK_PRIORITY, "hook priority")? as i32,
                    policy: match t.opt_u32(c::NFTA_CHAIN_POLICY)?.unwrap_or(1) {
                        0 => Policy::Drop,
                        _ => Policy::Accept,
                    },
                    device: h.get(c::NFTA_HOOK_DEV).map(msg::cstr).transpose()?,
                })
            }
        };
        Ok(Chain {
            name: t.str(c::NFTA_CHAIN_NAME, "chain name")?,
            base,
            comment: t.get(c::NFTA_CHAIN_USERDATA).and_then(|u| udata::find_comment(u, udata::CHAIN_COMMENT)),
            handle: t.opt_u64(c::NFTA_CHAIN_HANDLE)?,
        })
    }
}
