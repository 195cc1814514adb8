//! Node IPAM (the range allocator): each Node gets one pod range per cluster
//! range (a /24 of 10.244.0.0/16, a /64 of fd00:10:244::/56), never one already
//! in use. Used ranges are rebuilt from the Nodes themselves, so a restart loses
//! nothing; a deleted Node's ranges are reused last (allocation rotates).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};

use crate::informer::{route, Change, Key};
use crate::queue::Queue;
use crate::recorder::{Recorder, NORMAL};
use crate::{Ctx, ControllersConfig};

/// Subnets of one size carved from one cluster range.
#[derive(Debug, Clone)]
pub struct CidrSet {
    cluster: IpNet,
    prefix: u8,
    size: u128,
    used: BTreeSet<u128>,
    next: u128,
}

impl CidrSet {
    pub fn new(cluster: IpNet, prefix: u8) -> anyhow::Result<Self> {
        let cluster = cluster.trunc();
        anyhow::ensure!(prefix >= cluster.prefix_len() && prefix <= cluster.max_prefix_len(), "node mask /{prefix} does not fit in {cluster}");
        // Beyond 2^32 subnets the count is capped; no cluster has that many nodes.
        let bits = u32::from(prefix - cluster.prefix_len()).min(32);
        Ok(CidrSet { cluster, prefix, size: 1u128 << bits, used: BTreeSet::new(), next: 0 })
    }

    fn index_of(&self, net: &IpNet) -> Option<u128> {
        if net.prefix_len() != self.prefix || !self.cluster.contains(&net.network()) {
            return None;
        }
        let host_bits = u32::from(self.cluster.max_prefix_len() - self.prefix);
        let idx = (to_u128(net.network()) - to_u128(self.cluster.network())) >> host_bits;
        (idx < self.size).then_some(idx)
    }

    fn subnet(&self, idx: u128) -> IpNet {
        let host_bits = u32::from(self.cluster.max_prefix_len() - self.prefix);
        let addr = to_u128(self.cluster.network()) + (idx << host_bits);
        let ip = match self.cluster {
            IpNet::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(addr as u32)),
            IpNet::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(addr)),
        };
        IpNet::new(ip, self.prefix).expect("prefix checked")
    }

    /// Marks a range as used; false if it is not one of ours.
    pub fn occupy(&mut self, net: &IpNet) -> bool {
        match self.index_of(net) {
            Some(i) => {
                self.used.insert(i);
                true
            }
            None => false,
        }
    }

    pub fn release(&mut self, net: &IpNet) {
        if let Some(i) = self.index_of(net) {
            self.used.remove(&i);
        }
    }

    /// The next free range after the last one handed out.
    pub fn allocate(&mut self) -> Option<IpNet> {
        for k in 0..self.size {
            let i = (self.next + k) % self.size;
            if !self.used.contains(&i) {
                self.used.insert(i);
                self.next = (i + 1) % self.size;
                return Some(self.subnet(i));
            }
        }
        None
    }

    pub fn family_matches(&self, net: &IpNet) -> bool {
        matches!((self.cluster, net), (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_)))
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub fn node_cidrs(node: &Node) -> Vec<IpNet> {
    let spec = node.spec.as_ref();
    let mut out: Vec<IpNet> = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default().iter().filter_map(|c| c.parse().ok()).collect();
    if out.is_empty() {
        out.extend(spec.and_then(|s| s.pod_cidr.as_deref()).and_then(|c| c.parse::<IpNet>().ok()));
    }
    out
}

/// The allocator over all cluster ranges, in the configured order.
pub struct Allocator {
    sets: Vec<CidrSet>,
}

impl Allocator {
    pub fn new(config: &ControllersConfig) -> anyhow::Result<Self> {
        let sets = config
            .pod_cidrs
            .iter()
            .map(|c| CidrSet::new(*c, if matches!(c, IpNet::V4(_)) { config.node_cidr_mask_v4 } else { config.node_cidr_mask_v6 }))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Allocator { sets })
    }

    pub fn occupy(&mut self, cidrs: &[IpNet]) {
        for c in cidrs {
            for s in &mut self.sets {
                if s.occupy(c) {
                    break;
                }
            }
        }
    }

    pub fn release(&mut self, cidrs: &[IpNet]) {
        for c in cidrs {
            for s in &mut self.sets {
                s.release(c);
            }
        }
    }

    /// One range per cluster range, or None (and nothing taken) if any is full.
    pub fn allocate(&mut self) -> Option<Vec<IpNet>> {
        let mut got = Vec::new();
        for i in 0..self.sets.len() {
            match self.sets[i].allocate() {
                Some(c) => got.push(c),
                None => {
                    self.release(&got);
                    return None;
                }
            }
        }
        Some(got)
    }
}

