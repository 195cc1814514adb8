//! `weft explain --from A --to B --port P`: why a connection is allowed or denied, for
//! each direction, from the same policy model the enforcer is compiled from. The
//! model is built from the instance's API (Namespaces, Pods, NetworkPolicies); a
//! Service destination is explained for each of its ready endpoints, on the port its
//! `targetPort` names on that endpoint's pod.

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use weft_policy::{Cluster, PodKey, Protocol, Query};

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The source: `namespace/pod`, a pod name in `default`, or an IP address.
    #[arg(long)]
    pub from: String,
    /// The destination: `namespace/pod`, `svc/namespace/name` (each ready endpoint), or an IP.
    #[arg(long)]
    pub to: String,
    /// The destination port (the Service's port for `svc/...`, else the pod's port).
    #[arg(long)]
    pub port: u16,
    #[arg(long, default_value = "TCP", value_parser = ["TCP", "UDP", "SCTP"])]
    pub protocol: String,
    #[arg(long, env = "WEFT_STATE_DIR", default_value_os_t = crate::default_state_dir())]
    pub state_dir: PathBuf,
}

/// One end as the user named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Ip(IpAddr),
    Pod(PodKey),
    /// `svc/namespace/name` (destinations only).
    Service { namespace: String, name: String },
}

fn key(namespace: &str, name: &str) -> PodKey {
    PodKey { namespace: namespace.to_string(), name: name.to_string() }
}

/// Parses `--from`/`--to`: an IP, `ns/pod`, `pod` (in `default`), or (with
/// `services`) `svc/ns/name`, `svc/name`.
pub fn parse_peer(s: &str, flag: &str, services: bool) -> Result<Peer> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Peer::Ip(ip));
    }
    let parts: Vec<&str> = s.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("{flag} {s:?}: an empty name");
    }
    match parts.as_slice() {
        [kind, rest @ ..] if services && matches!(*kind, "svc" | "service" | "services") && !rest.is_empty() => match rest {
            [ns, name] => Ok(Peer::Service { namespace: ns.to_string(), name: name.to_string() }),
            [name] => Ok(Peer::Service { namespace: "default".into(), name: name.to_string() }),
            _ => bail!("{flag} {s:?}: expected svc/namespace/name"),
        },
        [ns, name] => Ok(Peer::Pod(key(ns, name))),
        [name] => Ok(Peer::Pod(key("default", name))),
        _ if services => bail!("{flag} {s:?}: expected namespace/pod, svc/namespace/name or an IP address"),
        _ => bail!("{flag} {s:?}: expected namespace/pod or an IP address"),
    }
}

/// The addresses of a pod (`status.podIPs`, else `status.podIP`).
fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let Some(st) = &pod.status else { return vec![] };
    let mut ips: Vec<IpAddr> = st.pod_ips.iter().flatten().filter_map(|p| p.ip.parse().ok()).collect();
    if ips.is_empty() {
        ips.extend(st.pod_ip.as_deref().and_then(|p| p.parse::<IpAddr>().ok()));
    }
    ips
}

fn find_pod<'a>(pods: &'a [Pod], k: &PodKey) -> Option<&'a Pod> {
    pods.iter().find(|p| p.metadata.namespace.as_deref() == Some(&k.namespace) && p.metadata.name.as_deref() == Some(&k.name))
}

/// A pod's addresses, or an error saying why there are none.
fn resolve_pod(pods: &[Pod], k: &PodKey, flag: &str) -> Result<Vec<IpAddr>> {
    let pod = find_pod(pods, k).with_context(|| format!("{flag}: pod {k} not found: check the name with `kubectl get pods -n {}`", k.namespace))?;
    let ips = pod_ips(pod);
    if ips.is_empty() {
        bail!("{flag}: pod {k} has no IP address yet (status.podIPs is empty)");
    }
    Ok(ips)
}

/// The port a named `targetPort` has on one pod (a containerPort with that name and
/// protocol), as the endpoints controller resolves it.
fn named_port(pod: &Pod, name: &str, protocol: Protocol) -> Option<u16> {
    let spec = pod.spec.as_ref()?;
    spec.containers.iter().flat_map(|c| c.ports.iter().flatten()).find_map(|p| {
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        (p.name.as_deref() == Some(name) && proto == protocol.as_str()).then_some(p.container_port as u16)
    })
}

/// One ready endpoint of a Service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub pod: Option<PodKey>,
    pub ip: IpAddr,
    /// The pod's port for the Service port; None when a named targetPort does not
    /// exist (with this protocol) on this pod.
    pub port: Option<u16>,
}

