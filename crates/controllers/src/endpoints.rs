//! Endpoints controller: the legacy `v1/Endpoints` named after each Service with
//! a selector, single-stack (the Service's primary family), ready pods under
//! `addresses` and the rest under `notReadyAddresses`, packed into subsets of
//! addresses that share one port list, truncated at 1000 addresses as upstream.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;

use crate::endpointslice::HEADLESS_LABEL;
use crate::informer::{route, Key};
use crate::queue::Queue;
use crate::service_ports;
use crate::{api_error_is, Ctx};

pub const MAX_ADDRESSES: usize = 1000;
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// The subsets `svc` should have for these pods (already selected by it).
pub fn desired_subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let tolerate_unready = service_ports::publishes_not_ready(svc);
    // address (ip, pod uid) -> (address, ready, ports)
    let mut addrs: BTreeMap<(String, String), (EndpointAddress, bool, BTreeSet<String>)> = BTreeMap::new();
    let mut port_by_key: BTreeMap<String, EndpointPort> = BTreeMap::new();
    let ports = service_ports::service_ports(svc);
    for pod in pods {
        if !service_ports::should_be_endpoint(pod, tolerate_unready) {
            continue;
        }
        let family = service_ports::primary_family(svc, pod);
        let Some(ip) = service_ports::ip_of_family(pod, family) else { continue };
        let addr = EndpointAddress {
            ip: ip.to_string(),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
            hostname: service_ports::should_set_hostname(pod, svc).then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone())).flatten(),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.namespace(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            }),
        };
        let ready = tolerate_unready || crate::pod_state::is_ready(pod);
        let mut served = BTreeSet::new();
        if ports.is_empty() {
            // Only a headless service may have no ports; its addresses still count.
            if !service_ports::is_headless(svc) {
                continue;
            }
        } else {
            for sp in ports {
                let Some(n) = service_ports::find_port(pod, sp) else { continue };
                let ep = EndpointPort {
                    name: sp.name.clone().filter(|n| !n.is_empty()),
                    port: n,
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                };
                let key = serde_json::to_string(&ep).unwrap_or_default();
                port_by_key.insert(key.clone(), ep);
                served.insert(key);
            }
            if served.is_empty() {
                continue;
            }
        }
        addrs.insert((addr.ip.clone(), pod.metadata.uid.clone().unwrap_or_default()), (addr, ready, served));
    }
    // Repack: one subset per distinct port set, addresses sorted by IP.
    let mut subsets: BTreeMap<BTreeSet<String>, EndpointSubset> = BTreeMap::new();
    for (_, (addr, ready, served)) in addrs {
        let subset = subsets.entry(served.clone()).or_insert_with(|| EndpointSubset {
            ports: (!served.is_empty()).then(|| served.iter().map(|k| port_by_key[k].clone()).collect()),
            ..Default::default()
        });
        let list = if ready { subset.addresses.get_or_insert_with(Vec::new) } else { subset.not_ready_addresses.get_or_insert_with(Vec::new) };
        list.push(addr);
    }
    subsets.into_values().collect()
}

/// Keeps at most `MAX_ADDRESSES`, ready addresses first, each subset keeping its
/// proportional share. Returns whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let ready: usize = subsets.iter().map(|s| s.addresses.as_ref().map_or(0, Vec::len)).sum();
    let not_ready: usize = subsets.iter().map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len)).sum();
    if ready + not_ready <= MAX_ADDRESSES {
        return false;
    }
    let cut_ready = ready > MAX_ADDRESSES;
    let (budget, total) = if cut_ready { (MAX_ADDRESSES, ready) } else { (MAX_ADDRESSES - ready, not_ready) };
    let mut left = budget;
    for s in subsets.iter_mut() {
        let list = if cut_ready { &mut s.addresses } else { &mut s.not_ready_addresses };
        let n = list.as_ref().map_or(0, Vec::len);
        let share = ((n as f64 / total as f64) * budget as f64).ceil() as usize;
        let keep = share.min(left).min(n);
        if let Some(l) = list.as_mut() {
            l.truncate(keep);
        }
        left -= keep;
        if cut_ready {
            s.not_ready_addresses = None;
        }
    }
    true
}

