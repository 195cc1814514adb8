//! The runner's cluster: `weft up --nodes 2` (this same executable) as a child on a
//! temporary state dir, inside the runner's namespaces. The child dies with the
//! runner (PR_SET_PDEATHSIG); normally it is stopped with SIGTERM, as Ctrl-C would,
//! and then everything it made is removed, as `weft down --purge` does.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalCluster {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    cleaned: bool,
}

impl LocalCluster {
    /// Starts `weft up`. Call it from the thread that lives as long as the runner (the
    /// death signal follows the thread that forked the child).
    pub fn start(nodes: u32) -> Result<LocalCluster> {
        let dir = tempfile::Builder::new().prefix("weft-conformance-").tempdir().context("making the cluster's state dir")?;
        let log = std::fs::File::create(dir.path().join("weft.log"))?;
        let mut cmd = Command::new(std::env::current_exe().context("finding weft's own executable")?);
        cmd.args(["up", "--state-dir"])
            .arg(dir.path())
            .args(["--api-port", "0", "--nodes", &nodes.to_string(), "--bookmark-interval", "1"])
            .env_remove("WEFT_STATE_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // Its own process group: a terminal's Ctrl-C reaches the runner, which
                // then stops the cluster in order.
                libc::setpgid(0, 0);
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().context("starting weft up")?;
        tracing::info!(state_dir = %dir.path().display(), pid = child.id(), "started the local cluster");
        Ok(LocalCluster { dir, child: Some(child), cleaned: false })
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("weft.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits for the kubeconfig and an API that answers; returns a client.
    pub async fn client(&mut self, timeout: Duration) -> Result<kube::Client> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no kubeconfig yet");
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("weft up exited with {status}; its log ends with:\n{}", self.log_tail(30));
            }
            if self.kubeconfig().exists() {
                match crate::up::client_for(&self.kubeconfig()).await {
                    Ok(client) => match client.apiserver_version().await {
                        Ok(_) => return Ok(client),
                        Err(e) => last = e.to_string(),
                    },
                    Err(e) => last = format!("{e:#}"),
                }
            }
            if Instant::now() > deadline {
                bail!("the local cluster's API did not answer within {timeout:?} ({last}); weft up's log ends with:\n{}", self.log_tail(30));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then (after 20 s) SIGKILL; then removes containers, sandboxes, nodes and
    /// the state dir. Must run outside any tokio runtime.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(c.try_wait(), Ok(None)) {
                tracing::warn!("weft up did not stop within 20s of SIGTERM; killing it");
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        if !self.cleaned {
            self.cleaned = true;
            cleanup(self.dir.path());
        }
    }
}

fn cleanup(dir: &Path) {
    weft_runtime::stop_containers(&dir.join("nodes"));
    weft_runtime::remove_sandboxes(&dir.join("nodes"));
    if let Err(e) = crate::nodes::Topology::teardown(&dir.join("netns")) {
        tracing::warn!("removing the nodes' namespaces: {e:#}");
    }
    if let Err(e) = crate::nodes::remove_host_link(dir) {
        tracing::debug!("removing the host link: {e:#}");
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