pub(crate) async fn run(ctx: Arc<Ctx>, config: ControllersConfig) -> anyhow::Result<()> {
    let allocator = Arc::new(Mutex::new(Allocator::new(&config)?));
    if config.pod_cidrs.is_empty() {
        return std::future::pending().await;
    }
    ctx.nodes.synced().await;
    // Every range already handed out is taken before anything new is given.
    {
        let mut a = allocator.lock().unwrap();
        for n in ctx.nodes.all() {
            a.occupy(&node_cidrs(&n));
        }
    }
    let queue: Queue<Key> = Queue::new();
    let all = {
        let ctx = ctx.clone();
        move || ctx.nodes.all().iter().filter(|n| node_cidrs(n).is_empty()).map(|n| Key::of(&**n)).collect::<Vec<_>>()
    };
    for key in all() {
        queue.add(key);
    }
    let a = allocator.clone();
    let nodes = route(
        ctx.nodes.clone(),
        queue.clone(),
        move |ch: &Change<Node>| match ch {
            Change::Deleted(n) => {
                a.lock().unwrap().release(&node_cidrs(n));
                vec![]
            }
            Change::Applied { new, .. } => {
                let cidrs = node_cidrs(new);
                if cidrs.is_empty() {
                    vec![Key::of(&**new)]
                } else {
                    a.lock().unwrap().occupy(&cidrs);
                    vec![]
                }
            }
        },
        all.clone(),
    );
    let recorder = Recorder::new(ctx.client.clone(), "node-ipam-controller");
    let c = ctx.clone();
    let worker = queue.serve("nodeipam", move |key| assign(c.clone(), allocator.clone(), recorder.clone(), key));
    tokio::join!(nodes, worker);
    Ok(())
}

async fn assign(ctx: Arc<Ctx>, allocator: Arc<Mutex<Allocator>>, recorder: Recorder, key: Key) -> anyhow::Result<Option<Duration>> {
    let Some(node) = ctx.nodes.get("", &key.name) else { return Ok(None) };
    if !node_cidrs(&node).is_empty() {
        return Ok(None);
    }
    let Some(cidrs) = allocator.lock().unwrap().allocate() else {
        recorder.publish(&*node, NORMAL, "CIDRNotAvailable", format!("Node {} status is now: CIDRNotAvailable", key.name));
        return Ok(Some(Duration::from_secs(30)));
    };
    let strs: Vec<String> = cidrs.iter().map(|c| c.to_string()).collect();
    let patch = serde_json::json!({"spec": {"podCIDR": strs[0], "podCIDRs": strs}});
    let api: Api<Node> = Api::all(ctx.client.clone());
    match api.patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(n) => {
            tracing::info!(node = %key.name, cidrs = ?strs, "assigned pod CIDRs");
            // Should the server have kept other ranges, those are the used ones.
            let mut a = allocator.lock().unwrap();
            let kept = node_cidrs(&n);
            if kept != cidrs {
                a.release(&cidrs);
                a.occupy(&kept);
            }
            Ok(None)
        }
        Err(e) => {
            allocator.lock().unwrap().release(&cidrs);
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;

    fn config(cidrs: &[&str]) -> ControllersConfig {
        ControllersConfig { pod_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(), node_cidr_mask_v4: 24, node_cidr_mask_v6: 64, load_balancer_pools: vec![] }
    }

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn dual_stack_nodes_get_one_range_per_family() {
        let mut a = Allocator::new(&config(&["10.244.0.0/16", "fd00:10:244::/56"])).unwrap();
        assert_eq!(a.allocate(), Some(nets(&["10.244.0.0/24", "fd00:10:244::/64"])));
        assert_eq!(a.allocate(), Some(nets(&["10.244.1.0/24", "fd00:10:244:1::/64"])));
    }

    #[test]
    fn ranges_in_use_after_a_restart_are_never_handed_out_again() {
        let mut a = Allocator::new(&config(&["10.244.0.0/16"])).unwrap();
        a.occupy(&nets(&["10.244.0.0/24", "10.244.2.0/24"]));
        assert_eq!(a.allocate(), Some(nets(&["10.244.1.0/24"])));
        assert_eq!(a.allocate(), Some(nets(&["10.244.3.0/24"])));
    }

    #[test]
    fn a_released_range_is_reused_only_after_the_others() {
        let mut a = Allocator::new(&config(&["10.244.0.0/22"])).unwrap();
        let first = a.allocate().unwrap();
        a.allocate().unwrap();
        a.release(&first);
        assert_eq!(a.allocate(), Some(nets(&["10.244.2.0/24"])));
        assert_eq!(a.allocate(), Some(nets(&["10.244.3.0/24"])));
        assert_eq!(a.allocate(), Some(first), "wraps around to the freed range");
        assert_eq!(a.allocate(), None, "a /22 holds four /24s");
    }

    #[test]
    fn exhausting_one_family_takes_nothing_from_the_other() {
        let mut a = Allocator::new(&config(&["10.244.0.0/24", "fd00::/63"])).unwrap();
        assert!(a.allocate().is_some());
        assert_eq!(a.allocate(), None);
        // The IPv6 range freed by the failed attempt is still there.
        a.sets[0].release(&nets(&["10.244.0.0/24"])[0]);
        assert_eq!(a.allocate(), Some(nets(&["10.244.0.0/24", "fd00:0:0:1::/64"])));
    }

    #[test]
    fn foreign_ranges_and_bad_masks_are_rejected() {
        let mut s = CidrSet::new("10.244.0.0/16".parse().unwrap(), 24).unwrap();
        assert!(!s.occupy(&"10.0.0.0/24".parse().unwrap()));
        assert!(!s.occupy(&"10.244.0.0/25".parse().unwrap()));
        assert!(CidrSet::new("10.244.0.0/16".parse().unwrap(), 8).is_err());
    }

    #[test]
    fn a_node_reads_its_ranges_from_pod_cidrs_or_pod_cidr() {
        let mut n = Node { spec: Some(NodeSpec { pod_cidr: Some("10.244.5.0/24".into()), ..Default::default() }), ..Default::default() };
        assert_eq!(node_cidrs(&n), nets(&["10.244.5.0/24"]));
        n.spec.as_mut().unwrap().pod_cidrs = Some(vec!["10.244.5.0/24".into(), "fd00::/64".into()]);
        assert_eq!(node_cidrs(&n).len(), 2);
    }
}
