//! The decoder against bytes from upstream's own message structs (k8s-pb, encoded by
//! prost), filled in the way client-go fills them: Go writes every non-pointer field,
//! zero or not, so the tests set those to their zero values too.

use std::collections::BTreeMap;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{json, Value};

use super::decode_body;

/// A request body as client-go sends it: magic, then runtime.Unknown around the object.
fn body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [b"k8s\0".as_slice(), &unknown.encode_to_vec()].concat()
}

fn decode(api_version: &str, kind: &str, object: &impl Message) -> Value {
    decode_body(&body(api_version, kind, object)).unwrap()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// ObjectMeta as Go writes it for a new object: plain fields present but empty, and
/// creationTimestamp as an empty Time.
fn new_meta(name: &str, namespace: &str, labels: BTreeMap<String, String>) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels,
        ..Default::default()
    })
}

/// A container as `kubectl create deployment`/`kubectl run` builds it.
fn go_container(name: &str, image: &str) -> core::Container {
    core::Container {
        name: s(name),
        image: s(image),
        working_dir: s(""),
        resources: Some(core::ResourceRequirements::default()),
        termination_message_path: s(""),
        termination_message_policy: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

fn go_pod_spec(containers: Vec<core::Container>) -> core::PodSpec {
    core::PodSpec {
        containers,
        restart_policy: s(""),
        dns_policy: s(""),
        service_account_name: s(""),
        service_account: s(""),
        node_name: s(""),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: s(""),
        subdomain: s(""),
        scheduler_name: s(""),
        priority_class_name: s(""),
        ..Default::default()
    }
}

#[test]
fn namespace_from_kubectl_create_namespace() {
    let ns = core::Namespace {
        metadata: new_meta("techcorp", "", labels(&[])),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus { phase: s(""), ..Default::default() }),
    };
    // A zero creationTimestamp and empty plain strings are left out, as Go's JSON
    // encoder leaves them out; empty structs stay, as Go writes them.
    assert_eq!(
        decode("v1", "Namespace", &ns),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "techcorp"}, "spec": {}, "status": {}})
    );
}

#[test]
fn deployment_from_kubectl_create_deployment() {
    let app = labels(&[("app", "web")]);
    let deployment = k8s_pb::api::apps::v1::Deployment {
        metadata: new_meta("web", "techcorp", app.clone()),
        spec: Some(k8s_pb::api::apps::v1::DeploymentSpec {
            replicas: Some(3),
            selector: Some(meta::LabelSelector { match_labels: app.clone(), ..Default::default() }),
            template: Some(core::PodTemplateSpec {
                metadata: new_meta("", "", app.clone()),
                spec: Some(go_pod_spec(vec![go_container("nginx", "nginx")])),
            }),
            strategy: Some(k8s_pb::api::apps::v1::DeploymentStrategy { r#type: s(""), rolling_update: None }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(k8s_pb::api::apps::v1::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    };
    assert_eq!(
        decode("apps/v1", "Deployment", &deployment),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "techcorp", "labels": {"app": "web"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}
                },
                "strategy": {}
            },
            "status": {}
        })
    );
}

#[test]
fn pod_from_kubectl_run_with_port_labels_and_env() {
    let mut container = go_container("p1", "nginx");
    container.ports = vec![core::ContainerPort {
        name: s(""),
        host_port: Some(0),
        container_port: Some(80),
        protocol: s(""),
        host_ip: s(""),
    }];
    container.env = vec![core::EnvVar { name: s("A"), value: s("B"), value_from: None }];
    let pod = core::Pod {
        metadata: new_meta("p1", "default", labels(&[("app", "x")])),
        spec: Some(go_pod_spec(vec![container])),
        status: Some(core::PodStatus { phase: s(""), ..Default::default() }),
    };
    assert_eq!(
        decode("v1", "Pod", &pod),
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p1", "namespace": "default", "labels": {"app": "x"}},
            "spec": {"containers": [{
                "name": "p1", "image": "nginx",
                // containerPort is required in the schema, so Go keeps it even at 0;
                // hostPort is optional and its 0 is dropped.
                "ports": [{"containerPort": 80}],
                "env": [{"name": "A", "value": "B"}],
                "resources": {}
            }]},
            "status": {}
        })
    );
}

