//! Cluster-scoped and coordination kinds: Namespace, Node, Lease.

use super::age::age;
use super::{age_column, arr_at, name_column, str_at, Column};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub(super) fn namespace_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "Status",
            "string",
            "The namespace's phase: Active or Terminating.",
        ),
        age_column(),
    ]
}

pub(super) fn namespace_row(ns: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // A namespace is created Active and turns Terminating when deleted; a stored object
    // without a phase is read as the registry would have written it.
    let phase = match str_at(ns, "/status/phase") {
        "" if crate::meta::deletion_timestamp(ns).is_some() => "Terminating",
        "" => "Active",
        p => p,
    };
    vec![
        json!(crate::meta::name(ns)),
        json!(phase),
        json!(age(ns, now)),
    ]
}

pub(super) fn node_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "Status",
            "string",
            "Whether the node is Ready, and whether scheduling on it is disabled.",
        ),
        Column::new(
            "Roles",
            "string",
            "The node's roles, from its node-role labels.",
        ),
        age_column(),
        Column::new("Version", "string", "The kubelet version the node reports."),
        Column::new(
            "Internal-IP",
            "string",
            "The node's first internal address.",
        )
        .wide(),
        Column::new(
            "External-IP",
            "string",
            "The node's first external address.",
        )
        .wide(),
        Column::new(
            "OS-Image",
            "string",
            "The operating system the node reports.",
        )
        .wide(),
        Column::new(
            "Kernel-Version",
            "string",
            "The kernel version the node reports.",
        )
        .wide(),
        Column::new(
            "Container-Runtime",
            "string",
            "The container runtime and version the node reports.",
        )
        .wide(),
    ]
}

pub(super) fn node_row(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut status: Vec<String> = arr_at(node, "/status/conditions")
        .iter()
        .rev() // the last Ready condition wins, as a map keyed by type would have it
        .find(|c| str_at(c, "/type") == "Ready")
        .map(|c| {
            if str_at(c, "/status") == "True" {
                "Ready".into()
            } else {
                "NotReady".into()
            }
        })
        .into_iter()
        .collect();
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        status.push("SchedulingDisabled".into());
    }
    let roles = roles(node);
    let info = |field: &str| match str_at(node, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        json!(crate::meta::name(node)),
        json!(status.join(",")),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles
        }),
        json!(age(node, now)),
        json!(str_at(node, "/status/nodeInfo/kubeletVersion")),
        json!(first_address(node, "InternalIP")),
        json!(first_address(node, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// Roles from `node-role.kubernetes.io/<role>` label keys and the `kubernetes.io/role`
/// label's value, sorted and distinct.
fn roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (key, value) in crate::meta::labels(node).into_iter().flatten() {
        if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if key == "kubernetes.io/role" {
            if let Some(v) = value.as_str().filter(|v| !v.is_empty()) {
                roles.insert(v.to_string());
            }
        }
    }
    roles.into_iter().collect::<Vec<_>>().join(",")
}

fn first_address(node: &Value, kind: &str) -> String {
    arr_at(node, "/status/addresses")
        .iter()
        .find(|a| str_at(a, "/type") == kind)
        .map(|a| str_at(a, "/address").to_string())
        .unwrap_or_else(|| "<none>".into())
}

pub(super) fn lease_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new("Holder", "string", "Who holds the lease now."),
        age_column(),
    ]
}

pub(super) fn lease_row(lease: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(crate::meta::name(lease)),
        json!(str_at(lease, "/spec/holderIdentity")),
        json!(age(lease, now)),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;

    fn node(labels: Value, spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "node-1", "labels": labels, "creationTimestamp": ago(40 * 86400)},
               "spec": spec, "status": status})
    }

    #[test]
    fn ready_control_plane_node_shows_role_version_and_wide_details() {
        let n = node(
            json!({"node-role.kubernetes.io/control-plane": "", "kubernetes.io/hostname": "node-1"}),
            json!({}),
            json!({
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.1.10"},
                              {"type": "InternalIP", "address": "fd00::10"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.13"}
            }),
        );
        assert_eq!(
            node_row(&n, now()),
            vec![
                json!("node-1"),
                json!("Ready"),
                json!("control-plane"),
                json!("40d"),
                json!("v1.32.0"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0-18-amd64"),
                json!("containerd://1.7.13")
            ]
        );
    }

    #[test]
    fn cordoned_not_ready_node_shows_both_and_merges_roles() {
        let n = node(
            json!({"node-role.kubernetes.io/worker": "", "kubernetes.io/role": "edge", "node-role.kubernetes.io/": "x"}),
            json!({"unschedulable": true}),
            json!({"conditions": [{"type": "Ready", "status": "Unknown"}], "addresses": [{"type": "ExternalIP", "address": "203.0.113.4"}]}),
        );
        let c = node_row(&n, now());
        assert_eq!(c[1], json!("NotReady,SchedulingDisabled"));
        assert_eq!(c[2], json!("edge,worker"));
        assert_eq!(c[6], json!("203.0.113.4"));
    }

    #[test]
    fn node_without_status_is_unknown_with_no_roles() {
        let n = json!({"metadata": {"name": "bare"}});
        assert_eq!(
            node_row(&n, now()),
            vec![
                json!("bare"),
                json!("Unknown"),
                json!("<none>"),
                json!("<unknown>"),
                json!(""),
                json!("<none>"),
                json!("<none>"),
                json!("<unknown>"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
    }

    #[test]
    fn namespace_shows_phase() {
        let ns = json!({"metadata": {"name": "shop", "creationTimestamp": ago(30 * 60)}, "status": {"phase": "Active"}});
        assert_eq!(
            namespace_row(&ns, now()),
            vec![json!("shop"), json!("Active"), json!("30m")]
        );
        let deleting = json!({"metadata": {"name": "old", "deletionTimestamp": ago(1)}, "status": {"phase": "Terminating"}});
        assert_eq!(namespace_row(&deleting, now())[1], json!("Terminating"));
    }

    #[test]
    fn namespace_without_phase_reads_active_or_terminating_when_deleted() {
        assert_eq!(
            namespace_row(&json!({"metadata": {"name": "a"}}), now())[1],
            json!("Active")
        );
        let deleting = json!({"metadata": {"name": "b", "deletionTimestamp": ago(1)}});
        assert_eq!(namespace_row(&deleting, now())[1], json!("Terminating"));
    }

    #[test]
    fn lease_shows_holder_or_nothing() {
        let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(100)},
                           "spec": {"holderIdentity": "weft-0_8c1f", "leaseDurationSeconds": 15}});
        assert_eq!(
            lease_row(&lease, now()),
            vec![json!("kube-scheduler"), json!("weft-0_8c1f"), json!("100s")]
        );
        assert_eq!(
            lease_row(&json!({"metadata": {"name": "free"}, "spec": {}}), now())[1],
            json!("")
        );
    }
}
