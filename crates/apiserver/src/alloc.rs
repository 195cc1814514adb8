//! ClusterIP and NodePort allocation, done in the Service write path as kube-apiserver
//! does, so that a taken address is refused at once. The used sets are rebuilt from the
//! stored Services at start, so allocations survive restarts with the objects.

use ipnet::IpNet;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::IpAddr;
use weft_api::FieldError;

pub struct ServiceAllocator {
    pub cidrs: Vec<IpNet>,
    pub node_ports: (u16, u16),
    used_ips: HashSet<IpAddr>,
    used_ports: HashSet<u16>,
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn cluster_ips(svc: &Value) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = svc["spec"]["clusterIPs"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect()).unwrap_or_default();
    if out.is_empty() {
        if let Some(ip) = svc["spec"]["clusterIP"].as_str().and_then(|s| s.parse().ok()) {
            out.push(ip);
        }
    }
    out
}

pub fn node_ports(svc: &Value) -> Vec<u16> {
    let mut out: Vec<u16> = svc["spec"]["ports"].as_array().map(|a| a.iter().filter_map(|p| p["nodePort"].as_u64()).map(|p| p as u16).collect()).unwrap_or_default();
    if let Some(h) = svc["spec"]["healthCheckNodePort"].as_u64() {
        out.push(h as u16);
    }
    out
}

fn needs_node_ports(svc: &Value) -> bool {
    match svc["spec"]["type"].as_str() {
        Some("NodePort") => true,
        Some("LoadBalancer") => svc["spec"]["allocateLoadBalancerNodePorts"].as_bool().unwrap_or(true),
        _ => false,
    }
}

impl ServiceAllocator {
    pub fn new(cidrs: Vec<IpNet>, node_ports: (u16, u16)) -> Self {
        ServiceAllocator { cidrs, node_ports, used_ips: HashSet::new(), used_ports: HashSet::new() }
    }

    /// Records what stored services hold (at start).
    pub fn observe(&mut self, svc: &Value) {
        self.used_ips.extend(cluster_ips(svc));
        self.used_ports.extend(node_ports(svc));
    }

    /// Frees what a deleted service held.
    pub fn release(&mut self, svc: &Value) {
        for ip in cluster_ips(svc) {
            self.used_ips.remove(&ip);
        }
        for p in node_ports(svc) {
            self.used_ports.remove(&p);
        }
    }

    /// Allocates for a new or changed service (`old` = the stored one on update);
    /// returns what was newly taken so that a failed write can give it back.
    pub fn allocate(&mut self, svc: &mut Value, old: Option<&Value>) -> Result<Allocated, Vec<FieldError>> {
        let mut taken = Allocated::default();
        let mut errs = Vec::new();
        let ty = svc["spec"]["type"].as_str().unwrap_or("ClusterIP").to_string();
        if let Some(old) = old {
            carry_over(svc, old, &ty);
        }
        let old_ips = old.map(cluster_ips).unwrap_or_default();
        let old_ports = old.map(node_ports).unwrap_or_default();

        if ty == "ExternalName" {
            let spec = svc["spec"].as_object_mut().unwrap();
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
            spec.remove("ipFamilies");
            spec.remove("ipFamilyPolicy");
        } else {
            self.allocate_ips(svc, &old_ips, &mut taken, &mut errs);
        }
        if needs_node_ports(svc) {
            self.allocate_node_ports(svc, &old_ports, &mut taken, &mut errs);
        } else if let Some(ports) = svc["spec"]["ports"].as_array_mut() {
            if ty == "ClusterIP" || ty == "ExternalName" {
                for p in ports {
                    if let Some(o) = p.as_object_mut() {
                        o.remove("nodePort");
                    }
                }
            }
        }
        if ty == "LoadBalancer" && svc["spec"]["externalTrafficPolicy"].as_str() == Some("Local") {
            self.allocate_health_check_port(svc, &old_ports, &mut taken, &mut errs);
        } else if let Some(s) = svc["spec"].as_object_mut() {
            s.remove("healthCheckNodePort");
        }
        if !errs.is_empty() {
            self.give_back(&taken);
            return Err(errs);
        }
        Ok(taken)
    }

    /// Returns what `allocate` took (a write that failed).
    pub fn give_back(&mut self, a: &Allocated) {
        for ip in &a.ips {
            self.used_ips.remove(ip);
        }
        for p in &a.ports {
            self.used_ports.remove(p);
        }
    }

