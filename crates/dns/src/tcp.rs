//! TCP (RFC 7766): length-prefixed messages, several per connection, idle connections
//! closed, a bound on open connections.

use crate::forward::Transport;
use crate::resolve::Dns;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

const IDLE: Duration = Duration::from_secs(10);
pub const MAX_CONNECTIONS: usize = 1024;

/// A listening socket with SO_REUSEADDR (bound where the caller runs: its netns).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

pub async fn serve(listener: TcpListener, dns: Arc<Dns>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((conn, _)) = listener.accept().await else { continue };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(conn);
            continue;
        };
        let dns = dns.clone();
        tokio::spawn(async move {
            let _ = connection(conn, &dns).await;
            drop(permit);
        });
    }
}

async fn connection(mut conn: TcpStream, dns: &Dns) -> std::io::Result<()> {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let len = match tokio::time::timeout(IDLE, conn.read_u16()).await {
            Ok(Ok(n)) => n as usize,
            _ => return Ok(()),
        };
        buf.resize(len, 0);
        match tokio::time::timeout(IDLE, conn.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let started = std::time::Instant::now();
        let Some(resp) = dns.respond(&buf, Transport::Tcp).await else { return Ok(()) };
        let mut out = Vec::with_capacity(resp.len() + 2);
        out.extend_from_slice(&(resp.len() as u16).to_be_bytes());
        out.extend_from_slice(&resp);
        conn.write_all(&out).await?;
        dns.metrics.answered(started, started);
    }
}