#[test]
fn pointer_fields_keep_their_zero_and_false() {
    // replicas: 0 scales to zero, gracePeriod 0 kills at once, uid 0 is root, and
    // enableServiceLinks: false turns off a default-on feature: none of them is "unset".
    let mut spec = go_pod_spec(vec![go_container("c", "busybox")]);
    spec.termination_grace_period_seconds = Some(0);
    spec.enable_service_links = Some(false);
    spec.automount_service_account_token = Some(false);
    spec.security_context = Some(core::PodSecurityContext { run_as_user: Some(0), ..Default::default() });
    let deployment = k8s_pb::api::apps::v1::Deployment {
        metadata: new_meta("zero", "default", labels(&[])),
        spec: Some(k8s_pb::api::apps::v1::DeploymentSpec {
            replicas: Some(0),
            revision_history_limit: Some(0),
            template: Some(core::PodTemplateSpec { metadata: None, spec: Some(spec) }),
            ..Default::default()
        }),
        status: None,
    };
    let v = decode("apps/v1", "Deployment", &deployment);
    assert_eq!(v["spec"]["replicas"], json!(0));
    assert_eq!(v["spec"]["revisionHistoryLimit"], json!(0));
    let pod_spec = &v["spec"]["template"]["spec"];
    assert_eq!(pod_spec["terminationGracePeriodSeconds"], json!(0));
    assert_eq!(pod_spec["enableServiceLinks"], json!(false));
    assert_eq!(pod_spec["automountServiceAccountToken"], json!(false));
    assert_eq!(pod_spec["securityContext"], json!({"runAsUser": 0}));
    assert!(pod_spec.get("hostNetwork").is_none(), "a plain false bool is omitempty in Go: {pod_spec}");
}

#[test]
fn secret_and_configmap_bytes_become_base64() {
    let secret = core::Secret {
        metadata: new_meta("s", "default", labels(&[])),
        data: [("p".to_string(), b"q".to_vec()), ("bin".to_string(), vec![0, 255, 1])].into(),
        r#type: s("Opaque"),
        string_data: BTreeMap::new(),
        immutable: None,
    };
    assert_eq!(
        decode("v1", "Secret", &secret),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
               "data": {"p": "cQ==", "bin": "AP8B"}, "type": "Opaque"})
    );
    let config_map = core::ConfigMap {
        metadata: new_meta("c", "default", labels(&[])),
        data: labels(&[("a", "b"), ("empty", "")]),
        binary_data: [("blob".to_string(), b"hi".to_vec())].into(),
        immutable: Some(false),
    };
    assert_eq!(
        decode("v1", "ConfigMap", &config_map),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
               "data": {"a": "b", "empty": ""}, "binaryData": {"blob": "aGk="}, "immutable": false})
    );
}

