//! The probes of one running container, on their schedule: the startup probe alone
//! until it succeeds, then readiness and liveness, each every `periodSeconds` after
//! `initialDelaySeconds`. Failed runs become `Unhealthy` events (as upstream, one per
//! failed run, aggregated by the recorder); changes of the reported result go to the pod
//! worker, which owns the container (readiness, started, kills).

use crate::events::{Recorder, Subject};
use crate::probe::{self, Action, Kind, Outcome, Timing, Tracker};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use weft_kernel::Netns;

/// What the worker hears from a container's probes.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Ready(bool),
    Started,
    /// A liveness or startup probe crossed its failure threshold: restart the container.
    Kill { kind: Kind, grace: Option<Duration>, message: String },
}

/// One probe of the container: its timing and what it does (or why it cannot run).
pub struct Probe {
    pub kind: Kind,
    pub timing: Timing,
    pub action: Result<Action, String>,
}

pub struct Ctx {
    /// Which container of the pod and which run of it; reports carry both.
    pub slot: usize,
    pub instance: u64,
    pub pid: u32,
    pub probes: Vec<Probe>,
    pub node_netns: Option<Arc<Netns>>,
    pub recorder: Recorder,
    pub subject: Subject,
}

pub type Sender = mpsc::UnboundedSender<(usize, u64, Report)>;

/// Compiles a container's probes (an uncompilable one still runs, as an error event).
pub fn probes_of(c: &k8s_openapi::api::core::v1::Container, pod_ip: Option<IpAddr>) -> Vec<Probe> {
    [(Kind::Startup, &c.startup_probe), (Kind::Readiness, &c.readiness_probe), (Kind::Liveness, &c.liveness_probe)]
        .into_iter()
        .filter_map(|(kind, p)| {
            let p = p.as_ref()?;
            Some(Probe { kind, timing: probe::timing(p), action: probe::compile(kind, p, c, pod_ip).map(|s| s.action) })
        })
        .collect()
}

async fn run_once(ctx: &Ctx, p: &Probe) -> Outcome {
    let action = match &p.action {
        Ok(a) => a,
        Err(e) => return Outcome::Error(e.clone()),
    };
    let ns = ctx.node_netns.as_deref();
    let t = p.timing.timeout;
    match action {
        Action::Exec(cmd) => crate::probe_exec::exec(ctx.pid, cmd, Some(t)).await,
        Action::Http(h) => crate::probe_net::http_get(ns, h, t).await,
        Action::Tcp { host, port } => crate::probe_net::tcp(ns, *host, *port, t).await,
        Action::Grpc { host, port, service } => crate::probe_net::grpc(ns, *host, *port, service, t).await,
    }
}

/// Probes until the container's run ends (the worker aborts the task) or a kill is asked.
pub async fn run(ctx: Ctx, tx: Sender) {
    let start = Instant::now();
    let mut trackers: Vec<Tracker> = ctx.probes.iter().map(|p| Tracker::new(p.kind, &p.timing)).collect();
    let mut due: Vec<Instant> = ctx.probes.iter().map(|p| start + p.timing.initial_delay).collect();
    let mut started = !ctx.probes.iter().any(|p| p.kind == Kind::Startup);
    loop {
        let active = |i: &usize| (ctx.probes[*i].kind == Kind::Startup) != started;
        let Some(i) = (0..ctx.probes.len()).filter(active).min_by_key(|i| due[*i]) else { return };
        tokio::time::sleep_until(due[i]).await;
        let p = &ctx.probes[i];
        let outcome = run_once(&ctx, p).await;
        due[i] = (due[i] + p.timing.period).max(Instant::now());
        if let Some((ty, msg)) = probe::event_message(p.kind, &outcome) {
            ctx.recorder.publish(&ctx.subject, ty, "Unhealthy", msg);
        }
        let ok = match &outcome {
            Outcome::Success | Outcome::Warning(_) => true,
            Outcome::Failure(_) => false,
            Outcome::Error(e) => {
                tracing::debug!(container = %ctx.subject.field_path, probe = p.kind.title(), error = %e, "probe errored");
                continue;
            }
        };
        let Some(reported) = trackers[i].record(ok) else { continue };
        let send = |r: Report| {
            let _ = tx.send((ctx.slot, ctx.instance, r));
        };
        match (p.kind, reported) {
            (Kind::Readiness, r) => send(Report::Ready(r)),
            (Kind::Startup, true) => {
                started = true;
                send(Report::Started);
                let now = Instant::now();
                for d in due.iter_mut() {
                    *d = (*d).max(now);
                }
            }
            (kind, _) => {
                let message = match outcome {
                    Outcome::Failure(m) => m,
                    _ => String::new(),
                };
                send(Report::Kill { kind, grace: p.timing.kill_grace, message });
                return;
            }
        }
    }
}