/// The Endpoints object `svc` should have, given the current one (if any).
/// None when the current one is already right.
pub fn desired(svc: &Service, pods: &[Arc<Pod>], current: Option<&Endpoints>) -> Option<Endpoints> {
    let mut subsets = desired_subsets(svc, pods);
    let truncated = truncate(&mut subsets);
    let mut labels = svc.labels().clone();
    if service_ports::is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    let mut ep = current.cloned().unwrap_or_else(|| Endpoints {
        metadata: ObjectMeta { name: Some(svc.name_any()), namespace: svc.namespace(), ..Default::default() },
        subsets: None,
    });
    let mut annotations = ep.metadata.annotations.clone().unwrap_or_default();
    if truncated {
        annotations.insert(OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY_ANNOTATION);
    }
    let subsets = (!subsets.is_empty()).then_some(subsets);
    let annotations = (!annotations.is_empty()).then_some(annotations);
    let unchanged = current.is_some()
        && ep.subsets == subsets
        && ep.metadata.labels.clone().unwrap_or_default() == labels
        && ep.metadata.annotations == annotations;
    if unchanged {
        return None;
    }
    ep.subsets = subsets;
    ep.metadata.labels = Some(labels);
    ep.metadata.annotations = annotations;
    Some(ep)
}

pub(crate) async fn run(ctx: Arc<Ctx>) -> anyhow::Result<()> {
    tokio::join!(ctx.pods.synced(), ctx.services.synced(), ctx.endpoints.synced());
    let queue: Queue<Key> = Queue::new();
    let all_services = {
        let ctx = ctx.clone();
        move || ctx.services.all().iter().map(|s| Key::of(&**s)).collect::<Vec<_>>()
    };
    for key in all_services() {
        queue.add(key);
    }
    // Endpoints left over from services deleted while we were down.
    for e in ctx.endpoints.all() {
        queue.add(Key::of(&*e));
    }
    let c = ctx.clone();
    let pods = route(ctx.pods.clone(), queue.clone(), move |ch| crate::selector::services_of_pods(&c, ch), all_services.clone());
    let services = route(ctx.services.clone(), queue.clone(), |ch| ch.objects().iter().map(|s| Key::of(&***s)).collect(), all_services.clone());
    let endpoints = route(ctx.endpoints.clone(), queue.clone(), |ch| ch.objects().iter().map(|e| Key::of(&***e)).collect(), all_services.clone());
    let c = ctx.clone();
    let worker = queue.serve("endpoints", move |key| sync(c.clone(), key));
    tokio::join!(pods, services, endpoints, worker);
    Ok(())
}

