//! The node agent's pod runtime: the kubelet's job in local mode. It speaks to the API
//! only through kube-rs, so the same agent runs against any cluster.
//!
//! This stage registers the node, heartbeats its Lease, and finishes the deletion of
//! pods bound to it. Starting pods (sandboxes, CNI, processes) comes with pod networking.

mod node;
mod pods;

pub use node::NodeConfig;

/// Runs the agent for one node until the future is dropped.
pub async fn run(client: kube::Client, cfg: NodeConfig) -> anyhow::Result<()> {
    node::register(&client, &cfg).await?;
    let heartbeat = node::heartbeat(client.clone(), cfg.clone());
    let pods = pods::run(client, cfg);
    tokio::select! {
        r = heartbeat => r,
        r = pods => r,
    }
}