#[test]
fn service_ports_take_numbers_or_names_and_ip_lists_keep_kubernetes_names() {
    let port = |name: &str, port: i32, target: IntOrString| core::ServicePort {
        name: s(name),
        protocol: s("TCP"),
        app_protocol: None,
        port: Some(port),
        target_port: Some(target),
        node_port: Some(0),
    };
    let service = core::Service {
        metadata: new_meta("svc1", "default", labels(&[("app", "svc1")])),
        spec: Some(core::ServiceSpec {
            ports: vec![
                port("80-8080", 80, IntOrString { r#type: Some(0), int_val: Some(8080), str_val: s("") }),
                port("web", 81, IntOrString { r#type: Some(1), int_val: Some(0), str_val: s("http") }),
            ],
            selector: labels(&[("app", "svc1")]),
            cluster_ip: s("10.96.0.20"),
            cluster_ips: vec!["10.96.0.20".into(), "fd00:10:96::20".into()],
            r#type: s("NodePort"),
            ip_families: vec!["IPv4".into(), "IPv6".into()],
            session_affinity: s(""),
            external_traffic_policy: s(""),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus { load_balancer: Some(core::LoadBalancerStatus::default()), conditions: vec![] }),
    };
    assert_eq!(
        decode("v1", "Service", &service),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "svc1", "namespace": "default", "labels": {"app": "svc1"}},
            "spec": {
                "ports": [
                    {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "web", "protocol": "TCP", "port": 81, "targetPort": "http"}
                ],
                "selector": {"app": "svc1"},
                "clusterIP": "10.96.0.20",
                "type": "NodePort",
                "clusterIPs": ["10.96.0.20", "fd00:10:96::20"],
                "ipFamilies": ["IPv4", "IPv6"]
            },
            "status": {"loadBalancer": {}}
        })
    );
}

#[test]
fn pod_status_times_quantities_and_ip_lists() {
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s("p"),
            creation_timestamp: Some(meta::Time { seconds: Some(1_700_000_000), nanos: None }),
            owner_references: vec![meta::OwnerReference {
                api_version: s("apps/v1"),
                kind: s("ReplicaSet"),
                name: s("web-abc"),
                uid: s("1234"),
                controller: Some(true),
                block_owner_deletion: Some(false),
            }],
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("c"),
                resources: Some(core::ResourceRequirements {
                    limits: [("cpu".to_string(), Quantity { string: s("500m") })].into(),
                    requests: [("memory".to_string(), Quantity { string: s("64Mi") })].into(),
                    claims: vec![],
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: s("Running"),
            host_ip: s("10.0.0.1"),
            host_ips: vec![core::HostIp { ip: s("10.0.0.1") }],
            pod_ip: s("10.244.0.5"),
            pod_ips: vec![core::PodIp { ip: s("10.244.0.5") }, core::PodIp { ip: s("fd00:10:244::5") }],
            start_time: Some(meta::Time { seconds: Some(1_700_000_001), nanos: None }),
            container_statuses: vec![core::ContainerStatus {
                name: s("c"),
                state: Some(core::ContainerState {
                    running: Some(core::ContainerStateRunning {
                        started_at: Some(meta::Time { seconds: Some(1_700_000_002), nanos: Some(5) }),
                    }),
                    ..Default::default()
                }),
                ready: Some(true),
                restart_count: Some(0),
                started: Some(false),
                ..Default::default()
            }],
            ..Default::default()
        }),
    };
    let v = decode("v1", "Pod", &pod);
    assert_eq!(v["metadata"]["creationTimestamp"], json!("2023-11-14T22:13:20Z"));
    assert_eq!(
        v["metadata"]["ownerReferences"],
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "1234",
                "controller": true, "blockOwnerDeletion": false}])
    );
    assert_eq!(v["spec"]["containers"][0]["resources"], json!({"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}}));
    assert_eq!(
        v["status"],
        json!({
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": "10.244.0.5",
            "startTime": "2023-11-14T22:13:21Z",
            // Time has whole seconds only: Go's protobuf reader drops the nanos.
            "containerStatuses": [{"name": "c", "state": {"running": {"startedAt": "2023-11-14T22:13:22Z"}},
                                   "ready": true, "restartCount": 0, "started": false}],
            "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00:10:244::5"}],
            "hostIPs": [{"ip": "10.0.0.1"}]
        })
    );
}

