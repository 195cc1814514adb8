//! Services with `weft up --nodes 2`, the behaviours Kubernetes' own e2e service tests
//! check (test/e2e/network/service.go), with real traffic: from pods (tools run inside
//! a pod's netns with nsenter) and, for NodePort and LoadBalancer, from the host side.

mod common;
use common::Cluster;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.52";

fn pod(name: &str, node: &str, app: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {app}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: {AGNHOST}\n    args: [{}]\n", args.join(", "))
}

fn netexec(name: &str, node: &str, app: &str) -> String {
    pod(name, node, app, &["netexec", "--http-port=8080", "--udp-port=8081"])
}

fn service(name: &str, app: &str, extra: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {app}}}\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n{extra}")
}

fn cluster_ip(c: &Cluster, svc: &str) -> String {
    c.ok(&["get", "service", svc, "-o", "jsonpath={.spec.clusterIP}"])
}

fn node_ip(c: &Cluster, node: &str) -> String {
    c.ok(&["get", "node", node, "-o", "jsonpath={.status.addresses[0].address}"])
}

/// Hostnames answering `n` requests to `url` from pod `from`.
fn hostnames(c: &Cluster, from: &str, url: &str, n: usize) -> BTreeSet<String> {
    let script = format!("for i in $(seq {n}); do curl -s -m 2 {url}/hostname; echo; done");
    c.in_pod(from, &script).lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// A helper process that dies with the test, even when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn host_curl(c: &Cluster, args: &str) -> (i32, String) {
    let out = c.sh(&format!("curl -s {args}"));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn should_serve_a_basic_endpoint_from_pods_and_reject_a_service_without_endpoints() {
    let c = Cluster::start();
    c.apply(&netexec("web-1", "node-1", "web"));
    c.apply(&netexec("web-2", "node-2", "web"));
    c.apply(&pod("client", "node-1", "client", &["pause"]));
    c.apply(&service("web", "web", ""));
    c.apply(&service("empty", "nothing", ""));
    for p in ["web-1", "web-2", "client"] {
        c.wait_running(p, 60);
    }
    let ip = cluster_ip(&c, "web");
    let mut seen = BTreeSet::new();
    c.eventually(60, "both endpoints to answer through the ClusterIP", || {
        seen.extend(hostnames(&c, "client", &format!("http://{ip}"), 8));
        seen.len() == 2
    });
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["web-1", "web-2"]);
    // Pod to ClusterIP keeps the pod's address (no masquerade from pods).
    let client_ip = c.ok(&["get", "pod", "client", "-o", "jsonpath={.status.podIP}"]);
    assert!(c.in_pod("client", &format!("curl -s -m 2 http://{ip}/clientip")).starts_with(&format!("{client_ip}:")));
    // No endpoints: refused at once (curl exit 7), not a timeout (28).
    let empty = cluster_ip(&c, "empty");
    assert_eq!(c.in_pod("client", &format!("curl -s -m 5 http://{empty}/; echo rc=$?")).trim(), "rc=7");
    // The introspection command shows the plan and that the kernel matches it.
    let out = c.inside(Command::new(env!("CARGO_BIN_EXE_weft")).args(["service-rules", "default/web", "--state-dir"]).arg(c.state_dir())).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("kernel: matches").count(), 2, "{text}");
    assert!(text.contains("dnat to one of") && text.contains(":8080"), "{text}");
}

