//! The pods bound to this node. At this stage no container runs, so a pod being
//! deleted has nothing to stop: the agent completes its deletion at once, as the
//! kubelet does once a pod's containers are gone.

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};

use crate::node::NodeConfig;

pub async fn run(client: kube::Client, cfg: NodeConfig) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::all(client.clone());
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", cfg.name));
    let stream = watcher(pods, wc).default_backoff().applied_objects();
    futures::pin_mut!(stream);
    while let Some(pod) = stream.try_next().await? {
        if pod.metadata.deletion_timestamp.is_none() {
            continue;
        }
        let (Some(ns), Some(name)) = (pod.metadata.namespace.clone(), pod.metadata.name.clone()) else { continue };
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let dp = DeleteParams { grace_period_seconds: Some(0), preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }), ..Default::default() };
        match api.delete(&name, &dp).await {
            Ok(_) => tracing::debug!(pod = %name, node = %cfg.name, "pod deletion completed"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => tracing::warn!(pod = %name, %e, "completing pod deletion"),
        }
    }
    Ok(())
}
