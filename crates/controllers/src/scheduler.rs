//! The default scheduler, reduced to what a small cluster needs: a pod without a
//! node goes to the feasible node (schedulable, taints tolerated, nodeSelector
//! and required node affinity matched, pod capacity left) with the fewest pods,
//! Ready nodes first. It is bound through `pods/binding`; a pod that fits
//! nowhere gets `PodScheduled=False/Unschedulable` and a FailedScheduling event.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Node, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference, Pod, PodCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::ResourceExt;

use crate::informer::{route, Change, Key};
use crate::pod_state;
use crate::queue::Queue;
use crate::recorder::{Recorder, NORMAL, WARNING};
use crate::{api_error_is, Ctx};

pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// How often an unschedulable pod is tried again even if no node changed.
const RETRY_UNSCHEDULABLE: Duration = Duration::from_secs(30);

/// Whether this scheduler should place the pod.
pub fn wants_scheduling(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.node_name.as_deref()).unwrap_or("").is_empty()
        && spec.and_then(|s| s.scheduler_name.as_deref()).unwrap_or(DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER
        && pod_state::is_active(pod)
}

fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t.effect.as_deref().unwrap_or("").is_empty() || t.effect.as_deref() == Some(taint.effect.as_str());
        let key = t.key.as_deref().unwrap_or("");
        match t.operator.as_deref().unwrap_or("Equal") {
            "Exists" => effect_ok && (key.is_empty() || key == taint.key),
            _ => effect_ok && key == taint.key && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        }
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (value.and_then(|v| v.parse::<i64>().ok()), values.first().and_then(|b| b.parse::<i64>().ok())) else {
                return false;
            };
            if r.operator == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// A term with no requirements matches no node, as upstream.
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let labels = node.labels();
    let name = node.name_any();
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| requirement_matches(r, labels.get(&r.key)))
        && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&name)))
}

fn affinity_matches(pod: &Pod, node: &Node) -> bool {
    let spec = pod.spec.as_ref();
    let labels = node.labels();
    let selector_ok = spec
        .and_then(|s| s.node_selector.as_ref())
        .is_none_or(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let required = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    selector_ok && required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)))
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn pod_capacity(node: &Node) -> Option<usize> {
    node.status.as_ref()?.allocatable.as_ref()?.get("pods")?.0.parse().ok()
}

/// The decision: a node name, or why no node fits (the FailedScheduling message).
pub fn select_node(pod: &Pod, nodes: &[Arc<Node>], pods_on: &dyn Fn(&str) -> usize) -> Result<String, String> {
    if nodes.is_empty() {
        return Err("no nodes available to schedule pods".into());
    }
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut feasible: Vec<&Arc<Node>> = Vec::new();
    for node in nodes {
        let spec = node.spec.clone().unwrap_or_default();
        let unschedulable_taint = Taint { key: "node.kubernetes.io/unschedulable".into(), effect: "NoSchedule".into(), ..Default::default() };
        let reason = if spec.unschedulable.unwrap_or(false) && !tolerates(&tolerations, &unschedulable_taint) {
            Some("node(s) were unschedulable".to_string())
        } else if let Some(t) = spec
            .taints
            .iter()
            .flatten()
            .find(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerates(&tolerations, t))
        {
            Some(format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value.clone().unwrap_or_default()))
        } else if !affinity_matches(pod, node) {
            Some("node(s) didn't match Pod's node affinity/selector".to_string())
        } else if pod_capacity(node).is_some_and(|cap| pods_on(&node.name_any()) >= cap) {
            Some("Too many pods".to_string())
        } else {
            None
        };
        match reason {
            Some(r) => *reasons.entry(r).or_default() += 1,
            None => feasible.push(node),
        }
    }
    if feasible.is_empty() {
        let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        return Err(format!("0/{} nodes are available: {}.", nodes.len(), parts.join(", ")));
    }
    // Ready nodes first, then fewest pods, then name for a stable choice.
    feasible
        .into_iter()
        .min_by_key(|n| (!is_ready(n), pods_on(&n.name_any()), n.name_any()))
        .map(|n| n.name_any())
        .ok_or_else(|| "no feasible node".into())
}

/// Whether a node update can change where pods fit (heartbeats cannot).
fn placement_changed(old: &Node, new: &Node) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || is_ready(old) != is_ready(new)
        || old.status.as_ref().and_then(|s| s.allocatable.as_ref()) != new.status.as_ref().and_then(|s| s.allocatable.as_ref())
}

/// Pods per node, kept from pod events, plus bindings not yet seen (assumed).
#[derive(Default)]
struct Usage {
    bound: HashMap<String, HashSet<String>>,
    node_of: HashMap<String, String>,
    assumed: HashMap<String, String>,
}

