//! Listeners: for each address, UDP sockets (one per core) with their threads, a TCP
//! listener and optionally the admin HTTP port, all opened inside a given network
//! namespace (a node's), then served from this process.

use crate::resolve::Dns;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Listen {
    /// UDP and TCP; port 0 picks a free port (the same for both).
    pub dns: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// The network namespace to open the sockets in (`None`: the caller's).
    pub netns: Option<PathBuf>,
    pub listen: Vec<Listen>,
    /// UDP sockets per address; 0 means one per core.
    pub udp_sockets: usize,
}

/// Serving; stops when dropped.
pub struct Running {
    pub dns_addrs: Vec<SocketAddr>,
    pub http_addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Bound {
    udp: Vec<std::net::UdpSocket>,
    tcp: std::net::TcpListener,
    http: Option<std::net::TcpListener>,
}

fn bind(l: &Listen, n: usize) -> std::io::Result<Bound> {
    // Port 0: UDP picks, TCP follows; retried if TCP's port is taken.
    let mut last = None;
    for _ in 0..16 {
        let udp = crate::udp::bind(l.dns, n)?;
        let at = udp[0].local_addr()?;
        match crate::tcp::bind(at) {
            Ok(tcp) => {
                let http = l.http.map(crate::tcp::bind).transpose()?;
                return Ok(Bound { udp, tcp, http });
            }
            Err(e) if l.dns.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// Opens every listener and starts serving. Needs a tokio runtime (the caller's).
pub fn start(dns: Arc<Dns>, spec: &ServerSpec) -> anyhow::Result<Running> {
    let n = if spec.udp_sockets == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { spec.udp_sockets };
    let open = || spec.listen.iter().map(|l| bind(l, n).with_context(|| format!("listening on {} for DNS (and {:?} for metrics)", l.dns, l.http))).collect::<anyhow::Result<Vec<_>>>();
    let bound = match &spec.netns {
        None => open()?,
        Some(p) => {
            let ns = weft_kernel::Netns::open(p).with_context(|| format!("opening netns {}", p.display()))?;
            weft_kernel::run_in(&ns, open)??
        }
    };
    let rt = tokio::runtime::Handle::current();
    let stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut r = Running { dns_addrs: vec![], http_addrs: vec![], stop: stop.clone(), threads: vec![], tasks: vec![] };
    for b in bound {
        r.dns_addrs.push(b.tcp.local_addr()?);
        for (i, s) in b.udp.into_iter().enumerate() {
            r.threads.push(crate::udp::spawn(s, i, dns.clone(), rt.clone(), stop.clone(), in_flight.clone())?);
        }
        let tcp = tokio::net::TcpListener::from_std(b.tcp)?;
        r.tasks.push(tokio::spawn(crate::tcp::serve(tcp, dns.clone())));
        if let Some(h) = b.http {
            r.http_addrs.push(h.local_addr()?);
            let h = tokio::net::TcpListener::from_std(h)?;
            r.tasks.push(tokio::spawn(crate::http::serve(h, dns.clone())));
        }
    }
    tracing::info!(dns = ?r.dns_addrs, http = ?r.http_addrs, udp_sockets_per_address = n, "DNS server listening");
    Ok(r)
}

impl Running {
    /// Stops every listener and waits for the UDP threads (bounded by their poll).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks.drain(..) {
            t.abort();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}
