//! Node registration and heartbeats, as the kubelet does them.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    /// Why the node is not ready, shown in its Ready condition (None: ready).
    pub not_ready_reason: Option<String>,
    pub lease_duration: Duration,
    /// The node's network namespace; None is the agent's own (cluster mode).
    pub netns: Option<PathBuf>,
    /// The node's InternalIPs, primary first.
    pub addresses: Vec<String>,
    /// Where the agent keeps its pods' sandboxes and the CNI's allocations.
    pub state_dir: PathBuf,
    /// How pod traffic crosses nodes (`direct` or `vxlan`).
    pub backend: weft_cni::Backend,
    /// The MTU of pod interfaces; `None`: the underlay interface's MTU minus the
    /// backend's overhead (1500 for `direct`, 1450 for `vxlan` on a 1500 underlay).
    pub pod_mtu: Option<u32>,
    pub cluster_dns: crate::dns_files::ClusterDns,
    /// The kubelet endpoint (logs, exec); None: not served (the real kubelet's job).
    pub kubelet: Option<crate::kubelet::KubeletServing>,
    /// The cluster's pod CIDRs: the service proxy masquerades service traffic from
    /// anywhere else.
    pub cluster_cidrs: Vec<ipnet::IpNet>,
}

impl NodeConfig {
    pub fn new(name: &str, state_dir: PathBuf) -> Self {
        NodeConfig {
            name: name.to_string(),
            not_ready_reason: None,
            lease_duration: Duration::from_secs(40),
            netns: None,
            addresses: vec![],
            state_dir,
            backend: weft_cni::Backend::Direct,
            pod_mtu: None,
            cluster_dns: Default::default(),
            kubelet: None,
            cluster_cidrs: vec![],
        }
    }

    pub fn pods_dir(&self) -> PathBuf {
        self.state_dir.join("pods")
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "Linux".into())
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn memory_ki() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("MemTotal:").and_then(|v| v.split_whitespace().next()?.parse().ok())))
        .unwrap_or(0)
}

fn status(cfg: &NodeConfig) -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let arch = if std::env::consts::ARCH == "x86_64" { "amd64" } else if std::env::consts::ARCH == "aarch64" { "arm64" } else { std::env::consts::ARCH };
    let (ready, reason, message) = match &cfg.not_ready_reason {
        None => ("True", "KubeletReady", "weft node agent is posting ready status".to_string()),
        Some(why) => ("False", "KubeletNotReady", why.clone()),
    };
    let t = now();
    let cond = |ty: &str, st: &str, reason: &str, msg: &str| json!({"type": ty, "status": st, "reason": reason, "message": msg, "lastHeartbeatTime": t, "lastTransitionTime": t});
    let capacity = json!({"cpu": cpus.to_string(), "memory": format!("{}Ki", memory_ki()), "pods": "110", "ephemeral-storage": "0"});
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", ready, reason, &message),
        ],
        "addresses": cfg.addresses.iter().map(|a| json!({"type": "InternalIP", "address": a})).chain(std::iter::once(json!({"type": "Hostname", "address": cfg.name}))).collect::<Vec<_>>(),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.kubelet.as_ref().map(|k| k.port).unwrap_or(0)}},
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "",
            "kernelVersion": kernel_version(),
            "osImage": os_image(),
            "containerRuntimeVersion": format!("weft://{}", env!("CARGO_PKG_VERSION")),
            "kubeletVersion": "v1.33.0-weft",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch,
        },
    })
}

/// Creates the Node object if missing (the kubelet's self-registration) and posts status.
pub async fn register(client: &kube::Client, cfg: &NodeConfig) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(&cfg.name).await?.is_none() {
        let arch = if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH };
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": cfg.name, "labels": {
                "kubernetes.io/hostname": cfg.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch,
            }},
            "spec": {},
        }))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    post_status(&nodes, cfg).await
}

async fn post_status(nodes: &Api<Node>, cfg: &NodeConfig) -> anyhow::Result<()> {
    nodes.patch_status(&cfg.name, &PatchParams::default(), &Patch::Merge(json!({"status": status(cfg)}))).await?;
    Ok(())
}

/// Renews the node's Lease in kube-node-lease and refreshes its status.
pub async fn heartbeat(client: kube::Client, cfg: NodeConfig) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let nodes: Api<Node> = Api::all(client);
    let renew_every = cfg.lease_duration / 4;
    let mut status_tick = 0u32;
    loop {
        let micro = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": cfg.name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": cfg.name, "leaseDurationSeconds": cfg.lease_duration.as_secs(), "renewTime": micro},
        });
        let pp = PatchParams::apply("weft-node-agent").force();
        if let Err(e) = leases.patch(&cfg.name, &pp, &Patch::Apply(&lease)).await {
            tracing::warn!(node = %cfg.name, %e, "renewing the node lease");
        }
        // Status every fourth beat, as the kubelet's nodeStatusReportFrequency.
        if status_tick % 4 == 3 {
            if let Err(e) = post_status(&nodes, &cfg).await {
                tracing::warn!(node = %cfg.name, %e, "posting node status");
            }
        }
        status_tick += 1;
        tokio::time::sleep(renew_every).await;
    }
}
