//! A pod's own `/etc/resolv.conf`, `/etc/hosts` and hostname, as the kubelet writes
//! them from `dnsPolicy`, `dnsConfig`, `hostname`/`subdomain` and `hostAliases`.
//! Pure; the runtime bind-mounts the results inside the pod's mount namespace.

use k8s_openapi::api::core::v1::Pod;

#[derive(Debug, Clone)]
pub struct ClusterDns {
    pub nameservers: Vec<String>,
    pub domain: String,
}

impl Default for ClusterDns {
    fn default() -> Self {
        ClusterDns { nameservers: vec!["10.96.0.10".into()], domain: "cluster.local".into() }
    }
}

/// The pod's hostname: `spec.hostname` or the pod name, at most 63 characters.
pub fn hostname(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    let h = spec.and_then(|s| s.hostname.clone()).filter(|h| !h.is_empty()).unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    h.chars().take(63).collect::<String>().trim_end_matches(['-', '.']).to_string()
}

/// resolv.conf for the pod; `host_resolv` is the node's own file (for `Default`).
pub fn resolv_conf(pod: &Pod, cluster: &ClusterDns, host_resolv: &str) -> String {
    let spec = pod.spec.as_ref();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let host_net = spec.and_then(|s| s.host_network).unwrap_or(false);
    let policy = spec.and_then(|s| s.dns_policy.clone()).unwrap_or_else(|| "ClusterFirst".into());
    let (mut servers, mut search, mut options): (Vec<String>, Vec<String>, Vec<(String, Option<String>)>) = match policy.as_str() {
        "None" => (vec![], vec![], vec![]),
        "ClusterFirst" if host_net => parse_resolv(host_resolv),
        "Default" => parse_resolv(host_resolv),
        _ => {
            let d = &cluster.domain;
            (cluster.nameservers.clone(), vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()], vec![("ndots".into(), Some("5".into()))])
        }
    };
    if let Some(cfg) = spec.and_then(|s| s.dns_config.as_ref()) {
        for s in cfg.nameservers.iter().flatten() {
            if !servers.contains(s) {
                servers.push(s.clone());
            }
        }
        for s in cfg.searches.iter().flatten() {
            if !search.contains(s) {
                search.push(s.clone());
            }
        }
        for o in cfg.options.iter().flatten() {
            let name = o.name.clone().unwrap_or_default();
            options.retain(|(n, _)| n != &name);
            options.push((name, o.value.clone()));
        }
    }
    let mut out = String::new();
    for s in servers.iter().take(3) {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.iter().take(32).cloned().collect::<Vec<_>>().join(" ")));
    }
    if !options.is_empty() {
        let opts: Vec<String> = options.iter().map(|(n, v)| v.as_ref().map(|v| format!("{n}:{v}")).unwrap_or_else(|| n.clone())).collect();
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

type Resolv = (Vec<String>, Vec<String>, Vec<(String, Option<String>)>);

fn parse_resolv(s: &str) -> Resolv {
    let (mut servers, mut search, mut options) = (vec![], vec![], vec![]);
    for line in s.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => servers.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(|w| match w.split_once(':') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (w.to_string(), None),
            })),
            _ => {}
        }
    }
    (servers, search, options)
}

/// /etc/hosts for a pod with its own network; `ips` are the pod's addresses.
pub fn hosts(pod: &Pod, ips: &[String], domain: &str) -> String {
    let spec = pod.spec.as_ref();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let h = hostname(pod);
    let mut out = String::from("# Kubernetes-managed hosts file (weft).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n");
    let names = match spec.and_then(|s| s.subdomain.clone()).filter(|s| !s.is_empty()) {
        Some(sub) => format!("{h}.{sub}.{ns}.svc.{domain}\t{h}"),
        None => h.clone(),
    };
    for ip in ips {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    let aliases: Vec<_> = spec.and_then(|s| s.host_aliases.clone()).unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            out.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.unwrap_or_default().join("\t")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c"}]);
        serde_json::from_value(json!({"metadata": {"name": "web-0", "namespace": "shop"}, "spec": spec})).unwrap()
    }

    #[test]
    fn cluster_first_points_at_cluster_dns_with_the_search_path() {
        let r = resolv_conf(&pod(json!({})), &ClusterDns::default(), "nameserver 1.1.1.1\n");
        assert_eq!(r, "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n");
    }

    #[test]
    fn default_policy_and_host_network_use_the_nodes_file() {
        let host = "nameserver 192.0.2.53\nsearch example.org\n";
        assert_eq!(resolv_conf(&pod(json!({"dnsPolicy": "Default"})), &ClusterDns::default(), host), "nameserver 192.0.2.53\nsearch example.org\n");
        assert_eq!(resolv_conf(&pod(json!({"hostNetwork": true})), &ClusterDns::default(), host), "nameserver 192.0.2.53\nsearch example.org\n");
        let r = resolv_conf(&pod(json!({"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"})), &ClusterDns::default(), host);
        assert!(r.starts_with("nameserver 10.96.0.10\n"), "{r}");
    }

    #[test]
    fn none_policy_takes_dns_config_only_and_options_merge() {
        let p = pod(json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["192.0.2.1"], "searches": ["a.example"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}));
        assert_eq!(resolv_conf(&p, &ClusterDns::default(), ""), "nameserver 192.0.2.1\nsearch a.example\noptions ndots:2 edns0\n");
        let p = pod(json!({"dnsConfig": {"options": [{"name": "ndots", "value": "1"}]}}));
        assert!(resolv_conf(&p, &ClusterDns::default(), "").ends_with("options ndots:1\n"));
    }

    #[test]
    fn hosts_names_the_pod_with_its_subdomain_and_aliases() {
        let p = pod(json!({"hostname": "db", "subdomain": "backend", "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}]}));
        let h = hosts(&p, &["10.244.1.7".into()], "cluster.local");
        assert!(h.contains("10.244.1.7\tdb.backend.shop.svc.cluster.local\tdb\n"), "{h}");
        assert!(h.contains("10.1.2.3\tfoo.local\tbar.local\n"), "{h}");
        assert_eq!(hostname(&p), "db");
        assert_eq!(hostname(&pod(json!({}))), "web-0");
    }
}
