//! Defaulting as kube-apiserver does it for each kind, applied before validation
//! (plus what its always-on admission plugins add, such as a pod's service account).

mod cluster;
mod config;
mod crd;
mod endpoints;
mod networking;
mod pod;
mod service;
mod service_type_change;
mod workloads;

pub use service_type_change::drop_type_dependent_fields;

use crate::GroupKind;
use serde_json::Value;

/// Fills the fields that kube-apiserver fills for `gk` on create and update.
pub fn apply_defaults(gk: &GroupKind, obj: &mut Value) {
    match (gk.group.as_str(), gk.kind.as_str()) {
        ("", "Pod") => pod::default_pod(obj),
        ("apps", "Deployment") => workloads::default_deployment(obj),
        ("apps", "ReplicaSet") => workloads::default_replica_set(obj),
        ("", "Service") => service::default_service(obj),
        ("", "Endpoints") => endpoints::default_endpoints(obj),
        ("discovery.k8s.io", "EndpointSlice") => endpoints::default_endpoint_slice(obj),
        ("networking.k8s.io", "NetworkPolicy") => networking::default_network_policy(obj),
        ("networking.k8s.io", "Ingress") => networking::default_ingress(obj),
        ("networking.k8s.io", "IngressClass") => networking::default_ingress_class(obj),
        ("", "Secret") => config::default_secret(obj),
        ("", "Namespace") => cluster::default_namespace(obj),
        ("", "Node") => cluster::default_node(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd::default_crd(obj),
        _ => {}
    }
}
