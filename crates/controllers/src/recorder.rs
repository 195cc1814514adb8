//! Events (`v1/Event`) as client-go's recorder writes them: one object per
//! (object, type, reason, message), whose count and lastTimestamp grow on repeats,
//! so `kubectl describe` shows "x3 over 2m".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// (object uid, type, reason, message): repeats of one event share an object.
type Aggregation = (String, String, String, String);
/// (namespace, event name, count) of the Event written for an aggregation key.
type Recorded = (String, String, i32);

#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: &'static str,
    seen: Arc<Mutex<HashMap<Aggregation, Recorded>>>,
}

/// A reference to `obj` for `involvedObject`, `targetRef` and the like.
pub fn object_ref<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        field_path: None,
    }
}

impl Recorder {
    pub fn new(client: Client, component: &'static str) -> Self {
        Recorder { client, component, seen: Default::default() }
    }

    /// Records an event in the background: a lost event must never fail a sync.
    pub fn publish<K: Resource<DynamicType = ()>>(&self, obj: &K, type_: &str, reason: &str, message: impl Into<String>) {
        let this = self.clone();
        let involved = object_ref(obj);
        let (type_, reason, message) = (type_.to_string(), reason.to_string(), message.into());
        tokio::spawn(async move {
            if let Err(err) = this.write(involved, &type_, &reason, &message).await {
                tracing::debug!(component = this.component, %reason, "event not recorded: {err}");
            }
        });
    }

    async fn write(&self, involved: ObjectReference, type_: &str, reason: &str, message: &str) -> kube::Result<()> {
        // Events of cluster-scoped objects (nodes, namespaces) live in "default", as upstream.
        let ns = involved.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = Timestamp::now();
        let key = (
            involved.uid.clone().unwrap_or_else(|| format!("{}/{}", ns, involved.name.clone().unwrap_or_default())),
            type_.to_string(),
            reason.to_string(),
            message.to_string(),
        );
        let repeat = self.seen.lock().unwrap().get(&key).cloned();
        if let Some((ns, name, count)) = repeat {
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": Time(now)});
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
            if api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.is_ok() {
                self.seen.lock().unwrap().insert(key, (ns, name, count + 1));
                return Ok(());
            }
        }
        let name = format!("{}.{:x}", involved.name.clone().unwrap_or_default(), now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta { name: Some(name), namespace: Some(ns.clone()), ..Default::default() },
            involved_object: involved,
            type_: Some(type_.to_string()),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            source: Some(EventSource { component: Some(self.component.to_string()), host: None }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None::<MicroTime>,
            count: Some(1),
            reporting_component: Some(self.component.to_string()),
            reporting_instance: Some(self.component.to_string()),
            ..Default::default()
        };
        let created = api.create(&PostParams::default(), &event).await?;
        let mut seen = self.seen.lock().unwrap();
        // Bounded memory: forget old aggregation keys rather than grow forever.
        if seen.len() > 4096 {
            seen.clear();
        }
        seen.insert(key, (ns, created.name_any(), 1));
        Ok(())
    }
}
