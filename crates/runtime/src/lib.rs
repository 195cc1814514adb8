//! The node agent's pod runtime: the kubelet's job in local mode. It speaks to the API
//! only through kube-rs, so the same agent runs against any cluster.
//!
//! It registers the node, heartbeats its Lease, and runs the pods bound to it: a
//! sandbox (network namespace + CNI) per pod, containers as host processes inside it
//! (see `image` for what runs), status back to the API, graceful deletion.

pub mod dns_files;
pub mod env;
pub mod image;
mod node;
mod node_routes;
mod pods;
mod process;
pub mod underlay;
pub mod vxlan;
mod worker;

pub use node::NodeConfig;
pub use weft_cni::Backend;

/// Runs the agent for one node until the future is dropped.
pub async fn run(client: kube::Client, cfg: NodeConfig) -> anyhow::Result<()> {
    node::register(&client, &cfg).await?;
    let heartbeat = node::heartbeat(client.clone(), cfg.clone());
    let routes = node_routes::run(client.clone(), cfg.clone());
    let pods = pods::run(client, cfg);
    tokio::select! {
        r = heartbeat => r,
        r = pods => r,
        r = routes => r,
    }
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
