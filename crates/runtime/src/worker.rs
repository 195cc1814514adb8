//! One pod's life on this node: sandbox (netns + CNI), containers as host processes,
//! restarts per `restartPolicy`, status to the API, graceful stop and clean-up.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret, Service};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, OnceCell};
use weft_kernel::Netns;

use crate::dns_files;
use crate::env;
use crate::image::{self, Launch, RealHost};
use crate::node::NodeConfig;
use crate::process;

/// What every pod worker on the node shares.
pub struct Shared {
    pub client: kube::Client,
    pub cfg: NodeConfig,
    cni: OnceCell<weft_cni::NetConfig>,
}

impl Shared {
    pub async fn new(client: kube::Client, cfg: NodeConfig) -> Result<Shared> {
        std::fs::create_dir_all(cfg.pods_dir()).with_context(|| format!("creating {}", cfg.pods_dir().display()))?;
        Ok(Shared { client, cfg, cni: OnceCell::new() })
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
                        c.mtu = crate::underlay::pod_mtu(&self.cfg).await?;
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
    }
}

/// Kills the containers recorded under a pod's dir (`containers/*/pid`).
pub(crate) fn kill_recorded(pod_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(pod_dir.join("containers")) else { return };
    for e in entries.flatten() {
        process::kill_leftover(&e.path().join("pid"));
    }
}

struct Run {
    name: String,
    pid: Option<u32>,
    restarts: u32,
    state: Value,
    last_state: Value,
    /// When the container may start again (restart back-off).
    next_start: Option<tokio::time::Instant>,
    backoff: Duration,
}

struct Worker {
    sh: Arc<Shared>,
    uid: String,
    pod: Pod,
    dir: PathBuf,
    netns: Option<Netns>,
    ips: Vec<String>,
    runs: Vec<Run>,
    exits: (mpsc::UnboundedSender<(usize, u32, Option<i32>)>, mpsc::UnboundedReceiver<(usize, u32, Option<i32>)>),
    sandbox_error: Option<String>,
    last_status: Value,
}

pub async fn run(sh: Arc<Shared>, uid: String, mut rx: watch::Receiver<Option<Pod>>) {
    let Some(pod) = rx.borrow().clone() else { return };
    let dir = sh.cfg.pods_dir().join(&uid);
    let runs = pod.spec.as_ref().map(|s| s.containers.iter().map(|c| Run::new(&c.name)).collect()).unwrap_or_default();
    let mut w = Worker { sh, uid, pod, dir, netns: None, ips: vec![], runs, exits: mpsc::unbounded_channel(), sandbox_error: None, last_status: Value::Null };
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
        if w.sandbox_error.is_none() {
            w.start_due().await;
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
            Some((i, pid, code)) = w.exits.1.recv() => w.exited(i, pid, code),
            _ = tick.tick() => {
                if w.sandbox_error.is_some() {
                    w.sandbox_error = w.start_sandbox().await.err().map(|e| format!("{e:#}"));
                }
            }
        }
    }
}

