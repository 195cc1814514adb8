//! The seeds' NetworkPolicy exercises, with the policies as the articles write them,
//! against `weft up --nodes 2` and the real kubectl: default deny with an ingress
//! allow from 0.0.0.0/0 on port 80, frontend -> backend on 8080, allow-intra-namespace,
//! and the troubleshooting exercise with `isolated-pod` (`kubectl run --rm -it`).
//! Each connection is a real one, from a pod (busybox `wget`) or from the host side.

mod common;
use common::Cluster;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.52";

fn pod(ns: &str, name: &str, labels: &str, node: &str, image: &str, args: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{{labels}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: c\n    image: {image}\n{args}")
}

fn busybox(ns: &str, name: &str, labels: &str, node: &str) -> String {
    pod(ns, name, labels, node, "busybox", "    command: [sleep, \"100000\"]\n")
}

fn nginx(ns: &str, name: &str, labels: &str, node: &str) -> String {
    pod(ns, name, labels, node, "nginx", "")
}

/// Whether `from` (a busybox pod) gets an HTTP answer from `url` within 3 s. (Debian's
/// busybox 1.35 `wget -T` crashes, so busybox's `timeout` bounds it; a denied
/// connection is dropped, so wget alone would wait for TCP to give up.)
fn reaches(c: &Cluster, ns: &str, from: &str, url: &str) -> bool {
    c.kubectl(&["exec", "-n", ns, from, "--", "timeout", "3", "wget", "-q", "-O", "/dev/null", url]).status.success()
}

/// Waits until `from` -> `url` is as expected (policy is applied asynchronously), then
/// checks that it stays so.
fn expect(c: &Cluster, ns: &str, from: &str, url: &str, allowed: bool) {
    let what = format!("{ns}/{from} -> {url} {}", if allowed { "allowed" } else { "denied" });
    c.eventually(20, &what, || reaches(c, ns, from, url) == allowed);
    assert_eq!(reaches(c, ns, from, url), allowed, "{what}: changed back");
}

fn ip(c: &Cluster, ns: &str, name: &str) -> String {
    c.ok(&["get", "pod", "-n", ns, name, "-o", "jsonpath={.status.podIP}"])
}

fn wait_ready(c: &Cluster, ns: &str, pods: &[&str]) {
    let mut args = vec!["wait", "-n", ns, "--for=condition=Ready", "--timeout=90s"];
    let names: Vec<String> = pods.iter().map(|p| format!("pod/{p}")).collect();
    args.extend(names.iter().map(String::as_str));
    c.ok(&args);
}

/// "Hands-on Exercise: Creating Network Policies for TechCorp": a default deny for both
/// directions, then ingress to the frontend from 0.0.0.0/0 on TCP 80.
const DEFAULT_DENY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
  namespace: techcorp-ecommerce
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-frontend-ingress
  namespace: techcorp-ecommerce
spec:
  podSelector:
    matchLabels:
      app: frontend
  policyTypes:
  - Ingress
  ingress:
  - from:
    - ipBlock:
        cidr: 0.0.0.0/0
    ports:
    - protocol: TCP
      port: 80
"#;

#[test]
fn creating_network_policies_for_techcorp_default_deny_then_frontend_from_anywhere_on_80() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "techcorp-ecommerce"]);
    c.ok(&["create", "namespace", "visitors"]);
    let ns = "techcorp-ecommerce";
    c.apply(&nginx(ns, "frontend", "app: frontend", "node-1"));
    c.apply(&nginx(ns, "backend", "app: backend", "node-2"));
    c.apply(&busybox(ns, "shell", "app: shell", "node-1"));
    c.apply(&busybox("visitors", "visitor", "app: visitor", "node-2"));
    wait_ready(&c, ns, &["frontend", "backend", "shell"]);
    wait_ready(&c, "visitors", &["visitor"]);
    let (frontend, backend) = (format!("http://{}/", ip(&c, ns, "frontend")), format!("http://{}/", ip(&c, ns, "backend")));
    // The host side (the article's "internet") comes in through a NodePort.
    c.ok(&["expose", "pod", "frontend", "-n", ns, "--type=NodePort", "--port=80"]);
    let node_port = c.ok(&["get", "svc", "frontend", "-n", ns, "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    let node_ip = c.ok(&["get", "node", "node-2", "-o", "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}"]);
    // Before: everything reaches everything.
    expect(&c, "visitors", "visitor", &frontend, true);
    expect(&c, "visitors", "visitor", &backend, true);
    expect(&c, ns, "shell", &backend, true);

    c.apply(DEFAULT_DENY);
    // The frontend takes port 80 from anywhere: a pod of another namespace on the other
    // node, and the host side through the NodePort of the other node.
    expect(&c, "visitors", "visitor", &frontend, true);
    c.eventually(20, "the host side reaches the frontend through its NodePort", || c.sh(&format!("curl -s -m 2 -o /dev/null -w '%{{http_code}}' http://{node_ip}:{node_port}/")).stdout == b"200");
    // The backend takes nothing; pods in the namespace send nothing.
    expect(&c, "visitors", "visitor", &backend, false);
    expect(&c, ns, "shell", &frontend, false);
    expect(&c, ns, "shell", &backend, false);

    // Deleting the default deny opens the backend and the pods' egress again.
    c.ok(&["delete", "networkpolicy", "-n", ns, "default-deny"]);
    expect(&c, "visitors", "visitor", &backend, true);
    expect(&c, ns, "shell", &backend, true);
}

