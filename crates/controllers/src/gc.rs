//! Garbage collector for ownerReferences, as upstream's: an object whose owners
//! are all gone is deleted (background); an owner deleted with the `orphan`
//! finalizer first has its dependents' references to it removed; an owner
//! deleted with `foregroundDeletion` first has its dependents deleted, and loses
//! the finalizer once no dependent blocks it. The dependency graph is built from
//! the shared informers of the kinds weft's controllers own (Pods, ReplicaSets,
//! Deployments, EndpointSlices, Services); owners of any other kind are looked
//! up live through discovery before anything is judged dangling.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::discovery::Scope;
use kube::{Resource, ResourceExt};

use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::{api_error_is, Ctx};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// What the collector knows of one object.
#[derive(Clone, Debug)]
struct Item {
    ar: ApiResource,
    namespace: String,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
    resource_version: String,
}

/// How an owner stands, seen from one dependent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists and is not waiting on its dependents.
    Solid,
    /// Gone (or replaced by another object of the same name).
    Dangling,
    /// Being deleted in the foreground: waits for its dependents to go.
    WaitingForDependents,
}

/// What to do with one dependent.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Keep,
    /// Drop references to absent owners, and stop blocking owners that wait.
    FixReferences { remove: Vec<String>, unblock: Vec<String> },
    Delete(PropagationPolicy),
}

