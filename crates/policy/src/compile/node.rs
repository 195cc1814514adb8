//! One node's plan kept between compiles, so that a change recompiles only the local
//! pods it can affect: the pods that changed, the pods of a namespace whose policies
//! changed, and the pods isolated by a policy whose addresses changed. Everything else
//! keeps its previous groups.

use super::cache::CompileCache;
use super::rules::owned_ips;
use crate::model::{Cluster, NsPolicies, PodInfo, PodKey};
use crate::plan::{GroupId, NodePlan};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

/// What happened since the node's plan was last compiled.
#[derive(Debug, Default)]
pub struct Dirty {
    pub pods: HashSet<PodKey>,
    pub namespaces: HashSet<String>,
    /// Policy versions replaced, deleted or whose addresses changed.
    pub uids: HashSet<u64>,
}

/// A local pod's part of the plan: its addresses and, per direction, the policies that
/// isolate it and its group.
#[derive(Debug)]
struct LocalPod {
    ips: Vec<IpAddr>,
    sides: [Option<(Vec<u64>, GroupId)>; 2],
}

#[derive(Debug, Default)]
pub struct NodeState {
    pods: HashMap<PodKey, LocalPod>,
    plan: NodePlan,
    /// How many (pod, direction) pairs use each group.
    users: HashMap<GroupId, usize>,
    pub dirty: Dirty,
}

impl NodeState {
    pub fn build(cluster: &Cluster, cache: &mut CompileCache, node: &str) -> NodeState {
        let mut state = NodeState::default();
        // Pods come in namespace order: look each namespace's policies up once.
        let mut last: Option<(&str, Option<&NsPolicies>)> = None;
        for pod in cluster.pods_on_node(node) {
            let policies = match last {
                Some((ns, p)) if ns == pod.key.namespace => p,
                _ => {
                    let p = cluster.namespace_policies(&pod.key.namespace);
                    last = Some((&pod.key.namespace, p));
                    p
                }
            };
            state.add(cluster, cache, pod, policies);
        }
        state
    }

    pub fn plan(&self) -> &NodePlan {
        &self.plan
    }

    /// Recompiles the pods the recorded changes may affect.
    pub fn update(&mut self, cluster: &Cluster, cache: &mut CompileCache, node: &str) {
        let dirty = std::mem::take(&mut self.dirty);
        let mut keys: BTreeSet<PodKey> = dirty.pods.into_iter().collect();
        for ns in &dirty.namespaces {
            keys.extend(cluster.pods_on_node_in(node, ns).map(|p| p.key.clone()));
        }
        if !dirty.uids.is_empty() {
            keys.extend(
                self.pods
                    .iter()
                    .filter(|(_, p)| p.sides.iter().flatten().any(|(uids, _)| uids.iter().any(|u| dirty.uids.contains(u))))
                    .map(|(k, _)| k.clone()),
            );
        }
        // Removals first: an address may pass from one recompiled pod to another.
        for key in &keys {
            self.remove(key);
        }
        for key in &keys {
            if let Some(pod) = cluster.pod(key).filter(|p| p.node.as_deref() == Some(node)) {
                self.add(cluster, cache, pod, cluster.namespace_policies(&pod.key.namespace));
            }
        }
    }

    fn add(&mut self, cluster: &Cluster, cache: &mut CompileCache, pod: &PodInfo, policies: Option<&NsPolicies>) {
        if pod.host_network {
            return;
        }
        let ips: Vec<IpAddr> = owned_ips(cluster, pod).collect();
        if ips.is_empty() {
            return;
        }
        let (ingress, egress) = Cluster::isolating_in(policies, pod);
        let mut sides = [None, None];
        for (i, policies) in [ingress, egress].into_iter().enumerate() {
            if policies.is_empty() {
                continue;
            }
            let egress = i == 1;
            let (id, set) = cache.group(cluster, pod, egress, &policies);
            let map = if egress { &mut self.plan.egress } else { &mut self.plan.ingress };
            map.extend(ips.iter().map(|ip| (*ip, id)));
            self.plan.groups.entry(id).or_insert_with(|| (*set).clone());
            *self.users.entry(id).or_default() += 1;
            sides[i] = Some((policies.iter().map(|p| p.uid).collect(), id));
        }
        self.pods.insert(pod.key.clone(), LocalPod { ips, sides });
    }

    fn remove(&mut self, key: &PodKey) {
        let Some(old) = self.pods.remove(key) else { return };
        for (i, side) in old.sides.iter().enumerate() {
            let Some((_, id)) = side else { continue };
            let map = if i == 1 { &mut self.plan.egress } else { &mut self.plan.ingress };
            for ip in &old.ips {
                map.remove(ip);
            }
            let users = self.users.entry(*id).or_default();
            *users -= 1;
            if *users == 0 {
                self.users.remove(id);
                self.plan.groups.remove(id);
            }
        }
    }
}