#[test]
fn lease_micro_time_keeps_microseconds() {
    let lease = k8s_pb::api::coordination::v1::Lease {
        metadata: new_meta("node-1", "kube-node-lease", labels(&[])),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(40),
            acquire_time: Some(meta::MicroTime { seconds: Some(1_700_000_000), nanos: Some(123_456_789) }),
            renew_time: Some(meta::MicroTime { seconds: Some(1_700_000_010), nanos: Some(0) }),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    assert_eq!(
        decode("coordination.k8s.io/v1", "Lease", &lease)["spec"],
        json!({"holderIdentity": "node-1", "leaseDurationSeconds": 40,
               "acquireTime": "2023-11-14T22:13:20.123456Z", "renewTime": "2023-11-14T22:13:30.000000Z",
               "leaseTransitions": 0})
    );
}

#[test]
fn ingress_rule_value_is_inlined_into_the_rule() {
    use k8s_pb::api::networking::v1 as net;
    let backend = net::IngressBackend {
        service: Some(net::IngressServiceBackend {
            name: s("svc1"),
            port: Some(net::ServiceBackendPort { name: s(""), number: Some(80) }),
        }),
        resource: None,
    };
    let ingress = net::Ingress {
        metadata: new_meta("ing1", "default", labels(&[])),
        spec: Some(net::IngressSpec {
            rules: vec![net::IngressRule {
                host: s("foo.com"),
                ingress_rule_value: Some(net::IngressRuleValue {
                    http: Some(net::HttpIngressRuleValue {
                        paths: vec![net::HttpIngressPath {
                            path: s("/bar"),
                            path_type: s("Exact"),
                            backend: Some(backend),
                        }],
                    }),
                }),
            }],
            ..Default::default()
        }),
        status: Some(net::IngressStatus { load_balancer: Some(net::IngressLoadBalancerStatus::default()) }),
    };
    assert_eq!(
        decode("networking.k8s.io/v1", "Ingress", &ingress)["spec"],
        json!({"rules": [{"host": "foo.com", "http": {"paths": [
            {"path": "/bar", "pathType": "Exact", "backend": {"service": {"name": "svc1", "port": {"number": 80}}}}
        ]}}]})
    );
}

#[test]
fn network_policy_ports_and_selectors() {
    use k8s_pb::api::networking::v1 as net;
    let policy = net::NetworkPolicy {
        metadata: new_meta("deny", "default", labels(&[])),
        spec: Some(net::NetworkPolicySpec {
            pod_selector: Some(meta::LabelSelector {
                match_labels: BTreeMap::new(),
                match_expressions: vec![meta::LabelSelectorRequirement {
                    key: s("app"),
                    operator: s("In"),
                    values: vec!["a".into(), "b".into()],
                }],
            }),
            ingress: vec![net::NetworkPolicyIngressRule {
                ports: vec![net::NetworkPolicyPort {
                    protocol: s("TCP"),
                    port: Some(IntOrString { r#type: Some(0), int_val: Some(8000), str_val: s("") }),
                    end_port: Some(9000),
                }],
                from: vec![net::NetworkPolicyPeer {
                    ip_block: Some(net::IpBlock { cidr: s("10.0.0.0/8"), except: vec!["10.1.0.0/16".into()] }),
                    ..Default::default()
                }],
            }],
            policy_types: vec!["Ingress".into()],
            ..Default::default()
        }),
    };
    assert_eq!(
        decode("networking.k8s.io/v1", "NetworkPolicy", &policy)["spec"],
        json!({
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]},
            "ingress": [{"ports": [{"protocol": "TCP", "port": 8000, "endPort": 9000}],
                         "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}],
            "policyTypes": ["Ingress"]
        })
    );
}

#[test]
fn endpoint_slice_conditions_keep_an_explicit_false() {
    use k8s_pb::api::discovery::v1 as discovery;
    let slice = discovery::EndpointSlice {
        metadata: new_meta("svc1-abc", "default", labels(&[("kubernetes.io/service-name", "svc1")])),
        address_type: s("IPv4"),
        endpoints: vec![discovery::Endpoint {
            addresses: vec!["10.244.0.5".into()],
            // ready: nil means ready; false means not ready.
            conditions: Some(discovery::EndpointConditions { ready: Some(false), serving: Some(true), terminating: None }),
            target_ref: Some(core::ObjectReference { kind: s("Pod"), name: s("p"), ..Default::default() }),
            node_name: s("node-1"),
            ..Default::default()
        }],
        ports: vec![discovery::EndpointPort { name: s(""), protocol: s("TCP"), port: Some(8080), app_protocol: None }],
    };
    let v = decode("discovery.k8s.io/v1", "EndpointSlice", &slice);
    assert_eq!(v["addressType"], json!("IPv4"));
    assert_eq!(
        v["endpoints"],
        json!([{"addresses": ["10.244.0.5"], "conditions": {"ready": false, "serving": true},
                "targetRef": {"kind": "Pod", "name": "p"}, "nodeName": "node-1"}])
    );
    // An EndpointPort's name is optional, so its "" is dropped.
    assert_eq!(v["ports"], json!([{"protocol": "TCP", "port": 8080}]));
}

#[test]
fn crd_schema_keeps_json_values_bool_or_schema_and_zero_bounds() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let int_schema = ext::JsonSchemaProps {
        r#type: s("integer"),
        minimum: Some(0.0),
        maximum: Some(10.5),
        default: Some(ext::Json { raw: Some(b"1".to_vec()) }),
        r#enum: vec![ext::Json { raw: Some(b"1".to_vec()) }, ext::Json { raw: Some(b"{\"a\":[true]}".to_vec()) }],
        ..Default::default()
    };
    let spec_schema = ext::JsonSchemaProps {
        r#type: s("object"),
        properties: [("replicas".to_string(), int_schema)].into(),
        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool { allows: Some(false), schema: None })),
        ..Default::default()
    };
    let root = ext::JsonSchemaProps {
        r#type: s("object"),
        properties: [
            ("spec".to_string(), spec_schema),
            (
                "tags".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("array"),
                    items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                        schema: Some(Box::new(ext::JsonSchemaProps { r#type: s("string"), ..Default::default() })),
                        j_son_schemas: vec![],
                    })),
                    ..Default::default()
                },
            ),
            (
                "extra".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("object"),
                    x_kubernetes_preserve_unknown_fields: Some(true),
                    additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                        allows: Some(true),
                        schema: Some(Box::new(ext::JsonSchemaProps { r#type: s("string"), ..Default::default() })),
                    })),
                    ..Default::default()
                },
            ),
        ]
        .into(),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: new_meta("widgets.example.com", "", labels(&[])),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                singular: s("widget"),
                kind: s("Widget"),
                short_names: vec!["wd".into()],
                list_kind: s(""),
                categories: vec![],
            }),
            scope: s("Namespaced"),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                // storage is required in the schema: its false is kept.
                storage: Some(false),
                deprecated: Some(false),
                schema: Some(ext::CustomResourceValidation { open_apiv3_schema: Some(root) }),
                subresources: Some(ext::CustomResourceSubresources {
                    status: Some(ext::CustomResourceSubresourceStatus {}),
                    scale: None,
                }),
                ..Default::default()
            }],
            preserve_unknown_fields: Some(false),
            conversion: None,
        }),
        status: None,
    };
    let v = decode("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd);
    assert_eq!(
        v["spec"],
        json!({
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "shortNames": ["wd"], "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": false,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "extra": {"type": "object", "additionalProperties": {"type": "string"},
                              "x-kubernetes-preserve-unknown-fields": true},
                    "spec": {"type": "object", "properties": {
                        "replicas": {"type": "integer", "default": 1, "maximum": 10.5, "minimum": 0,
                                     "enum": [1, {"a": [true]}]}
                    }, "additionalProperties": false},
                    "tags": {"type": "array", "items": {"type": "string"}}
                }}},
                "subresources": {"status": {}}
            }]
        })
    );
}

