//! Probes and lifecycle hooks through a real `weft up` and kubectl: readiness drives the
//! pod's Ready condition and its Service endpoints, liveness failures restart the
//! container with events, exec and startup probes, preStop before SIGTERM, postStart.

mod common;
use common::Cluster;
use serde_json::Value;

fn json(c: &Cluster, args: &[&str]) -> Value {
    serde_json::from_str(&c.ok(args)).unwrap()
}

fn pod_json(c: &Cluster, name: &str) -> Value {
    json(c, &["get", "pod", name, "-o", "json"])
}

fn condition(pod: &Value, ty: &str) -> (String, String) {
    let conds = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let c = conds.iter().find(|c| c["type"] == ty).cloned().unwrap_or(Value::Null);
    (c["status"].as_str().unwrap_or_default().to_string(), c["lastTransitionTime"].as_str().unwrap_or_default().to_string())
}

fn ready(c: &Cluster, name: &str) -> String {
    condition(&pod_json(c, name), "Ready").0
}

/// The `ready` condition of the pod's endpoint in the Service's EndpointSlices.
fn endpoint_ready(c: &Cluster, svc: &str, pod: &str) -> Option<bool> {
    let slices = json(c, &["get", "endpointslices", "-l", &format!("kubernetes.io/service-name={svc}"), "-o", "json"]);
    slices["items"].as_array()?.iter().flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default()).find(|e| e["targetRef"]["name"] == pod).and_then(|e| e["conditions"]["ready"].as_bool())
}

/// Messages of the events with this reason about this pod.
fn events(c: &Cluster, pod: &str, reason: &str) -> Vec<String> {
    let all = json(c, &["get", "events", "-o", "json"]);
    all["items"].as_array().cloned().unwrap_or_default().iter().filter(|e| e["involvedObject"]["name"] == pod && e["reason"] == reason).map(|e| e["message"].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn readiness_http_probe_flips_ready_and_the_service_endpoint_follows() {
    let c = Cluster::start();
    let www = c.state_dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("ready"), "ok").unwrap();
    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n    targetPort: 8080\n");
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {{app: web}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [httpd, -f, -p, '8080', -h, '{}']\n    ports:\n    - {{name: http, containerPort: 8080}}\n    readinessProbe:\n      httpGet: {{path: /ready, port: http}}\n      periodSeconds: 1\n      failureThreshold: 1\n",
        www.display()
    ));
    c.eventually(60, "pod web Ready", || ready(&c, "web") == "True");
    c.eventually(30, "the endpoint ready", || endpoint_ready(&c, "web", "web") == Some(true));
    assert_eq!(c.ok(&["get", "pod", "web", "-o", "jsonpath={.status.containerStatuses[0].ready}"]), "true");
    let became_ready = condition(&pod_json(&c, "web"), "Ready").1;

    std::fs::remove_file(www.join("ready")).unwrap();
    c.eventually(30, "pod web not Ready", || ready(&c, "web") == "False");
    let pod = pod_json(&c, "web");
    let conds = pod["status"]["conditions"].as_array().unwrap().clone();
    let r = conds.iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(r["reason"], "ContainersNotReady", "{r}");
    assert_eq!(r["message"], "containers with unready status: [c]", "{r}");
    assert_eq!(condition(&pod, "ContainersReady").0, "False");
    assert_eq!(pod["status"]["containerStatuses"][0]["ready"], false);
    assert_eq!(pod["status"]["phase"], "Running", "an unready pod keeps running");
    c.eventually(30, "the endpoint not ready", || endpoint_ready(&c, "web", "web") == Some(false));
    c.eventually(20, "an Unhealthy event", || events(&c, "web", "Unhealthy").iter().any(|m| m == "Readiness probe failed: HTTP probe failed with statuscode: 404"));

    std::fs::write(www.join("ready"), "ok").unwrap();
    c.eventually(30, "pod web Ready again", || ready(&c, "web") == "True");
    c.eventually(30, "the endpoint ready again", || endpoint_ready(&c, "web", "web") == Some(true));
    let pod = pod_json(&c, "web");
    assert_ne!(condition(&pod, "Ready").1, "", "lastTransitionTime is set");
    assert!(condition(&pod, "Ready").1 >= became_ready);
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0, "readiness failures never restart");
    let r = pod["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
    assert!(r.get("reason").is_none() && r.get("message").is_none(), "a True condition carries no reason: {r}");
}

#[test]
fn a_ready_condition_keeps_its_transition_time_while_nothing_changes() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: steady\nspec:\n  containers:\n  - name: c\n    image: registry.k8s.io/e2e-test-images/agnhost:2.52\n    args: [netexec, --http-port=8080]\n    readinessProbe:\n      httpGet: {path: /healthz, port: 8080}\n      periodSeconds: 1\n");
    c.eventually(60, "pod steady Ready", || ready(&c, "steady") == "True");
    let t = condition(&pod_json(&c, "steady"), "Ready").1;
    // Many probe periods later, no transition: the time is the same.
    let restarts = || c.ok(&["get", "pod", "steady", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"]);
    for _ in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(condition(&pod_json(&c, "steady"), "Ready"), ("True".to_string(), t.clone()));
    }
    assert_eq!(restarts(), "0");
}