impl Usage {
    fn observe(&mut self, change: &Change<Pod>) {
        let (pod, gone) = match change {
            Change::Applied { new, .. } => (new, false),
            Change::Deleted(p) => (p, true),
        };
        let uid = pod.uid().unwrap_or_default();
        if let Some(old) = self.node_of.remove(&uid) {
            if let Some(set) = self.bound.get_mut(&old) {
                set.remove(&uid);
            }
        }
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty());
        if gone || pod_state::is_terminal(pod) {
            self.assumed.remove(&uid);
            return;
        }
        if let Some(node) = node {
            self.assumed.remove(&uid);
            self.bound.entry(node.clone()).or_default().insert(uid.clone());
            self.node_of.insert(uid, node);
        }
    }

    fn count(&self, node: &str) -> usize {
        self.bound.get(node).map_or(0, HashSet::len) + self.assumed.values().filter(|n| *n == node).count()
    }
}

struct State {
    ctx: Arc<Ctx>,
    usage: Mutex<Usage>,
    recorder: Recorder,
}

pub(crate) async fn run(ctx: Arc<Ctx>) -> anyhow::Result<()> {
    tokio::join!(ctx.pods.synced(), ctx.nodes.synced());
    let queue: Queue<Key> = Queue::new();
    let st = Arc::new(State { ctx: ctx.clone(), usage: Default::default(), recorder: Recorder::new(ctx.client.clone(), DEFAULT_SCHEDULER) });
    let pending = {
        let ctx = ctx.clone();
        move || ctx.pods.all().iter().filter(|p| wants_scheduling(p)).map(|p| Key::of(&**p)).collect::<Vec<_>>()
    };
    {
        let mut usage = st.usage.lock().unwrap();
        for p in ctx.pods.all() {
            usage.observe(&Change::Applied { old: None, new: p });
        }
    }
    for key in pending() {
        queue.add(key);
    }
    let s = st.clone();
    let pods = route(
        ctx.pods.clone(),
        queue.clone(),
        move |ch: &Change<Pod>| {
            s.usage.lock().unwrap().observe(ch);
            match ch {
                Change::Applied { new, .. } if wants_scheduling(new) => vec![Key::of(&**new)],
                _ => vec![],
            }
        },
        pending.clone(),
    );
    // A node that appears or changes may fit pods that fit nowhere before.
    let nodes = route(
        ctx.nodes.clone(),
        queue.clone(),
        {
            let pending = pending.clone();
            move |ch: &Change<Node>| match ch {
                Change::Applied { old: Some(old), new } if !placement_changed(old, new) => vec![],
                Change::Deleted(_) => vec![],
                _ => pending(),
            }
        },
        pending.clone(),
    );
    let s = st.clone();
    let worker = queue.serve("scheduler", move |key| schedule_one(s.clone(), key));
    tokio::join!(pods, nodes, worker);
    Ok(())
}

