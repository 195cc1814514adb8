use super::*;
use crate::defaults::apply_defaults;
use crate::{FieldErrorType, GroupKind};

fn nginx_pod() -> Value {
    // The Pod from the Kubernetes docs ("Pods": simple-pod.yaml).
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}
    })
}

fn defaulted(mut p: Value) -> Value {
    apply_defaults(&GroupKind::new("", "Pod"), &mut p);
    p
}

fn errors(p: Value) -> Vec<String> {
    validate_pod(&defaulted(p), None).iter().map(|e| e.to_string()).collect()
}

#[test]
fn docs_nginx_pod_defaults_and_validates_clean() {
    let p = defaulted(nginx_pod());
    let all = crate::validate::validate(&GroupKind::new("", "Pod"), &p, None);
    assert_eq!(all, vec![]);
}

#[test]
fn pod_missing_image_names_the_field() {
    let mut p = nginx_pod();
    p["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
    assert_eq!(errors(p), vec!["spec.containers[0].image: Required value"]);
}

#[test]
fn pod_without_containers_is_required() {
    let mut p = nginx_pod();
    p["spec"]["containers"] = json!([]);
    assert_eq!(errors(p), vec!["spec.containers: Required value"]);
}

#[test]
fn container_names_are_unique_dns_labels_across_init_containers() {
    let mut p = nginx_pod();
    p["spec"]["containers"] = json!([
        {"name": "web", "image": "nginx"},
        {"name": "web", "image": "nginx"},
        {"name": "Side_Car", "image": "envoy"},
    ]);
    p["spec"]["initContainers"] = json!([{"name": "web", "image": "busybox"}]);
    let errs = errors(p);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_eq!(errs[0], "spec.containers[1].name: Duplicate value: \"web\"");
    assert!(errs[1].starts_with("spec.containers[2].name: Invalid value: \"Side_Car\": a lowercase RFC 1123 label"));
    assert_eq!(errs[2], "spec.initContainers[0].name: Duplicate value: \"web\"");
}

#[test]
fn container_ports_are_checked_like_upstream() {
    let mut p = nginx_pod();
    p["spec"]["containers"][0]["ports"] = json!([
        {"name": "http", "containerPort": 80},
        {"name": "http", "containerPort": 8080},
        {"name": "8443", "containerPort": 70000, "protocol": "ICMP"},
        {"containerPort": 0},
    ]);
    assert_eq!(errors(p), vec![
        "spec.containers[0].ports[1].name: Duplicate value: \"http\"",
        "spec.containers[0].ports[2].name: Invalid value: \"8443\": must contain at least one letter (a-z)",
        "spec.containers[0].ports[2].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.containers[0].ports[2].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        "spec.containers[0].ports[3].containerPort: Required value",
    ]);
}

#[test]
fn duplicate_host_ports_conflict() {
    let mut p = nginx_pod();
    p["spec"]["containers"] = json!([
        {"name": "a", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 8080}]},
        {"name": "b", "image": "nginx", "ports": [{"containerPort": 81, "hostPort": 8080}]},
    ]);
    assert_eq!(errors(p), vec!["spec.containers[1].ports[0].hostPort: Duplicate value: \"/TCP/8080\""]);
}

#[test]
fn host_network_requires_host_port_to_equal_container_port() {
    let mut p = nginx_pod();
    p["spec"]["hostNetwork"] = json!(true);
    p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 8080}]);
    assert_eq!(errors(p), vec![
        "spec.containers[0].ports[0].containerPort: Invalid value: 80: must match `hostPort` when `hostNetwork` is true",
    ]);
}

