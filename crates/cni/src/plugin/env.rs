//! The CNI_* environment variables, read and checked per command. Pure: the
//! caller hands in the variables, so tests need no process environment.

use crate::error::{code, CniError};
use crate::request::{AttachRequest, PodRef};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
    Version,
}

impl Command {
    pub fn from_env(env: &HashMap<String, String>) -> Result<Command, CniError> {
        match env.get("CNI_COMMAND").map(String::as_str) {
            None | Some("") => Err(CniError::new(code::INVALID_ENV, "CNI_COMMAND is not set")),
            Some("ADD") => Ok(Command::Add),
            Some("DEL") => Ok(Command::Del),
            Some("CHECK") => Ok(Command::Check),
            Some("GC") => Ok(Command::Gc),
            Some("STATUS") => Ok(Command::Status),
            Some("VERSION") => Ok(Command::Version),
            Some(other) => Err(CniError::new(
                code::INVALID_ENV,
                format!("CNI_COMMAND {other:?} is unknown: expected ADD, DEL, CHECK, GC, STATUS or VERSION"),
            )),
        }
    }

    /// The variables this command requires. CNI_PATH is not among them:
    /// weft-cni never runs other plugins.
    fn required(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME"],
            Command::Gc | Command::Status | Command::Version => &[],
        }
    }
}

/// Builds the request for ADD, DEL or CHECK; error 4 names every missing
/// or invalid variable.
pub fn request(cmd: Command, env: &HashMap<String, String>) -> Result<AttachRequest, CniError> {
    let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let missing: Vec<&str> = cmd.required().iter().copied().filter(|k| get(k).is_none()).collect();
    if !missing.is_empty() {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!("missing environment variables: {}", missing.join(", ")),
        ));
    }
    let mut req = AttachRequest::new(
        get("CNI_CONTAINERID").unwrap_or_default(),
        get("CNI_IFNAME").unwrap_or_default(),
        get("CNI_NETNS").map(PathBuf::from),
    );
    req.attachment.validate()?;
    req.pod = pod_from_args(get("CNI_ARGS").unwrap_or_default())?;
    Ok(req)
}

/// CNI_ARGS is "K=V;K2=V2"; weft reads the pod identity kubelet puts there.
fn pod_from_args(args: &str) -> Result<Option<PodRef>, CniError> {
    let mut pod = PodRef::default();
    for pair in args.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            CniError::new(code::INVALID_ENV, format!("CNI_ARGS entry {pair:?} is not KEY=VALUE"))
        })?;
        match k {
            "K8S_POD_NAMESPACE" => pod.namespace = v.to_string(),
            "K8S_POD_NAME" => pod.name = v.to_string(),
            _ => {} // IgnoreUnknown, K8S_POD_UID, ...: not needed.
        }
    }
    Ok((!pod.name.is_empty()).then_some(pod))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn missing_variables_are_error_4_naming_each() {
        let e = Command::from_env(&env(&[])).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.msg.contains("CNI_COMMAND"));
        let e = request(Command::Add, &env(&[("CNI_IFNAME", "eth0")])).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.msg.contains("CNI_CONTAINERID") && e.msg.contains("CNI_NETNS"), "{e}");
        assert!(!e.msg.contains("CNI_IFNAME"), "{e}");
    }

    #[test]
    fn del_needs_no_netns() {
        let r = request(Command::Del, &env(&[("CNI_CONTAINERID", "c1"), ("CNI_IFNAME", "eth0")])).unwrap();
        assert_eq!(r.netns, None);
    }

    #[test]
    fn unknown_command_is_error_4() {
        assert_eq!(Command::from_env(&env(&[("CNI_COMMAND", "FOO")])).unwrap_err().code, code::INVALID_ENV);
    }

    #[test]
    fn pod_identity_comes_from_cni_args() {
        let r = request(
            Command::Del,
            &env(&[
                ("CNI_CONTAINERID", "c1"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0"),
            ]),
        )
        .unwrap();
        assert_eq!(r.pod, Some(PodRef { namespace: "default".into(), name: "web-0".into() }));
        let bad = env(&[("CNI_CONTAINERID", "c1"), ("CNI_IFNAME", "eth0"), ("CNI_ARGS", "oops")]);
        assert_eq!(request(Command::Del, &bad).unwrap_err().code, code::INVALID_ENV);
    }
}
