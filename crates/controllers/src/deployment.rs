//! Deployment controller: a ReplicaSet per pod template (named
//! `<deployment>-<pod-template-hash>`), revisions, RollingUpdate (maxSurge /
//! maxUnavailable) and Recreate rollouts, proportional scaling mid-rollout,
//! revisionHistoryLimit cleanup, and the status and conditions that
//! `kubectl rollout status` reads. Each sync takes one step, as upstream does:
//! scale up or scale down, then report; the resulting ReplicaSet events drive the next.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::ResourceExt;

use crate::informer::{route, Change, Key};
use crate::pod_state;
use crate::queue::Queue;
use crate::recorder::{Recorder, NORMAL, WARNING};
use crate::{api_error_is, Ctx};

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One write the sync decided on, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Create(ReplicaSet),
    Update(ReplicaSet),
    Delete { name: String, uid: String },
}

#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// (type, reason, message) on the Deployment.
    pub events: Vec<(&'static str, &'static str, String)>,
    /// New annotations for the Deployment (its revision), when they change.
    pub annotations: Option<BTreeMap<String, String>>,
    pub status: Option<DeploymentStatus>,
    /// Look again by then: the progress deadline will have passed.
    pub requeue: Option<Duration>,
}

/// FNV-1a over the template and the collision count, spelled with the same
/// consonant-and-digit alphabet as upstream's `rand.SafeEncodeString`.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x01000193);
        }
    };
    feed(serde_json::to_string(&strip_hash(template)).unwrap_or_default().as_bytes());
    if let Some(c) = collision_count {
        feed(&(c as u32).to_le_bytes());
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string().bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

/// The template without the hash label, empty maps as absent: the form in which
/// a Deployment's template and its ReplicaSets' templates are compared.
fn strip_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(meta) = t.metadata.as_mut() {
        if let Some(l) = meta.labels.as_mut() {
            l.remove(HASH_LABEL);
            if l.is_empty() {
                meta.labels = None;
            }
        }
        if meta.annotations.as_ref().is_some_and(|a| a.is_empty()) {
            meta.annotations = None;
        }
        if *meta == ObjectMeta::default() {
            t.metadata = None;
        }
    }
    t
}

fn templates_equal(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    serde_json::to_value(strip_hash(a)).ok() == serde_json::to_value(strip_hash(b)).ok()
}

fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn rs_status(rs: &ReplicaSet) -> (i32, i32, i32) {
    let s = rs.status.clone().unwrap_or_default();
    (s.replicas, s.ready_replicas.unwrap_or(0), s.available_replicas.unwrap_or(0))
}

fn is_rolling(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate"
}

/// A count or percentage of `total`, percentages rounded up or down.
fn scaled(v: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match v {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(25.0);
            let x = pct * f64::from(total) / 100.0;
            (if round_up { x.ceil() } else { x.floor() }) as i32
        }
        None => scaled(Some(&IntOrString::String("25%".into())), total, round_up),
    }
}

/// (maxSurge, maxUnavailable) resolved against the desired replicas.
fn fenceposts(d: &Deployment) -> (i32, i32) {
    if !is_rolling(d) {
        return (0, 0);
    }
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let want = replicas(d);
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), want, true);
    let mut unavailable = scaled(ru.and_then(|r| r.max_unavailable.as_ref()), want, false);
    // Both rounding to zero would stall a rollout; upstream then allows one unavailable.
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn max_surge(d: &Deployment) -> i32 {
    fenceposts(d).0
}

fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations().get(REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600) != i32::MAX
}

fn progress_deadline(d: &Deployment) -> i64 {
    i64::from(d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600))
}

fn condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions.iter().flatten().find(|c| c.type_ == type_)
}

fn new_condition(type_: &str, status: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// As upstream's SetDeploymentCondition: the same status and reason is no
/// change; the same status keeps its transition time.
fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    let conds = s.conditions.get_or_insert_with(Vec::new);
    if let Some(cur) = conds.iter().find(|x| x.type_ == c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    conds.retain(|x| x.type_ != c.type_);
    conds.push(c);
}

fn remove_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = s.conditions.as_mut() {
        c.retain(|x| x.type_ != type_);
    }
}

/// The working state of one sync: the Deployment and its ReplicaSets as the
/// planned writes will leave them.
struct Sync {
    d: Deployment,
    rss: Vec<ReplicaSet>,
    new: Option<usize>,
    now: Timestamp,
    plan: Plan,
    old_pods_running: bool,
}

impl Sync {
    fn old(&self) -> Vec<usize> {
        (0..self.rss.len()).filter(|i| Some(*i) != self.new).collect()
    }

