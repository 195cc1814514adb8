//! agnhost as a real process: signals, exit codes and the exact stderr lines
//! e2e tests match on. This test binary re-executes itself as the agnhost
//! process (see `main`), so no other binary is needed. Loopback only.

mod common;

use common::tls::{https_get, trusting};
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When set, this binary is the agnhost child: its value holds the arguments,
/// separated by U+001F.
const CHILD_ENV: &str = "WEFT_AGNHOST_TEST_CHILD";

fn main() {
    if let Ok(args) = std::env::var(CHILD_ENV) {
        let argv = std::iter::once("agnhost".to_string()).chain(args.split('\u{1f}').map(String::from)).collect();
        std::process::exit(weft_agnhost::run(argv));
    }
    let cases: Vec<(&str, fn())> = vec![
        ("pause_exits_2_on_sigterm", pause_exits_2_on_sigterm),
        ("pause_exits_1_on_sigint", pause_exits_1_on_sigint),
        ("pause_delay_shutdown_sleeps_before_exit", pause_delay_shutdown_sleeps_before_exit),
        ("netexec_sigterm_turns_readyz_503_then_exits_0", netexec_sigterm_turns_readyz_503_then_exits_0),
        ("netexec_exit_endpoint_sets_the_process_exit_code", netexec_exit_endpoint_sets_the_process_exit_code),
        ("netexec_reports_missing_sctp_and_keeps_serving", netexec_reports_missing_sctp_and_keeps_serving),
        ("connect_tcp_succeeds_with_exit_0", connect_tcp_succeeds_with_exit_0),
        ("connect_tcp_refused_prints_refused", connect_tcp_refused_prints_refused),
        ("connect_tcp_timeout_prints_timeout", connect_tcp_timeout_prints_timeout),
        ("connect_bad_address_prints_unknown", connect_bad_address_prints_unknown),
        ("connect_udp_succeeds_on_an_answer", connect_udp_succeeds_on_an_answer),
        ("connect_udp_refused_prints_refused", connect_udp_refused_prints_refused),
        ("connect_udp_timeout_prints_timeout", connect_udp_timeout_prints_timeout),
        ("connect_sctp_to_a_closed_port_fails", connect_sctp_to_a_closed_port_fails),
        ("connect_unsupported_protocol_exits_1", connect_unsupported_protocol_exits_1),
        ("connect_needs_exactly_one_destination", connect_needs_exactly_one_destination),
        ("porter_serves_each_env_port", porter_serves_each_env_port),
        ("porter_json_response_includes_the_method", porter_json_response_includes_the_method),
    ];
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in &cases {
            println!("{name}: test");
        }
        return;
    }
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        ran += 1;
        let ok = std::panic::catch_unwind(case).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(name);
        }
    }
    println!("\ntest result: {}. {} passed; {} failed", if failed.is_empty() { "ok" } else { "FAILED" }, ran - failed.len(), failed.len());
    if !failed.is_empty() {
        std::process::exit(101);
    }
}

