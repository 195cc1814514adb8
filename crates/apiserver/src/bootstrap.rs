//! What every cluster has from the start: the system namespaces and the `kubernetes`
//! Service whose endpoints are the API server (kube-apiserver's own reconcilers).

use crate::api::Api;
use crate::objects::now;
use serde_json::{json, Value};
use std::net::IpAddr;

pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now(), "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// The first address of the service range: `10.96.0.1` by default.
pub fn kubernetes_service_ip(cidr: &ipnet::IpNet) -> IpAddr {
    match cidr.network() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 1).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 1).into()),
    }
}

/// The cluster DNS address: the tenth of the service range (`10.96.0.10` by default),
/// what pods' resolv.conf names.
pub fn dns_service_ip(cidr: &ipnet::IpNet) -> IpAddr {
    match cidr.network() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 10).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 10).into()),
    }
}

/// `kube-system/kube-dns`, selector-less: weft's DNS server publishes its endpoints.
async fn ensure_dns_service(api: &Api, cidr: &ipnet::IpNet) -> anyhow::Result<()> {
    let key = "/core/services/kube-system/kube-dns";
    if api.store.get(key).is_some() {
        return Ok(());
    }
    let ip = dns_service_ip(cidr);
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now(),
                      "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "weft-dns", "kubernetes.io/cluster-service": "true"}},
        "spec": {
            "type": "ClusterIP", "clusterIP": ip.to_string(), "clusterIPs": [ip.to_string()],
            "ipFamilies": [if ip.is_ipv4() { "IPv4" } else { "IPv6" }], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                      {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}],
        },
        "status": {"loadBalancer": {}},
    });
    // Bootstrap runs before the API serves, so no user Service can hold the address yet.
    api.services.lock().await.observe(&svc);
    api.store.create(key, svc).await?;
    Ok(())
}

pub async fn run(api: &Api, advertise: IpAddr, port: u16) -> anyhow::Result<()> {
    for ns in SYSTEM_NAMESPACES {
        let key = format!("/core/namespaces/{ns}");
        if api.store.get(&key).is_none() {
            api.store.create(&key, namespace(ns)).await?;
        }
    }
    let cidr = api.services.lock().await.cidrs[0];
    let ip = kubernetes_service_ip(&cidr);
    let fam = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let svc_key = "/core/services/default/kubernetes";
    if api.store.get(svc_key).is_none() {
        let svc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now(),
                          "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP", "clusterIP": ip.to_string(), "clusterIPs": [ip.to_string()],
                "ipFamilies": [fam], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            },
            "status": {"loadBalancer": {}},
        });
        let mut alloc = api.services.lock().await;
        alloc.observe(&svc);
        api.store.create(svc_key, svc).await?;
    } else if let Some(cur) = api.store.get(svc_key) {
        // The API's port may change between runs; the service follows it.
        if cur.value().pointer("/spec/ports/0/targetPort") != Some(&json!(port)) {
            let mut v = cur.value();
            v["spec"]["ports"][0]["targetPort"] = json!(port);
            api.store.update(svc_key, v, Some(cur.revision)).await?;
        }
    }
    ensure_dns_service(api, &cidr).await?;
    let ep = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": advertise.to_string()}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": if advertise.is_ipv4() { "IPv4" } else { "IPv6" },
        "endpoints": [{"addresses": [advertise.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    upsert(api, "/core/endpoints/default/kubernetes", ep, &["subsets"]).await?;
    upsert(api, "/discovery.k8s.io/endpointslices/default/kubernetes", slice, &["endpoints", "ports", "addressType"]).await?;
    Ok(())
}

/// Creates `obj`, or brings the stored one's `fields` to it.
async fn upsert(api: &Api, key: &str, mut obj: Value, fields: &[&str]) -> anyhow::Result<()> {
    match api.store.get(key) {
        None => {
            let m = obj["metadata"].as_object_mut().unwrap();
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now()));
            api.store.create(key, obj).await?;
        }
        Some(cur) => {
            if fields.iter().any(|f| cur.value().get(*f) != obj.get(*f)) {
                let mut v = cur.value();
                for f in fields {
                    v[*f] = obj[*f].take();
                }
                api.store.update(key, v, Some(cur.revision)).await?;
            }
        }
    }
    Ok(())
}
