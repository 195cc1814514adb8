//! ReplicaSet controller: keeps `spec.replicas` active pods made from the
//! template (generateName `<rs>-`, a controller ownerReference), deleting the
//! least valuable pods first when there are too many, and reports status
//! (replicas, fullyLabeled, ready, available, observedGeneration, ReplicaFailure).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::ResourceExt;

use crate::expectations::Expectations;
use crate::informer::{route, Change, Key};
use crate::pod_state;
use crate::queue::Queue;
use crate::recorder::{Recorder, NORMAL, WARNING};
use crate::{api_error_is, Ctx};

/// At most this many pods are created or deleted in one sync, as upstream's burstReplicas.
pub const BURST_REPLICAS: usize = 500;
pub const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The decision for one ReplicaSet.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// How many pods to create from the template.
    pub create: usize,
    /// Which pods to delete, most deletable first.
    pub delete: Vec<String>,
    /// Controlled pods the selector no longer matches: they are let go.
    pub release: Vec<String>,
    /// The status to report, when it differs from the current one.
    pub status: Option<ReplicaSetStatus>,
    /// Look again after this long (a pod will have been ready for minReadySeconds).
    pub requeue: Option<Duration>,
}

/// Decides from the ReplicaSet and the pods it controls. `manage` is false while
/// earlier creates or deletes are not yet visible (or the set is being deleted):
/// then only status is reported.
pub fn decide(rs: &ReplicaSet, pods: &[Arc<Pod>], manage: bool, failure: Option<(&str, &str)>, now: Timestamp) -> Decision {
    let spec = rs.spec.as_ref();
    let want = spec.and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let selector = spec.map(|s| s.selector.clone()).unwrap_or_default();
    let (matching, strays): (Vec<&Arc<Pod>>, Vec<&Arc<Pod>>) =
        pods.iter().partition(|p| crate::selector::matches(&selector, p.metadata.labels.as_ref()));
    let active: Vec<&Arc<Pod>> = matching.into_iter().filter(|p| pod_state::is_active(p)).collect();
    let mut d = Decision::default();
    if manage {
        d.release = strays.iter().filter(|p| !pod_state::is_terminating(p)).map(|p| p.name_any()).collect();
    }
    if manage {
        if active.len() < want {
            d.create = (want - active.len()).min(BURST_REPLICAS);
        } else if active.len() > want {
            let n = (active.len() - want).min(BURST_REPLICAS);
            d.delete = deletion_order(&active).into_iter().take(n).map(|p| p.name_any()).collect();
        }
    }
    let template_labels = spec.and_then(|s| s.template.as_ref()).and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
    let mut status = ReplicaSetStatus {
        replicas: active.len() as i32,
        observed_generation: rs.metadata.generation,
        ..Default::default()
    };
    let (mut labelled, mut ready, mut available) = (0, 0, 0);
    for p in &active {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if template_labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            labelled += 1;
        }
        if pod_state::is_ready(p) {
            ready += 1;
        }
        match pod_state::availability(p, min_ready, now) {
            (true, _) => available += 1,
            (false, Some(wait)) => d.requeue = Some(d.requeue.map_or(wait, |w| w.min(wait))),
            (false, None) => {}
        }
    }
    status.fully_labeled_replicas = Some(labelled);
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    let old = rs.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> =
        old.conditions.clone().unwrap_or_default().into_iter().filter(|c| c.type_ != "ReplicaFailure").collect();
    let old_failure = old.conditions.iter().flatten().find(|c| c.type_ == "ReplicaFailure").cloned();
    match (failure, old_failure) {
        (Some(_), Some(existing)) => conditions.push(existing),
        (Some((reason, message)), None) => conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(Time(now)),
        }),
        (None, _) => {}
    }
    status.conditions = (!conditions.is_empty()).then_some(conditions);
    if normalized(&old) != normalized(&status) {
        d.status = Some(status);
    }
    d
}

/// Status compared with absent counters read as zero, as the server stores them.
fn normalized(s: &ReplicaSetStatus) -> (i32, i32, i32, i32, Option<i64>, Vec<ReplicaSetCondition>) {
    (
        s.replicas,
        s.fully_labeled_replicas.unwrap_or(0),
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
        s.observed_generation,
        s.conditions.clone().unwrap_or_default(),
    )
}

