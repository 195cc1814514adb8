//! Pod networking with `weft up --nodes 2`: pods are network namespaces with IPs from
//! their node's pod CIDR, reach each other across nodes without NAT, and host programs
//! run inside them with the pod's own resolv.conf, hosts and environment.

mod common;
use common::Cluster;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.52";

fn pod(name: &str, node: &str, image: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: {image}\n    args: [{}]\n", args.join(", "))
}

#[test]
fn pods_on_two_nodes_reach_each_other_and_the_server_sees_the_client_pod_ip() {
    let c = Cluster::start();
    c.apply(&pod("server", "node-1", AGNHOST, &["netexec", "--http-port=8080"]));
    c.apply(&pod("client", "node-2", AGNHOST, &["pause"]));
    let server_ip = c.wait_running("server", 30);
    let client_ip = c.wait_running("client", 30);
    assert!(server_ip.starts_with("10.244.") && client_ip.starts_with("10.244."), "{server_ip} {client_ip}");
    let wide = c.ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.contains(&server_ip) && wide.contains("node-1") && wide.contains("node-2"), "{wide}");
    let mut seen = String::new();
    c.eventually(20, "the server to answer", || {
        seen = c.in_pod("client", &format!("curl -s -m 2 http://{server_ip}:8080/clientip"));
        seen.starts_with(&format!("{client_ip}:"))
    });
    assert_eq!(c.in_pod("client", &format!("curl -s -m 2 http://{server_ip}:8080/hostname")), "server");
    // No encapsulation: pods get the underlay's full MTU, and no node has a vxlan device.
    assert!(c.in_pod("client", "ip -o link show eth0").contains(" mtu 1500 "));
    assert!(c.in_pod("client", &format!("ping -c 1 -W 2 -M do -s 1472 {server_ip}")).contains("1 received"));
    assert!(!c.sh(&format!("nsenter --net={} ip link show weft.1", c.state_dir().join("netns/node-1").display())).status.success());
    // BIG TCP: the pod's links take 256 KiB segments (the underlay weft built does).
    assert!(c.in_pod("client", "ip -d link show eth0").contains(" gso_max_size 262144 "));
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
    let server_ip = c.wait_running("server", 30);
    c.eventually(30, "hostnet running", || c.ok(&["get", "pod", "hostnet", "-o", "jsonpath={.status.phase}"]) == "Running");
    let node_ip = c.ok(&["get", "node", "node-2", "-o", "jsonpath={.status.addresses[0].address}"]);
    assert_eq!(c.ok(&["get", "pod", "hostnet", "-o", "jsonpath={.status.podIP}"]), node_ip);
    assert_eq!(c.ok(&["get", "pod", "hostnet", "-o", "jsonpath={.status.hostIP}"]), node_ip);
    // The server (a pod on node-1) reaches the hostNetwork pod at its node's IP, and
    // sees the connection come from its own node's pod network: no NAT between nodes.
    let mut seen = String::new();
    c.eventually(20, "the server to dial the hostNetwork pod", || {
        seen = c.in_pod("server", &format!("curl -s -m 2 http://{node_ip}:8099/hostname"));
        seen == "node-2"
    });
    assert!(c.in_pod("server", &format!("curl -s -m 2 http://{server_ip}:8080/hostname")).contains("server"));
}

#[test]
fn containers_see_their_pods_resolv_conf_hosts_hostname_and_service_variables() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: backend-service\nspec:\n  selector: {app: backend}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n");
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: envy\nspec:\n  hostname: db\n  subdomain: backend\n  containers:\n  - name: c\n    image: debian\n    command: [sh, -c, 'env; cat /etc/resolv.conf /etc/hosts; hostname; sleep 3600']\n    env:\n    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n    - {name: GREETING, value: 'hello $(MY_IP)'}\n");
    let ip = c.wait_running("envy", 30);
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
    let ip = c.wait_running("gone", 30);
    let ns = c.pod_dir("gone").join("netns");
    assert!(ns.exists());
    let store = c.state_dir().join("nodes/node-1/cni/weft/allocations");
    assert!(allocated(&store, &ip), "no IPAM claim for {ip} in {}", store.display());
    c.ok(&["delete", "pod", "gone", "--timeout=30s"]);
    assert!(!ns.exists(), "the pod's netns file is still there");
    let left = c.sh(&format!("nsenter --net={} ip -o link show master weft0 | wc -l", c.state_dir().join("netns/node-1").display()));
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0", "a pod veth is left on the node");
    assert!(!allocated(&store, &ip), "the IP is still allocated");
}

