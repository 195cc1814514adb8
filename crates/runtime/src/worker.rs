//! One pod's life on this node: sandbox (netns + CNI), volumes, init containers then
//! containers as host processes, probes, restarts per `restartPolicy`, status to the
//! API, graceful stop and clean-up. Starting is in `container_start`, stopping in
//! `container_stop`, the status in `worker_status`.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Container, Node, Pod};
use kube::api::Api;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, OnceCell};
use tokio::time::Instant;
use weft_kernel::Netns;

use crate::dns_files;
use crate::events::{Recorder, Subject};
use crate::node::NodeConfig;
use crate::probe_run::{self, Report};
use crate::process;
use crate::start_order;
use crate::volumes::PodVolumes;

/// What every pod worker on the node shares.
pub struct Shared {
    pub client: kube::Client,
    pub cfg: NodeConfig,
    cni: OnceCell<weft_cni::NetConfig>,
    attacher: crate::cni_attach::Attacher,
    pub recorder: Recorder,
    /// The node's network namespace: probes and HTTP hooks connect from it, as the
    /// kubelet does from the node (None: the agent's own, in cluster mode).
    pub node_netns: Option<Arc<Netns>>,
}

impl Shared {
    pub async fn new(client: kube::Client, cfg: NodeConfig) -> Result<Shared> {
        std::fs::create_dir_all(cfg.pods_dir()).with_context(|| format!("creating {}", cfg.pods_dir().display()))?;
        let node_netns = match &cfg.netns {
            Some(p) => Some(Arc::new(Netns::open(p).with_context(|| format!("opening node {}'s netns {}", cfg.name, p.display()))?)),
            None => None,
        };
        let recorder = Recorder::new(client.clone(), &cfg.name);
        let attacher = crate::cni_attach::Attacher::from_env(&cfg.name);
        Ok(Shared { client, cfg, cni: OnceCell::new(), attacher, recorder, node_netns })
    }