/// Most deletable first, as upstream ranks: unscheduled, then pending, then not
/// ready, then cheaper (deletion-cost), then doubled up on a node, then ready for
/// less time, then restarted more, then newer.
pub fn deletion_order<'a>(pods: &[&'a Arc<Pod>]) -> Vec<&'a Arc<Pod>> {
    let node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty());
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in pods {
        if let Some(n) = node(p) {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let phase_rank = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    };
    let cost = |p: &Pod| {
        p.annotations().get(DELETION_COST_ANNOTATION).and_then(|c| c.parse::<i32>().ok()).unwrap_or(0)
    };
    let ready_since = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
            .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
    };
    let restarts = |p: &Pod| -> i32 {
        p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).map(|cs| cs.iter().map(|c| c.restart_count).sum()).unwrap_or(0)
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let mut out: Vec<&Arc<Pod>> = pods.to_vec();
    out.sort_by(|a, b| {
        let (na, nb) = (node(a), node(b));
        na.is_some()
            .cmp(&nb.is_some())
            .then(phase_rank(a).cmp(&phase_rank(b)))
            .then(pod_state::is_ready(a).cmp(&pod_state::is_ready(b)))
            .then(cost(a).cmp(&cost(b)))
            .then_with(|| {
                let da = na.map(|n| per_node[&n]).unwrap_or(0);
                let db = nb.map(|n| per_node[&n]).unwrap_or(0);
                db.cmp(&da)
            })
            .then_with(|| match (ready_since(a), ready_since(b)) {
                (Some(x), Some(y)) => y.cmp(&x),
                _ => Ordering::Equal,
            })
            .then(restarts(b).cmp(&restarts(a)))
            .then(created(b).cmp(&created(a)))
            .then(a.name_any().cmp(&b.name_any()))
    });
    out
}

