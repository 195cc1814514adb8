//! Services: TYPE, CLUSTER-IP, EXTERNAL-IP (per type) and PORT(S).

use super::age::age;
use super::labels::format_labels;
use super::{age_column, arr_at, int_at, name_column, str_at, Column};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub(super) fn columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "Type",
            "string",
            "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.",
        ),
        Column::new(
            "Cluster-IP",
            "string",
            "The service's virtual IP inside the cluster, or None for a headless service.",
        ),
        Column::new(
            "External-IP",
            "string",
            "Addresses the service is reachable on from outside the cluster.",
        ),
        Column::new(
            "Port(s)",
            "string",
            "Service ports, with the node port after a colon.",
        ),
        age_column(),
        Column::new(
            "Selector",
            "string",
            "The labels of the pods that back the service.",
        )
        .wide(),
    ]
}

pub(super) fn row(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cluster_ip = arr_at(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| str_at(svc, "/spec/clusterIP"));
    let ports = port_string(arr_at(svc, "/spec/ports"));
    vec![
        json!(crate::meta::name(svc)),
        json!(service_type(svc)),
        json!(if cluster_ip.is_empty() {
            "<none>"
        } else {
            cluster_ip
        }),
        json!(external_ip(svc)),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports
        }),
        json!(age(svc, now)),
        json!(format_labels(svc.pointer("/spec/selector"))),
    ]
}

/// The type; ClusterIP when unset, as defaulting makes it.
fn service_type(svc: &Value) -> &str {
    match str_at(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    }
}

/// EXTERNAL-IP: the external IPs for ClusterIP and NodePort services, the load balancer's
/// addresses (or `<pending>` until it has some) for LoadBalancer, the DNS name for
/// ExternalName.
fn external_ip(svc: &Value) -> String {
    let external: Vec<&str> = arr_at(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match service_type(svc) {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".into(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut all = load_balancer_addresses(svc.pointer("/status/loadBalancer"));
            all.extend(external.iter().map(|s| s.to_string()));
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").into(),
        _ => "<unknown>".into(),
    }
}

/// The distinct IPs (or, failing an IP, hostnames) of a load balancer status, sorted.
/// Not clipped: the apiserver always prints the wide form.
pub(super) fn load_balancer_addresses(status: Option<&Value>) -> Vec<String> {
    let ingress = status.map(|s| arr_at(s, "/ingress")).unwrap_or(&[]);
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| match (str_at(i, "/ip"), str_at(i, "/hostname")) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    set.into_iter().map(String::from).collect()
}

/// `80/TCP`, or `80:30080/TCP` when a node port is allocated, comma-joined.
fn port_string(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let port = int_at(p, "/port");
            let proto = match str_at(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            match int_at(p, "/nodePort") {
                n if n > 0 => format!("{port}:{n}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;

    fn svc(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(600)},
               "spec": spec, "status": status})
    }

    #[test]
    fn cluster_ip_service_shows_none_external_and_its_selector() {
        let s = svc(
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "selector": {"app": "web", "tier": "front"},
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                             {"name": "dns", "port": 53, "protocol": "UDP"}]}),
            json!({}),
        );
        assert_eq!(
            row(&s, now()),
            vec![
                json!("web"),
                json!("ClusterIP"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80/TCP,53/UDP"),
                json!("10m"),
                json!("app=web,tier=front")
            ]
        );
    }

    #[test]
    fn node_port_service_shows_port_colon_node_port() {
        let s = svc(
            json!({"type": "NodePort", "clusterIPs": ["10.96.4.2"],
                   "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 443, "nodePort": 30443}]}),
            json!({}),
        );
        let c = row(&s, now());
        assert_eq!(c[1], json!("NodePort"));
        assert_eq!(c[3], json!("<none>"));
        assert_eq!(c[4], json!("80:30080/TCP,443:30443/TCP"));
    }

    #[test]
    fn node_port_service_lists_its_external_ips() {
        let s = svc(
            json!({"type": "NodePort", "externalIPs": ["192.0.2.10", "192.0.2.11"], "ports": [{"port": 80}]}),
            json!({}),
        );
        assert_eq!(row(&s, now())[3], json!("192.0.2.10,192.0.2.11"));
    }

    #[test]
    fn load_balancer_without_status_is_pending() {
        let s = svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.96.7.7"],
                           "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
            json!({"loadBalancer": {}}),
        );
        let c = row(&s, now());
        assert_eq!(c[3], json!("<pending>"));
        assert_eq!(c[4], json!("443:31443/TCP"));
    }

    #[test]
    fn load_balancer_shows_sorted_distinct_ingress_then_external_ips() {
        let s = svc(
            json!({"type": "LoadBalancer", "externalIPs": ["192.0.2.50"], "ports": [{"port": 80}]}),
            json!({"loadBalancer": {"ingress": [
                {"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.5"}, {"ip": "203.0.113.9"}]}}),
        );
        assert_eq!(
            row(&s, now())[3],
            json!("203.0.113.5,203.0.113.9,lb.example.com,192.0.2.50")
        );
    }

    #[test]
    fn headless_service_shows_none_cluster_ip_and_no_ports() {
        let s = svc(
            json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"}}),
            json!({}),
        );
        let c = row(&s, now());
        assert_eq!(c[2], json!("None"));
        assert_eq!(c[4], json!("<none>"));
    }

    #[test]
    fn external_name_service_shows_the_dns_name_and_no_cluster_ip() {
        let s = svc(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        );
        let c = row(&s, now());
        assert_eq!(c[2], json!("<none>"));
        assert_eq!(c[3], json!("db.example.com"));
        assert_eq!(c[6], json!("<none>"));
    }

    #[test]
    fn service_without_type_prints_as_cluster_ip() {
        let s = svc(
            json!({"clusterIP": "10.96.0.1", "ports": [{"port": 443}]}),
            json!({}),
        );
        let c = row(&s, now());
        assert_eq!(c[1], json!("ClusterIP"));
        assert_eq!(c[2], json!("10.96.0.1"));
        assert_eq!(c[4], json!("443/TCP"));
    }
}
