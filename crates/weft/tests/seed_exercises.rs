//! The seeds' hands-on exercises, as written, against `weft up --nodes 2` with the real
//! kubectl ("Setting Up Your First Pod Network": two nginx pods, a Service, and
//! `kubectl exec -it frontend -- curl backend-service` printing nginx's welcome page).

mod common;
use common::Cluster;

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: frontend
  namespace: techcorp-ecommerce
  labels:
    app: frontend
spec:
  containers:
  - name: frontend
    image: nginx
---
apiVersion: v1
kind: Pod
metadata:
  name: backend
  namespace: techcorp-ecommerce
  labels:
    app: backend
spec:
  containers:
  - name: backend
    image: nginx
"#;

const SERVICE: &str = r#"
apiVersion: v1
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
"#;

#[test]
fn setting_up_your_first_pod_network() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "techcorp-ecommerce"]);
    c.apply(PODS);
    c.apply(SERVICE);
    c.ok(&["wait", "-n", "techcorp-ecommerce", "--for=condition=Ready", "pod/frontend", "pod/backend", "--timeout=90s"]);
    let mut page = String::new();
    c.eventually(60, "the nginx welcome page through backend-service", || {
        let out = c.kubectl(&["exec", "-it", "frontend", "-n", "techcorp-ecommerce", "--", "curl", "-s", "-m", "5", "backend-service"]);
        page = String::from_utf8_lossy(&out.stdout).to_string();
        page.contains("Welcome to nginx!")
    });
}
