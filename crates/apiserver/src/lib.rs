//! weft's embedded Kubernetes API server: the REST API over the embedded store, as
//! kube-apiserver serves it, for the resources a cluster network needs.

pub mod alloc;
pub mod api;
mod bootstrap;
mod crd;
mod discovery;
mod fields;
mod handlers;
pub mod http;
mod objects;
mod openapi;
mod pod_streams;
mod protobuf;
pub mod pki;
mod registry;
mod request;
mod server;
mod table;
mod tls;

pub use bootstrap::{dns_service_ip, kubernetes_service_ip};

use anyhow::{Context, Result};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub struct Config {
    pub state_dir: PathBuf,
    /// 0 picks a free port.
    pub port: u16,
    pub bind: IpAddr,
    /// The address the `kubernetes` Service's endpoints point to.
    pub advertise: IpAddr,
    pub service_cidrs: Vec<IpNet>,
    pub node_port_range: (u16, u16),
    pub bookmark_interval: Duration,
}

impl Config {
    pub fn new(state_dir: PathBuf) -> Config {
        Config {
            state_dir,
            port: 6443,
            bind: IpAddr::from([127, 0, 0, 1]),
            advertise: IpAddr::from([127, 0, 0, 1]),
            service_cidrs: vec!["10.96.0.0/16".parse().unwrap()],
            node_port_range: (30000, 32767),
            bookmark_interval: Duration::from_secs(60),
        }
    }
}

pub struct ApiServer {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub api: Arc<api::Api>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
    /// Stops accepting connections.
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Opens the store, prepares certificates and the kubeconfig, bootstraps the system
/// objects and starts serving. Returns once `/readyz` answers ok.
pub async fn start(cfg: Config) -> Result<ApiServer> {
    std::fs::create_dir_all(&cfg.state_dir).with_context(|| format!("creating the state dir {}", cfg.state_dir.display()))?;
    let store_path = cfg.state_dir.join("store.redb");
    let store = tokio::task::spawn_blocking(move || weft_store::Store::open(&store_path)).await?.context("opening the store (is another weft using this state dir?)")?;
    let mut ips: Vec<IpAddr> = vec![cfg.bind, cfg.advertise, IpAddr::from([127, 0, 0, 1])];
    for c in &cfg.service_cidrs {
        ips.push(kubernetes_service_ip(c));
    }
    ips.sort();
    ips.dedup();
    let names: Vec<String> = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"].iter().map(|s| s.to_string()).collect();
    let pki = pki::Pki::load_or_create(&cfg.state_dir.join("pki"), &ips, &names)?;
    let tls = tls::server_config(&pki)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(cfg.bind, cfg.port)).await.with_context(|| format!("binding the API to {}:{} (use --api-port to choose another)", cfg.bind, cfg.port))?;
    let addr = listener.local_addr()?;
    let mut allocator = alloc::ServiceAllocator::new(cfg.service_cidrs.clone(), cfg.node_port_range);
    for s in store.list("/core/services/").0 {
        allocator.observe(&s.value());
    }
    let api = Arc::new(api::Api {
        store,
        registry: registry::Registry::new(),
        services: tokio::sync::Mutex::new(allocator),
        settings: api::Settings { bookmark_interval: cfg.bookmark_interval, public_address: addr.to_string() },
        ready: false.into(),
        kubelet: Some(pod_streams::KubeletClient::new(&pki::kubelet_client(&cfg.state_dir.join("pki"))?).context("preparing the API server's kubelet client credential")?),
    });
    api.refresh_crds();
    bootstrap::run(&api, cfg.advertise, addr.port()).await?;
    let kubeconfig = cfg.state_dir.join("kubeconfig");
    let tmp = cfg.state_dir.join(".kubeconfig.tmp");
    std::fs::write(&tmp, pki.kubeconfig(&format!("https://{addr}")))?;
    std::fs::rename(&tmp, &kubeconfig)?;
    let task = tokio::spawn(server::serve(listener, tls, api.clone()));
    api.ready.store(true, Ordering::Release);
    Ok(ApiServer { addr, kubeconfig, api, task })
}
