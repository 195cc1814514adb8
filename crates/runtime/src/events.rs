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

type Key = (String, String, String, String);
/// (pod uid, fieldPath, reason, message) → (event name, count).
type Seen = HashMap<Key, (String, i32)>;

/// client-go's spam filter: each event key may be written 25 times in a burst, then
/// once per 5 minutes, so a probe failing every second does not write every second.
const BURST: f64 = 25.0;
const REFILL_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
    seen: Arc<Mutex<Seen>>,
    budget: Arc<Mutex<SpamFilter>>,
}

/// A token bucket per event key.
#[derive(Default)]
struct SpamFilter(HashMap<Key, (f64, std::time::Instant)>);

impl SpamFilter {
    fn allow(&mut self, key: &Key, now: std::time::Instant) -> bool {
        if self.0.len() > 4096 {
            self.0.retain(|_, (_, last)| now.duration_since(*last) < REFILL_EVERY * BURST as u32);
        }
        let (tokens, last) = self.0.entry(key.clone()).or_insert((BURST, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() / REFILL_EVERY.as_secs_f64()).min(BURST);
        *last = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
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
        Recorder { client, node: node.to_string(), seen: Default::default(), budget: Default::default() }
    }

    /// Records an event in the background: a lost event never holds up a pod.
    pub fn publish(&self, subject: &Subject, type_: &str, reason: &str, message: impl Into<String>) {
        let this = self.clone();
        let (subject, type_, reason, message) = (subject.clone(), type_.to_string(), reason.to_string(), message.into());
        tracing::debug!(pod = %format!("{}/{}", subject.namespace, subject.name), %reason, %message, "event");
        if !self.take_token(&(subject.uid.clone(), subject.field_path.clone(), reason.clone(), message.clone())) {
            return;
        }
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

    fn take_token(&self, key: &Key) -> bool {
        self.budget.lock().unwrap().allow(key, std::time::Instant::now())
    }

    /// Forgets a pod's aggregation keys once the pod is gone.
    pub fn forget(&self, uid: &str) {
        self.seen.lock().unwrap().retain(|k, _| k.0 != uid);
        self.budget.lock().unwrap().0.retain(|k, _| k.0 != uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_repeated_event_is_written_25_times_then_once_per_5_minutes() {
        let mut f = SpamFilter::default();
        let key: Key = ("uid".into(), "spec.containers{c}".into(), "Unhealthy".into(), "Readiness probe failed: x".into());
        let t0 = Instant::now();
        let allowed = (0..100).filter(|i| f.allow(&key, t0 + Duration::from_secs(*i))).count();
        assert_eq!(allowed, 25);
        assert!(f.allow(&key, t0 + Duration::from_secs(400)), "a token came back after 5 minutes");
        assert!(!f.allow(&key, t0 + Duration::from_secs(401)));
        let other: Key = ("uid".into(), "spec.containers{c}".into(), "Killing".into(), "m".into());
        assert!(f.allow(&other, t0 + Duration::from_secs(401)), "keys are counted apart");
    }
}
