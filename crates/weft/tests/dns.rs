//! Cluster DNS end to end with `weft up --nodes 2`: each node's DNS server (on the node's
//! address, port 53) answers for Services, headless pods, ExternalNames and addresses
//! made with kubectl, follows changes, reloads its ConfigMap, and serves a pod that
//! resolves a bare service name through its resolv.conf search path (nameserver
//! 10.96.0.10, which the service proxy DNATs to a node's server) and curls it by name.
//!
//! Queries from the host side go to the node addresses that the kube-dns endpoints list. Upstream
//! forwarding points at a closed port on loopback: nothing leaves the test's namespace.

mod common;
use common::Cluster;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.52";
const NODE1: &str = "10.99.0.2";
const NODE2: &str = "10.99.0.3";

fn start() -> Cluster {
    Cluster::start_with(&["--dns-upstreams", "127.0.0.1:9"])
}

/// `dig` from the cluster's host side at a node's DNS server.
fn dig(c: &Cluster, server: &str, args: &str) -> String {
    let out = c.sh(&format!("dig +time=2 +tries=2 @{server} {args}"));
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn short(c: &Cluster, server: &str, args: &str) -> String {
    dig(c, server, &format!("+short {args}")).trim().to_string()
}

#[test]
fn kube_dns_is_published_at_the_cluster_dns_address_with_the_nodes_as_endpoints() {
    let c = start();
    assert_eq!(c.ok(&["get", "svc", "kube-dns", "-n", "kube-system", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[*].name}"]), "10.96.0.10 dns dns-tcp metrics");
    let mut eps = String::new();
    c.eventually(20, "kube-dns endpoints", || {
        eps = c.ok(&["get", "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns", "-o", "jsonpath={.items[*].endpoints[*].addresses[*]}"]);
        eps.split_whitespace().count() == 2
    });
    assert_eq!(eps, format!("{NODE1} {NODE2}"));
    assert_eq!(c.ok(&["get", "endpoints", "kube-dns", "-n", "kube-system", "-o", "jsonpath={.subsets[0].addresses[*].ip}"]), format!("{NODE1} {NODE2}"));
    // Both nodes answer, over UDP and TCP; readiness and metrics on 9153.
    c.eventually(20, "node DNS servers to answer", || short(&c, NODE2, "kubernetes.default.svc.cluster.local") == "10.96.0.1");
    assert_eq!(short(&c, NODE1, "+tcp kube-dns.kube-system.svc.cluster.local"), "10.96.0.10");
    assert_eq!(short(&c, NODE1, "-x 10.96.0.10"), "kube-dns.kube-system.svc.cluster.local.");
    let ready = c.sh(&format!("curl -s -m 3 http://{NODE1}:9153/readyz"));
    assert_eq!(String::from_utf8_lossy(&ready.stdout), "ok\n");
    let metrics = String::from_utf8_lossy(&c.sh(&format!("curl -s -m 3 http://{NODE1}:9153/metrics")).stdout).to_string();
    assert!(metrics.contains(r#"weft_dns_requests_total{proto="tcp",type="A"}"#), "{metrics}");
}

#[test]
fn services_headless_pods_external_names_and_addresses_resolve_and_follow_changes() {
    let c = start();
    c.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n  selector: {{app: web}}\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  name: backend\nspec:\n  clusterIP: None\n  selector: {{app: db}}\n  ports:\n  - {{name: pg, port: 5432}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata:\n  name: alias\nspec:\n  type: ExternalName\n  externalName: my-service.default.svc.cluster.local\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n  labels: {{app: db}}\nspec:\n  hostname: db\n  subdomain: backend\n  nodeName: node-2\n  containers:\n  - name: c\n    image: {AGNHOST}\n    args: [pause]\n"
    ));
    let svc_ip = c.ok(&["get", "svc", "my-service", "-o", "jsonpath={.spec.clusterIP}"]);
    c.eventually(20, "my-service in DNS", || short(&c, NODE1, "my-service.default.svc.cluster.local") == svc_ip);
    // SRV for a named port of a ClusterIP service, with the address as glue.
    let srv = dig(&c, NODE1, "_http._tcp.my-service.default.svc.cluster.local SRV").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(srv.contains("IN SRV 0 100 80 my-service.default.svc.cluster.local.") && srv.contains(&format!("my-service.default.svc.cluster.local. 5 IN A {svc_ip}")), "{srv}");
    // Headless: the ready pod, by the service name and by hostname.subdomain.
    let mut db_ip = String::new();
    c.eventually(40, "the db pod running", || {
        db_ip = c.ok(&["get", "pod", "db", "-o", "jsonpath={.status.podIP}"]);
        !db_ip.is_empty() && c.ok(&["get", "pod", "db", "-o", "jsonpath={.status.phase}"]) == "Running"
    });
    c.eventually(20, "the headless service's endpoint", || short(&c, NODE2, "backend.default.svc.cluster.local") == db_ip);
    assert_eq!(short(&c, NODE2, "db.backend.default.svc.cluster.local"), db_ip);
    assert_eq!(short(&c, NODE2, "_pg._tcp.backend.default.svc.cluster.local SRV"), "0 100 5432 db.backend.default.svc.cluster.local.");
    assert_eq!(short(&c, NODE2, &format!("-x {db_ip}")), "db.backend.default.svc.cluster.local.");
    assert_eq!(short(&c, NODE1, &format!("-x {svc_ip}")), "my-service.default.svc.cluster.local.");
    // Pod records (insecure by default): the dashed address answers.
    assert_eq!(short(&c, NODE1, &format!("{}.default.pod.cluster.local", db_ip.replace('.', "-"))), db_ip);
    // ExternalName: a CNAME first, then its target's address.
    assert_eq!(short(&c, NODE1, "alias.default.svc.cluster.local"), format!("my-service.default.svc.cluster.local.\n{svc_ip}"));
    // NXDOMAIN versus NODATA.
    assert!(dig(&c, NODE1, "nope.default.svc.cluster.local").contains("status: NXDOMAIN"));
    let nodata = dig(&c, NODE1, "my-service.default.svc.cluster.local AAAA");
    assert!(nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0,") && nodata.contains("SOA"), "{nodata}");
    assert!(dig(&c, NODE1, "default.svc.cluster.local").contains("status: NOERROR"));
    assert!(dig(&c, NODE1, "nsnoexist.svc.cluster.local").contains("status: NXDOMAIN"));
    assert_eq!(short(&c, NODE1, "dns-version.cluster.local TXT"), "\"1.1.0\"");
    // Changes show within the watch's latency.
    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: late\nspec:\n  ports:\n  - {port: 81}\n");
    let late_ip = c.ok(&["get", "svc", "late", "-o", "jsonpath={.spec.clusterIP}"]);
    c.eventually(10, "a new service in DNS", || short(&c, NODE1, "late.default.svc.cluster.local") == late_ip);
    c.ok(&["delete", "svc", "late"]);
    c.eventually(10, "a deleted service gone from DNS", || dig(&c, NODE1, "late.default.svc.cluster.local").contains("status: NXDOMAIN"));
    c.ok(&["delete", "pod", "db", "--wait=false"]);
    c.eventually(30, "a headless service without ready endpoints to be NXDOMAIN", || dig(&c, NODE2, "backend.default.svc.cluster.local").contains("status: NXDOMAIN"));
}

#[test]
fn the_weft_dns_configmap_reloads_live_and_a_bad_one_changes_nothing() {
    let c = start();
    c.eventually(20, "DNS serving", || short(&c, NODE1, "kubernetes.default.svc.cluster.local") == "10.96.0.1");
    let ttl = |c: &Cluster| dig(c, NODE1, "+noall +answer kubernetes.default.svc.cluster.local").split_whitespace().nth(1).unwrap_or_default().to_string();
    assert_eq!(ttl(&c), "5");
    c.ok(&["create", "configmap", "weft-dns", "-n", "kube-system", "--from-literal=ttl=17", "--from-literal=podRecords=disabled"]);
    c.eventually(10, "the new TTL", || ttl(&c) == "17");
    assert!(dig(&c, NODE1, "10-244-0-5.default.pod.cluster.local").contains("status: NXDOMAIN"), "pod records disabled");
    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: weft-dns\n  namespace: kube-system\ndata:\n  ttl: \"17\"\n  podRecords: sometimes\n");
    c.eventually(10, "the rejection in the log", || c.log().contains("data.podRecords"));
    assert_eq!(ttl(&c), "17", "a rejected ConfigMap keeps the previous configuration");
    c.ok(&["delete", "configmap", "weft-dns", "-n", "kube-system"]);
    c.eventually(10, "the default TTL back", || ttl(&c) == "5");
}

#[test]
fn a_pod_resolves_a_bare_service_name_through_its_search_path_and_reaches_it() {
    let c = start();
    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: backend-service\nspec:\n  selector: {app: backend}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n");
    c.apply(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: backend\n  labels: {{app: backend}}\nspec:\n  nodeName: node-1\n  containers:\n  - name: c\n    image: {AGNHOST}\n    args: [netexec, --http-port=8080]\n"));
    let svc_ip = c.ok(&["get", "svc", "backend-service", "-o", "jsonpath={.spec.clusterIP}"]);
    c.eventually(20, "backend-service in DNS", || short(&c, NODE1, "backend-service.default.svc.cluster.local") == svc_ip);
    // Everything through the pod's own resolv.conf: nameserver 10.96.0.10 (the kube-dns
    // Service, DNAT-ed by the service proxy to a node's server), its search path and ndots;
    // then the seeds' first exercise, `curl backend-service` from another pod.
    let script = "dig +search +short backend-service; dig +search +short +tcp backend-service.default; dig +search no-such-service | grep status; \
                  for i in $(seq 30); do curl -s -m 2 http://backend-service/hostname && break; sleep 1; done; echo; echo DONE; sleep 3600";
    c.apply(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\nspec:\n  nodeName: node-2\n  containers:\n  - name: c\n    image: debian\n    command: [sh, -c, {script:?}]\n"));
    let mut text = String::new();
    c.eventually(60, "the pod's dig and curl output", || {
        text = String::from_utf8_lossy(&c.kubectl(&["logs", "client"]).stdout).to_string();
        text.contains("DONE")
    });
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.iter().filter(|l| **l == svc_ip).count(), 2, "UDP and TCP through the search path:\n{text}");
    // Every search domain is NXDOMAIN, then the bare name goes upstream: closed here.
    assert!(text.contains("status: NXDOMAIN") || text.contains("status: SERVFAIL"), "{text}");
    assert!(lines.contains(&"backend"), "curl backend-service reached the backend pod (its hostname):\n{text}");
}
