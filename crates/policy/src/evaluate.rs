//! The verdict for one connection, computed from the model, with what decides it.
//! This is the reference the enforcer must agree with on every cell.
//!
//! INTERFACE SKELETON (see model.rs).

use crate::model::{Cluster, PodKey, Protocol};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One connection attempt: from `src` to `dst` (the destination after Service DNAT:
/// a pod address, or any other address) on `protocol`/`port` (the pod's port).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: Protocol,
    pub port: u16,
}

/// A rule of a policy: `ingress[index]` or `egress[index]` of `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleRef {
    pub namespace: String,
    pub policy: String,
    pub egress: bool,
    pub index: usize,
}

/// How one side (the source's egress, or the destination's ingress) judges it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Not a pod that policy applies to (an outside address, a hostNetwork pod).
    NotAPod,
    /// A pod that no policy isolates in this direction.
    NotIsolated,
    /// Allowed by these rules (all that match, in namespace/name/index order).
    Allowed { by: Vec<RuleRef> },
    /// Isolated by these policies, and no rule of theirs matches.
    Denied { isolated_by: Vec<(String, String)> },
}

impl Side {
    pub fn allows(&self) -> bool {
        !matches!(self, Side::Denied { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub src_pod: Option<PodKey>,
    pub dst_pod: Option<PodKey>,
    pub egress: Side,
    pub ingress: Side,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.egress.allows() && self.ingress.allows()
    }
}

impl Cluster {
    pub fn evaluate(&self, _q: &Query) -> Verdict {
        todo!("model implementation")
    }
}