/// A child agnhost with its output collected as it comes.
struct Agnhost {
    child: std::process::Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Agnhost {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Agnhost {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, args.join("\u{1f}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the agnhost child");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Agnhost { child, stdout, stderr }
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    fn wait_stdout(&self, needle: &str) {
        wait_until(|| self.stdout.lock().unwrap().contains(needle), &format!("stdout to contain {needle:?}"));
    }

    fn wait_stderr(&self, needle: &str) {
        wait_until(|| self.stderr.lock().unwrap().contains(needle), &format!("stderr to contain {needle:?}"));
    }

    /// Waits for the exit (killing the child if it overruns `within`).
    fn finish(mut self, within: Duration) -> Finished {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("agnhost did not exit within {within:?}; stderr: {}", self.stderr.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Let the readers drain what the child wrote last.
        std::thread::sleep(Duration::from_millis(50));
        Finished { code: status.code(), stdout: self.stdout.lock().unwrap().clone(), stderr: self.stderr.lock().unwrap().clone() }
    }
}

impl Drop for Agnhost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

fn wait_until(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn connect(args: &[&str]) -> Finished {
    let mut all = vec!["connect"];
    all.extend_from_slice(args);
    Agnhost::spawn(&all, &[]).finish(STEP_TIMEOUT)
}

// ---- pause ----

fn pause_exits_2_on_sigterm() {
    let p = Agnhost::spawn(&["pause"], &[]);
    p.wait_stdout("Paused\n");
    p.signal(Signal::SIGTERM);
    let f = p.finish(STEP_TIMEOUT);
    assert_eq!(f.code, Some(2));
    assert_eq!(f.stdout, "Paused\nexiting 2\n");
}

fn pause_exits_1_on_sigint() {
    let p = Agnhost::spawn(&["pause"], &[]);
    p.wait_stdout("Paused\n");
    p.signal(Signal::SIGINT);
    let f = p.finish(STEP_TIMEOUT);
    assert_eq!((f.code, f.stdout.as_str()), (Some(1), "Paused\nexiting 1\n"));
}

fn pause_delay_shutdown_sleeps_before_exit() {
    let p = Agnhost::spawn(&["pause", "--delay-shutdown=1"], &[]);
    p.wait_stdout("Paused\n");
    let sent = Instant::now();
    p.signal(Signal::SIGTERM);
    let f = p.finish(STEP_TIMEOUT);
    assert!(sent.elapsed() >= Duration::from_secs(1));
    assert_eq!((f.code, f.stdout.as_str()), (Some(2), "Paused\nSleeping 1 seconds before exit ...exiting 2\n"));
}

// ---- netexec ----

fn spawn_netexec(extra: &[&str]) -> (Agnhost, u16) {
    let http = free_port();
    let (h, u) = (format!("--http-port={http}"), format!("--udp-port={}", free_port()));
    let mut args = vec!["netexec", h.as_str(), u.as_str()];
    args.extend_from_slice(extra);
    let p = Agnhost::spawn(&args, &[]);
    wait_tcp(http);
    (p, http)
}

fn netexec_sigterm_turns_readyz_503_then_exits_0() {
    let (p, http) = spawn_netexec(&["--delay-shutdown=2"]);
    assert_eq!(get(http, "/readyz").status, 200);
    let sent = Instant::now();
    p.signal(Signal::SIGTERM);
    wait_until(|| get(http, "/readyz").status == 503, "/readyz to turn 503");
    assert_eq!(get(http, "/readyz").body, "shutting down");
    assert_eq!(get(http, "/healthz").status, 200, "still healthy while draining");
    let f = p.finish(STEP_TIMEOUT);
    assert_eq!(f.code, Some(0));
    assert!(sent.elapsed() >= Duration::from_secs(2), "exited before --delay-shutdown passed");
    assert!(f.stderr.contains("Sleeping 2 seconds before terminating..."), "{}", f.stderr);
}

fn netexec_exit_endpoint_sets_the_process_exit_code() {
    let (p, http) = spawn_netexec(&[]);
    assert_eq!(get(http, "/exit?code=42&timeout=1s").status, 200);
    assert_eq!(p.finish(STEP_TIMEOUT).code, Some(42));
}

fn netexec_reports_missing_sctp_and_keeps_serving() {
    let sctp = format!("--sctp-port={}", free_port());
    let (p, http) = spawn_netexec(&[&sctp]);
    if weft_agnhost::sctp::kernel_supports_sctp() {
        p.wait_stderr("Started SCTP server");
    } else {
        p.wait_stderr("this kernel has no SCTP support");
    }
    assert_eq!(get(http, "/hostname").body, hostname());
    assert_eq!(get(http, "/healthz").status, 200);
}

// ---- connect ----

fn connect_tcp_succeeds_with_exit_0() {
    let l = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    let dest = l.local_addr().unwrap().to_string();
    let f = connect(&[&dest, "--timeout=1s"]);
    assert_eq!((f.code, f.stderr.as_str()), (Some(0), ""));
}

fn connect_tcp_refused_prints_refused() {
    let dest = format!("127.0.0.1:{}", free_port());
    let f = connect(&[&dest, "--timeout", "1s"]);
    assert_eq!((f.code, f.stderr.as_str()), (Some(1), "REFUSED\n"));
}

/// A loopback listener whose accept queue is full, so further SYNs are
/// dropped and a connect can only time out.
fn full_backlog_listener() -> (socket2::Socket, Vec<socket2::Socket>, SocketAddr) {
    use socket2::{Domain, Protocol, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    l.bind(&SocketAddr::from((LOOPBACK, 0)).into()).unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        let timed_out = s.connect_timeout(&addr.into(), Duration::from_millis(300)).is_err();
        fillers.push(s);
        if timed_out {
            return (l, fillers, addr);
        }
    }
    panic!("could not fill the accept queue of {addr}");
}

fn connect_tcp_timeout_prints_timeout() {
    let (_l, _fillers, addr) = full_backlog_listener();
    let started = Instant::now();
    let f = connect(&[&addr.to_string(), "--timeout=500ms"]);
    assert_eq!((f.code, f.stderr.as_str()), (Some(1), "TIMEOUT\n"));
    assert!(started.elapsed() >= Duration::from_millis(500));
}

fn connect_bad_address_prints_unknown() {
    let f = connect(&["no-port-here"]);
    assert_eq!((f.code, f.stderr.as_str()), (Some(1), "UNKNOWN: address no-port-here: missing port in address\n"));
}

fn connect_udp_succeeds_on_an_answer() {
    let server = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    let dest = server.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(String::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        if let Ok((n, from)) = server.recv_from(&mut buf) {
            *seen.lock().unwrap() = String::from_utf8_lossy(&buf[..n]).into_owned();
            let _ = server.send_to(b"pong", from);
        }
    });
    let f = connect(&[&dest, "--protocol=udp", "--timeout=2s", "--udp-data=ping"]);
    assert_eq!((f.code, f.stderr.as_str()), (Some(0), ""));
    assert_eq!(*got.lock().unwrap(), "ping\n", "the payload ends with a newline, as upstream");
}

fn connect_udp_refused_prints_refused() {
    let port = free_port();
    let f = connect(&[&format!("127.0.0.1:{port}"), "--protocol=udp", "--timeout=2s"]);
    assert_eq!(f.code, Some(1));
    assert!(f.stderr.starts_with("REFUSED: read udp 127.0.0.1:"), "{}", f.stderr);
    assert!(f.stderr.ends_with(&format!("->127.0.0.1:{port}: read: connection refused\n")), "{}", f.stderr);
}

fn connect_udp_timeout_prints_timeout() {
    let silent = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    let dest = silent.local_addr().unwrap();
    let f = connect(&[&dest.to_string(), "--protocol=udp", "--timeout=300ms"]);
    assert_eq!(f.code, Some(1));
    assert!(f.stderr.starts_with("TIMEOUT: read udp 127.0.0.1:") && f.stderr.ends_with(&format!("->{dest}: i/o timeout\n")), "{}", f.stderr);
}

fn connect_sctp_to_a_closed_port_fails() {
    let dest = format!("127.0.0.1:{}", free_port());
    let f = connect(&[&dest, "--protocol=sctp", "--timeout=1s"]);
    assert_eq!(f.code, Some(1));
    if weft_agnhost::sctp::kernel_supports_sctp() {
        assert!(f.stderr.starts_with("OTHER: ") || f.stderr == "TIMEOUT\n", "{}", f.stderr);
    } else {
        // User-space SCTP over a raw socket: nobody answers the INIT.
        assert_eq!(f.stderr, "TIMEOUT\n");
    }
}

fn connect_unsupported_protocol_exits_1() {
    let f = connect(&["127.0.0.1:1", "--protocol=quic"]);
    assert_eq!((f.code, f.stderr.as_str()), (Some(1), "Unsupported protocol\nquic"));
}

fn connect_needs_exactly_one_destination() {
    assert_eq!(connect(&[]).code, Some(1));
    assert_eq!(connect(&["127.0.0.1:1", "127.0.0.1:2"]).code, Some(1));
}

// ---- porter ----

fn porter_serves_each_env_port() {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let (tcp, tcp2, udp_port, tls, sctp) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let env = [
        (format!("SERVE_PORT_{tcp}"), "plain".to_string()),
        (format!("SERVE_TCP_PORT_{tcp2}"), "tcp too".to_string()),
        (format!("SERVE_UDP_PORT_{udp_port}"), "over udp".to_string()),
        (format!("SERVE_TLS_PORT_{tls}"), "secret".to_string()),
        (format!("SERVE_SCTP_PORT_{sctp}"), "sctp".to_string()),
        ("CERT_FILE".to_string(), cert.display().to_string()),
        ("KEY_FILE".to_string(), key.display().to_string()),
    ];
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let p = Agnhost::spawn(&["porter"], &env_refs);
    wait_tcp(tcp);
    wait_tcp(tcp2);
    wait_tcp(tls);
    assert_eq!(get(tcp, "/any/path").body, "plain");
    assert_eq!(get(tcp2, "/").body, "tcp too");
    assert_eq!(udp(udp_port, "anything", STEP_TIMEOUT).as_deref(), Some("over udp"));
    assert_eq!(https_get(tls, "/", trusting(ck.cert.der().clone())).body, "secret");
    if weft_agnhost::sctp::kernel_supports_sctp() {
        p.wait_stderr("Started SCTP server");
    } else {
        // The handshake in user space, over raw sockets (sctp_raw).
        p.wait_stderr("Started SCTP server (user space, this kernel has no SCTP)");
    }
    let f = connect(&[&format!("127.0.0.1:{sctp}"), "--protocol=sctp", "--timeout=2s"]);
    assert_eq!(f.code, Some(0), "connect over SCTP: {}", f.stderr);
    // Upstream's porter does not handle SIGTERM: the default action ends it.
    p.signal(Signal::SIGTERM);
    assert_eq!(p.finish(STEP_TIMEOUT).code, None, "ended by the signal");
    assert!(TcpStream::connect((LOOPBACK, tcp)).is_err());
}

fn porter_json_response_includes_the_method() {
    let port = free_port();
    let key = format!("SERVE_PORT_{port}");
    let _p = Agnhost::spawn(&["porter", "--json-response"], &[(key.as_str(), "v<1>")]);
    wait_tcp(port);
    let r = request(port, "POST", "/", &[], b"");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.body, r#"{"Method":"POST","Body":"v\u003c1\u003e"}"#);
}