pub fn controller_ref(rs: &ReplicaSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: rs.name_any(),
        uid: rs.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod made from the ReplicaSet's template.
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut prefix = format!("{}-", rs.name_any());
    prefix.truncate(58);
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: rs.namespace(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_ref(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// The ReplicaSet controlling this pod, if any.
fn owner_key(pod: &Pod) -> Option<Key> {
    let r = pod_state::controller_ref(&pod.metadata)?;
    (r.kind == "ReplicaSet" && r.api_version.starts_with("apps/")).then(|| Key::new(pod.namespace().unwrap_or_default(), &r.name))
}

struct State {
    ctx: Arc<Ctx>,
    writes: Expectations<Key>,
    recorder: Recorder,
    /// The last create/delete failure per ReplicaSet, for its ReplicaFailure condition.
    failures: std::sync::Mutex<HashMap<Key, (String, String)>>,
}

pub(crate) async fn run(ctx: Arc<Ctx>) -> anyhow::Result<()> {
    tokio::join!(ctx.pods.synced(), ctx.replica_sets.synced());
    let queue: Queue<Key> = Queue::new();
    let all = {
        let ctx = ctx.clone();
        move || ctx.replica_sets.all().iter().map(|r| Key::of(&**r)).collect::<Vec<_>>()
    };
    for key in all() {
        queue.add(key);
    }
    let sets = route(ctx.replica_sets.clone(), queue.clone(), |ch| ch.objects().iter().map(|r| Key::of(&***r)).collect(), all.clone());
    let pods = route(ctx.pods.clone(), queue.clone(), |ch: &Change<Pod>| ch.objects().iter().filter_map(|p| owner_key(p)).collect(), all.clone());
    let state = Arc::new(State {
        recorder: Recorder::new(ctx.client.clone(), "replicaset-controller"),
        ctx,
        writes: Expectations::default(),
        failures: Default::default(),
    });
    let worker = queue.serve("replicaset", move |key| sync(state.clone(), key));
    tokio::join!(sets, pods, worker);
    Ok(())
}

async fn sync(st: Arc<State>, key: Key) -> anyhow::Result<Option<Duration>> {
    let ctx = &st.ctx;
    let Some(rs) = ctx.replica_sets.get(&key.namespace, &key.name) else {
        st.writes.forget(&key);
        st.failures.lock().unwrap().remove(&key);
        return Ok(None);
    };
    let uid = rs.uid().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .in_namespace(&key.namespace)
        .into_iter()
        .filter(|p| pod_state::is_controlled_by(&p.metadata, &uid))
        .collect();
    let seen = |name: &str| ctx.pods.get(&key.namespace, name).and_then(|p| p.resource_version());
    let manage = st.writes.satisfied(&key, seen) && rs.metadata.deletion_timestamp.is_none();
    let failure = st.failures.lock().unwrap().get(&key).cloned();
    let d = decide(&rs, &pods, manage, failure.as_ref().map(|(r, m)| (r.as_str(), m.as_str())), Timestamp::now());

    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let mut error: Option<(String, String)> = None;
    if d.create > 0 {
        let template = pod_from_template(&rs);
        let pp = PostParams::default();
        // Slow start, as upstream: batches of 1, 2, 4, ... stop at the first failure,
        // so a quota or admission error costs one request, not hundreds.
        let mut left = d.create;
        let mut batch = 1;
        'batches: while left > 0 {
            let n = batch.min(left);
            let results: Vec<_> = stream::iter(0..n)
                .map(|_| pod_api.create(&pp, &template))
                .buffer_unordered(16)
                .collect()
                .await;
            for r in results {
                match r {
                    Ok(p) => {
                        st.writes.created(&key, &p.name_any());
                        st.recorder.publish(&*rs, NORMAL, "SuccessfulCreate", format!("Created pod: {}", p.name_any()));
                    }
                    Err(e) => {
                        st.recorder.publish(&*rs, WARNING, "FailedCreate", format!("Error creating: {e}"));
                        error = Some(("FailedCreate".into(), e.to_string()));
                    }
                }
            }
            if error.is_some() {
                break 'batches;
            }
            left -= n;
            batch *= 2;
        }
    }
    for name in &d.release {
        // Relabelled away from the set: drop our reference, keep the pod (upstream's release).
        let Some(p) = pods.iter().find(|p| &p.name_any() == name) else { continue };
        let refs: Vec<OwnerReference> = p.owner_references().iter().filter(|r| r.uid != uid).cloned().collect();
        let patch = serde_json::json!({"metadata": {"ownerReferences": refs, "resourceVersion": p.resource_version()}});
        match pod_api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(e) if api_error_is(&e, 404) || api_error_is(&e, 409) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for name in &d.delete {
        let uid = pods.iter().find(|p| &p.name_any() == name).and_then(|p| p.uid());
        let dp = DeleteParams { preconditions: Some(Preconditions { uid, resource_version: None }), ..Default::default() };
        match pod_api.delete(name, &dp).await {
            Ok(_) => {
                st.writes.deleted(&key, name);
                st.recorder.publish(&*rs, NORMAL, "SuccessfulDelete", format!("Deleted pod: {name}"));
            }
            Err(e) if api_error_is(&e, 404) => {}
            Err(e) => {
                st.recorder.publish(&*rs, WARNING, "FailedDelete", format!("Error deleting: {e}"));
                error = Some(("FailedDelete".into(), e.to_string()));
            }
        }
    }
    {
        let mut f = st.failures.lock().unwrap();
        match &error {
            Some(e) => {
                f.insert(key.clone(), e.clone());
            }
            None if d.create > 0 || !d.delete.is_empty() => {
                f.remove(&key);
            }
            None => {}
        }
    }
    // Report status from what the cache shows now; the next event refines it.
    let failure = st.failures.lock().unwrap().get(&key).cloned();
    let status = decide(&rs, &pods, false, failure.as_ref().map(|(r, m)| (r.as_str(), m.as_str())), Timestamp::now()).status;
    if let Some(status) = status {
        let mut updated = (*rs).clone();
        updated.status = Some(status);
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &key.namespace);
        match api.replace_status(&key.name, &PostParams::default(), &updated).await {
            Ok(_) => {}
            Err(e) if api_error_is(&e, 404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some((reason, message)) = error {
        anyhow::bail!("{reason}: {message}");
    }
    Ok(d.requeue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_state::fixtures::*;
    use std::collections::BTreeMap;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn rs(replicas: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web-abc".into()),
                namespace: Some("default".into()),
                uid: Some("rs-uid".into()),
                generation: Some(3),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                selector: LabelSelector { match_labels: Some(labels_of(&[("app", "web")])), ..Default::default() },
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(labels_of(&[("app", "web"), ("tier", "front")])), ..Default::default() }),
                    spec: Some(Default::default()),
                }),
                min_ready_seconds: None,
            }),
            status: None,
        }
    }

    fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn owned(name: &str) -> Pod {
        pod(name, &[("app", "web"), ("tier", "front")])
    }

    #[test]
    fn too_few_pods_are_topped_up_and_too_many_trimmed() {
        let pods: Vec<Arc<Pod>> = vec![Arc::new(owned("a"))];
        let d = decide(&rs(3), &pods, true, None, Timestamp::UNIX_EPOCH);
        assert_eq!((d.create, d.delete.len()), (2, 0));
        let d = decide(&rs(0), &pods, true, None, Timestamp::UNIX_EPOCH);
        assert_eq!(d.delete, vec!["a".to_string()]);
    }

    #[test]
    fn nothing_is_created_or_deleted_while_earlier_writes_are_unobserved() {
        let d = decide(&rs(3), &[], false, None, Timestamp::UNIX_EPOCH);
        assert_eq!((d.create, d.delete.len()), (0, 0));
    }

    #[test]
    fn terminating_and_finished_pods_do_not_count_as_replicas() {
        let mut done = owned("done");
        done.status.as_mut().unwrap().phase = Some("Failed".into());
        let pods = vec![Arc::new(terminating(owned("leaving"))), Arc::new(done), Arc::new(owned("ok"))];
        let d = decide(&rs(2), &pods, true, None, Timestamp::UNIX_EPOCH);
        assert_eq!(d.create, 1);
        assert_eq!(d.status.unwrap().replicas, 1);
    }

    #[test]
    fn scale_down_removes_unscheduled_then_pending_then_unready_pods_first() {
        let running = |name: &str, node: &str, is_ready: bool| Arc::new(ready(with_ips(on_node(owned(name), node), &["10.0.0.1"]), is_ready));
        let unscheduled = Arc::new(owned("unscheduled"));
        let pending = Arc::new(on_node(owned("pending"), "n1"));
        let unready = running("unready", "n2", false);
        let ready_a = running("ready-a", "n3", true);
        let pods = [&ready_a, &unready, &pending, &unscheduled];
        let order: Vec<String> = deletion_order(&pods).iter().map(|p| p.name_any()).collect();
        assert_eq!(order, vec!["unscheduled", "pending", "unready", "ready-a"]);
    }

    #[test]
    fn scale_down_prefers_pods_doubled_up_on_a_node_and_honours_deletion_cost() {
        let running = |name: &str, node: &str| Arc::new(ready(with_ips(on_node(owned(name), node), &["10.0.0.1"]), true));
        let (a, b, c) = (running("alone", "n1"), running("pair-1", "n2"), running("pair-2", "n2"));
        let order: Vec<String> = deletion_order(&[&a, &b, &c]).iter().map(|p| p.name_any()).collect();
        assert_eq!(order[2], "alone");
        let mut cheap = (*a).clone();
        cheap.metadata.annotations = Some(labels_of(&[(DELETION_COST_ANNOTATION, "-10")]));
        let cheap = Arc::new(cheap);
        assert_eq!(deletion_order(&[&b, &c, &cheap])[0].name_any(), "alone");
    }

    #[test]
    fn status_counts_ready_available_and_labelled_pods() {
        let mut set = rs(3);
        set.spec.as_mut().unwrap().min_ready_seconds = Some(30);
        let now = Timestamp::from_second(10).unwrap();
        let mut relabelled = ready(owned("c"), true);
        // Still selected (app=web) but lacking a template label: not fully labelled.
        relabelled.metadata.labels = Some(labels_of(&[("app", "web")]));
        let pods = vec![Arc::new(ready(owned("a"), true)), Arc::new(ready(owned("b"), false)), Arc::new(relabelled)];
        let d = decide(&set, &pods, true, None, now);
        let s = d.status.unwrap();
        assert_eq!((s.replicas, s.fully_labeled_replicas, s.ready_replicas, s.available_replicas), (3, Some(2), Some(2), Some(0)));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(d.requeue, Some(Duration::from_secs(20)), "look again when the ready pods become available");
    }

    #[test]
    fn a_failed_create_sets_replica_failure_until_a_write_succeeds() {
        let d = decide(&rs(1), &[], true, Some(("FailedCreate", "quota")), Timestamp::UNIX_EPOCH);
        let conds = d.status.unwrap().conditions.unwrap();
        assert_eq!(conds[0].type_, "ReplicaFailure");
        assert_eq!(conds[0].reason.as_deref(), Some("FailedCreate"));
        let mut failing = rs(1);
        failing.status = Some(ReplicaSetStatus { conditions: Some(conds), observed_generation: Some(3), ..Default::default() });
        let d = decide(&failing, &[], true, None, Timestamp::UNIX_EPOCH);
        assert_eq!(d.status.unwrap().conditions, None);
    }

    #[test]
    fn a_pod_relabelled_out_of_the_selector_is_released_and_replaced() {
        let pods = vec![Arc::new(owned("a")), Arc::new(pod("moved", &[("app", "debug")]))];
        let d = decide(&rs(2), &pods, true, None, Timestamp::UNIX_EPOCH);
        assert_eq!(d.release, vec!["moved".to_string()]);
        assert_eq!(d.create, 1);
    }

    #[test]
    fn pods_from_the_template_are_owned_and_named_after_the_set() {
        let p = pod_from_template(&rs(1));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-abc-"));
        assert_eq!(p.metadata.labels, Some(labels_of(&[("app", "web"), ("tier", "front")])));
        let owner = &p.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("ReplicaSet", "rs-uid", Some(true)));
    }
}
