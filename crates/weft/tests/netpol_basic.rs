//! NetworkPolicy on a local cluster (`weft up --nodes 2`): policies applied with the
//! real kubectl, enforced by each node's agent, probed with real connections from pods
//! on the server's node and on the other node (curl inside the pods' netns).

mod common;
use common::Cluster;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.52";

fn pod(name: &str, node: &str, labels: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: {AGNHOST}\n    args: [{}]\n", args.join(", "))
}

const DEFAULT_DENY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes: [Ingress]
";

const ALLOW_FRIENDS: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-friends
spec:
  podSelector:
    matchLabels: {app: server}
  ingress:
  - from:
    - podSelector:
        matchLabels: {role: friend}
    ports:
    - {protocol: TCP, port: 8080}
";

/// Whether an HTTP request from pod `from` to `ip:port` gets the server's hostname.
fn reaches(c: &Cluster, from: &str, ip: &str, port: u16) -> bool {
    c.in_pod(from, &format!("curl -s -m 1 http://{ip}:{port}/hostname")).trim() == "server"
}

#[test]
fn default_deny_then_allow_from_a_label_on_the_same_node_and_across_nodes() {
    let c = Cluster::start();
    c.apply(&pod("server", "node-1", "app: server", &["netexec", "--http-port=8080", "--udp-port=8081"]));
    c.apply(&pod("friend", "node-1", "role: friend", &["pause"]));
    c.apply(&pod("friend-far", "node-2", "role: friend", &["pause"]));
    c.apply(&pod("stranger", "node-1", "role: stranger", &["pause"]));
    let ip = c.wait_running("server", 60);
    for p in ["friend", "friend-far", "stranger"] {
        c.wait_running(p, 60);
    }
    let clients = ["friend", "friend-far", "stranger"];
    c.eventually(30, "every client to reach the server before any policy", || clients.iter().all(|p| reaches(&c, p, &ip, 8080)));

    c.apply(DEFAULT_DENY);
    c.eventually(20, "default deny to block every client", || clients.iter().all(|p| !reaches(&c, p, &ip, 8080)));

    c.apply(ALLOW_FRIENDS);
    c.eventually(20, "friends on both nodes to be let in", || reaches(&c, "friend", &ip, 8080) && reaches(&c, "friend-far", &ip, 8080));
    assert!(!reaches(&c, "stranger", &ip, 8080), "a pod without the label stays out");
    // The label goes: the friend is out again; deleting the policies opens everything.
    c.ok(&["label", "pod", "friend", "role=stranger", "--overwrite"]);
    c.eventually(20, "a relabelled pod to lose access", || !reaches(&c, "friend", &ip, 8080));
    assert!(reaches(&c, "friend-far", &ip, 8080));
    c.ok(&["delete", "networkpolicy", "default-deny-ingress", "allow-friends"]);
    c.eventually(20, "every client to reach the server once the policies are gone", || clients.iter().all(|p| reaches(&c, p, &ip, 8080)));
}
