//! Probes as upstream makes them: `/agnhost connect <service-ip>:<port> --timeout=1s
//! --protocol=<p>` exec'd through the API (pods/exec, the path `kubectl exec` takes) in
//! the source pod's first container; exit code 0 is "connected". Many at once: a
//! denied cell costs its whole 1 s timeout, so concurrency is what makes a matrix fast.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use weft_policy::{PodKey, Protocol};

/// One probe: from `src` (exec'd in `container`) to `dst`'s Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub src: PodKey,
    pub container: String,
    pub dst: PodKey,
    pub service_ip: IpAddr,
    pub protocol: Protocol,
    pub port: u16,
}

impl Attempt {
    pub fn command(&self) -> Vec<String> {
        vec![
            "/agnhost".into(),
            "connect".into(),
            SocketAddr::new(self.service_ip, self.port).to_string(),
            "--timeout=1s".into(),
            format!("--protocol={}", self.protocol.as_str().to_ascii_lowercase()),
        ]
    }
}

#[derive(Clone)]
pub struct Prober {
    client: kube::Client,
    pub jobs: usize,
}

/// How long one exec may take before it counts as failed to run (not as denied).
const EXEC_LIMIT: Duration = Duration::from_secs(20);
/// An exec that fails to run (not a non-zero exit) is tried this many times.
const EXEC_TRIES: usize = 3;

impl Prober {
    pub fn new(client: kube::Client, jobs: usize) -> Prober {
        Prober { client, jobs: jobs.max(1) }
    }

    /// Whether the connection succeeded; Err if the exec itself could not run.
    pub async fn connect(&self, a: &Attempt) -> Result<bool, String> {
        let mut last = String::new();
        for _ in 0..EXEC_TRIES {
            match tokio::time::timeout(EXEC_LIMIT, self.exec_once(a)).await {
                Ok(Ok(connected)) => return Ok(connected),
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer within {EXEC_LIMIT:?}"),
            }
            tracing::debug!(src = %a.src, dst = %a.dst, error = %last, "exec failed; trying again");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("exec in {} ({}) failed: {last}", a.src, a.container))
    }

    async fn exec_once(&self, a: &Attempt) -> Result<bool, String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &a.src.namespace);
        let params = AttachParams::default().container(a.container.clone()).stdin(false).stdout(false).stderr(true);
        let mut p = pods.exec(&a.src.name, a.command(), &params).await.map_err(|e| e.to_string())?;
        let mut stderr = String::new();
        if let Some(mut s) = p.stderr() {
            let _ = s.read_to_string(&mut stderr).await;
        }
        let status = p.take_status().ok_or("no status channel")?.await;
        let _ = p.join().await;
        match status {
            Some(s) if s.status.as_deref() == Some("Success") => Ok(true),
            Some(s) if s.reason.as_deref() == Some("NonZeroExitCode") => {
                tracing::trace!(src = %a.src, dst = %a.dst, protocol = a.protocol.as_str(), port = a.port, stderr = stderr.trim(), "not connected");
                Ok(false)
            }
            Some(s) => Err(format!("exec ended with {:?}: {}", s.reason, s.message.unwrap_or_default())),
            None => Err("exec ended without a status".into()),
        }
    }

    /// Runs every attempt, `jobs` at a time; results by (src, dst).
    pub async fn run_all(&self, attempts: Vec<Attempt>) -> BTreeMap<(PodKey, PodKey), Result<bool, String>> {
        futures::stream::iter(attempts)
            .map(|a| async move {
                let r = self.connect(&a).await;
                ((a.src, a.dst), r)
            })
            .buffer_unordered(self.jobs)
            .collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_command_is_upstreams() {
        let a = Attempt {
            src: PodKey { namespace: "x".into(), name: "a".into() },
            container: "cont-80-tcp".into(),
            dst: PodKey { namespace: "y".into(), name: "b".into() },
            service_ip: "fd00:10:96::a".parse().unwrap(),
            protocol: Protocol::Sctp,
            port: 81,
        };
        assert_eq!(a.command(), ["/agnhost", "connect", "[fd00:10:96::a]:81", "--timeout=1s", "--protocol=sctp"]);
    }
}
