//! `kubectl logs` and `kubectl exec` against `weft up --nodes 2`: the API server's
//! pods/log and pods/exec proxied to each node's kubelet endpoint, container output
//! through the log shims, commands run inside the pod over WebSocket.

mod common;
use common::{lines_of, Cluster};
use std::process::{Command, Stdio};
use std::time::Duration;

const AGNHOST: &str = "registry.k8s.io/e2e-test-images/agnhost:2.52";

/// A pod of one busybox container named `c` running `script` under `sh -c`.
fn busybox(name: &str, node: &str, restart: &str, script: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  restartPolicy: {restart}\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, {script:?}]\n")
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Sorted lines, for output whose two streams may interleave either way.
fn sorted(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}

/// `2016-10-06T00:17:09.669794202Z`, as the kubelet prints it.
fn is_kubelet_timestamp(t: &str) -> bool {
    t.len() == 30 && t.as_bytes()[10] == b'T' && t.ends_with('Z') && t[20..29].bytes().all(|b| b.is_ascii_digit()) && t.as_bytes()[19] == b'.'
}

#[test]
fn kubectl_logs_shows_both_streams_with_tail_timestamps_and_limits() {
    let c = Cluster::start();
    c.apply(&busybox("talker", "node-1", "Always", "echo one; echo two >&2; sleep 1000"));
    c.wait_running("talker", 30);
    let mut logs = String::new();
    c.eventually(20, "both lines in the log", || {
        logs = c.ok(&["logs", "talker"]);
        logs.lines().count() == 2
    });
    assert_eq!(sorted(&logs), ["one", "two"], "{logs}");
    let last = c.ok(&["logs", "talker", "--tail=1"]);
    assert_eq!(last, format!("{}\n", logs.lines().last().unwrap()));
    assert_eq!(c.ok(&["logs", "talker", "--tail=0"]), "");
    let stamped = c.ok(&["logs", "talker", "--timestamps"]);
    for (line, plain) in stamped.lines().zip(logs.lines()) {
        let (t, rest) = line.split_once(' ').unwrap();
        assert!(is_kubelet_timestamp(t), "not a kubelet timestamp: {t:?} in {stamped}");
        assert_eq!(rest, plain);
    }
    assert_eq!(c.ok(&["logs", "talker", "--limit-bytes=2"]).len(), 2);
    assert_eq!(sorted(&c.ok(&["logs", "talker", "--since=1h"])), ["one", "two"]);
    assert_eq!(c.ok(&["logs", "talker", "--since-time=2999-01-01T00:00:00Z"]), "");
    // The raw API, as any client sees it.
    let raw = c.ok(&["get", "--raw", "/api/v1/namespaces/default/pods/talker/log?tailLines=2"]);
    assert_eq!(sorted(&raw), ["one", "two"]);

    let never = c.kubectl(&["logs", "talker", "--previous"]);
    assert!(!never.status.success());
    assert!(err(&never).contains(r#"previous terminated container "c" in pod "talker" not found"#), "{}", err(&never));
    let bad = c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/talker/log?tailLines=-1"]);
    assert!(err(&bad).contains("tailLines: Invalid value: -1: must be greater than or equal to 0"), "{}", err(&bad));
    let gone = c.kubectl(&["logs", "nobody"]);
    assert!(err(&gone).contains(r#"pods "nobody" not found"#), "{}", err(&gone));

    // Several containers: kube-apiserver's error for the raw API, kubectl's default.
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: duo\nspec:\n  nodeName: node-2\n  containers:\n  - {name: a, image: busybox, command: [sh, -c, 'echo from-a; sleep 1000']}\n  - {name: b, image: busybox, command: [sh, -c, 'echo from-b; sleep 1000']}\n");
    c.wait_running("duo", 30);
    let raw = c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/duo/log"]);
    assert!(!raw.status.success());
    assert!(err(&raw).contains("a container name must be specified for pod duo, choose one of: [a b]"), "{}", err(&raw));
    c.eventually(20, "container b's log", || c.ok(&["logs", "duo", "-c", "b"]) == "from-b\n");
    let defaulted = c.kubectl(&["logs", "duo"]);
    assert_eq!(out(&defaulted), "from-a\n");
    assert!(err(&defaulted).contains(r#"Defaulted container "a" out of: a, b"#), "{}", err(&defaulted));
    let unknown = c.kubectl(&["logs", "duo", "-c", "zz"]);
    assert!(err(&unknown).contains("container zz is not valid for pod duo"), "{}", err(&unknown));
    // The default-container annotation, honoured by the API server itself.
    c.ok(&["annotate", "pod", "duo", "kubectl.kubernetes.io/default-container=b"]);
    assert_eq!(c.ok(&["get", "--raw", "/api/v1/namespaces/default/pods/duo/log"]), "from-b\n");

    // A container that cannot start has no log yet, and says why.
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: redis\nspec:\n  nodeName: node-1\n  containers:\n  - name: c\n    image: redis:7\n");
    c.eventually(20, "the waiting reason", || c.ok(&["get", "pod", "redis", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}"]) == "ImageNotSupported");
    let waiting = c.kubectl(&["logs", "redis"]);
    assert!(err(&waiting).contains(r#"container "c" in pod "redis" is waiting to start: ImageNotSupported"#), "{}", err(&waiting));
}

#[test]
fn kubectl_logs_follow_streams_new_lines_and_ends_when_the_container_exits() {
    let c = Cluster::start();
    let go = c.state_dir().join("go");
    let stop = c.state_dir().join("stop");
    let script = format!("echo first; until [ -e {go} ]; do sleep 0.1; done; echo second; until [ -e {stop} ]; do sleep 0.1; done; echo last", go = go.display(), stop = stop.display());
    c.apply(&busybox("follower", "node-2", "Never", &script));
    c.wait_running("follower", 30);
    let mut f = Command::new("kubectl").args(["logs", "-f", "follower"]).env("KUBECONFIG", c.kubeconfig()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let lines = lines_of(&mut f);
    let wait = Duration::from_secs(30);
    assert_eq!(lines.recv_timeout(wait).expect("the first line"), "first");
    std::fs::write(&go, "").unwrap();
    assert_eq!(lines.recv_timeout(wait).expect("a line printed after kubectl logs -f started"), "second");
    std::fs::write(&stop, "").unwrap();
    assert_eq!(lines.recv_timeout(wait).expect("the last line"), "last");
    // The container is gone: the stream ends and kubectl exits on its own.
    let mut ended = false;
    for _ in 0..300 {
        if let Some(status) = f.try_wait().unwrap() {
            assert!(status.success(), "kubectl logs -f failed: {status}");
            ended = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !ended {
        let _ = f.kill();
        panic!("kubectl logs -f did not end after the container exited");
    }
    c.eventually(20, "the pod to succeed", || c.ok(&["get", "pod", "follower", "-o", "jsonpath={.status.phase}"]) == "Succeeded");
    assert_eq!(c.ok(&["logs", "follower"]), "first\nsecond\nlast\n");
}

#[test]
fn kubectl_logs_previous_shows_the_instance_before_a_crash() {
    let c = Cluster::start();
    let count = c.state_dir().join("instances");
    // Each instance counts itself; the first crashes, the second stays up.
    let script = format!("n=$(($(cat {f} 2>/dev/null || echo 0) + 1)); echo $n > {f}; echo instance-$n; [ $n -ge 2 ] && exec sleep 1000; exit 1", f = count.display());
    c.apply(&busybox("crashy", "node-1", "Always", &script));
    c.eventually(40, "one restart and a running second instance", || {
        c.ok(&["get", "pod", "crashy", "-o", "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.running}"]).starts_with("1 {")
    });
    assert_eq!(c.ok(&["logs", "crashy", "--previous"]), "instance-1\n");
    c.eventually(20, "the current instance's log", || c.ok(&["logs", "crashy"]) == "instance-2\n");
    assert_eq!(c.ok(&["get", "pod", "crashy", "-o", "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}"]), "1");
}

#[test]
fn kubectl_exec_runs_in_the_pod_with_its_identity_streams_terminal_and_exit_code() {
    let c = Cluster::start();
    c.apply(&busybox("bb", "node-1", "Always", "sleep 1000"));
    c.wait_running("bb", 30);

    let run = c.kubectl(&["exec", "bb", "--", "sh", "-c", "echo $HOSTNAME; cat /etc/resolv.conf; echo oops >&2; exit 3"]);
    assert_eq!(run.status.code(), Some(3), "stderr: {}", err(&run));
    let text = out(&run);
    assert_eq!(text.lines().next(), Some("bb"), "{text}");
    assert!(text.lines().any(|l| l == "nameserver 10.96.0.10"), "{text}");
    assert!(text.lines().any(|l| l == "search default.svc.cluster.local svc.cluster.local cluster.local"), "{text}");
    assert!(err(&run).contains("oops"), "{}", err(&run));
    assert!(err(&run).contains("command terminated with exit code 3"), "{}", err(&run));
    assert!(!std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default().contains("10.96.0.10"));

    // stdin, ended by the v5 close signal.
    let piped = c.kubectl_stdin(&["exec", "-i", "bb", "--", "cat"], "hi\nthere\n");
    assert!(piped.status.success(), "{}", err(&piped));
    assert_eq!(out(&piped), "hi\nthere\n");

    // A terminal: the command sees a pty, and the client's size.
    let tty = Command::new("script")
        .args(["-qec", "stty cols 91 rows 27; kubectl exec -it bb -- sh -c 'tty; for i in $(seq 50); do s=$(stty size); [ \"$s\" != \"0 0\" ] && break; sleep 0.1; done; echo size=$s'", "/dev/null"])
        .env("KUBECONFIG", c.kubeconfig())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = out(&tty);
    assert!(tty.status.success(), "{text}{}", err(&tty));
    assert!(text.contains("/dev/pts/"), "no pty in: {text:?}");
    assert!(text.contains("size=27 91"), "the terminal size did not reach the command: {text:?}");

    // A program that is nowhere: the runtime's error, kubectl fails.
    let missing = c.kubectl(&["exec", "bb", "--", "no-such-program"]);
    assert!(!missing.status.success());
    assert!(err(&missing).contains(r#"exec: "no-such-program": executable file not found in $PATH"#), "{}", err(&missing));

    // Not running: a waiting container, a completed pod, a pod that does not exist.
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: redis\nspec:\n  nodeName: node-2\n  containers:\n  - name: c\n    image: redis:7\n");
    c.eventually(20, "the waiting reason", || c.ok(&["get", "pod", "redis", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}"]) == "ImageNotSupported");
    let waiting = c.kubectl(&["exec", "redis", "--", "ls"]);
    assert!(!waiting.status.success());
    assert!(err(&waiting).contains(r#"container not found ("c")"#), "{}", err(&waiting));
    c.apply(&busybox("done", "node-2", "Never", "true"));
    c.eventually(30, "the pod to complete", || c.ok(&["get", "pod", "done", "-o", "jsonpath={.status.phase}"]) == "Succeeded");
    let done = c.kubectl(&["exec", "done", "--", "ls"]);
    assert!(err(&done).contains("cannot exec into a container in a completed pod; current phase is Succeeded"), "{}", err(&done));
    let nobody = c.kubectl(&["exec", "nobody", "--", "ls"]);
    assert!(err(&nobody).contains(r#"pods "nobody" not found"#), "{}", err(&nobody));
}

#[test]
fn kubectl_exec_reaches_other_pods_across_nodes() {
    let c = Cluster::start();
    c.apply(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: server\nspec:\n  nodeName: node-1\n  containers:\n  - name: c\n    image: {AGNHOST}\n    args: [netexec, --http-port=8080]\n"));
    c.apply(&busybox("client", "node-2", "Always", "sleep 1000"));
    c.apply(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: prober\nspec:\n  nodeName: node-2\n  containers:\n  - name: c\n    image: {AGNHOST}\n    args: [pause]\n"));
    let server_ip = c.wait_running("server", 30);
    c.wait_running("client", 30);
    c.wait_running("prober", 30);
    let mut seen = String::new();
    c.eventually(20, "wget from the client pod to reach the server", || {
        seen = out(&c.kubectl(&["exec", "client", "--", "wget", "-qO-", &format!("http://{server_ip}:8080/hostname")]));
        seen == "server"
    });
    let connect = c.kubectl(&["exec", "prober", "--", "/agnhost", "connect", &format!("{server_ip}:8080"), "--timeout=5s"]);
    assert!(connect.status.success(), "agnhost connect failed: {}{}", out(&connect), err(&connect));
    let ping = c.kubectl(&["exec", "client", "--", "ping", "-c", "1", "-W", "2", &server_ip]);
    assert!(ping.status.success(), "{}{}", out(&ping), err(&ping));
    assert!(out(&ping).contains("1 packets received"), "{}", out(&ping));
}

/// kube-rs as a second client of pods/exec (v5 over WebSocket, its own framing code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_exec_gets_stdout_and_the_failure_status() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams};
    use tokio::io::AsyncReadExt;
    let c = Cluster::start();
    c.apply(&busybox("bb", "node-2", "Always", "sleep 1000"));
    tokio::task::block_in_place(|| c.wait_running("bb", 30));
    let pods: Api<Pod> = Api::default_namespaced(c.client().await);
    let mut p = pods.exec("bb", ["sh", "-c", "echo via-kube-rs; exit 5"], &AttachParams::default().stderr(false)).await.unwrap();
    let mut stdout = String::new();
    p.stdout().unwrap().read_to_string(&mut stdout).await.unwrap();
    let status = p.take_status().unwrap().await.unwrap();
    assert_eq!(stdout, "via-kube-rs\n");
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let causes = status.details.and_then(|d| d.causes).unwrap_or_default();
    assert_eq!(causes.first().and_then(|c| c.message.as_deref()), Some("5"));
}

#[test]
fn the_kubelet_endpoint_is_reported_listed_and_refuses_anonymous_callers() {
    let c = Cluster::start();
    assert_eq!(c.ok(&["get", "node", "node-1", "-o", "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}"]), "10250");
    let ip = c.ok(&["get", "node", "node-1", "-o", "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}"]);
    let ca = c.state_dir().join("pki/ca.crt");
    // The serving certificate is the CA's and names the node's IP; no client certificate: 401.
    let anon = c.sh(&format!("curl -s -o /dev/null -w '%{{http_code}}' --cacert {} https://{ip}:10250/containerLogs/default/x/c", ca.display()));
    assert_eq!(String::from_utf8_lossy(&anon.stdout), "401", "{}", String::from_utf8_lossy(&anon.stderr));
    // A cluster admin's certificate gets through (and the pod is not there).
    let pki = c.state_dir().join("pki");
    let admin = c.sh(&format!("curl -s -w ' %{{http_code}}' --cacert {p}/ca.crt --cert {p}/admin.crt --key {p}/admin.key https://{ip}:10250/containerLogs/default/x/c", p = pki.display()));
    assert_eq!(String::from_utf8_lossy(&admin.stdout), "pod \"x\" does not exist 404");
    let discovery = c.ok(&["get", "--raw", "/api/v1"]);
    assert!(["pods/log", "pods/exec", "pods/attach", "pods/portforward"].iter().all(|s| discovery.contains(&format!(r#""name":"{s}""#))), "{discovery}");
    let attach = c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/x/attach"]);
    assert!(err(&attach).contains(r#"pods "x" not found"#), "{}", err(&attach));
    let forward = c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/x/portforward"]);
    assert!(err(&forward).contains(r#"pods "x" not found"#), "{}", err(&forward));
}

/// "Testing Pod-to-Pod Communication" from the seeds, as written: nginx and a busybox
/// loop in techcorp-ecommerce, then `kubectl exec -it pod2 -- wget -O- <pod1-ip>`.
#[test]
fn the_seed_pod_to_pod_exercise_works_through_exec() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "techcorp-ecommerce"]);
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod1\n  namespace: techcorp-ecommerce\nspec:\n  containers:\n  - name: main\n    image: nginx\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: pod2\n  namespace: techcorp-ecommerce\nspec:\n  containers:\n  - name: main\n    image: busybox\n    command: [\"/bin/sh\", \"-c\", \"while true; do echo hello; sleep 10;done\"]\n");
    let ns = ["-n", "techcorp-ecommerce"];
    let state = |p: &str| c.ok(&["get", "pod", p, ns[0], ns[1], "-o", "jsonpath={.status.phase} {.status.podIP}"]);
    c.eventually(30, "both pods running", || state("pod1").starts_with("Running 1") && state("pod2").starts_with("Running 1"));
    let ip = c.ok(&["get", "pod", "pod1", "-n", "techcorp-ecommerce", "-o", "jsonpath={.status.podIP}"]);
    c.eventually(20, "pod2's log", || c.ok(&["logs", "pod2", "-n", "techcorp-ecommerce"]).starts_with("hello\n"));
    let mut page = String::new();
    c.eventually(20, "the nginx welcome page through exec", || {
        let o = Command::new("script")
            .args(["-qec", &format!("kubectl exec -it pod2 -n techcorp-ecommerce -- wget -O- {ip}"), "/dev/null"])
            .env("KUBECONFIG", c.kubeconfig())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        page = out(&o);
        page.contains("Welcome to nginx!")
    });
}

/// While weft is down (killed), containers keep writing: their log shims outlive weft,
/// so no container meets a closed pipe (SIGPIPE) or a full one (blocked writes). The
/// next weft shows that output as the previous instance's log.
#[test]
fn container_output_keeps_flowing_while_weft_is_down() {
    let mut c = Cluster::start();
    let go = c.state_dir().join("go");
    // More than a pipe's 64 KiB once weft is gone.
    let script = format!("echo ready; until [ -e {go} ]; do sleep 0.1; done; seq 1 50000; echo done-writing; exec sleep 1000", go = go.display());
    c.apply(&busybox("writer", "node-1", "Always", &script));
    c.wait_running("writer", 30);
    c.eventually(20, "the first line", || c.ok(&["logs", "writer"]) == "ready\n");
    let uid = c.ok(&["get", "pod", "writer", "-o", "jsonpath={.metadata.uid}"]);
    let dir = c.state_dir().join("nodes/node-1/pods").join(uid).join("containers/c");
    let pid: i32 = std::fs::read_to_string(dir.join("pid")).unwrap().trim().parse().unwrap();
    c.kill9();
    std::fs::write(&go, "").unwrap();
    c.eventually(30, "the container's output reaching its log with weft down", || std::fs::read_to_string(dir.join("log")).unwrap_or_default().contains(" stdout F done-writing\n"));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()).unwrap_or("gone");
    assert!(matches!(state, "S" | "R"), "the container died while weft was down (state {state})");
    c.up();
    let mut prev = String::new();
    c.eventually(30, "the instance from before the restart as the previous log", || {
        prev = out(&c.kubectl(&["logs", "writer", "--previous"]));
        prev.ends_with("49999\n50000\ndone-writing\n")
    });
    assert!(prev.starts_with("ready\n1\n2\n"), "{}", &prev[..prev.len().min(200)]);
}

/// `kubectl run --rm -it` (the seeds' troubleshooting form): the pod is created, its
/// output reaches the terminal through pods/attach, and the pod is deleted after.
/// `kubectl attach` to a running container follows its new output.
#[test]
fn kubectl_run_rm_it_prints_the_output_and_kubectl_attach_follows_a_running_container() {
    let c = Cluster::start();
    let run = c.kubectl(&["run", "once", "--rm", "-it", "--restart=Never", "--image=busybox", "--", "sh", "-c", "sleep 2; echo attached-output; echo to-stderr >&2"]);
    let (o, e) = (out(&run), err(&run));
    assert!(run.status.success(), "kubectl run --rm -it failed: {o}{e}");
    assert!(o.contains("attached-output") && o.contains("to-stderr"), "the output is missing: {o}{e}");
    assert!(o.contains("pod \"once\" deleted") || e.contains("pod \"once\" deleted"), "the pod was not deleted: {o}{e}");
    // A failing command: kubectl exits with its code.
    let run = c.kubectl(&["run", "fails", "--rm", "-i", "--restart=Never", "--image=busybox", "--", "sh", "-c", "sleep 2; echo bye; exit 3"]);
    assert!(out(&run).contains("bye"), "{}{}", out(&run), err(&run));
    assert!(!run.status.success(), "a failing command must fail kubectl run: {}{}", out(&run), err(&run));

    c.apply(&busybox("ticker", "node-2", "Always", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.5; done"));
    c.wait_running("ticker", 30);
    std::thread::sleep(Duration::from_secs(12));
    let mut child = Command::new("kubectl").args(["attach", "ticker"]).env("KUBECONFIG", c.kubeconfig()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let lines = lines_of(&mut child);
    let first = lines.recv_timeout(Duration::from_secs(10)).expect("attach prints the container's new output");
    let n: u32 = first.trim_start_matches("tick-").parse().unwrap_or_else(|_| panic!("not a tick line: {first:?}"));
    // Attached to an old container: from now on, not from its start.
    assert!(n > 10, "attach replayed old output: {first}");
    let next = lines.recv_timeout(Duration::from_secs(5)).expect("a second line");
    assert_eq!(next, format!("tick-{}", n + 1));
    let _ = child.kill();
    let _ = child.wait();
}
