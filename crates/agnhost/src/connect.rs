//! `agnhost connect host:port`: one connection attempt whose outcome the e2e
//! tests read from the exit code (0 success, 1 failure, as upstream) and the
//! stderr prefix: UNKNOWN, TIMEOUT, DNS, REFUSED or OTHER.

use crate::go_duration::GoDuration;
use crate::go_errors::{errno_text, is_timeout, op_error};
use crate::sctp;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// host:port to connect to
    dest: String,
    /// Maximum time before returning an error
    #[arg(long, default_value = "0s", allow_hyphen_values = true)]
    timeout: GoDuration,
    /// The protocol to use to perform the connection, can be tcp, udp or sctp
    #[arg(long, default_value = "tcp", allow_hyphen_values = true)]
    protocol: String,
    /// The UDP payload send to the server
    #[arg(long, default_value = "hostname", allow_hyphen_values = true)]
    udp_data: String,
    /// The SCTP payload send to the server
    #[arg(long, default_value = "hostname", allow_hyphen_values = true)]
    sctp_data: String,
}

/// A failed attempt: the exact stderr line (without newline).
struct Failure(String);

pub fn run(args: Args) -> i32 {
    let timeout = (!args.timeout.is_zero()).then(|| args.timeout.to_std());
    let result = match args.protocol.as_str() {
        "" | "tcp" => connect_tcp(&args.dest, timeout),
        "udp" => connect_udp(&args.dest, timeout, &args.udp_data),
        "sctp" => connect_sctp(&args.dest, timeout, &args.sctp_data),
        other => {
            // Upstream's Fprint puts the protocol after the newline.
            eprint!("Unsupported protocol\n{other}");
            return 1;
        }
    };
    match result {
        Ok(()) => 0,
        Err(Failure(line)) => {
            eprintln!("{line}");
            1
        }
    }
}

/// Go's net.SplitHostPort.
fn split_host_port(dest: &str) -> Result<(String, String), String> {
    let err = |why: &str| format!("address {dest}: {why}");
    if let Some(rest) = dest.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| err("missing ']' in address"))?;
        let port = after.strip_prefix(':').ok_or_else(|| err("missing port in address"))?;
        return Ok((host.to_string(), port.to_string()));
    }
    let (host, port) = dest.rsplit_once(':').ok_or_else(|| err("missing port in address"))?;
    if host.contains(':') {
        return Err(err("too many colons in address"));
    }
    if host.contains('[') || host.contains(']') || port.contains('[') || port.contains(']') {
        return Err(err("unexpected '[' in address"));
    }
    Ok((host.to_string(), port.to_string()))
}

/// Resolves like Go's Resolve*Addr: the first IPv4 answer if any.
fn resolve(dest: &str) -> Result<Vec<SocketAddr>, Failure> {
    let (host, port) = split_host_port(dest).map_err(|e| Failure(format!("DNS: {e}")))?;
    let port: u16 = if port.is_empty() { 0 } else { port.parse().map_err(|_| Failure(format!("DNS: lookup tcp/{port}: unknown port")))? };
    let host = if host.is_empty() { "127.0.0.1".to_string() } else { host };
    let mut addrs: Vec<SocketAddr> = (host.as_str(), port).to_socket_addrs().map_err(|e| Failure(format!("DNS: lookup {host}: {}", dns_text(&e))))?.collect();
    if addrs.is_empty() {
        return Err(Failure(format!("DNS: lookup {host}: no such host")));
    }
    addrs.sort_by_key(|a| !a.is_ipv4());
    Ok(addrs)
}

fn dns_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    if s.contains("Name or service not known") || s.contains("No address associated") {
        "no such host".into()
    } else {
        s
    }
}

