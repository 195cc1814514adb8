//! One case: from the clean state, each step's actions through the API, then every
//! probe matrix measured with real connections (cells that differ are probed again
//! for a while, as policy converges asynchronously) and computed by the pure model;
//! both must match the expectation off the diagonal.

use super::live::Live;
use super::probe::{Attempt, Prober};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use weft_policy::corpus::replay::{self, Cell, Replay};
use weft_policy::corpus::{Case, Probe};
use weft_policy::PodKey;

/// Cells shown per probe in a FAIL line.
const MAX_CELLS: usize = 12;

#[derive(Clone, Debug)]
pub struct Settings {
    /// How long differing cells are probed again before the step fails.
    pub converge: Duration,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub failures: Vec<String>,
    pub probes: usize,
}

impl Outcome {
    pub fn line(&self, name: &str) -> String {
        if self.failures.is_empty() {
            format!("PASS {name}")
        } else {
            format!("FAIL {name}: {}", self.failures.join("; "))
        }
    }
}

pub async fn run(live: &mut Live, prober: &Prober, case: &Case, settings: &Settings) -> Outcome {
    let mut out = Outcome::default();
    match live.reset().await {
        Ok(recreated) if recreated => tracing::info!(case = %case.name, "pods recreated for the clean state"),
        Ok(_) => {}
        Err(e) => {
            out.failures.push(format!("restoring the clean state: {e:#}"));
            return out;
        }
    }
    let mut model = match Replay::new(&live.model, &live.ips) {
        Ok(r) => Some(r),
        Err(e) => {
            out.failures.push(format!("model: {e}"));
            None
        }
    };
    for (i, step) in case.steps.iter().enumerate() {
        let n = i + 1;
        for action in &step.actions {
            tracing::info!(case = %case.name, step = n, action = %action.describe(), "applying");
            if let Err(e) = live.apply(action).await {
                out.failures.push(format!("step {n}: {}: {e:#}", action.describe()));
                return out;
            }
            if let Some(m) = model.as_mut() {
                if let Err(e) = m.apply(action, &live.ips) {
                    out.failures.push(format!("step {n} model: {e}"));
                    model = None;
                }
            }
        }
        for probe in &step.probes {
            let pods = match probe.pods() {
                Ok(p) => p,
                Err(e) => {
                    out.failures.push(format!("step {n}: {e}"));
                    continue;
                }
            };
            let live_pods: BTreeSet<&PodKey> = live.world.pods.keys().collect();
            if pods.iter().collect::<BTreeSet<_>>() != live_pods {
                out.failures.push(format!("step {n} {}/{}: the matrix lists pods {:?} but the pods at this step are {:?}", probe.protocol.as_str(), probe.port, keys(pods.iter()), keys(live_pods.into_iter())));
                continue;
            }
            if let Some(m) = &model {
                match m.matrix(probe.protocol, probe.port, &live.ips).and_then(|got| replay::diff(probe, &|s, t| got.get(&(s.clone(), t.clone())).copied())) {
                    Ok(d) if d.cells.is_empty() => {}
                    Ok(d) => out.failures.push(replay::describe(n, probe, " model", &d.cells, MAX_CELLS)),
                    Err(e) => out.failures.push(format!("step {n} model: {e}")),
                }
            }
            out.probes += 1;
            match measure(live, prober, probe, settings.converge).await {
                Ok(cells) if cells.is_empty() => {}
                Ok(cells) => out.failures.push(replay::describe(n, probe, "", &cells, MAX_CELLS)),
                Err(e) => out.failures.push(format!("step {n} {}/{}: {e}", probe.protocol.as_str(), probe.port)),
            }
        }
    }
    out
}

fn keys<'a>(k: impl Iterator<Item = &'a PodKey>) -> Vec<String> {
    k.map(ToString::to_string).collect()
}

/// Probes every off-diagonal cell, then again the cells that differ, until they all
/// match or `converge` has passed; returns the cells that still differ.
async fn measure(live: &Live, prober: &Prober, probe: &Probe, converge: Duration) -> Result<Vec<Cell>, String> {
    let pods = probe.pods()?;
    let attempt = |src: &PodKey, dst: &PodKey| -> Result<Attempt, String> {
        let service_ip = *live.service_ips.get(dst).ok_or_else(|| format!("pod {dst} has no Service address"))?;
        Ok(Attempt { src: src.clone(), container: live.first_container(), dst: dst.clone(), service_ip, protocol: probe.protocol, port: probe.port })
    };
    let mut todo = Vec::new();
    for s in &pods {
        for d in pods.iter().filter(|d| *d != s) {
            todo.push(attempt(s, d)?);
        }
    }
    let started = Instant::now();
    let mut got: BTreeMap<(PodKey, PodKey), Result<bool, String>> = BTreeMap::new();
    let mut round = 0;
    loop {
        round += 1;
        got.extend(prober.run_all(todo).await);
        let differ: Vec<(PodKey, PodKey)> = got.iter().filter(|((s, d), r)| r.as_ref().ok().copied() != probe.expected(s, d)).map(|(k, _)| k.clone()).collect();
        tracing::debug!(protocol = probe.protocol.as_str(), port = probe.port, round, differ = differ.len(), elapsed_ms = started.elapsed().as_millis() as u64, "probed");
        if differ.is_empty() || started.elapsed() >= converge {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        todo = differ.iter().map(|(s, d)| attempt(s, d)).collect::<Result<_, _>>()?;
    }
    if let Some(((s, d), Err(e))) = got.iter().find(|(_, r)| r.is_err()) {
        return Err(format!("{s} -> {d}: {e}"));
    }
    let d = replay::diff(probe, &|s, t| if s == t { probe.expected(s, t) } else { got.get(&(s.clone(), t.clone())).and_then(|r| r.as_ref().ok().copied()) })?;
    Ok(d.cells)
}
