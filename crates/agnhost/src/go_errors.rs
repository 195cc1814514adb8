//! Error text as Go's net package prints it (`read udp 127.0.0.1:5->127.0.0.1:6:
//! read: connection refused`), because e2e tests match on it.

use std::io;
use std::net::SocketAddr;

/// True for the errors Go reports as a timeout (a deadline, or the kernel's
/// EAGAIN/ETIMEDOUT).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// The errno's text as Go's syscall.Errno prints it: strerror, lowercased.
pub fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => lower_first(nix::errno::Errno::from_raw(n).desc()),
        None => e.to_string(),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Go's *net.OpError text: `{op} {net} [{local}->]{remote}: {syscall}: {errno}`,
/// or `...: i/o timeout` when a deadline passed.
pub fn op_error(op: &str, net: &str, local: Option<SocketAddr>, remote: SocketAddr, syscall: &str, e: &io::Error) -> String {
    let addrs = match local {
        Some(l) => format!("{}->{}", canonical(l), canonical(remote)),
        None => canonical(remote).to_string(),
    };
    let cause = if is_timeout(e) && e.raw_os_error().is_none_or(|n| n != nix::libc::ETIMEDOUT) {
        "i/o timeout".to_string()
    } else if e.raw_os_error().is_some() {
        format!("{syscall}: {}", errno_text(e))
    } else {
        e.to_string()
    };
    format!("{op} {net} {addrs}: {cause}")
}

/// IPv4 peers of a dual-stack socket show up as `::ffff:a.b.c.d`; Go prints
/// them as plain IPv4, and so does agnhost.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_errors_read_like_go() {
        let l: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let r: SocketAddr = "[::ffff:127.0.0.1]:6".parse().unwrap();
        let refused = io::Error::from_raw_os_error(nix::libc::ECONNREFUSED);
        assert_eq!(op_error("read", "udp", Some(l), r, "read", &refused), "read udp 127.0.0.1:5->127.0.0.1:6: read: connection refused");
        let timeout = io::Error::from(io::ErrorKind::WouldBlock);
        assert_eq!(op_error("read", "udp", Some(l), r, "read", &timeout), "read udp 127.0.0.1:5->127.0.0.1:6: i/o timeout");
        let eagain = io::Error::from_raw_os_error(nix::libc::EAGAIN);
        assert_eq!(op_error("read", "udp", None, r, "read", &eagain), "read udp 127.0.0.1:6: i/o timeout");
    }
}
