//! The zone model: what the cluster's API objects say about names, kept in hash maps
//! keyed by name (and by address for reverse lookups) so every lookup is O(1), and
//! updated incrementally, one watch event at a time. Pure: no I/O.
//!
//! Only what answers need is kept (addresses, ports, hostnames), never whole objects,
//! so 10,000 services with 100,000 endpoints stay well under 100 MiB.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// A service port, or an EndpointSlice port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The port's name, lowercase; may be empty.
    pub name: Box<str>,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: Box<str>,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// ClusterIP, NodePort or LoadBalancer: answered with its cluster IPs.
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: answered with its ready endpoints.
    Headless,
    /// `type: ExternalName`: a CNAME to this name (fully qualified, lowercase).
    External(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub kind: Kind,
    pub ports: Vec<Port>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    /// The endpoint's `hostname` (a pod's `hostname` when its `subdomain` is the service).
    pub hostname: Option<Box<str>>,
    pub ready: bool,
}

impl Endpoint {
    /// The endpoint's label under its service: its hostname, or its address dashed.
    pub fn label(&self) -> String {
        match &self.hostname {
            Some(h) => h.to_string(),
            None => crate::names::dashed(self.ip),
        }
    }
}

/// One EndpointSlice's worth of endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Slice {
    pub ports: Vec<Port>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Default)]
pub struct Namespace {
    /// The Namespace object exists.
    pub object: bool,
    pub services: HashMap<Box<str>, Service>,
    /// Slices by service name, then slice name (slices may arrive before their service).
    pub slices: HashMap<Box<str>, HashMap<Box<str>, Slice>>,
}

impl Namespace {
    fn is_empty(&self) -> bool {
        !self.object && self.services.is_empty() && self.slices.is_empty()
    }
}

/// What a reverse (PTR) lookup of an address finds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PtrTarget {
    pub namespace: Box<str>,
    pub service: Box<str>,
    /// `None` for a service's cluster IP; the endpoint's label otherwise.
    pub endpoint: Option<Box<str>>,
}

/// Which kinds have finished their first full list.
#[derive(Debug, Default, Clone, Copy)]
pub struct Synced {
    pub services: bool,
    pub slices: bool,
    pub namespaces: bool,
    pub pods: bool,
}

/// A reverse entry and how many sources give it: the same endpoint may sit in several
/// slices of its service at once (the EndpointSlice API allows it, e.g. while an
/// endpoint moves between slices), and the PTR must stay until the last one goes.
#[derive(Debug)]
struct Ptr {
    target: PtrTarget,
    sources: u32,
}

#[derive(Debug, Default)]
pub struct Zone {
    namespaces: HashMap<Box<str>, Namespace>,
    reverse: HashMap<IpAddr, Vec<Ptr>>,
    /// Pod addresses, each with the namespaces of the pods that have it.
    pod_ips: HashMap<IpAddr, Vec<Box<str>>>,
    /// Each pod's addresses, to undo them on update or delete.
    pods: HashMap<(Box<str>, Box<str>), Vec<IpAddr>>,
    pub synced: Synced,
    /// Bumped on every change; the SOA serial.
    pub serial: u32,
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    /// Ready to answer: every kind has been listed once.
    pub fn ready(&self) -> bool {
        let s = self.synced;
        s.services && s.slices && s.namespaces && s.pods
    }

    fn touch(&mut self) {
        self.serial = self.serial.wrapping_add(1);
    }

    pub fn namespace(&self, ns: &str) -> Option<&Namespace> {
        self.namespaces.get(ns)
    }

    /// A namespace exists for DNS when its object does or it holds services.
    pub fn namespace_exists(&self, ns: &str) -> bool {
        self.namespaces.get(ns).is_some_and(|n| n.object || !n.services.is_empty())
    }

    pub fn service(&self, ns: &str, name: &str) -> Option<&Service> {
        self.namespaces.get(ns)?.services.get(name)
    }

    /// Every endpoint of a service, over all its slices (ready or not).
    pub fn slices(&self, ns: &str, name: &str) -> impl Iterator<Item = &Slice> {
        self.namespaces.get(ns).and_then(|n| n.slices.get(name)).into_iter().flat_map(|m| m.values())
    }

