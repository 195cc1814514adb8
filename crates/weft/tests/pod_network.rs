//! Pod networking with `weft up --nodes 2`: pods are network namespaces with IPs from
//! their node's pod CIDR, reach each other across nodes without NAT, and host programs
//! run inside them with the pod's own resolv.conf, hosts and environment.

mod common;
use common::Cluster;
use std::path::PathBuf;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.52";

fn pod(name: &str, node: &str, image: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: {image}\n    args: [{}]\n", args.join(", "))
}

fn wait_running(c: &Cluster, name: &str) -> String {
    c.eventually(30, &format!("pod {name} running with an IP"), || {
        c.ok(&["get", "pod", name, "-o", "jsonpath={.status.phase} {.status.podIP}"]).starts_with("Running 1")
    });
    c.ok(&["get", "pod", name, "-o", "jsonpath={.status.podIP}"])
}

/// The pod's network namespace file, for running test tools inside the pod.
fn netns_of(c: &Cluster, name: &str) -> PathBuf {
    let uid = c.ok(&["get", "pod", name, "-o", "jsonpath={.metadata.uid}"]);
    let node = c.ok(&["get", "pod", name, "-o", "jsonpath={.spec.nodeName}"]);
    c.state_dir().join("nodes").join(node).join("pods").join(uid).join("netns")
}

fn in_pod(c: &Cluster, name: &str, script: &str) -> String {
    let out = c.sh(&format!("nsenter --net={} sh -c '{script}'", netns_of(c, name).display()));
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn pods_on_two_nodes_reach_each_other_and_the_server_sees_the_client_pod_ip() {
    let c = Cluster::start();
    c.apply(&pod("server", "node-1", AGNHOST, &["netexec", "--http-port=8080"]));
    c.apply(&pod("client", "node-2", AGNHOST, &["pause"]));
    let server_ip = wait_running(&c, "server");
    let client_ip = wait_running(&c, "client");
    assert!(server_ip.starts_with("10.244.") && client_ip.starts_with("10.244."), "{server_ip} {client_ip}");
    let wide = c.ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.contains(&server_ip) && wide.contains("node-1") && wide.contains("node-2"), "{wide}");
    let mut seen = String::new();
    c.eventually(20, "the server to answer", || {
        seen = in_pod(&c, "client", &format!("curl -s -m 2 http://{server_ip}:8080/clientip"));
        seen.starts_with(&format!("{client_ip}:"))
    });
    assert_eq!(in_pod(&c, "client", &format!("curl -s -m 2 http://{server_ip}:8080/hostname")), "server");
    // Node addresses: InternalIP on the underlay, reachable from the host side.
    let ips = c.ok(&["get", "nodes", "-o", "jsonpath={.items[*].status.addresses[?(@.type==\"InternalIP\")].address}"]);
    for ip in ips.split_whitespace() {
        assert!(c.sh(&format!("curl -s -m 2 -o /dev/null telnet://{ip}:1 ; ip route get {ip} | grep -q wft")).status.success(), "no route to node {ip}");
    }
}

#[test]
fn a_host_network_pod_has_its_nodes_ip_and_reaches_pods() {
    let c = Cluster::start();
    c.apply(&pod("server", "node-1", AGNHOST, &["netexec", "--http-port=8080"]));
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: hostnet\nspec:\n  nodeName: node-2\n  hostNetwork: true\n  containers:\n  - name: c\n    image: registry.k8s.io/e2e-test-images/agnhost:2.52\n    args: [netexec, --http-port=8099]\n");
    let server_ip = wait_running(&c, "server");
    c.eventually(30, "hostnet running", || c.ok(&["get", "pod", "hostnet", "-o", "jsonpath={.status.phase}"]) == "Running");
    let node_ip = c.ok(&["get", "node", "node-2", "-o", "jsonpath={.status.addresses[0].address}"]);
    assert_eq!(c.ok(&["get", "pod", "hostnet", "-o", "jsonpath={.status.podIP}"]), node_ip);
    assert_eq!(c.ok(&["get", "pod", "hostnet", "-o", "jsonpath={.status.hostIP}"]), node_ip);
    // The server (a pod on node-1) reaches the hostNetwork pod at its node's IP, and
    // sees the connection come from its own node's pod network: no NAT between nodes.
    let mut seen = String::new();
    c.eventually(20, "the server to dial the hostNetwork pod", || {
        seen = in_pod(&c, "server", &format!("curl -s -m 2 http://{node_ip}:8099/hostname"));
        seen == "node-2"
    });
    assert!(in_pod(&c, "server", &format!("curl -s -m 2 http://{server_ip}:8080/hostname")).contains("server"));
}