/// The decision for a dependent, given its owners' states, its own finalizers
/// and whether it has dependents of its own.
pub fn verdict(owners: &[(OwnerReference, OwnerState)], finalizers: &[String], has_dependents: bool) -> Verdict {
    let of = |s: OwnerState| owners.iter().filter(move |(_, st)| *st == s).map(|(r, _)| r.uid.clone());
    let solid: Vec<String> = of(OwnerState::Solid).collect();
    let dangling: Vec<String> = of(OwnerState::Dangling).collect();
    let waiting: Vec<String> = of(OwnerState::WaitingForDependents).collect();
    if owners.is_empty() {
        return Verdict::Keep;
    }
    if !solid.is_empty() {
        if dangling.is_empty() && waiting.is_empty() {
            return Verdict::Keep;
        }
        // Still owned: only the references to owners that are going change.
        return Verdict::FixReferences { remove: dangling, unblock: waiting };
    }
    if !waiting.is_empty() && has_dependents {
        // Our own dependents must go first, so the owner's wait is honoured.
        return Verdict::Delete(PropagationPolicy::Foreground);
    }
    let policy = if finalizers.iter().any(|f| f == ORPHAN) {
        PropagationPolicy::Orphan
    } else if finalizers.iter().any(|f| f == FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    Verdict::Delete(policy)
}

/// What to do for an owner being deleted with a GC finalizer.
#[derive(Debug, PartialEq)]
pub enum OwnerStep {
    Nothing,
    /// Remove our references from these dependents, then the `orphan` finalizer.
    Orphan(Vec<String>),
    /// Dependents that block deletion remain: wait for them.
    WaitForDependents,
    /// Remove the `foregroundDeletion` finalizer.
    FinishForeground,
}

/// `dependents` are (uid, blocks-owner-deletion) pairs.
pub fn owner_step(finalizers: &[String], deleting: bool, dependents: &[(String, bool)]) -> OwnerStep {
    if !deleting {
        return OwnerStep::Nothing;
    }
    if finalizers.iter().any(|f| f == ORPHAN) {
        return OwnerStep::Orphan(dependents.iter().map(|(u, _)| u.clone()).collect());
    }
    if finalizers.iter().any(|f| f == FOREGROUND) {
        return if dependents.iter().any(|(_, blocks)| *blocks) { OwnerStep::WaitForDependents } else { OwnerStep::FinishForeground };
    }
    OwnerStep::Nothing
}

#[derive(Default)]
struct Graph {
    items: HashMap<String, Item>,
    dependents: HashMap<String, HashSet<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Work {
    /// Check a dependent's owners.
    Dependent(String),
    /// Process an owner's GC finalizer.
    Owner(String),
}

impl Graph {
    fn unlink(&mut self, uid: &str) {
        if let Some(old) = self.items.get(uid) {
            for o in &old.owners {
                if let Some(d) = self.dependents.get_mut(&o.uid) {
                    d.remove(uid);
                    if d.is_empty() {
                        self.dependents.remove(&o.uid);
                    }
                }
            }
        }
    }

    fn observe<K: Resource<DynamicType = ()>>(&mut self, change: &Change<K>) -> Vec<Work> {
        let mut work = Vec::new();
        match change {
            Change::Applied { new, .. } => {
                let m = new.meta();
                let uid = m.uid.clone().unwrap_or_default();
                let item = Item {
                    ar: ApiResource::erase::<K>(&()),
                    namespace: m.namespace.clone().unwrap_or_default(),
                    name: m.name.clone().unwrap_or_default(),
                    owners: m.owner_references.clone().unwrap_or_default(),
                    deleting: m.deletion_timestamp.is_some(),
                    finalizers: m.finalizers.clone().unwrap_or_default(),
                    resource_version: m.resource_version.clone().unwrap_or_default(),
                };
                self.unlink(&uid);
                for o in &item.owners {
                    self.dependents.entry(o.uid.clone()).or_default().insert(uid.clone());
                }
                if !item.owners.is_empty() && !item.deleting {
                    work.push(Work::Dependent(uid.clone()));
                }
                if item.deleting && item.finalizers.iter().any(|f| f == ORPHAN || f == FOREGROUND) {
                    work.push(Work::Owner(uid.clone()));
                    if item.finalizers.iter().any(|f| f == FOREGROUND) {
                        work.extend(self.dependents.get(&uid).into_iter().flatten().map(|d| Work::Dependent(d.clone())));
                    }
                }
                self.items.insert(uid, item);
            }
            Change::Deleted(old) => {
                let uid = old.meta().uid.clone().unwrap_or_default();
                if let Some(item) = self.items.get(&uid) {
                    // An owner waiting in the foreground may now be free to go.
                    work.extend(item.owners.iter().map(|o| Work::Owner(o.uid.clone())));
                }
                self.unlink(&uid);
                self.items.remove(&uid);
                work.extend(self.dependents.get(&uid).into_iter().flatten().map(|d| Work::Dependent(d.clone())));
            }
        }
        work
    }
}

struct Collector {
    ctx: Arc<Ctx>,
    graph: Mutex<Graph>,
    kinds: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

pub(crate) async fn run(ctx: Arc<Ctx>) -> anyhow::Result<()> {
    tokio::join!(ctx.pods.synced(), ctx.replica_sets.synced(), ctx.deployments.synced(), ctx.endpoint_slices.synced(), ctx.services.synced());
    let gc = Arc::new(Collector { ctx: ctx.clone(), graph: Default::default(), kinds: Default::default() });
    let queue: Queue<Work> = Queue::new();
    // Subscribe before reading the caches, so nothing falls in between.
    let feeds = futures::future::join5(
        feed(gc.clone(), ctx.pods.clone(), queue.clone()),
        feed(gc.clone(), ctx.replica_sets.clone(), queue.clone()),
        feed(gc.clone(), ctx.deployments.clone(), queue.clone()),
        feed(gc.clone(), ctx.endpoint_slices.clone(), queue.clone()),
        feed(gc.clone(), ctx.services.clone(), queue.clone()),
    );
    let g = gc.clone();
    let worker = queue.serve("garbagecollector", move |w| process(g.clone(), w));
    tokio::join!(feeds, worker);
    Ok(())
}

async fn feed<K>(gc: Arc<Collector>, informer: Informer<K>, queue: Queue<Work>)
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let mut rx = informer.subscribe();
    let load = |gc: &Collector| {
        let mut g = gc.graph.lock().unwrap();
        let mut work = Vec::new();
        for obj in informer.all() {
            work.extend(g.observe(&Change::Applied { old: None, new: obj }));
        }
        work
    };
    for w in load(&gc) {
        queue.add(w);
    }
    loop {
        match rx.recv().await {
            Ok(change) => {
                let work = gc.graph.lock().unwrap().observe(&change);
                for w in work {
                    queue.add(w);
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                for w in load(&gc) {
                    queue.add(w);
                }
            }
            Err(_) => return,
        }
    }
}

fn dynamic_api(gc: &Collector, item: &Item) -> Api<DynamicObject> {
    if item.namespace.is_empty() {
        Api::all_with(gc.ctx.client.clone(), &item.ar)
    } else {
        Api::namespaced_with(gc.ctx.client.clone(), &item.namespace, &item.ar)
    }
}

/// An owner's state: from the graph when it holds the kind, else from the API.
async fn owner_state(gc: &Collector, dependent: &Item, owner: &OwnerReference) -> anyhow::Result<OwnerState> {
    let known = gc.graph.lock().unwrap().items.get(&owner.uid).cloned();
    let state_of = |deleting: bool, finalizers: &[String]| {
        if deleting && finalizers.iter().any(|f| f == FOREGROUND) { OwnerState::WaitingForDependents } else { OwnerState::Solid }
    };
    if let Some(o) = known {
        return Ok(state_of(o.deleting, &o.finalizers));
    }
    // Not cached: ask the API server, so a lagging cache never deletes anything.
    let (group, version) = match owner.api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), owner.api_version.clone()),
    };
    let cached = gc.kinds.lock().unwrap().get(&(owner.api_version.clone(), owner.kind.clone())).cloned();
    let (ar, namespaced) = match cached {
        Some(k) => k,
        None => {
            let gvk = GroupVersionKind::gvk(&group, &version, &owner.kind);
            let (ar, caps) = kube::discovery::pinned_kind(&gc.ctx.client, &gvk).await?;
            let k = (ar, caps.scope == Scope::Namespaced);
            gc.kinds.lock().unwrap().insert((owner.api_version.clone(), owner.kind.clone()), k.clone());
            k
        }
    };
    let api: Api<DynamicObject> =
        if namespaced { Api::namespaced_with(gc.ctx.client.clone(), &dependent.namespace, &ar) } else { Api::all_with(gc.ctx.client.clone(), &ar) };
    Ok(match api.get_opt(&owner.name).await? {
        Some(o) if o.uid().as_deref() == Some(owner.uid.as_str()) => state_of(o.metadata.deletion_timestamp.is_some(), o.finalizers()),
        _ => OwnerState::Dangling,
    })
}