    fn status_of(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    fn set_revision(&mut self, rev: &str) {
        let mut ann = self.plan.annotations.clone().unwrap_or_else(|| self.d.annotations().clone());
        if ann.get(REVISION).map(String::as_str) != Some(rev) {
            ann.insert(REVISION.into(), rev.into());
            self.plan.annotations = Some(ann.clone());
            self.d.metadata.annotations = Some(ann);
        }
    }

    fn set_status_condition(&mut self, c: DeploymentCondition) {
        let mut s = self.status_of();
        set_condition(&mut s, c);
        self.d.status = Some(s);
    }

    /// Copies the Deployment's annotations (bar kubectl's and our bookkeeping)
    /// onto the new ReplicaSet and raises its revision; true if anything changed.
    fn annotate_new(&self, rs: &mut ReplicaSet, new_revision: i64, exists: bool) -> bool {
        let mut changed = false;
        let ann = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
        for (k, v) in self.d.annotations() {
            let skip = [LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS].contains(&k.as_str());
            if !skip && ann.get(k) != Some(v) {
                ann.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        let old = ann.get(REVISION).cloned();
        let old_rev: i64 = old.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
        if old_rev < new_revision {
            ann.insert(REVISION.into(), new_revision.to_string());
            changed = true;
            // A set brought back by a rollback remembers the revisions it had.
            if let Some(old) = old {
                let hist = ann.get(REVISION_HISTORY).filter(|h| !h.is_empty()).map(|h| format!("{h},{old}")).unwrap_or(old);
                ann.insert(REVISION_HISTORY.into(), hist);
            }
        }
        if !exists {
            let want = replicas(&self.d);
            ann.insert(DESIRED_REPLICAS.into(), want.to_string());
            ann.insert(MAX_REPLICAS.into(), (want + max_surge(&self.d)).to_string());
            changed = true;
        }
        changed
    }

    /// Finds the ReplicaSet for the current template, creating it if asked.
    fn ensure_new(&mut self, create: bool) {
        let max_old = self.old().iter().map(|i| revision(&self.rss[*i])).max().unwrap_or(0);
        let new_revision = max_old + 1;
        if let Some(i) = self.new {
            let mut rs = self.rss[i].clone();
            let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let mut changed = self.annotate_new(&mut rs, new_revision, true);
            if let Some(spec) = rs.spec.as_mut() {
                if spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0) {
                    spec.min_ready_seconds = min_ready;
                    changed = true;
                }
            }
            if changed {
                self.plan.actions.push(Action::Update(rs.clone()));
                self.rss[i] = rs;
            }
            let rev = self.rss[i].annotations().get(REVISION).cloned().unwrap_or_default();
            self.set_revision(&rev);
            if has_progress_deadline(&self.d) && condition(&self.status_of(), "Progressing").is_none() {
                let msg = format!("Found new replica set {:?}", self.rss[i].name_any());
                self.set_status_condition(new_condition("Progressing", "True", "FoundNewReplicaSet", msg, self.now));
            }
            return;
        }
        if !create {
            return;
        }
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&spec.template, collision);
        let mut template = spec.template.clone();
        let tmeta = template.metadata.get_or_insert_with(Default::default);
        tmeta.labels.get_or_insert_with(BTreeMap::new).insert(HASH_LABEL.into(), hash.clone());
        let mut selector: LabelSelector = spec.selector.clone();
        selector.match_labels.get_or_insert_with(BTreeMap::new).insert(HASH_LABEL.into(), hash.clone());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{}", self.d.name_any(), hash)),
                namespace: self.d.namespace(),
                labels: tmeta.labels.clone(),
                owner_references: Some(vec![controller_ref(&self.d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        self.rss.push(rs.clone());
        let idx = self.rss.len() - 1;
        let count = self.new_rs_replicas(idx);
        rs.spec.as_mut().unwrap().replicas = Some(count);
        self.annotate_new(&mut rs, new_revision, false);
        self.rss[idx] = rs.clone();
        self.new = Some(idx);
        self.plan.actions.push(Action::Create(rs.clone()));
        if count > 0 {
            self.plan.events.push((NORMAL, "ScalingReplicaSet", format!("Scaled up replica set {} to {}", rs.name_any(), count)));
        }
        self.set_revision(&new_revision.to_string());
        if has_progress_deadline(&self.d) {
            let msg = format!("Created new replica set {:?}", rs.name_any());
            self.set_status_condition(new_condition("Progressing", "True", "NewReplicaSetCreated", msg, self.now));
        }
    }

    /// How big the new ReplicaSet may be now.
    fn new_rs_replicas(&self, new: usize) -> i32 {
        let want = replicas(&self.d);
        let cur = rs_replicas(&self.rss[new]);
        if !is_rolling(&self.d) {
            return want;
        }
        let total: i32 = self.rss.iter().map(rs_replicas).sum();
        let max_total = want + max_surge(&self.d);
        if total >= max_total {
            return cur;
        }
        cur + (max_total - total).min(want - cur).max(0)
    }

    /// Sets a ReplicaSet's size (and our replica annotations); true if the size changed.
    fn scale(&mut self, i: usize, to: i32, verb: Option<&str>) -> bool {
        let rs = &self.rss[i];
        let from = rs_replicas(rs);
        let want = replicas(&self.d);
        let max = want + max_surge(&self.d);
        let ann_ok = rs.annotations().get(DESIRED_REPLICAS) == Some(&want.to_string())
            && rs.annotations().get(MAX_REPLICAS) == Some(&max.to_string());
        if from == to && ann_ok {
            return false;
        }
        let mut rs = rs.clone();
        rs.spec.get_or_insert_with(Default::default).replicas = Some(to);
        let ann = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
        ann.insert(DESIRED_REPLICAS.into(), want.to_string());
        ann.insert(MAX_REPLICAS.into(), max.to_string());
        self.plan.actions.push(Action::Update(rs.clone()));
        self.rss[i] = rs;
        if from != to {
            let verb = verb.unwrap_or(if to > from { "up" } else { "down" });
            let name = self.rss[i].name_any();
            self.plan.events.push((NORMAL, "ScalingReplicaSet", format!("Scaled {verb} replica set {name} to {to} from {from}")));
        }
        from != to
    }

    fn is_scaling_event(&self) -> bool {
        let want = replicas(&self.d).to_string();
        self.rss.iter().filter(|rs| rs_replicas(rs) > 0).any(|rs| rs.annotations().get(DESIRED_REPLICAS).is_some_and(|d| *d != want))
    }

    /// Resizing the Deployment: one active set takes it all, else every active
    /// set grows or shrinks in proportion (a rolling update's scaling, upstream's `scale`).
    fn proportional_scale(&mut self) {
        let want = replicas(&self.d);
        let active: Vec<usize> = (0..self.rss.len()).filter(|i| rs_replicas(&self.rss[*i]) > 0).collect();
        let target = match (active.len(), self.new) {
            (1, _) => Some(active[0]),
            (0, Some(n)) => Some(n),
            (0, None) => self.old().into_iter().max_by_key(|i| (created(&self.rss[*i]), self.rss[*i].name_any())),
            _ => None,
        };
        if let Some(i) = target {
            self.scale(i, want, None);
            return;
        }
        if let Some(n) = self.new {
            let rs = &self.rss[n];
            let saturated = rs_replicas(rs) == want
                && rs.annotations().get(DESIRED_REPLICAS).and_then(|d| d.parse::<i32>().ok()) == Some(want)
                && rs_status(rs).2 == want;
            if saturated {
                for i in self.old() {
                    if rs_replicas(&self.rss[i]) > 0 {
                        self.scale(i, 0, None);
                    }
                }
                return;
            }
        }
        if !is_rolling(&self.d) {
            return;
        }
        let total: i32 = active.iter().map(|i| rs_replicas(&self.rss[*i])).sum();
        let allowed = if want > 0 { want + max_surge(&self.d) } else { 0 };
        let to_add = allowed - total;
        let mut order = active.clone();
        // Largest first; ties go newer-first when growing, older-first when shrinking.
        order.sort_by(|a, b| {
            let (ra, rb) = (&self.rss[*a], &self.rss[*b]);
            let by_age = created(ra).cmp(&created(rb)).then(ra.name_any().cmp(&rb.name_any()));
            rs_replicas(rb).cmp(&rs_replicas(ra)).then(if to_add > 0 { by_age.reverse() } else { by_age })
        });
        let mut added = 0;
        let mut sizes: Vec<(usize, i32)> = Vec::new();
        for &i in &order {
            let rs = &self.rss[i];
            let cur = rs_replicas(rs);
            let part = if to_add == 0 || to_add == added || cur == 0 {
                0
            } else {
                let fraction = if want == 0 {
                    -cur
                } else {
                    let before = rs
                        .annotations()
                        .get(MAX_REPLICAS)
                        .and_then(|m| m.parse::<i32>().ok())
                        .filter(|m| *m > 0)
                        .unwrap_or_else(|| self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
                    if before == 0 { 0 } else { (f64::from(cur * (want + max_surge(&self.d))) / f64::from(before)).round() as i32 - cur }
                };
                let left = to_add - added;
                if to_add > 0 { fraction.min(left) } else { fraction.max(left) }
            };
            added += part;
            sizes.push((i, cur + part));
        }
        if let Some(first) = sizes.first_mut() {
            if to_add != 0 {
                first.1 = (first.1 + to_add - added).max(0);
            }
        }
        let verb = if to_add > 0 { Some("up") } else if to_add < 0 { Some("down") } else { None };
        for (i, size) in sizes {
            self.scale(i, size, verb);
        }
    }

    /// Removes the oldest surplus of fully scaled-down old ReplicaSets.
    fn cleanup(&mut self) {
        let limit = self.d.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
        let mut old: Vec<usize> = self.old().into_iter().filter(|i| self.rss[*i].metadata.deletion_timestamp.is_none()).collect();
        let surplus = old.len() as i32 - limit;
        if surplus <= 0 {
            return;
        }
        old.sort_by_key(|i| (revision(&self.rss[*i]), created(&self.rss[*i])));
        for i in old.into_iter().take(surplus as usize) {
            let rs = &self.rss[i];
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0) >= rs.metadata.generation.unwrap_or(0);
            if rs_status(rs).0 != 0 || rs_replicas(rs) != 0 || !observed {
                continue;
            }
            self.plan.actions.push(Action::Delete { name: rs.name_any(), uid: rs.uid().unwrap_or_default() });
        }
    }

    fn calculate_status(&self) -> DeploymentStatus {
        let sum = |f: &dyn Fn(&ReplicaSet) -> i32| self.rss.iter().map(f).sum::<i32>();
        let available = sum(&|rs| rs_status(rs).2);
        let total = sum(&|rs| rs_replicas(rs));
        let mut s = self.status_of();
        s.observed_generation = self.d.metadata.generation;
        s.replicas = Some(sum(&|rs| rs_status(rs).0));
        s.updated_replicas = self.new.map(|i| rs_status(&self.rss[i]).0);
        s.ready_replicas = Some(sum(&|rs| rs_status(rs).1));
        s.available_replicas = Some(available);
        s.unavailable_replicas = Some((total - available).max(0));
        let c = if available >= replicas(&self.d) - max_unavailable(&self.d) {
            new_condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into(), self.now)
        } else {
            new_condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.".into(), self.now)
        };
        set_condition(&mut s, c);
        s
    }

    fn finish_plain(&mut self) {
        let s = self.calculate_status();
        self.commit_status(s);
    }

    /// Status plus the Progressing condition's bookkeeping (upstream's syncRolloutStatus).
    fn finish_rollout(&mut self) {
        let mut s = self.calculate_status();
        let old = self.status_of();
        if !has_progress_deadline(&self.d) {
            remove_condition(&mut s, "Progressing");
        }
        let cur = condition(&old, "Progressing").cloned();
        let complete_before = s.replicas.unwrap_or(0) == s.updated_replicas.unwrap_or(0) && cur.as_ref().is_some_and(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"));
        let name = self.new.map(|i| self.rss[i].name_any());
        let subject = |what: &str| match &name {
            Some(n) => format!("ReplicaSet {n:?} {what}"),
            None => format!("Deployment {:?} {what}", self.d.name_any()),
        };
        if has_progress_deadline(&self.d) && !complete_before {
            let want = replicas(&self.d);
            let complete = s.updated_replicas.unwrap_or(0) == want
                && s.replicas.unwrap_or(0) == want
                && s.available_replicas.unwrap_or(0) == want
                && s.observed_generation >= self.d.metadata.generation;
            let progressing = s.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
                || s.replicas.unwrap_or(0) - s.updated_replicas.unwrap_or(0) < old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0)
                || s.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
                || s.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0);
            let timed_out = cur.as_ref().is_some_and(|c| match c.reason.as_deref() {
                Some("NewReplicaSetAvailable") => false,
                Some("ProgressDeadlineExceeded") => true,
                _ => c.last_update_time.as_ref().is_some_and(|t| t.0.as_second() + progress_deadline(&self.d) < self.now.as_second()),
            });
            if complete {
                set_condition(&mut s, new_condition("Progressing", "True", "NewReplicaSetAvailable", subject("has successfully progressed."), self.now));
            } else if progressing {
                let mut c = new_condition("Progressing", "True", "ReplicaSetUpdated", subject("is progressing."), self.now);
                if let Some(cur) = cur.as_ref().filter(|c| c.status == "True") {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut s, "Progressing");
                set_condition(&mut s, c);
            } else if timed_out {
                set_condition(&mut s, new_condition("Progressing", "False", "ProgressDeadlineExceeded", subject("has timed out progressing."), self.now));
            }
            // Wake up when the deadline passes, to report it.
            if let Some(c) = condition(&s, "Progressing") {
                if c.status == "True" && c.reason.as_deref() != Some("NewReplicaSetAvailable") {
                    let due = c.last_update_time.as_ref().map(|t| t.0.as_second()).unwrap_or(0) + progress_deadline(&self.d) + 1;
                    let wait = (due - self.now.as_second()).max(1) as u64;
                    self.plan.requeue = Some(Duration::from_secs(wait));
                }
            }
        }
        self.commit_status(s);
    }

    fn commit_status(&mut self, s: DeploymentStatus) {
        self.d.status = Some(s);
    }
}

/// The decision for one Deployment. `rss` are the ReplicaSets it controls;
/// `old_pods_running` whether pods of its old sets still run (Recreate waits).
pub fn plan(d: &Deployment, rss: &[Arc<ReplicaSet>], old_pods_running: bool, now: Timestamp) -> Plan {
    let template = d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let mut sorted: Vec<ReplicaSet> = rss.iter().map(|r| (**r).clone()).collect();
    sorted.sort_by(|a, b| created(a).cmp(&created(b)).then(a.name_any().cmp(&b.name_any())));
    // The oldest set with the current template is the new one, as upstream.
    let new = sorted.iter().position(|rs| rs.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| templates_equal(t, &template)));
    let original_status = d.status.clone();
    let mut s = Sync { d: d.clone(), rss: sorted, new, now, plan: Plan::default(), old_pods_running };

    let selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
    if crate::selector::is_empty(&selector) {
        s.plan.events.push((WARNING, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.".into()));
        let mut st = s.status_of();
        if st.observed_generation < d.metadata.generation {
            st.observed_generation = d.metadata.generation;
            s.plan.status = Some(st);
        }
        return s.plan;
    }
    if d.metadata.deletion_timestamp.is_some() {
        s.finish_plain();
        return finalize(s, original_status);
    }
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if has_progress_deadline(d) {
        let reason = condition(&s.status_of(), "Progressing").and_then(|c| c.reason.clone());
        if paused && reason.as_deref() != Some("DeploymentPaused") {
            s.set_status_condition(new_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused".into(), now));
        } else if !paused && reason.as_deref() == Some("DeploymentPaused") {
            s.set_status_condition(new_condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed".into(), now));
        }
    }
    if paused || s.is_scaling_event() {
        s.ensure_new(false);
        s.proportional_scale();
        if paused {
            s.cleanup();
        }
        s.finish_plain();
        return finalize(s, original_status);
    }
    if is_rolling(d) {
        s.ensure_new(true);
        let n = s.new.expect("ensured");
        // Scale up, if we can.
        let want = replicas(d);
        let cur = rs_replicas(&s.rss[n]);
        let scaled_up = if cur > want {
            s.scale(n, want, None)
        } else if cur < want {
            let to = s.new_rs_replicas(n);
            s.scale(n, to, None)
        } else {
            false
        };
        if !scaled_up && !scale_down_old(&mut s) && deployment_complete(&s) {
            s.cleanup();
        }
        s.finish_rollout();
    } else {
        // Recreate: every old pod goes before the new set grows.
        s.ensure_new(false);
        let mut scaled_down = false;
        for i in s.old() {
            if rs_replicas(&s.rss[i]) > 0 {
                scaled_down |= s.scale(i, 0, None);
            }
        }
        let old_running = s.old().iter().map(|i| rs_status(&s.rss[*i]).0).sum::<i32>() > 0 || s.old_pods_running;
        if !scaled_down && !old_running {
            if s.new.is_none() {
                s.ensure_new(true);
            }
            let n = s.new.expect("ensured");
            let want = replicas(d);
            s.scale(n, want, None);
            if deployment_complete(&s) {
                s.cleanup();
            }
        }
        s.finish_rollout();
    }
    finalize(s, original_status)
}

/// True when the Deployment's last reported status says the rollout is done.
fn deployment_complete(s: &Sync) -> bool {
    let st = s.status_of();
    let want = replicas(&s.d);
    st.updated_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
        && st.available_replicas.unwrap_or(0) == want
        && st.observed_generation >= s.d.metadata.generation
}

/// Scales old sets down as far as availability allows; unhealthy pods first.
fn scale_down_old(s: &mut Sync) -> bool {
    let n = s.new.expect("ensured");
    let mut old: Vec<usize> = s.old().into_iter().filter(|i| rs_replicas(&s.rss[*i]) > 0).collect();
    let old_count: i32 = old.iter().map(|i| rs_replicas(&s.rss[*i])).sum();
    if old_count == 0 {
        return false;
    }
    let all: i32 = s.rss.iter().map(rs_replicas).sum();
    let min_available = replicas(&s.d) - max_unavailable(&s.d);
    let new_unavailable = rs_replicas(&s.rss[n]) - rs_status(&s.rss[n]).2;
    let max_scaled_down = all - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return false;
    }
    old.sort_by(|a, b| created(&s.rss[*a]).cmp(&created(&s.rss[*b])).then(s.rss[*a].name_any().cmp(&s.rss[*b].name_any())));
    // Unhealthy replicas first: they would otherwise block the rollout.
    let mut cleaned = 0;
    for &i in &old {
        if cleaned >= max_scaled_down {
            break;
        }
        let (cur, avail) = (rs_replicas(&s.rss[i]), rs_status(&s.rss[i]).2);
        if cur == 0 || cur == avail {
            continue;
        }
        let k = (max_scaled_down - cleaned).min(cur - avail);
        s.scale(i, cur - k, None);
        cleaned += k;
    }
    // Then healthy ones, keeping minAvailable.
    let available: i32 = s.rss.iter().map(|rs| rs_status(rs).2).sum();
    let mut scaled = 0;
    if available > min_available {
        let budget = available - min_available;
        for &i in &old {
            if scaled >= budget {
                break;
            }
            let cur = rs_replicas(&s.rss[i]);
            if cur == 0 {
                continue;
            }
            let k = cur.min(budget - scaled);
            s.scale(i, cur - k, None);
            scaled += k;
        }
    }
    cleaned + scaled > 0
}

fn finalize(mut s: Sync, original: Option<DeploymentStatus>) -> Plan {
    if s.d.status != original {
        s.plan.status = s.d.status.clone();
    }
    s.plan
}

pub fn controller_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: d.name_any(),
        uid: d.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn owner_key_of_rs(rs: &ReplicaSet) -> Option<Key> {
    let r = pod_state::controller_ref(&rs.metadata)?;
    (r.kind == "Deployment").then(|| Key::new(rs.namespace().unwrap_or_default(), &r.name))
}

pub(crate) async fn run(ctx: Arc<Ctx>) -> anyhow::Result<()> {
    tokio::join!(ctx.deployments.synced(), ctx.replica_sets.synced(), ctx.pods.synced());
    let queue: Queue<Key> = Queue::new();
    let all = {
        let ctx = ctx.clone();
        move || ctx.deployments.all().iter().map(|d| Key::of(&**d)).collect::<Vec<_>>()
    };
    for key in all() {
        queue.add(key);
    }
    let deployments = route(ctx.deployments.clone(), queue.clone(), |ch| ch.objects().iter().map(|d| Key::of(&***d)).collect(), all.clone());
    let sets = route(ctx.replica_sets.clone(), queue.clone(), |ch| ch.objects().iter().filter_map(|r| owner_key_of_rs(r)).collect(), all.clone());
    // Pod deletions matter to Recreate, which waits for old pods to be gone.
    let c = ctx.clone();
    let pods = route(
        ctx.pods.clone(),
        queue.clone(),
        move |ch: &Change<Pod>| match ch {
            Change::Deleted(p) => pod_state::controller_ref(&p.metadata)
                .filter(|r| r.kind == "ReplicaSet")
                .and_then(|r| c.replica_sets.get(&p.namespace().unwrap_or_default(), &r.name))
                .and_then(|rs| owner_key_of_rs(&rs))
                .into_iter()
                .collect(),
            _ => vec![],
        },
        all.clone(),
    );
    let recorder = Recorder::new(ctx.client.clone(), "deployment-controller");
    let c = ctx.clone();
    let worker = queue.serve("deployment", move |key| sync(c.clone(), recorder.clone(), key));
    tokio::join!(deployments, sets, pods, worker);
    Ok(())
}

async fn sync(ctx: Arc<Ctx>, recorder: Recorder, key: Key) -> anyhow::Result<Option<Duration>> {
    let Some(d) = ctx.deployments.get(&key.namespace, &key.name) else { return Ok(None) };
    let uid = d.uid().unwrap_or_default();
    let rss: Vec<Arc<ReplicaSet>> = ctx
        .replica_sets
        .in_namespace(&key.namespace)
        .into_iter()
        .filter(|rs| pod_state::is_controlled_by(&rs.metadata, &uid))
        .collect();
    let new_template = d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let old_uids: Vec<String> = rss
        .iter()
        .filter(|rs| !rs.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| templates_equal(t, &new_template)))
        .filter_map(|rs| rs.uid())
        .collect();
    let old_pods_running = !old_uids.is_empty()
        && ctx.pods.in_namespace(&key.namespace).iter().any(|p| {
            pod_state::controller_ref(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid)) && !pod_state::is_terminal(p)
        });
    let plan = plan(&d, &rss, old_pods_running, Timestamp::now());

    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let d_api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &key.namespace);
    for action in &plan.actions {
        match action {
            Action::Create(rs) => match rs_api.create(&PostParams::default(), rs).await {
                Ok(_) => {}
                Err(e) if api_error_is(&e, 409) => {
                    // A set of that name exists: ours (a stale cache) or a hash collision.
                    let existing = rs_api.get(&rs.name_any()).await?;
                    let ours = pod_state::is_controlled_by(&existing.metadata, &uid)
                        && existing.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| templates_equal(t, &new_template));
                    if !ours {
                        let mut bumped = (*d).clone();
                        let st = bumped.status.get_or_insert_with(Default::default);
                        st.collision_count = Some(st.collision_count.unwrap_or(0) + 1);
                        d_api.replace_status(&key.name, &PostParams::default(), &bumped).await?;
                    }
                    anyhow::bail!("replica set {} already exists", rs.name_any());
                }
                Err(e) => return Err(e.into()),
            },
            Action::Update(rs) => {
                rs_api.replace(&rs.name_any(), &PostParams::default(), rs).await?;
            }
            Action::Delete { name, uid } => {
                let dp = DeleteParams { preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }), ..Default::default() };
                match rs_api.delete(name, &dp).await {
                    Ok(_) => {}
                    Err(e) if api_error_is(&e, 404) || api_error_is(&e, 409) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    for (type_, reason, message) in &plan.events {
        recorder.publish(&*d, type_, reason, message.clone());
    }
    let mut current = (*d).clone();
    if let Some(ann) = &plan.annotations {
        let patch = serde_json::json!({"metadata": {"annotations": ann}});
        current = d_api.patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    if let Some(status) = plan.status {
        current.status = Some(status);
        d_api.replace_status(&key.name, &PostParams::default(), &current).await?;
    }
    Ok(plan.requeue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, ReplicaSetStatus, RollingUpdateDeployment};
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta { labels: Some(labels(&[("app", "web")])), ..Default::default() }),
            spec: Some(PodSpec { containers: vec![Container { name: "c".into(), image: Some(image.into()), ..Default::default() }], ..Default::default() }),
        }
    }

