//! Patch metadata of the built-in kinds: how each list merges under strategic merge patch
//! (the Go struct tags `patchStrategy` / `patchMergeKey`) and under server-side apply (the
//! OpenAPI `x-kubernetes-list-type` / `x-kubernetes-list-map-keys`), as in Kubernetes 1.33.
//!
//! Fields are named by their path of field names from the object root; list items add no
//! segment, so a container's ports are `spec.template.spec.containers.ports`. Anything not
//! listed is a plain field: maps merge key by key, lists are atomic.

use crate::GroupKind;

/// How strategic merge patch combines a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchStrategy {
    /// A list of maps merged item by item on `key`.
    Merge { key: &'static str },
    /// A list of scalars unioned (`metadata.finalizers`).
    MergePrimitive,
    /// Replaced whole (no `patchStrategy` tag).
    Replace,
}

/// One key of an associative list, with the default server-side apply assumes when an item
/// omits it (a port's `protocol` is `TCP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListKey {
    pub name: &'static str,
    pub default: Option<&'static str>,
}

/// How server-side apply identifies list items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// `x-kubernetes-list-type: map`: items are identified by these keys.
    Map(&'static [ListKey]),
    /// `x-kubernetes-list-type: set`: scalar items identified by value.
    Set,
    /// `x-kubernetes-list-type: atomic` (and the default): the list is one value.
    Atomic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldMeta {
    pub strategy: PatchStrategy,
    /// `patchStrategy:"retainKeys"`: a patch may carry `$retainKeys` for this map (or for
    /// each item of this list) to clear the fields of a union it switches away from.
    pub retain_keys: bool,
    pub list_type: ListType,
    /// `x-kubernetes-map-type: atomic` / `+structType=atomic`: server-side apply owns the
    /// map as one value (label selectors, `nodeSelector`, a Service's `selector`).
    pub atomic_map: bool,
}

impl FieldMeta {
    /// A field with no metadata.
    pub const PLAIN: FieldMeta =
        FieldMeta { strategy: PatchStrategy::Replace, retain_keys: false, list_type: ListType::Atomic, atomic_map: false };

    const fn merge(key: &'static str, keys: &'static [ListKey]) -> Self {
        FieldMeta { strategy: PatchStrategy::Merge { key }, retain_keys: false, list_type: ListType::Map(keys), atomic_map: false }
    }
    /// Strategic merge by `key` while server-side apply keeps the list atomic.
    const fn merge_smp_only(key: &'static str) -> Self {
        FieldMeta { strategy: PatchStrategy::Merge { key }, retain_keys: false, list_type: ListType::Atomic, atomic_map: false }
    }
    /// A list map for server-side apply that strategic merge replaces whole.
    const fn map_ssa_only(keys: &'static [ListKey]) -> Self {
        FieldMeta { strategy: PatchStrategy::Replace, retain_keys: false, list_type: ListType::Map(keys), atomic_map: false }
    }
    const fn set() -> Self {
        FieldMeta { strategy: PatchStrategy::MergePrimitive, retain_keys: false, list_type: ListType::Set, atomic_map: false }
    }
    const fn retain_keys(self) -> Self {
        FieldMeta { retain_keys: true, ..self }
    }
    const fn atomic_map() -> Self {
        FieldMeta { atomic_map: true, ..FieldMeta::PLAIN }
    }
}

const fn key(name: &'static str) -> ListKey {
    ListKey { name, default: None }
}

const NAME: &[ListKey] = &[key("name")];
const TYPE: &[ListKey] = &[key("type")];
const IP: &[ListKey] = &[key("ip")];
const UID: &[ListKey] = &[key("uid")];
const MOUNT_PATH: &[ListKey] = &[key("mountPath")];
const DEVICE_PATH: &[ListKey] = &[key("devicePath")];
const CONTAINER_PORT: &[ListKey] = &[key("containerPort"), ListKey { name: "protocol", default: Some("TCP") }];
const SERVICE_PORT: &[ListKey] = &[key("port"), ListKey { name: "protocol", default: Some("TCP") }];
const TOPOLOGY_SPREAD: &[ListKey] = &[key("topologyKey"), key("whenUnsatisfiable")];

/// The metadata of the field at `path` (field names from the object root) in kind `gk`.
pub fn field_meta<S: AsRef<str>>(gk: &GroupKind, path: &[S]) -> FieldMeta {
    let p: Vec<&str> = path.iter().map(|s| s.as_ref()).collect();
    if let ["metadata", rest @ ..] = p.as_slice() {
        return object_meta(rest);
    }
    match (gk.group.as_str(), gk.kind.as_str()) {
        ("", "Pod") => match p.as_slice() {
            ["spec", rest @ ..] => pod_spec(rest),
            ["status", rest @ ..] => pod_status(rest),
            _ => FieldMeta::PLAIN,
        },
        ("apps", "Deployment") | ("apps", "ReplicaSet") => match p.as_slice() {
            ["spec", "template", "metadata", rest @ ..] => object_meta(rest),
            ["spec", "template", "spec", rest @ ..] => pod_spec(rest),
            ["spec", "selector"] => FieldMeta::atomic_map(),
            ["spec", "strategy"] if gk.kind == "Deployment" => FieldMeta::PLAIN.retain_keys(),
            ["status", "conditions"] => FieldMeta::merge("type", TYPE),
            _ => FieldMeta::PLAIN,
        },
        ("", "Service") => match p.as_slice() {
            ["spec", "ports"] => FieldMeta::merge("port", SERVICE_PORT),
            ["spec", "selector"] => FieldMeta::atomic_map(),
            ["status", "conditions"] => FieldMeta::merge("type", TYPE),
            _ => FieldMeta::PLAIN,
        },
        ("", "Node") => match p.as_slice() {
            ["spec", "podCIDRs"] => FieldMeta::set(),
            ["status", "addresses"] => FieldMeta::merge("type", TYPE),
            ["status", "conditions"] => FieldMeta::merge("type", TYPE),
            _ => FieldMeta::PLAIN,
        },
        ("", "Namespace") => match p.as_slice() {
            ["status", "conditions"] => FieldMeta::merge("type", TYPE),
            _ => FieldMeta::PLAIN,
        },
        ("networking.k8s.io", "NetworkPolicy") => match p.as_slice() {
            ["spec", "podSelector"] => FieldMeta::atomic_map(),
            _ => FieldMeta::PLAIN,
        },
        _ => FieldMeta::PLAIN,
    }
}

/// ObjectMeta, at an object's root and in pod templates.
fn object_meta(p: &[&str]) -> FieldMeta {
    match p {
        ["finalizers"] => FieldMeta::set(),
        ["ownerReferences"] => FieldMeta::merge("uid", UID),
        _ => FieldMeta::PLAIN,
    }
}

/// PodSpec, wherever it appears.
fn pod_spec(p: &[&str]) -> FieldMeta {
    match p {
        ["containers" | "initContainers" | "ephemeralContainers"] => FieldMeta::merge("name", NAME),
        ["containers" | "initContainers" | "ephemeralContainers", rest @ ..] => container(rest),
        ["volumes"] => FieldMeta::merge("name", NAME).retain_keys(),
        ["imagePullSecrets"] => FieldMeta::merge("name", NAME),
        ["hostAliases"] => FieldMeta::merge("ip", IP),
        ["topologySpreadConstraints"] => FieldMeta::merge("topologyKey", TOPOLOGY_SPREAD),
        ["topologySpreadConstraints", "labelSelector"] => FieldMeta::atomic_map(),
        ["schedulingGates"] => FieldMeta::merge("name", NAME),
        ["resourceClaims"] => FieldMeta::merge("name", NAME).retain_keys(),
        ["nodeSelector"] => FieldMeta::atomic_map(),
        // tolerations, readinessGates, dnsConfig lists and the rest are atomic.
        _ => FieldMeta::PLAIN,
    }
}

/// Container and EphemeralContainerCommon.
fn container(p: &[&str]) -> FieldMeta {
    match p {
        ["ports"] => FieldMeta::merge("containerPort", CONTAINER_PORT),
        ["env"] => FieldMeta::merge("name", NAME),
        ["volumeMounts"] => FieldMeta::merge("mountPath", MOUNT_PATH),
        ["volumeDevices"] => FieldMeta::merge("devicePath", DEVICE_PATH),
        ["resources", "claims"] => FieldMeta::map_ssa_only(NAME),
        // envFrom, resizePolicy, command, args are atomic.
        _ => FieldMeta::PLAIN,
    }
}

fn pod_status(p: &[&str]) -> FieldMeta {
    match p {
        ["conditions"] => FieldMeta::merge("type", TYPE),
        ["podIPs"] => FieldMeta::merge("ip", IP),
        ["hostIPs"] => FieldMeta::merge_smp_only("ip"),
        ["resourceClaimStatuses"] => FieldMeta::merge("name", NAME).retain_keys(),
        // containerStatuses and friends carry no tags: atomic in both.
        _ => FieldMeta::PLAIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy() -> GroupKind {
        GroupKind::new("apps", "Deployment")
    }

    #[test]
    fn containers_merge_by_name_in_pods_and_templates() {
        let pod = GroupKind::new("", "Pod");
        assert_eq!(field_meta(&pod, &["spec", "containers"]).strategy, PatchStrategy::Merge { key: "name" });
        assert_eq!(field_meta(&deploy(), &["spec", "template", "spec", "initContainers"]).strategy, PatchStrategy::Merge { key: "name" });
        assert_eq!(field_meta(&deploy(), &["spec", "template", "spec", "containers", "env"]).list_type, ListType::Map(NAME));
    }

    #[test]
    fn container_ports_merge_on_port_but_apply_keys_on_port_and_protocol() {
        let m = field_meta(&deploy(), &["spec", "template", "spec", "containers", "ports"]);
        assert_eq!(m.strategy, PatchStrategy::Merge { key: "containerPort" });
        assert_eq!(m.list_type, ListType::Map(CONTAINER_PORT));
    }

    #[test]
    fn service_ports_and_ip_lists() {
        let svc = GroupKind::new("", "Service");
        assert_eq!(field_meta(&svc, &["spec", "ports"]).strategy, PatchStrategy::Merge { key: "port" });
        assert_eq!(field_meta(&svc, &["spec", "clusterIPs"]), FieldMeta::PLAIN);
        assert_eq!(field_meta(&svc, &["status", "loadBalancer", "ingress"]), FieldMeta::PLAIN);
        assert!(field_meta(&svc, &["spec", "selector"]).atomic_map);
    }

    #[test]
    fn finalizers_are_a_merged_set_everywhere() {
        let cm = GroupKind::new("", "ConfigMap");
        assert_eq!(field_meta(&cm, &["metadata", "finalizers"]).strategy, PatchStrategy::MergePrimitive);
        assert_eq!(field_meta(&cm, &["metadata", "ownerReferences"]).strategy, PatchStrategy::Merge { key: "uid" });
        assert_eq!(field_meta(&cm, &["metadata", "managedFields"]), FieldMeta::PLAIN);
    }

    #[test]
    fn volumes_and_strategy_retain_keys() {
        assert!(field_meta(&deploy(), &["spec", "template", "spec", "volumes"]).retain_keys);
        assert!(field_meta(&deploy(), &["spec", "strategy"]).retain_keys);
        assert!(!field_meta(&GroupKind::new("apps", "ReplicaSet"), &["spec", "strategy"]).retain_keys);
    }

    #[test]
    fn tolerations_taints_and_endpoints_are_atomic() {
        assert_eq!(field_meta(&deploy(), &["spec", "template", "spec", "tolerations"]), FieldMeta::PLAIN);
        assert_eq!(field_meta(&GroupKind::new("", "Node"), &["spec", "taints"]), FieldMeta::PLAIN);
        assert_eq!(field_meta(&GroupKind::new("discovery.k8s.io", "EndpointSlice"), &["endpoints"]), FieldMeta::PLAIN);
    }

    #[test]
    fn node_pod_cidrs_are_a_set_and_addresses_merge_by_type() {
        let node = GroupKind::new("", "Node");
        assert_eq!(field_meta(&node, &["spec", "podCIDRs"]).list_type, ListType::Set);
        assert_eq!(field_meta(&node, &["status", "addresses"]).strategy, PatchStrategy::Merge { key: "type" });
    }
}