fn connect_tcp(dest: &str, timeout: Option<Duration>) -> Result<(), Failure> {
    split_host_port(dest).map_err(|e| Failure(format!("UNKNOWN: {e}")))?;
    let addrs = resolve(dest)?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last = None;
    for addr in &addrs {
        let attempt = match deadline {
            None => TcpStream::connect(addr),
            Some(d) => match d.checked_duration_since(Instant::now()).filter(|r| !r.is_zero()) {
                Some(remaining) => TcpStream::connect_timeout(addr, remaining),
                None => Err(std::io::ErrorKind::TimedOut.into()),
            },
        };
        match attempt {
            Ok(_) => return Ok(()),
            Err(e) => last = Some((*addr, e)),
        }
    }
    let Some((addr, e)) = last else { return Ok(()) };
    if is_timeout(&e) {
        return Err(Failure("TIMEOUT".into()));
    }
    if e.raw_os_error() == Some(nix::libc::ECONNREFUSED) {
        return Err(Failure("REFUSED".into()));
    }
    Err(Failure(format!("OTHER: {}", op_error("dial", "tcp", None, addr, "connect", &e))))
}

fn connect_udp(dest: &str, timeout: Option<Duration>, data: &str) -> Result<(), Failure> {
    let addr = resolve(dest)?[0];
    let local: SocketAddr = if addr.is_ipv4() { (std::net::Ipv4Addr::UNSPECIFIED, 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let other = |syscall: &str, e: &std::io::Error| Failure(format!("OTHER: {}", op_error("dial", "udp", None, addr, syscall, e)));
    let sock = UdpSocket::bind(local).map_err(|e| other("socket", &e))?;
    sock.connect(addr).map_err(|e| other("connect", &e))?;
    let me = sock.local_addr().ok();
    if let Some(t) = timeout {
        sock.set_read_timeout(Some(t)).and_then(|_| sock.set_write_timeout(Some(t))).map_err(|e| Failure(format!("OTHER: {e}")))?;
    }
    let udp_failure = |op: &str, e: &std::io::Error| {
        let msg = op_error(op, "udp", me, addr, op, e);
        if is_timeout(e) {
            Failure(format!("TIMEOUT: {msg}"))
        } else if msg.contains("connection refused") {
            Failure(format!("REFUSED: {msg}"))
        } else {
            Failure(format!("UNKNOWN: {msg}"))
        }
    };
    sock.send(format!("{data}\n").as_bytes()).map_err(|e| udp_failure("write", &e))?;
    let mut buf = [0u8; 1024];
    let n = sock.recv(&mut buf).map_err(|e| udp_failure("read", &e))?;
    if n == 0 {
        return Err(Failure("OTHER: No data received from the server. Cannot guarantee the server received the request.".into()));
    }
    Ok(())
}

fn connect_sctp(dest: &str, timeout: Option<Duration>, data: &str) -> Result<(), Failure> {
    let addr = resolve(dest)?[0];
    let deadline = timeout.map(|t| Instant::now() + t);
    let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    let timed_out = |e: &std::io::Error| is_timeout(e) && deadline.is_some();
    let other = |e: std::io::Error| Failure(format!("OTHER: {}", errno_text(&e)));
    if !sctp::kernel_supports_sctp() {
        // The same packets, sent and read in user space (see sctp_raw).
        let limit = timeout.filter(|t| !t.is_zero()).unwrap_or(Duration::from_secs(3600));
        return match crate::sctp_raw::exchange(addr, format!("{data}\n").as_bytes(), limit) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(Failure("TIMEOUT".into())),
            Err(e) => Err(other(e)),
        };
    }
    let mut conn = match sctp::connect(addr, remaining()) {
        Ok(c) => c,
        Err(e) if timed_out(&e) => return Err(Failure("TIMEOUT".into())),
        Err(e) => return Err(other(e)),
    };
    conn.set_write_timeout(remaining()).map_err(other)?;
    conn.set_read_timeout(remaining()).map_err(other)?;
    let mut buf = [0u8; 1024];
    let exchange = conn.write_all(format!("{data}\n").as_bytes()).and_then(|_| conn.read(&mut buf));
    match exchange {
        Ok(_) => Ok(()),
        Err(e) if timed_out(&e) => Err(Failure("TIMEOUT".into())),
        Err(e) => Err(other(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn host_port_splits_like_go() {
        assert_eq!(split_host_port("1.2.3.4:80").unwrap(), ("1.2.3.4".into(), "80".into()));
        assert_eq!(split_host_port("[::1]:80").unwrap(), ("::1".into(), "80".into()));
        assert_eq!(split_host_port("foo").unwrap_err(), "address foo: missing port in address");
        assert_eq!(split_host_port("::1:80").unwrap_err(), "address ::1:80: too many colons in address");
    }
}