#[test]
fn a_failing_liveness_probe_restarts_the_container_with_events() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: sick\nspec:\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: c\n    image: debian\n    command: [sleep, '3600']\n    livenessProbe:\n      tcpSocket: {port: 81}\n      periodSeconds: 1\n      failureThreshold: 2\n");
    c.eventually(90, "two restarts", || c.ok(&["get", "pod", "sick", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"]).parse::<u32>().unwrap_or(0) >= 2);
    let pod = pod_json(&c, "sick");
    let last = &pod["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["reason"], "Error", "{last}");
    assert_eq!(last["exitCode"], 143, "sleep ends on SIGTERM: {last}");
    let ip = pod["status"]["podIP"].as_str().unwrap().to_string();
    let unhealthy = events(&c, "sick", "Unhealthy");
    assert!(unhealthy.iter().any(|m| *m == format!("Liveness probe failed: dial tcp {ip}:81: connect: connection refused")), "{unhealthy:?}");
    let killing = events(&c, "sick", "Killing");
    assert!(killing.iter().any(|m| m == "Container c failed liveness probe, will be restarted"), "{killing:?}");
    let describe = c.ok(&["describe", "pod", "sick"]);
    assert!(describe.contains("Unhealthy") && describe.contains("Liveness probe failed"), "{describe}");
}

#[test]
fn exec_startup_and_readiness_probes_follow_files_in_the_container() {
    let c = Cluster::start();
    let dir = c.state_dir().join("flags");
    std::fs::create_dir_all(&dir).unwrap();
    let (started, ready_flag) = (dir.join("started"), dir.join("ready"));
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: flags\nspec:\n  containers:\n  - name: c\n    image: debian\n    command: [sleep, '3600']\n    startupProbe:\n      exec: {{command: [test, -f, '{}']}}\n      periodSeconds: 1\n      failureThreshold: 600\n    readinessProbe:\n      exec: {{command: [test, -f, '{}']}}\n      periodSeconds: 1\n      failureThreshold: 1\n",
        started.display(),
        ready_flag.display()
    ));
    let status = |f: &str| c.ok(&["get", "pod", "flags", "-o", &format!("jsonpath={{.status.containerStatuses[0].{f}}}")]);
    c.eventually(60, "the container running", || !status("state.running.startedAt").is_empty());
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!((status("started").as_str(), status("ready").as_str()), ("false", "false"), "not started before the startup probe passes");
    std::fs::write(&ready_flag, "").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(status("ready"), "false", "readiness waits for the startup probe");
    std::fs::write(&started, "").unwrap();
    c.eventually(30, "started", || status("started") == "true");
    c.eventually(30, "ready", || status("ready") == "true");
    assert_eq!(ready(&c, "flags"), "True");
    std::fs::remove_file(&ready_flag).unwrap();
    c.eventually(30, "not ready", || status("ready") == "false");
    assert_eq!(status("started"), "true");
    assert_eq!(status("restartCount"), "0");
}

#[test]
fn pre_stop_runs_before_sigterm_and_post_start_after_the_start() {
    let c = Cluster::start();
    let out = c.state_dir().join("hooks.log");
    let o = out.display();
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hooked\nspec:\n  terminationGracePeriodSeconds: 20\n  containers:\n  - name: c\n    image: debian\n    command: [sh, -c, 'trap \"echo sigterm >> {o}; exit 0\" TERM; echo started >> {o}; while true; do sleep 0.2; done']\n    lifecycle:\n      postStart:\n        exec: {{command: [sh, -c, 'echo poststart >> {o}']}}\n      preStop:\n        exec: {{command: [sh, -c, 'echo prestop >> {o}']}}\n"
    ));
    c.eventually(60, "postStart to run", || std::fs::read_to_string(&out).unwrap_or_default().contains("poststart"));
    c.eventually(30, "started", || c.ok(&["get", "pod", "hooked", "-o", "jsonpath={.status.containerStatuses[0].started}"]) == "true");
    c.ok(&["delete", "pod", "hooked", "--timeout=60s"]);
    let log = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| *l != "started" && *l != "poststart").collect();
    assert_eq!(lines, ["prestop", "sigterm"], "preStop runs, then SIGTERM: {log}");
}

#[test]
fn a_container_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let c = Cluster::start();
    let pidfile = c.state_dir().join("stubborn.pid");
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: stubborn\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: debian\n    command: [sh, -c, 'trap \"\" TERM; echo $$$$ > {}; while true; do sleep 0.2; done']\n",
        pidfile.display()
    ));
    // `$$$$` is the shell's `$$`: the kubelet's `$(VAR)` expansion turns `$$` into `$`.
    c.eventually(60, "the pid file", || std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n')));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
    c.ok(&["delete", "pod", "stubborn", "--timeout=60s"]);
    c.eventually(10, "the process to be gone", || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err());
}

#[test]
fn a_host_network_pod_is_probed_at_its_nodes_ip() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: hostnet\nspec:\n  nodeName: node-2\n  hostNetwork: true\n  containers:\n  - name: c\n    image: registry.k8s.io/e2e-test-images/agnhost:2.52\n    args: [netexec, --http-port=8099]\n    readinessProbe:\n      tcpSocket: {port: 8099}\n      periodSeconds: 1\n    livenessProbe:\n      httpGet: {path: /healthz, port: 8099}\n      periodSeconds: 1\n");
    c.eventually(60, "hostnet Ready", || ready(&c, "hostnet") == "True");
    let node_ip = c.ok(&["get", "node", "node-2", "-o", "jsonpath={.status.addresses[0].address}"]);
    assert_eq!(c.ok(&["get", "pod", "hostnet", "-o", "jsonpath={.status.podIP}"]), node_ip);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(c.ok(&["get", "pod", "hostnet", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"]), "0", "the liveness probe passes");
}
