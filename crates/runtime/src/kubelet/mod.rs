//! The kubelet's HTTPS endpoint, local mode's counterpart of the kubelet server on
//! port 10250: `containerLogs`, `exec`, `attach` and `portForward`, which the API
//! server's `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward` proxy to. It listens on the node's InternalIP inside the node's network
//! namespace, serves a certificate from the cluster CA, and only answers clients with
//! a certificate from that CA that names the API server (or a cluster admin).

mod attach;
mod exec;
mod logs;
mod portforward;
mod pty;
pub mod remotecommand;
mod spdy;
mod tls;
mod upgrade;

use crate::node::NodeConfig;
use crate::pod_index::PodIndex;
use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The kubelet's default port.
pub const DEFAULT_PORT: u16 = 10250;

/// What the endpoint serves with: its port and TLS material, PEM.
#[derive(Clone, Debug)]
pub struct KubeletServing {
    pub port: u16,
    /// The cluster CA, which client certificates must chain to.
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub type Body = BoxBody<Bytes, Infallible>;

pub(crate) fn text(code: StatusCode, msg: impl Into<String>) -> Response<Body> {
    Response::builder().status(code).header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8").body(Full::new(Bytes::from(msg.into())).boxed()).expect("valid response")
}

/// What handlers share.
pub(crate) struct Kubelet {
    pub cfg: NodeConfig,
    pub pods: PodIndex,
}

impl Kubelet {
    /// The pod's directory on this node.
    pub fn pod_dir(&self, pod: &k8s_openapi::api::core::v1::Pod) -> std::path::PathBuf {
        self.cfg.pods_dir().join(pod.metadata.uid.as_deref().unwrap_or_default())
    }
}

/// Binds the endpoint on the node's primary address inside the node's namespace.
pub fn bind(cfg: &NodeConfig, serving: &KubeletServing) -> Result<tokio::net::TcpListener> {
    let ip: IpAddr = cfg.addresses.first().context("the node has no address to serve the kubelet endpoint on")?.parse().context("the node's address is not an IP")?;
    let addr = SocketAddr::new(ip, serving.port);
    let bind = || std::net::TcpListener::bind(addr);
    let listener = match &cfg.netns {
        Some(path) => {
            let ns = weft_kernel::Netns::open(path)?;
            weft_kernel::run_in(&ns, bind)?
        }
        None => bind(),
    }
    .with_context(|| format!("binding the kubelet endpoint of node {} to {addr}", cfg.name))?;
    listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(listener)?)
}

/// Serves until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, serving: KubeletServing, cfg: NodeConfig, pods: PodIndex) -> Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(&serving)?));
    let kubelet = Arc::new(Kubelet { cfg, pods });
    tracing::info!(node = %kubelet.cfg.name, addr = %listener.local_addr()?, "kubelet endpoint serving");
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%e, "kubelet endpoint: accepting a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let kubelet = kubelet.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => return tracing::debug!(%peer, %e, "kubelet endpoint: TLS handshake failed"),
            };
            let user = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(tls::user_of);
            let svc = service_fn(move |req| {
                let kubelet = kubelet.clone();
                let user = user.clone();
                async move { Ok::<_, Infallible>(route(&kubelet, req, user.as_ref()).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades().await {
                tracing::debug!(%peer, %e, "kubelet endpoint: connection ended");
            }
        });
    }
}

async fn route(k: &Kubelet, req: Request<Incoming>, user: Option<&tls::User>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segs: Vec<String> = path.trim_start_matches('/').split('/').map(percent_decode).collect();
    let verb = if req.method() == http::Method::GET { "get" } else { "create" };
    let subresource = match segs.first().map(String::as_str) {
        Some("containerLogs") => "log",
        Some("healthz") => "healthz",
        _ => "proxy",
    };
    if let Err(resp) = tls::authorize(user, verb, subresource) {
        return resp;
    }
    let started = std::time::Instant::now();
    let resp = match (req.method().clone(), segs.iter().map(String::as_str).collect::<Vec<_>>().as_slice()) {
        (http::Method::GET, ["healthz"]) => text(StatusCode::OK, "ok"),
        (http::Method::GET, ["containerLogs", ns, pod, container]) => logs::handle(k, ns, pod, container, req.uri().query()).await,
        (http::Method::GET | http::Method::POST, ["exec", ns, pod, container]) => exec::handle(k, ns, pod, container, req).await,
        (http::Method::GET | http::Method::POST, ["attach", ns, pod, container]) => attach::handle(k, ns, pod, container, req).await,
        (http::Method::GET | http::Method::POST, ["portForward", ns, pod]) => portforward::handle(k, ns, pod, req).await,
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    };
    tracing::debug!(node = %k.cfg.name, %path, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "kubelet request");
    resp
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The query as (name, value) pairs, repeated names kept (`command=sh&command=-c`).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect()
}
