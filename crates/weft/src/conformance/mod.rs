//! `weft conformance netpol FILE`: runs a netpol-conformance-corpus/v1 file against a
//! local cluster of its own, isolated from the host in the runner's own network and
//! mount namespaces. One line per case (`PASS name` or `FAIL name: cells`), then
//! `N passed, M failed`; the exit code is 0 iff nothing failed.

mod case;
mod fixture;
mod isolate;
mod live;
mod local_cluster;
mod probe;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use weft_policy::corpus::Corpus;
use weft_policy::PodKey;

#[derive(Subcommand, Debug)]
pub enum ConformanceCmd {
    /// Run NetworkPolicy conformance cases (conformance/netpol/cases.yaml format) with
    /// real connections on a local cluster of the runner's own, and the pure model.
    Netpol(NetpolArgs),
}

#[derive(Args, Debug)]
pub struct NetpolArgs {
    /// A netpol-conformance-corpus/v1 file.
    pub file: PathBuf,
    /// Run only the cases whose name contains this.
    #[arg(long)]
    pub only: Option<String>,
    /// Probes (exec'd connections) in flight at once.
    #[arg(long, default_value_t = 32)]
    pub jobs: usize,
    /// Run every case even after one fails (by default the run stops at the first failure).
    #[arg(long)]
    pub keep_going: bool,
    /// Seconds that cells differing from the expectation are probed again before a
    /// step fails (policy takes effect asynchronously).
    #[arg(long, default_value_t = 10)]
    pub converge_secs: u64,
}

pub fn run(cmd: ConformanceCmd) -> Result<i32> {
    match cmd {
        ConformanceCmd::Netpol(args) => netpol(args),
    }
}

fn netpol(args: NetpolArgs) -> Result<i32> {
    let corpus = Corpus::load(&args.file).map_err(|e| anyhow!(e))?;
    let selected = corpus.selected(args.only.as_deref()).count();
    if selected == 0 {
        bail!("no case in {} has a name containing {:?}", args.file.display(), args.only.unwrap_or_default());
    }
    // Before any thread exists (the mount namespace cannot be unshared after).
    isolate::enter()?;
    let mut cluster = local_cluster::LocalCluster::start(2)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async {
        tokio::select! {
            r = run_cases(&mut cluster, &corpus, &args) => r,
            s = interrupted() => Err(anyhow!("interrupted by {s}")),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    cluster.stop();
    let (passed, failed) = result?;
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

async fn run_cases(cluster: &mut local_cluster::LocalCluster, corpus: &Corpus, args: &NetpolArgs) -> Result<(usize, usize)> {
    let started = Instant::now();
    let client = cluster.client(Duration::from_secs(60)).await?;
    let mut live = live::Live::new(client.clone(), &corpus.model)?;
    live.reset().await?;
    let prober = probe::Prober::new(client, args.jobs);
    wait_for_servers(&live, &prober).await?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "the model is up and every pair connects");
    let settings = case::Settings { converge: Duration::from_secs(args.converge_secs) };
    let (mut passed, mut failed) = (0, 0);
    for c in corpus.selected(args.only.as_deref()) {
        let t = Instant::now();
        let outcome = case::run(&mut live, &prober, c, &settings).await;
        println!("{}", outcome.line(&c.name));
        let _ = std::io::stdout().flush();
        tracing::info!(case = %c.name, ok = outcome.failures.is_empty(), probes = outcome.probes, elapsed_ms = t.elapsed().as_millis() as u64, "case done");
        if outcome.failures.is_empty() {
            passed += 1;
        } else {
            failed += 1;
            if !args.keep_going {
                tracing::warn!("stopping at the first failure (--keep-going runs every case)");
                break;
            }
        }
    }
    tracing::info!(elapsed_s = started.elapsed().as_secs(), passed, failed, "done");
    Ok((passed, failed))
}

/// As upstream's waitForHTTPServers: every pair of model pods connects on every
/// (port, protocol) the pods serve, within 10 tries, before the first case.
async fn wait_for_servers(live: &live::Live, prober: &probe::Prober) -> Result<()> {
    let pods: Vec<PodKey> = live.world.pods.keys().cloned().collect();
    for (port, protocol) in live.serve.iter().copied() {
        let mut todo = Vec::new();
        for s in &pods {
            for d in pods.iter().filter(|d| *d != s) {
                let service_ip = live.service_ips[d];
                todo.push(probe::Attempt { src: s.clone(), container: live.first_container(), dst: d.clone(), service_ip, protocol, port });
            }
        }
        for attempt in 1..=10 {
            let got = prober.run_all(todo.clone()).await;
            let failing: Vec<String> = got.iter().filter(|(_, r)| !matches!(r, Ok(true))).map(|((s, d), r)| format!("{s} -> {d} ({})", r.as_ref().err().cloned().unwrap_or_else(|| "not connected".into()))).collect();
            if failing.is_empty() {
                break;
            }
            if attempt == 10 {
                bail!("{}/{port}: the model's servers do not all answer before any policy exists: {}", protocol.as_str(), failing.join(", "));
            }
            tracing::info!(protocol = protocol.as_str(), port, failing = failing.len(), "waiting for the servers");
            todo.retain(|a| got.get(&(a.src.clone(), a.dst.clone())).is_some_and(|r| !matches!(r, Ok(true))));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    Ok(())
}
