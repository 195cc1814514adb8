//! Namespace lifecycle: a Namespace being deleted has every namespaced object
//! in it deleted (resources found through API discovery, pods first), its
//! deletion conditions reported, and, once empty, its `kubernetes` finalizer
//! removed through `namespaces/{name}/finalize`, after which the API server
//! removes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{verbs, Discovery, Scope};
use kube::ResourceExt;

use crate::informer::{route, Change, Key};
use crate::queue::Queue;
use crate::{api_error_is, Ctx};

pub const FINALIZER: &str = "kubernetes";

/// What deleting the contents found, per resource.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Progress {
    pub discovery_failed: Option<String>,
    pub delete_failed: Vec<String>,
    /// resource (plural.group) -> objects remaining
    pub remaining: BTreeMap<String, usize>,
    /// finalizer -> objects still carrying it
    pub finalizers: BTreeMap<String, usize>,
}

fn cond(type_: &str, status: bool, reason: &str, message: String, now: Timestamp) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(now)),
    }
}

/// The deletion conditions upstream reports for this progress.
pub fn conditions(p: &Progress, now: Timestamp) -> Vec<NamespaceCondition> {
    let mut out = vec![match &p.discovery_failed {
        Some(e) => cond("NamespaceDeletionDiscoveryFailure", true, "DiscoveryFailed", format!("Discovery failed for some groups: {e}"), now),
        None => cond("NamespaceDeletionDiscoveryFailure", false, "ResourcesDiscovered", "All resources successfully discovered".into(), now),
    }];
    out.push(cond("NamespaceDeletionGroupVersionParsingFailure", false, "ParsedGroupVersions", "All legacy kube types successfully parsed".into(), now));
    out.push(if p.delete_failed.is_empty() {
        cond("NamespaceDeletionContentFailure", false, "ContentDeleted", "All content successfully deleted, may be waiting on finalization".into(), now)
    } else {
        cond("NamespaceDeletionContentFailure", true, "ContentDeletionFailed", format!("Failed to delete all resource types, {} remaining: {}", p.delete_failed.len(), p.delete_failed.join(", ")), now)
    });
    out.push(if p.remaining.is_empty() {
        cond("NamespaceContentRemaining", false, "ContentRemoved", "All content successfully removed".into(), now)
    } else {
        let parts: Vec<String> = p.remaining.iter().map(|(r, n)| format!("{r} has {n} resource instances")).collect();
        cond("NamespaceContentRemaining", true, "SomeResourcesRemain", format!("Some resources are remaining: {}", parts.join(", ")), now)
    });
    out.push(if p.finalizers.is_empty() {
        cond("NamespaceFinalizersRemaining", false, "ContentHasNoFinalizers", "All content-preserving finalizers finished".into(), now)
    } else {
        let parts: Vec<String> = p.finalizers.iter().map(|(f, n)| format!("{f} in {n} resource instances")).collect();
        cond("NamespaceFinalizersRemaining", true, "SomeFinalizersRemain", format!("Some content in the namespace has finalizers remaining: {}", parts.join(", ")), now)
    });
    out
}

/// Merges new conditions into the old, keeping transition times where the
/// status did not change; None if nothing changed.
pub fn merge_conditions(old: &[NamespaceCondition], new: Vec<NamespaceCondition>) -> Option<Vec<NamespaceCondition>> {
    let mut out: Vec<NamespaceCondition> = old.iter().filter(|o| !new.iter().any(|n| n.type_ == o.type_)).cloned().collect();
    let mut changed = false;
    for mut n in new {
        match old.iter().find(|o| o.type_ == n.type_) {
            Some(o) if o.status == n.status && o.reason == n.reason && o.message == n.message => out.push(o.clone()),
            Some(o) => {
                if o.status == n.status {
                    n.last_transition_time = o.last_transition_time.clone();
                }
                changed = true;
                out.push(n);
            }
            None => {
                changed = true;
                out.push(n);
            }
        }
    }
    changed.then_some(out)
}

pub(crate) async fn run(ctx: Arc<Ctx>) -> anyhow::Result<()> {
    ctx.namespaces.synced().await;
    let queue: Queue<Key> = Queue::new();
    let all = {
        let ctx = ctx.clone();
        move || ctx.namespaces.all().iter().filter(|n| n.metadata.deletion_timestamp.is_some()).map(|n| Key::new("", n.name_any())).collect::<Vec<_>>()
    };
    for key in all() {
        queue.add(key);
    }
    let namespaces = route(
        ctx.namespaces.clone(),
        queue.clone(),
        |ch: &Change<Namespace>| match ch {
            Change::Applied { new, .. } if new.metadata.deletion_timestamp.is_some() => vec![Key::new("", new.name_any())],
            _ => vec![],
        },
        all.clone(),
    );
    let c = ctx.clone();
    let worker = queue.serve("namespace", move |key| sync(c.clone(), key));
    tokio::join!(namespaces, worker);
    Ok(())
}

