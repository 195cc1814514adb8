//! Shared informers: one kube-rs watcher and reflector store per kind, shared by
//! every controller (as kube-controller-manager shares its informers), plus a
//! namespace index and a broadcast of changes with the previous object, so that a
//! controller can requeue what an object *used to* select as well as what it does now.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt, TryStreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

/// What a subscriber learns about one object.
#[derive(Debug)]
pub enum Change<K> {
    /// Added or modified; `old` is the cached version before this event, if any.
    Applied { old: Option<Arc<K>>, new: Arc<K> },
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Applied { old, new } => Change::Applied { old: old.clone(), new: new.clone() },
            Change::Deleted(o) => Change::Deleted(o.clone()),
        }
    }
}

impl<K> Change<K> {
    /// The objects this change concerns: the new one and, if it differs, the old one.
    pub fn objects(&self) -> Vec<&Arc<K>> {
        match self {
            Change::Applied { old: Some(old), new } => vec![new, old],
            Change::Applied { old: None, new } => vec![new],
            Change::Deleted(o) => vec![o],
        }
    }
}

/// A cached, watched collection of one kind.
pub struct Informer<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    by_namespace: Arc<RwLock<HashMap<String, BTreeSet<String>>>>,
    changes: broadcast::Sender<Change<K>>,
    synced: watch::Receiver<bool>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            store: self.store.clone(),
            by_namespace: self.by_namespace.clone(),
            changes: self.changes.clone(),
            synced: self.synced.clone(),
        }
    }
}

/// How many changes a slow subscriber may fall behind before it must resync.
const CHANGE_BUFFER: usize = 16 * 1024;

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Builds the informer and the future that feeds it; the future runs until dropped.
    pub fn new(api: Api<K>, config: watcher::Config) -> (Self, impl std::future::Future<Output = ()> + Send) {
        let (store, writer) = reflector::store::<K>();
        let (changes, _) = broadcast::channel(CHANGE_BUFFER);
        let (synced_tx, synced) = watch::channel(false);
        let informer = Informer { store, by_namespace: Default::default(), changes, synced };
        let feeder = informer.clone();
        // Controllers never read managedFields; dropping them halves what the cache holds.
        let stream = watcher::watcher(api, config).default_backoff().map_ok(|ev| {
            ev.modify(|obj| {
                obj.meta_mut().managed_fields = None;
            })
        });
        (informer, feeder.feed(stream, writer, synced_tx))
    }

    async fn feed(
        self,
        stream: impl Stream<Item = Result<Event<K>, watcher::Error>> + Send,
        mut writer: reflector::store::Writer<K>,
        synced_tx: watch::Sender<bool>,
    ) {
        let mut stream = std::pin::pin!(stream);
        let mut relisted: Vec<K> = Vec::new();
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(event) => event,
                Err(err) => {
                    tracing::warn!(kind = %K::kind(&()), %err, "watch failed; retrying");
                    continue;
                }
            };
            match &event {
                Event::Apply(obj) => {
                    let old = self.store.get(&ObjectRef::from_obj(obj));
                    writer.apply_watcher_event(&event);
                    self.index(obj, true);
                    // Share the cached Arc rather than a second copy per buffered change.
                    let new = self.store.get(&ObjectRef::from_obj(obj)).unwrap_or_else(|| Arc::new(obj.clone()));
                    let _ = self.changes.send(Change::Applied { old, new });
                }
                Event::Delete(obj) => {
                    writer.apply_watcher_event(&event);
                    self.index(obj, false);
                    let _ = self.changes.send(Change::Deleted(Arc::new(obj.clone())));
                }
                Event::Init => {
                    relisted.clear();
                    writer.apply_watcher_event(&event);
                }
                Event::InitApply(obj) => {
                    relisted.push(obj.clone());
                    writer.apply_watcher_event(&event);
                }
                Event::InitDone => {
                    // A relist replaces the cache at once; what vanished meanwhile is
                    // reported as deleted, since no watch event told of it.
                    let before: HashMap<ObjectRef<K>, Arc<K>> =
                        self.store.state().into_iter().map(|o| (ObjectRef::from_obj(&*o), o)).collect();
                    writer.apply_watcher_event(&event);
                    let mut index: HashMap<String, BTreeSet<String>> = HashMap::new();
                    let mut seen = std::collections::HashSet::new();
                    for obj in &relisted {
                        let meta = obj.meta();
                        index
                            .entry(meta.namespace.clone().unwrap_or_default())
                            .or_default()
                            .insert(meta.name.clone().unwrap_or_default());
                        seen.insert(ObjectRef::from_obj(obj));
                    }
                    *self.by_namespace.write().unwrap() = index;
                    for (key, old) in &before {
                        if !seen.contains(key) {
                            let _ = self.changes.send(Change::Deleted(old.clone()));
                        }
                    }
                    for obj in relisted.drain(..) {
                        let old = before.get(&ObjectRef::from_obj(&obj)).cloned();
                        let unchanged = old.as_ref().is_some_and(|o| {
                            o.meta().resource_version.is_some() && o.meta().resource_version == obj.meta().resource_version
                        });
                        if !unchanged {
                            let new = self.store.get(&ObjectRef::from_obj(&obj)).unwrap_or_else(|| Arc::new(obj));
                            let _ = self.changes.send(Change::Applied { old, new });
                        }
                    }
                    synced_tx.send_replace(true);
                }
            }
        }
    }

    fn index(&self, obj: &K, present: bool) {
        let meta = obj.meta();
        let ns = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let mut index = self.by_namespace.write().unwrap();
        if present {
            index.entry(ns).or_default().insert(name);
        } else if let Some(names) = index.get_mut(&ns) {
            names.remove(&name);
            if names.is_empty() {
                index.remove(&ns);
            }
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Informer<K> {
    /// Waits until the first full list has been cached.
    pub async fn synced(&self) {
        let mut rx = self.synced.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change<K>> {
        self.changes.subscribe()
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let r = ObjectRef::new(name);
        let r = if namespace.is_empty() { r } else { r.within(namespace) };
        self.store.get(&r)
    }

    /// Every cached object in one namespace (cluster-scoped kinds use "").
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let names: Vec<String> =
            self.by_namespace.read().unwrap().get(namespace).map(|n| n.iter().cloned().collect()).unwrap_or_default();
        names.iter().filter_map(|n| self.get(namespace, n)).collect()
    }

    pub fn all(&self) -> Vec<Arc<K>> {
        self.store.state()
    }
}

/// The queue key of a namespaced object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Key { namespace: namespace.into(), name: name.into() }
    }

    pub fn of<K: Resource>(obj: &K) -> Self {
        let m = obj.meta();
        Key::new(m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default())
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() { write!(f, "{}", self.name) } else { write!(f, "{}/{}", self.namespace, self.name) }
    }
}

/// Forwards an informer's changes into a queue through `map`, and everything
/// `resync` names whenever the subscriber fell behind. Runs until dropped.
pub async fn route<K, Q, F, R>(informer: Informer<K>, queue: crate::queue::Queue<Q>, map: F, resync: R)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
    Q: Clone + Eq + Hash + Send + 'static,
    F: Fn(&Change<K>) -> Vec<Q>,
    R: Fn() -> Vec<Q>,
{
    let mut rx = informer.subscribe();
    loop {
        match rx.recv().await {
            Ok(change) => {
                for key in map(&change) {
                    queue.add(key);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                for key in resync() {
                    queue.add(key);
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
