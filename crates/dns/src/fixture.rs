//! The conformance fixture (shared/conformance/dns/vectors.md, 7.1 and the reverse
//! tests' objects) as real API objects, and a loader that feeds objects to a zone the
//! way the watchers do. Used by the tests and the benchmark server.

use crate::zone::Zone;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use serde_json::{json, Value};

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A ClusterIP (or headless with `ips == ["None"]`) service.
pub fn service(ns: &str, name: &str, ips: &[&str], ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
           "spec": {"clusterIP": ips.first().copied().unwrap_or(""), "clusterIPs": ips, "ports": ports}})
}

pub fn external(ns: &str, name: &str, target: &str, ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
           "spec": {"type": "ExternalName", "externalName": target, "ports": ports}})
}

/// An EndpointSlice of `svc` with `(address, hostname)` ready endpoints.
pub fn slice(ns: &str, svc: &str, name: &str, family: &str, eps: &[(&str, Option<&str>)], ports: Value) -> Value {
    let endpoints: Vec<Value> = eps
        .iter()
        .map(|(ip, host)| {
            let mut e = json!({"addresses": [ip], "conditions": {"ready": true}});
            if let Some(h) = host {
                e["hostname"] = json!(h);
            }
            e
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
           "addressType": family, "endpoints": endpoints, "ports": ports})
}

pub fn pod(ns: &str, name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": "agnhost"}]},
           "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})
}

fn http() -> Value {
    json!([{"name": "http", "port": 80, "protocol": "TCP"}])
}

/// 7.1: the objects every forward and pod vector assumes.
pub fn conformance() -> Vec<Value> {
    vec![
        namespace("testns"),
        namespace("kube-system"),
        namespace("podns"),
        service("testns", "svc1", &["10.0.0.1"], http()),
        slice("testns", "svc1", "svc1-x", "IPv4", &[("172.0.0.1", Some("ep1a"))], http()),
        service("testns", "svcempty", &["10.0.0.1"], http()),
        service("testns", "svc6", &["1234:abcd::1"], http()),
        service("testns", "svc-dual-stack", &["10.0.0.3", "10::3"], http()),
        service("testns", "hdls1", &["None"], http()),
        slice("testns", "hdls1", "hdls1-v4", "IPv4", &[("172.0.0.2", None), ("172.0.0.3", None), ("172.0.0.4", Some("dup-name")), ("172.0.0.5", Some("dup-name"))], http()),
        slice("testns", "hdls1", "hdls1-v6", "IPv6", &[("5678:abcd::1", None), ("5678:abcd::2", None)], http()),
        service("testns", "hdlsprtls", &["None"], json!([])),
        slice("testns", "hdlsprtls", "hdlsprtls-x", "IPv4", &[("172.0.0.20", None)], json!([])),
        external("testns", "external", "ext.interwebs.test", http()),
        external("testns", "external-to-service", "svc1.testns.svc.cluster.local.", json!([])),
        service("kube-system", "kubedns", &["10.0.0.10"], json!([{"name": "dns", "port": 53, "protocol": "UDP"}])),
        slice("kube-system", "kubedns", "kubedns-x", "IPv4", &[("172.0.0.100", None)], json!([{"name": "dns", "port": 53, "protocol": "UDP"}])),
        pod("podns", "foo", "10.240.0.1"),
        // Not in 7.1: a headless service whose only endpoint is not ready.
        service("testns", "hdlsnotready", &["None"], http()),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "hdlsnotready-x", "namespace": "testns", "labels": {"kubernetes.io/service-name": "hdlsnotready"}},
               "addressType": "IPv4", "endpoints": [{"addresses": ["172.0.0.30"], "conditions": {"ready": false}}], "ports": http()}),
    ]
}

/// The reverse tests' objects (reverse_test.go): svc1 at 192.168.1.100 with named endpoints.
pub fn reverse() -> Vec<Value> {
    vec![
        namespace("testns"),
        service("testns", "svc1", &["192.168.1.100"], http()),
        slice("testns", "svc1", "svc1-v4", "IPv4", &[("10.0.0.100", Some("ep1a"))], http()),
        slice("testns", "svc1", "svc1-v6", "IPv6", &[("1234:abcd::1", Some("ep1b")), ("fd00:77:30::a", Some("ip6svc1ex")), ("fd00:77:30::2:9ba6", Some("ip6svc1in"))], http()),
    ]
}

/// The reverse zones the reverse vectors assume.
pub const REVERSE_ZONES: &str = "0.10.in-addr.arpa 168.192.in-addr.arpa d.c.b.a.4.3.2.1.ip6.arpa 0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa";

/// Applies API objects to a zone as watch events would.
pub fn load(z: &mut Zone, objects: &[Value]) -> Result<(), String> {
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        let err = |e: serde_json::Error| format!("{kind} {}: {e}", o["metadata"]["name"]);
        match kind {
            "Namespace" => {
                let n: Namespace = serde_json::from_value(o.clone()).map_err(err)?;
                z.set_namespace(&n.name_any(), true);
            }
            "Service" => {
                let s: Service = serde_json::from_value(o.clone()).map_err(err)?;
                let ns = s.namespace().unwrap_or_default();
                if let Some(rec) = crate::objects::service(&s) {
                    z.upsert_service(&ns, &s.name_any(), rec);
                }
            }
            "EndpointSlice" => {
                let s: EndpointSlice = serde_json::from_value(o.clone()).map_err(err)?;
                if let Some((svc, rec)) = crate::objects::slice(&s) {
                    z.upsert_slice(&s.namespace().unwrap_or_default(), &svc, &s.name_any(), rec);
                }
            }
            "Pod" => {
                let p: Pod = serde_json::from_value(o.clone()).map_err(err)?;
                z.upsert_pod(&p.namespace().unwrap_or_default(), &p.name_any(), crate::objects::pod_ips(&p));
            }
            other => return Err(format!("fixture: unsupported kind {other:?}")),
        }
    }
    Ok(())
}

/// A synced zone holding `objects`.
pub fn synced_zone(objects: &[Value]) -> Zone {
    let mut z = Zone::new();
    load(&mut z, objects).expect("fixture objects are valid");
    z.synced = crate::zone::Synced { services: true, slices: true, namespaces: true, pods: true };
    z
}