/// "Example Network Policy" and "Least Privilege": traffic from app=frontend to
/// app=backend on TCP 8080; all other traffic to the backend is denied.
const ALLOW_FROM_FRONTEND: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-from-frontend
spec:
  podSelector:
    matchLabels:
      app: backend
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: frontend
    ports:
    - protocol: TCP
      port: 8080
"#;

#[test]
fn allow_from_frontend_to_backend_on_8080_only() {
    let c = Cluster::start();
    let backend = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: backend\n  labels: {{app: backend}}\nspec:\n  nodeName: node-2\n  containers:\n  - name: api\n    image: {AGNHOST}\n    args: [netexec, --http-port=8080, --udp-port=-1]\n  - name: admin\n    image: {AGNHOST}\n    args: [netexec, --http-port=9090, --udp-port=-1]\n");
    c.apply(&backend);
    c.apply(&busybox("default", "frontend", "app: frontend", "node-1"));
    c.apply(&busybox("default", "frontend-2", "app: frontend", "node-2"));
    c.apply(&busybox("default", "other", "app: other", "node-1"));
    wait_ready(&c, "default", &["backend", "frontend", "frontend-2", "other"]);
    let b = ip(&c, "default", "backend");
    let (api, admin) = (format!("http://{b}:8080/hostname"), format!("http://{b}:9090/hostname"));
    expect(&c, "default", "other", &api, true);

    c.apply(ALLOW_FROM_FRONTEND);
    expect(&c, "default", "frontend", &api, true);
    expect(&c, "default", "frontend-2", &api, true);
    expect(&c, "default", "frontend", &admin, false);
    expect(&c, "default", "other", &api, false);
    // Relabelling a pod moves it in and out of the policy.
    c.ok(&["label", "pod", "other", "app=frontend", "--overwrite"]);
    expect(&c, "default", "other", &api, true);
    c.ok(&["label", "pod", "frontend", "app=somebody", "--overwrite"]);
    expect(&c, "default", "frontend", &api, false);
}

/// "Implement Network Segmentation": pods take traffic only from their own namespace.
const ALLOW_INTRA_NAMESPACE: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-intra-namespace
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {}
"#;

#[test]
fn allow_intra_namespace_admits_the_namespace_and_nothing_else() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "staging"]);
    c.apply(&nginx("staging", "web", "app: web", "node-1"));
    c.apply(&busybox("staging", "tool", "app: tool", "node-2"));
    c.apply(&busybox("default", "outsider", "app: tool", "node-1"));
    wait_ready(&c, "staging", &["web", "tool"]);
    wait_ready(&c, "default", &["outsider"]);
    let web = format!("http://{}/", ip(&c, "staging", "web"));
    c.kubectl_stdin(&["apply", "-n", "staging", "-f", "-"], ALLOW_INTRA_NAMESPACE);
    expect(&c, "staging", "tool", &web, true);
    expect(&c, "default", "outsider", &web, false);
}

const ALLOW_TEST_POD: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-test-pod
  namespace: techcorp-ecommerce
spec:
  podSelector:
    matchLabels:
      run: isolated-pod
  ingress:
  - from:
    - podSelector: {}
"#;

const DENY_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
  namespace: techcorp-ecommerce
spec:
  podSelector: {}
  policyTypes:
  - Ingress
"#;

/// "Hands-on Exercise: Troubleshooting a Networking Issue": a pod that can't be reached,
/// `kubectl get networkpolicies` to find out why, a policy that lets the namespace in,
/// and the same `kubectl run --rm -it` that now prints nginx's page.
#[test]
fn troubleshooting_the_isolated_pod() {
    let c = Cluster::start();
    let ns = "techcorp-ecommerce";
    c.ok(&["create", "namespace", ns]);
    c.apply(DENY_INGRESS);
    // `kubectl run` labels the pod run=isolated-pod, which the article's policy selects.
    c.ok(&["run", "isolated-pod", "-n", ns, "--image=nginx"]);
    c.ok(&["expose", "pod", "isolated-pod", "-n", ns, "--port=80"]);
    wait_ready(&c, ns, &["isolated-pod"]);
    // The article's command; while it fails it would hang until TCP gives up (the
    // policy drops), so the first try is bounded by busybox's `timeout`.
    let try_it = || c.kubectl(&["run", "test-pod", "-n", ns, "--rm", "-i", "--restart=Never", "--image=busybox", "--", "wget", "-O-", "http://isolated-pod"]);
    let failed = c.kubectl(&["run", "test-pod", "-n", ns, "--rm", "-i", "--restart=Never", "--image=busybox", "--", "timeout", "5", "wget", "-O-", "http://isolated-pod"]);
    assert!(!failed.status.success(), "isolated-pod must be unreachable under the default deny: {}", String::from_utf8_lossy(&failed.stdout));
    let listed = c.ok(&["get", "networkpolicies", "-n", ns]);
    assert!(listed.contains("default-deny"), "{listed}");
    c.apply(ALLOW_TEST_POD);
    let mut page = String::new();
    c.eventually(30, "kubectl run test-pod ... wget http://isolated-pod to print nginx's page", || {
        let out = try_it();
        page = String::from_utf8_lossy(&out.stdout).to_string();
        out.status.success() && page.contains("Welcome to nginx!")
    });
}
