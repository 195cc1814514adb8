//! The objects of the upstream e2e model (conformance/netpol/README.md section 1), pure:
//! a namespace with its labels; a pod with one agnhost container per (port, protocol)
//! it serves, `cont-<port>-<proto>`, declaring the containerPorts the corpus gives it;
//! and its ClusterIP Service `s-<ns>-<pod>` (port == targetPort, one per container).

use k8s_openapi::api::core::v1::{Container, ContainerPort as K8sPort, EnvVar, Namespace, Pod, PodSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use weft_policy::corpus::replay::NAMESPACE_NAME_LABEL;
use weft_policy::corpus::ContainerPort;
use weft_policy::model::Labels;
use weft_policy::{PodKey, Protocol};

pub const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.53";

/// What every pod serves: each port for each protocol, port first (upstream's order).
pub fn served(ports: &[u16], protocols: &[Protocol]) -> Vec<(u16, Protocol)> {
    ports.iter().flat_map(|p| protocols.iter().map(move |q| (*p, *q))).collect()
}

fn lower(p: Protocol) -> String {
    p.as_str().to_ascii_lowercase()
}

pub fn container_name(port: u16, protocol: Protocol) -> String {
    format!("cont-{port}-{}", lower(protocol))
}

pub fn port_name(port: u16, protocol: Protocol) -> String {
    format!("serve-{port}-{}", lower(protocol))
}

pub fn service_name(pod: &PodKey) -> String {
    format!("s-{}-{}", pod.namespace, pod.name)
}

pub fn namespace(name: &str, labels: &Labels) -> Namespace {
    let mut labels = labels.clone();
    labels.insert(NAMESPACE_NAME_LABEL.into(), name.into());
    Namespace { metadata: ObjectMeta { name: Some(name.into()), labels: Some(labels), ..Default::default() }, ..Default::default() }
}

fn agnhost(port: u16, protocol: Protocol) -> Container {
    let (args, env) = match protocol {
        Protocol::Tcp => (vec!["serve-hostname".to_string(), "--tcp".into(), "--http=false".into(), "--port".into(), port.to_string()], None),
        Protocol::Udp => (vec!["serve-hostname".to_string(), "--udp".into(), "--http=false".into(), "--port".into(), port.to_string()], None),
        Protocol::Sctp => (vec!["porter".to_string()], Some(vec![EnvVar { name: format!("SERVE_SCTP_PORT_{port}"), value: Some("foo".into()), ..Default::default() }])),
    };
    Container { name: container_name(port, protocol), image: Some(AGNHOST.into()), args: Some(args), env, ..Default::default() }
}

/// A model pod: serves every (port, protocol) of `serve`, declares exactly `declared`
/// (on the container serving it; a declared port nothing serves goes on the first).
pub fn pod(key: &PodKey, labels: &Labels, declared: &[ContainerPort], serve: &[(u16, Protocol)]) -> Pod {
    let mut containers: Vec<Container> = serve.iter().map(|(p, q)| agnhost(*p, *q)).collect();
    for d in declared {
        let port = K8sPort { name: d.name.clone(), container_port: d.container_port as i32, protocol: Some(d.protocol.as_str().into()), ..Default::default() };
        let i = serve.iter().position(|(p, q)| *p == d.container_port && *q == d.protocol).unwrap_or(0);
        containers[i].ports.get_or_insert_with(Vec::new).push(port);
    }
    Pod {
        metadata: ObjectMeta { name: Some(key.name.clone()), namespace: Some(key.namespace.clone()), labels: Some(labels.clone()), ..Default::default() },
        spec: Some(PodSpec { containers, termination_grace_period_seconds: Some(0), ..Default::default() }),
        ..Default::default()
    }
}

/// The pod's Service, selecting `pod: <name>` as upstream does (a pod created without
/// that label is selected by the labels it was created with).
pub fn service(key: &PodKey, labels: &Labels, serve: &[(u16, Protocol)]) -> Service {
    let selector: BTreeMap<String, String> = match labels.get("pod") {
        Some(v) if *v == key.name => [("pod".to_string(), v.clone())].into(),
        _ => labels.clone(),
    };
    let ports = serve
        .iter()
        .map(|(p, q)| ServicePort { name: Some(port_name(*p, *q)), port: *p as i32, target_port: Some(IntOrString::Int(*p as i32)), protocol: Some(q.as_str().into()), ..Default::default() })
        .collect();
    Service {
        metadata: ObjectMeta { name: Some(service_name(key)), namespace: Some(key.namespace.clone()), ..Default::default() },
        spec: Some(ServiceSpec { type_: Some("ClusterIP".into()), selector: Some(selector), ports: Some(ports), ..Default::default() }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> PodKey {
        weft_policy::corpus::pod_key(s).unwrap()
    }

    #[test]
    fn a_model_pod_has_one_agnhost_per_port_and_protocol_with_its_named_port() {
        let serve = served(&[80, 81], &[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]);
        let declared = vec![ContainerPort { name: Some("serve-81-udp".into()), container_port: 81, protocol: Protocol::Udp }];
        let labels: Labels = [("pod".to_string(), "a".to_string())].into();
        let p = pod(&key("x/a"), &labels, &declared, &serve);
        let spec = p.spec.unwrap();
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cont-80-tcp", "cont-80-udp", "cont-80-sctp", "cont-81-tcp", "cont-81-udp", "cont-81-sctp"]);
        assert_eq!(spec.termination_grace_period_seconds, Some(0));
        assert_eq!(spec.containers[0].args.as_ref().unwrap(), &["serve-hostname", "--tcp", "--http=false", "--port", "80"]);
        assert_eq!(spec.containers[4].args.as_ref().unwrap(), &["serve-hostname", "--udp", "--http=false", "--port", "81"]);
        assert_eq!(spec.containers[5].args.as_ref().unwrap(), &["porter"]);
        assert_eq!(spec.containers[5].env.as_ref().unwrap()[0].name, "SERVE_SCTP_PORT_81");
        let ports: Vec<_> = spec.containers.iter().map(|c| c.ports.as_ref().map(|p| p.len()).unwrap_or(0)).collect();
        assert_eq!(ports, [0, 0, 0, 0, 1, 0]);
        assert_eq!(spec.containers[4].ports.as_ref().unwrap()[0].name.as_deref(), Some("serve-81-udp"));
        assert!(spec.containers.iter().all(|c| c.image.as_deref() == Some(AGNHOST)));
    }

    #[test]
    fn a_service_per_pod_selects_it_with_port_equal_to_target_port() {
        let serve = served(&[80], &[Protocol::Tcp, Protocol::Sctp]);
        let s = service(&key("y-2/b"), &[("pod".to_string(), "b".to_string())].into(), &serve);
        assert_eq!(s.metadata.name.as_deref(), Some("s-y-2-b"));
        let spec = s.spec.unwrap();
        assert_eq!(spec.selector.unwrap(), [("pod".to_string(), "b".to_string())].into());
        let ports = spec.ports.unwrap();
        assert_eq!(ports[1].name.as_deref(), Some("serve-80-sctp"));
        assert_eq!((ports[1].port, ports[1].target_port.clone(), ports[1].protocol.as_deref()), (80, Some(IntOrString::Int(80)), Some("SCTP")));
        let odd = service(&key("x/d"), &[("app".to_string(), "d".to_string())].into(), &serve);
        assert_eq!(odd.spec.unwrap().selector.unwrap(), [("app".to_string(), "d".to_string())].into());
    }

    #[test]
    fn namespaces_carry_their_name_label() {
        let n = namespace("y-2", &[("ns".to_string(), "y".to_string())].into());
        assert_eq!(n.metadata.labels.unwrap().get(NAMESPACE_NAME_LABEL).map(String::as_str), Some("y-2"));
    }
}
