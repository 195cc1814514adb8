//! UDP: several sockets on one address (SO_REUSEPORT, one per core, so the kernel
//! spreads clients over them), each served by a thread of its own that answers from
//! the zone or the cache inline; only upstream questions go to the async runtime.
//!
//! A request's time is measured from the kernel's receive timestamp (SO_TIMESTAMPNS),
//! so time spent queued in the stack and the socket under load counts, to its reply
//! being sent; the time in the server's own hands (read to sent) is measured apart.

use crate::forward::Transport;
use crate::resolve::{limit, Dns, Handled};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage};
use prometheus_client::metrics::counter::Counter;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often an idle thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);
/// Questions waiting on upstreams at once, over all UDP threads; more get REFUSED.
pub const MAX_UPSTREAM_IN_FLIGHT: usize = 2048;

/// `n` sockets bound to `addr` (port 0: the first picks a port, the rest share it).
pub fn bind(addr: SocketAddr, n: usize) -> std::io::Result<Vec<UdpSocket>> {
    let mut out: Vec<UdpSocket> = Vec::with_capacity(n);
    let mut at = addr;
    for _ in 0..n.max(1) {
        let s = Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_port(true)?;
        if at.is_ipv6() {
            s.set_only_v6(true)?;
        }
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        s.bind(&at.into())?;
        s.set_read_timeout(Some(POLL))?;
        setsockopt(&s, sockopt::ReceiveTimestampns, &true).map_err(std::io::Error::from)?;
        let u: UdpSocket = s.into();
        at = u.local_addr()?;
        out.push(u);
    }
    Ok(out)
}

/// Serves `sock` (the `index`th on its address) on a new thread until `stop` is set.
pub fn spawn(sock: UdpSocket, index: usize, dns: Arc<Dns>, rt: tokio::runtime::Handle, stop: Arc<AtomicBool>, in_flight: Arc<AtomicUsize>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let at = sock.local_addr()?;
    let received = dns.metrics.udp_socket(&format!("{at}#{index}"));
    std::thread::Builder::new().name(format!("dns-udp-{at}#{index}")).spawn(move || serve(Arc::new(sock), received, dns, rt, stop, in_flight))
}

/// When a datagram reached the kernel, and when it was read.
#[derive(Clone, Copy)]
struct Arrival {
    received: Instant,
    read: Instant,
}

/// One datagram: its length, sender and arrival.
fn receive(sock: &UdpSocket, buf: &mut [u8], cmsg: &mut [u8]) -> std::io::Result<(usize, SocketAddr, Arrival)> {
    let mut iov = [IoSliceMut::new(buf)];
    let m = recvmsg::<SockaddrStorage>(sock.as_raw_fd(), &mut iov, Some(cmsg), MsgFlags::empty()).map_err(std::io::Error::from)?;
    let peer = m.address.and_then(|a| a.as_sockaddr_in().map(|v4| SocketAddr::V4((*v4).into())).or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))));
    let peer = peer.ok_or_else(|| std::io::Error::other("datagram without a source address"))?;
    let now = Instant::now();
    // The kernel stamps with the real-time clock; the wait since is moved onto the monotonic one.
    let stamped = m.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
        ControlMessageOwned::ScmTimestampns(ts) => Some(Duration::from(ts)),
        _ => None,
    });
    let waited = stamped.and_then(|t| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok()?.checked_sub(t)).unwrap_or_default();
    Ok((m.bytes, peer, Arrival { received: now.checked_sub(waited).unwrap_or(now), read: now }))
}

fn serve(sock: Arc<UdpSocket>, received: Counter, dns: Arc<Dns>, rt: tokio::runtime::Handle, stop: Arc<AtomicBool>, in_flight: Arc<AtomicUsize>) {
    let mut buf = vec![0u8; 65_535];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let reply = |sock: &UdpSocket, dns: &Dns, b: &[u8], peer: SocketAddr, at: Arrival| {
        let _ = sock.send_to(b, peer);
        dns.metrics.answered(at.received, at.read);
    };
    while !stop.load(Ordering::Relaxed) {
        let (n, peer, at) = match receive(&sock, &mut buf, &mut cmsg) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) => continue,
            Err(e) => {
                // ICMP errors from earlier sends (ECONNREFUSED) and the like: keep serving.
                tracing::trace!(error = %e, "udp recv");
                continue;
            }
        };
        received.inc();
        match dns.handle_bytes(&buf[..n], Transport::Udp, at.received) {
            Handled::Reply(b) => reply(&sock, &dns, &b, peer, at),
            Handled::Drop => {}
            Handled::Upstream { req, cnames, q } => {
                if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_UPSTREAM_IN_FLIGHT {
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                    let m = crate::wire::response_to(&req, hickory_proto::op::ResponseCode::Refused);
                    reply(&sock, &dns, &dns.finish(&m, limit(&req, Transport::Udp)), peer, at);
                    continue;
                }
                let (dns, sock, in_flight) = (dns.clone(), sock.clone(), in_flight.clone());
                rt.spawn(async move {
                    let m = dns.upstream(&req, cnames, q, Transport::Udp).await;
                    reply(&sock, &dns, &dns.finish(&m, limit(&req, Transport::Udp)), peer, at);
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }
    }
}
