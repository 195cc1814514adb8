//! Validation as kube-apiserver does it for each kind: every bad field named, so that a
//! 422 tells the user exactly what to fix. Runs after defaulting.

mod cluster;
mod config;
mod crd;
mod endpoints;
mod meta;
pub mod names;
mod networking;
mod pod;
mod service;
mod workloads;

use crate::{FieldError, GroupKind};
use serde_json::Value;

/// Validates `obj` for create (`old` = None) or update (`old` = the stored object).
pub fn validate(gk: &GroupKind, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(gk, obj, old);
    errs.extend(match (gk.group.as_str(), gk.kind.as_str()) {
        ("", "Pod") => pod::validate_pod(obj, old),
        ("apps", "Deployment") => workloads::validate_deployment(obj, old),
        ("apps", "ReplicaSet") => workloads::validate_replica_set(obj, old),
        ("", "Service") => service::validate_service(obj, old),
        ("", "Endpoints") => endpoints::validate_endpoints(obj, old),
        ("discovery.k8s.io", "EndpointSlice") => endpoints::validate_endpoint_slice(obj, old),
        ("networking.k8s.io", "NetworkPolicy") => networking::validate_network_policy(obj, old),
        ("networking.k8s.io", "Ingress") => networking::validate_ingress(obj, old),
        ("networking.k8s.io", "IngressClass") => networking::validate_ingress_class(obj, old),
        ("", "ConfigMap") => config::validate_config_map(obj, old),
        ("", "Secret") => config::validate_secret(obj, old),
        ("", "ServiceAccount") => config::validate_service_account(obj, old),
        ("", "Namespace") => cluster::validate_namespace(obj, old),
        ("", "Node") => cluster::validate_node(obj, old),
        ("", "Event") => cluster::validate_event(obj, old),
        ("coordination.k8s.io", "Lease") => cluster::validate_lease(obj, old),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd::validate_crd(obj, old),
        _ => Vec::new(),
    });
    errs
}
