//! The pods bound to this node by namespace and name, as the agent last saw them:
//! what the kubelet endpoint looks pods up in (the kubelet's pod manager).

use k8s_openapi::api::core::v1::Pod;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Clone, Default)]
pub struct PodIndex {
    pods: Arc<RwLock<HashMap<(String, String), Pod>>>,
}

fn key(pod: &Pod) -> (String, String) {
    (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default())
}

impl PodIndex {
    pub fn upsert(&self, pod: &Pod) {
        self.pods.write().unwrap_or_else(|p| p.into_inner()).insert(key(pod), pod.clone());
    }

    pub fn remove(&self, pod: &Pod) {
        let mut pods = self.pods.write().unwrap_or_else(|p| p.into_inner());
        // Only the same pod: a new one of the same name may already be here.
        if pods.get(&key(pod)).is_some_and(|p| p.metadata.uid == pod.metadata.uid) {
            pods.remove(&key(pod));
        }
    }

    /// Keeps only the pods whose uid is in `live` (after a fresh list).
    pub fn retain_uids(&self, live: &[String]) {
        self.pods.write().unwrap_or_else(|p| p.into_inner()).retain(|_, p| p.metadata.uid.as_ref().is_some_and(|u| live.contains(u)));
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.pods.read().unwrap_or_else(|p| p.into_inner()).get(&(namespace.to_string(), name.to_string())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, uid: &str) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"namespace": "default", "name": name, "uid": uid}})).unwrap()
    }

    #[test]
    fn removing_an_old_pod_keeps_its_same_named_successor() {
        let idx = PodIndex::default();
        idx.upsert(&pod("web", "1"));
        idx.upsert(&pod("web", "2"));
        idx.remove(&pod("web", "1"));
        assert_eq!(idx.get("default", "web").and_then(|p| p.metadata.uid), Some("2".into()));
        idx.retain_uids(&[]);
        assert!(idx.get("default", "web").is_none());
    }
}
