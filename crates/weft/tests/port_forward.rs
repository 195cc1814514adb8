//! `kubectl port-forward`, with the real kubectl: to a pod and to a Service, over the
//! WebSocket transport (kubectl's default since 1.31) and over the older SPDY upgrade,
//! with a payload larger than any one frame, several connections at once, and a port
//! nothing listens on (the error kubectl prints). Named after upstream's
//! `test/e2e/kubectl/portforward.go` behaviours.

mod common;

use common::{lines_of, Cluster};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A pod serving /www on 8080 with busybox httpd: a small page and a 2 MiB file.
const WEB: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  nodeName: node-2
  volumes:
  - {name: www, emptyDir: {}}
  containers:
  - name: c
    image: busybox
    volumeMounts: [{name: www, mountPath: /www}]
    command: [sh, -c, "echo hello-from-web > /www/index.html; dd if=/dev/zero bs=1024 count=2048 2>/dev/null | tr '\\0' w > /www/big; exec busybox httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;

/// A running `kubectl port-forward`, the local port it chose, and what it has printed
/// on stderr so far.
struct Forward {
    child: Child,
    port: u16,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Kept so that stdout stays read: kubectl dies of a broken pipe when it writes
    /// "Handling connection for ..." to a closed one.
    _stdout: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
}

impl Forward {
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits (up to 10 s) for kubectl to print a line containing `what`.
    fn wait_stderr(&self, what: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.stderr().contains(what) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stderr()
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_forward(c: &Cluster, target: &str, remote: u16, websockets: bool) -> Forward {
    let mut child = Command::new("kubectl")
        .args(["port-forward", target, &format!(":{remote}")])
        .env("KUBECONFIG", c.kubeconfig())
        .env(
            "KUBECTL_PORT_FORWARD_WEBSOCKETS",
            if websockets { "true" } else { "false" },
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl port-forward");
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let err = child.stderr.take().unwrap();
    std::thread::spawn({
        let stderr = stderr.clone();
        move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                stderr.lock().unwrap().push(l);
            }
        }
    });
    let lines = lines_of(&mut child);
    // "Forwarding from 127.0.0.1:40123 -> 8080"
    let line = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("kubectl port-forward prints where it listens");
    let port = line
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Forward {
        child,
        port,
        stderr,
        _stdout: std::sync::Mutex::new(lines),
    }
}

fn curl(port: u16, path: &str) -> std::process::Output {
    Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .expect("curl")
}

fn fetch(f: &Forward, path: &str) -> String {
    let out = curl(f.port, path);
    assert!(
        out.status.success(),
        "curl {path} through the forward failed: {}; kubectl said: {}",
        String::from_utf8_lossy(&out.stderr),
        f.stderr()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Upstream: "should support forwarding over websockets", "should support a client
/// that connects, sends DATA, and disconnects", with several connections at once.
fn forwards_requests(f: &Forward) {
    assert_eq!(fetch(f, "/index.html"), "hello-from-web\n");
    let big = fetch(f, "/big");
    assert_eq!(big.len(), 2 * 1024 * 1024, "the 2 MiB file arrives whole");
    assert!(big.bytes().all(|b| b == b'w'));
    std::thread::scope(|s| {
        let parallel: Vec<_> = (0..6)
            .map(|_| s.spawn(|| fetch(f, "/index.html")))
            .collect();
        for t in parallel {
            assert_eq!(t.join().unwrap(), "hello-from-web\n");
        }
    });
}

#[test]
fn kubectl_port_forward_reaches_a_pod_and_a_service_over_websocket_and_spdy() {
    let c = Cluster::start();
    c.apply(WEB);
    c.wait_running("web", 60);
    c.eventually(20, "httpd in the pod to listen", || {
        c.in_pod("web", "wget -q -O- http://127.0.0.1:8080/index.html")
            .contains("hello-from-web")
    });

    let ws = port_forward(&c, "pod/web", 8080, true);
    forwards_requests(&ws);
    drop(ws);

    let spdy = port_forward(&c, "pod/web", 8080, false);
    forwards_requests(&spdy);
    drop(spdy);

    // kubectl resolves the Service to a pod and its port 80 to targetPort 8080.
    let svc = port_forward(&c, "svc/web", 80, true);
    assert_eq!(fetch(&svc, "/index.html"), "hello-from-web\n");
}

/// Upstream: "should support a client that connects, sends NO DATA, and disconnects"
/// to a port with no listener: the connection fails, and kubectl reports the error
/// the kubelet wrote on the request's error stream.
#[test]
fn kubectl_port_forward_to_a_closed_port_reports_the_kubelets_error() {
    let c = Cluster::start();
    c.apply(WEB);
    c.wait_running("web", 60);
    let f = port_forward(&c, "pod/web", 9999, true);
    let out = curl(f.port, "/");
    assert!(
        !out.status.success() || out.stdout.is_empty(),
        "nothing listens on 9999, yet: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let said = f.wait_stderr("error forwarding port 9999 to pod default/web");
    assert!(
        said.contains("error forwarding port 9999 to pod default/web"),
        "{said}"
    );
    assert!(
        said.contains("dial tcp 127.0.0.1:9999: connect: connection refused"),
        "{said}"
    );
}
