//! Listening sockets bound the way Go binds `:port`: one dual-stack IPv6
//! socket when the network namespace has IPv6, plain IPv4 otherwise (a pod
//! netns may have IPv6 disabled).

use anyhow::{bail, Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A flag's port as a u16, with Go's error text for anything else.
pub fn port(port: i64) -> Result<u16> {
    match u16::try_from(port) {
        Ok(p) => Ok(p),
        Err(_) => bail!("address {port}: invalid port"),
    }
}

pub fn tcp_any(port: u16) -> Result<tokio::net::TcpListener> {
    let sock = dual_stack_or_v4(Type::STREAM, Protocol::TCP, port).with_context(|| format!("listen tcp :{port}"))?;
    sock.listen(1024).with_context(|| format!("listen tcp :{port}"))?;
    Ok(tokio::net::TcpListener::from_std(sock.into())?)
}

pub fn tcp_v4_any(port: u16) -> Result<tokio::net::TcpListener> {
    let addr = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
    let sock = bound(Domain::IPV4, Type::STREAM, Protocol::TCP, addr).with_context(|| format!("listen tcp {addr}"))?;
    sock.listen(1024).with_context(|| format!("listen tcp {addr}"))?;
    Ok(tokio::net::TcpListener::from_std(sock.into())?)
}

pub fn udp_any(port: u16) -> Result<tokio::net::UdpSocket> {
    let sock = dual_stack_or_v4(Type::DGRAM, Protocol::UDP, port).with_context(|| format!("listen udp :{port}"))?;
    Ok(tokio::net::UdpSocket::from_std(sock.into())?)
}

pub fn udp_at(ip: IpAddr, port: u16) -> Result<tokio::net::UdpSocket> {
    let addr = SocketAddr::new(ip, port);
    let sock = bound(Domain::for_address(addr), Type::DGRAM, Protocol::UDP, addr).with_context(|| format!("listen udp {addr}"))?;
    Ok(tokio::net::UdpSocket::from_std(sock.into())?)
}

/// A socket on `[::]:port` that also takes IPv4, or on `0.0.0.0:port` where
/// the namespace has no IPv6. Also used for SCTP.
pub fn dual_stack_or_v4(ty: Type, proto: Protocol, port: u16) -> std::io::Result<Socket> {
    let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
    let attempt = Socket::new(Domain::IPV6, ty, Some(proto)).and_then(|s| {
        s.set_only_v6(false)?;
        prepare_and_bind(s, v6)
    });
    match attempt {
        Ok(s) => Ok(s),
        Err(e) if ipv6_unavailable(&e) => bound(Domain::IPV4, ty, proto, SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)),
        Err(e) => Err(e),
    }
}

fn ipv6_unavailable(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(nix::libc::EAFNOSUPPORT) | Some(nix::libc::EADDRNOTAVAIL))
}

fn bound(domain: Domain, ty: Type, proto: Protocol, addr: SocketAddr) -> std::io::Result<Socket> {
    prepare_and_bind(Socket::new(domain, ty, Some(proto))?, addr)
}

fn prepare_and_bind(s: Socket, addr: SocketAddr) -> std::io::Result<Socket> {
    // Go sets SO_REUSEADDR on listeners so a restarted server can rebind at once.
    if s.r#type()? == Type::STREAM {
        s.set_reuse_address(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}
