//! Model -> the plan for one node.
//!
//! INTERFACE SKELETON (see model.rs).

use crate::model::Cluster;
use crate::plan::NodePlan;

impl Cluster {
    /// The plan for the pods whose `spec.nodeName` is `node`.
    pub fn compile_node(&self, _node: &str) -> NodePlan {
        todo!("model implementation")
    }
}
