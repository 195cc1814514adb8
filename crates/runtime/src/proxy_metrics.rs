//! The service proxy's Prometheus metrics over HTTP, where kube-proxy serves its own:
//! `http://<node InternalIP>:10249/metrics`, inside the node's netns (with `weft up`, one
//! per node, reachable from the host at each node's address).

use crate::http_once;
use crate::node::NodeConfig;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use weft_kernel::Netns;
use weft_proxy::metrics::ProxyMetrics;

/// kube-proxy's metrics port.
pub const PORT: u16 = 10249;

fn answer(head: &str, metrics: &ProxyMetrics) -> String {
    match head.split_whitespace().nth(1) {
        Some("/metrics") => http_once::response("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", &metrics.encode()),
        _ => http_once::response("404 Not Found", "text/plain", "not found: try /metrics\n"),
    }
}

/// Serves `metrics` until the future is dropped. A port that cannot be bound is logged
/// and left alone: the proxy keeps working without its metrics.
pub async fn serve(cfg: NodeConfig, metrics: Arc<ProxyMetrics>) -> anyhow::Result<()> {
    let ip: IpAddr = cfg.addresses.first().and_then(|a| a.parse().ok()).unwrap_or(Ipv4Addr::LOCALHOST.into());
    let addr = SocketAddr::new(ip, PORT);
    let bound = match &cfg.netns {
        Some(p) => Netns::open(p).map_err(anyhow::Error::from),
        None => Netns::current().map_err(anyhow::Error::from),
    }
    .and_then(|ns| http_once::listen(&ns, addr));
    match bound {
        Ok(listener) => http_once::serve(listener, move |head| answer(head, &metrics)).await,
        Err(e) => {
            tracing::warn!(node = %cfg.name, %addr, "serving the service proxy's metrics: {e:#}");
            futures::future::pending::<()>().await
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_served_at_slash_metrics_only() {
        let m = ProxyMetrics::new();
        let ok = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &m);
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.contains("weft_proxy_sync_proxy_rules_errors"), "{ok}");
        assert!(answer("GET / HTTP/1.1\r\n\r\n", &m).starts_with("HTTP/1.1 404 "));
    }
}