async fn schedule_one(st: Arc<State>, key: Key) -> anyhow::Result<Option<Duration>> {
    let ctx = &st.ctx;
    let Some(pod) = ctx.pods.get(&key.namespace, &key.name) else { return Ok(None) };
    let uid = pod.uid().unwrap_or_default();
    if !wants_scheduling(&pod) || st.usage.lock().unwrap().assumed.contains_key(&uid) {
        return Ok(None);
    }
    let nodes = ctx.nodes.all();
    let choice = {
        let usage = st.usage.lock().unwrap();
        select_node(&pod, &nodes, &|n| usage.count(n))
    };
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.namespace);
    match choice {
        Ok(node) => {
            let binding = Binding {
                metadata: ObjectMeta { name: Some(key.name.clone()), namespace: Some(key.namespace.clone()), uid: pod.uid(), ..Default::default() },
                target: ObjectReference { api_version: Some("v1".into()), kind: Some("Node".into()), name: Some(node.clone()), ..Default::default() },
            };
            st.usage.lock().unwrap().assumed.insert(uid.clone(), node.clone());
            match api.create_subresource::<_, serde_json::Value>("binding", &key.name, &PostParams::default(), &binding).await {
                Ok(_) => {
                    st.recorder.publish(&*pod, NORMAL, "Scheduled", format!("Successfully assigned {key} to {node}"));
                    Ok(None)
                }
                Err(e) => {
                    st.usage.lock().unwrap().assumed.remove(&uid);
                    // Already bound (by someone else) or gone: nothing left to do.
                    if api_error_is(&e, 409) || api_error_is(&e, 404) {
                        return Ok(None);
                    }
                    Err(e.into())
                }
            }
        }
        Err(message) => {
            st.recorder.publish(&*pod, WARNING, "FailedScheduling", message.clone());
            let mut updated = (*pod).clone();
            let status = updated.status.get_or_insert_with(Default::default);
            let conds = status.conditions.get_or_insert_with(Vec::new);
            let same = conds.iter().any(|c| {
                c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable") && c.message.as_deref() == Some(&message)
            });
            if !same {
                conds.retain(|c| c.type_ != "PodScheduled");
                conds.push(PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some(message),
                    last_transition_time: Some(Time(Timestamp::now())),
                    ..Default::default()
                });
                match api.replace_status(&key.name, &PostParams::default(), &updated).await {
                    Ok(_) => {}
                    Err(e) if api_error_is(&e, 404) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Some(RETRY_UNSCHEDULABLE))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_state::fixtures::pod;
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeCondition, NodeSelector, NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn node(name: &str, labels: &[(&str, &str)], ready: bool) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
                ..Default::default()
            }),
        })
    }

    fn with_spec(n: Arc<Node>, f: impl FnOnce(&mut NodeSpec)) -> Arc<Node> {
        let mut n = (*n).clone();
        f(n.spec.as_mut().unwrap());
        Arc::new(n)
    }

    fn zero(_: &str) -> usize {
        0
    }

    #[test]
    fn pods_spread_to_the_node_with_fewest_pods() {
        let nodes = vec![node("a", &[], true), node("b", &[], true)];
        let p = pod("p", &[]);
        assert_eq!(select_node(&p, &nodes, &|n| if n == "a" { 2 } else { 1 }), Ok("b".into()));
        assert_eq!(select_node(&p, &nodes, &zero), Ok("a".into()), "ties break by name");
    }

    #[test]
    fn ready_nodes_are_preferred_but_not_required() {
        let p = pod("p", &[]);
        let nodes = vec![node("busy-ready", &[], true), node("idle-unready", &[], false)];
        assert_eq!(select_node(&p, &nodes, &|n| if n == "busy-ready" { 5 } else { 0 }), Ok("busy-ready".into()));
        assert_eq!(select_node(&p, &[node("only", &[], false)], &zero), Ok("only".into()));
    }

    #[test]
    fn cordoned_and_tainted_nodes_are_skipped_unless_tolerated() {
        let cordoned = with_spec(node("cordoned", &[], true), |s| s.unschedulable = Some(true));
        let tainted = with_spec(node("tainted", &[], true), |s| {
            s.taints = Some(vec![Taint { key: "gpu".into(), value: Some("yes".into()), effect: "NoSchedule".into(), ..Default::default() }])
        });
        let nodes = vec![cordoned, tainted];
        let p = pod("p", &[]);
        assert_eq!(
            select_node(&p, &nodes, &zero),
            Err("0/2 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 1 node(s) were unschedulable.".into())
        );
        let mut tolerant = p.clone();
        tolerant.spec.as_mut().unwrap().tolerations =
            Some(vec![Toleration { key: Some("gpu".into()), operator: Some("Exists".into()), ..Default::default() }]);
        assert_eq!(select_node(&tolerant, &nodes, &zero), Ok("tainted".into()));
    }

    #[test]
    fn node_selector_and_required_affinity_are_honoured() {
        let nodes = vec![node("ssd", &[("disk", "ssd"), ("rank", "5")], true), node("hdd", &[("disk", "hdd"), ("rank", "1")], true)];
        let mut p = pod("p", &[]);
        p.spec.as_mut().unwrap().node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
        assert_eq!(select_node(&p, &nodes, &zero), Ok("ssd".into()));

        let mut q = pod("q", &[]);
        q.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement { key: "rank".into(), operator: "Lt".into(), values: Some(vec!["3".into()]) }]),
                        match_fields: None,
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(select_node(&q, &nodes, &zero), Ok("hdd".into()));
        p.spec.as_mut().unwrap().node_selector = Some([("disk".to_string(), "nvme".to_string())].into());
        assert_eq!(select_node(&p, &nodes, &zero), Err("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.".into()));
    }

    #[test]
    fn a_full_node_takes_no_more_pods() {
        let mut full = (*node("full", &[], true)).clone();
        full.status.as_mut().unwrap().allocatable = Some([("pods".to_string(), Quantity("2".into()))].into());
        let nodes = vec![Arc::new(full)];
        assert_eq!(select_node(&pod("p", &[]), &nodes, &|_| 2), Err("0/1 nodes are available: 1 Too many pods.".into()));
    }

    #[test]
    fn only_node_changes_that_affect_placement_retry_pending_pods() {
        let n = node("a", &[], true);
        let mut heartbeat = (*n).clone();
        heartbeat.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].message = Some("still fine".into());
        assert!(!placement_changed(&n, &heartbeat));
        assert!(placement_changed(&n, &node("a", &[], false)));
        assert!(placement_changed(&n, &node("a", &[("disk", "ssd")], true)));
        assert!(placement_changed(&n, &with_spec(n.clone(), |s| s.unschedulable = Some(true))));
    }

    #[test]
    fn no_nodes_means_no_placement() {
        assert_eq!(select_node(&pod("p", &[]), &[], &zero), Err("no nodes available to schedule pods".into()));
    }

    #[test]
    fn only_unbound_live_pods_of_the_default_scheduler_are_scheduled() {
        let p = pod("p", &[]);
        assert!(wants_scheduling(&p));
        let mut other = p.clone();
        other.spec.as_mut().unwrap().scheduler_name = Some("custom".into());
        assert!(!wants_scheduling(&other));
        let mut bound = p.clone();
        bound.spec.as_mut().unwrap().node_name = Some("n".into());
        assert!(!wants_scheduling(&bound));
        assert!(!wants_scheduling(&crate::pod_state::fixtures::terminating(p)));
    }
}
