//! Starting one container of a pod: what runs (`image`), its environment (`env`), its
//! volume mounts (`mount_plan`), the process (`process::spawn`), then its probes
//! (`probe_run`) and its postStart hook. A container that cannot start waits with a
//! reason that says why.

use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret, Service};
use kube::api::{Api, ListParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::env;
use crate::image::{self, Launch, RealHost};
use crate::mount_exec::Prepared;
use crate::mount_plan::{self, HostFs};
use crate::process;
use crate::worker::{Worker, MAX_BACKOFF};

/// What several starts in one pass share.
#[derive(Default)]
pub struct StartCtx {
    services: Option<Vec<Service>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Worker {
    /// Waits the container with a reason, and retries after `retry`.
    fn wait_with(&mut self, i: usize, reason: &str, message: String, retry: Option<Duration>) {
        let r = &mut self.runs[i];
        r.state = json!({"waiting": {"reason": reason, "message": message}});
        if let Some(d) = retry {
            r.next_start = Some(Instant::now() + d);
        }
    }

    pub(crate) async fn start_container(&mut self, i: usize, ctx: &mut StartCtx) {
        let Some(c) = self.spec_of(i) else { return };
        let list = if self.runs[i].init { "initContainers" } else { "containers" };
        let cdir = process::container_dir(&self.dir, &c.name);
        let _ = std::fs::create_dir_all(&cdir);
        let program = match image::resolve(&c, &RealHost, &cdir) {
            Launch::Run(p) => p,
            Launch::Waiting { reason, message } => return self.wait_with(i, &reason, message, None),
        };
        for (path, content) in &program.files {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(path, content);
        }
        if ctx.services.is_none() {
            ctx.services = Some(self.services().await);
        }
        let sources = self.sources(&c).await;
        let base = vec![("PATH".to_string(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()), ("HOSTNAME".to_string(), self.hostname())];
        let mut pod_for_env = self.pod.clone();
        if let Some(st) = pod_for_env.status.as_mut() {
            st.pod_ip = self.ips.first().cloned();
            st.pod_ips = Some(self.ips.iter().map(|ip| k8s_openapi::api::core::v1::PodIP { ip: ip.clone() }).collect());
            st.host_ip = self.sh.cfg.addresses.first().cloned();
        }
        let envs = match env::build(&pod_for_env, &c, ctx.services.as_deref().unwrap_or_default(), &sources, &base) {
            Ok(e) => e,
            Err(msg) => return self.wait_with(i, "CreateContainerConfigError", msg, Some(Duration::from_secs(2))),
        };
        let args: Vec<String> = program.args.iter().map(|a| env::expand(a, &envs)).collect();
        let mounts = match self.volumes.mounts_for(&c, list, &envs) {
            Ok(m) => m,
            Err(msg) => return self.wait_with(i, "CreateContainerConfigError", msg, Some(Duration::from_secs(2))),
        };
        let plan = match mount_plan::plan(&mounts, &HostFs, &cdir.join("mnt"), &self.dir) {
            Ok(p) => p,
            Err(msg) => return self.wait_with(i, "CreateContainerConfigError", msg, Some(Duration::from_secs(2))),
        };
        for d in &plan.prepare_dirs {
            let _ = std::fs::create_dir_all(d);
        }
        for f in &plan.prepare_files {
            if let Some(parent) = f.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::OpenOptions::new().create(true).append(true).open(f);
        }
        let cwd = c.working_dir.as_ref().map(PathBuf::from).or_else(|| std::env::current_dir().ok()).unwrap_or_else(|| PathBuf::from("/"));
        let prepared = match Prepared::new(&plan, &cwd) {
            Ok(p) => Arc::new(p),
            Err(e) => return self.wait_with(i, "CreateContainerConfigError", format!("{list}[{}]: {e}", c.name), Some(Duration::from_secs(2))),
        };
        let netns = self.netns.as_ref().expect("sandbox made before containers");
        let hostname = self.hostname();
        let log = cdir.join("log");
        let spawn = process::Spawn {
            program: &program.path,
            args: &args,
            env: &envs,
            mounts: &prepared,
            netns: netns.as_fd(),
            hostname: &hostname,
            resolv_conf: &self.dir.join("resolv.conf"),
            hosts: &self.dir.join("hosts"),
            log: &log,
        };
        let mut child = match process::spawn(&spawn) {
            Ok(child) => child,
            Err(e) => {
                let during = prepared.failed_op().map(|op| format!(" ({op})")).unwrap_or_default();
                let r = &mut self.runs[i];
                r.state = json!({"waiting": {"reason": "RunContainerError", "message": format!("starting {}: {e}{during}", program.path.display())}});
                r.next_start = Some(Instant::now() + r.backoff);
                r.backoff = (r.backoff * 2).min(MAX_BACKOFF);
                return;
            }
        };
        let pid = child.id().unwrap_or(0);
        let _ = std::fs::write(cdir.join("pid"), pid.to_string());
        let r = &mut self.runs[i];
        r.instance += 1;
        let instance = r.instance;
        let (exited_tx, exited_rx) = watch::channel(false);
        let tx = self.exits.0.clone();
        tokio::spawn(async move {
            let code = child.wait().await.ok().and_then(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().or_else(|| s.signal().map(|sig| 128 + sig))
            });
            // The exit is queued before the watch flips, so whoever saw the watch finds it.
            let _ = tx.send((i, instance, code));
            let _ = exited_tx.send(true);
        });
        r.pid = Some(pid);
        r.exited = Some(exited_rx);
        r.state = json!({"running": {"startedAt": now()}});
        r.started_at = Some(Instant::now());
        r.started_once = true;
        r.killing = false;
        r.readiness_ok = c.readiness_probe.is_none();
        r.startup_ok = c.startup_probe.is_none();
        let post_start = c.lifecycle.as_ref().and_then(|l| l.post_start.clone());
        r.post_start_pending = post_start.is_some();
        tracing::info!(pod = %self.name(), container = %c.name, pid, "container started");
        let probes = crate::probe_run::probes_of(&c, self.pod_ip());
        if !probes.is_empty() {
            let pctx = crate::probe_run::Ctx {
                slot: i,
                instance,
                pid,
                probes,
                node_netns: self.sh.node_netns.clone(),
                recorder: self.sh.recorder.clone(),
                subject: self.subject(i),
            };
            let task = tokio::spawn(crate::probe_run::run(pctx, self.probes.0.clone()));
            self.runs[i].probes = Some(task.abort_handle());
        }
        if let Some(hook) = post_start {
            let target = self.hook_target(&c, pid);
            let tx = self.hooks.0.clone();
            tokio::spawn(async move {
                let result = crate::hooks::run(&hook, &target).await;
                let _ = tx.send((i, instance, result));
            });
        }
    }

    pub(crate) fn hook_target(&self, c: &Container, pid: u32) -> crate::hooks::Target {
        crate::hooks::Target { container: c.clone(), pid, pod_ip: self.pod_ip(), node_netns: self.sh.node_netns.clone() }
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
    async fn sources(&self, c: &Container) -> env::Sources {
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
}