async fn sync(ctx: Arc<Ctx>, key: Key) -> anyhow::Result<Option<Duration>> {
    let cached = |name: &str| ctx.endpoints.get(&key.namespace, name).and_then(|e| e.resource_version());
    if !ctx.endpoints_writes.satisfied(&key, cached) {
        return Ok(Some(Duration::from_millis(200)));
    }
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let current = ctx.endpoints.get(&key.namespace, &key.name);
    let Some(svc) = ctx.services.get(&key.namespace, &key.name) else {
        // The Service is gone: so are its Endpoints (unless the API server owns them).
        let apiserver_owned = key.namespace == "default" && key.name == "kubernetes";
        if current.is_some() && !apiserver_owned {
            match api.delete(&key.name, &DeleteParams::default()).await {
                Ok(_) => ctx.endpoints_writes.deleted(&key, &key.name),
                Err(e) if api_error_is(&e, 404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(None);
    };
    if !service_ports::has_managed_endpoints(&svc) {
        return Ok(None);
    }
    let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .in_namespace(&key.namespace)
        .into_iter()
        .filter(|p| crate::selector::matches_map(&selector, p.metadata.labels.as_ref()))
        .collect();
    let Some(want) = desired(&svc, &pods, current.as_deref()) else { return Ok(None) };
    match current {
        Some(cur) => {
            api.replace(&key.name, &PostParams::default(), &want).await?;
            ctx.endpoints_writes.replaced(&key, &key.name, &cur.resource_version().unwrap_or_default());
        }
        None => match api.create(&PostParams::default(), &want).await {
            Ok(_) => ctx.endpoints_writes.created(&key, &key.name),
            Err(e) if api_error_is(&e, 409) || api_error_is(&e, 403) => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_state::fixtures::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn svc(ports: Vec<ServicePort>, cluster_ip: &str) -> Service {
        Service {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("default".into()), ..Default::default() },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                cluster_ip: Some(cluster_ip.into()),
                ip_families: Some(vec!["IPv4".into()]),
                ports: Some(ports),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn port(name: &str, target: IntOrString) -> ServicePort {
        ServicePort { name: Some(name.into()), port: 80, target_port: Some(target), protocol: Some("TCP".into()), ..Default::default() }
    }

    fn web(name: &str, ip: &str, is_ready: bool) -> Arc<Pod> {
        Arc::new(ready(with_ips(pod(name, &[("app", "web")]), &[ip, "fd00::1"]), is_ready))
    }

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        list.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_unready_pods_share_a_subset_in_their_own_lists() {
        let s = svc(vec![port("http", IntOrString::Int(8080))], "10.96.0.5");
        let subsets = desired_subsets(&s, &[web("b", "10.0.0.2", false), web("a", "10.0.0.1", true), web("c", "10.0.0.3", true)]);
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.1", "10.0.0.3"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.0.0.2"]);
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
    }

    #[test]
    fn terminating_pods_are_left_out_unless_not_ready_addresses_are_published() {
        let s = svc(vec![port("http", IntOrString::Int(80))], "10.96.0.5");
        let pods = vec![Arc::new(terminating((*web("a", "10.0.0.1", true)).clone()))];
        assert!(desired_subsets(&s, &pods).is_empty());
        let mut publish = s.clone();
        publish.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        assert_eq!(ips(&desired_subsets(&publish, &pods)[0].addresses), vec!["10.0.0.1"]);
    }

    #[test]
    fn named_ports_split_pods_into_subsets_by_resolved_number() {
        let s = svc(vec![port("http", IntOrString::String("web".into()))], "10.96.0.5");
        let named = |name: &str, ip: &str, n: i32| {
            let mut p = (*web(name, ip, true)).clone();
            p.spec.as_mut().unwrap().containers = vec![k8s_openapi::api::core::v1::Container {
                name: "c".into(),
                ports: Some(vec![k8s_openapi::api::core::v1::ContainerPort {
                    name: Some("web".into()),
                    container_port: n,
                    ..Default::default()
                }]),
                ..Default::default()
            }];
            Arc::new(p)
        };
        let subsets = desired_subsets(&s, &[named("a", "10.0.0.1", 8080), named("b", "10.0.0.2", 9090), web("c", "10.0.0.3", true)]);
        let shape: Vec<(i32, Vec<&str>)> =
            subsets.iter().map(|s| (s.ports.as_ref().unwrap()[0].port, ips(&s.addresses))).collect();
        assert_eq!(shape.len(), 2, "the pod without the named port is not an endpoint");
        assert!(shape.contains(&(8080, vec!["10.0.0.1"])) && shape.contains(&(9090, vec!["10.0.0.2"])));
    }

    #[test]
    fn a_headless_service_without_ports_still_lists_its_pods() {
        let s = svc(vec![], "None");
        let subsets = desired_subsets(&s, &[web("a", "10.0.0.1", true)]);
        assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.1"]);
        assert!(subsets[0].ports.is_none());
        let ep = desired(&s, &[web("a", "10.0.0.1", true)], None).unwrap();
        assert_eq!(ep.metadata.labels.unwrap().get(HEADLESS_LABEL).map(String::as_str), Some(""));
    }

    #[test]
    fn endpoints_are_rewritten_only_when_something_changed() {
        let s = svc(vec![port("http", IntOrString::Int(80))], "10.96.0.5");
        let pods = vec![web("a", "10.0.0.1", true)];
        let first = desired(&s, &pods, None).expect("created");
        assert!(desired(&s, &pods, Some(&first)).is_none());
        assert!(desired(&s, &[web("a", "10.0.0.1", false)], Some(&first)).is_some());
    }

    #[test]
    fn more_than_a_thousand_addresses_are_truncated_and_annotated() {
        let s = svc(vec![port("http", IntOrString::Int(80))], "10.96.0.5");
        let pods: Vec<Arc<Pod>> = (0..1100).map(|i| web(&format!("p{i}"), &format!("10.0.{}.{}", i / 250, i % 250), i % 2 == 0)).collect();
        let ep = desired(&s, &pods, None).unwrap();
        let sub = &ep.subsets.as_ref().unwrap()[0];
        assert_eq!(sub.addresses.as_ref().unwrap().len(), 550, "every ready address is kept");
        assert_eq!(sub.not_ready_addresses.as_ref().unwrap().len(), 450);
        assert_eq!(ep.metadata.annotations.unwrap()[OVER_CAPACITY_ANNOTATION], "truncated");
    }
}
