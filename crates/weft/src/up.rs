//! `weft up`: the API server, the controllers and one agent per node, in one process.

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where weft keeps everything: the store, certificates, the kubeconfig.
    #[arg(long, env = "WEFT_STATE_DIR", default_value_os_t = crate::default_state_dir())]
    pub state_dir: PathBuf,
    /// Number of nodes.
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// The API server's port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    /// Service CIDRs (one per family, primary first).
    #[arg(long, value_delimiter = ',', default_value = "10.96.0.0/16")]
    pub service_cidr: Vec<ipnet::IpNet>,
    /// Pod CIDRs (one per family); each node gets a slice.
    #[arg(long, value_delimiter = ',', default_value = "10.244.0.0/16")]
    pub pod_cidr: Vec<ipnet::IpNet>,
    /// NodePort range, as `low-high`.
    #[arg(long, default_value = "30000-32767")]
    pub node_port_range: String,
    /// The underlay between nodes: the host side takes the first address, node N the
    /// (N+1)th.
    #[arg(long, default_value = "10.99.0.0/24")]
    pub underlay_cidr: ipnet::Ipv4Net,
    /// How pod traffic crosses nodes: `direct` (routes to each node's pod CIDR via that
    /// node, no encapsulation; pod MTU = underlay MTU) or `vxlan` (a Flannel-style
    /// overlay, VNI 1 on UDP 8472; pod MTU = underlay MTU - 50).
    #[arg(long, default_value = "direct")]
    pub backend: weft_runtime::Backend,
    /// Where LoadBalancer Services get their addresses (one pool per family). The host
    /// side reaches them through the nodes.
    #[arg(long, value_delimiter = ',', default_value = "10.99.1.0/24")]
    pub load_balancer_cidr: Vec<ipnet::IpNet>,
    /// The cluster domain that the DNS server answers for.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Resolvers for names outside the cluster (IP or IP:port; default: the host's
    /// /etc/resolv.conf). The ConfigMap kube-system/weft-dns overrides them live.
    #[arg(long, value_delimiter = ',')]
    pub dns_upstreams: Vec<String>,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 60)]
    pub bookmark_interval: u64,
}

pub fn node_name(i: u32) -> String {
    format!("node-{i}")
}

pub fn run(args: UpArgs) -> Result<()> {
    let started = Instant::now();
    return_large_buffers_to_the_os();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        std::fs::create_dir_all(&args.state_dir).with_context(|| format!("creating {}", args.state_dir.display()))?;
        let pidfile = args.state_dir.join("weft.pid");
        claim(&pidfile)?;
        let (lo, hi) = args
            .node_port_range
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
            .filter(|(a, b)| a <= b)
            .context("--node-port-range must look like 30000-32767")?;
        let mut cfg = weft_apiserver::Config::new(args.state_dir.clone());
        cfg.port = args.api_port;
        cfg.service_cidrs = args.service_cidr.clone();
        cfg.node_port_range = (lo, hi);
        cfg.bookmark_interval = std::time::Duration::from_secs(args.bookmark_interval.max(1));
        let topology = crate::nodes::Topology::plan(&args.state_dir, args.underlay_cidr, args.nodes, 1500)?;
        topology.apply().await.context("making the nodes' network namespaces (weft up needs root: it makes network namespaces, veths and bridges)")?;
        let server = weft_apiserver::start(cfg).await?;
        tracing::info!(api = %server.url(), kubeconfig = %server.kubeconfig.display(), elapsed_ms = started.elapsed().as_millis() as u64, "API ready");
        println!("weft is up: export KUBECONFIG={}", server.kubeconfig.display());

        let client = client_for(&server.kubeconfig).await?;
        let mut tasks = tokio::task::JoinSet::new();
        let ctl = weft_controllers::ControllersConfig { pod_cidrs: args.pod_cidr.clone(), node_cidr_mask_v4: 24, node_cidr_mask_v6: 64, load_balancer_pools: args.load_balancer_cidr.clone() };
        tasks.spawn(weft_controllers::run(client.clone(), ctl));
        let cidrs: Vec<String> = args.pod_cidr.iter().map(ToString::to_string).collect();
        std::fs::write(crate::service_rules::pod_cidrs_file(&args.state_dir), cidrs.join("\n") + "\n")?;
        tasks.spawn(crate::lb_routes::run(client.clone(), topology.nodes.iter().map(|n| n.ip).collect()));
        for n in &topology.nodes {
            let mut nc = weft_runtime::NodeConfig::new(&n.name, args.state_dir.join("nodes").join(&n.name));
            nc.netns = Some(n.netns.clone());
            nc.addresses = vec![n.ip.to_string()];
            let cert = weft_apiserver::pki::kubelet_serving(&args.state_dir.join("pki"), &n.name, &[std::net::IpAddr::V4(n.ip)]).with_context(|| format!("issuing the kubelet serving certificate of {}", n.name))?;
            nc.kubelet = Some(weft_runtime::KubeletServing { port: weft_runtime::kubelet::DEFAULT_PORT, ca_pem: cert.ca_pem, cert_pem: cert.cert_pem, key_pem: cert.key_pem });
            nc.cluster_cidrs = args.pod_cidr.clone();
            nc.backend = args.backend;
            tasks.spawn(weft_runtime::run(client.clone(), nc));
        }
        let dns = crate::dns::start(client.clone(), &topology, &args.cluster_domain, &args.dns_upstreams, &mut tasks).await?;
        let result = tokio::select! {
            _ = shutdown_signal() => { tracing::info!("stopping"); Ok(()) }
            Some(r) = tasks.join_next() => match r {
                Ok(Ok(())) => Err(anyhow::anyhow!("a component stopped unexpectedly")),
                Ok(Err(e)) => Err(e.context("a component failed")),
                Err(e) => Err(anyhow::anyhow!("a component panicked: {e}")),
            },
        };
        tasks.abort_all();
        drop(dns);
        // Containers stop with weft; sandboxes (and so pod IPs) stay for the next `up`.
        weft_runtime::stop_containers(&args.state_dir.join("nodes"));
        server.stop();
        let _ = std::fs::remove_file(&pidfile);
        result
    })?;
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

/// Large transient buffers (a full list of 10,000 pods is ~15 MB) go to their own
/// mappings and back to the OS when freed, instead of staying in glibc's heap as
/// resident slack: about 30 MB less resident memory after a burst of lists.
fn return_large_buffers_to_the_os() {
    // SAFETY: mallopt only sets allocator tunables; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

pub async fn client_for(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Records our pid, refusing to start when a live weft already runs on this dir.
fn claim(pidfile: &Path) -> Result<()> {
    if let Ok(s) = std::fs::read_to_string(pidfile) {
        if let Ok(pid) = s.trim().parse::<i32>() {
            if pid != std::process::id() as i32 && crate::down::alive(pid) {
                anyhow::bail!("weft (pid {pid}) is already running on this state dir; stop it with `weft down --state-dir {}`", pidfile.parent().unwrap().display());
            }
        }
    }
    std::fs::write(pidfile, format!("{}\n", std::process::id()))?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