#[test]
fn should_be_able_to_create_a_functioning_node_port_service_and_a_load_balancer_reachable_from_the_host() {
    let c = Cluster::start();
    c.apply(&netexec("lb-1", "node-2", "lb"));
    c.apply(&service("lb", "lb", "  type: LoadBalancer\n  externalTrafficPolicy: Local\n"));
    c.wait_running("lb-1", 60);
    c.eventually(30, "a load-balancer address", || !c.ok(&["get", "service", "lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"]).is_empty());
    let lb_ip = c.ok(&["get", "service", "lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"]);
    let node_port = c.ok(&["get", "service", "lb", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    let hc_port = c.ok(&["get", "service", "lb", "-o", "jsonpath={.spec.healthCheckNodePort}"]);
    let (n1, n2) = (node_ip(&c, "node-1"), node_ip(&c, "node-2"));
    // externalTrafficPolicy Local: the node with the endpoint serves, and the client's
    // address (the host side, 10.99.0.1) is preserved.
    let mut answer = String::new();
    c.eventually(60, "the node port on node-2", || {
        answer = host_curl(&c, &format!("-m 2 http://{n2}:{node_port}/clientip")).1;
        answer.starts_with("10.99.0.1:")
    });
    // The node without a local endpoint drops it (a timeout, not a refusal).
    assert_eq!(host_curl(&c, &format!("-m 1 http://{n1}:{node_port}/clientip")).0, 28);
    // healthCheckNodePort: 200 with the local endpoint count where there is one, 503 elsewhere.
    let (_, body) = host_curl(&c, &format!("-m 2 -w ' %{{http_code}}' http://{n2}:{hc_port}/"));
    assert!(body.contains("\"localEndpoints\":1") && body.ends_with(" 200"), "{body}");
    let (_, body) = host_curl(&c, &format!("-m 2 -w ' %{{http_code}}' http://{n1}:{hc_port}/"));
    assert!(body.ends_with(" 503"), "{body}");
    // The load-balancer address, from the host side, through the healthy node.
    c.eventually(30, "the load-balancer address to answer from the host side", || host_curl(&c, &format!("-m 2 http://{lb_ip}/hostname")).1 == "lb-1");
    // Cluster policy: every node serves its node port, masquerading.
    c.ok(&["patch", "service", "lb", "-p", r#"{"spec":{"externalTrafficPolicy":"Cluster","healthCheckNodePort":null}}"#]);
    c.eventually(30, "node-1 to serve the node port with Cluster policy", || host_curl(&c, &format!("-m 2 http://{n1}:{node_port}/hostname")).1 == "lb-1");
    // No health check with Cluster policy: its port is closed on every node (refused, curl 7).
    c.eventually(30, "the healthCheckNodePort to be closed on both nodes", || [&n1, &n2].iter().all(|n| host_curl(&c, &format!("-m 2 http://{n}:{hc_port}/")).0 == 7));
}

#[test]
fn should_create_endpoints_for_unready_pods_with_publish_not_ready_addresses() {
    let c = Cluster::start();
    // Never ready: its readiness probe knocks on a port nothing listens on.
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: unready\n  labels: {{app: unready}}\nspec:\n  nodeName: node-2\n  containers:\n  - name: c\n    image: {AGNHOST}\n    args: [netexec, --http-port=8080]\n    readinessProbe: {{tcpSocket: {{port: 9999}}, periodSeconds: 1}}\n"
    ));
    c.apply(&pod("client", "node-1", "client", &["pause"]));
    c.apply(&service("tolerant", "unready", "  publishNotReadyAddresses: true\n"));
    c.apply(&service("strict", "unready", ""));
    c.wait_running("unready", 60);
    c.wait_running("client", 60);
    let tolerant = cluster_ip(&c, "tolerant");
    c.eventually(60, "the unready pod to answer through the publishNotReadyAddresses service", || c.in_pod("client", &format!("curl -s -m 2 http://{tolerant}/hostname")) == "unready");
    assert_eq!(c.ok(&["get", "pod", "unready", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]), "False");
    // The same pod behind an ordinary service: no ready endpoint, refused at once.
    let strict = cluster_ip(&c, "strict");
    assert_eq!(c.in_pod("client", &format!("curl -s -m 5 http://{strict}/hostname; echo rc=$?")).trim(), "rc=7");
}

#[test]
fn should_implement_service_kubernetes_io_service_proxy_name() {
    let c = Cluster::start();
    c.apply(&netexec("web-1", "node-2", "web"));
    c.apply(&pod("client", "node-1", "client", &["pause"]));
    let labelled = "apiVersion: v1\nkind: Service\nmetadata:\n  name: other\n  labels: {service.kubernetes.io/service-proxy-name: foo-bar}\nspec:\n  selector: {app: web}\n  ports:\n  - {port: 80, targetPort: 8080}\n";
    c.apply(labelled);
    c.apply(&service("ours", "web", ""));
    c.wait_running("web-1", 60);
    c.wait_running("client", 60);
    let (ours, other) = (cluster_ip(&c, "ours"), cluster_ip(&c, "other"));
    let answers = |ip: &str| c.in_pod("client", &format!("curl -s -m 2 http://{ip}/hostname")) == "web-1";
    c.eventually(60, "the service without the label to be served", || answers(&ours));
    assert!(!answers(&other), "a service another proxy implements gets no rules from weft");
    c.ok(&["label", "service", "other", "service.kubernetes.io/service-proxy-name-"]);
    c.eventually(30, "the service to be served once the label is gone", || answers(&other));
    c.ok(&["label", "service", "other", "service.kubernetes.io/service-proxy-name=foo-bar"]);
    c.eventually(30, "the service to be left alone again with the label back", || !answers(&other));
}

/// The value of an unlabelled sample `name` in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

#[test]
fn the_proxy_serves_its_sync_metrics_on_port_10249_and_they_move_with_a_change() {
    let c = Cluster::start();
    let n1 = node_ip(&c, "node-1");
    let scrape = || host_curl(&c, &format!("-m 2 http://{n1}:10249/metrics")).1;
    let mut before = String::new();
    c.eventually(60, "the first full sync to be counted", || {
        before = scrape();
        sample(&before, "weft_proxy_sync_full_proxy_rules_duration_seconds_count") >= 1.0
    });
    assert!(sample(&before, "weft_proxy_sync_proxy_rules_last_timestamp_seconds") > 1.7e9, "{before}");
    c.apply(&netexec("m-1", "node-2", "m"));
    c.apply(&service("m", "m", ""));
    c.wait_running("m-1", 60);
    let elements = "weft_proxy_sync_proxy_rules_elements_applied_total";
    c.eventually(60, "a partial sync writing the new service's elements", || {
        let now = scrape();
        sample(&now, "weft_proxy_sync_partial_proxy_rules_duration_seconds_count") > sample(&before, "weft_proxy_sync_partial_proxy_rules_duration_seconds_count")
            && sample(&now, elements) >= sample(&before, elements) + 2.0
            && sample(&now, "weft_proxy_sync_proxy_rules_last_timestamp_seconds") > sample(&before, "weft_proxy_sync_proxy_rules_last_timestamp_seconds")
    });
}

#[test]
fn should_allow_pods_to_hairpin_back_to_themselves_through_services() {
    let c = Cluster::start();
    c.apply(&netexec("self", "node-1", "self"));
    c.apply(&service("self", "self", ""));
    c.wait_running("self", 60);
    let ip = cluster_ip(&c, "self");
    c.eventually(60, "the pod to reach itself through its service", || c.in_pod("self", &format!("curl -s -m 2 http://{ip}/hostname")) == "self");
}

#[test]
fn should_be_able_to_switch_session_affinity_and_have_session_affinity_work() {
    let c = Cluster::start();
    c.apply(&netexec("aff-1", "node-1", "aff"));
    c.apply(&netexec("aff-2", "node-2", "aff"));
    c.apply(&pod("client", "node-1", "client", &["pause"]));
    c.apply(&service("aff", "aff", "  sessionAffinity: ClientIP\n"));
    for p in ["aff-1", "aff-2", "client"] {
        c.wait_running(p, 60);
    }
    let url = format!("http://{}", cluster_ip(&c, "aff"));
    c.eventually(60, "the service to answer", || !hostnames(&c, "client", &url, 1).is_empty());
    c.eventually(30, "both endpoints ready", || c.ok(&["get", "endpointslices", "-l", "kubernetes.io/service-name=aff", "-o", "jsonpath={.items[*].endpoints[*].addresses[0]}"]).split_whitespace().count() == 2);
    assert_eq!(hostnames(&c, "client", &url, 12).len(), 1, "ClientIP affinity: one endpoint for one client");
    c.ok(&["patch", "service", "aff", "-p", r#"{"spec":{"sessionAffinity":"None"}}"#]);
    let mut seen = BTreeSet::new();
    c.eventually(60, "both endpoints once affinity is off", || {
        seen.extend(hostnames(&c, "client", &url, 8));
        seen.len() == 2
    });
    c.ok(&["patch", "service", "aff", "-p", r#"{"spec":{"sessionAffinity":"ClientIP"}}"#]);
    c.eventually(30, "affinity back on", || hostnames(&c, "client", &url, 12).len() == 1);
}

#[test]
fn weft_keeps_established_connections_through_a_cluster_ip_across_kill_9_and_restart_without_rebuilding_the_table() {
    let mut c = Cluster::start();
    c.apply(&pod("backend", "node-2", "backend", &["pause"]));
    c.apply(&pod("client", "node-1", "client", &["pause"]));
    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\nspec:\n  selector: {app: backend}\n  ports:\n  - {port: 9000, targetPort: 9000}\n");
    c.wait_running("backend", 60);
    c.wait_running("client", 60);
    let ip = cluster_ip(&c, "echo");
    // A line echo server that is not a container of weft's, so a restart of weft leaves it be.
    let server = "import socket,threading\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind((\"0.0.0.0\",9000));s.listen()\ndef h(c):\n  f=c.makefile(\"rwb\",0)\n  for l in f: f.write(l)\nwhile True:\n  c,_=s.accept();threading.Thread(target=h,args=(c,),daemon=True).start()\n";
    let _srv = KillOnDrop(c.inside(Command::new("nsenter").arg(format!("--net={}", c.pod_dir("backend").join("netns").display())).args(["python3", "-c", server])).stdout(Stdio::null()).spawn().unwrap());
    let client = format!("import socket,sys,time\nfor i in range(100):\n  try:\n    s=socket.create_connection((\"{ip}\",9000),timeout=2);break\n  except OSError: time.sleep(0.2)\nf=s.makefile(\"rwb\",0)\nfor l in sys.stdin:\n  f.write(l.encode());sys.stdout.write(f.readline().decode());sys.stdout.flush()\n");
    let mut cli = KillOnDrop(c.inside(Command::new("nsenter").arg(format!("--net={}", c.pod_dir("client").join("netns").display())).args(["python3", "-u", "-c", &client]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap());
    let mut to = cli.0.stdin.take().unwrap();
    let mut from = BufReader::new(cli.0.stdout.take().unwrap());
    let mut line = String::new();
    writeln!(to, "before").unwrap();
    from.read_line(&mut line).unwrap();
    assert_eq!(line, "before\n", "the connection through the ClusterIP works");
    // The proxy logs each full sync with the objects it wrote (`weight`); the sync after a
    // restart must write nothing. (The `nft` 1.0 CLI aborts listing parts of this table, so
    // the table is judged by weft's own read-back instead.)
    let plain = |log: String| -> String {
        let mut out = String::new();
        let mut esc = false;
        for ch in log.chars() {
            match (esc, ch) {
                (false, '\u{1b}') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    };
    let synced = c.log().matches("proxy table in sync").count();
    c.kill9();
    c.up();
    c.eventually(60, "the restarted proxy to sync on both nodes", || c.log().matches("proxy table in sync").count() >= synced + 2);
    let log = plain(c.log());
    let syncs: Vec<&str> = log.lines().filter(|l| l.contains("proxy table in sync")).collect();
    let weight = |l: &str| -> u64 { l.split(" weight=").nth(1).and_then(|w| w.split(' ').next()).and_then(|w| w.parse().ok()).unwrap_or(u64::MAX) };
    let first_full = weight(syncs[0]);
    let resyncs = &syncs[synced..];
    // Nothing is recreated and the resync writes far less than the first full sync: only
    // what really changed while weft was down (the harness starts the API server on a
    // free port, so the `kubernetes` service's endpoint moves: one element out, one in).
    assert!(
        resyncs.len() >= 2 && resyncs.iter().all(|l| l.contains("recreated=false") && weight(l) * 4 < first_full),
        "the restart rebuilt the table (first sync wrote {first_full}): {resyncs:#?}"
    );
    // The service's map elements and rules, read back by weft itself, match its plan.
    let rules = c.inside(Command::new(env!("CARGO_BIN_EXE_weft")).args(["service-rules", "default/echo", "--state-dir"]).arg(c.state_dir())).output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).to_string();
    assert!(rules.contains("kernel: matches") && rules.contains(&ip), "{rules}");
    line.clear();
    writeln!(to, "after").unwrap();
    from.read_line(&mut line).unwrap();
    assert_eq!(line, "after\n", "the established connection survived the restart");
}

/// UDP to `ip:port` from pod `from` with netexec's UDP protocol ("hostname" → its name).
fn udp_hostname(c: &Cluster, from: &str, ip: &str, port: u16) -> String {
    let py = format!("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(1)\nfor i in range(3):\n  s.sendto(b\"hostname\",(\"{ip}\",{port}))\n  try:\n    print(s.recv(100).decode());break\n  except OSError: pass\n");
    c.in_pod(from, &format!("python3 -c {}", shell_quote(&py))).trim().to_string()
}

fn shell_quote(s: &str) -> String {
    // For in_pod's single-quoted sh -c: no single quotes inside, so wrap in double quotes
    // with the few characters sh expands there escaped.
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('`', "\\`"))
}

#[test]
fn should_serve_endpoints_on_same_port_and_different_protocols_and_update_to_node_port() {
    let c = Cluster::start();
    c.apply(&netexec("dual", "node-2", "dual"));
    c.apply(&pod("client", "node-1", "client", &["pause"]));
    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: dual\nspec:\n  selector: {app: dual}\n  ports:\n  - {name: tcp, port: 80, targetPort: 8080, protocol: TCP}\n  - {name: udp, port: 80, targetPort: 8081, protocol: UDP}\n");
    c.wait_running("dual", 60);
    c.wait_running("client", 60);
    let ip = cluster_ip(&c, "dual");
    c.eventually(60, "TCP on port 80", || c.in_pod("client", &format!("curl -s -m 2 http://{ip}/hostname")) == "dual");
    c.eventually(30, "UDP on port 80", || udp_hostname(&c, "client", &ip, 80) == "dual");
    // To NodePort: both protocols on their node ports, from the host side for TCP.
    c.ok(&["patch", "service", "dual", "-p", r#"{"spec":{"type":"NodePort"}}"#]);
    let ports = c.ok(&["get", "service", "dual", "-o", "jsonpath={.spec.ports[*].nodePort}"]);
    let ports: Vec<u16> = ports.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    let n1 = node_ip(&c, "node-1");
    c.eventually(30, "the TCP node port from the host side", || host_curl(&c, &format!("-m 2 http://{n1}:{}/hostname", ports[0])).1 == "dual");
    c.eventually(30, "the UDP node port from a pod", || udp_hostname(&c, "client", &n1, ports[1]) == "dual");
}

#[test]
fn should_be_able_to_change_the_type_from_cluster_ip_to_node_port_and_to_external_name() {
    let c = Cluster::start();
    c.apply(&netexec("ty", "node-1", "ty"));
    c.apply(&service("ty", "ty", ""));
    c.wait_running("ty", 60);
    c.ok(&["patch", "service", "ty", "-p", r#"{"spec":{"type":"NodePort"}}"#]);
    let node_port = c.ok(&["get", "service", "ty", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    let n2 = node_ip(&c, "node-2");
    c.eventually(60, "the new node port on every node", || host_curl(&c, &format!("-m 2 http://{n2}:{node_port}/hostname")).1 == "ty");
    c.ok(&["patch", "service", "ty", "-p", r#"{"spec":{"type":"ExternalName","externalName":"example.test","clusterIP":null,"clusterIPs":null}}"#]);
    // ExternalName has no proxy rules: nothing answers the old node port any more.
    c.eventually(30, "the node port to go away", || host_curl(&c, &format!("-m 1 http://{n2}:{node_port}/hostname")).0 != 0);
}

#[test]
fn should_only_target_local_endpoints_with_internal_traffic_policy_local() {
    let c = Cluster::start();
    c.apply(&netexec("itp", "node-2", "itp"));
    c.apply(&pod("near", "node-2", "client", &["pause"]));
    c.apply(&pod("far", "node-1", "client", &["pause"]));
    c.apply(&service("itp", "itp", "  internalTrafficPolicy: Local\n"));
    for p in ["itp", "near", "far"] {
        c.wait_running(p, 60);
    }
    let ip = cluster_ip(&c, "itp");
    c.eventually(60, "a client on the endpoint's node to reach it", || c.in_pod("near", &format!("curl -s -m 2 http://{ip}/hostname")) == "itp");
    // No local endpoint on node-1: dropped there (a timeout, curl 28), not sent across.
    assert_eq!(c.in_pod("far", &format!("curl -s -m 1 http://{ip}/hostname; echo rc=$?")).trim(), "rc=28");
}
