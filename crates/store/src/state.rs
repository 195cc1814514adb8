//! The in-memory view: every object by key, and the recent watch log.

use crate::db::Loaded;
use crate::object::{Event, EventType, Object};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

pub struct State {
    pub objects: BTreeMap<String, Arc<Object>>,
    pub revision: u64,
    /// Watches may start from any revision >= this one.
    pub compacted: u64,
    pub log: VecDeque<Arc<Event>>,
}

impl State {
    pub fn from_loaded(loaded: Loaded, _retain: usize) -> State {
        let objects: BTreeMap<String, Arc<Object>> = loaded.objects.into_iter().map(|o| (o.key.clone(), Arc::new(o))).collect();
        // Rebuild `prev` for logged events where the log itself holds the earlier state.
        let mut last: HashMap<String, Arc<Object>> = HashMap::new();
        let mut log = VecDeque::with_capacity(loaded.log.len());
        for (revision, kind, obj) in loaded.log {
            // The newest logged state of a live object is the object itself: share it.
            let obj = match objects.get(&obj.key) {
                Some(cur) if cur.revision == obj.revision => cur.clone(),
                _ => Arc::new(obj),
            };
            let prev = last.get(&obj.key).cloned();
            if kind == EventType::Deleted {
                last.remove(&obj.key);
            } else {
                last.insert(obj.key.clone(), obj.clone());
            }
            log.push_back(Arc::new(Event { revision, kind, object: obj, prev }));
        }
        State { objects, revision: loaded.revision, compacted: loaded.compacted, log }
    }

    /// Logged events after `after` for keys under `prefix`.
    pub fn events_after(&self, after: u64, prefix: &str) -> Vec<Arc<Event>> {
        let start = self.log.partition_point(|e| e.revision <= after);
        self.log.range(start..).filter(|e| e.object.key.starts_with(prefix)).cloned().collect()
    }
}
