//! `weft explain`: the verdict for one connection in words, from the same model the
//! enforcer is compiled from.

use crate::evaluate::{Query, RuleRef, Side};
use crate::model::Cluster;
use std::fmt::Write;
use std::net::IpAddr;

/// A human report: source and destination, protocol/port, the verdict, and for each
/// direction the policy and rule that decide it (or that the pod is not isolated).
pub fn explain(cluster: &Cluster, q: &Query) -> String {
    let v = cluster.evaluate(q);
    let mut out = String::new();
    let src = endpoint(cluster, q.src);
    let dst = endpoint(cluster, q.dst);
    let verdict = if v.allowed() { "ALLOWED" } else { "DENIED" };
    let _ = writeln!(out, "{src} -> {dst} {}/{}: {verdict}", q.protocol.as_str(), q.port);
    let _ = writeln!(out, "egress of {src}:");
    side(cluster, &mut out, &v.egress, true);
    let _ = writeln!(out, "ingress of {dst}:");
    side(cluster, &mut out, &v.ingress, false);
    out
}

/// `x/a (10.244.1.5)`, or `203.0.113.9 (outside the cluster)`.
pub fn endpoint(cluster: &Cluster, ip: IpAddr) -> String {
    match cluster.pod_by_ip(ip) {
        Some(p) => format!("{} ({ip})", p.key),
        None => match cluster.pods().find(|p| p.host_network && p.ips.contains(&ip)) {
            Some(p) => format!("{ip} (hostNetwork pod {}, not subject to policy)", p.key),
            None => format!("{ip} (outside the cluster)"),
        },
    }
}

/// `x/allow-from-b ingress[0]: from podSelector pod=b; ports TCP/80`.
pub fn describe_rule(cluster: &Cluster, r: &RuleRef) -> String {
    let dir = if r.egress { "egress" } else { "ingress" };
    let rule = cluster.policy(&r.namespace, &r.policy).and_then(|p| p.rules(r.egress)).and_then(|rules| rules.get(r.index));
    match rule {
        Some(rule) => format!("{}/{} {dir}[{}]: {}", r.namespace, r.policy, r.index, rule.describe(r.egress)),
        None => format!("{}/{} {dir}[{}]: (no longer in the model)", r.namespace, r.policy, r.index),
    }
}

fn side(cluster: &Cluster, out: &mut String, s: &Side, egress: bool) {
    let dir = if egress { "egress" } else { "ingress" };
    match s {
        Side::NotAPod => {
            let _ = writeln!(out, "  allowed: not a pod that policy applies to");
        }
        Side::NotIsolated => {
            let _ = writeln!(out, "  allowed: no policy selects the pod for {dir} (not isolated)");
        }
        Side::Allowed { by } => {
            let _ = writeln!(out, "  allowed by:");
            for r in by {
                let _ = writeln!(out, "    {}", describe_rule(cluster, r));
            }
        }
        Side::Denied { isolated_by } => {
            let names: Vec<String> = isolated_by.iter().map(|(ns, n)| format!("{ns}/{n}")).collect();
            let _ = writeln!(out, "  denied: isolated for {dir} by {}, and no rule of theirs matches:", names.join(", "));
            for (ns, name) in isolated_by {
                let rules = cluster.policy(ns, name).and_then(|p| p.rules(egress)).unwrap_or_default();
                if rules.is_empty() {
                    let _ = writeln!(out, "    {ns}/{name}: no {dir} rules (denies all {dir})");
                }
                for index in 0..rules.len() {
                    let r = RuleRef { namespace: ns.clone(), policy: name.clone(), egress, index };
                    let _ = writeln!(out, "    {}", describe_rule(cluster, &r));
                }
            }
        }
    }
}
