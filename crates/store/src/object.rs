use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;

/// One stored object in its serialized form (with `metadata.resourceVersion` set), so
/// that a list is a copy. The parsed form is made on demand: a `serde_json::Value` of a
/// pod costs ten times its JSON in memory, and most reads never need it.
#[derive(Debug)]
pub struct Object {
    pub key: String,
    pub revision: u64,
    /// The `apiVersion` it is stored at, so that a read can tell without parsing
    /// whether the stored bytes can be served as they are.
    pub api_version: String,
    pub raw: Bytes,
}

impl Object {
    /// Stamps `value` with `revision` as its resourceVersion.
    pub fn new(key: String, revision: u64, mut value: Value) -> Object {
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
        }
        let raw = Bytes::from(serde_json::to_vec(&value).expect("JSON values serialize"));
        let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
        Object { key, revision, api_version, raw }
    }

    /// The parsed object.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.raw).expect("stored objects are JSON")
    }

    /// Rebuilds an object read back from the database.
    pub fn from_raw(key: String, raw: &[u8]) -> Option<Object> {
        #[derive(serde::Deserialize)]
        struct Head {
            #[serde(rename = "apiVersion", default)]
            api_version: String,
            metadata: HeadMeta,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct HeadMeta {
            resource_version: String,
        }
        let head: Head = serde_json::from_slice(raw).ok()?;
        let revision = head.metadata.resource_version.parse().ok()?;
        Some(Object { key, revision, api_version: head.api_version, raw: Bytes::copy_from_slice(raw) })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
    pub(crate) fn code(self) -> u8 {
        match self {
            EventType::Added => 0,
            EventType::Modified => 1,
            EventType::Deleted => 2,
        }
    }
    pub(crate) fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => EventType::Added,
            1 => EventType::Modified,
            2 => EventType::Deleted,
            _ => return None,
        })
    }
}

/// A change, as the watch log holds it. `object` is the new state (for a delete, the
/// last state stamped with the deletion's revision); `prev` the state before, when known,
/// so that filtered watches can turn a label change into ADDED or DELETED.
#[derive(Debug)]
pub struct Event {
    pub revision: u64,
    pub kind: EventType,
    pub object: Arc<Object>,
    pub prev: Option<Arc<Object>>,
}
