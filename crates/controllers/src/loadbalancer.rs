//! LoadBalancer addresses for local mode (MetalLB's job): every `type: LoadBalancer`
//! Service of weft's class (no `loadBalancerClass`, or `weft.dev/local`) gets one address
//! per IP family from the configured pool in `status.loadBalancer.ingress`.
//! `spec.loadBalancerIP` is honoured when it is in the pool and free, otherwise the
//! service gets no address and a Warning event says why. Addresses in use are read
//! back from the Services themselves, so a restart changes nothing; a service that
//! stops being a LoadBalancer loses its address, which returns to the pool.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::informer::{route, Change, Key};
use crate::queue::Queue;
use crate::recorder::{Recorder, NORMAL, WARNING};
use crate::Ctx;

/// The class weft's allocator serves besides services without a class.
pub const CLASS: &str = "weft.dev/local";

/// What a service should have, given the pool and what others hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not ours (another class): leave it alone.
    NotOurs,
    /// These addresses (possibly none: not a LoadBalancer any more).
    Assign(Vec<IpAddr>),
    /// No address can be given; the message says why.
    Fail(String),
}

pub fn is_ours(svc: &Service) -> bool {
    let spec = svc.spec.as_ref();
    spec.and_then(|s| s.load_balancer_class.as_deref()).is_none_or(|c| c == CLASS)
}

pub fn is_load_balancer(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
}

/// The addresses a service holds now (its status).
pub fn current(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
        .collect()
}

/// Decides one service's addresses. `taken` holds every pool address that another
/// service holds. Pure.
pub fn decide(svc: &Service, pools: &[IpNet], taken: &BTreeSet<IpAddr>) -> Decision {
    if !is_ours(svc) {
        return Decision::NotOurs;
    }
    if !is_load_balancer(svc) {
        return Decision::Assign(vec![]);
    }
    let spec = svc.spec.as_ref().expect("a LoadBalancer has a spec");
    let families: Vec<bool> = match &spec.ip_families {
        Some(f) if !f.is_empty() => f.iter().map(|f| f == "IPv6").collect(),
        _ => vec![spec.cluster_ip.as_deref().is_some_and(|ip| ip.contains(':'))],
    };
    let have = current(svc);
    let mut out = Vec::new();
    if let Some(want) = spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty()) {
        let Ok(ip) = want.parse::<IpAddr>() else {
            return Decision::Fail(format!("spec.loadBalancerIP {want:?} is not an IP address"));
        };
        if !pools.iter().any(|p| usable(p, &ip)) {
            let list: Vec<String> = pools.iter().map(|p| p.to_string()).collect();
            return Decision::Fail(format!("spec.loadBalancerIP {ip} is outside weft's load-balancer pool ({}); choose an address in it or leave the field empty", list.join(", ")));
        }
        if taken.contains(&ip) {
            return Decision::Fail(format!("spec.loadBalancerIP {ip} is already used by another service"));
        }
        out.push(ip);
    }
    for v6 in families {
        if out.iter().any(|ip| ip.is_ipv6() == v6) {
            continue;
        }
        // Keep what the service holds when it is still valid.
        if let Some(ip) = have.iter().find(|ip| ip.is_ipv6() == v6 && pools.iter().any(|p| usable(p, ip)) && !taken.contains(ip)) {
            out.push(*ip);
            continue;
        }
        let Some(pool) = pools.iter().find(|p| p.addr().is_ipv6() == v6) else {
            if out.is_empty() {
                return Decision::Fail(format!("no load-balancer pool for {}; start weft with a pool of that family", if v6 { "IPv6" } else { "IPv4" }));
            }
            continue;
        };
        match pool.hosts().find(|ip| usable(pool, ip) && !taken.contains(ip)) {
            Some(ip) => out.push(ip),
            None => return Decision::Fail(format!("the load-balancer pool {pool} is exhausted")),
        }
    }
    Decision::Assign(out)
}

/// Pool addresses a service may have: in the pool, not its network or broadcast address.
fn usable(pool: &IpNet, ip: &IpAddr) -> bool {
    pool.contains(ip) && *ip != pool.network() && !(pool.addr().is_ipv4() && *ip == pool.broadcast())
}

pub(crate) async fn run(ctx: Arc<Ctx>, pools: Vec<IpNet>) -> anyhow::Result<()> {
    ctx.services.synced().await;
    let queue: Queue<Key> = Queue::new();
    let all = {
        let ctx = ctx.clone();
        move || ctx.services.all().iter().map(|s| Key::of(s.as_ref())).collect::<Vec<_>>()
    };
    for key in all() {
        queue.add(key);
    }
    let services = route(
        ctx.services.clone(),
        queue.clone(),
        |ch: &Change<Service>| match ch {
            Change::Applied { new, .. } => vec![Key::of(new.as_ref())],
            Change::Deleted(_) => vec![],
        },
        all,
    );
    // Writes not yet seen in the cache: service key → addresses it was given.
    let given: Arc<Mutex<BTreeMap<Key, Vec<IpAddr>>>> = Arc::default();
    let recorder = Recorder::new(ctx.client.clone(), "weft-lb-controller");
    let c = ctx.clone();
    let worker = queue.serve("loadbalancer", move |key| sync(c.clone(), pools.clone(), given.clone(), recorder.clone(), key));
    tokio::join!(services, worker);
    Ok(())
}

