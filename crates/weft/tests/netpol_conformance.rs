//! `weft conformance netpol FILE`, the built binary as CI runs it: on a tiny synthetic
//! corpus (cases that pass, and one whose expectation is wrong and must fail), and on
//! the shared corpus conformance/netpol/cases.yaml, which must pass every case.
//! The runner isolates itself (its own network and mount namespaces) and brings up its
//! own cluster, so these tests need root but no harness.

mod common;

use std::process::{Command, Output};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../conformance/netpol/cases.yaml");

fn conformance(file: &std::path::Path, extra: &[&str]) -> Output {
    common::require_root();
    Command::new(env!("CARGO_BIN_EXE_weft")).args(["conformance", "netpol"]).arg(file).args(extra).env("WEFT_LOG", "info,kube=warn").output().expect("running weft conformance netpol")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr_tail(o: &Output) -> String {
    let s = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Every pair of `pods` allowed, except `denied` (src, dst) pairs.
fn matrix(pods: &[&str], denied: &[(&str, &str)]) -> String {
    let mut m = String::from("      matrix:\n");
    for s in pods {
        m.push_str(&format!("        {s}:\n"));
        for d in pods {
            let word = if denied.contains(&(*s, *d)) { "denied" } else { "allowed" };
            m.push_str(&format!("          {d}: {word}\n"));
        }
    }
    m
}

fn synthetic() -> String {
    let pods = ["x/a", "x/b", "y/a"];
    let ports = "containerPorts: [{name: serve-80-tcp, containerPort: 80, protocol: TCP}]";
    let mut f = format!(
        "format: netpol-conformance-corpus/v1\nmodel:\n  namespaces:\n    x: {{labels: {{ns: x}}}}\n    y: {{labels: {{ns: y}}}}\n  pods:\n    x/a: {{labels: {{pod: a}}, {ports}}}\n    x/b: {{labels: {{pod: b}}, {ports}}}\n    y/a: {{labels: {{pod: a}}, {ports}}}\n  probe_ports: [80]\n  probe_protocols: [TCP]\ncases:\n"
    );
    f.push_str("- name: no-policy-allows-everything\n  steps:\n  - actions: []\n    probes:\n    - protocol: TCP\n      port: 80\n");
    f.push_str(&matrix(&pods, &[]));
    f.push_str("- name: default-deny-ingress-on-x-a\n  steps:\n  - actions:\n    - create_policy:\n        apiVersion: networking.k8s.io/v1\n        kind: NetworkPolicy\n        metadata: {name: deny-a, namespace: x}\n        spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress]}\n    probes:\n    - protocol: TCP\n      port: 80\n");
    f.push_str(&matrix(&pods, &[("x/a", "x/a"), ("x/b", "x/a"), ("y/a", "x/a")]));
    f.push_str("- name: a-wrong-expectation-fails\n  steps:\n  - actions: []\n    probes:\n    - protocol: TCP\n      port: 80\n");
    f.push_str(&matrix(&pods, &[("y/a", "x/b")]));
    f
}

#[test]
fn the_runner_passes_true_expectations_and_names_the_cell_of_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.yaml");
    std::fs::write(&file, synthetic()).unwrap();
    let t = std::time::Instant::now();
    let out = conformance(&file, &["--keep-going", "--converge-secs", "2"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    eprintln!("{text}(in {:?})", t.elapsed());
    assert_eq!(lines.len(), 4, "one line per case and the summary:\n{text}\nstderr:\n{}", stderr_tail(&out));
    assert_eq!(lines[0], "PASS no-policy-allows-everything", "{}", stderr_tail(&out));
    assert_eq!(lines[1], "PASS default-deny-ingress-on-x-a", "{}", stderr_tail(&out));
    assert_eq!(
        lines[2],
        "FAIL a-wrong-expectation-fails: step 1 TCP/80 model: y/a -> x/b expected denied, got allowed; step 1 TCP/80: y/a -> x/b expected denied, got allowed"
    );
    assert_eq!(lines[3], "2 passed, 1 failed");
    assert_eq!(out.status.code(), Some(1));

    // --only picks cases by name, and a run without failures exits 0.
    let out = conformance(&file, &["--only", "deny-ingress"]);
    assert_eq!(stdout(&out), "PASS default-deny-ingress-on-x-a\n1 passed, 0 failed\n", "{}", stderr_tail(&out));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_shared_corpus_passes_every_case() {
    let cases = std::fs::read_to_string(SHARED).unwrap().matches("\n- name: ").count();
    let t = std::time::Instant::now();
    let out = conformance(std::path::Path::new(SHARED), &["--keep-going"]);
    let text = stdout(&out);
    eprintln!("{text}(in {:?})", t.elapsed());
    assert_eq!(text.lines().last(), Some(format!("{cases} passed, 0 failed").as_str()), "{text}\nstderr:\n{}", stderr_tail(&out));
    assert_eq!(out.status.code(), Some(0));
}
