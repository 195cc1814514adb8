//! Init containers and volumes through a real `weft up` and kubectl: init containers run
//! in order to completion before the app (with `Init:N/M` in `kubectl get pods`), a
//! failing one fails a `restartPolicy: Never` pod, emptyDir is shared between
//! containers, configMap/secret/downwardAPI files appear where mounted, and the host's
//! filesystem never gets the mount points.

mod common;
use common::Cluster;
use std::path::Path;

fn status_column(c: &Cluster, pod: &str) -> String {
    let out = c.ok(&["get", "pod", pod, "--no-headers"]);
    out.split_whitespace().nth(2).unwrap_or_default().to_string()
}

/// What a container printed, through `kubectl logs`, once it contains `want`.
fn wait_log(c: &Cluster, pod: &str, container: &str, want: &str) -> String {
    let mut text = String::new();
    c.eventually(60, &format!("{want:?} in the log of {pod}/{container}"), || {
        let out = c.kubectl(&["logs", pod, "-c", container]);
        text = String::from_utf8_lossy(&out.stdout).to_string();
        text.contains(want)
    });
    text
}

/// A shell step that waits for a file the test creates.
fn wait_for(f: &Path) -> String {
    format!("while [ ! -f {} ]; do sleep 0.2; done", f.display())
}

#[test]
fn init_containers_run_in_order_sharing_an_empty_dir_before_the_app() {
    let c = Cluster::start();
    let (go1, go2) = (c.state_dir().join("go1"), c.state_dir().join("go2"));
    // /weft-work does not exist on the host: the containers get it in a root of their own.
    c.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: ordered
spec:
  initContainers:
  - name: first
    image: debian
    command: [sh, -c, '{w1}; echo one > /weft-work/first']
    volumeMounts: [{{name: work, mountPath: /weft-work}}]
  - name: second
    image: debian
    command: [sh, -c, '{w2}; cat /weft-work/first > /weft-work/second; echo two >> /weft-work/second']
    volumeMounts: [{{name: work, mountPath: /weft-work}}]
  containers:
  - name: app
    image: debian
    command: [sh, -c, 'cat /weft-work/second; sleep 3600']
    volumeMounts: [{{name: work, mountPath: /weft-work}}]
  volumes:
  - name: work
    emptyDir: {{}}
"#,
        w1 = wait_for(&go1),
        w2 = wait_for(&go2)
    ));
    c.eventually(60, "Init:0/2", || status_column(&c, "ordered") == "Init:0/2");
    assert_eq!(c.ok(&["get", "pod", "ordered", "-o", "jsonpath={.status.phase}"]), "Pending");
    assert_eq!(c.ok(&["get", "pod", "ordered", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}"]), "PodInitializing");
    assert_eq!(c.ok(&["get", "pod", "ordered", "-o", "jsonpath={.status.initContainerStatuses[1].state.waiting.reason}"]), "PodInitializing");
    let cond = c.ok(&["get", "pod", "ordered", "-o", "jsonpath={.status.conditions[?(@.type==\"Initialized\")].message}"]);
    assert_eq!(cond, "containers with incomplete status: [first second]");
    std::fs::write(&go1, "").unwrap();
    c.eventually(60, "Init:1/2", || status_column(&c, "ordered") == "Init:1/2");
    assert_eq!(c.ok(&["get", "pod", "ordered", "-o", "jsonpath={.status.initContainerStatuses[0].state.terminated.reason}"]), "Completed");
    std::fs::write(&go2, "").unwrap();
    c.eventually(60, "Running", || status_column(&c, "ordered") == "Running");
    let text = wait_log(&c, "ordered", "app", "two");
    assert_eq!(text, "one\ntwo\n", "the second init container saw the first's file");
    assert_eq!(c.ok(&["get", "pod", "ordered", "-o", "jsonpath={.status.conditions[?(@.type==\"Initialized\")].status}"]), "True");
    assert!(!Path::new("/weft-work").exists(), "the host got the mount point");
}

#[test]
fn a_failing_init_container_fails_a_never_restarting_pod_and_retries_otherwise() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: doomed\nspec:\n  restartPolicy: Never\n  initContainers:\n  - name: setup\n    image: debian\n    command: [sh, -c, 'exit 3']\n  containers:\n  - name: app\n    image: debian\n    command: [sleep, '3600']\n");
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: retrying\nspec:\n  initContainers:\n  - name: setup\n    image: debian\n    command: [sh, -c, 'exit 1']\n  containers:\n  - name: app\n    image: debian\n    command: [sleep, '3600']\n");
    c.eventually(60, "doomed Failed", || c.ok(&["get", "pod", "doomed", "-o", "jsonpath={.status.phase}"]) == "Failed");
    assert_eq!(status_column(&c, "doomed"), "Init:Error");
    assert_eq!(c.ok(&["get", "pod", "doomed", "-o", "jsonpath={.status.initContainerStatuses[0].state.terminated.exitCode}"]), "3");
    assert_eq!(c.ok(&["get", "pod", "doomed", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}"]), "PodInitializing", "the app never started");
    c.eventually(60, "retrying restarted its init container", || {
        c.ok(&["get", "pod", "retrying", "-o", "jsonpath={.status.initContainerStatuses[0].restartCount}"]).parse::<u32>().unwrap_or(0) >= 2
    });
    let s = status_column(&c, "retrying");
    assert!(s == "Init:CrashLoopBackOff" || s == "Init:Error", "{s}");
    assert_eq!(c.ok(&["get", "pod", "retrying", "-o", "jsonpath={.status.phase}"]), "Pending");
}

#[test]
fn a_sidecar_init_container_keeps_running_beside_the_app() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: sidecar\nspec:\n  initContainers:\n  - name: proxy\n    image: debian\n    restartPolicy: Always\n    command: [sleep, '3600']\n  - name: setup\n    image: debian\n    command: [sh, -c, 'exit 0']\n  containers:\n  - name: app\n    image: debian\n    command: [sleep, '3600']\n");
    c.eventually(60, "2/2 Running", || {
        let row = c.ok(&["get", "pod", "sidecar", "--no-headers"]);
        row.split_whitespace().nth(1) == Some("2/2") && row.split_whitespace().nth(2) == Some("Running")
    });
    assert!(!c.ok(&["get", "pod", "sidecar", "-o", "jsonpath={.status.initContainerStatuses[0].state.running.startedAt}"]).is_empty(), "the sidecar runs");
    assert_eq!(c.ok(&["get", "pod", "sidecar", "-o", "jsonpath={.status.initContainerStatuses[1].state.terminated.reason}"]), "Completed");
}

#[test]
fn config_map_secret_and_downward_api_files_appear_read_only_where_mounted() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  app.conf: \"color=blue\\n\"\n  unused: x\n");
    c.apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: s3cret\n");
    c.apply(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: files
  labels: {app: files}
spec:
  containers:
  - name: c
    image: debian
    command: [sh, -c, 'cat /etc/weft-app/conf/app.conf; stat -c %a /etc/weft-app/conf/app.conf; ls /etc/weft-app; cat /weft-secrets/password; echo; cat /weft-info/labels; echo; touch /etc/weft-app/new 2>/dev/null || echo read-only; grep -q 10.96.0.10 /etc/resolv.conf && echo dns-kept; test -f /etc/passwd && echo etc-kept; sleep 3600']
    readinessProbe:
      exec: {command: [grep, -q, color=red, /etc/weft-app/conf/app.conf]}
      periodSeconds: 1
    volumeMounts:
    - {name: config, mountPath: /etc/weft-app}
    - {name: secret, mountPath: /weft-secrets}
    - {name: info, mountPath: /weft-info}
  volumes:
  - name: config
    configMap:
      name: app-config
      items: [{key: app.conf, path: conf/app.conf, mode: 0400}]
  - name: secret
    secret: {secretName: creds}
  - name: info
    downwardAPI:
      items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
"#,
    );
    let text = wait_log(&c, "files", "c", "etc-kept");
    assert_eq!(text, "color=blue\n400\nconf\ns3cret\napp=\"files\"\nread-only\ndns-kept\netc-kept\n");
    // An update of the config map reaches the running container (the exec probe looks
    // from inside it, through its mounts).
    assert_eq!(c.ok(&["get", "pod", "files", "-o", "jsonpath={.status.containerStatuses[0].ready}"]), "false");
    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  app.conf: \"color=red\\n\"\n");
    c.eventually(90, "the update seen in the container", || c.ok(&["get", "pod", "files", "-o", "jsonpath={.status.containerStatuses[0].ready}"]) == "true");
    for p in ["/etc/weft-app", "/weft-secrets", "/weft-info"] {
        assert!(!Path::new(p).exists(), "the host got {p}");
    }
}

