//! Helpers for agnhost's tests: free loopback ports, agnhost running on a
//! thread, and tiny blocking HTTP/UDP clients. All traffic goes to 127.0.0.1.
#![allow(dead_code)]

pub mod tls;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP port nothing listens on right now, with its UDP twin free too.
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind((LOOPBACK, 0)).expect("bind an ephemeral port");
        let port = l.local_addr().unwrap().port();
        if UdpSocket::bind((LOOPBACK, port)).is_ok() {
            return port;
        }
    }
}

/// agnhost running in this process on its own thread; `exit_code` waits for
/// `run` to return.
pub struct InProcess {
    done: mpsc::Receiver<i32>,
}

impl InProcess {
    pub fn start(args: &[&str]) -> InProcess {
        let mut argv = vec!["agnhost".to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(weft_agnhost::run(argv));
        });
        InProcess { done: rx }
    }

    pub fn exit_code(&self, within: Duration) -> Option<i32> {
        self.done.recv_timeout(within).ok()
    }
}

/// Waits until something accepts TCP connections on the port.
pub fn wait_tcp(port: u16) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&SocketAddr::from((LOOPBACK, port)), Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// Starts `netexec` on fresh ports and waits for its HTTP server.
pub fn netexec(extra: &[&str]) -> (InProcess, u16, u16) {
    let (http, udp) = (free_port(), free_port());
    let mut args = vec!["netexec".to_string(), format!("--http-port={http}"), format!("--udp-port={udp}")];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = InProcess::start(&refs);
    wait_tcp(http);
    (p, http, udp)
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub fn get(port: u16, target: &str) -> Resp {
    request(port, "GET", target, &[], b"")
}

/// One HTTP/1.1 request on a new connection (`Connection: close`).
pub fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect((LOOPBACK, port)).expect("connect");
    s.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Resp {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    Resp { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// Sends one datagram to 127.0.0.1:port and returns the answer, if any came
/// within `wait`.
pub fn udp(port: u16, payload: &str, wait: Duration) -> Option<String> {
    let s = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    s.connect((LOOPBACK, port)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.send(payload.as_bytes()).unwrap();
    let mut buf = [0u8; 2048];
    s.recv(&mut buf).ok().map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A GET that asks to keep the connection open, so the server's own
/// `Connection` header can be seen; reads one Content-Length response.
pub fn get_keepalive(port: u16, target: &str) -> Resp {
    let mut s = TcpStream::connect((LOOPBACK, port)).expect("connect");
    s.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    s.write_all(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = parse_response(&raw[..end + 4]);
            let len: usize = head.header("Content-Length").and_then(|v| v.parse().ok()).unwrap_or(0);
            if raw.len() >= end + 4 + len {
                return parse_response(&raw[..end + 4 + len]);
            }
        }
        let n = s.read(&mut buf).expect("read the response");
        assert!(n > 0, "connection closed mid-response");
        raw.extend_from_slice(&buf[..n]);
    }
}