#[test]
fn env_names_and_sources_are_checked() {
    let mut p = nginx_pod();
    p["spec"]["containers"][0]["env"] = json!([
        {"name": "GOOD_NAME", "value": "x"},
        {"name": "1BAD", "value": "x"},
        {"name": "FROM", "valueFrom": {}},
        {"name": "BOTH", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}},
        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": ""}}},
    ]);
    p["spec"]["containers"][0]["envFrom"] = json!([{"prefix": "APP_"}]);
    let errs = errors(p);
    assert_eq!(errs.len(), 6, "{errs:#?}");
    assert!(errs[0].starts_with("spec.containers[0].env[1].name: Invalid value: \"1BAD\": a valid environment variable name"));
    assert_eq!(errs[1], "spec.containers[0].env[2].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
    assert_eq!(errs[2], "spec.containers[0].env[3].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty");
    assert!(errs[3].starts_with("spec.containers[0].env[4].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.restartPolicy\": supported values: \"metadata.name\""));
    assert_eq!(errs[4], "spec.containers[0].env[5].valueFrom.configMapKeyRef.key: Required value");
    assert_eq!(errs[5], "spec.containers[0].envFrom: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`");
}

#[test]
fn volume_mounts_must_name_a_declared_volume_and_unique_paths() {
    let mut p = nginx_pod();
    p["spec"]["volumes"] = json!([{"name": "html", "emptyDir": {}}]);
    p["spec"]["containers"][0]["volumeMounts"] = json!([
        {"name": "html", "mountPath": "/usr/share/nginx/html"},
        {"name": "data", "mountPath": "/usr/share/nginx/html"},
        {"name": "html", "mountPath": "/x", "subPath": "../etc"},
    ]);
    let errs = validate_pod(&defaulted(p), None);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_eq!(errs[0].kind, FieldErrorType::NotFound);
    assert_eq!(errs[0].field, "spec.containers[0].volumeMounts[1].name");
    assert_eq!(errs[0].value, Some(json!("data")));
    assert_eq!(errs[1].to_string(), "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/usr/share/nginx/html\": must be unique");
    assert_eq!(errs[2].to_string(), "spec.containers[0].volumeMounts.subPath: Invalid value: \"../etc\": must not contain '..'");
}

#[test]
fn volumes_need_unique_label_names_and_one_source() {
    let mut p = nginx_pod();
    p["spec"]["volumes"] = json!([
        {"name": "cfg", "configMap": {"name": "app"}},
        {"name": "cfg", "emptyDir": {}},
        {"name": "two", "emptyDir": {}, "secret": {"secretName": "s"}},
        {"name": "Bad.Name", "persistentVolumeClaim": {}},
        {"name": "items", "secret": {"secretName": "s", "items": [{"key": "k", "path": "/abs", "mode": 1000}]}},
    ]);
    let errs = errors(p);
    assert_eq!(errs.len(), 6, "{errs:#?}");
    assert_eq!(errs[0], "spec.volumes[1].name: Duplicate value: \"cfg\"");
    assert_eq!(errs[1], "spec.volumes[2].secret: Forbidden: may not specify more than 1 volume type");
    assert_eq!(errs[2], "spec.volumes[3].persistentVolumeClaim.claimName: Required value");
    assert!(errs[3].starts_with("spec.volumes[3].name: Invalid value: \"Bad.Name\""));
    assert_eq!(errs[4], "spec.volumes[4].secret.items[0].path: Invalid value: \"/abs\": must be a relative path");
    assert_eq!(errs[5], "spec.volumes[4].secret.items[0].mode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive");
}

#[test]
fn probes_need_exactly_one_handler_and_liveness_success_threshold_one() {
    let mut p = nginx_pod();
    let c = &mut p["spec"]["containers"][0];
    c["livenessProbe"] = json!({"httpGet": {"port": 80}, "tcpSocket": {"port": 80}, "successThreshold": 2});
    c["readinessProbe"] = json!({"periodSeconds": 5});
    c["startupProbe"] = json!({"httpGet": {"port": "HTTP", "scheme": "FTP"}});
    assert_eq!(errors(p), vec![
        "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].readinessProbe: Required value: must specify a handler type",
        "spec.containers[0].startupProbe.httpGet.port: Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        "spec.containers[0].startupProbe.httpGet.port: Invalid value: \"HTTP\": must contain at least one letter (a-z)",
        "spec.containers[0].startupProbe.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\"",
    ]);
}

