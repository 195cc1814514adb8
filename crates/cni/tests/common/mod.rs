//! Runs the built `weft-cni` exactly as a container runtime does: CNI_*
//! variables in a clean environment, the config on stdin, JSON on stdout.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use weft_kernel::Netns;

pub const BIN: &str = env!("CARGO_BIN_EXE_weft-cni");

/// One network's config, with its data dir under the test's temp dir.
pub fn conf(version: &str, subnets: &[&str], data_dir: &Path) -> Value {
    json!({
        "cniVersion": version,
        "name": "weft",
        "type": "weft-cni",
        "bridge": "weft0",
        "mtu": 1450,
        "ipam": { "subnets": subnets, "dataDir": data_dir },
        "dns": { "nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"] }
    })
}

pub struct Reply {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

impl Reply {
    /// The error code of an error reply.
    pub fn err_code(&self) -> u64 {
        assert_ne!(self.code, 0, "expected failure, got {}", self.json);
        self.json["code"].as_u64().unwrap_or_else(|| panic!("no code in {}", self.json))
    }

    pub fn msg(&self) -> String {
        format!("{} {}", self.json["msg"].as_str().unwrap_or(""), self.json["details"].as_str().unwrap_or(""))
    }

    pub fn ok(&self) -> &Value {
        assert_eq!(self.code, 0, "expected success, got {} (stderr: {})", self.json, self.stderr);
        &self.json
    }
}

/// Runs the plugin with `env` (no other variables) and `stdin`.
pub fn invoke(env: &[(&str, &str)], stdin: &str) -> Reply {
    let mut child = Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weft-cni");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    Reply {
        code: out.status.code().unwrap_or(-1),
        json: if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text:?}")) },
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// ADD/DEL/CHECK with the usual variables.
pub fn cmd(command: &str, id: &str, netns: Option<&Path>, conf: &Value) -> Reply {
    let ns = netns.map(|p| p.display().to_string()).unwrap_or_default();
    let mut env = vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", id),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p"),
    ];
    if netns.is_some() {
        env.push(("CNI_NETNS", &ns));
    }
    invoke(&env, &conf.to_string())
}

/// A pod netns under the test dir.
pub fn pod(dir: &Path, name: &str) -> (PathBuf, Netns) {
    let p = dir.join(name);
    let ns = Netns::create(&p).unwrap();
    (p, ns)
}

/// `conf` with `prevResult` set, as the runtime sends CHECK and DEL.
pub fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

/// The first address of the given family in a result.
pub fn addr_of(result: &Value, v6: bool) -> String {
    result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["address"].as_str().unwrap().to_string())
        .find(|a| a.contains(':') == v6)
        .unwrap_or_else(|| panic!("no {} address in {result}", if v6 { "IPv6" } else { "IPv4" }))
}

/// The addresses the IPAM store under `data` (the config's dataDir) holds, sorted.
pub fn reserved(data: &Path) -> Vec<String> {
    let store = weft_cni::ipam::Store::lock(&data.join("weft")).expect("IPAM store");
    let mut ips: Vec<String> = store.reserved().iter().map(ToString::to_string).collect();
    ips.sort();
    ips
}
