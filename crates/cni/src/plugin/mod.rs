//! The CNI execution protocol around the library: environment and stdin in,
//! result or error JSON out, exit code 0 or 1.

mod env;

pub use env::Command;

use crate::config::{self, Parsed};
use crate::error::{code, CniError};
use crate::result::CniResult;
use crate::version::{Version, LATEST, SUPPORTED};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};

/// What one invocation prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: i32,
    /// JSON for stdout; empty when the command prints nothing.
    pub stdout: String,
}

/// The binary's entry point: reads the process environment and stdin.
pub fn main() -> i32 {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut stdin = Vec::new();
    let outcome = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => run(&env, &stdin),
        Err(e) => failure(
            LATEST,
            &CniError::new(code::IO, "cannot read the network configuration from stdin").with_details(e.to_string()),
        ),
    };
    if !outcome.stdout.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", outcome.stdout);
        let _ = out.flush();
    }
    outcome.exit_code
}

/// One invocation, given its environment and stdin.
pub fn run(env: &HashMap<String, String>, stdin: &[u8]) -> Outcome {
    // Errors are stamped with the requested version when it is one we speak.
    let requested = serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion").and_then(Value::as_str).map(String::from))
        .filter(|v| SUPPORTED.contains(&v.as_str()));
    let err_version = requested.as_deref().unwrap_or(LATEST);
    let cmd = match Command::from_env(env) {
        Ok(c) => c,
        Err(e) => return failure(err_version, &e),
    };
    if cmd == Command::Version {
        return version_info(stdin);
    }
    match execute(cmd, env, stdin) {
        Ok(Some(v)) => Outcome {
            exit_code: 0,
            stdout: v.to_string(),
        },
        Ok(None) => Outcome {
            exit_code: 0,
            stdout: String::new(),
        },
        Err(e) => {
            eprintln!("weft-cni {cmd:?}: {e}");
            failure(err_version, &e)
        }
    }
}

fn failure(version: &str, e: &CniError) -> Outcome {
    Outcome {
        exit_code: 1,
        stdout: e.to_json(version).to_string(),
    }
}

/// VERSION: stdin is `{"cniVersion": ...}` (or empty); echo that version when
/// we speak it, and list what we support.
fn version_info(stdin: &[u8]) -> Outcome {
    let trimmed = String::from_utf8_lossy(stdin);
    let echoed = if trimmed.trim().is_empty() {
        LATEST.to_string()
    } else {
        match serde_json::from_slice::<Value>(stdin) {
            Ok(v) => v
                .get("cniVersion")
                .and_then(Value::as_str)
                .filter(|v| SUPPORTED.contains(v))
                .unwrap_or(LATEST)
                .to_string(),
            Err(e) => {
                return failure(
                    LATEST,
                    &CniError::new(code::DECODE, "cannot decode the VERSION request").with_details(e.to_string()),
                )
            }
        }
    };
    Outcome {
        exit_code: 0,
        stdout: json!({"cniVersion": echoed, "supportedVersions": SUPPORTED}).to_string(),
    }
}

fn execute(cmd: Command, env: &HashMap<String, String>, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    let Parsed {
        net,
        prev_result,
        valid_attachments,
    } = config::parse(stdin)?;
    let version = net.cni_version;
    gate(cmd, version)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::new(code::IO, format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        match cmd {
            Command::Add => {
                let req = env::request(cmd, env)?;
                let prev = prev_result.as_ref().map(CniResult::from_json).transpose()?;
                let ours = crate::attach(&req, &net).await?;
                let result = match prev {
                    Some(p) => p.merged_with(ours),
                    None => ours,
                };
                Ok(Some(result.to_json(version)))
            }
            Command::Del => {
                // prevResult is not needed: the attachment key finds everything.
                let req = env::request(cmd, env)?;
                crate::detach(&req, &net).await.map(|()| None)
            }
            Command::Check => {
                let req = env::request(cmd, env)?;
                let prev = prev_result.ok_or_else(|| {
                    CniError::invalid_config("CHECK needs \"prevResult\" (the result of the ADD)")
                })?;
                let prev = CniResult::from_json(&prev)?;
                crate::check(&req, &net, &prev).await.map(|()| None)
            }
            Command::Gc => {
                let valid = valid_attachments.unwrap_or_default();
                crate::gc(&net, &valid, None).await.map(|()| None)
            }
            Command::Status => crate::status(&net).await.map(|()| None),
            Command::Version => unreachable!("handled before parsing"),
        }
    })
}

/// Commands newer than the requested version are refused (error 1).
fn gate(cmd: Command, v: Version) -> Result<(), CniError> {
    let ok = match cmd {
        Command::Check => v.has_check(),
        Command::Gc | Command::Status => v.has_gc_and_status(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!("CNI version {v} does not have the {cmd:?} command"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(cmd: &str) -> HashMap<String, String> {
        [("CNI_COMMAND".to_string(), cmd.to_string())].into_iter().collect()
    }

    #[test]
    fn version_lists_supported_and_echoes_the_request() {
        let o = run(&env("VERSION"), br#"{"cniVersion":"0.4.0"}"#);
        assert_eq!(o.exit_code, 0);
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(v["supportedVersions"], json!(SUPPORTED));
        let v: Value = serde_json::from_str(&run(&env("VERSION"), b"").stdout).unwrap();
        assert_eq!(v["cniVersion"], LATEST);
    }

    #[test]
    fn errors_are_spec_json_with_nonzero_exit() {
        let o = run(&env("ADD"), b"{not json");
        assert_eq!(o.exit_code, 1);
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(v["code"], 6);
        assert_eq!(v["cniVersion"], LATEST);
        assert!(v["msg"].as_str().unwrap().contains("decode"));
        let o = run(&HashMap::new(), b"{}");
        assert_eq!(serde_json::from_str::<Value>(&o.stdout).unwrap()["code"], 4);
    }

    #[test]
    fn newer_commands_are_refused_for_older_versions() {
        let conf = |v: &str| {
            format!(r#"{{"cniVersion":"{v}","name":"n","type":"weft-cni","ipam":{{"subnets":["10.0.0.0/24"],"dataDir":"/nonexistent"}}}}"#)
        };
        for (cmd, ver) in [("CHECK", "0.3.1"), ("GC", "1.0.0"), ("STATUS", "0.4.0")] {
            let o = run(&env(cmd), conf(ver).as_bytes());
            let v: Value = serde_json::from_str(&o.stdout).unwrap();
            assert_eq!((o.exit_code, v["code"].clone(), v["cniVersion"].clone()), (1, json!(1), json!(ver)), "{cmd}");
        }
    }
}