async fn sync(ctx: Arc<Ctx>, key: Key) -> anyhow::Result<Option<Duration>> {
    let Some(ns) = ctx.namespaces.get("", &key.name) else { return Ok(None) };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(None);
    }
    let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(None);
    }
    let progress = delete_content(&ctx, &key.name).await;
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let old = ns.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    if let Some(conds) = merge_conditions(&old, conditions(&progress, Timestamp::now())) {
        let mut updated = (*ns).clone();
        updated.status.get_or_insert_with(Default::default).conditions = Some(conds);
        match api.replace_status(&key.name, &PostParams::default(), &updated).await {
            Ok(_) | Err(_) => {} // conditions are informative; the finalize below matters
        }
    }
    if progress.discovery_failed.is_some() || !progress.delete_failed.is_empty() || !progress.remaining.is_empty() {
        // Graceful deletions and finalizers take time; look again soon.
        return Ok(Some(Duration::from_secs(2)));
    }
    let latest = api.get(&key.name).await?;
    let mut finalized = latest.clone();
    let spec = finalized.spec.get_or_insert_with(Default::default);
    spec.finalizers = Some(spec.finalizers.clone().unwrap_or_default().into_iter().filter(|f| f != FINALIZER).collect());
    match api.replace_subresource("finalize", &key.name, &PostParams::default(), &finalized).await {
        Ok(_) => Ok(None),
        Err(e) if api_error_is(&e, 404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Deletes what is in the namespace and reports what is left.
async fn delete_content(ctx: &Ctx, ns: &str) -> Progress {
    let mut p = Progress::default();
    let discovery = match Discovery::new(ctx.client.clone()).run().await {
        Ok(d) => d,
        Err(e) => {
            p.discovery_failed = Some(e.to_string());
            return p;
        }
    };
    let mut resources: Vec<ApiResource> = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope == Scope::Namespaced && caps.supports_operation(verbs::LIST) && caps.supports_operation(verbs::DELETE) {
                resources.push(ar);
            }
        }
    }
    // Pods first, so workloads stop before the objects they use go away.
    resources.sort_by_key(|ar| (!(ar.group.is_empty() && ar.plural == "pods"), ar.group.clone(), ar.plural.clone()));
    for ar in resources {
        let label = if ar.group.is_empty() { ar.plural.clone() } else { format!("{}.{}", ar.plural, ar.group) };
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ar);
        let list = match api.list(&ListParams::default()).await {
            Ok(l) => l,
            Err(e) if api_error_is(&e, 404) || api_error_is(&e, 405) => continue,
            Err(e) => {
                p.delete_failed.push(format!("{label}: {e}"));
                continue;
            }
        };
        let mut left = 0;
        for obj in &list.items {
            for f in obj.finalizers() {
                *p.finalizers.entry(f.clone()).or_default() += 1;
            }
            left += 1;
            if obj.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let dp = DeleteParams { preconditions: obj.uid().map(|uid| kube::api::Preconditions { uid: Some(uid), resource_version: None }), ..DeleteParams::background() };
            match api.delete(&obj.name_any(), &dp).await {
                // A Status answer means it was deleted outright; an object, that it is going.
                Ok(answer) if answer.is_right() => left -= 1,
                Ok(_) => {}
                Err(e) if api_error_is(&e, 404) || api_error_is(&e, 409) => left -= 1,
                Err(e) => p.delete_failed.push(format!("{label}: {e}")),
            }
        }
        if left > 0 {
            p.remaining.insert(label, left);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_namespace_reports_all_content_removed() {
        let c = conditions(&Progress::default(), Timestamp::UNIX_EPOCH);
        let get = |t: &str| c.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(get("NamespaceContentRemaining").reason.as_deref(), Some("ContentRemoved"));
        assert_eq!(get("NamespaceContentRemaining").status, "False");
        assert_eq!(get("NamespaceDeletionDiscoveryFailure").reason.as_deref(), Some("ResourcesDiscovered"));
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn remaining_content_and_finalizers_are_named() {
        let p = Progress {
            remaining: [("pods".to_string(), 2)].into(),
            finalizers: [("example.com/hold".to_string(), 1)].into(),
            ..Default::default()
        };
        let c = conditions(&p, Timestamp::UNIX_EPOCH);
        let get = |t: &str| c.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(get("NamespaceContentRemaining").message.as_deref(), Some("Some resources are remaining: pods has 2 resource instances"));
        assert_eq!(get("NamespaceFinalizersRemaining").status, "True");
    }

    #[test]
    fn unchanged_conditions_are_not_rewritten_and_keep_their_times() {
        let first = conditions(&Progress::default(), Timestamp::UNIX_EPOCH);
        assert!(merge_conditions(&first, conditions(&Progress::default(), Timestamp::from_second(99).unwrap())).is_none());
        let busy = Progress { remaining: [("pods".to_string(), 1)].into(), ..Default::default() };
        let merged = merge_conditions(&first, conditions(&busy, Timestamp::from_second(99).unwrap())).unwrap();
        let remaining = merged.iter().find(|c| c.type_ == "NamespaceContentRemaining").unwrap();
        assert_eq!(remaining.last_transition_time, Some(Time(Timestamp::from_second(99).unwrap())));
        let discovery = merged.iter().find(|c| c.type_ == "NamespaceDeletionDiscoveryFailure").unwrap();
        assert_eq!(discovery.last_transition_time, Some(Time(Timestamp::UNIX_EPOCH)));
    }
}
