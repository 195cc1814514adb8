//! `healthCheckNodePort` servers, as kube-proxy's: for each externalTrafficPolicy Local
//! LoadBalancer service, an HTTP server in the node's netns that answers 200 with the
//! count of local endpoints when this node has some, 503 otherwise, so a load balancer
//! (or `weft up`'s host-side routes) sends traffic only to nodes that can serve it.

use crate::http_once;
use std::collections::BTreeMap;
use std::sync::Arc;
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
    /// Ports that could not be bound yet (retried).
    failed: BTreeMap<u16, Health>,
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
    http_once::response(status, "application/json", &body)
}

impl HealthServers {
    pub fn new(ns: Netns, node: String) -> HealthServers {
        HealthServers { ns: Arc::new(ns), node, servers: BTreeMap::new(), failed: BTreeMap::new() }
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
        // A port no longer wanted (the service went, or back to externalTrafficPolicy
        // Cluster) is closed before this returns, so it is free to bind again at once.
        let gone: Vec<u16> = self.servers.keys().filter(|p| !want.contains_key(p)).copied().collect();
        for port in gone {
            if let Some(s) = self.servers.remove(&port) {
                s.task.abort();
                let _ = s.task.await;
            }
        }
        self.failed.clear();
        for (port, h) in want {
            if let Some(s) = self.servers.get(&port) {
                s.health.send_if_modified(|cur| {
                    let changed = *cur != h;
                    *cur = h.clone();
                    changed
                });
                continue;
            }
            let listener = match http_once::listen(&self.ns, std::net::SocketAddr::from(([0, 0, 0, 0], port))) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(node = %self.node, port, service = %format!("{}/{}", h.namespace, h.name), %e, "serving healthCheckNodePort; retrying");
                    self.failed.insert(port, h);
                    continue;
                }
            };
            let (tx, rx) = watch::channel(h);
            let task = tokio::spawn(http_once::serve(listener, move |_| response(&rx.borrow())));
            self.servers.insert(port, Server { health: tx, task });
        }
    }
}

impl HealthServers {
    /// Some health check port could not be bound: call [`HealthServers::update`] again.
    pub fn pending(&self) -> bool {
        !self.failed.is_empty()
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