/// The ready endpoints of `svc`'s `port`/`protocol` and the pod port each serves it on.
pub fn service_backends(svc: &Service, slices: &[EndpointSlice], pods: &[Pod], port: u16, protocol: Protocol) -> Result<Vec<Backend>> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let spec = svc.spec.as_ref().with_context(|| format!("service {ns}/{name} has no spec"))?;
    let ports = spec.ports.as_deref().unwrap_or_default();
    let Some(sp) = ports.iter().find(|p| p.port == port as i32 && p.protocol.as_deref().unwrap_or("TCP") == protocol.as_str()) else {
        let have: Vec<String> = ports.iter().map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP"))).collect();
        bail!("--port {port}: service {ns}/{name} has no port {port}/{} (its ports: {})", protocol.as_str(), if have.is_empty() { "none".into() } else { have.join(", ") });
    };
    let target = sp.target_port.clone().unwrap_or(IntOrString::Int(sp.port));
    let mut out = Vec::new();
    for slice in slices {
        for ep in &slice.endpoints {
            if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            let pod_key = ep.target_ref.as_ref().filter(|r| r.kind.as_deref() == Some("Pod")).and_then(|r| Some(key(r.namespace.as_deref().unwrap_or(&ns), r.name.as_deref()?)));
            let pod = pod_key.as_ref().and_then(|k| find_pod(pods, k));
            let port = match &target {
                IntOrString::Int(n) => Some(*n as u16),
                IntOrString::String(s) => match pod {
                    Some(pod) => named_port(pod, s, protocol),
                    // No pod object: the port the endpoints controller resolved.
                    None => slice.ports.iter().flatten().find(|p| p.name == sp.name && p.protocol.as_deref().unwrap_or("TCP") == protocol.as_str()).and_then(|p| p.port).map(|p| p as u16),
                },
            };
            for a in &ep.addresses {
                let ip = a.parse().with_context(|| format!("endpointslice {ns}/{}: endpoint address {a:?} is not an IP", slice.metadata.name.as_deref().unwrap_or("")))?;
                if !out.iter().any(|b: &Backend| b.ip == ip) {
                    out.push(Backend { pod: pod_key.clone(), ip, port });
                }
            }
        }
    }
    Ok(out)
}

/// The source address of the same family as `dst` (pods may be dual-stack).
fn same_family(ips: &[IpAddr], dst: IpAddr) -> Option<IpAddr> {
    ips.iter().copied().find(|ip| ip.is_ipv4() == dst.is_ipv4())
}

/// Everything the model needs, from the API.
struct Objects {
    namespaces: Vec<Namespace>,
    pods: Vec<Pod>,
    policies: Vec<NetworkPolicy>,
    service: Option<(Service, Vec<EndpointSlice>)>,
}

async fn fetch(state_dir: &std::path::Path, to: &Peer) -> Result<Objects> {
    let kubeconfig = state_dir.join("kubeconfig");
    let client = crate::up::client_for(&kubeconfig).await.with_context(|| format!("connecting with {} (is weft up running on {}?)", kubeconfig.display(), state_dir.display()))?;
    let lp = ListParams::default();
    let namespaces = Api::<Namespace>::all(client.clone()).list(&lp).await.context("listing namespaces")?.items;
    let pods = Api::<Pod>::all(client.clone()).list(&lp).await.context("listing pods")?.items;
    let policies = Api::<NetworkPolicy>::all(client.clone()).list(&lp).await.context("listing networkpolicies")?.items;
    let service = match to {
        Peer::Service { namespace, name } => {
            let svc = Api::<Service>::namespaced(client.clone(), namespace).get_opt(name).await?.with_context(|| format!("--to: service {namespace}/{name} not found: check the name with `kubectl get services -n {namespace}`"))?;
            let slices = Api::<EndpointSlice>::namespaced(client, namespace).list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}"))).await.context("listing endpointslices")?.items;
            Some((svc, slices))
        }
        _ => None,
    };
    Ok(Objects { namespaces, pods, policies, service })
}

fn model(objs: &Objects) -> Cluster {
    let mut c = Cluster::new();
    for ns in &objs.namespaces {
        c.apply_namespace(ns);
    }
    for p in &objs.pods {
        c.apply_pod(p);
    }
    for np in &objs.policies {
        if let Err(e) = c.apply_policy(np) {
            eprintln!("warning: networkpolicy {}/{} is not enforced: {e}", np.metadata.namespace.as_deref().unwrap_or(""), np.metadata.name.as_deref().unwrap_or(""));
        }
    }
    c
}

fn describe(pod: &Option<PodKey>, ip: IpAddr) -> String {
    match pod {
        Some(k) => format!("{k} ({ip})"),
        None => ip.to_string(),
    }
}

