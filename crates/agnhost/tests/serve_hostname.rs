//! serve-hostname over HTTP, raw TCP and UDP, on loopback.

mod common;

use common::*;
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

fn serve_hostname(extra: &[&str]) -> (InProcess, u16) {
    let port = free_port();
    let mut args = vec!["serve-hostname".to_string(), format!("--port={port}")];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    (InProcess::start(&refs), port)
}

#[test]
fn http_is_served_by_default() {
    let (_p, port) = serve_hostname(&[]);
    wait_tcp(port);
    let r = get_keepalive(port, "/anything");
    assert_eq!((r.status, r.body.as_str()), (200, hostname().as_str()));
    assert_ne!(r.header("Connection"), Some("close"));
}

#[test]
fn close_asks_the_client_to_close_each_connection() {
    let (_p, port) = serve_hostname(&["--close"]);
    wait_tcp(port);
    assert_eq!(get_keepalive(port, "/").header("Connection"), Some("close"));
}

#[test]
fn tcp_mode_writes_the_hostname_and_closes() {
    let (_p, port) = serve_hostname(&["--http=false", "--tcp"]);
    wait_tcp(port);
    let mut s = TcpStream::connect((LOOPBACK, port)).unwrap();
    s.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, hostname());
}

#[test]
fn udp_mode_answers_any_datagram_with_the_hostname() {
    let (_p, port) = serve_hostname(&["--http=false", "--udp"]);
    let deadline = std::time::Instant::now() + STEP_TIMEOUT;
    let answer = loop {
        if let Some(a) = udp(port, "x", Duration::from_millis(200)) {
            break a;
        }
        assert!(std::time::Instant::now() < deadline, "no UDP answer");
    };
    assert_eq!(answer, hostname());
}

#[test]
fn http_together_with_tcp_or_udp_exits_one() {
    let (p, _) = serve_hostname(&["--tcp"]);
    assert_eq!(p.exit_code(STEP_TIMEOUT), Some(1));
}

#[test]
fn single_dash_go_flags_are_accepted() {
    let port = free_port();
    let p = InProcess::start(&["serve-hostname", &format!("-port={port}"), "-http=false", "-tcp"]);
    wait_tcp(port);
    assert_eq!(p.exit_code(Duration::from_millis(100)), None);
}
