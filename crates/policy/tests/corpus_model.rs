//! Every cell of every probe matrix of every case in conformance/netpol/cases.yaml,
//! computed by the pure model, once per example ip plan the case allows. Pods that a
//! case creates take addresses from the plan's `spare` prefix. The diagonal (a pod
//! reaching itself) is reported but not counted, as upstream ignores loopback.

use std::collections::BTreeMap;
use weft_policy::corpus::replay::{self, Addresses, Replay};
use weft_policy::corpus::{pod_key, Action, Case, Corpus, IpPlan, Model};

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../conformance/netpol/cases.yaml");

/// The failures of one case on one plan, one line per probe that differs.
fn run_case(model: &Model, plan: &IpPlan, case: &Case, diagonal: &mut usize) -> Result<Vec<String>, String> {
    let mut ips: Addresses = BTreeMap::new();
    for (k, ip) in &plan.ips {
        ips.insert(pod_key(k)?, *ip);
    }
    let mut r = Replay::new(model, &ips)?;
    let mut created = 0u16;
    let mut failures = Vec::new();
    for (i, step) in case.steps.iter().enumerate() {
        for action in &step.actions {
            if let Action::CreatePod { pod, .. } = action {
                created += 1;
                ips.insert(pod_key(pod)?, plan.spare_ip(created)?);
            }
            r.apply(action, &ips).map_err(|e| format!("step {}: {e}", i + 1))?;
        }
        for probe in &step.probes {
            let m = r.matrix(probe.protocol, probe.port, &ips)?;
            let d = replay::diff(probe, &|s, t| m.get(&(s.clone(), t.clone())).copied())?;
            *diagonal += d.diagonal.len();
            if !d.cells.is_empty() {
                failures.push(replay::describe(i + 1, probe, "", &d.cells, usize::MAX));
            }
            let extra: Vec<String> = m.keys().filter(|(s, _)| probe.expected(s, s).is_none()).map(|(s, _)| s.to_string()).collect();
            if !extra.is_empty() {
                failures.push(format!("step {} {}/{}: pods exist that the matrix does not list: {extra:?}", i + 1, probe.protocol.as_str(), probe.port));
            }
        }
    }
    Ok(failures)
}

#[test]
fn the_model_agrees_with_every_cell_of_the_corpus_on_every_ip_plan() {
    let corpus = Corpus::load(std::path::Path::new(CASES)).unwrap();
    assert!(!corpus.model.ip_plans.is_empty(), "the corpus has no ip_plans");
    let (mut runs, mut cells, mut diagonal) = (0, 0, 0);
    let mut failed = Vec::new();
    for (plan_name, plan) in &corpus.model.ip_plans {
        for case in corpus.cases.iter().filter(|c| c.allows_family(&plan.family)) {
            runs += 1;
            cells += case.steps.iter().flat_map(|s| &s.probes).map(|p| p.matrix.len() * (p.matrix.len() - 1)).sum::<usize>();
            match run_case(&corpus.model, plan, case, &mut diagonal) {
                Ok(f) if f.is_empty() => {}
                Ok(f) => failed.push(format!("FAIL {} [{plan_name}]: {}", case.name, f.join(" | "))),
                Err(e) => failed.push(format!("FAIL {} [{plan_name}]: {e}", case.name)),
            }
        }
    }
    eprintln!("{runs} case runs, {cells} cells off the diagonal; {diagonal} diagonal cells differ (not counted, as upstream)");
    assert!(runs >= corpus.cases.len(), "every case runs at least once");
    assert!(failed.is_empty(), "{} of {runs} case runs disagree with the model:\n{}", failed.len(), failed.join("\n"));
}
