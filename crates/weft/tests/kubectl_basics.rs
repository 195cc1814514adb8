//! The acceptance list's kubectl flows, with the real kubectl against `weft up`.

mod common;
use common::Cluster;

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  type: ClusterIP
  selector:
    app: MyApp
  ports:
    - port: 80
      targetPort: 8080
";

#[test]
fn apply_creates_then_is_unchanged_then_configured() {
    let c = Cluster::start();
    assert!(c.apply(SERVICE).contains("service/my-service created"));
    assert!(c.apply(SERVICE).contains("service/my-service unchanged"));
    let edited = SERVICE.replace("8080", "9090");
    assert!(c.apply(&edited).contains("service/my-service configured"));
    assert_eq!(c.ok(&["get", "svc", "my-service", "-o", "jsonpath={.spec.ports[0].targetPort}"]), "9090");
    let ip = c.ok(&["get", "svc", "my-service", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("10.96."), "clusterIP {ip} from the service CIDR");
}

#[test]
fn get_prints_the_columns_users_know() {
    let c = Cluster::start();
    c.apply(SERVICE);
    let out = c.ok(&["get", "svc", "-o", "wide"]);
    let header = out.lines().next().unwrap();
    for col in ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"] {
        assert!(header.contains(col), "missing {col} in {header}");
    }
    assert!(out.contains("80/TCP") && out.contains("app=MyApp"), "{out}");
    let yaml = c.ok(&["get", "svc", "my-service", "-o", "yaml"]);
    assert!(yaml.contains("kind: Service") && yaml.contains("resourceVersion:"), "{yaml}");
    let ns = c.ok(&["get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.split(' ').any(|x| x == n), "{n} missing from {ns}");
    }
    let eps = c.ok(&["get", "endpoints", "kubernetes"]);
    assert!(eps.lines().next().unwrap().contains("ENDPOINTS"), "{eps}");
    let nodes = c.ok(&["get", "nodes", "-o", "wide"]);
    assert!(nodes.contains("node-1") && nodes.contains("node-2"), "{nodes}");
    let desc = c.ok(&["describe", "service", "my-service"]);
    assert!(desc.contains("Selector:") && desc.contains("app=MyApp") && desc.contains("TargetPort:"), "{desc}");
}

#[test]
fn replace_with_a_stale_object_is_a_conflict() {
    let c = Cluster::start();
    c.apply(SERVICE);
    let stale = c.ok(&["get", "svc", "my-service", "-o", "yaml"]);
    c.ok(&["label", "svc", "my-service", "tier=web"]);
    let out = c.kubectl_stdin(&["replace", "-f", "-"], &stale);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Conflict") || err.contains("the object has been modified"), "{err}");
}

#[test]
fn an_invalid_object_in_a_multi_document_apply_is_reported_and_not_stored() {
    let c = Cluster::start();
    let manifest = format!("{SERVICE}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  selector:\n    app: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\ndata:\n  a: b\n");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &manifest);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.ports: Required value"), "{err}");
    let broken = c.kubectl(&["get", "svc", "broken"]);
    assert!(!broken.status.success(), "the invalid object must not be stored");
    c.ok(&["get", "svc", "my-service"]);
    c.ok(&["get", "configmap", "fine"]);
}

#[test]
fn anonymous_requests_are_refused_but_health_is_public() {
    let c = Cluster::start();
    let kc = std::fs::read_to_string(c.kubeconfig()).unwrap();
    let server = kc.lines().find_map(|l| l.trim().strip_prefix("server: ")).unwrap().to_string();
    let curl = |path: &str| {
        let out = std::process::Command::new("curl").args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", &format!("{server}{path}")]).output().expect("curl");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(curl("/api/v1/pods"), "401");
    assert_eq!(curl("/readyz"), "200");
}

#[test]
fn api_resources_and_explain() {
    let c = Cluster::start();
    let out = c.ok(&["api-resources"]);
    for r in ["namespaces", "nodes", "pods", "services", "endpoints", "configmaps", "secrets", "serviceaccounts", "events", "endpointslices", "networkpolicies", "ingresses", "ingressclasses", "deployments", "replicasets", "leases", "customresourcedefinitions"] {
        assert!(out.lines().any(|l| l.split_whitespace().next() == Some(r)), "{r} missing from api-resources");
    }
    let explain = c.ok(&["explain", "service.spec"]);
    assert!(explain.contains("clusterIP"), "{explain}");
}

#[test]
fn unknown_fields_are_refused_by_strict_field_validation() {
    let c = Cluster::start();
    let bad = SERVICE.replace("  type: ClusterIP", "  tipe: ClusterIP");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field \"spec.tipe\""), "{err}");
}

/// The Service manifests of ../shared/seeds, unchanged.
#[test]
fn seed_service_manifests_get_cluster_ips_and_node_ports() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "techcorp-ecommerce"]);
    let seeds = "apiVersion: v1
kind: Service
metadata:
  name: backend-service
  namespace: techcorp-ecommerce
spec:
  selector:
    app: backend
  ports:
  - protocol: TCP
    port: 80
    targetPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: frontend-service
  namespace: techcorp-ecommerce
spec:
  type: LoadBalancer
  selector:
    app: frontend
  ports:
  - port: 80
    targetPort: 3000
---
apiVersion: v1
kind: Service
metadata:
  name: product-catalog-service
  namespace: techcorp-ecommerce
spec:
  type: ClusterIP
  selector:
    app: product-catalog
  ports:
  - port: 8080
    targetPort: 8080
";
    let out = c.apply(seeds);
    assert_eq!(out.matches("created").count(), 3, "{out}");
    for s in ["backend-service", "frontend-service", "product-catalog-service"] {
        let ip = c.ok(&["get", "svc", s, "-n", "techcorp-ecommerce", "-o", "jsonpath={.spec.clusterIP}"]);
        assert!(ip.starts_with("10.96."), "{s}: {ip}");
    }
    let np: u16 = c.ok(&["get", "svc", "frontend-service", "-n", "techcorp-ecommerce", "-o", "jsonpath={.spec.ports[0].nodePort}"]).parse().unwrap();
    assert!((30000..=32767).contains(&np));
    assert!(c.apply(seeds).matches("unchanged").count() == 3);
}