#[test]
fn an_empty_dir_is_shared_between_the_containers_of_a_pod() {
    let c = Cluster::start();
    c.apply(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: shared
spec:
  containers:
  - name: writer
    image: debian
    command: [sh, -c, 'echo hello from writer > /weft-data/msg; sleep 3600']
    volumeMounts: [{name: data, mountPath: /weft-data}]
  - name: reader
    image: busybox
    command: [sh, -c, 'while [ ! -f /shared/msg ]; do sleep 0.2; done; cat /shared/msg; sleep 3600']
    volumeMounts: [{name: data, mountPath: /shared, readOnly: true}]
  volumes:
  - name: data
    emptyDir: {}
"#,
    );
    assert_eq!(wait_log(&c, "shared", "reader", "writer"), "hello from writer\n");
    // The volume's directory goes with the pod.
    let dir = c.pod_dir("shared").join("volumes/data");
    assert!(dir.join("msg").exists());
    c.ok(&["delete", "pod", "shared", "--timeout=60s"]);
    assert!(!dir.exists(), "{} is left", dir.display());
}

#[test]
fn an_unsupported_volume_type_waits_with_a_reason_naming_it() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: claimed\nspec:\n  containers:\n  - name: c\n    image: debian\n    command: [sleep, '3600']\n    volumeMounts: [{name: data, mountPath: /data}]\n  volumes:\n  - name: data\n    persistentVolumeClaim: {claimName: mine}\n");
    c.eventually(60, "VolumeNotSupported", || c.ok(&["get", "pod", "claimed", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}"]) == "VolumeNotSupported");
    let msg = c.ok(&["get", "pod", "claimed", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}"]);
    assert!(msg.contains("volume \"data\"") && msg.contains("persistentVolumeClaim"), "{msg}");
    assert_eq!(status_column(&c, "claimed"), "VolumeNotSupported");
}
