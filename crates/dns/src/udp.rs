//! UDP: several sockets on one address (SO_REUSEPORT, one per core, so the kernel
//! spreads clients over them), each served by a thread of its own that answers from
//! the zone or the cache inline; only upstream questions go to the async runtime.

use crate::forward::Transport;
use crate::resolve::{limit, Dns, Handled};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        let u: UdpSocket = s.into();
        at = u.local_addr()?;
        out.push(u);
    }
    Ok(out)
}

/// Serves `sock` on a new thread until `stop` is set.
pub fn spawn(sock: UdpSocket, dns: Arc<Dns>, rt: tokio::runtime::Handle, stop: Arc<AtomicBool>, in_flight: Arc<AtomicUsize>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = format!("dns-udp-{}", sock.local_addr()?);
    std::thread::Builder::new().name(name).spawn(move || serve(Arc::new(sock), dns, rt, stop, in_flight))
}

fn serve(sock: Arc<UdpSocket>, dns: Arc<Dns>, rt: tokio::runtime::Handle, stop: Arc<AtomicBool>, in_flight: Arc<AtomicUsize>) {
    let mut buf = vec![0u8; 65_535];
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) => continue,
            Err(e) => {
                // ICMP errors from earlier sends (ECONNREFUSED) and the like: keep serving.
                tracing::trace!(error = %e, "udp recv");
                continue;
            }
        };
        let started = Instant::now();
        match dns.handle_bytes(&buf[..n], Transport::Udp, started) {
            Handled::Reply(b) => {
                let _ = sock.send_to(&b, peer);
            }
            Handled::Drop => {}
            Handled::Upstream { req, cnames, q } => {
                if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_UPSTREAM_IN_FLIGHT {
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                    let m = crate::wire::response_to(&req, hickory_proto::op::ResponseCode::Refused);
                    let _ = sock.send_to(&dns.finish(&m, limit(&req, Transport::Udp), started), peer);
                    continue;
                }
                let (dns, sock, in_flight) = (dns.clone(), sock.clone(), in_flight.clone());
                rt.spawn(async move {
                    let m = dns.upstream(&req, cnames, q, Transport::Udp).await;
                    let _ = sock.send_to(&dns.finish(&m, limit(&req, Transport::Udp), started), peer);
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }
    }
}
