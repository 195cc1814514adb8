//! The node's NetworkPolicy enforcer: watches NetworkPolicies, Pods and Namespaces of
//! the whole cluster (kube-rs, so it runs the same against any cluster), keeps a
//! `weft_policy::Cluster` model, compiles the node's plan from it and moves the node
//! netns's `inet weft-policy` table with `weft_policy::apply::PolicyApplier`.
//!
//! Events that arrive within a few milliseconds of each other are applied together,
//! and only a plan that changed is applied. The first apply waits for the initial list
//! of all three kinds (a half-listed model would isolate pods whose policies are not
//! listed yet, or open pods whose policies are), then reads the table back and writes
//! only what differs. The table is never removed: it stays in force while the agent is
//! down or restarting (fail closed).
//!
//! The model is shared (`Arc<RwLock<Cluster>>`) with the flow recorder, which names
//! the policies behind each logged verdict.

use crate::node::NodeConfig;
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use weft_kernel::Netns;
use weft_policy::apply::{ApplyError, PolicyApplier};
use weft_policy::{Cluster, NodePlan, PodKey};

/// Events closer together than this are applied in one transaction.
const COALESCE: Duration = Duration::from_millis(5);
/// A failed apply is retried this often (it re-reads the table first).
const RETRY: Duration = Duration::from_secs(1);

/// The model the agent keeps, shared with readers (the flow recorder).
pub type SharedModel = Arc<RwLock<Cluster>>;

enum Ev {
    Policy(Box<Event<NetworkPolicy>>),
    Pod(Box<Event<Pod>>),
    Ns(Box<Event<Namespace>>),
}

/// One kind's initial list in progress (kube-rs delivers Init, InitApply..., InitDone,
/// again after a watch gap), and the names the model holds of that kind, so a re-list
/// can drop what disappeared meanwhile.
struct Kind<T, K> {
    listing: Option<Vec<T>>,
    listed: bool,
    known: BTreeSet<K>,
}

impl<T, K: Ord> Default for Kind<T, K> {
    fn default() -> Self {
        Kind { listing: None, listed: false, known: BTreeSet::new() }
    }
}

#[derive(Default)]
struct Listing {
    policies: Kind<NetworkPolicy, (String, String)>,
    pods: Kind<Pod, PodKey>,
    namespaces: Kind<Namespace, String>,
}

fn policy_key(np: &NetworkPolicy) -> (String, String) {
    (np.namespace().unwrap_or_default(), np.name_any())
}

fn pod_key(p: &Pod) -> PodKey {
    PodKey { namespace: p.namespace().unwrap_or_default(), name: p.name_any() }
}

fn apply_policy(model: &mut Cluster, np: &NetworkPolicy) {
    if let Err(e) = model.apply_policy(np) {
        let (namespace, name) = policy_key(np);
        tracing::warn!(%namespace, %name, error = %e, "NetworkPolicy not enforced as written; the previous version (if any) stays in force");
    }
}

/// Applies one kind's event: `apply`/`delete` change the model; a finished list
/// replaces everything of that kind.
fn handle<T, K: Ord + Clone>(kind: &mut Kind<T, K>, model: &mut Cluster, ev: Event<T>, key: impl Fn(&T) -> K, apply: impl Fn(&mut Cluster, &T), delete: impl Fn(&mut Cluster, &K)) {
    match ev {
        Event::Init => kind.listing = Some(Vec::new()),
        Event::InitApply(o) => kind.listing.get_or_insert_with(Vec::new).push(o),
        Event::InitDone => {
            let listed = kind.listing.take().unwrap_or_default();
            let now: BTreeSet<K> = listed.iter().map(&key).collect();
            for gone in kind.known.difference(&now) {
                delete(model, gone);
            }
            for o in &listed {
                apply(model, o);
            }
            kind.known = now;
            kind.listed = true;
        }
        Event::Apply(o) => {
            kind.known.insert(key(&o));
            apply(model, &o);
        }
        Event::Delete(o) => {
            let k = key(&o);
            kind.known.remove(&k);
            delete(model, &k);
        }
    }
}

impl Listing {
    fn done(&self) -> bool {
        self.policies.listed && self.pods.listed && self.namespaces.listed
    }

    fn handle(&mut self, model: &SharedModel, ev: Ev) {
        let mut m = model.write().unwrap_or_else(|p| p.into_inner());
        match ev {
            Ev::Policy(e) => handle(&mut self.policies, &mut m, *e, policy_key, apply_policy, |m, (ns, name)| m.delete_policy(ns, name)),
            Ev::Pod(e) => handle(&mut self.pods, &mut m, *e, pod_key, |m, p| m.apply_pod(p), |m, k| m.delete_pod(k)),
            Ev::Ns(e) => handle(&mut self.namespaces, &mut m, *e, |n: &Namespace| n.name_any(), |m, n| m.apply_namespace(n), |m, n| m.delete_namespace(n)),
        }
    }
}

/// A fresh model for [`run`] to keep.
pub fn new_model() -> SharedModel {
    Arc::new(RwLock::new(Cluster::new()))
}

