//! `weft service-rules <namespace>/<service>`: for one service, the plan the proxy
//! computes on each node (addresses captured, endpoints chosen per policy, affinity,
//! masquerade) and whether the node's `inet weft-proxy` table matches it, read back from
//! the kernel and compared object by object.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use std::fmt::Write as _;
use std::path::Path;
use weft_kernel::nft::Nft;
use weft_kernel::Netns;
use weft_proxy::apply::Applier;
use weft_proxy::layout::Objects;
use weft_proxy::state::Compiled;
use weft_proxy::{render, NodeContext, ProxyState};

/// The file where `weft up` records the cluster's pod CIDRs (the proxy's view of "pods").
pub fn pod_cidrs_file(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("pod-cidrs")
}

fn describe(c: &Compiled, out: &mut String) {
    let p = &c.port;
    let fam = match p.family {
        weft_proxy::Family::V4 => "IPv4",
        weft_proxy::Family::V6 => "IPv6",
    };
    let _ = writeln!(out, "  port {} ({fam}) {}:{}{}", p.name, p.cluster_ip, p.port, if p.node_port != 0 { format!(", nodePort {}", p.node_port) } else { String::new() });
    let r = &c.rules;
    for (a, proto, port, v) in r.service_ips.iter().chain(&r.no_endpoint_ips) {
        let _ = writeln!(out, "    {a}:{port}/{} -> {v}", proto.as_str());
    }
    for (proto, port, v) in r.nodeports.iter().chain(&r.no_endpoint_nodeports) {
        let _ = writeln!(out, "    node addresses :{port}/{} -> {v}", proto.as_str());
    }
    for (a, proto, port, v) in &r.firewall_ips {
        let _ = writeln!(out, "    firewall {a}:{port}/{} -> {v}", proto.as_str());
    }
    for (name, rules) in &r.chains {
        let _ = writeln!(out, "    chain {name}:");
        for rule in rules {
            let _ = writeln!(out, "      {rule}");
        }
    }
    if let Some((port, local)) = r.health_check {
        let _ = writeln!(out, "    healthCheckNodePort {port}: {local} local endpoint(s)");
    }
}

/// Differences between what should be in the kernel and what is, one line each.
fn compare(want: &Objects, got: &Objects) -> Vec<String> {
    let mut out = Vec::new();
    for (name, c) in &want.chains {
        match got.chains.get(name) {
            None => out.push(format!("chain {name} is missing")),
            Some(g) if g.rules != c.rules => out.push(format!("chain {name} has {} rule(s) that differ from the {} planned", g.rules.len(), c.rules.len())),
            Some(_) => {}
        }
    }
    for (set, elems) in &want.elements {
        let have = got.elements.get(set);
        for (k, e) in elems {
            match have.and_then(|h| h.get(k)) {
                None => out.push(format!("map {set}: element {k:?} is missing")),
                Some(g) if g.data != e.data => out.push(format!("map {set}: element {k:?} maps to {:?}, planned {:?}", g.data, e.data)),
                Some(_) => {}
            }
        }
    }
    for (set, elems) in &got.elements {
        for k in elems.keys() {
            if !want.elements.get(set).is_some_and(|w| w.contains_key(k)) {
                out.push(format!("map {set}: element {k:?} is not planned"));
            }
        }
    }
    out
}

fn check_node(netns: &Path, c: &Compiled) -> Result<(Option<u32>, Vec<String>)> {
    let ns = Netns::open(netns).with_context(|| format!("opening the node's netns {}", netns.display()))?;
    let mut nft = Nft::open(&ns)?;
    let id = Applier::recorded_id(&mut nft, c).unwrap_or_default();
    let want = render::service(&c.port, &c.rules, id.unwrap_or(0));
    let got = Applier::read_back(&mut nft, &want, id)?;
    Ok((id, compare(&want, &got)))
}

pub fn run(state_dir: &Path, target: &str, namespace: Option<String>) -> Result<()> {
    let (ns, name) = match target.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (namespace.unwrap_or_else(|| "default".into()), target.to_string()),
    };
    let cidrs: Vec<ipnet::IpNet> = std::fs::read_to_string(pod_cidrs_file(state_dir))
        .with_context(|| format!("reading {} (is weft up running on {}?)", pod_cidrs_file(state_dir).display(), state_dir.display()))?
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (svc, slices, nodes) = rt.block_on(async {
        let client = crate::up::client_for(&state_dir.join("kubeconfig")).await?;
        let svc = Api::<Service>::namespaced(client.clone(), &ns).get_opt(&name).await?.with_context(|| format!("service {ns}/{name} not found: check the name with `kubectl get services -n {ns}`"))?;
        let slices = Api::<EndpointSlice>::namespaced(client.clone(), &ns).list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}"))).await?.items;
        let nodes: Vec<String> = Api::<k8s_openapi::api::core::v1::Node>::all(client).list(&ListParams::default()).await?.items.into_iter().filter_map(|n| n.metadata.name).collect();
        Ok::<_, anyhow::Error>((svc, slices, nodes))
    })?;
    let mut out = String::new();
    let mut all_match = true;
    for node in &nodes {
        let mut st = ProxyState::new(NodeContext { node_name: node.clone(), pod_cidrs: cidrs.clone(), masquerade_all: false });
        st.apply_service(&svc);
        for s in &slices {
            st.apply_slice(s);
        }
        st.flush();
        let ports = st.service(&ns, &name);
        let _ = writeln!(out, "node {node}:");
        if ports.is_empty() {
            let _ = writeln!(out, "  no proxy rules (headless, ExternalName, or no cluster IP yet)");
        }
        for c in ports {
            describe(c, &mut out);
            match check_node(&state_dir.join("netns").join(node), c) {
                Ok((id, diffs)) if diffs.is_empty() => {
                    let _ = writeln!(out, "    kernel: matches{}", id.map(|i| format!(" (service id {i})")).unwrap_or_default());
                }
                Ok((_, diffs)) => {
                    all_match = false;
                    let _ = writeln!(out, "    kernel: DIFFERS from the plan:");
                    for d in diffs {
                        let _ = writeln!(out, "      {d}");
                    }
                }
                Err(e) => {
                    all_match = false;
                    let _ = writeln!(out, "    kernel: cannot read: {e:#}");
                }
            }
        }
    }
    print!("{out}");
    anyhow::ensure!(all_match, "the kernel does not match the plan for {ns}/{name} on every node (the proxy may still be catching up; run again)");
    Ok(())
}