    /// After an update is stored: frees what the old version held and the new does not.
    pub fn settle_update(&mut self, old: &Value, new: &Value) {
        let keep_ips: HashSet<IpAddr> = cluster_ips(new).into_iter().collect();
        let keep_ports: HashSet<u16> = node_ports(new).into_iter().collect();
        for ip in cluster_ips(old) {
            if !keep_ips.contains(&ip) {
                self.used_ips.remove(&ip);
            }
        }
        for p in node_ports(old) {
            if !keep_ports.contains(&p) {
                self.used_ports.remove(&p);
            }
        }
    }

    fn allocate_ips(&mut self, svc: &mut Value, old_ips: &[IpAddr], taken: &mut Allocated, errs: &mut Vec<FieldError>) {
        let spec = &svc["spec"];
        let headless = spec["clusterIP"].as_str() == Some("None");
        let policy = spec["ipFamilyPolicy"].as_str().unwrap_or("SingleStack").to_string();
        let requested_families: Vec<String> = spec["ipFamilies"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default();
        let mut requested_ips: Vec<String> = spec["clusterIPs"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default();
        if requested_ips.is_empty() {
            if let Some(ip) = spec["clusterIP"].as_str().filter(|s| !s.is_empty()) {
                requested_ips.push(ip.to_string());
            }
        }
        let have_v6 = self.cidrs.iter().any(|c| matches!(c, IpNet::V6(_)));
        let have_v4 = self.cidrs.iter().any(|c| matches!(c, IpNet::V4(_)));
        let primary = if matches!(self.cidrs.first(), Some(IpNet::V6(_))) { "IPv6" } else { "IPv4" };
        // Families: requested, or from requested IPs, or the cluster's primary.
        let mut families: Vec<String> = if !requested_families.is_empty() {
            requested_families.clone()
        } else if !headless && !requested_ips.is_empty() {
            requested_ips.iter().filter_map(|s| s.parse::<IpAddr>().ok()).map(|ip| family(&ip).to_string()).collect()
        } else {
            vec![primary.to_string()]
        };
        if families.is_empty() {
            families.push(primary.to_string());
        }
        let dual = have_v4 && have_v6;
        match policy.as_str() {
            "RequireDualStack" if !dual => {
                errs.push(FieldError::invalid("spec.ipFamilyPolicy", json!(policy), "this cluster is not configured for dual-stack services"));
                return;
            }
            "RequireDualStack" | "PreferDualStack" if dual && families.len() == 1 => {
                let other = if families[0] == "IPv4" { "IPv6" } else { "IPv4" };
                families.push(other.to_string());
            }
            "SingleStack" if families.len() > 1 => {
                errs.push(FieldError::invalid("spec.ipFamilies", json!(families), "when spec.ipFamilyPolicy is SingleStack, at most one family may be given"));
                return;
            }
            _ => {}
        }
        if !dual && policy == "PreferDualStack" {
            families.truncate(1);
        }
        for (i, f) in families.iter().enumerate() {
            let ok = (f == "IPv4" && have_v4) || (f == "IPv6" && have_v6);
            if !ok {
                errs.push(FieldError::invalid(format!("spec.ipFamilies[{i}]"), json!(f), "not configured on this cluster"));
            }
        }
        if !errs.is_empty() {
            return;
        }
        let mut ips: Vec<String> = Vec::new();
        if headless {
            ips.push("None".into());
        } else {
            for (i, fam) in families.iter().enumerate() {
                let cidr = *self.cidrs.iter().find(|c| family(&c.addr()) == fam).expect("family checked above");
                match requested_ips.get(i) {
                    Some(s) => {
                        let field = format!("spec.clusterIPs[{i}]");
                        let Ok(ip) = s.parse::<IpAddr>() else {
                            errs.push(FieldError::invalid(field, json!(s), "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
                            continue;
                        };
                        if old_ips.contains(&ip) {
                            ips.push(s.clone());
                            continue;
                        }
                        if !cidr.contains(&ip) || ip == cidr.network() || (cidr.addr().is_ipv4() && ip == cidr.broadcast()) {
                            errs.push(FieldError::invalid(field, json!(s), &format!("provided IP is not in the valid range. The range of valid IPs is {cidr}")));
                            continue;
                        }
                        if !self.used_ips.insert(ip) {
                            errs.push(FieldError::invalid(field, json!(s), "provided IP is already allocated"));
                            continue;
                        }
                        taken.ips.push(ip);
                        ips.push(s.clone());
                    }
                    None => match self.next_ip(&cidr) {
                        Some(ip) => {
                            self.used_ips.insert(ip);
                            taken.ips.push(ip);
                            ips.push(ip.to_string());
                        }
                        None => errs.push(FieldError::invalid("spec.clusterIPs", json!([]), &format!("failed to allocate IP: range {cidr} is full"))),
                    },
                }
            }
        }
        if !errs.is_empty() {
            return;
        }
        let s = svc["spec"].as_object_mut().unwrap();
        s.insert("clusterIP".into(), json!(ips[0]));
        s.insert("clusterIPs".into(), json!(ips));
        s.insert("ipFamilies".into(), json!(families));
        s.insert("ipFamilyPolicy".into(), json!(policy));
    }

    /// A free address, starting from a random point in the upper (dynamic) part of the
    /// range, so that low addresses stay free for users who choose their own.
    fn next_ip(&self, cidr: &IpNet) -> Option<IpAddr> {
        let size: u128 = match cidr {
            IpNet::V4(n) => 1u128 << (32 - n.prefix_len()),
            IpNet::V6(n) => 1u128 << (128 - n.prefix_len()).min(64),
        };
        if size < 4 {
            return None;
        }
        let base: u128 = match cidr.network() {
            IpAddr::V4(a) => u32::from(a) as u128,
            IpAddr::V6(a) => u128::from(a),
        };
        // kube-apiserver's static band: size/16, clamped to [16, 256].
        let usable = size - 2;
        let static_band = (size / 16).clamp(16, 256).min(usable / 2);
        let dynamic = usable - static_band;
        let start = (uuid::Uuid::new_v4().as_u128()) % dynamic.max(1);
        let to_ip = |off: u128| -> IpAddr {
            let n = base + 1 + off;
            match cidr {
                IpNet::V4(_) => IpAddr::V4((n as u32).into()),
                IpNet::V6(_) => IpAddr::V6(n.into()),
            }
        };
        for i in 0..usable {
            // Dynamic band first, then the static band.
            let off = if i < dynamic { static_band + (start + i) % dynamic } else { i - dynamic };
            let ip = to_ip(off);
            if !self.used_ips.contains(&ip) {
                return Some(ip);
            }
        }
        None
    }

    fn allocate_node_ports(&mut self, svc: &mut Value, old_ports: &[u16], taken: &mut Allocated, errs: &mut Vec<FieldError>) {
        let (lo, hi) = self.node_ports;
        let Some(ports) = svc["spec"]["ports"].as_array_mut() else { return };
        // The same nodePort may serve several protocols of one service.
        let mut own: HashSet<u16> = HashSet::new();
        for (i, p) in ports.iter_mut().enumerate() {
            match p["nodePort"].as_u64().filter(|n| *n != 0) {
                Some(n) => {
                    let n16 = n as u16;
                    let field = format!("spec.ports[{i}].nodePort");
                    if old_ports.contains(&n16) || own.contains(&n16) {
                        own.insert(n16);
                        continue;
                    }
                    if n16 < lo || n16 > hi || n > 65535 {
                        errs.push(FieldError::invalid(field, json!(n), &format!("provided port is not in the valid range. The range of valid ports is {lo}-{hi}")));
                        continue;
                    }
                    if !self.used_ports.insert(n16) {
                        errs.push(FieldError::invalid(field, json!(n), "provided port is already allocated"));
                        continue;
                    }
                    own.insert(n16);
                    taken.ports.push(n16);
                }
                None => match self.next_port() {
                    Some(n) => {
                        self.used_ports.insert(n);
                        taken.ports.push(n);
                        own.insert(n);
                        p["nodePort"] = json!(n);
                    }
                    None => errs.push(FieldError::invalid(format!("spec.ports[{i}].nodePort"), json!(0), "failed to allocate a nodePort: the range is full")),
                },
            }
        }
    }

    fn allocate_health_check_port(&mut self, svc: &mut Value, old_ports: &[u16], taken: &mut Allocated, errs: &mut Vec<FieldError>) {
        match svc["spec"]["healthCheckNodePort"].as_u64().filter(|n| *n != 0) {
            Some(n) if old_ports.contains(&(n as u16)) => {}
            Some(n) => {
                if !self.used_ports.insert(n as u16) {
                    errs.push(FieldError::invalid("spec.healthCheckNodePort", json!(n), "provided port is already allocated"));
                } else {
                    taken.ports.push(n as u16);
                }
            }
            None => match self.next_port() {
                Some(n) => {
                    self.used_ports.insert(n);
                    taken.ports.push(n);
                    svc["spec"]["healthCheckNodePort"] = json!(n);
                }
                None => errs.push(FieldError::invalid("spec.healthCheckNodePort", json!(0), "failed to allocate a port: the range is full")),
            },
        }
    }

    fn next_port(&self) -> Option<u16> {
        let (lo, hi) = self.node_ports;
        let n = (hi - lo + 1) as u32;
        let start = (uuid::Uuid::new_v4().as_u128() % n as u128) as u32;
        (0..n).map(|i| lo + ((start + i) % n) as u16).find(|p| !self.used_ports.contains(p))
    }
}

/// On update, fields the client left empty keep what was allocated (what kube calls
/// patching allocated values), unless the type change releases them.
fn carry_over(svc: &mut Value, old: &Value, ty: &str) {
    let old_ty = old["spec"]["type"].as_str().unwrap_or("ClusterIP");
    if ty != "ExternalName" && old_ty != "ExternalName" {
        let spec = svc["spec"].as_object_mut().unwrap();
        for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            let empty = spec.get(f).map(|v| v.is_null() || v == "" || v.as_array().is_some_and(|a| a.is_empty())).unwrap_or(true);
            if empty {
                if let Some(v) = old["spec"].get(f) {
                    spec.insert(f.into(), v.clone());
                }
            }
        }
    }
    if needs_node_ports(svc) && matches!(old_ty, "NodePort" | "LoadBalancer") {
        // Same port (by port number and protocol) keeps its nodePort.
        let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
        if let Some(ports) = svc["spec"]["ports"].as_array_mut() {
            for p in ports {
                if p["nodePort"].as_u64().unwrap_or(0) == 0 {
                    if let Some(op) = old_ports.iter().find(|op| op["port"] == p["port"] && op["protocol"] == p["protocol"]) {
                        if let Some(n) = op.get("nodePort") {
                            p["nodePort"] = n.clone();
                        }
                    }
                }
            }
        }
        if svc["spec"]["healthCheckNodePort"].as_u64().unwrap_or(0) == 0 {
            if let Some(h) = old["spec"].get("healthCheckNodePort") {
                svc["spec"]["healthCheckNodePort"] = h.clone();
            }
        }
    }
}

#[derive(Default, Debug)]
pub struct Allocated {
    pub ips: Vec<IpAddr>,
    pub ports: Vec<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> ServiceAllocator {
        ServiceAllocator::new(vec!["10.96.0.0/16".parse().unwrap()], (30000, 32767))
    }

    #[test]
    fn allocates_distinct_cluster_ips_in_range() {
        let mut a = alloc();
        let mut seen = HashSet::new();
        for _ in 0..500 {
            let mut s = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}]}});
            a.allocate(&mut s, None).unwrap();
            let ip: IpAddr = s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
            assert!("10.96.0.0/16".parse::<IpNet>().unwrap().contains(&ip));
            assert!(seen.insert(ip));
            assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
        }
    }

    #[test]
    fn user_chosen_cluster_ip_is_honoured_then_refused_when_taken() {
        let mut a = alloc();
        let mut s = json!({"spec": {"clusterIP": "10.96.0.50", "ports": [{"port": 80}]}});
        a.allocate(&mut s, None).unwrap();
        assert_eq!(s["spec"]["clusterIPs"], json!(["10.96.0.50"]));
        let mut s2 = json!({"spec": {"clusterIP": "10.96.0.50", "ports": [{"port": 80}]}});
        let errs = a.allocate(&mut s2, None).unwrap_err();
        assert_eq!(errs[0].to_string(), "spec.clusterIPs[0]: Invalid value: \"10.96.0.50\": provided IP is already allocated");
        a.release(&s);
        a.allocate(&mut s2, None).unwrap();
    }

    #[test]
    fn node_ports_allocated_and_kept_on_update() {
        let mut a = alloc();
        let mut s = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}});
        a.allocate(&mut s, None).unwrap();
        let np = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&np));
        let mut upd = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}});
        a.allocate(&mut upd, Some(&s)).unwrap();
        assert_eq!(upd["spec"]["ports"][0]["nodePort"].as_u64().unwrap(), np);
        assert_eq!(upd["spec"]["clusterIP"], s["spec"]["clusterIP"]);
        let mut clash = json!({"spec": {"type": "NodePort", "ports": [{"port": 81, "nodePort": np}]}});
        assert!(a.allocate(&mut clash, None).is_err());
    }

    #[test]
    fn headless_and_dual_stack() {
        let mut a = ServiceAllocator::new(vec!["10.96.0.0/16".parse().unwrap(), "fd00:10:96::/112".parse().unwrap()], (30000, 32767));
        let mut h = json!({"spec": {"clusterIP": "None", "ports": [{"port": 80}]}});
        a.allocate(&mut h, None).unwrap();
        assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
        let mut d = json!({"spec": {"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}});
        a.allocate(&mut d, None).unwrap();
        assert_eq!(d["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
        assert_eq!(d["spec"]["clusterIPs"].as_array().unwrap().len(), 2);
        let mut single = alloc();
        let mut r = json!({"spec": {"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}});
        assert!(single.allocate(&mut r, None).is_err());
    }
}
