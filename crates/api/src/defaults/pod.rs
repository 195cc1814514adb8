//! Pod defaulting: core/v1 `SetDefaults_Pod`/`SetDefaults_PodSpec` and friends, plus what
//! the always-on admission plugins add to a new pod (ServiceAccount, DefaultTolerationSeconds,
//! Priority).

use serde_json::{json, Map, Value};

const DEFAULT_TOLERATION_SECONDS: i64 = 300;
const DEFAULT_FILE_MODE: i64 = 0o644;

/// Defaults a Pod: its spec as any pod spec, then the pod-only defaults.
pub fn default_pod(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    if !spec.is_object() {
        return;
    }
    default_pod_spec(spec);
    let spec = spec.as_object_mut().expect("spec is an object");
    // Only pods, not templates: requests default to limits, service links are on, and with
    // host networking a container port is also the host port.
    for list in ["containers", "initContainers"] {
        for c in array_mut(spec, list) {
            default_requests_from_limits(c);
        }
    }
    spec.entry("enableServiceLinks").or_insert(json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool).unwrap_or(false) {
        for list in ["containers", "initContainers"] {
            for c in array_mut(spec, list) {
                for p in c.get_mut("ports").and_then(Value::as_array_mut).into_iter().flatten() {
                    if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                        if let Some(cp) = p.get("containerPort").cloned() {
                            p["hostPort"] = cp;
                        }
                    }
                }
            }
        }
    }
    admit_service_account(spec);
    admit_default_tolerations(spec);
    admit_priority(spec);
}

/// Defaults shared by pods and pod templates (`SetDefaults_PodSpec` and the defaults of
/// everything a pod spec contains).
pub(crate) fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else { return };
    set_str_if_empty(s, "dnsPolicy", "ClusterFirst");
    set_str_if_empty(s, "restartPolicy", "Always");
    if !s.get("securityContext").map(Value::is_object).unwrap_or(false) {
        s.insert("securityContext".into(), json!({}));
    }
    match s.get("terminationGracePeriodSeconds").and_then(Value::as_i64) {
        None => {
            s.insert("terminationGracePeriodSeconds".into(), json!(30));
        }
        // A negative grace period would mean "kill now"; kube-apiserver turns it into 1.
        Some(g) if g < 0 => {
            s.insert("terminationGracePeriodSeconds".into(), json!(1));
        }
        Some(_) => {}
    }
    set_str_if_empty(s, "schedulerName", "default-scheduler");
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in array_mut(s, list) {
            default_container(c);
        }
    }
    for v in array_mut(s, "volumes") {
        default_volume(v);
    }
}

fn array_mut<'a>(o: &'a mut Map<String, Value>, field: &str) -> impl Iterator<Item = &'a mut Value> {
    o.get_mut(field).and_then(Value::as_array_mut).into_iter().flatten()
}

fn set_str_if_empty(o: &mut Map<String, Value>, field: &str, value: &str) {
    if o.get(field).and_then(Value::as_str).unwrap_or("").is_empty() {
        o.insert(field.into(), json!(value));
    }
}

fn default_container(c: &mut Value) {
    let Some(o) = c.as_object_mut() else { return };
    if o.get("imagePullPolicy").and_then(Value::as_str).unwrap_or("").is_empty() {
        let image = o.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = if image_tag(image).as_deref() == Some("latest") { "Always" } else { "IfNotPresent" };
        o.insert("imagePullPolicy".into(), json!(policy));
    }
    set_str_if_empty(o, "terminationMessagePath", "/dev/termination-log");
    set_str_if_empty(o, "terminationMessagePolicy", "File");
    if !o.get("resources").map(Value::is_object).unwrap_or(false) {
        o.insert("resources".into(), json!({}));
    }
    for p in array_mut(o, "ports") {
        if let Some(p) = p.as_object_mut() {
            set_str_if_empty(p, "protocol", "TCP");
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = o.get_mut(probe).filter(|p| p.is_object()) {
            default_probe(p);
        }
    }
    if let Some(lc) = o.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(hook).and_then(|h| h.get_mut("httpGet")).and_then(Value::as_object_mut) {
                default_http_get(h);
            }
        }
    }
    for e in array_mut(o, "env") {
        if let Some(fr) = e.pointer_mut("/valueFrom/fieldRef").and_then(Value::as_object_mut) {
            set_str_if_empty(fr, "apiVersion", "v1");
        }
    }
}