#[test]
fn delete_options_decode_under_any_group_version() {
    // client-go sends DeleteOptions under the deleted resource's group version.
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
        assert_eq!(
            decode(api_version, "DeleteOptions", &options),
            json!({"apiVersion": api_version, "kind": "DeleteOptions",
                   "gracePeriodSeconds": 0, "propagationPolicy": "Foreground", "dryRun": ["All"]})
        );
    }
}

#[test]
fn binding_scale_and_event_subresource_bodies() {
    let binding = core::Binding {
        metadata: new_meta("p1", "default", labels(&[])),
        target: Some(core::ObjectReference { kind: s("Node"), name: s("node-1"), ..Default::default() }),
    };
    assert_eq!(decode("v1", "Binding", &binding)["target"], json!({"kind": "Node", "name": "node-1"}));

    let scale = k8s_pb::api::autoscaling::v1::Scale {
        metadata: new_meta("web", "default", labels(&[])),
        spec: Some(k8s_pb::api::autoscaling::v1::ScaleSpec { replicas: Some(0) }),
        status: Some(k8s_pb::api::autoscaling::v1::ScaleStatus { replicas: Some(3), selector: s("") }),
    };
    let v = decode("autoscaling/v1", "Scale", &scale);
    assert_eq!((&v["spec"], &v["status"]), (&json!({"replicas": 0}), &json!({"replicas": 3})));

    let event = core::Event {
        metadata: new_meta("p1.abc", "default", labels(&[])),
        involved_object: Some(core::ObjectReference { kind: s("Pod"), name: s("p1"), ..Default::default() }),
        reason: s("Scheduled"),
        count: Some(1),
        r#type: s("Normal"),
        event_time: Some(meta::MicroTime::default()),
        first_timestamp: Some(meta::Time { seconds: Some(0), nanos: None }),
        ..Default::default()
    };
    let v = decode("v1", "Event", &event);
    assert_eq!(v["involvedObject"], json!({"kind": "Pod", "name": "p1"}));
    assert!(v.get("eventTime").is_none(), "a zero MicroTime is null in Go: {v}");
    assert_eq!(v["firstTimestamp"], json!("1970-01-01T00:00:00Z"));
}

