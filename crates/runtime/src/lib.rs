//! The node agent's pod runtime: the kubelet's job in local mode. It speaks to the API
//! only through kube-rs, so the same agent runs against any cluster.
//!
//! It registers the node, heartbeats its Lease, and runs the pods bound to it: a
//! sandbox (network namespace + CNI) per pod, volumes, init containers then containers
//! as host processes inside it (see `image` for what runs), probes, lifecycle hooks,
//! status and events back to the API, graceful deletion.

mod cni_attach;
pub mod container_log;
mod container_start;
mod container_stop;
pub mod dns_files;
pub mod env;
mod egress_masq;
mod events;
pub mod flow_log;
pub mod exec_program;
mod hooks;
mod http_once;
pub mod image;
pub mod kubelet;
pub mod mount_exec;
pub mod mount_plan;
mod node;
mod node_routes;
mod pod_index;
pub mod pod_status;
mod pods;
mod policy_agent;
pub mod probe;
pub mod probe_exec;
pub mod probe_net;
mod probe_run;
mod process;
mod proxy_agent;
mod proxy_health;
mod proxy_metrics;
pub mod start_order;
pub mod underlay;
mod volume_files;
pub mod volume_source;
mod volumes;
pub mod vxlan;
mod worker;
mod worker_status;

pub use kubelet::KubeletServing;
pub use node::NodeConfig;
pub use weft_cni::Backend;

/// Runs the agent for one node until the future is dropped.
pub async fn run(client: kube::Client, cfg: NodeConfig) -> anyhow::Result<()> {
    let index = pod_index::PodIndex::default();
    // Listening before the node is registered: the port it reports is served.
    let kubelet = match &cfg.kubelet {
        Some(serving) => {
            let listener = kubelet::bind(&cfg, serving)?;
            futures::future::Either::Left(kubelet::serve(listener, serving.clone(), cfg.clone(), index.clone()))
        }
        None => futures::future::Either::Right(futures::future::pending()),
    };
    node::register(&client, &cfg).await?;
    if !cfg.cluster_cidrs.is_empty() {
        let (netns, cidrs) = (cfg.netns.clone(), cfg.cluster_cidrs.clone());
        tokio::task::spawn_blocking(move || egress_masq::apply(netns.as_deref(), &cidrs))
            .await?
            .map_err(|e| anyhow::anyhow!("node {}: masquerading pod traffic that leaves the cluster (table inet {}): {e:#}", cfg.name, egress_masq::TABLE))?;
    }
    let heartbeat = node::heartbeat(client.clone(), cfg.clone());
    let routes = node_routes::run(client.clone(), cfg.clone());
    let proxy_metrics = std::sync::Arc::new(weft_proxy::metrics::ProxyMetrics::new());
    let proxy = proxy_agent::run(client.clone(), cfg.clone(), proxy_metrics.clone());
    let proxy_metrics = proxy_metrics::serve(cfg.clone(), proxy_metrics);
    let policy = policy_agent::run(client.clone(), cfg.clone());
    let pods = pods::run(client, cfg, index);
    tokio::select! {
        r = heartbeat => r,
        r = pods => r,
        r = routes => r,
        r = kubelet => r,
        r = proxy => r,
        r = proxy_metrics => r,
        r = policy => r,
    }
}

/// The body of `weft log-shim`, the per-container log writer (see `container_log::shim`).
pub fn log_shim_main() -> i32 {
    container_log::shim::main()
}

/// Stops every container recorded under `nodes_dir` (`<node>/pods/<uid>/containers/*/pid`).
pub fn stop_containers(nodes_dir: &std::path::Path) {
    for pod in pod_dirs(nodes_dir) {
        worker::kill_recorded(&pod);
    }
}

/// Removes every pod sandbox's namespace under `nodes_dir` (their veths go with them).
pub fn remove_sandboxes(nodes_dir: &std::path::Path) {
    for pod in pod_dirs(nodes_dir) {
        let _ = weft_kernel::Netns::remove(&pod.join("netns"));
    }
}

fn pod_dirs(nodes_dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for node in std::fs::read_dir(nodes_dir).into_iter().flatten().flatten() {
        for pod in std::fs::read_dir(node.path().join("pods")).into_iter().flatten().flatten() {
            out.push(pod.path());
        }
    }
    out
}
