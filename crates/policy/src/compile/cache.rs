//! What compiling keeps between calls: each policy's rules as addresses, and each
//! group's canonical allow set. Changes to the model are recorded as they happen and
//! settled at the next compile: a policy change drops that policy; a pod or namespace
//! change drops only the policies whose peers it could alter. Many changes at once
//! (a resync, the initial load) simply drop everything.

use super::canonical::{canonicalize, group_id};
use super::rules::{CompiledPolicy, PeerMemo};
use crate::model::policy::{Peer, Policy, Rule};
use crate::model::{Cluster, Labels, PodInfo, NAMESPACE_NAME_LABEL};
use crate::plan::{AllowSet, GroupId};
use crate::model::fxhash::FxHashMap;
use std::sync::Arc;

/// Past this many pending changes, settling is a full reset.
const MAX_PENDING: usize = 256;

/// Pods with the same isolating policies (by [`Policy::uid`]) and, for ingress, the
/// same numbers for the named ports those policies use, have the same allow set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GroupKey {
    egress: bool,
    policies: Vec<u64>,
    named: Vec<Option<u16>>,
}

#[derive(Debug)]
enum Change {
    Pod(Option<PodInfo>, Option<PodInfo>),
    Namespace(String, Option<Labels>, Option<Labels>),
}

#[derive(Debug, Default)]
pub struct CompileCache {
    policies: FxHashMap<u64, (Arc<Policy>, Arc<CompiledPolicy>)>,
    groups: FxHashMap<GroupKey, (GroupId, Arc<AllowSet>)>,
    /// Valid until the next pod or namespace change.
    peers: PeerMemo,
    pending: Vec<Change>,
}

impl CompileCache {
    fn is_empty(&self) -> bool {
        self.policies.is_empty() && self.groups.is_empty() && self.peers.is_empty()
    }

    fn record(&mut self, change: Change) {
        if self.is_empty() {
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            *self = CompileCache::default();
            return;
        }
        self.pending.push(change);
    }

    pub fn pod_changed(&mut self, old: Option<PodInfo>, new: Option<PodInfo>) {
        self.record(Change::Pod(old, new));
    }

    pub fn namespace_changed(&mut self, name: &str, old: Option<Labels>, new: Option<Labels>) {
        self.record(Change::Namespace(name.to_string(), old, new));
    }

    /// The policy version `uid` was replaced or deleted.
    pub fn policy_changed(&mut self, uid: u64) {
        if self.policies.remove(&uid).is_some() {
            self.groups.retain(|g, _| !g.policies.contains(&uid));
        }
    }

    /// Applies the recorded changes: drops what they may have made stale.
    pub fn settle(&mut self, cluster: &Cluster) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        self.peers.clear();
        let stale: Vec<u64> =
            self.policies.iter().filter(|(_, (p, _))| pending.iter().any(|c| affects(cluster, p, c))).map(|(uid, _)| *uid).collect();
        for uid in stale {
            self.policy_changed(uid);
        }
    }

    pub fn compiled(&mut self, cluster: &Cluster, policy: &Arc<Policy>) -> Arc<CompiledPolicy> {
        let memo = &mut self.peers;
        let entry = self.policies.entry(policy.uid).or_insert_with(|| (policy.clone(), Arc::new(CompiledPolicy::new(cluster, policy, memo))));
        entry.1.clone()
    }

    /// The group of a pod isolated in this direction by `policies`.
    pub fn group(&mut self, cluster: &Cluster, pod: &PodInfo, egress: bool, policies: &[&Arc<Policy>]) -> (GroupId, Arc<AllowSet>) {
        let compiled: Vec<Arc<CompiledPolicy>> = policies.iter().map(|p| self.compiled(cluster, p)).collect();
        let named = if egress {
            Vec::new()
        } else {
            compiled.iter().flat_map(|c| c.ingress_named()).map(|(name, protocol)| pod.resolve_port(name, *protocol)).collect()
        };
        let key = GroupKey { egress, policies: policies.iter().map(|p| p.uid).collect(), named };
        if let Some(g) = self.groups.get(&key) {
            return g.clone();
        }
        let (mut any, mut ports) = (Vec::new(), Vec::new());
        for c in &compiled {
            for rule in c.rules(egress) {
                rule.contribute(egress, pod, &mut any, &mut ports);
            }
        }
        let set = canonicalize(any, ports);
        let g = (group_id(&set), Arc::new(set));
        self.groups.insert(key, g.clone());
        g
    }
}

/// Whether a change could alter what this policy's rules compile to.
fn affects(cluster: &Cluster, policy: &Policy, change: &Change) -> bool {
    let rules = policy.ingress.iter().flatten().map(|r| (r, false)).chain(policy.egress.iter().flatten().map(|r| (r, true)));
    match change {
        Change::Pod(old, new) => {
            let pods: Vec<&PodInfo> = old.iter().chain(new.iter()).filter(|p| !p.host_network).collect();
            rules.into_iter().any(|(rule, egress)| pods.iter().any(|pod| rule_sees_pod(cluster, &policy.namespace, rule, egress, pod)))
        }
        Change::Namespace(name, old, new) => {
            let default = Labels::from([(NAMESPACE_NAME_LABEL.to_string(), name.clone())]);
            let labels = [old.as_ref().unwrap_or(&default), new.as_ref().unwrap_or(&default)];
            rules.into_iter().flat_map(|(r, _)| &r.peers).any(|peer| match peer {
                Peer::Pods { namespaces: Some(sel), .. } => labels.iter().any(|l| sel.matches(l)),
                _ => false,
            })
        }
    }
}

fn rule_sees_pod(cluster: &Cluster, policy_ns: &str, rule: &Rule, egress: bool, pod: &PodInfo) -> bool {
    let named_egress = egress && rule.ports.iter().any(|p| matches!(p.port, crate::model::policy::PortMatch::Named(_)));
    if named_egress && rule.peers.is_empty() {
        return true;
    }
    rule.peers.iter().any(|peer| match peer {
        Peer::Pods { namespaces, pods } => cluster.peer_selects(policy_ns, namespaces.as_ref(), pods, pod),
        Peer::IpBlock { cidr, except } => named_egress && pod.ips.iter().any(|ip| Peer::ip_block_contains(cidr, except, *ip)),
    })
}