/// Whether the IPAM log (`+ key ips` / `- key` records, replayed in order) holds `ip`.
fn allocated(store: &std::path::Path, ip: &str) -> bool {
    let log = std::fs::read_to_string(store).unwrap_or_default();
    let mut held: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
    for line in log.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["+", key, ips] => {
                held.insert(key, ips.split(',').collect());
            }
            ["-", key] => {
                held.remove(key);
            }
            _ => {}
        }
    }
    held.values().any(|ips| ips.contains(&ip))
}

#[test]
fn after_kill_9_pods_keep_their_ips_and_no_ip_is_handed_out_twice() {
    let mut c = Cluster::start();
    c.apply(&pod("a", "node-1", AGNHOST, &["netexec", "--http-port=8080"]));
    let ip = c.wait_running("a", 30);
    c.kill9();
    c.up();
    c.apply(&pod("b", "node-1", AGNHOST, &["pause"]));
    let ip_b = c.wait_running("b", 30);
    assert_eq!(c.ok(&["get", "pod", "a", "-o", "jsonpath={.status.podIP}"]), ip);
    assert_ne!(ip, ip_b);
    c.eventually(20, "pod a to serve again", || c.in_pod("b", &format!("curl -s -m 2 http://{ip}:8080/hostname")) == "a");
}


