//! Probes as upstream makes them: `/agnhost connect <service-ip>:<port> --timeout=1s
//! --protocol=<p>` run in the source pod's first container, through the API's
//! pods/exec (the path `kubectl exec` takes); exit code 0 is "connected".
//!
//! A denied cell costs its whole 1 s timeout and an exec costs a TLS hop to the API
//! server and another to the node, so the cells of one source pod go in one exec: a
//! shell in the container runs each cell's `agnhost connect` at once (agnhost is weft
//! itself, whose binary the container sees at the same path) and prints each exit
//! code. Several sources are probed concurrently.

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
    /// weft's binary, which is `/agnhost` inside pods.
    weft: String,
}

/// How long one exec may take before it counts as failed to run (not as denied).
const EXEC_LIMIT: Duration = Duration::from_secs(20);
/// An exec that fails to run (not a non-zero exit) is tried this many times.
const EXEC_TRIES: usize = 3;

impl Prober {
    pub fn new(client: kube::Client, jobs: usize) -> Prober {
        let weft = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "weft".into());
        Prober { client, jobs: jobs.max(1), weft }
    }

    /// Runs every attempt, one exec per source pod, `jobs` sources at a time; results
    /// by (src, dst).
    pub async fn run_all(&self, attempts: Vec<Attempt>) -> BTreeMap<(PodKey, PodKey), Result<bool, String>> {
        let mut by_src: BTreeMap<(PodKey, String), Vec<Attempt>> = BTreeMap::new();
        for a in attempts {
            by_src.entry((a.src.clone(), a.container.clone())).or_default().push(a);
        }
        let results: Vec<Vec<((PodKey, PodKey), Result<bool, String>)>> = futures::stream::iter(by_src.into_values())
            .map(|batch| async move {
                let r = self.connect_batch(&batch).await;
                batch.into_iter().zip(r).map(|(a, r)| ((a.src, a.dst), r)).collect()
            })
            .buffer_unordered(self.jobs)
            .collect()
            .await;
        results.into_iter().flatten().collect()
    }

    /// Every attempt of one source (same pod and container) in one exec; a batch whose
    /// exec fails to run is tried again, then each of its cells reports why.
    async fn connect_batch(&self, batch: &[Attempt]) -> Vec<Result<bool, String>> {
        let Some(first) = batch.first() else { return vec![] };
        let mut last = String::new();
        for _ in 0..EXEC_TRIES {
            match tokio::time::timeout(EXEC_LIMIT, self.exec_batch(batch)).await {
                Ok(Ok(codes)) => return codes,
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer within {EXEC_LIMIT:?}"),
            }
            tracing::debug!(src = %first.src, cells = batch.len(), error = %last, "exec failed; trying again");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        batch.iter().map(|a| Err(format!("exec in {} ({}) failed: {last}", a.src, a.container))).collect()
    }

    async fn exec_batch(&self, batch: &[Attempt]) -> Result<Vec<Result<bool, String>>, String> {
        let first = &batch[0];
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &first.src.namespace);
        let params = AttachParams::default().container(first.container.clone()).stdin(false).stdout(true).stderr(false);
        let mut p = pods.exec(&first.src.name, batch_command(&self.weft, batch), &params).await.map_err(|e| e.to_string())?;
        let mut stdout = String::new();
        if let Some(mut s) = p.stdout() {
            let _ = s.read_to_string(&mut stdout).await;
        }
        let status = p.take_status().ok_or("no status channel")?.await;
        let _ = p.join().await;
        match status {
            Some(s) if s.status.as_deref() == Some("Success") => {}
            Some(s) => return Err(format!("the probe shell ended with {:?}: {}", s.reason, s.message.unwrap_or_default())),
            None => return Err("exec ended without a status".into()),
        }
        Ok(parse_codes(&stdout, batch.len()))
    }
}

/// `sh -c` running each attempt's `agnhost connect` in the background and printing
/// `<index> <exit code>` as each ends.
pub fn batch_command(weft: &str, batch: &[Attempt]) -> Vec<String> {
    let mut script = String::new();
    for (i, a) in batch.iter().enumerate() {
        let args: Vec<String> = a.command()[1..].to_vec();
        script.push_str(&format!("( '{weft}' agnhost {} >/dev/null 2>&1; echo \"{i} $?\" ) &\n", args.join(" ")));
    }
    script.push_str("wait\n");
    vec!["sh".into(), "-c".into(), script]
}

/// Each attempt's result from the shell's `<index> <exit code>` lines.
pub fn parse_codes(out: &str, n: usize) -> Vec<Result<bool, String>> {
    let mut codes: Vec<Result<bool, String>> = (0..n).map(|_| Err("the probe printed no exit code".to_string())).collect();
    for line in out.lines() {
        let mut w = line.split_whitespace();
        if let (Some(Ok(i)), Some(Ok(code))) = (w.next().map(str::parse::<usize>), w.next().map(str::parse::<i32>)) {
            if i < n {
                codes[i] = Ok(code == 0);
            }
        }
    }
    codes
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
        let cmd = batch_command("/opt/weft", &[a.clone(), a]);
        assert_eq!(cmd[..2], ["sh", "-c"]);
        assert_eq!(cmd[2], "( '/opt/weft' agnhost connect [fd00:10:96::a]:81 --timeout=1s --protocol=sctp >/dev/null 2>&1; echo \"0 $?\" ) &\n( '/opt/weft' agnhost connect [fd00:10:96::a]:81 --timeout=1s --protocol=sctp >/dev/null 2>&1; echo \"1 $?\" ) &\nwait\n");
    }

    #[test]
    fn exit_codes_come_back_by_index_and_a_missing_one_is_an_error() {
        let got = parse_codes("1 1\n0 0\nnoise\n", 3);
        assert_eq!(got[0], Ok(true));
        assert_eq!(got[1], Ok(false));
        assert!(got[2].is_err());
    }
}
