//! Model -> the plan for one node.
//!
//! Each isolated pod's allow set is the union of what the rules of its isolating
//! policies contribute: the rule's peers (pod addresses, ipBlocks minus excepts, or
//! every address) times its ports (numeric, whole protocols, or named ports resolved on
//! the destination: this pod for ingress, each destination pod for egress). Sets are
//! canonical and identified by a hash of their content, so replicas share a group.

pub(crate) mod cache;
pub(crate) mod canonical;
mod node;
pub(crate) mod ranges;
pub(crate) mod rules;

use crate::model::Cluster;
use crate::plan::NodePlan;

impl Cluster {
    /// The plan for the pods whose `spec.nodeName` is `node`. Incremental: what the
    /// changes since the last call cannot affect is reused.
    pub fn compile_node(&self, node: &str) -> NodePlan {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).node_plan(self, node)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod agreement;