    /// Ready endpoints, each address once (the first slice that lists it wins).
    pub fn ready_endpoints(&self, ns: &str, name: &str) -> Vec<&Endpoint> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for s in self.slices(ns, name) {
            for e in &s.endpoints {
                if e.ready && seen.insert(e.ip) {
                    out.push(e);
                }
            }
        }
        out
    }

    /// What the address names, each target once.
    pub fn ptr(&self, ip: &IpAddr) -> Option<impl Iterator<Item = &PtrTarget>> {
        self.reverse.get(ip).filter(|v| !v.is_empty()).map(|v| v.iter().map(|p| &p.target))
    }

    /// Namespaces that hold a pod with this address.
    pub fn pod_namespaces(&self, ip: &IpAddr) -> &[Box<str>] {
        self.pod_ips.get(ip).map(|v| v.as_slice()).unwrap_or(&[])
    }

    fn ns_mut(&mut self, ns: &str) -> &mut Namespace {
        self.namespaces.entry(ns.into()).or_default()
    }

    fn drop_if_empty(&mut self, ns: &str) {
        if self.namespaces.get(ns).is_some_and(Namespace::is_empty) {
            self.namespaces.remove(ns);
        }
    }

    fn add_ptr(&mut self, ip: IpAddr, target: PtrTarget) {
        let v = self.reverse.entry(ip).or_default();
        match v.iter_mut().find(|p| p.target == target) {
            Some(p) => p.sources += 1,
            None => v.push(Ptr { target, sources: 1 }),
        }
    }

    fn remove_ptr(&mut self, ip: &IpAddr, t: &PtrTarget) {
        let Some(v) = self.reverse.get_mut(ip) else { return };
        if let Some(i) = v.iter().position(|p| &p.target == t) {
            v[i].sources -= 1;
            if v[i].sources == 0 {
                v.swap_remove(i);
            }
        }
        if v.is_empty() {
            self.reverse.remove(ip);
        }
    }

    pub fn set_namespace(&mut self, ns: &str, exists: bool) {
        self.ns_mut(ns).object = exists;
        self.drop_if_empty(ns);
        self.touch();
    }

    pub fn upsert_service(&mut self, ns: &str, name: &str, svc: Service) {
        self.remove_service(ns, name);
        if let Kind::ClusterIp(ips) = &svc.kind {
            for ip in ips {
                self.add_ptr(*ip, PtrTarget { namespace: ns.into(), service: name.into(), endpoint: None });
            }
        }
        self.ns_mut(ns).services.insert(name.into(), svc);
        self.touch();
    }

    pub fn remove_service(&mut self, ns: &str, name: &str) {
        let Some(old) = self.namespaces.get_mut(ns).and_then(|n| n.services.remove(name)) else { return };
        if let Kind::ClusterIp(ips) = &old.kind {
            let t = PtrTarget { namespace: ns.into(), service: name.into(), endpoint: None };
            for ip in ips {
                self.remove_ptr(ip, &t);
            }
        }
        self.drop_if_empty(ns);
        self.touch();
    }

    fn slice_ptrs(ns: &str, service: &str, s: &Slice) -> impl Iterator<Item = (IpAddr, PtrTarget)> {
        let (ns, service): (Box<str>, Box<str>) = (ns.into(), service.into());
        s.endpoints
            .iter()
            .filter(|e| e.ready)
            .map(move |e| (e.ip, PtrTarget { namespace: ns.clone(), service: service.clone(), endpoint: Some(e.label().into()) }))
            .collect::<Vec<_>>()
            .into_iter()
    }

    pub fn upsert_slice(&mut self, ns: &str, service: &str, slice: &str, s: Slice) {
        self.remove_slice(ns, service, slice);
        for (ip, t) in Self::slice_ptrs(ns, service, &s) {
            self.add_ptr(ip, t);
        }
        self.ns_mut(ns).slices.entry(service.into()).or_default().insert(slice.into(), s);
        self.touch();
    }

    pub fn remove_slice(&mut self, ns: &str, service: &str, slice: &str) {
        let Some(n) = self.namespaces.get_mut(ns) else { return };
        let Some(m) = n.slices.get_mut(service) else { return };
        let Some(old) = m.remove(slice) else { return };
        if m.is_empty() {
            n.slices.remove(service);
        }
        for (ip, t) in Self::slice_ptrs(ns, service, &old) {
            self.remove_ptr(&ip, &t);
        }
        self.drop_if_empty(ns);
        self.touch();
    }

    pub fn upsert_pod(&mut self, ns: &str, name: &str, ips: Vec<IpAddr>) {
        self.remove_pod(ns, name);
        for ip in &ips {
            let v = self.pod_ips.entry(*ip).or_default();
            v.push(ns.into());
        }
        self.pods.insert((ns.into(), name.into()), ips);
        self.touch();
    }

    pub fn remove_pod(&mut self, ns: &str, name: &str) {
        let Some(ips) = self.pods.remove(&(Box::from(ns), Box::from(name))) else { return };
        for ip in ips {
            if let Some(v) = self.pod_ips.get_mut(&ip) {
                if let Some(i) = v.iter().position(|n| &**n == ns) {
                    v.swap_remove(i);
                }
                if v.is_empty() {
                    self.pod_ips.remove(&ip);
                }
            }
        }
        self.touch();
    }

    /// Keys of what is stored, per kind, for a re-list to drop what vanished.
    pub fn service_keys(&self) -> Vec<(String, String)> {
        self.namespaces.iter().flat_map(|(ns, n)| n.services.keys().map(move |s| (ns.to_string(), s.to_string()))).collect()
    }

    pub fn slice_keys(&self) -> Vec<(String, String, String)> {
        self.namespaces
            .iter()
            .flat_map(|(ns, n)| n.slices.iter().flat_map(move |(svc, m)| m.keys().map(move |s| (ns.to_string(), svc.to_string(), s.to_string()))))
            .collect()
    }

    pub fn namespace_keys(&self) -> Vec<String> {
        self.namespaces.iter().filter(|(_, n)| n.object).map(|(k, _)| k.to_string()).collect()
    }

    pub fn pod_keys(&self) -> Vec<(String, String)> {
        self.pods.keys().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    /// Counts for logs and tests: (services, endpoints, reverse entries).
    pub fn counts(&self) -> (usize, usize, usize) {
        let services = self.namespaces.values().map(|n| n.services.len()).sum();
        let endpoints = self.namespaces.values().flat_map(|n| n.slices.values()).flat_map(|m| m.values()).map(|s| s.endpoints.len()).sum();
        (services, endpoints, self.reverse.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ip: &str, host: Option<&str>, ready: bool) -> Endpoint {
        Endpoint { ip: ip.parse().unwrap(), hostname: host.map(Into::into), ready }
    }

    #[test]
    fn reverse_entries_follow_service_and_slice_updates() {
        let mut z = Zone::new();
        let svc = Service { kind: Kind::ClusterIp(vec!["10.0.0.1".parse().unwrap()]), ports: vec![] };
        z.upsert_service("ns", "a", svc);
        assert_eq!(z.ptr(&"10.0.0.1".parse().unwrap()).unwrap().count(), 1);
        z.upsert_service("ns", "a", Service { kind: Kind::ClusterIp(vec!["10.0.0.2".parse().unwrap()]), ports: vec![] });
        assert!(z.ptr(&"10.0.0.1".parse().unwrap()).is_none(), "the old cluster IP is gone");
        z.upsert_slice("ns", "a", "a-1", Slice { ports: vec![], endpoints: vec![ep("172.0.0.1", Some("web"), true), ep("172.0.0.2", None, false)] });
        assert_eq!(z.ptr(&"172.0.0.1".parse().unwrap()).unwrap().next().unwrap().endpoint.as_deref(), Some("web"));
        assert!(z.ptr(&"172.0.0.2".parse().unwrap()).is_none(), "not-ready endpoints have no PTR");
        z.remove_slice("ns", "a", "a-1");
        assert!(z.ptr(&"172.0.0.1".parse().unwrap()).is_none());
        z.remove_service("ns", "a");
        assert!(z.namespace("ns").is_none(), "an empty namespace entry is dropped");
        assert_eq!(z.counts(), (0, 0, 0));
    }

    #[test]
    fn an_endpoint_in_two_slices_keeps_its_ptr_until_both_are_gone() {
        // The EndpointSlice API lets an endpoint sit in two slices of its service at once
        // (it moves from one to another, or a slice is replaced by a new one); removing
        // the old slice must not drop the address's PTR while the A record stays.
        let mut z = Zone::new();
        let ip: IpAddr = "172.0.0.1".parse().unwrap();
        let db = || Slice { ports: vec![], endpoints: vec![ep("172.0.0.1", Some("db"), true)] };
        z.upsert_slice("ns", "backend", "backend-old", db());
        z.upsert_slice("ns", "backend", "backend-new", db());
        assert_eq!(z.ptr(&ip).unwrap().count(), 1, "one PTR target, however many slices list it");
        z.remove_slice("ns", "backend", "backend-old");
        assert_eq!(z.ready_endpoints("ns", "backend").len(), 1);
        let names: Vec<_> = z.ptr(&ip).expect("the PTR stays with the A record").map(|t| t.endpoint.as_deref()).collect();
        assert_eq!(names, vec![Some("db")]);
        // An update of the remaining slice that marks it not ready drops it, once.
        z.upsert_slice("ns", "backend", "backend-new", Slice { ports: vec![], endpoints: vec![ep("172.0.0.1", Some("db"), false)] });
        assert!(z.ptr(&ip).is_none());
        z.remove_slice("ns", "backend", "backend-new");
        assert_eq!(z.counts(), (0, 0, 0));
    }

    /// The reverse index as the services and slices say it should be.
    fn reverse_from_scratch(z: &Zone) -> HashMap<IpAddr, HashSet<PtrTarget>> {
        let mut want: HashMap<IpAddr, HashSet<PtrTarget>> = HashMap::new();
        for (ns, n) in &z.namespaces {
            for (name, svc) in &n.services {
                if let Kind::ClusterIp(ips) = &svc.kind {
                    for ip in ips {
                        want.entry(*ip).or_default().insert(PtrTarget { namespace: ns.clone(), service: name.clone(), endpoint: None });
                    }
                }
            }
            for (svc, slices) in &n.slices {
                for s in slices.values() {
                    for (ip, t) in Zone::slice_ptrs(ns, svc, s) {
                        want.entry(ip).or_default().insert(t);
                    }
                }
            }
        }
        want
    }

    #[test]
    fn the_reverse_index_matches_the_slices_after_any_sequence_of_events() {
        // Slices of two services over four addresses, added, replaced and removed in a
        // pseudo-random order (overlaps between slices included).
        let mut z = Zone::new();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for step in 0..5_000 {
            let svc = ["a", "b"][next(2) as usize];
            let slice = format!("{svc}-{}", next(3));
            if next(4) == 0 {
                z.remove_slice("ns", svc, &slice);
            } else {
                let mut endpoints = vec![];
                for i in 1..=4 {
                    if next(2) == 0 {
                        endpoints.push(ep(&format!("172.0.0.{i}"), [None, Some("db")][next(2) as usize], next(3) != 0));
                    }
                }
                z.upsert_slice("ns", svc, &slice, Slice { ports: vec![], endpoints });
            }
            let got: HashMap<IpAddr, HashSet<PtrTarget>> = z.reverse.keys().map(|ip| (*ip, z.ptr(ip).unwrap().cloned().collect())).collect();
            assert_eq!(got, reverse_from_scratch(&z), "after step {step}");
        }
    }

    #[test]
    fn ready_endpoints_are_deduplicated_across_slices() {
        let mut z = Zone::new();
        z.upsert_slice("ns", "h", "h-1", Slice { ports: vec![], endpoints: vec![ep("172.0.0.1", None, true)] });
        z.upsert_slice("ns", "h", "h-2", Slice { ports: vec![], endpoints: vec![ep("172.0.0.1", None, true), ep("172.0.0.3", None, false)] });
        assert_eq!(z.ready_endpoints("ns", "h").len(), 1);
        assert!(!z.namespace_exists("ns"), "slices alone do not make a namespace exist");
    }

    #[test]
    fn pods_index_their_addresses_by_namespace() {
        let mut z = Zone::new();
        let ip: IpAddr = "10.240.0.1".parse().unwrap();
        z.upsert_pod("podns", "foo", vec![ip]);
        assert_eq!(z.pod_namespaces(&ip), &[Box::from("podns")]);
        z.upsert_pod("podns", "foo", vec![]);
        assert!(z.pod_namespaces(&ip).is_empty());
        assert!(z.pod_keys().len() == 1);
        z.remove_pod("podns", "foo");
        assert!(z.pod_keys().is_empty());
    }
}