    fn deployment(replicas: i32, image: &str, strategy: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("d-uid".into()),
                generation: Some(1),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector { match_labels: Some(labels(&[("app", "web")])), ..Default::default() },
                template: template(image),
                strategy: Some(DeploymentStrategy {
                    type_: Some(strategy.into()),
                    rolling_update: (strategy == "RollingUpdate").then(|| RollingUpdateDeployment {
                        max_surge: Some(IntOrString::String("25%".into())),
                        max_unavailable: Some(IntOrString::String("25%".into())),
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    /// Applies a plan's ReplicaSet writes as the server would, then lets the
    /// ReplicaSet controller "run": status mirrors spec, all pods ready iff `ready`.
    fn apply(rss: &mut Vec<Arc<ReplicaSet>>, d: &mut Deployment, plan: &Plan, ready: bool, t: i64) {
        for a in &plan.actions {
            match a {
                Action::Create(rs) => {
                    let mut rs = rs.clone();
                    rs.metadata.uid = Some(format!("uid-{}", rs.name_any()));
                    rs.metadata.creation_timestamp = Some(Time(Timestamp::from_second(t).unwrap()));
                    rss.push(Arc::new(rs));
                }
                Action::Update(rs) => {
                    let i = rss.iter().position(|r| r.name_any() == rs.name_any()).unwrap();
                    rss[i] = Arc::new(rs.clone());
                }
                Action::Delete { name, .. } => rss.retain(|r| &r.name_any() != name),
            }
        }
        for rs in rss.iter_mut() {
            let n = rs_replicas(rs);
            let mut r = (**rs).clone();
            r.status = Some(ReplicaSetStatus {
                replicas: n,
                ready_replicas: Some(if ready { n } else { 0 }),
                available_replicas: Some(if ready { n } else { 0 }),
                observed_generation: r.metadata.generation,
                ..Default::default()
            });
            *rs = Arc::new(r);
        }
        if let Some(a) = &plan.annotations {
            d.metadata.annotations = Some(a.clone());
        }
        if let Some(s) = &plan.status {
            d.status = Some(s.clone());
        }
    }

    /// Runs syncs until nothing changes, as the event loop would.
    fn settle(d: &mut Deployment, rss: &mut Vec<Arc<ReplicaSet>>, ready: bool, t: &mut i64) -> Vec<String> {
        let mut events = vec![];
        // The ReplicaSet controller reports first (pods became ready, or not).
        apply(rss, d, &Plan::default(), ready, *t);
        for _ in 0..50 {
            *t += 1;
            let p = plan(d, rss, false, Timestamp::from_second(*t).unwrap());
            events.extend(p.events.iter().map(|e| e.2.clone()));
            let idle = p.actions.is_empty() && p.status.is_none() && p.annotations.is_none();
            apply(rss, d, &p, ready, *t);
            if idle {
                return events;
            }
        }
        panic!("deployment sync did not settle");
    }

    fn sizes(rss: &[Arc<ReplicaSet>]) -> Vec<(String, i32)> {
        let mut v: Vec<(String, i32)> = rss.iter().map(|r| (r.annotations().get(REVISION).cloned().unwrap_or_default(), rs_replicas(r))).collect();
        v.sort();
        v
    }

    fn cond(d: &Deployment, t: &str) -> (String, String) {
        let c = condition(d.status.as_ref().unwrap(), t).unwrap();
        (c.status.clone(), c.reason.clone().unwrap())
    }

    #[test]
    fn a_new_deployment_creates_its_replica_set_and_reports_progress() {
        let d = deployment(3, "nginx:1", "RollingUpdate");
        let p = plan(&d, &[], false, Timestamp::UNIX_EPOCH);
        let Action::Create(rs) = &p.actions[0] else { panic!("expected a create") };
        let hash = template_hash(&d.spec.as_ref().unwrap().template, None);
        assert_eq!(rs.name_any(), format!("web-{hash}"));
        assert_eq!(rs.labels()[HASH_LABEL], hash);
        assert_eq!(rs.spec.as_ref().unwrap().selector.match_labels.as_ref().unwrap()[HASH_LABEL], hash);
        assert_eq!(rs_replicas(rs), 3);
        assert_eq!(rs.annotations()[REVISION], "1");
        assert_eq!(rs.metadata.owner_references.as_ref().unwrap()[0].kind, "Deployment");
        assert_eq!(p.annotations.as_ref().unwrap()[REVISION], "1");
        assert_eq!(p.events[0].2, format!("Scaled up replica set web-{hash} to 3"));
        let s = p.status.unwrap();
        assert_eq!(condition(&s, "Progressing").unwrap().reason.as_deref(), Some("NewReplicaSetCreated"));
    }

    #[test]
    fn pending_pods_leave_the_deployment_unavailable_and_ready_pods_complete_it() {
        let mut d = deployment(2, "nginx:1", "RollingUpdate");
        let (mut rss, mut t) = (vec![], 0);
        settle(&mut d, &mut rss, false, &mut t);
        let s = d.status.clone().unwrap();
        assert_eq!((s.replicas, s.updated_replicas, s.available_replicas), (Some(2), Some(2), Some(0)));
        assert_eq!(cond(&d, "Available"), ("False".into(), "MinimumReplicasUnavailable".into()));
        assert_eq!(cond(&d, "Progressing").0, "True");

        settle(&mut d, &mut rss, true, &mut t);
        assert_eq!(cond(&d, "Available"), ("True".into(), "MinimumReplicasAvailable".into()));
        assert_eq!(cond(&d, "Progressing"), ("True".into(), "NewReplicaSetAvailable".into()));
        assert_eq!(d.status.as_ref().unwrap().observed_generation, Some(1));
    }

    #[test]
    fn a_rolling_update_respects_surge_and_ends_on_the_new_revision() {
        let mut d = deployment(4, "nginx:1", "RollingUpdate");
        let (mut rss, mut t) = (vec![], 0);
        settle(&mut d, &mut rss, true, &mut t);
        d.spec.as_mut().unwrap().template = template("nginx:2");
        d.metadata.generation = Some(2);
        // Step by step: never more than replicas + maxSurge (4 + 1) pods.
        for _ in 0..30 {
            t += 1;
            let p = plan(&d, &rss, false, Timestamp::from_second(t).unwrap());
            apply(&mut rss, &mut d, &p, true, t);
            let total: i32 = rss.iter().map(|r| rs_replicas(r)).sum();
            assert!(total <= 5, "surge exceeded: {total}");
        }
        assert_eq!(sizes(&rss), vec![("1".into(), 0), ("2".into(), 4)]);
        assert_eq!(d.annotations()[REVISION], "2");
        assert_eq!(cond(&d, "Progressing").1, "NewReplicaSetAvailable");
    }

    #[test]
    fn a_rolling_update_with_unready_new_pods_keeps_old_pods_up() {
        let mut d = deployment(4, "nginx:1", "RollingUpdate");
        let (mut rss, mut t) = (vec![], 0);
        settle(&mut d, &mut rss, true, &mut t);
        d.spec.as_mut().unwrap().template = template("broken");
        // New pods never become ready: at most maxUnavailable (1) old pod goes.
        for _ in 0..20 {
            t += 1;
            let p = plan(&d, &rss, false, Timestamp::from_second(t).unwrap());
            apply(&mut rss, &mut d, &p, false, t);
            // Old set stays ready in this model only for the pods it still has.
            for rs in rss.iter_mut() {
                if rs.annotations().get(REVISION).map(String::as_str) == Some("1") {
                    let n = rs_replicas(rs);
                    let mut r = (**rs).clone();
                    r.status = Some(ReplicaSetStatus { replicas: n, ready_replicas: Some(n), available_replicas: Some(n), ..Default::default() });
                    *rs = Arc::new(r);
                }
            }
        }
        let s = sizes(&rss);
        assert_eq!(s[0], ("1".into(), 3), "old set kept minAvailable: {s:?}");
    }

    #[test]
    fn recreate_scales_old_pods_to_zero_before_creating_new_ones() {
        let mut d = deployment(3, "nginx:1", "Recreate");
        let (mut rss, mut t) = (vec![], 0);
        settle(&mut d, &mut rss, true, &mut t);
        d.spec.as_mut().unwrap().template = template("nginx:2");
        let p = plan(&d, &rss, false, Timestamp::from_second(100).unwrap());
        assert!(p.actions.iter().all(|a| matches!(a, Action::Update(rs) if rs_replicas(rs) == 0)), "{:?}", p.actions);
        apply(&mut rss, &mut d, &p, true, 100);
        // Old pods still running: wait.
        let p = plan(&d, &rss, true, Timestamp::from_second(101).unwrap());
        assert!(p.actions.is_empty());
        let p = plan(&d, &rss, false, Timestamp::from_second(102).unwrap());
        assert!(matches!(&p.actions[0], Action::Create(rs) if rs_replicas(rs) == 3));
    }

    #[test]
    fn scaling_a_deployment_resizes_its_only_replica_set() {
        let mut d = deployment(2, "nginx:1", "RollingUpdate");
        let (mut rss, mut t) = (vec![], 0);
        settle(&mut d, &mut rss, true, &mut t);
        d.spec.as_mut().unwrap().replicas = Some(5);
        let events = settle(&mut d, &mut rss, true, &mut t);
        assert_eq!(sizes(&rss), vec![("1".into(), 5)]);
        assert!(events.iter().any(|e| e.starts_with("Scaled up replica set web-") && e.ends_with("to 5 from 2")), "{events:?}");
        d.spec.as_mut().unwrap().replicas = Some(1);
        settle(&mut d, &mut rss, true, &mut t);
        assert_eq!(sizes(&rss), vec![("1".into(), 1)]);
        assert_eq!(d.status.as_ref().unwrap().replicas, Some(1));
    }

    #[test]
    fn scaling_mid_rollout_is_proportional() {
        let mut d = deployment(10, "nginx:1", "RollingUpdate");
        let (mut rss, mut t) = (vec![], 0);
        settle(&mut d, &mut rss, true, &mut t);
        d.spec.as_mut().unwrap().template = template("nginx:2");
        // Two steps of the rollout with the new pods unready: old 8, new 5 or so.
        for _ in 0..2 {
            t += 1;
            let p = plan(&d, &rss, false, Timestamp::from_second(t).unwrap());
            apply(&mut rss, &mut d, &p, false, t);
        }
        let before = sizes(&rss);
        d.spec.as_mut().unwrap().replicas = Some(20);
        t += 1;
        let p = plan(&d, &rss, false, Timestamp::from_second(t).unwrap());
        apply(&mut rss, &mut d, &p, false, t);
        let after = sizes(&rss);
        let total: i32 = after.iter().map(|x| x.1).sum();
        assert_eq!(total, 20 + 5, "replicas + maxSurge (25% of 20): {before:?} -> {after:?}");
        assert!(after[0].1 > before[0].1 && after[1].1 > before[1].1, "both sets grew: {before:?} -> {after:?}");
    }

    #[test]
    fn old_replica_sets_beyond_the_history_limit_are_deleted() {
        let mut d = deployment(1, "v0", "RollingUpdate");
        d.spec.as_mut().unwrap().revision_history_limit = Some(2);
        let (mut rss, mut t) = (vec![], 0);
        for v in 1..=5 {
            d.spec.as_mut().unwrap().template = template(&format!("v{v}"));
            settle(&mut d, &mut rss, true, &mut t);
        }
        // The current set (revision 5) and the two newest old ones remain.
        let revs: Vec<String> = sizes(&rss).into_iter().map(|x| x.0).collect();
        assert_eq!(revs, vec!["3", "4", "5"]);
    }

    #[test]
    fn a_rollback_reuses_the_old_replica_set_with_a_new_revision() {
        let mut d = deployment(1, "v1", "RollingUpdate");
        let (mut rss, mut t) = (vec![], 0);
        settle(&mut d, &mut rss, true, &mut t);
        d.spec.as_mut().unwrap().template = template("v2");
        settle(&mut d, &mut rss, true, &mut t);
        d.spec.as_mut().unwrap().template = template("v1");
        settle(&mut d, &mut rss, true, &mut t);
        assert_eq!(rss.len(), 2);
        let v1 = rss.iter().find(|r| rs_replicas(r) == 1).unwrap();
        assert_eq!(v1.annotations()[REVISION], "3");
        assert_eq!(v1.annotations()[REVISION_HISTORY], "1");
        assert_eq!(d.annotations()[REVISION], "3");
    }

    #[test]
    fn a_rollout_past_its_deadline_reports_progress_deadline_exceeded() {
        let mut d = deployment(1, "v1", "RollingUpdate");
        d.spec.as_mut().unwrap().progress_deadline_seconds = Some(60);
        let (mut rss, mut t) = (vec![], 0);
        settle(&mut d, &mut rss, false, &mut t);
        let p = plan(&d, &rss, false, Timestamp::from_second(t + 30).unwrap());
        assert!(p.requeue.is_some(), "wakes up for the deadline");
        let p = plan(&d, &rss, false, Timestamp::from_second(t + 120).unwrap());
        apply(&mut rss, &mut d, &p, false, t + 120);
        assert_eq!(cond(&d, "Progressing"), ("False".into(), "ProgressDeadlineExceeded".into()));
    }

    #[test]
    fn a_paused_deployment_does_not_roll_out() {
        let mut d = deployment(2, "v1", "RollingUpdate");
        let (mut rss, mut t) = (vec![], 0);
        settle(&mut d, &mut rss, true, &mut t);
        d.spec.as_mut().unwrap().paused = Some(true);
        d.spec.as_mut().unwrap().template = template("v2");
        settle(&mut d, &mut rss, true, &mut t);
        assert_eq!(rss.len(), 1);
        assert_eq!(cond(&d, "Progressing"), ("Unknown".into(), "DeploymentPaused".into()));
    }

    #[test]
    fn the_template_hash_is_stable_and_moves_with_the_collision_count() {
        let t = template("nginx");
        assert_eq!(template_hash(&t, None), template_hash(&t.clone(), None));
        assert_ne!(template_hash(&t, None), template_hash(&t, Some(1)));
        assert_ne!(template_hash(&t, None), template_hash(&template("other"), None));
        assert!(template_hash(&t, None).chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
