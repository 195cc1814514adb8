//! Calling a node's kubelet endpoint, as kube-apiserver does for pods/log and
//! pods/exec: the node's InternalIP and `daemonEndpoints.kubeletEndpoint.Port`, TLS
//! verified against the cluster CA, the API server's kubelet client certificate.

use crate::pki::Issued;
use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use weft_api::ApiError;

/// The kubelet's port when the node reports none.
pub const DEFAULT_PORT: u16 = 10250;

const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct KubeletClient {
    tls: tokio_rustls::TlsConnector,
}

impl KubeletClient {
    pub fn new(cert: &Issued) -> Result<KubeletClient> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut cert.ca_pem.as_bytes()) {
            roots.add(c?)?;
        }
        let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert.cert_pem.as_bytes()).collect::<Result<_, _>>()?;
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut cert.key_pem.as_bytes())?.context("no key in the kubelet client credential")?;
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?.with_root_certificates(roots).with_client_auth_cert(chain, key)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient { tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)) })
    }

    /// Sends `req` (path and query only in its URI) to the kubelet at `addr`, over a
    /// connection of its own that supports an upgrade.
    pub async fn send(&self, addr: SocketAddr, mut req: Request<Empty<Bytes>>) -> Result<Response<Incoming>, String> {
        let url = format!("https://{addr}{}", req.uri());
        let method = req_method_name(&req);
        let fail = |e: &dyn std::fmt::Display| format!("{method} {url:?}: {e}");
        let tcp = match tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return Err(format!("error dialing backend: dial tcp {addr}: {e}")),
            Err(_) => return Err(format!("error dialing backend: dial tcp {addr}: i/o timeout")),
        };
        let _ = tcp.set_nodelay(true);
        let tls = self.tls.connect(ServerName::IpAddress(addr.ip().into()), tcp).await.map_err(|e| format!("error dialing backend: tls: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| fail(&e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(%e, "kubelet connection ended");
            }
        });
        req.headers_mut().insert(http::header::HOST, addr.to_string().parse().expect("an address is a valid header"));
        sender.send_request(req).await.map_err(|e| fail(&e))
    }
}

fn req_method_name<B>(req: &Request<B>) -> String {
    let m = req.method().as_str();
    let mut s = m[..1].to_string();
    s.push_str(&m[1..].to_ascii_lowercase());
    s
}

/// Where a node's kubelet listens: its first InternalIP and reported port.
pub fn address_of(node: &Value) -> Result<SocketAddr, ApiError> {
    let name = node["metadata"]["name"].as_str().unwrap_or_default();
    let addresses = node["status"]["addresses"].as_array().cloned().unwrap_or_default();
    let ip = addresses
        .iter()
        .filter(|a| a["type"] == "InternalIP")
        .find_map(|a| a["address"].as_str()?.parse::<IpAddr>().ok())
        .ok_or_else(|| ApiError::internal(format!("node {name:?} has no InternalIP in status.addresses to reach its kubelet on; known addresses: {}", Value::Array(addresses))))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64().filter(|p| *p > 0 && *p <= u16::MAX as u64).map(|p| p as u16).unwrap_or(DEFAULT_PORT);
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_kubelet_is_found_at_the_internal_ip_and_reported_port() {
        let n = json!({"metadata": {"name": "node-1"}, "status": {"addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "10.99.0.2"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
        assert_eq!(address_of(&n).unwrap(), "10.99.0.2:10250".parse().unwrap());
        let zero = json!({"metadata": {"name": "node-1"}, "status": {"addresses": [{"type": "InternalIP", "address": "10.99.0.3"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}}});
        assert_eq!(address_of(&zero).unwrap().port(), DEFAULT_PORT);
        let none = json!({"metadata": {"name": "node-1"}, "status": {"addresses": [{"type": "Hostname", "address": "node-1"}]}});
        assert!(address_of(&none).unwrap_err().message.contains("no InternalIP"));
    }
}