#[test]
fn containers_see_their_pods_resolv_conf_hosts_hostname_and_service_variables() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: backend-service\nspec:\n  selector: {app: backend}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n");
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: envy\nspec:\n  hostname: db\n  subdomain: backend\n  containers:\n  - name: c\n    image: debian\n    command: [sh, -c, 'env; cat /etc/resolv.conf /etc/hosts; hostname; sleep 3600']\n    env:\n    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n    - {name: GREETING, value: 'hello $(MY_IP)'}\n");
    let ip = wait_running(&c, "envy");
    let mut text = String::new();
    c.eventually(10, "the container's output", || {
        text = c.ok(&["logs", "envy"]);
        text.lines().any(|l| l == "db")
    });
    let svc_ip = c.ok(&["get", "svc", "backend-service", "-o", "jsonpath={.spec.clusterIP}"]);
    for want in [
        format!("BACKEND_SERVICE_SERVICE_HOST={svc_ip}"),
        "BACKEND_SERVICE_SERVICE_PORT=80".to_string(),
        format!("BACKEND_SERVICE_PORT_80_TCP=tcp://{svc_ip}:80"),
        "KUBERNETES_SERVICE_HOST=10.96.0.1".to_string(),
        format!("MY_IP={ip}"),
        format!("GREETING=hello {ip}"),
        "nameserver 10.96.0.10".to_string(),
        "search default.svc.cluster.local svc.cluster.local cluster.local".to_string(),
        "options ndots:5".to_string(),
        format!("{ip}\tdb.backend.default.svc.cluster.local\tdb"),
    ] {
        assert!(text.lines().any(|l| l == want), "missing {want:?} in:\n{text}");
    }
    // The host's own files are untouched.
    assert!(!std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default().contains("10.96.0.10"));
}

#[test]
fn an_unknown_image_waits_with_a_reason_that_says_what_to_do() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: redis\nspec:\n  containers:\n  - name: c\n    image: redis:7\n");
    c.eventually(20, "a waiting reason", || c.ok(&["get", "pod", "redis", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}"]) == "ImageNotSupported");
    let msg = c.ok(&["get", "pod", "redis", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}"]);
    assert!(msg.contains("command"), "{msg}");
}

#[test]
fn a_crashing_container_is_restarted_and_counted() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: crash\nspec:\n  containers:\n  - name: c\n    image: debian\n    command: [sh, -c, 'exit 3']\n");
    c.eventually(30, "a restart", || c.ok(&["get", "pod", "crash", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"]).parse::<u32>().unwrap_or(0) >= 1);
    let code = c.ok(&["get", "pod", "crash", "-o", "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}"]);
    assert_eq!(code, "3");
}

#[test]
fn deleting_a_pod_stops_it_and_removes_its_sandbox() {
    let c = Cluster::start();
    c.apply(&pod("gone", "node-1", AGNHOST, &["netexec", "--http-port=8080"]));
    let ip = wait_running(&c, "gone");
    let ns = netns_of(&c, "gone");
    assert!(ns.exists());
    let claim = c.state_dir().join("nodes/node-1/cni/weft/ips").join(&ip);
    assert!(claim.exists(), "no IPAM claim at {}", claim.display());
    c.ok(&["delete", "pod", "gone", "--timeout=30s"]);
    assert!(!ns.exists(), "the pod's netns file is still there");
    let left = c.sh(&format!("nsenter --net={} ip -o link show master weft0 | wc -l", c.state_dir().join("netns/node-1").display()));
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0", "a pod veth is left on the node");
    assert!(!claim.exists(), "the IP is still allocated");
}

#[test]
fn after_kill_9_pods_keep_their_ips_and_no_ip_is_handed_out_twice() {
    let mut c = Cluster::start();
    c.apply(&pod("a", "node-1", AGNHOST, &["netexec", "--http-port=8080"]));
    let ip = wait_running(&c, "a");
    c.kill9();
    c.up();
    c.apply(&pod("b", "node-1", AGNHOST, &["pause"]));
    let ip_b = wait_running(&c, "b");
    assert_eq!(c.ok(&["get", "pod", "a", "-o", "jsonpath={.status.podIP}"]), ip);
    assert_ne!(ip, ip_b);
    c.eventually(20, "pod a to serve again", || in_pod(&c, "b", &format!("curl -s -m 2 http://{ip}:8080/hostname")) == "a");
}


#[test]
fn pods_reaching_outside_the_cluster_leave_as_their_node_but_pod_to_pod_keeps_the_pod_ip() {
    let c = Cluster::start();
    // "Outside the cluster": a server on the host side of weft up (the underlay's first address).
    let mut server = c
        .inside(std::process::Command::new(env!("CARGO_BIN_EXE_weft")).args(["agnhost", "netexec", "--http-port=18080"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("netexec on the host side");
    c.apply(&pod("egress", "node-2", AGNHOST, &["netexec", "--http-port=8080"]));
    c.apply(&pod("peer", "node-1", AGNHOST, &["netexec", "--http-port=8080"]));
    let client_ip = wait_running(&c, "egress");
    let peer_ip = wait_running(&c, "peer");
    let node_ip = c.ok(&["get", "pod", "egress", "-o", "jsonpath={.status.hostIP}"]);
    let mut seen = String::new();
    c.eventually(30, "the host-side server answering the pod", || {
        seen = in_pod(&c, "egress", "curl -s -m 3 http://10.99.0.1:18080/clientip");
        seen.contains(':')
    });
    assert!(seen.starts_with(&format!("{node_ip}:")), "outside the cluster the pod is its node {node_ip}: {seen}");
    let seen = in_pod(&c, "egress", &format!("curl -s -m 3 http://{peer_ip}:8080/clientip"));
    assert!(seen.starts_with(&format!("{client_ip}:")), "pod to pod keeps the pod's address {client_ip}: {seen}");
    let _ = server.kill();
    let _ = server.wait();
}
