//! Stopping containers as the kubelet does: the preStop hook first (within the grace
//! period), then SIGTERM to the container's process group, then SIGKILL when the grace
//! period is over. On pod deletion the app (and running init) containers stop
//! together, then the sidecars one by one in reverse order.

use k8s_openapi::api::core::v1::LifecycleHandler;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{timeout_at, Instant};

use crate::events::{Recorder, Subject, NORMAL, WARNING};
use crate::worker::Worker;

/// Everything needed to stop one run of a container, detached from the worker.
pub(crate) struct Stop {
    pid: u32,
    exited: watch::Receiver<bool>,
    pre_stop: Option<(LifecycleHandler, crate::hooks::Target)>,
    recorder: Recorder,
    subject: Subject,
}

/// After a preStop hook that used up the grace period, the process still gets this long
/// after SIGTERM (upstream's one-off extension).
const MIN_AFTER_PRE_STOP: Duration = Duration::from_secs(2);

pub(crate) async fn terminate(mut s: Stop, deadline: Instant) {
    if *s.exited.borrow() {
        return;
    }
    let mut deadline = deadline;
    if let Some((hook, target)) = &s.pre_stop {
        match timeout_at(deadline, crate::hooks::run(hook, target)).await {
            Ok(Ok(())) => {}
            Ok(Err(m)) => s.recorder.publish(&s.subject, WARNING, "FailedPreStopHook", m),
            Err(_) => s.recorder.publish(&s.subject, WARNING, "FailedPreStopHook", format!("PreStopHook for container {:?} did not complete within the grace period", target.container.name)),
        }
        deadline = deadline.max(Instant::now() + MIN_AFTER_PRE_STOP);
    }
    let group = Pid::from_raw(s.pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let _ = timeout_at(deadline, s.exited.wait_for(|gone| *gone)).await;
    // Whatever is left of the group (the main process, or what it started) goes now.
    let _ = killpg(group, Signal::SIGKILL);
}

impl Worker {
    fn stop_of(&self, i: usize) -> Option<Stop> {
        let r = &self.runs[i];
        let (pid, exited) = (r.pid?, r.exited.clone()?);
        let pre_stop = self.spec_of(i).and_then(|c| {
            let hook = c.lifecycle.as_ref()?.pre_stop.clone()?;
            Some((hook, self.hook_target(&c, pid)))
        });
        Some(Stop { pid, exited, pre_stop, recorder: self.sh.recorder.clone(), subject: self.subject(i) })
    }

    /// Stops one container in the background; its exit comes back as usual and decides
    /// whether it restarts.
    pub(crate) fn kill(&mut self, i: usize, grace: Duration) {
        let Some(stop) = self.stop_of(i) else { return };
        self.runs[i].killing = true;
        tokio::spawn(terminate(stop, Instant::now() + grace));
    }

    /// Stops everything for the pod's deletion, within `grace`.
    pub(crate) async fn stop_all(&mut self, grace: Duration) {
        self.terminating = true;
        let deadline = Instant::now() + grace;
        let mut first = Vec::new();
        for i in 0..self.runs.len() {
            if self.runs[i].sidecar {
                continue;
            }
            if let Some(s) = self.stop_of(i) {
                self.sh.recorder.publish(&s.subject, NORMAL, "Killing", format!("Stopping container {}", self.runs[i].name));
                first.push(terminate(s, deadline));
            }
        }
        futures::future::join_all(first).await;
        for i in (0..self.runs.len()).rev() {
            if !self.runs[i].sidecar {
                continue;
            }
            if let Some(s) = self.stop_of(i) {
                self.sh.recorder.publish(&s.subject, NORMAL, "Killing", format!("Stopping container {}", self.runs[i].name));
                terminate(s, deadline).await;
            }
        }
        while let Ok((i, instance, code)) = self.exits.1.try_recv() {
            self.exited(i, instance, code);
        }
        for r in &mut self.runs {
            if let Some(p) = r.probes.take() {
                p.abort();
            }
            r.pid = None;
        }
    }
}