impl Run {
    fn new(name: &str) -> Run {
        Run { name: name.into(), pid: None, restarts: 0, state: json!({"waiting": {"reason": "ContainerCreating"}}), last_state: json!({}), next_start: None, backoff: Duration::from_secs(1) }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Worker {
    fn name(&self) -> String {
        format!("{}/{}", self.pod.metadata.namespace.as_deref().unwrap_or_default(), self.pod.metadata.name.as_deref().unwrap_or_default())
    }

    fn host_network(&self) -> bool {
        self.pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
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
            let ns = if path.exists() { Netns::open(&path).or_else(|_| recreate(&path))? } else { Netns::create(&path)? };
            // After a restart of weft the sandbox is already wired: keep its addresses.
            let existing = pod_addresses(&ns).await.unwrap_or_default();
            if existing.is_empty() {
                let conf = self.sh.cni().await?;
                let req = self.sh.request(&self.uid, Some(path.clone()), &self.pod);
                let result = match weft_cni::attach(&req, conf).await {
                    Ok(r) => r,
                    Err(e) => anyhow::bail!("CNI ADD for pod {}: {} {}", self.name(), e.msg, e.details),
                };
                self.ips = result.ips.iter().map(|i| i.address.addr().to_string()).collect();
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

    /// Starts every container that is due: not running, not finished for good, and
    /// past its back-off.
    async fn start_due(&mut self) {
        let policy = self.pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into());
        let containers = self.pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
        let mut services: Option<Vec<Service>> = None;
        for (i, c) in containers.iter().enumerate() {
            let Some(run) = self.runs.get(i) else { continue };
            if run.pid.is_some() {
                continue;
            }
            if let Some(t) = run.next_start {
                if tokio::time::Instant::now() < t {
                    continue;
                }
            }
            if let Some(code) = run.state.pointer("/terminated/exitCode").and_then(Value::as_i64) {
                let again = policy == "Always" || (policy == "OnFailure" && code != 0);
                if !again {
                    continue;
                }
            }
            let cdir = process::container_dir(&self.dir, &c.name);
            let _ = std::fs::create_dir_all(&cdir);
            let program = match image::resolve(c, &RealHost, &cdir) {
                Launch::Run(p) => p,
                Launch::Waiting { reason, message } => {
                    self.runs[i].state = json!({"waiting": {"reason": reason, "message": message}});
                    continue;
                }
            };
            for (path, content) in &program.files {
                if let Some(parent) = path.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::write(path, content);
            }
            if services.is_none() {
                services = Some(self.services().await);
            }
            let sources = self.sources(c).await;
            let base = vec![("PATH".to_string(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()), ("HOSTNAME".to_string(), self.hostname())];
            let mut pod_for_env = self.pod.clone();
            if let Some(st) = pod_for_env.status.as_mut() {
                st.pod_ip = self.ips.first().cloned();
                st.pod_ips = Some(self.ips.iter().map(|ip| k8s_openapi::api::core::v1::PodIP { ip: ip.clone() }).collect());
                st.host_ip = self.sh.cfg.addresses.first().cloned();
            }
            let envs = match env::build(&pod_for_env, c, services.as_deref().unwrap_or_default(), &sources, &base) {
                Ok(e) => e,
                Err(msg) => {
                    self.runs[i].state = json!({"waiting": {"reason": "CreateContainerConfigError", "message": msg}});
                    self.runs[i].next_start = Some(tokio::time::Instant::now() + Duration::from_secs(2));
                    continue;
                }
            };
            let args: Vec<String> = program.args.iter().map(|a| env::expand(a, &envs)).collect();
            let netns = self.netns.as_ref().expect("sandbox made before containers");
            let hostname = self.hostname();
            let log = cdir.join("log");
            let cwd = c.working_dir.as_ref().map(PathBuf::from);
            let spawn = process::Spawn {
                program: &program.path,
                args: &args,
                env: &envs,
                cwd: cwd.as_deref(),
                netns: netns.as_fd(),
                hostname: &hostname,
                resolv_conf: &self.dir.join("resolv.conf"),
                hosts: &self.dir.join("hosts"),
                log: &log,
            };
            match process::spawn(&spawn) {
                Ok(mut child) => {
                    let pid = child.id().unwrap_or(0);
                    let _ = std::fs::write(cdir.join("pid"), pid.to_string());
                    let tx = self.exits.0.clone();
                    tokio::spawn(async move {
                        let code = child.wait().await.ok().and_then(|s| {
                            use std::os::unix::process::ExitStatusExt;
                            s.code().or_else(|| s.signal().map(|sig| 128 + sig))
                        });
                        let _ = tx.send((i, pid, code));
                    });
                    let r = &mut self.runs[i];
                    r.pid = Some(pid);
                    r.state = json!({"running": {"startedAt": now()}});
                    tracing::info!(pod = %self.name(), container = %c.name, pid, "container started");
                }
                Err(e) => {
                    let r = &mut self.runs[i];
                    r.state = json!({"waiting": {"reason": "RunContainerError", "message": format!("starting {}: {e}", program.path.display())}});
                    r.next_start = Some(tokio::time::Instant::now() + r.backoff);
                    r.backoff = (r.backoff * 2).min(Duration::from_secs(300));
                }
            }
        }
    }

    fn exited(&mut self, i: usize, pid: u32, code: Option<i32>) {
        let Some(r) = self.runs.get_mut(i) else { return };
        if r.pid != Some(pid) {
            return;
        }
        let _ = std::fs::remove_file(process::container_dir(&self.dir, &r.name).join("pid"));
        let code = code.unwrap_or(-1);
        let started = r.state.pointer("/running/startedAt").cloned().unwrap_or(Value::Null);
        let reason = if code == 0 { "Completed" } else { "Error" };
        let term = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now()}});
        let policy = self.pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into());
        let again = policy == "Always" || (policy == "OnFailure" && code != 0);
        r.pid = None;
        if again {
            r.last_state = term.clone();
            r.restarts += 1;
            r.state = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off {}s restarting failed container", r.backoff.as_secs())}});
            r.next_start = Some(tokio::time::Instant::now() + r.backoff);
            r.backoff = (r.backoff * 2).min(Duration::from_secs(300));
        } else {
            r.state = term;
        }
    }