async fn sync(ctx: Arc<Ctx>, pools: Vec<IpNet>, given: Arc<Mutex<BTreeMap<Key, Vec<IpAddr>>>>, recorder: Recorder, key: Key) -> anyhow::Result<Option<Duration>> {
    let Some(svc) = ctx.services.get(&key.namespace, &key.name) else {
        given.lock().unwrap().remove(&key);
        return Ok(None);
    };
    let taken: BTreeSet<IpAddr> = {
        let given = given.lock().unwrap();
        let mut t: BTreeSet<IpAddr> = BTreeSet::new();
        for other in ctx.services.all() {
            let k = Key::of(other.as_ref());
            if k == key || !is_load_balancer(&other) {
                continue;
            }
            t.extend(given.get(&k).cloned().unwrap_or_else(|| current(&other)));
        }
        t
    };
    let have = current(&svc);
    let want = match decide(&svc, &pools, &taken) {
        Decision::NotOurs => return Ok(None),
        Decision::Fail(msg) => {
            recorder.publish(svc.as_ref(), WARNING, "AllocationFailed", msg);
            if have.is_empty() {
                return Ok(Some(Duration::from_secs(30)));
            }
            vec![]
        }
        Decision::Assign(ips) => ips,
    };
    if want == have {
        return Ok(None);
    }
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let ingress: Vec<serde_json::Value> = want.iter().map(|ip| json!({"ip": ip.to_string(), "ipMode": "VIP"})).collect();
    let patch = json!({"status": {"loadBalancer": if ingress.is_empty() { json!({}) } else { json!({"ingress": ingress}) }}});
    api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    given.lock().unwrap().insert(key, want.clone());
    if !want.is_empty() {
        let list: Vec<String> = want.iter().map(IpAddr::to_string).collect();
        recorder.publish(svc.as_ref(), NORMAL, "IPAllocated", format!("Assigned IP [{}]", list.join(", ")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: serde_json::Value, status: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"namespace": "ns", "name": "s"}, "spec": spec, "status": status})).unwrap()
    }

    fn pools() -> Vec<IpNet> {
        vec!["10.99.1.0/30".parse().unwrap(), "fd00:99:1::/126".parse().unwrap()]
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_free_address_of_the_family_is_given() {
        let s = svc(json!({"type": "LoadBalancer", "clusterIP": "10.96.0.5"}), json!({}));
        assert_eq!(decide(&s, &pools(), &BTreeSet::new()), Decision::Assign(vec![ip("10.99.1.1")]));
        assert_eq!(decide(&s, &pools(), &[ip("10.99.1.1")].into()), Decision::Assign(vec![ip("10.99.1.2")]));
        assert!(matches!(decide(&s, &pools(), &[ip("10.99.1.1"), ip("10.99.1.2")].into()), Decision::Fail(m) if m.contains("exhausted")));
    }

    #[test]
    fn dual_stack_services_get_one_address_per_family() {
        let s = svc(json!({"type": "LoadBalancer", "ipFamilies": ["IPv4", "IPv6"]}), json!({}));
        assert_eq!(decide(&s, &pools(), &BTreeSet::new()), Decision::Assign(vec![ip("10.99.1.1"), ip("fd00:99:1::1")]));
    }

    #[test]
    fn a_held_address_is_kept() {
        let s = svc(json!({"type": "LoadBalancer"}), json!({"loadBalancer": {"ingress": [{"ip": "10.99.1.2"}]}}));
        assert_eq!(decide(&s, &pools(), &BTreeSet::new()), Decision::Assign(vec![ip("10.99.1.2")]));
    }

    #[test]
    fn load_balancer_ip_is_honoured_or_refused_with_the_reason() {
        let s = svc(json!({"type": "LoadBalancer", "loadBalancerIP": "10.99.1.2"}), json!({}));
        assert_eq!(decide(&s, &pools(), &BTreeSet::new()), Decision::Assign(vec![ip("10.99.1.2")]));
        assert!(matches!(decide(&s, &pools(), &[ip("10.99.1.2")].into()), Decision::Fail(m) if m.contains("already used")));
        let s = svc(json!({"type": "LoadBalancer", "loadBalancerIP": "192.0.2.9"}), json!({}));
        assert!(matches!(decide(&s, &pools(), &BTreeSet::new()), Decision::Fail(m) if m.contains("outside")));
    }

    #[test]
    fn other_classes_are_left_alone_and_other_types_lose_their_address() {
        let s = svc(json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/other"}), json!({}));
        assert_eq!(decide(&s, &pools(), &BTreeSet::new()), Decision::NotOurs);
        let s = svc(json!({"type": "LoadBalancer", "loadBalancerClass": CLASS}), json!({}));
        assert_eq!(decide(&s, &pools(), &BTreeSet::new()), Decision::Assign(vec![ip("10.99.1.1")]));
        let s = svc(json!({"type": "ClusterIP"}), json!({"loadBalancer": {"ingress": [{"ip": "10.99.1.2"}]}}));
        assert_eq!(decide(&s, &pools(), &BTreeSet::new()), Decision::Assign(vec![]));
    }
}