async fn process(gc: Arc<Collector>, work: Work) -> anyhow::Result<Option<Duration>> {
    match work {
        Work::Dependent(uid) => process_dependent(&gc, &uid).await,
        Work::Owner(uid) => process_owner(&gc, &uid).await,
    }
}

async fn process_dependent(gc: &Collector, uid: &str) -> anyhow::Result<Option<Duration>> {
    let (item, has_dependents) = {
        let g = gc.graph.lock().unwrap();
        let Some(item) = g.items.get(uid).cloned() else { return Ok(None) };
        (item, g.dependents.get(uid).is_some_and(|d| !d.is_empty()))
    };
    if item.deleting || item.owners.is_empty() {
        return Ok(None);
    }
    let mut owners = Vec::with_capacity(item.owners.len());
    for o in &item.owners {
        owners.push((o.clone(), owner_state(gc, &item, o).await?));
    }
    let api = dynamic_api(gc, &item);
    match verdict(&owners, &item.finalizers, has_dependents) {
        Verdict::Keep => Ok(None),
        Verdict::FixReferences { remove, unblock } => {
            let refs: Vec<OwnerReference> = item
                .owners
                .iter()
                .filter(|o| !remove.contains(&o.uid))
                .map(|o| {
                    let mut o = o.clone();
                    if unblock.contains(&o.uid) {
                        o.block_owner_deletion = Some(false);
                    }
                    o
                })
                .collect();
            let patch = serde_json::json!({"metadata": {"ownerReferences": refs_or_null(&refs), "resourceVersion": item.resource_version}});
            match api.patch(&item.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => Ok(None),
                Err(e) if api_error_is(&e, 404) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        Verdict::Delete(policy) => {
            tracing::debug!(kind = %item.ar.kind, namespace = %item.namespace, name = %item.name, ?policy, "collecting garbage");
            let dp = DeleteParams {
                propagation_policy: Some(policy),
                preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
                ..Default::default()
            };
            match api.delete(&item.name, &dp).await {
                Ok(_) => Ok(None),
                Err(e) if api_error_is(&e, 404) || api_error_is(&e, 409) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    }
}

async fn process_owner(gc: &Collector, uid: &str) -> anyhow::Result<Option<Duration>> {
    let (owner, dependents) = {
        let g = gc.graph.lock().unwrap();
        let Some(owner) = g.items.get(uid).cloned() else { return Ok(None) };
        let deps: Vec<(String, bool)> = g
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| g.items.get(d).map(|i| (d.clone(), i)))
            .map(|(d, i)| (d, i.owners.iter().any(|o| o.uid == uid && o.block_owner_deletion == Some(true))))
            .collect();
        (owner, deps)
    };
    let remove_finalizer = |name: &str| {
        let rest: Vec<String> = owner.finalizers.iter().filter(|f| *f != name).cloned().collect();
        serde_json::json!({"metadata": {"finalizers": rest, "resourceVersion": owner.resource_version}})
    };
    let owner_api = dynamic_api(gc, &owner);
    let patch = match owner_step(&owner.finalizers, owner.deleting, &dependents) {
        OwnerStep::Nothing | OwnerStep::WaitForDependents => return Ok(None),
        OwnerStep::Orphan(deps) => {
            for d in deps {
                let Some(dep) = gc.graph.lock().unwrap().items.get(&d).cloned() else { continue };
                let refs: Vec<&OwnerReference> = dep.owners.iter().filter(|o| o.uid != uid).collect();
                let patch = serde_json::json!({"metadata": {"ownerReferences": refs_or_null(&refs), "resourceVersion": dep.resource_version}});
                match dynamic_api(gc, &dep).patch(&dep.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(e) if api_error_is(&e, 404) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            remove_finalizer(ORPHAN)
        }
        OwnerStep::FinishForeground => remove_finalizer(FOREGROUND),
    };
    match owner_api.patch(&owner.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(None),
        Err(e) if api_error_is(&e, 404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;

    fn owner(uid: &str, block: bool) -> OwnerReference {
        OwnerReference { api_version: "apps/v1".into(), kind: "ReplicaSet".into(), name: uid.into(), uid: uid.into(), controller: Some(true), block_owner_deletion: Some(block) }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn dependent_verdict_cases() {
        use OwnerState::*;
        let none: Vec<String> = vec![];
        let cases: Vec<(&str, Vec<(OwnerReference, OwnerState)>, Vec<String>, bool, Verdict)> = vec![
            ("no owners is never garbage", vec![], none.clone(), false, Verdict::Keep),
            ("a live owner keeps it", vec![(owner("a", true), Solid)], none.clone(), false, Verdict::Keep),
            ("all owners gone: deleted in the background", vec![(owner("a", true), Dangling)], none.clone(), false, Verdict::Delete(PropagationPolicy::Background)),
            (
                "one owner gone, one alive: the dead reference is dropped",
                vec![(owner("a", true), Dangling), (owner("b", true), Solid)],
                none.clone(),
                false,
                Verdict::FixReferences { remove: vec!["a".into()], unblock: vec![] },
            ),
            (
                "a foreground-deleting owner with a live co-owner: stop blocking it",
                vec![(owner("a", true), WaitingForDependents), (owner("b", true), Solid)],
                none.clone(),
                false,
                Verdict::FixReferences { remove: vec![], unblock: vec!["a".into()] },
            ),
            ("an owner waiting on us: we go", vec![(owner("a", true), WaitingForDependents)], none.clone(), false, Verdict::Delete(PropagationPolicy::Background)),
            (
                "an owner waiting on us, and we have dependents: they go first",
                vec![(owner("a", true), WaitingForDependents)],
                none.clone(),
                true,
                Verdict::Delete(PropagationPolicy::Foreground),
            ),
            (
                "our own orphan finalizer is honoured",
                vec![(owner("a", true), Dangling)],
                vec![ORPHAN.to_string()],
                true,
                Verdict::Delete(PropagationPolicy::Orphan),
            ),
        ];
        for (name, owners, finalizers, has_deps, want) in cases {
            assert_eq!(verdict(&owners, &finalizers, has_deps), want, "{name}");
        }
    }

    #[test]
    fn owner_step_cases() {
        let f = |s: &str| vec![s.to_string()];
        assert_eq!(owner_step(&f(ORPHAN), false, &[]), OwnerStep::Nothing, "not being deleted");
        assert_eq!(owner_step(&f(ORPHAN), true, &[("p".into(), true)]), OwnerStep::Orphan(vec!["p".into()]));
        assert_eq!(owner_step(&f(FOREGROUND), true, &[("p".into(), true)]), OwnerStep::WaitForDependents);
        assert_eq!(owner_step(&f(FOREGROUND), true, &[("p".into(), false)]), OwnerStep::FinishForeground, "non-blocking dependents do not hold it");
        assert_eq!(owner_step(&f(FOREGROUND), true, &[]), OwnerStep::FinishForeground);
        assert_eq!(owner_step(&[], true, &[]), OwnerStep::Nothing);
    }

    fn rs(uid: &str, owners: Vec<OwnerReference>, finalizers: &[&str], deleting: bool) -> Arc<ReplicaSet> {
        let mut r = ReplicaSet::default();
        r.metadata.uid = Some(uid.into());
        r.metadata.name = Some(uid.into());
        r.metadata.namespace = Some("default".into());
        r.metadata.owner_references = Some(owners);
        r.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
        if deleting {
            r.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        }
        Arc::new(r)
    }

    #[test]
    fn the_graph_queues_dependents_when_their_owner_goes() {
        let mut g = Graph::default();
        let w = g.observe(&Change::Applied { old: None, new: rs("child", vec![owner("parent", true)], &[], false) });
        assert_eq!(w, vec![Work::Dependent("child".into())]);
        g.observe(&Change::Applied { old: None, new: rs("parent", vec![], &[], false) });
        // Foreground deletion of the parent: the parent is processed and the child checked.
        let w = g.observe(&Change::Applied { old: None, new: rs("parent", vec![], &[FOREGROUND], true) });
        assert_eq!(w, vec![Work::Owner("parent".into()), Work::Dependent("child".into())]);
        // The child goes: its waiting owner is looked at again.
        let w = g.observe(&Change::Deleted(rs("child", vec![owner("parent", true)], &[], false)));
        assert_eq!(w, vec![Work::Owner("parent".into())]);
        assert!(!g.dependents.contains_key("parent"));
        // The parent goes: nothing depends on it any more.
        assert!(g.observe(&Change::Deleted(rs("parent", vec![], &[], false))).is_empty());
    }
}

/// The merge-patch value for a new owner list: null removes the field once no owner is
/// left, as upstream's object then has none (not an empty list).
fn refs_or_null<T: serde::Serialize>(refs: &[T]) -> serde_json::Value {
    if refs.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(refs)
    }
}