/// The tag an image reference resolves to: the explicit one, none for a digest-only
/// reference, and `latest` when neither is given. None for an empty reference.
fn image_tag(image: &str) -> Option<String> {
    if image.trim().is_empty() {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    // A ':' after the last '/' starts the tag; one before it is a registry port.
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => Some(tag.to_string()),
        None if digest.is_some() => None,
        None => Some("latest".to_string()),
    }
}

fn default_probe(p: &mut Value) {
    let Some(o) = p.as_object_mut() else { return };
    for (field, v) in [("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)] {
        if o.get(field).and_then(Value::as_i64).unwrap_or(0) == 0 {
            o.insert(field.into(), json!(v));
        }
    }
    if let Some(h) = o.get_mut("httpGet").and_then(Value::as_object_mut) {
        default_http_get(h);
    }
}

fn default_http_get(h: &mut Map<String, Value>) {
    set_str_if_empty(h, "path", "/");
    set_str_if_empty(h, "scheme", "HTTP");
}

/// Limits without requests: the pod requests what it is limited to.
fn default_requests_from_limits(c: &mut Value) {
    let Some(limits) = c.pointer("/resources/limits").and_then(Value::as_object).cloned() else { return };
    let res = &mut c["resources"];
    if !res.get("requests").map(Value::is_object).unwrap_or(false) {
        res["requests"] = json!({});
    }
    let requests = res["requests"].as_object_mut().expect("requests is an object");
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
];

fn default_volume(v: &mut Value) {
    let Some(o) = v.as_object_mut() else { return };
    // A volume with no source is an emptyDir.
    if !VOLUME_SOURCES.iter().any(|s| o.get(*s).map(|x| !x.is_null()).unwrap_or(false)) {
        o.insert("emptyDir".into(), json!({}));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = o.get_mut(src).and_then(Value::as_object_mut) {
            s.entry("defaultMode").or_insert(json!(DEFAULT_FILE_MODE));
        }
    }
    if let Some(hp) = o.get_mut("hostPath").and_then(Value::as_object_mut) {
        hp.entry("type").or_insert(json!(""));
    }
    if let Some(items) = o.get_mut("downwardAPI").and_then(|d| d.get_mut("items")).and_then(Value::as_array_mut) {
        default_field_refs(items);
    }
    if let Some(sources) = o.get_mut("projected").and_then(|p| p.get_mut("sources")).and_then(Value::as_array_mut) {
        for src in sources {
            if let Some(t) = src.get_mut("serviceAccountToken").and_then(Value::as_object_mut) {
                t.entry("expirationSeconds").or_insert(json!(3600));
            }
            if let Some(items) = src.pointer_mut("/downwardAPI/items").and_then(Value::as_array_mut) {
                default_field_refs(items);
            }
        }
    }
}

fn default_field_refs(items: &mut [Value]) {
    for item in items {
        if let Some(fr) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
            set_str_if_empty(fr, "apiVersion", "v1");
        }
    }
}

/// The ServiceAccount admission plugin: a pod runs as `default` unless told otherwise;
/// `serviceAccount` is the deprecated mirror of `serviceAccountName`.
fn admit_service_account(spec: &mut Map<String, Value>) {
    let name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| spec.get("serviceAccount").and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
}

