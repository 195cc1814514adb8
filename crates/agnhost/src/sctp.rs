//! SCTP through raw one-to-one (SOCK_STREAM) sockets. Kernels without SCTP
//! (no `sctp` module) refuse the socket; callers get an error that says so,
//! and servers keep serving their other protocols.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// IPPROTO_SCTP from <netinet/in.h>.
pub const IPPROTO_SCTP: i32 = 132;

/// Whether this kernel can make SCTP sockets at all.
pub fn kernel_supports_sctp() -> bool {
    Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::from(IPPROTO_SCTP))).is_ok()
}

/// Turns the kernel's "protocol not supported" into an error naming the real
/// cause, which an e2e log reader would otherwise have to guess.
pub fn explain(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(nix::libc::EPROTONOSUPPORT) | Some(nix::libc::ESOCKTNOSUPPORT) => io::Error::new(
            io::ErrorKind::Unsupported,
            "socket: protocol not supported: this kernel has no SCTP support \
             (load the sctp module or use a kernel built with CONFIG_IP_SCTP)",
        ),
        _ => e,
    }
}

/// A listening SCTP socket on `:port`. A one-to-one SCTP socket accepts, reads
/// and writes through the same syscalls as TCP, so tokio's TCP types drive it.
pub fn listen_any(port: u16) -> io::Result<tokio::net::TcpListener> {
    let sock = crate::listen::dual_stack_or_v4(Type::STREAM, Protocol::from(IPPROTO_SCTP), port).map_err(explain)?;
    sock.listen(1024)?;
    tokio::net::TcpListener::from_std(sock.into())
}

/// A listening SCTP socket on `0.0.0.0:port` (porter binds IPv4 only).
pub fn listen_v4_any(port: u16) -> io::Result<tokio::net::TcpListener> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::from(IPPROTO_SCTP))).map_err(explain)?;
    sock.set_nonblocking(true)?;
    sock.bind(&SockAddr::from(SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port)))?;
    sock.listen(1024)?;
    tokio::net::TcpListener::from_std(sock.into())
}

/// A blocking SCTP association to `addr`, with an optional connect timeout.
pub fn connect(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<std::net::TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::from(IPPROTO_SCTP))).map_err(explain)?;
    match timeout {
        Some(t) if !t.is_zero() => sock.connect_timeout(&addr.into(), t)?,
        _ => sock.connect(&addr.into())?,
    }
    Ok(sock.into())
}
