//! Events about a pod's containers (`v1/Event`, source `kubelet`), as the kubelet
//! records them: `Unhealthy`, `Killing`, `FailedMount`, `FailedPreStopHook`, ...
//! Repeats of one (container, reason, message) share an object whose `count` grows, so
//! `kubectl describe pod` shows "x4 over 10s" rather than a flood of objects.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// (pod uid, fieldPath, reason, message) → (event name, count).
type Seen = HashMap<(String, String, String, String), (String, i32)>;

#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
    seen: Arc<Mutex<Seen>>,
}

/// Which object an event is about: a pod, or one of its containers.
#[derive(Clone, Debug)]
pub struct Subject {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.containers{web}`, `spec.initContainers{setup}`, or empty for the pod.
    pub field_path: String,
}

impl Subject {
    pub fn pod(pod: &Pod) -> Subject {
        Subject {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: String::new(),
        }
    }

    pub fn container(pod: &Pod, init: bool, container: &str) -> Subject {
        let list = if init { "initContainers" } else { "containers" };
        Subject { field_path: format!("spec.{list}{{{container}}}"), ..Subject::pod(pod) }
    }
}

impl Recorder {
    pub fn new(client: kube::Client, node: &str) -> Recorder {
        Recorder { client, node: node.to_string(), seen: Default::default() }
    }

    /// Records an event in the background: a lost event never holds up a pod.
    pub fn publish(&self, subject: &Subject, type_: &str, reason: &str, message: impl Into<String>) {
        let this = self.clone();
        let (subject, type_, reason, message) = (subject.clone(), type_.to_string(), reason.to_string(), message.into());
        tracing::debug!(pod = %format!("{}/{}", subject.namespace, subject.name), %reason, %message, "event");
        tokio::spawn(async move {
            if let Err(e) = this.write(&subject, &type_, &reason, &message).await {
                tracing::debug!(%reason, "event not recorded: {e}");
            }
        });
    }

    async fn write(&self, s: &Subject, type_: &str, reason: &str, message: &str) -> kube::Result<()> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &s.namespace);
        let now = chrono::Utc::now();
        let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let key = (s.uid.clone(), s.field_path.clone(), reason.to_string(), message.to_string());
        let repeat = self.seen.lock().unwrap().get(&key).cloned();
        if let Some((name, count)) = repeat {
            let patch = json!({"count": count + 1, "lastTimestamp": stamp});
            if api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.is_ok() {
                self.seen.lock().unwrap().insert(key, (name, count + 1));
                return Ok(());
            }
        }
        let name = format!("{}.{:x}", s.name, now.timestamp_nanos_opt().unwrap_or_default());
        let mut involved = json!({"apiVersion": "v1", "kind": "Pod", "namespace": s.namespace, "name": s.name, "uid": s.uid});
        if !s.field_path.is_empty() {
            involved["fieldPath"] = json!(s.field_path);
        }
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": s.namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }))
        .map_err(kube::Error::SerdeError)?;
        api.create(&PostParams::default(), &event).await?;
        let mut seen = self.seen.lock().unwrap();
        // Bounded: forget old aggregation keys rather than grow without end.
        if seen.len() > 4096 {
            seen.clear();
        }
        seen.insert(key, (name, 1));
        Ok(())
    }

    /// Forgets a pod's aggregation keys once the pod is gone.
    pub fn forget(&self, uid: &str) {
        self.seen.lock().unwrap().retain(|k, _| k.0 != uid);
    }
}