/// Runs the enforcer until the future is dropped. A failure (or a panic) of the
/// enforcer is logged and it starts over with a fresh model; the table stays in force
/// meanwhile, and the node's other agents are not affected.
pub async fn run(client: kube::Client, cfg: NodeConfig) -> anyhow::Result<()> {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let attempt = std::panic::AssertUnwindSafe(async {
            let model = new_model();
            // The flow recorder reads the same model, beside the enforcer: when it
            // fails it is restarted on its own, and enforcement goes on.
            tokio::select! {
                r = enforce(client.clone(), &cfg, model.clone()) => r,
                () = record_flows(&cfg, model) => unreachable!("the flow recorder restarts forever"),
            }
        })
        .catch_unwind()
        .await;
        let why = match attempt {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => format!("{e:#}"),
            Err(panic) => panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_else(|| "a panic".into()),
        };
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tracing::error!(node = %cfg.name, error = %why, retry_in_s = backoff.as_secs(), "NetworkPolicy enforcer stopped; the policy table stays in force");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Watches, keeps `model` and applies the node's plan whenever it changes.
pub async fn enforce(client: kube::Client, cfg: &NodeConfig, model: SharedModel) -> anyhow::Result<()> {
    let ns = match &cfg.netns {
        Some(p) => Netns::open(p)?,
        None => Netns::current()?,
    };
    let wc = watcher::Config::default();
    let policies = watcher::watcher(Api::<NetworkPolicy>::all(client.clone()), wc.clone()).default_backoff().map_ok(|e| Ev::Policy(Box::new(e)));
    let pods = watcher::watcher(Api::<Pod>::all(client.clone()), wc.clone()).default_backoff().map_ok(|e| Ev::Pod(Box::new(e)));
    let namespaces = watcher::watcher(Api::<Namespace>::all(client), wc).default_backoff().map_ok(|e| Ev::Ns(Box::new(e)));
    let events = futures::stream::select(policies, futures::stream::select(pods, namespaces));
    futures::pin_mut!(events);
    let node = cfg.name.clone();
    let mut listing = Listing::default();
    let mut applier = Some(PolicyApplier::open(&ns)?);
    let mut dirty = false;
    let mut failed = false;
    let mut retry = tokio::time::interval(RETRY);
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                None => return Ok(()),
                Some(Ok(ev)) => {
                    listing.handle(&model, ev);
                    dirty = true;
                    // Coalesce what follows closely.
                    while let Ok(Some(more)) = tokio::time::timeout(COALESCE, events.next()).await {
                        match more {
                            Ok(ev) => listing.handle(&model, ev),
                            Err(e) => tracing::warn!(%node, %e, "watching for NetworkPolicy"),
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(%node, %e, "watching for NetworkPolicy");
                    continue;
                }
            },
            _ = retry.tick() => if !failed { continue },
        }
        if !listing.done() || !(dirty || failed) {
            continue;
        }
        dirty = false;
        let started = Instant::now();
        let ap = applier.take().expect("the applier is back after each apply");
        let (m, name) = (model.clone(), node.clone());
        let (ap, result) = tokio::task::spawn_blocking(move || {
            let mut ap = ap;
            let plan: NodePlan = m.read().unwrap_or_else(|p| p.into_inner()).compile_node(&name);
            if ap.applied() == Some(&plan) {
                return (ap, Ok(None));
            }
            let r = ap.apply(&plan).map(Some);
            (ap, r)
        })
        .await?;
        applier = Some(ap);
        match result {
            Ok(None) => failed = false,
            Ok(Some(r)) => {
                failed = false;
                tracing::debug!(%node, weight = r.weight, transactions = r.transactions, took_us = started.elapsed().as_micros() as u64, "NetworkPolicy applied");
            }
            Err(ApplyError::Plan(e)) => {
                // Nothing was written; the next change of the model tries again.
                failed = false;
                tracing::error!(%node, error = %e, "NetworkPolicy plan refused; the table keeps the previous plan");
            }
            Err(e) => {
                // The applier re-reads the table on its next apply.
                failed = true;
                tracing::warn!(%node, %e, "NetworkPolicy apply failed; retrying from the kernel's state");
            }
        }
    }
}

/// The node's policy flow recorder (`crate::flow_log`), restarted with backoff when it
/// stops; never returns.
async fn record_flows(cfg: &NodeConfig, model: std::sync::Arc<std::sync::RwLock<weft_policy::Cluster>>) {
    let out = crate::flow_log::flow_file(&cfg.state_dir, &cfg.name);
    let mut wait = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let ns = match &cfg.netns {
            Some(p) => weft_kernel::Netns::open(p),
            None => weft_kernel::Netns::current(),
        };
        let why = match ns {
            Ok(ns) => match crate::flow_log::run(ns, cfg.name.clone(), model.clone(), out.clone()).await {
                Ok(()) => "it stopped".to_string(),
                Err(e) => format!("{e:#}"),
            },
            Err(e) => format!("opening the node's network namespace: {e:#}"),
        };
        if started.elapsed() > Duration::from_secs(60) {
            wait = Duration::from_secs(1);
        }
        tracing::warn!(node = %cfg.name, %why, retry_in_s = wait.as_secs(), "policy flow recorder stopped; enforcement goes on");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}