    /// The CNI config, once the node has its pod CIDRs (node IPAM assigns them).
    async fn cni(&self) -> Result<&weft_cni::NetConfig> {
        self.cni
            .get_or_try_init(|| async {
                let nodes: Api<Node> = Api::all(self.client.clone());
                loop {
                    let n = nodes.get(&self.cfg.name).await?;
                    let cidrs: Vec<ipnet::IpNet> = n.spec.and_then(|s| s.pod_cidrs).unwrap_or_default().iter().filter_map(|c| c.parse().ok()).collect();
                    if !cidrs.is_empty() {
                        let mut c = weft_cni::NetConfig::new("weft", cidrs, self.cfg.state_dir.join("cni")).map_err(|e| anyhow::anyhow!("{}", e.msg))?;
                        (c.mtu, c.gso_max_size) = crate::underlay::pod_links(&self.cfg).await?;
                        return Ok(c);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
            .await
    }

    fn request(&self, uid: &str, netns: Option<PathBuf>, pod: &Pod) -> weft_cni::AttachRequest {
        let mut r = weft_cni::AttachRequest::new(uid, "eth0", netns);
        r.host_netns = self.cfg.netns.clone();
        r.pod = Some(weft_cni::PodRef { namespace: pod.metadata.namespace.clone().unwrap_or_default(), name: pod.metadata.name.clone().unwrap_or_default() });
        r
    }

    /// Removes sandboxes left on disk whose pods no longer exist.
    pub async fn reap_orphans(&self, live: &[String]) {
        let Ok(entries) = std::fs::read_dir(self.cfg.pods_dir()) else { return };
        for e in entries.flatten() {
            let uid = e.file_name().to_string_lossy().to_string();
            if live.contains(&uid) {
                continue;
            }
            tracing::info!(node = %self.cfg.name, pod_uid = %uid, "removing the sandbox of a pod that is gone");
            self.remove_sandbox(&uid, &e.path(), None).await;
        }
    }

    /// Stops what is recorded as running in a pod's dir, detaches its network (unless
    /// hostNetwork) and removes its netns and dir.
    async fn remove_sandbox(&self, uid: &str, dir: &Path, pod: Option<&Pod>) {
        kill_recorded(dir);
        let host_network = pod.and_then(|p| p.spec.as_ref()).and_then(|s| s.host_network).unwrap_or(false);
        if !host_network {
            if let Ok(conf) = self.cni().await {
                let mut r = weft_cni::AttachRequest::new(uid, "eth0", None);
                r.host_netns = self.cfg.netns.clone();
                if let Err(e) = weft_cni::detach(&r, conf).await {
                    tracing::warn!(pod_uid = %uid, error = %e.msg, "CNI DEL");
                }
            }
            let _ = Netns::remove(&dir.join("netns"));
        }
        let _ = std::fs::remove_dir_all(dir);
        self.recorder.forget(uid);
    }
}

/// Kills the containers recorded under a pod's dir (`containers/*/pid`).
pub(crate) fn kill_recorded(pod_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(pod_dir.join("containers")) else { return };
    for e in entries.flatten() {
        process::kill_leftover(&e.path().join("pid"));
    }
}

/// One container of the pod (init containers first, then the app containers).
pub(crate) struct Run {
    pub name: String,
    pub init: bool,
    /// An init container with `restartPolicy: Always`.
    pub sidecar: bool,
    pub pid: Option<u32>,
    /// Counts the container's runs; probe and hook reports carry it, so stale ones are
    /// ignored.
    pub instance: u64,
    pub restarts: u32,
    pub state: Value,
    pub last_state: Value,
    /// When the container may start again (restart back-off).
    pub next_start: Option<Instant>,
    pub backoff: Duration,
    pub started_at: Option<Instant>,
    pub readiness_ok: bool,
    pub startup_ok: bool,
    pub post_start_pending: bool,
    pub started_once: bool,
    /// Being stopped (probe failure, failed postStart, pod finished).
    pub killing: bool,
    pub probes: Option<tokio::task::AbortHandle>,
    /// Becomes true when the current run's process has exited.
    pub exited: Option<watch::Receiver<bool>>,
}

pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl Run {
    fn new(c: &Container, init: bool, pod_has_init: bool) -> Run {
        let waiting = if pod_has_init { "PodInitializing" } else { "ContainerCreating" };
        Run {
            name: c.name.clone(),
            init,
            sidecar: init && c.restart_policy.as_deref() == Some("Always"),
            pid: None,
            instance: 0,
            restarts: 0,
            state: json!({"waiting": {"reason": waiting}}),
            last_state: json!({}),
            next_start: None,
            backoff: FIRST_BACKOFF,
            started_at: None,
            readiness_ok: false,
            startup_ok: false,
            post_start_pending: false,
            started_once: false,
            killing: false,
            probes: None,
            exited: None,
        }
    }

    /// Started: running, its startup probe passed and its postStart hook done.
    pub fn started(&self) -> bool {
        self.pid.is_some() && self.startup_ok && !self.post_start_pending
    }

    pub fn ready(&self) -> bool {
        self.started() && self.readiness_ok && !self.killing
    }

    pub fn slot(&self) -> start_order::Slot {
        start_order::Slot {
            init: self.init,
            sidecar: self.sidecar,
            running: self.pid.is_some(),
            started: self.started(),
            started_once: self.started_once,
            terminated: self.state.pointer("/terminated/exitCode").and_then(Value::as_i64),
        }
    }
}

pub(crate) type Exit = (usize, u64, Option<i32>);
pub(crate) type HookDone = (usize, u64, Result<(), String>);

pub(crate) struct Worker {
    pub sh: Arc<Shared>,
    pub uid: String,
    pub pod: Pod,
    pub dir: PathBuf,
    pub netns: Option<Netns>,
    pub ips: Vec<String>,
    pub runs: Vec<Run>,
    pub exits: (mpsc::UnboundedSender<Exit>, mpsc::UnboundedReceiver<Exit>),
    pub probes: (probe_run::Sender, mpsc::UnboundedReceiver<(usize, u64, Report)>),
    pub hooks: (mpsc::UnboundedSender<HookDone>, mpsc::UnboundedReceiver<HookDone>),
    pub sandbox_error: Option<String>,
    pub volumes: PodVolumes,
    /// Why the pod's volumes are not ready: (unsupported?, message).
    pub volume_error: Option<(bool, String)>,
    pub volumes_ready: bool,
    pub next_volume_sync: Instant,
    /// Every init container has done its part once (sticky, as upstream).
    pub initialized: bool,
    /// Succeeded or Failed: nothing runs again.
    pub final_phase: Option<&'static str>,
    pub terminating: bool,
    /// Condition type → (status, lastTransitionTime).
    pub transitions: BTreeMap<String, (bool, String)>,
    pub last_status: Value,
}

pub async fn run(sh: Arc<Shared>, uid: String, mut rx: watch::Receiver<Option<Pod>>) {
    let Some(pod) = rx.borrow().clone() else { return };
    let mut w = Worker::new(sh, uid, pod);
    if w.pod.metadata.deletion_timestamp.is_none() {
        if let Err(e) = w.start_sandbox().await {
            tracing::warn!(pod = %w.name(), error = %format!("{e:#}"), "creating the pod sandbox");
            w.sandbox_error = Some(format!("{e:#}"));
        }
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        if w.pod.metadata.deletion_timestamp.is_some() {
            let grace = w.pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0) as u64;
            w.stop_all(Duration::from_secs(grace)).await;
            w.teardown().await;
            crate::pods::finish_deletion(&w.sh.client, &w.pod).await;
            return;
        }
        if w.sandbox_error.is_none() && w.final_phase.is_none() {
            w.sync_volumes().await;
            w.start_due().await;
            w.finish_if_done();
        }
        w.post_status().await;
        tokio::select! {
            changed = rx.changed() => {
                let next = if changed.is_ok() { rx.borrow().clone() } else { None };
                match next {
                    Some(p) => w.pod = p,
                    None => {
                        // The pod object is gone (force-deleted): stop at once.
                        w.stop_all(Duration::from_secs(0)).await;
                        w.teardown().await;
                        return;
                    }
                }
            }
            Some((i, instance, code)) = w.exits.1.recv() => w.exited(i, instance, code),
            Some((i, instance, report)) = w.probes.1.recv() => w.on_probe(i, instance, report),
            Some((i, instance, result)) = w.hooks.1.recv() => w.on_post_start(i, instance, result),
            _ = tick.tick() => {
                if w.sandbox_error.is_some() {
                    w.sandbox_error = w.start_sandbox().await.err().map(|e| format!("{e:#}"));
                }
            }
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Worker {
    fn new(sh: Arc<Shared>, uid: String, pod: Pod) -> Worker {
        let dir = sh.cfg.pods_dir().join(&uid);
        let spec = pod.spec.clone().unwrap_or_default();
        let inits = spec.init_containers.clone().unwrap_or_default();
        let has_init = !inits.is_empty();
        let runs = inits.iter().map(|c| Run::new(c, true, has_init)).chain(spec.containers.iter().map(|c| Run::new(c, false, has_init))).collect();
        // Transition times survive a restart of weft: start from what the API has.
        let transitions = pod
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .filter_map(|c| Some((c.type_.clone(), (c.status == "True", c.last_transition_time.as_ref()?.0.to_string()))))
            .collect();
        Worker {
            sh,
            uid,
            pod,
            dir,
            netns: None,
            ips: vec![],
            runs,
            exits: mpsc::unbounded_channel(),
            probes: mpsc::unbounded_channel(),
            hooks: mpsc::unbounded_channel(),
            sandbox_error: None,
            volumes: PodVolumes::default(),
            volume_error: None,
            volumes_ready: false,
            next_volume_sync: Instant::now(),
            initialized: false,
            final_phase: None,
            terminating: false,
            transitions,
            last_status: Value::Null,
        }
    }

    pub fn name(&self) -> String {
        format!("{}/{}", self.pod.metadata.namespace.as_deref().unwrap_or_default(), self.pod.metadata.name.as_deref().unwrap_or_default())
    }

    pub fn host_network(&self) -> bool {
        self.pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
    }

    pub fn restart_policy(&self) -> String {
        self.pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into())
    }

    /// The spec of the i-th container (init containers first).
    pub fn spec_of(&self, i: usize) -> Option<Container> {
        let spec = self.pod.spec.as_ref()?;
        let inits = spec.init_containers.as_deref().unwrap_or_default();
        if i < inits.len() {
            Some(inits[i].clone())
        } else {
            spec.containers.get(i - inits.len()).cloned()
        }
    }

    pub fn subject(&self, i: usize) -> Subject {
        let r = &self.runs[i];
        Subject::container(&self.pod, r.init, &r.name)
    }

    pub fn pod_ip(&self) -> Option<std::net::IpAddr> {
        self.ips.first().and_then(|ip| ip.parse().ok())
    }

    /// The pod's grace period (`terminationGracePeriodSeconds`, default 30s).
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30).max(0) as u64)
    }

    /// The pod's netns (created or found) and its addresses through CNI.
    async fn start_sandbox(&mut self) -> Result<()> {
        std::fs::create_dir_all(self.dir.join("containers"))?;
        if self.host_network() {
            self.netns = Some(match &self.sh.cfg.netns {
                Some(p) => Netns::open(p)?,
                None => Netns::current()?,
            });
            self.ips = self.sh.cfg.addresses.clone();
        } else {
            let path = self.dir.join("netns");
            let (ns, fresh) = if path.exists() { (Netns::open(&path).or_else(|_| recreate(&path))?, false) } else { (Netns::create(&path)?, true) };
            // After a restart of weft the sandbox is already wired: keep its addresses.
            let existing = if fresh { Vec::new() } else { pod_addresses(&ns).await.unwrap_or_default() };
            if existing.is_empty() {
                let conf = self.sh.cni().await?;
                let req = self.sh.request(&self.uid, Some(path.clone()), &self.pod);
                let (result, timing) = self.sh.attacher.attach(req, conf).await;
                let result = match result {
                    Ok(r) => r,
                    Err(e) => anyhow::bail!("CNI ADD for pod {}: {} {}", self.name(), e.msg, e.details),
                };
                self.ips = result.ips.iter().map(|i| i.address.addr().to_string()).collect();
                tracing::info!(pod = %self.name(), cni_wait_ms = ms(timing.waited), cni_add_ms = ms(timing.took), "CNI ADD done");
            } else {
                self.ips = existing;
            }
            // Containers left running by an earlier weft that was killed: start afresh.
            kill_recorded(&self.dir);
            self.netns = Some(ns);
        }
        let domain = self.sh.cfg.cluster_dns.domain.clone();
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        std::fs::write(self.dir.join("resolv.conf"), dns_files::resolv_conf(&self.pod, &self.sh.cfg.cluster_dns, &host_resolv))?;
        let hosts = if self.host_network() { std::fs::read_to_string("/etc/hosts").unwrap_or_default() } else { dns_files::hosts(&self.pod, &self.ips, &domain) };
        std::fs::write(self.dir.join("hosts"), hosts)?;
        tracing::info!(pod = %self.name(), ips = ?self.ips, node = %self.sh.cfg.name, "sandbox ready");
        Ok(())
    }

    /// Sets up the pod's volumes before the first container, and refreshes the ones made
    /// from API objects now and then (config maps and secrets change).
    async fn sync_volumes(&mut self) {
        let refresh = self.volumes_ready && PodVolumes::has_projections(&self.pod);
        if (self.volumes_ready && !refresh) || Instant::now() < self.next_volume_sync {
            return;
        }
        let result = self.volumes.sync(&self.sh.client, &self.pod, &self.dir).await;
        let pause = if result.is_ok() { Duration::from_secs(10) } else { Duration::from_secs(2) };
        self.next_volume_sync = Instant::now() + pause;
        match result {
            Ok(()) => {
                self.volumes_ready = true;
                self.volume_error = None;
            }
            Err(e) if self.volumes_ready => tracing::warn!(pod = %self.name(), error = %e.message, "refreshing volumes"),
            Err(e) => {
                if self.volume_error.as_ref().map(|(_, m)| m) != Some(&e.message) {
                    self.sh.recorder.publish(&Subject::pod(&self.pod), crate::events::WARNING, "FailedMount", e.message.clone());
                }
                self.volume_error = Some((e.unsupported, e.message));
            }
        }
    }

    /// Starts every container that is due: in init order, past its back-off.
    async fn start_due(&mut self) {
        if self.terminating {
            return;
        }
        if !self.volumes_ready {
            if let Some((unsupported, msg)) = self.volume_error.clone() {
                let reason = if unsupported { "VolumeNotSupported" } else { "ContainerCreating" };
                for r in self.runs.iter_mut().filter(|r| r.pid.is_none()) {
                    r.state = json!({"waiting": {"reason": reason, "message": msg}});
                }
            }
            return;
        }
        let slots: Vec<start_order::Slot> = self.runs.iter().map(Run::slot).collect();
        let plan = start_order::starts(&slots, self.initialized);
        if plan.initialized && !self.initialized {
            self.initialized = true;
            tracing::info!(pod = %self.name(), "initialized");
        }
        let mut ctx = crate::container_start::StartCtx::default();
        for i in plan.start {
            if self.runs[i].next_start.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            self.start_container(i, &mut ctx).await;
        }
    }

    /// Once the pod is Succeeded or Failed, its remaining sidecars are stopped and
    /// nothing runs again.
    fn finish_if_done(&mut self) {
        let phase = crate::pod_status::phase(&self.view());
        if phase != "Succeeded" && phase != "Failed" {
            return;
        }
        self.final_phase = Some(phase);
        tracing::info!(pod = %self.name(), phase, "pod finished");
        for i in 0..self.runs.len() {
            if self.runs[i].pid.is_some() && !self.runs[i].killing {
                let grace = self.grace();
                self.kill(i, grace);
            }
        }
    }

    /// A container's process ended: restart it (after back-off) or record it as done.
    pub(crate) fn exited(&mut self, i: usize, instance: u64, code: Option<i32>) {
        let policy = self.restart_policy();
        let pod_ref = format!("{}_{}({})", self.pod.metadata.name.as_deref().unwrap_or_default(), self.pod.metadata.namespace.as_deref().unwrap_or_default(), self.uid);
        let stopping = self.terminating || self.final_phase.is_some();
        let Some(r) = self.runs.get_mut(i) else { return };
        if r.instance != instance || r.pid.is_none() {
            return;
        }
        if let Some(p) = r.probes.take() {
            p.abort();
        }
        let _ = std::fs::remove_file(process::container_dir(&self.dir, &r.name).join("pid"));
        let code = code.unwrap_or(-1);
        let started = r.state.pointer("/running/startedAt").cloned().unwrap_or(Value::Null);
        let reason = if code == 0 { "Completed" } else { "Error" };
        let term = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now(), "containerID": format!("weft://{}/{}", self.uid, r.name)}});
        let again = if stopping {
            false
        } else if r.sidecar {
            true
        } else if r.init {
            code != 0 && policy != "Never"
        } else {
            policy == "Always" || (policy == "OnFailure" && code != 0)
        };
        // A container that ran for 10 minutes starts its back-off over, as upstream.
        if r.started_at.is_some_and(|t| t.elapsed() > Duration::from_secs(600)) {
            r.backoff = FIRST_BACKOFF;
        }
        r.pid = None;
        r.killing = false;
        r.readiness_ok = false;
        r.exited = None;
        if again {
            r.last_state = term;
            r.restarts += 1;
            r.state = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off {}s restarting failed container={} pod={pod_ref}", r.backoff.as_secs(), r.name)}});
            r.next_start = Some(Instant::now() + r.backoff);
            r.backoff = (r.backoff * 2).min(MAX_BACKOFF);
        } else {
            r.state = term;
        }
        tracing::info!(pod = %self.name(), container = %self.runs[i].name, code, restart = again, "container exited");
    }

    fn on_probe(&mut self, i: usize, instance: u64, report: Report) {
        let pod = self.name();
        let Some(r) = self.runs.get_mut(i) else { return };
        if r.instance != instance || r.pid.is_none() {
            return;
        }
        match report {
            Report::Ready(ok) => r.readiness_ok = ok,
            Report::Started => r.startup_ok = true,
            Report::Kill { kind, grace, message } => {
                if r.killing {
                    return;
                }
                let what = kind.title().to_lowercase();
                tracing::info!(%pod, container = %r.name, probe = %what, %message, "probe failed: restarting the container");
                let msg = format!("Container {} failed {what} probe, will be restarted", r.name);
                self.sh.recorder.publish(&self.subject(i), crate::events::NORMAL, "Killing", msg);
                let grace = grace.unwrap_or_else(|| self.grace());
                self.kill(i, grace);
            }
        }
    }

    fn on_post_start(&mut self, i: usize, instance: u64, result: Result<(), String>) {
        let Some(r) = self.runs.get_mut(i) else { return };
        if r.instance != instance || r.pid.is_none() {
            return;
        }
        r.post_start_pending = false;
        if let Err(m) = result {
            let name = r.name.clone();
            self.sh.recorder.publish(&self.subject(i), crate::events::WARNING, "FailedPostStartHook", m);
            self.sh.recorder.publish(&self.subject(i), crate::events::NORMAL, "Killing", format!("FailedPostStartHook: Container {name} failed its postStart hook, will be restarted"));
            let grace = self.grace();
            self.kill(i, grace);
        }
    }

    async fn teardown(&mut self) {
        for r in &mut self.runs {
            if let Some(p) = r.probes.take() {
                p.abort();
            }
        }
        self.netns = None;
        self.sh.remove_sandbox(&self.uid, &self.dir, Some(&self.pod)).await;
    }

    pub fn hostname(&self) -> String {
        if self.host_network() {
            self.sh.cfg.name.clone()
        } else {
            dns_files::hostname(&self.pod)
        }
    }
}

/// The global addresses on the pod's eth0, IPv4 first.
async fn pod_addresses(ns: &Netns) -> Result<Vec<String>> {
    let h = weft_kernel::Handle::open(ns)?;
    let Some(eth0) = h.link_by_name("eth0").await? else { return Ok(vec![]) };
    let mut ips: Vec<std::net::IpAddr> = h.addresses(Some(eth0.index)).await?.into_iter().map(|a| a.net.addr()).filter(|ip| !matches!(ip, std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)).collect();
    ips.sort_by_key(|ip| ip.is_ipv6());
    Ok(ips.iter().map(|i| i.to_string()).collect())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn recreate(path: &Path) -> weft_kernel::Result<Netns> {
    let _ = std::fs::remove_file(path);
    Netns::create(path)
}