#[test]
fn plain_init_containers_may_not_have_probes_but_sidecars_may() {
    let mut p = nginx_pod();
    p["spec"]["initContainers"] = json!([
        {"name": "init", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}},
        {"name": "sidecar", "image": "envoy", "restartPolicy": "Always", "readinessProbe": {"exec": {"command": ["true"]}}},
        {"name": "odd", "image": "busybox", "restartPolicy": "Never"},
    ]);
    assert_eq!(errors(p), vec![
        "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
        "spec.initContainers[2].restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
    ]);
}

#[test]
fn restart_and_dns_policies_are_enumerations() {
    let mut p = nginx_pod();
    p["spec"]["restartPolicy"] = json!("Sometimes");
    p["spec"]["dnsPolicy"] = json!("Google");
    assert_eq!(errors(p), vec![
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
    ]);
}

#[test]
fn dns_policy_none_needs_nameservers_and_limits_apply() {
    let mut p = nginx_pod();
    p["spec"]["dnsPolicy"] = json!("None");
    assert_eq!(errors(p.clone()), vec!["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]);
    p["spec"]["dnsConfig"] = json!({"searches": ["svc.cluster.local"]});
    assert_eq!(errors(p.clone()), vec![
        "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None",
    ]);
    let searches: Vec<String> = (0..33).map(|i| format!("s{i}.example.com")).collect();
    p["spec"]["dnsConfig"] = json!({
        "nameservers": ["1.1.1.1", "8.8.8.8", "9.9.9.9", "not-an-ip"],
        "searches": searches,
        "options": [{"name": "ndots", "value": "2"}, {"value": "x"}],
    });
    let errs = errors(p);
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("spec.dnsConfig.nameservers: Invalid value: "));
    assert!(errs[0].ends_with("must not have more than 3 nameservers"));
    assert_eq!(errs[1], "spec.dnsConfig.nameservers[3]: Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    assert!(errs[2].ends_with("must not have more than 32 search paths"));
    assert_eq!(errs[3], "spec.dnsConfig.options[1]: Required value: must not be empty");
}

#[test]
fn hostname_and_subdomain_are_dns_labels() {
    let mut p = nginx_pod();
    p["spec"]["hostname"] = json!("web.0");
    p["spec"]["subdomain"] = json!("headless");
    assert_eq!(errors(p), vec!["spec.hostname: Invalid value: \"web.0\": must not contain dots"]);
}

#[test]
fn resources_must_be_non_negative_and_requests_within_limits() {
    let mut p = nginx_pod();
    p["spec"]["containers"][0]["resources"] = json!({
        "limits": {"cpu": "500m", "memory": "-1Gi", "nvidia.com/gpu": 1},
        "requests": {"cpu": "1", "nvidia.com/gpu": 1, "gpu": "1"},
    });
    assert_eq!(errors(p), vec![
        "spec.containers[0].resources.limits[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0",
        "spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
        "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
        // Defaulting copied the bad limit into requests, as kube-apiserver does.
        "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0",
    ]);
}

#[test]
fn tolerations_are_checked() {
    let mut p = nginx_pod();
    p["spec"]["tolerations"] = json!([
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
        {"operator": "Equal", "value": "x"},
        {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5},
        {"key": "k", "operator": "Like", "effect": "Sometimes"},
    ]);
    assert_eq!(errors(p), vec![
        "spec.tolerations[1].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
        "spec.tolerations[3].operator: Unsupported value: \"Like\": supported values: \"Equal\", \"Exists\"",
        "spec.tolerations[3].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
    ]);
}

#[test]
fn ephemeral_containers_cannot_be_set_on_create() {
    let mut p = nginx_pod();
    p["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
    let errs = errors(p);
    assert_eq!(errs, vec!["spec.ephemeralContainers: Forbidden: cannot be set on create"]);
}

#[test]
fn update_may_change_image_and_add_tolerations() {
    let old = defaulted(nginx_pod());
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:1.16.1");
    new["spec"]["tolerations"].as_array_mut().unwrap().push(json!({"key": "k", "operator": "Exists"}));
    new["spec"]["activeDeadlineSeconds"] = json!(600);
    assert_eq!(validate_pod(&new, Some(&old)), vec![]);
}

#[test]
fn update_of_other_spec_fields_is_forbidden_with_upstream_message() {
    let old = defaulted(nginx_pod());
    let mut new = old.clone();
    new["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(8080);
    let errs = validate_pod(&new, Some(&old));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec");
    assert_eq!(errs[0].kind, FieldErrorType::Forbidden);
    assert!(errs[0].detail.starts_with(
        "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n  core.PodSpec{\n"
    ));
    assert!(errs[0].detail.contains("containers"));
}

#[test]
fn update_may_not_add_containers_or_change_tolerations() {
    let old = defaulted(nginx_pod());
    let mut more = old.clone();
    more["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "b", "image": "busybox", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}));
    assert_eq!(
        validate_pod(&more, Some(&old)).iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );
    let mut tol = old.clone();
    tol["spec"]["tolerations"][0]["effect"] = json!("NoSchedule");
    tol["spec"]["tolerations"][0].as_object_mut().unwrap().remove("tolerationSeconds");
    let errs = validate_pod(&tol, Some(&old));
    assert_eq!(errs[0].to_string(), "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds");
    // tolerationSeconds alone may change.
    let mut secs = old.clone();
    secs["spec"]["tolerations"][0]["tolerationSeconds"] = json!(60);
    assert_eq!(validate_pod(&secs, Some(&old)), vec![]);
}

#[test]
fn active_deadline_may_only_shrink() {
    let mut old = defaulted(nginx_pod());
    old["spec"]["activeDeadlineSeconds"] = json!(100);
    let mut new = old.clone();
    new["spec"]["activeDeadlineSeconds"] = json!(50);
    assert_eq!(validate_pod(&new, Some(&old)), vec![]);
    new["spec"]["activeDeadlineSeconds"] = json!(200);
    assert_eq!(
        validate_pod(&new, Some(&old))[0].to_string(),
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
    );
    new["spec"].as_object_mut().unwrap().remove("activeDeadlineSeconds");
    assert_eq!(
        validate_pod(&new, Some(&old))[0].to_string(),
        "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
    );
}

#[test]
fn mirror_pod_annotation_requires_node_name() {
    let mut p = nginx_pod();
    p["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
    assert_eq!(errors(p), vec![
        "metadata.annotations[kubernetes.io/config.mirror]: Invalid value: \"abc\": must set spec.nodeName if mirror pod annotation is set",
    ]);
}

#[test]
fn realistic_pod_with_volumes_probes_and_env_validates_clean() {
    let p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "hostname": "web-0", "subdomain": "web",
            "initContainers": [{"name": "migrate", "image": "shop/migrate:v2", "command": ["/migrate"],
                "envFrom": [{"configMapRef": {"name": "db-config"}}, {"secretRef": {"name": "db-creds"}, "prefix": "DB_"}]}],
            "containers": [{
                "name": "web", "image": "shop/web:v2",
                "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "APP_LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "MEM_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "web-config", "key": "log.level"}}},
                ],
                "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 3},
                "readinessProbe": {"tcpSocket": {"port": 8080}},
                "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "failureThreshold": 30},
                "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/web", "readOnly": true},
                    {"name": "cache", "mountPath": "/var/cache/web"},
                    {"name": "podinfo", "mountPath": "/etc/podinfo"},
                ],
            }],
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config", "items": [{"key": "web.yaml", "path": "web.yaml"}]}},
                {"name": "cache", "emptyDir": {"sizeLimit": "500Mi"}},
                {"name": "podinfo", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            ],
            "dnsConfig": {"nameservers": ["10.96.0.10"], "searches": ["shop.svc.cluster.local."], "options": [{"name": "ndots", "value": "2"}]},
        }
    });
    let p = defaulted(p);
    assert_eq!(crate::validate::validate(&GroupKind::new("", "Pod"), &p, None), vec![]);
}