#[test]
fn every_served_kind_decodes_its_metadata() {
    // Each root's metadata is field 1; this checks that the table knows every kind
    // the server serves, under the apiVersion clients send.
    let metadata = meta::ObjectMeta { name: s("x"), ..Default::default() };
    let raw = [vec![0x0a, metadata.encoded_len() as u8], metadata.encode_to_vec()].concat();
    for (api_version, kind) in [
        ("v1", "Namespace"), ("v1", "Node"), ("v1", "Pod"), ("v1", "Service"), ("v1", "Endpoints"),
        ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount"), ("v1", "Event"), ("v1", "Binding"),
        ("discovery.k8s.io/v1", "EndpointSlice"), ("networking.k8s.io/v1", "NetworkPolicy"),
        ("networking.k8s.io/v1", "Ingress"), ("networking.k8s.io/v1", "IngressClass"),
        ("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("autoscaling/v1", "Scale"),
        ("coordination.k8s.io/v1", "Lease"), ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ] {
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: s(api_version), kind: s(kind) }),
            raw: Some(raw.clone()),
            ..Default::default()
        };
        let v = decode_body(&[b"k8s\0".as_slice(), &unknown.encode_to_vec()].concat()).unwrap();
        assert_eq!(v, json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}), "{kind}");
    }
}

#[test]
fn fields_from_newer_clients_are_skipped() {
    let ns = core::Namespace { metadata: new_meta("n", "", labels(&[])), ..Default::default() };
    let mut raw = ns.encode_to_vec();
    raw.extend([0xba, 0x3e, 2, b'h', b'i']); // field 999, "hi"
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: s("v1"), kind: s("Namespace") }),
        raw: Some(raw),
        ..Default::default()
    };
    let v = decode_body(&[b"k8s\0".as_slice(), &unknown.encode_to_vec()].concat()).unwrap();
    assert_eq!(v, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}));
}

#[test]
fn bodies_that_are_not_kubernetes_protobuf_are_rejected() {
    assert!(decode_body(b"{\"kind\":\"Pod\"}").unwrap_err().contains("magic"));
    let job = body("batch/v1", "Job", &core::Namespace::default());
    let err = decode_body(&job).unwrap_err();
    assert!(err.contains("\"Job\"") && err.contains("batch/v1"), "{err}");
    let gzipped = Unknown {
        type_meta: Some(TypeMeta { api_version: s("v1"), kind: s("Pod") }),
        content_encoding: s("gzip"),
        ..Default::default()
    };
    assert!(decode_body(&[b"k8s\0".as_slice(), &gzipped.encode_to_vec()].concat()).unwrap_err().contains("gzip"));
    assert!(decode_body(b"k8s\0\x0a\x05").unwrap_err().contains("envelope"));
}

#[test]
fn a_malformed_field_is_reported_with_its_json_path() {
    // A Pod whose spec.containers[1].name is a varint instead of a string.
    let good = core::Container { name: s("ok"), ..Default::default() }.encode_to_vec();
    let bad_container = [0x08, 0x01];
    let mut spec = vec![0x12, good.len() as u8];
    spec.extend(&good);
    spec.extend([0x12, bad_container.len() as u8]);
    spec.extend(bad_container);
    let mut pod = vec![0x12, spec.len() as u8];
    pod.extend(spec);
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: s("v1"), kind: s("Pod") }),
        raw: Some(pod),
        ..Default::default()
    };
    let err = decode_body(&[b"k8s\0".as_slice(), &unknown.encode_to_vec()].concat()).unwrap_err();
    assert_eq!(
        err,
        "the Pod in the protobuf body: at spec.containers[1].name: expected a String field, found wire type varint"
    );
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    // JSONSchemaProps nests itself through `not` (field 28); 1000 levels of it.
    let mut schema: Vec<u8> = vec![];
    for _ in 0..1000 {
        let mut outer = vec![0xe2, 0x01]; // field 28, length-delimited
        let mut len = schema.len();
        while len >= 0x80 {
            outer.push((len as u8) | 0x80);
            len >>= 7;
        }
        outer.push(len as u8);
        outer.extend(&schema);
        schema = outer;
    }
    let index = super::schema::MESSAGES
        .iter()
        .position(|m| m.name.ends_with("apiextensions.v1.JSONSchemaProps"))
        .unwrap();
    let err = super::decode::message(index, &schema, 0).unwrap_err();
    assert!(err.contains("nest deeper than"), "{err}");
}
