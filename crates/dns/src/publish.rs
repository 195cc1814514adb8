//! Makes the DNS server reachable as the `kube-dns` Service: its EndpointSlice and
//! Endpoints list the addresses the server listens on (the Service itself, selector-less
//! at the cluster DNS address, comes from the control plane's bootstrap).

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::net::IpAddr;

pub const SERVICE: &str = "kube-dns";
pub const NAMESPACE: &str = "kube-system";
const SLICE: &str = "kube-dns-weft";

fn ports() -> serde_json::Value {
    json!([
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153, "protocol": "TCP"},
    ])
}

/// Writes (or brings up to date) kube-dns's EndpointSlice and Endpoints.
pub async fn publish(client: kube::Client, ips: &[IpAddr]) -> anyhow::Result<()> {
    let v4 = ips.iter().all(|i| i.is_ipv4());
    anyhow::ensure!(!ips.is_empty() && (v4 || ips.iter().all(|i| i.is_ipv6())), "kube-dns endpoints: give one or more addresses of one family, not {ips:?}");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": SLICE, "namespace": NAMESPACE, "labels": {
            "kubernetes.io/service-name": SERVICE, "endpointslice.kubernetes.io/managed-by": "weft-dns"}},
        "addressType": if v4 { "IPv4" } else { "IPv6" },
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true, "serving": true, "terminating": false}})).collect::<Vec<_>>(),
        "ports": ports(),
    }))?;
    let eps: Endpoints = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect::<Vec<_>>(), "ports": ports()}],
    }))?;
    upsert(Api::<EndpointSlice>::namespaced(client.clone(), NAMESPACE), slice).await?;
    upsert(Api::<Endpoints>::namespaced(client, NAMESPACE), eps).await?;
    Ok(())
}

async fn upsert<K>(api: Api<K>, mut obj: K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    match api.get_opt(&name).await? {
        None => {
            api.create(&PostParams::default(), &obj).await?;
        }
        Some(cur) => {
            obj.meta_mut().resource_version = cur.meta().resource_version.clone();
            api.replace(&name, &PostParams::default(), &obj).await?;
        }
    }
    Ok(())
}
