//! `healthCheckNodePort` servers, as kube-proxy's: for each externalTrafficPolicy Local
//! LoadBalancer service, an HTTP server in the node's netns that answers 200 with the
//! count of local endpoints when this node has some, 503 otherwise, so a load balancer
//! (or `weft up`'s host-side routes) sends traffic only to nodes that can serve it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use weft_kernel::Netns;
use weft_proxy::ProxyState;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Health {
    namespace: String,
    name: String,
    local_endpoints: usize,
}

struct Server {
    health: watch::Sender<Health>,
    task: tokio::task::JoinHandle<()>,
}

pub struct HealthServers {
    ns: Arc<Netns>,
    node: String,
    servers: BTreeMap<u16, Server>,
}

/// The body and status kube-proxy's service health server answers with.
fn response(h: &Health) -> String {
    let body = serde_json::json!({
        "service": {"namespace": h.namespace, "name": h.name},
        "localEndpoints": h.local_endpoints,
        "serviceProxyHealthy": true,
    })
    .to_string();
    let status = if h.local_endpoints > 0 { "200 OK" } else { "503 Service Unavailable" };
    format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

async fn serve(listener: tokio::net::TcpListener, health: watch::Receiver<Health>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else { continue };
        let h = health.borrow().clone();
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
            let _ = s.write_all(response(&h).as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}

impl HealthServers {
    pub fn new(ns: Netns, node: String) -> HealthServers {
        HealthServers { ns: Arc::new(ns), node, servers: BTreeMap::new() }
    }

    /// Serves exactly the health check ports `state` asks for, with its current counts.
    pub async fn update(&mut self, state: &ProxyState) {
        let mut want: BTreeMap<u16, Health> = BTreeMap::new();
        for (_, c) in state.compiled() {
            if let Some((port, local)) = c.rules.health_check {
                let h = want.entry(port).or_insert_with(|| Health { namespace: c.port.name.namespace.clone(), name: c.port.name.name.clone(), local_endpoints: 0 });
                h.local_endpoints = h.local_endpoints.max(local);
            }
        }
        self.servers.retain(|port, s| {
            let keep = want.contains_key(port);
            if !keep {
                s.task.abort();
            }
            keep
        });
        for (port, h) in want {
            if let Some(s) = self.servers.get(&port) {
                s.health.send_if_modified(|cur| {
                    let changed = *cur != h;
                    *cur = h.clone();
                    changed
                });
                continue;
            }
            let addr = std::net::SocketAddr::from(([0, 0, 0, 0], port));
            let bound = weft_kernel::run_in(&self.ns, || std::net::TcpListener::bind(addr));
            let listener = match bound.map_err(anyhow::Error::from).and_then(|r| Ok(r?)).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(tokio::net::TcpListener::from_std(l)?)
            }) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(node = %self.node, port, service = %format!("{}/{}", h.namespace, h.name), %e, "serving healthCheckNodePort");
                    continue;
                }
            };
            let (tx, rx) = watch::channel(h);
            self.servers.insert(port, Server { health: tx, task: tokio::spawn(serve(listener, rx)) });
        }
    }
}

impl Drop for HealthServers {
    fn drop(&mut self) {
        for s in self.servers.values() {
            s.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_endpoints_answer_200_and_none_503_with_kube_proxys_body() {
        let h = Health { namespace: "ns".into(), name: "lb".into(), local_endpoints: 2 };
        let r = response(&h);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.ends_with(r#"{"service":{"namespace":"ns","name":"lb"},"localEndpoints":2,"serviceProxyHealthy":true}"#), "{r}");
        assert!(response(&Health { local_endpoints: 0, ..h }).starts_with("HTTP/1.1 503 "));
    }
}
