//! networking.k8s.io: NetworkPolicy, Ingress, IngressClass.

use super::age::age;
use super::labels::format_label_selector;
use super::service::load_balancer_addresses;
use super::{age_column, arr_at, name_column, str_at, Column};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub(super) fn network_policy_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new("Pod-Selector", "string", "The pods the policy applies to."),
        age_column(),
    ]
}

pub(super) fn network_policy_row(np: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // podSelector is not optional: an absent one is the empty selector, i.e. all pods.
    let empty = json!({});
    let selector = np
        .pointer("/spec/podSelector")
        .filter(|v| !v.is_null())
        .unwrap_or(&empty);
    vec![
        json!(crate::meta::name(np)),
        json!(format_label_selector(Some(selector))),
        json!(age(np, now)),
    ]
}

pub(super) fn ingress_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "Class",
            "string",
            "The IngressClass that implements this ingress.",
        ),
        Column::new("Hosts", "string", "The hosts the ingress rules match."),
        Column::new(
            "Address",
            "string",
            "Where the load balancer for this ingress is reachable.",
        ),
        Column::new(
            "Ports",
            "string",
            "The ports the ingress serves: 80, and 443 with TLS.",
        ),
        age_column(),
    ]
}

pub(super) fn ingress_row(ing: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let class = ing
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let ports = if arr_at(ing, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        json!(crate::meta::name(ing)),
        json!(class),
        json!(hosts(arr_at(ing, "/spec/rules"))),
        json!(load_balancer_addresses(ing.pointer("/status/loadBalancer")).join(",")),
        json!(ports),
        json!(age(ing, now)),
    ]
}

/// The rules' hosts, `*` when none names a host. Like upstream, collection stops at three
/// hosts, and the "more" count is of all further rules, with a host or not.
fn hosts(rules: &[Value]) -> String {
    const SHOWN: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == SHOWN {
            more = true;
        }
        let host = str_at(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host.to_string());
        }
    }
    if list.is_empty() {
        "*".into()
    } else if more {
        format!("{} + {} more...", list.join(","), rules.len() - SHOWN)
    } else {
        list.join(",")
    }
}

pub(super) fn ingress_class_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "Controller",
            "string",
            "The controller that implements ingresses of this class.",
        ),
        Column::new(
            "Parameters",
            "string",
            "The resource holding the controller's extra configuration.",
        ),
        age_column(),
    ]
}

pub(super) fn ingress_class_row(class: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match class.pointer("/spec/parameters").filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut kind = str_at(p, "/kind").to_string();
            if let Some(group) = p.get("apiGroup").and_then(Value::as_str) {
                kind = format!("{kind}.{group}");
            }
            format!("{kind}/{}", str_at(p, "/name"))
        }
    };
    vec![
        json!(crate::meta::name(class)),
        json!(str_at(class, "/spec/controller")),
        json!(parameters),
        json!(age(class, now)),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;

    #[test]
    fn network_policy_shows_its_pod_selector() {
        let np = json!({"metadata": {"name": "allow-web", "creationTimestamp": ago(2 * 86400)},
                        "spec": {"podSelector": {"matchLabels": {"app": "web"},
                                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]},
                                 "policyTypes": ["Ingress"]}});
        assert_eq!(
            network_policy_row(&np, now()),
            vec![
                json!("allow-web"),
                json!("app=web,tier in (front)"),
                json!("2d")
            ]
        );
    }

    #[test]
    fn network_policy_selecting_all_pods_shows_none() {
        let np = json!({"metadata": {"name": "default-deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
        assert_eq!(network_policy_row(&np, now())[1], json!("<none>"));
        let bare = json!({"metadata": {"name": "default-deny"}, "spec": {}});
        assert_eq!(network_policy_row(&bare, now())[1], json!("<none>"));
    }

    #[test]
    fn ingress_shows_class_hosts_address_and_tls_ports() {
        let ing = json!({
            "metadata": {"name": "shop", "creationTimestamp": ago(300)},
            "spec": {"ingressClassName": "weft",
                     "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                     "rules": [{"host": "shop.example.com"}, {"host": "api.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}, {"hostname": "lb.example.com"}]}}
        });
        assert_eq!(
            ingress_row(&ing, now()),
            vec![
                json!("shop"),
                json!("weft"),
                json!("shop.example.com,api.example.com"),
                json!("192.0.2.7,lb.example.com"),
                json!("80, 443"),
                json!("5m")
            ]
        );
    }

    #[test]
    fn ingress_without_class_hosts_or_status_shows_defaults() {
        let ing = json!({"metadata": {"name": "catch-all"},
                         "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}});
        let c = ingress_row(&ing, now());
        assert_eq!(
            c[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
    }

    #[test]
    fn ingress_with_many_hosts_lists_three_and_counts_the_rest() {
        let rules: Vec<Value> = (1..=5)
            .map(|i| json!({"host": format!("h{i}.example.com")}))
            .collect();
        let ing = json!({"metadata": {"name": "many"}, "spec": {"rules": rules}});
        assert_eq!(
            ingress_row(&ing, now())[2],
            json!("h1.example.com,h2.example.com,h3.example.com + 2 more...")
        );
    }

    #[test]
    fn ingress_hosts_skip_rules_without_host() {
        let ing = json!({"metadata": {"name": "mixed"}, "spec": {"rules": [{}, {}, {}, {"host": "a.example.com"}]}});
        assert_eq!(ingress_row(&ing, now())[2], json!("a.example.com"));
    }

    #[test]
    fn ingress_class_shows_controller_and_qualified_parameters() {
        let class = json!({"metadata": {"name": "weft", "creationTimestamp": ago(86400)},
                           "spec": {"controller": "weft.dev/ingress",
                                    "parameters": {"apiGroup": "weft.dev", "kind": "IngressParameters", "name": "default"}}});
        assert_eq!(
            ingress_class_row(&class, now()),
            vec![
                json!("weft"),
                json!("weft.dev/ingress"),
                json!("IngressParameters.weft.dev/default"),
                json!("24h")
            ]
        );
        let plain =
            json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}});
        assert_eq!(ingress_class_row(&plain, now())[2], json!("<none>"));
    }
}
