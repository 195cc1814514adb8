//! Policy verdict flow records and `weft explain` on a real local cluster
//! (`weft up --nodes 2`): a policy lets `client` reach `server` on 8080 and nobody
//! else; an allowed and a denied connection are made with real packets, and
//! `weft observe` and `weft explain` must name the policy that decided each.

mod common;
use common::Cluster;
use std::collections::BTreeSet;
use std::process::Command;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.52";

fn pod(name: &str, node: &str, app: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {app}}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: {AGNHOST}\n    args: [{}]\n    ports:\n    - {{name: http, containerPort: 8080}}\n",
        args.join(", ")
    )
}

const POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-client
spec:
  podSelector:
    matchLabels: {app: server}
  ingress:
  - from:
    - podSelector:
        matchLabels: {app: client}
    ports:
    - {port: 8080}
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: server
spec:
  selector: {app: server}
  ports:
  - {name: web, port: 80, targetPort: http}
";

/// `weft <args>` inside the cluster's namespaces (explain reaches the API there); stdout.
fn weft(c: &Cluster, args: &[&str]) -> String {
    let out = c.inside(Command::new(env!("CARGO_BIN_EXE_weft")).args(args).arg("--state-dir").arg(c.state_dir())).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "weft {args:?} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn records(c: &Cluster, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["observe", "-o", "json"];
    all.extend_from_slice(args);
    weft(c, &all).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect()
}

/// `curl` from pod `from` to `url`; true when it got an answer.
fn reaches(c: &Cluster, from: &str, url: &str) -> bool {
    c.in_pod(from, &format!("curl -s -m 2 -o /dev/null -w %{{http_code}} {url}")).trim() == "200"
}

#[test]
fn flow_records_and_explain_name_the_policy_that_allowed_or_denied_a_connection() {
    let c = Cluster::start();
    c.apply(&pod("server", "node-2", "server", &["netexec", "--http-port=8080"]));
    c.apply(&pod("client", "node-1", "client", &["pause"]));
    c.apply(&pod("other", "node-1", "other", &["pause"]));
    c.apply(SERVICE);
    let server = c.wait_running("server", 60);
    c.wait_running("client", 60);
    let other = c.wait_running("other", 60);
    let url = format!("http://{server}:8080/hostname");
    assert!(reaches(&c, "other", &url), "before any policy, other reaches server");
    c.apply(POLICY);
    c.eventually(30, "the policy to isolate server", || !reaches(&c, "other", &url));
    assert!(reaches(&c, "client", &url), "client is allowed by allow-client");

    // A denied attempt: the SYN and its retransmissions are one record.
    assert!(!reaches(&c, "other", &url));
    let mut denied = Vec::new();
    c.eventually(20, "denied flow records", || {
        denied = records(&c, &["--verdict", "denied"]);
        !denied.is_empty()
    });
    for r in &denied {
        assert_eq!(r["verdict"], "denied", "{r}");
        assert_eq!(r["direction"], "ingress", "only server is isolated, in ingress: {r}");
        assert_eq!(r["node"], "node-2", "ingress is judged on the destination's node: {r}");
        assert_eq!(r["src_pod"], "default/other", "{r}");
        assert_eq!(r["src_ip"], other.as_str(), "{r}");
        assert_eq!(r["dst_pod"], "default/server", "{r}");
        assert_eq!(r["dst_port"], 8080, "{r}");
        assert_eq!(r["protocol"], "TCP", "{r}");
        assert_eq!(r["policies"], serde_json::json!(["default/allow-client"]), "{r}");
    }
    let ports: BTreeSet<u64> = denied.iter().map(|r| r["src_port"].as_u64().unwrap()).collect();
    assert_eq!(ports.len(), denied.len(), "a retransmitted SYN is recorded once: {denied:#?}");

    let allowed = records(&c, &["--verdict", "allowed", "--pod", "client"]);
    assert!(!allowed.is_empty(), "the allowed connection is recorded");
    for r in &allowed {
        assert_eq!((r["verdict"].as_str(), r["direction"].as_str(), r["src_pod"].as_str()), (Some("allowed"), Some("ingress"), Some("default/client")), "{r}");
        assert_eq!(r["policies"], serde_json::json!(["default/allow-client ingress[0]"]), "{r}");
    }
    // Filters: nothing of other's is allowed, and another namespace has nothing.
    assert!(records(&c, &["--verdict", "allowed", "--pod", "default/other"]).is_empty());
    assert!(records(&c, &["--namespace", "kube-system"]).is_empty());
    let text = weft(&c, &["observe", "--namespace", "default"]);
    assert!(text.lines().any(|l| l.contains(" node-2 ingress denied TCP default/other(") && l.ends_with(&format!("default/server({server}):8080 by default/allow-client"))), "{text}");

    // explain, from the same model: the pod, and the service through its named targetPort.
    let pod_report = weft(&c, &["explain", "--from", "default/other", "--to", "default/server", "--port", "8080"]);
    assert!(pod_report.contains("DENIED") && pod_report.contains("isolated for ingress by default/allow-client"), "{pod_report}");
    let svc_report = weft(&c, &["explain", "--from", "default/client", "--to", "svc/default/server", "--port", "80"]);
    assert!(svc_report.contains("service default/server port 80/TCP: 1 ready endpoint(s)"), "{svc_report}");
    assert!(svc_report.contains(&format!("default/server ({server}) TCP/8080: ALLOWED")) && svc_report.contains("default/allow-client ingress[0]"), "{svc_report}");
}
