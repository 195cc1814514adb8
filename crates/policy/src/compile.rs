//! Model -> the plan for one node.
//!
//! Each isolated pod's allow set is the union of what the rules of its isolating
//! policies contribute: the rule's peers (pod addresses, ipBlocks minus excepts, or
//! every address) times its ports (numeric, whole protocols, or named ports resolved on
//! the destination: this pod for ingress, each destination pod for egress). Sets are
//! canonical and identified by a hash of their content, so replicas share a group.

pub(crate) mod cache;
pub(crate) mod canonical;
pub(crate) mod ranges;
pub(crate) mod rules;

use crate::model::Cluster;
use crate::plan::NodePlan;

impl Cluster {
    /// The plan for the pods whose `spec.nodeName` is `node`.
    pub fn compile_node(&self, node: &str) -> NodePlan {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.settle(self);
        let mut plan = NodePlan::default();
        for pod in self.pods_on_node(node) {
            if pod.host_network {
                continue;
            }
            let ips: Vec<_> = rules::owned_ips(self, pod).collect();
            if ips.is_empty() {
                continue;
            }
            let (ingress, egress_policies) = self.isolating_both(pod);
            for (egress, policies) in [(false, ingress), (true, egress_policies)] {
                if policies.is_empty() {
                    continue;
                }
                let (id, set) = cache.group(self, pod, egress, &policies);
                let map = if egress { &mut plan.egress } else { &mut plan.ingress };
                map.extend(ips.iter().map(|ip| (*ip, id)));
                plan.groups.entry(id).or_insert_with(|| (*set).clone());
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod agreement;
