//! The pods bound to this node: one worker task per pod, fed the pod's latest state.
//! The worker owns the sandbox and the container processes; the API only ever hears
//! from it through status patches (kube-rs, as the kubelet).

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

use crate::node::NodeConfig;
use crate::pod_index::PodIndex;
use crate::worker::{self, Shared};

pub async fn run(client: kube::Client, cfg: NodeConfig, index: PodIndex) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(client.clone(), cfg.clone()).await?);
    let pods: Api<Pod> = Api::all(client.clone());
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", cfg.name));
    let stream = watcher::watcher(pods, wc).default_backoff();
    futures::pin_mut!(stream);
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut seen_in_list: Vec<String> = Vec::new();
    while let Some(ev) = stream.try_next().await? {
        match ev {
            Event::Apply(pod) | Event::InitApply(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                seen_in_list.push(uid.clone());
                index.upsert(&pod);
                deliver(&shared, &mut workers, uid, Some(pod));
            }
            Event::Delete(pod) => {
                index.remove(&pod);
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                deliver(&shared, &mut workers, uid, None);
            }
            Event::Init => seen_in_list.clear(),
            Event::InitDone => {
                // Pods that vanished while the watch was down: stop their workers.
                index.retain_uids(&seen_in_list);
                let gone: Vec<String> = workers.keys().filter(|u| !seen_in_list.contains(u)).cloned().collect();
                for uid in gone {
                    deliver(&shared, &mut workers, uid, None);
                }
                // Sandboxes on disk whose pod is gone (weft was down): clean up.
                shared.reap_orphans(&seen_in_list).await;
            }
        }
        workers.retain(|_, tx| !tx.is_closed());
    }
    Ok(())
}

fn deliver(shared: &Arc<Shared>, workers: &mut HashMap<String, watch::Sender<Option<Pod>>>, uid: String, pod: Option<Pod>) {
    if let Some(tx) = workers.get(&uid) {
        if tx.send(pod.clone()).is_ok() {
            return;
        }
    }
    let Some(pod) = pod else { return };
    let (tx, rx) = watch::channel(Some(pod));
    tokio::spawn(worker::run(shared.clone(), uid.clone(), rx));
    workers.insert(uid, tx);
}

/// Completes a pod's deletion once its containers are gone, as the kubelet does.
pub async fn finish_deletion(client: &kube::Client, pod: &Pod) {
    let (Some(ns), Some(name)) = (pod.metadata.namespace.clone(), pod.metadata.name.clone()) else { return };
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let dp = DeleteParams { grace_period_seconds: Some(0), preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }), ..Default::default() };
    match api.delete(&name, &dp).await {
        Ok(_) => tracing::debug!(pod = %name, "pod deletion completed"),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(pod = %name, %e, "completing pod deletion"),
    }
}