/// The report for every connection the arguments name.
fn report(args: &ExplainArgs, from: &Peer, to: &Peer, objs: &Objects, cluster: &Cluster) -> Result<String> {
    let protocol = Protocol::parse(&args.protocol).with_context(|| format!("--protocol {:?}: expected TCP, UDP or SCTP", args.protocol))?;
    let (src_pod, src_ips) = match from {
        Peer::Ip(ip) => (None, vec![*ip]),
        Peer::Pod(k) => (Some(k.clone()), resolve_pod(&objs.pods, k, "--from")?),
        Peer::Service { .. } => bail!("--from: a service is not a source; name one of its pods"),
    };
    let mut out = String::new();
    let targets: Vec<Backend> = match (to, &objs.service) {
        (Peer::Ip(ip), _) => vec![Backend { pod: None, ip: *ip, port: Some(args.port) }],
        (Peer::Pod(k), _) => resolve_pod(&objs.pods, k, "--to")?.into_iter().map(|ip| Backend { pod: Some(k.clone()), ip, port: Some(args.port) }).collect(),
        (Peer::Service { namespace, name }, Some((svc, slices))) => {
            let backends = service_backends(svc, slices, &objs.pods, args.port, protocol)?;
            let _ = writeln!(out, "service {namespace}/{name} port {}/{}: {} ready endpoint(s)", args.port, protocol.as_str(), backends.len());
            if backends.is_empty() {
                bail!("{}service {namespace}/{name} has no ready endpoints: no connection to explain", out);
            }
            backends
        }
        (Peer::Service { namespace, name }, None) => bail!("service {namespace}/{name} was not fetched"),
    };
    let mut explained = 0;
    for t in &targets {
        let Some(src) = same_family(&src_ips, t.ip) else {
            let _ = writeln!(out, "\n{} -> {}: no source address of its family", describe(&src_pod, src_ips[0]), describe(&t.pod, t.ip));
            continue;
        };
        let Some(port) = t.port else {
            let _ = writeln!(out, "\n{}: the service's targetPort names no {} port on this pod, so the service sends it nothing", describe(&t.pod, t.ip), protocol.as_str());
            continue;
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&weft_policy::explain::explain(cluster, &Query { src, dst: t.ip, protocol, port }));
        if !out.ends_with('\n') {
            out.push('\n');
        }
        explained += 1;
    }
    if explained == 0 {
        bail!("{out}nothing to explain");
    }
    Ok(out)
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let from = parse_peer(&args.from, "--from", false)?;
    let to = parse_peer(&args.to, "--to", true)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let objs = rt.block_on(fetch(&args.state_dir, &to))?;
    let text = report(&args, &from, &to, &objs, &model(&objs))?;
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, ip: Option<&str>, ports: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}]},
            "status": ip.map(|ip| json!({"podIP": ip, "podIPs": [{"ip": ip}]})).unwrap_or(json!({})),
        }))
        .unwrap()
    }

    fn service(target: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": target}, {"name": "dns", "port": 53, "protocol": "UDP"}]},
        }))
        .unwrap()
    }

    fn slice(endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "web-abc"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    fn ep(ip: &str, pod: Option<&str>, ready: bool) -> serde_json::Value {
        let mut e = json!({"addresses": [ip], "conditions": {"ready": ready}});
        if let Some(p) = pod {
            e["targetRef"] = json!({"kind": "Pod", "namespace": "default", "name": p});
        }
        e
    }

    #[test]
    fn peers_are_ips_pods_or_services() {
        assert_eq!(parse_peer("10.244.1.2", "--from", false).unwrap(), Peer::Ip("10.244.1.2".parse().unwrap()));
        assert_eq!(parse_peer("fd00::1", "--to", true).unwrap(), Peer::Ip("fd00::1".parse().unwrap()));
        assert_eq!(parse_peer("x/a", "--from", false).unwrap(), Peer::Pod(key("x", "a")));
        assert_eq!(parse_peer("a", "--from", false).unwrap(), Peer::Pod(key("default", "a")));
        assert_eq!(parse_peer("svc/y/web", "--to", true).unwrap(), Peer::Service { namespace: "y".into(), name: "web".into() });
        assert_eq!(parse_peer("service/web", "--to", true).unwrap(), Peer::Service { namespace: "default".into(), name: "web".into() });
        // A namespace called svc is still a namespace for sources.
        assert_eq!(parse_peer("svc/web", "--from", false).unwrap(), Peer::Pod(key("svc", "web")));
        let e = parse_peer("svc/y/web", "--from", false).unwrap_err().to_string();
        assert!(e.contains("--from \"svc/y/web\": expected namespace/pod or an IP address"), "{e}");
        assert!(parse_peer("x//a", "--to", true).unwrap_err().to_string().contains("an empty name"));
        assert!(parse_peer("svc/a/b/c", "--to", true).unwrap_err().to_string().contains("expected svc/namespace/name"));
    }

    #[test]
    fn a_named_target_port_is_resolved_on_each_endpoint_pod_and_unready_endpoints_are_skipped() {
        let pods = vec![
            pod("default", "web-1", Some("10.244.1.5"), json!([{"name": "http", "containerPort": 8080}])),
            pod("default", "web-2", Some("10.244.2.5"), json!([{"name": "http", "containerPort": 9090}])),
            // Same name, other protocol: not a match.
            pod("default", "web-3", Some("10.244.2.6"), json!([{"name": "http", "containerPort": 8080, "protocol": "UDP"}])),
            pod("default", "web-4", Some("10.244.2.7"), json!([])),
        ];
        let slices = vec![slice(json!([
            ep("10.244.1.5", Some("web-1"), true),
            ep("10.244.2.5", Some("web-2"), true),
            ep("10.244.2.6", Some("web-3"), true),
            ep("10.244.2.7", Some("web-4"), false),
            ep("10.244.3.9", None, true),
        ]))];
        let got = service_backends(&service(json!("http")), &slices, &pods, 80, Protocol::Tcp).unwrap();
        let view: Vec<(Option<String>, String, Option<u16>)> = got.iter().map(|b| (b.pod.as_ref().map(|k| k.to_string()), b.ip.to_string(), b.port)).collect();
        assert_eq!(
            view,
            vec![
                (Some("default/web-1".into()), "10.244.1.5".into(), Some(8080)),
                (Some("default/web-2".into()), "10.244.2.5".into(), Some(9090)),
                (Some("default/web-3".into()), "10.244.2.6".into(), None),
                // No pod object: the port the endpoints controller resolved.
                (None, "10.244.3.9".into(), Some(8080)),
            ]
        );
    }

    #[test]
    fn a_numeric_or_missing_target_port_is_the_same_on_every_pod() {
        let slices = vec![slice(json!([ep("10.244.1.5", Some("web-1"), true)]))];
        let numeric = service_backends(&service(json!(8081)), &slices, &[], 80, Protocol::Tcp).unwrap();
        assert_eq!(numeric[0].port, Some(8081));
        let udp = service_backends(&service(json!(8081)), &slices, &[], 53, Protocol::Udp).unwrap();
        assert_eq!(udp[0].port, Some(53), "no targetPort: the service port");
        let e = service_backends(&service(json!(8081)), &slices, &[], 81, Protocol::Tcp).unwrap_err().to_string();
        assert!(e.contains("service default/web has no port 81/TCP (its ports: 80/TCP, 53/UDP)"), "{e}");
        let e = service_backends(&service(json!(8081)), &slices, &[], 53, Protocol::Tcp).unwrap_err().to_string();
        assert!(e.contains("no port 53/TCP"), "{e}");
    }

    #[test]
    fn a_source_pod_must_exist_and_have_an_address() {
        let objs = Objects { namespaces: vec![], pods: vec![pod("x", "pending", None, json!([]))], policies: vec![], service: None };
        let args = |from: &str| ExplainArgs { from: from.into(), to: "10.0.0.1".into(), port: 80, protocol: "TCP".into(), state_dir: PathBuf::new() };
        let c = Cluster::default();
        let to = Peer::Ip("10.0.0.1".parse().unwrap());
        let e = report(&args("x/missing"), &Peer::Pod(key("x", "missing")), &to, &objs, &c).unwrap_err().to_string();
        assert!(e.contains("--from: pod x/missing not found"), "{e}");
        let e = report(&args("x/pending"), &Peer::Pod(key("x", "pending")), &to, &objs, &c).unwrap_err().to_string();
        assert!(e.contains("--from: pod x/pending has no IP address yet"), "{e}");
    }

    #[test]
    fn the_source_address_matches_the_destinations_family() {
        let ips: Vec<IpAddr> = vec!["10.244.1.2".parse().unwrap(), "fd00:10:244:1::2".parse().unwrap()];
        assert_eq!(same_family(&ips, "fd00::9".parse().unwrap()), Some(ips[1]));
        assert_eq!(same_family(&ips, "10.0.0.9".parse().unwrap()), Some(ips[0]));
        assert_eq!(same_family(&ips[..1], "fd00::9".parse().unwrap()), None);
    }
}