/// The DefaultTolerationSeconds admission plugin: a pod stays 300s on a node that becomes
/// not-ready or unreachable, unless it already tolerates that taint.
fn admit_default_tolerations(spec: &mut Map<String, Value>) {
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !tolerations.is_array() {
        return;
    }
    let list = tolerations.as_array_mut().expect("tolerations is an array");
    for taint in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        let tolerated = list.iter().any(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (key == taint || key.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        });
        if !tolerated {
            list.push(json!({
                "key": taint,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
}

/// The Priority admission plugin without PriorityClasses: priority 0, preempting lower.
fn admit_priority(spec: &mut Map<String, Value>) {
    spec.entry("priority").or_insert(json!(0));
    if spec.get("preemptionPolicy").map(Value::is_null).unwrap_or(true) {
        spec.insert("preemptionPolicy".into(), json!("PreemptLowerPriority"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx_pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}
        })
    }

    #[test]
    fn docs_nginx_pod_gets_kube_apiserver_defaults() {
        let mut p = nginx_pod();
        default_pod(&mut p);
        let s = &p["spec"];
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["dnsPolicy"], "ClusterFirst");
        assert_eq!(s["schedulerName"], "default-scheduler");
        assert_eq!(s["terminationGracePeriodSeconds"], 30);
        assert_eq!(s["securityContext"], json!({}));
        assert_eq!(s["enableServiceLinks"], true);
        assert_eq!(s["serviceAccountName"], "default");
        assert_eq!(s["serviceAccount"], "default");
        assert_eq!(s["priority"], 0);
        assert_eq!(s["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(s["tolerations"], json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ]));
        let c = &s["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["resources"], json!({}));
        assert_eq!(c["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn defaulting_twice_changes_nothing() {
        let mut once = nginx_pod();
        default_pod(&mut once);
        let mut twice = once.clone();
        default_pod(&mut twice);
        assert_eq!(once, twice);
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("localhost:5000/nginx", "Always"),
            ("localhost:5000/nginx:1.2", "IfNotPresent"),
            ("nginx@sha256:0123456789abcdef", "IfNotPresent"),
            ("nginx:latest@sha256:0123456789abcdef", "Always"),
            ("registry.k8s.io/pause:3.10", "IfNotPresent"),
        ] {
            let mut c = json!({"name": "c", "image": image});
            default_container(&mut c);
            assert_eq!(c["imagePullPolicy"], policy, "{image}");
        }
        let mut c = json!({"name": "c", "image": "nginx", "imagePullPolicy": "Never"});
        default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], "Never");
    }

    #[test]
    fn probes_get_timing_defaults_and_http_scheme() {
        let mut p = nginx_pod();
        p["spec"]["containers"][0]["livenessProbe"] = json!({"httpGet": {"port": 80}});
        p["spec"]["containers"][0]["readinessProbe"] = json!({"tcpSocket": {"port": 80}, "periodSeconds": 5});
        default_pod(&mut p);
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["livenessProbe"], json!({
            "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
            "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
        }));
        assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
    }

    #[test]
    fn volumes_get_default_modes_and_an_empty_source_becomes_empty_dir() {
        let mut p = nginx_pod();
        p["spec"]["volumes"] = json!([
            {"name": "scratch"},
            {"name": "cfg", "configMap": {"name": "app-config"}},
            {"name": "creds", "secret": {"secretName": "db", "defaultMode": 256}},
            {"name": "host", "hostPath": {"path": "/var/log"}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        ]);
        default_pod(&mut p);
        let v = &p["spec"]["volumes"];
        assert_eq!(v[0]["emptyDir"], json!({}));
        assert_eq!(v[1]["configMap"]["defaultMode"], 420);
        assert_eq!(v[2]["secret"]["defaultMode"], 256);
        assert_eq!(v[3]["hostPath"]["type"], "");
        assert_eq!(v[4]["downwardAPI"]["defaultMode"], 420);
        assert_eq!(v[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"], "v1");
    }

    #[test]
    fn existing_not_ready_toleration_is_kept_and_not_duplicated() {
        let mut p = nginx_pod();
        p["spec"]["tolerations"] = json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]);
        default_pod(&mut p);
        let t = p["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 10);
        assert_eq!(t[1]["key"], "node.kubernetes.io/unreachable");
        let mut all = nginx_pod();
        all["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        default_pod(&mut all);
        assert_eq!(all["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn explicit_service_account_is_kept_and_mirrored() {
        let mut p = nginx_pod();
        p["spec"]["serviceAccountName"] = json!("builder");
        default_pod(&mut p);
        assert_eq!(p["spec"]["serviceAccount"], "builder");
        let mut legacy = nginx_pod();
        legacy["spec"]["serviceAccount"] = json!("old-style");
        default_pod(&mut legacy);
        assert_eq!(legacy["spec"]["serviceAccountName"], "old-style");
    }

    #[test]
    fn requests_default_to_limits_and_host_network_copies_ports() {
        let mut p = nginx_pod();
        p["spec"]["hostNetwork"] = json!(true);
        p["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}});
        default_pod(&mut p);
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["resources"]["requests"], json!({"cpu": "250m", "memory": "128Mi"}));
        assert_eq!(c["ports"][0]["hostPort"], 80);
    }

    #[test]
    fn negative_grace_period_becomes_one() {
        let mut p = nginx_pod();
        p["spec"]["terminationGracePeriodSeconds"] = json!(-5);
        default_pod(&mut p);
        assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 1);
    }
}
