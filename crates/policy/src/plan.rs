//! The per-node plan: what the enforcer (nftables) must make true on one node. Pure
//! data, compiled from the model by [`crate::compile`], rendered by the enforcer.
//!
//! Only the node's own pods appear: each node judges the egress of the pods it hosts
//! (by source address) and the ingress of the pods it hosts (by destination address).
//! A pod address absent from a direction's map is not isolated in that direction.
//! Pods whose allowed tuples are identical share one [`AllowSet`] (a group), so
//! replicas cost one chain and one set, not one each.

use crate::model::Protocol;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A group's id: a hash of its [`AllowSet`]'s content, so the same content has the same
/// id across restarts and the enforcer can diff by id. Printed as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(pub u64);

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// An inclusive address range of one family (`first <= last`, both v4 or both v6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IpRange {
    pub first: IpAddr,
    pub last: IpAddr,
}

/// Traffic to or from `peer` with this protocol and a port in `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortAllow {
    pub peer: IpRange,
    pub protocol: Protocol,
    pub first: u16,
    pub last: u16,
}

/// What an isolated pod may exchange in one direction. For egress the peer is the
/// destination and the port the destination port; for ingress the peer is the source
/// and the port the pod's own (destination) port. Canonical: sorted, ranges merged,
/// no duplicates, so equal content compares (and hashes) equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AllowSet {
    /// Peers allowed on every protocol and port (a rule without `ports`).
    pub any: Vec<IpRange>,
    /// Peers allowed on one protocol and port range.
    pub ports: Vec<PortAllow>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    /// Local pod address -> its ingress group (only ingress-isolated pods).
    pub ingress: BTreeMap<IpAddr, GroupId>,
    /// Local pod address -> its egress group (only egress-isolated pods).
    pub egress: BTreeMap<IpAddr, GroupId>,
    /// Every group the two maps name, and no other.
    pub groups: BTreeMap<GroupId, AllowSet>,
}

/// The NFLOG group the enforcer logs policy decisions to, in each node's netns, and
/// the flow recorder listens on.
pub const FLOW_LOG_GROUP: u16 = 0x5746;

/// What a logged packet's prefix says: where it was judged and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlowMark {
    EgressAllowed,
    EgressDenied,
    IngressAllowed,
    IngressDenied,
}

impl FlowMark {
    pub const ALL: [FlowMark; 4] = [FlowMark::EgressAllowed, FlowMark::EgressDenied, FlowMark::IngressAllowed, FlowMark::IngressDenied];

    /// The nftables `log prefix` for this decision.
    pub fn prefix(self) -> &'static str {
        match self {
            FlowMark::EgressAllowed => "weft-policy egress allowed",
            FlowMark::EgressDenied => "weft-policy egress denied",
            FlowMark::IngressAllowed => "weft-policy ingress allowed",
            FlowMark::IngressDenied => "weft-policy ingress denied",
        }
    }

    pub fn from_prefix(p: &str) -> Option<FlowMark> {
        FlowMark::ALL.into_iter().find(|m| m.prefix() == p.trim_end_matches('\0'))
    }

    pub fn allowed(self) -> bool {
        matches!(self, FlowMark::EgressAllowed | FlowMark::IngressAllowed)
    }

    pub fn egress(self) -> bool {
        matches!(self, FlowMark::EgressAllowed | FlowMark::EgressDenied)
    }
}