    async fn stop_all(&mut self, grace: Duration) {
        let pids: Vec<(usize, u32)> = self.runs.iter().enumerate().filter_map(|(i, r)| r.pid.map(|p| (i, p))).collect();
        if pids.is_empty() {
            return;
        }
        for (_, pid) in &pids {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.runs.iter().any(|r| r.pid.is_some()) {
            match tokio::time::timeout_at(deadline, self.exits.1.recv()).await {
                Ok(Some((i, pid, code))) => {
                    self.exited(i, pid, code);
                    if let Some(r) = self.runs.get_mut(i) {
                        r.pid = None;
                    }
                }
                _ => break,
            }
        }
        for (_, pid) in &pids {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        for r in &mut self.runs {
            r.pid = None;
        }
    }

    async fn teardown(&mut self) {
        self.netns = None;
        self.sh.remove_sandbox(&self.uid, &self.dir, Some(&self.pod)).await;
    }

    fn hostname(&self) -> String {
        if self.host_network() {
            self.sh.cfg.name.clone()
        } else {
            dns_files::hostname(&self.pod)
        }
    }

    async fn services(&self) -> Vec<Service> {
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let mut out: Vec<Service> = Api::<Service>::namespaced(self.sh.client.clone(), &ns).list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
        if ns != "default" {
            if let Ok(k) = Api::<Service>::namespaced(self.sh.client.clone(), "default").get("kubernetes").await {
                out.push(k);
            }
        }
        out
    }

    /// The config maps and secrets that the container's env names.
    async fn sources(&self, c: &k8s_openapi::api::core::v1::Container) -> env::Sources {
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let mut s = env::Sources::default();
        let mut cms: Vec<String> = c.env_from.iter().flatten().filter_map(|f| f.config_map_ref.as_ref().map(|r| r.name.clone())).collect();
        let mut secrets: Vec<String> = c.env_from.iter().flatten().filter_map(|f| f.secret_ref.as_ref().map(|r| r.name.clone())).collect();
        for e in c.env.iter().flatten() {
            if let Some(f) = &e.value_from {
                cms.extend(f.config_map_key_ref.as_ref().map(|r| r.name.clone()));
                secrets.extend(f.secret_key_ref.as_ref().map(|r| r.name.clone()));
            }
        }
        for name in cms {
            if let Ok(cm) = Api::<ConfigMap>::namespaced(self.sh.client.clone(), &ns).get(&name).await {
                s.config_maps.insert(name, cm.data.unwrap_or_default());
            }
        }
        for name in secrets {
            if let Ok(sec) = Api::<Secret>::namespaced(self.sh.client.clone(), &ns).get(&name).await {
                let data: BTreeMap<String, String> = sec.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).to_string())).collect();
                s.secrets.insert(name, data);
            }
        }
        s
    }

    /// Posts the pod's status when it changed.
    async fn post_status(&mut self) {
        let status = self.status();
        if status == self.last_status {
            return;
        }
        let (Some(ns), Some(name)) = (self.pod.metadata.namespace.clone(), self.pod.metadata.name.clone()) else { return };
        let api: Api<Pod> = Api::namespaced(self.sh.client.clone(), &ns);
        match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await {
            Ok(_) => self.last_status = status,
            Err(e) => tracing::debug!(pod = %self.name(), %e, "posting pod status"),
        }
    }

    fn status(&self) -> Value {
        let containers = self.pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
        let statuses: Vec<Value> = containers
            .iter()
            .zip(&self.runs)
            .map(|(c, r)| {
                let running = r.pid.is_some();
                let mut s = json!({
                    "name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "",
                    "ready": running, "started": running, "restartCount": r.restarts,
                    "state": r.state, "lastState": r.last_state,
                });
                if running {
                    s["containerID"] = json!(format!("weft://{}/{}", self.uid, c.name));
                }
                s
            })
            .collect();
        let all_running = !self.runs.is_empty() && self.runs.iter().all(|r| r.pid.is_some());
        let terminated: Vec<i64> = self.runs.iter().filter_map(|r| r.state.pointer("/terminated/exitCode").and_then(Value::as_i64)).collect();
        let phase = if self.runs.iter().any(|r| r.pid.is_some()) || self.runs.iter().any(|r| r.restarts > 0) {
            "Running"
        } else if !self.runs.is_empty() && terminated.len() == self.runs.len() {
            if terminated.iter().all(|c| *c == 0) {
                "Succeeded"
            } else {
                "Failed"
            }
        } else {
            "Pending"
        };
        let t = self.pod.metadata.creation_timestamp.as_ref().map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_else(now);
        let cond = |ty: &str, ok: bool, reason: Option<&str>| {
            let mut c = json!({"type": ty, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": t});
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            c
        };
        let ready = all_running;
        let sandbox = self.netns.is_some();
        let mut st = json!({
            "phase": phase,
            "hostIP": self.sh.cfg.addresses.first(),
            "hostIPs": self.sh.cfg.addresses.iter().map(|a| json!({"ip": a})).collect::<Vec<_>>(),
            "startTime": t,
            "qosClass": self.pod.status.as_ref().and_then(|s| s.qos_class.clone()).unwrap_or_else(|| "BestEffort".into()),
            "conditions": [
                cond("PodReadyToStartContainers", sandbox, None),
                cond("Initialized", true, None),
                cond("Ready", ready, (!ready).then_some("ContainersNotReady")),
                cond("ContainersReady", ready, (!ready).then_some("ContainersNotReady")),
                cond("PodScheduled", true, None),
            ],
            "containerStatuses": statuses,
        });
        if !self.ips.is_empty() && sandbox {
            st["podIP"] = json!(self.ips[0]);
            st["podIPs"] = json!(self.ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>());
        }
        if let Some(e) = &self.sandbox_error {
            st["message"] = json!(e);
            st["reason"] = json!("SandboxCreateFailed");
        }
        st
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

fn recreate(path: &Path) -> weft_kernel::Result<Netns> {
    let _ = std::fs::remove_file(path);
    Netns::create(path)
}
