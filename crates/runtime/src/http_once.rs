//! The smallest HTTP server the node agent needs for its plain-text endpoints (service
//! health checks, proxy metrics): read one request head, answer, close.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers every connection on `listener` with `respond(request head)`, then closes it.
pub async fn serve(listener: tokio::net::TcpListener, respond: impl Fn(&str) -> String + Send + Sync + 'static) {
    let respond = Arc::new(respond);
    loop {
        let Ok((mut s, _)) = listener.accept().await else { continue };
        let respond = respond.clone();
        tokio::spawn(async move {
            // Read the request head (bounded), then answer and close.
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while n < buf.len() {
                    match s.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            let head = String::from_utf8_lossy(&buf[..n]);
            let _ = s.write_all(respond(&head).as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}

/// A complete HTTP/1.1 response that closes the connection.
pub fn response(status: &str, content_type: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

/// A listener on `addr` inside `ns` (the node's netns), for the runtime in this one.
pub fn listen(ns: &weft_kernel::Netns, addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let l = weft_kernel::run_in(ns, || std::net::TcpListener::bind(addr))??;
    l.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(l)?)
}