#[test]
fn pods_reaching_outside_the_cluster_leave_as_their_node_but_pod_to_pod_keeps_the_pod_ip() {
    let c = Cluster::start();
    // "Outside the cluster": a server on the host side of weft up (the underlay's first address).
    /// Kills the host-side server however the test ends.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Server(
        c.inside(std::process::Command::new(env!("CARGO_BIN_EXE_weft")).args(["agnhost", "netexec", "--http-port=18080"]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("netexec on the host side"),
    );
    c.apply(&pod("egress", "node-2", AGNHOST, &["netexec", "--http-port=8080"]));
    c.apply(&pod("peer", "node-1", AGNHOST, &["netexec", "--http-port=8080"]));
    let client_ip = c.wait_running("egress", 30);
    let peer_ip = c.wait_running("peer", 30);
    let node_ip = c.ok(&["get", "pod", "egress", "-o", "jsonpath={.status.hostIP}"]);
    let mut seen = String::new();
    c.eventually(30, "the host-side server answering the pod", || {
        seen = c.in_pod("egress", "curl -s -m 3 http://10.99.0.1:18080/clientip");
        seen.contains(':')
    });
    assert!(seen.starts_with(&format!("{node_ip}:")), "outside the cluster the pod is its node {node_ip}: {seen}");
    let seen = c.in_pod("egress", &format!("curl -s -m 3 http://{peer_ip}:8080/clientip"));
    assert!(seen.starts_with(&format!("{client_ip}:")), "pod to pod keeps the pod's address {client_ip}: {seen}");
}

// --- the vxlan backend -------------------------------------------------------------

/// Runs a script in a node's network namespace; stdout and stderr together.
fn in_node(c: &Cluster, node: &str, script: &str) -> String {
    let out = c.sh(&format!("nsenter --net={} sh -c '{script}'", c.state_dir().join("netns").join(node).display()));
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn vtep_mac(c: &Cluster, node: &str) -> String {
    c.ok(&["get", "node", node, "-o", "jsonpath={.metadata.annotations.weft\\.dev/vtep-mac}"])
}

fn pod_cidr(c: &Cluster, node: &str) -> String {
    c.ok(&["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"])
}

/// Packets the node's vxlan device has sent.
fn vxlan_tx_packets(c: &Cluster, node: &str) -> u64 {
    let json = in_node(c, node, "ip -j -s link show weft.1");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("ip -j -s link on {node}: {e}: {json}"));
    v[0]["stats64"]["tx"]["packets"].as_u64().unwrap_or_else(|| panic!("no tx packets in {json}"))
}

/// A vxlan cluster with an agnhost server on node-1 and a client pod on node-2 that
/// already reaches it; returns (server IP, client IP).
fn vxlan_cluster_with_server_and_client(extra: &[&str]) -> (Cluster, String, String) {
    let mut args = vec!["--backend", "vxlan"];
    args.extend_from_slice(extra);
    let c = Cluster::start_with(&args);
    c.apply(&pod("server", "node-1", AGNHOST, &["netexec", "--http-port=8080"]));
    c.apply(&pod("client", "node-2", AGNHOST, &["pause"]));
    let server_ip = c.wait_running("server", 30);
    let client_ip = c.wait_running("client", 30);
    c.eventually(20, "the server to answer over the overlay", || c.in_pod("client", &format!("curl -s -m 2 http://{server_ip}:8080/clientip")).starts_with(&format!("{client_ip}:")));
    (c, server_ip, client_ip)
}

#[test]
fn pods_on_two_nodes_reach_each_other_over_vxlan_and_the_server_sees_the_client_pod_ip() {
    let (c, server_ip, client_ip) = vxlan_cluster_with_server_and_client(&[]);
    // The request went through node-2's vxlan device, not a direct route.
    assert!(in_node(&c, "node-2", &format!("ip route get {server_ip}")).contains("dev weft.1"));
    let before = vxlan_tx_packets(&c, "node-2");
    assert_eq!(c.in_pod("client", &format!("curl -s -m 2 http://{server_ip}:8080/hostname")), "server");
    assert!(c.in_pod("client", &format!("curl -s -m 2 http://{server_ip}:8080/clientip")).starts_with(&format!("{client_ip}:")));
    assert!(vxlan_tx_packets(&c, "node-2") > before, "no packet left node-2 through weft.1");
    // The node itself (and so a hostNetwork pod) reaches remote pods from its device's
    // own gateway address, which the remote node routes back over the overlay.
    let gw2 = pod_cidr(&c, "node-2").replace("/24", "");
    let seen = in_node(&c, "node-2", &format!("curl -s -m 2 http://{server_ip}:8080/clientip"));
    assert!(seen.starts_with(&format!("{gw2}:")), "node-2 reached the server as {seen:?}, not from {gw2}");

    // Each node's device, as Flannel makes it, and what it holds for the other node.
    for (me, my_ip, other, other_ip) in [("node-1", "10.99.0.2", "node-2", "10.99.0.3"), ("node-2", "10.99.0.3", "node-1", "10.99.0.2")] {
        let mac = vtep_mac(&c, me);
        let link = in_node(&c, me, "ip -d link show weft.1");
        for want in ["mtu 1450 ".to_string(), format!("link/ether {mac} "), format!("vxlan id 1 local {my_ip} dev eth0 "), "dstport 8472 ".into(), "nolearning".into()] {
            assert!(link.contains(&want), "{me}: no {want:?} in:\n{link}");
        }
        let (omac, cidr) = (vtep_mac(&c, other), pod_cidr(&c, other));
        let gw = cidr.trim_end_matches("/24");
        let fdb = in_node(&c, me, "bridge fdb show dev weft.1");
        assert!(fdb.contains(&format!("{omac} dst {other_ip} self permanent")), "{me} fdb:\n{fdb}");
        assert_eq!(fdb.lines().filter(|l| l.contains("dst ")).count(), 1, "{me} fdb:\n{fdb}");
        let neigh = in_node(&c, me, "ip neigh show dev weft.1");
        assert!(neigh.contains(&format!("{gw} lladdr {omac} PERMANENT")), "{me} neighbours:\n{neigh}");
        let routes = in_node(&c, me, "ip route");
        assert!(routes.contains(&format!("{cidr} via {gw} dev weft.1 proto static onlink")), "{me} routes:\n{routes}");
        let own = pod_cidr(&c, me).replace("/24", "/32");
        assert!(in_node(&c, me, "ip -o addr show dev weft.1").contains(&format!("inet {own} ")), "{me} has no {own} on weft.1");
    }
}

#[test]
fn vxlan_pods_get_the_underlay_mtu_minus_50_and_full_size_packets_cross_nodes() {
    let (c, server_ip, _) = vxlan_cluster_with_server_and_client(&[]);
    assert!(c.in_pod("client", "ip -o link show eth0").contains(" mtu 1450 "));
    assert!(in_node(&c, "node-2", "ip -o link show weft0").contains(" mtu 1450 "));
    assert!(in_node(&c, "node-2", "ip -o link show eth0").contains(" mtu 1500 "), "the underlay keeps its MTU");
    // No BIG TCP over an overlay: VXLAN cannot carry segments over 64 KiB.
    assert!(c.in_pod("client", "ip -d link show eth0").contains(" gso_max_size 65536 "));
    // 1422 bytes of ICMP payload + 28 of headers fill the 1450-byte pod MTU exactly and
    // cross the overlay unfragmented; one byte more does not leave the pod.
    let fits = c.in_pod("client", &format!("ping -c 1 -W 2 -M do -s 1422 {server_ip}"));
    assert!(fits.contains("1 received"), "{fits}");
    let too_big = c.in_pod("client", &format!("ping -c 1 -W 2 -M do -s 1423 {server_ip}"));
    assert!(!too_big.contains("1 received") && too_big.to_lowercase().contains("too long"), "{too_big}");
    // TCP both ways with payloads under and over one packet.
    for size in [1400, 1460, 20000] {
        let got = c.in_pod("client", &format!("curl -s -m 5 --data msg=$(printf %0{size}d 0) http://{server_ip}:8080/echo | wc -c"));
        assert_eq!(got.trim(), size.to_string(), "echo of {size} bytes");
    }
}

#[test]
fn dual_stack_pods_reach_each_other_over_ipv6_through_the_same_vxlan_device() {
    let (c, _, _) = vxlan_cluster_with_server_and_client(&["--pod-cidr", "10.244.0.0/16,fd00:10:244::/56"]);
    let server6 = c.ok(&["get", "pod", "server", "-o", "jsonpath={.status.podIPs[1].ip}"]);
    let client6 = c.ok(&["get", "pod", "client", "-o", "jsonpath={.status.podIPs[1].ip}"]);
    assert!(server6.starts_with("fd00:10:244:") && client6.starts_with("fd00:10:244:"), "{server6} {client6}");
    let seen = c.in_pod("client", &format!("curl -s -m 2 http://[{server6}]:8080/clientip"));
    assert!(seen.starts_with(&format!("[{client6}]:")), "{seen}");
    assert!(in_node(&c, "node-2", &format!("ip route get {server6}")).contains("dev weft.1"));
    // IPv6 headers are 20 bytes longer: 1402 + 48 = 1450.
    assert!(c.in_pod("client", &format!("ping -c 1 -W 2 -M do -s 1402 {server6}")).contains("1 received"));
    assert!(!c.in_pod("client", &format!("ping -c 1 -W 2 -M do -s 1403 {server6}")).contains("1 received"));
}

#[test]
fn a_vxlan_device_removed_by_hand_comes_back_and_the_other_node_follows_its_new_mac() {
    let (c, server_ip, client_ip) = vxlan_cluster_with_server_and_client(&[]);
    let old = vtep_mac(&c, "node-1");
    assert!(in_node(&c, "node-1", "ip link del weft.1; echo done").contains("done"));
    let mut new = String::new();
    c.eventually(20, "node-1 to publish the MAC of a new vxlan device", || {
        new = vtep_mac(&c, "node-1");
        !new.is_empty() && new != old && in_node(&c, "node-1", "ip link show weft.1").contains(&new)
    });
    c.eventually(20, "node-2 to follow node-1's new MAC", || {
        let fdb = in_node(&c, "node-2", "bridge fdb show dev weft.1");
        let neigh = in_node(&c, "node-2", "ip neigh show dev weft.1");
        fdb.contains(&format!("{new} dst 10.99.0.2")) && !fdb.contains(&old) && neigh.contains(&new) && !neigh.contains(&old)
    });
    c.eventually(20, "the client to reach the server again", || c.in_pod("client", &format!("curl -s -m 2 http://{server_ip}:8080/clientip")).starts_with(&format!("{client_ip}:")));
}

#[test]
fn deleting_a_node_removes_its_overlay_entries_from_the_others() {
    let (c, _, _) = vxlan_cluster_with_server_and_client(&[]);
    let (mac2, cidr2) = (vtep_mac(&c, "node-2"), pod_cidr(&c, "node-2"));
    assert!(in_node(&c, "node-1", "bridge fdb show dev weft.1").contains(&mac2));
    c.ok(&["delete", "node", "node-2", "--wait=false"]);
    c.eventually(20, "node-1 to drop node-2's route, neighbour and fdb entry", || {
        !in_node(&c, "node-1", "bridge fdb show dev weft.1").contains(&mac2)
            && !in_node(&c, "node-1", "ip neigh show dev weft.1").contains(&mac2)
            && !in_node(&c, "node-1", "ip route").contains(&cidr2)
    });
    // node-1's own device stays.
    assert!(in_node(&c, "node-1", "ip -d link show weft.1").contains("vxlan id 1"));
}

#[test]
fn weft_down_leaves_no_vxlan_device_or_node_namespace() {
    let (mut c, _, _) = vxlan_cluster_with_server_and_client(&[]);
    c.stop();
    let mut down = std::process::Command::new(env!("CARGO_BIN_EXE_weft"));
    down.args(["down", "--state-dir"]).arg(c.state_dir()).stdout(std::process::Stdio::null());
    assert!(c.inside(&mut down).status().unwrap().success());
    let netns = c.state_dir().join("netns");
    assert!(!netns.exists() || std::fs::read_dir(&netns).unwrap().next().is_none(), "node namespaces left in {}", netns.display());
    // Nothing of weft's is left in the namespace weft ran in either.
    let left = String::from_utf8_lossy(&c.sh("ip -o link show type vxlan; ip -o link show | grep -c wft").stdout).to_string();
    assert_eq!(left.trim(), "0", "left behind: {left}");
}

#[test]
fn the_overlay_carries_traffic_while_weft_is_down_and_a_restart_keeps_each_nodes_vtep_mac() {
    let (mut c, server_ip, client_ip) = vxlan_cluster_with_server_and_client(&[]);
    let macs = (vtep_mac(&c, "node-1"), vtep_mac(&c, "node-2"));
    let client_ns = c.pod_dir("client").join("netns");
    c.kill9();
    // The kernel keeps the device and its entries: pods still reach each other.
    let out = c.sh(&format!("nsenter --net={} ping -c 1 -W 2 {server_ip}", client_ns.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    c.up_with(&["--backend", "vxlan"]);
    c.eventually(20, "the client to reach the server after the restart", || c.in_pod("client", &format!("curl -s -m 2 http://{server_ip}:8080/clientip")).starts_with(&format!("{client_ip}:")));
    assert_eq!((vtep_mac(&c, "node-1"), vtep_mac(&c, "node-2")), macs, "a restart changed a VTEP MAC");
    assert!(in_node(&c, "node-1", "ip link show weft.1").contains(&macs.0));
}
