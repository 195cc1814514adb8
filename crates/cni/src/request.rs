//! Who is asking: the attachment (container id + interface name) and where.

use crate::config::valid_name;
use crate::error::{code, CniError};
use std::path::PathBuf;

/// One attachment of a container to the network. The spec keys state on
/// (network name, container id, ifname); the network name is in the config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
}

impl Attachment {
    /// Applies the spec's rules for container ids and interface names
    /// (error 4: they arrive as environment variables).
    pub fn validate(&self) -> Result<(), CniError> {
        if !valid_name(&self.container_id) {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!(
                    "invalid CNI_CONTAINERID {:?}: must start with a letter or digit, then letters, digits, '_', '.' or '-'",
                    self.container_id
                ),
            ));
        }
        check_ifname(&self.ifname).map_err(|why| {
            CniError::new(code::INVALID_ENV, format!("invalid CNI_IFNAME {:?}: {why}", self.ifname))
        })
    }
}

/// A pod's identity, from CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME) or the
/// local runtime; used in messages only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

/// What ADD, CHECK and DEL act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    pub attachment: Attachment,
    /// The pod's network namespace file (CNI_NETNS). Required for ADD and
    /// CHECK; DEL works without it.
    pub netns: Option<PathBuf>,
    /// The netns that holds the bridge (the node). `None` is the caller's
    /// thread's netns, as for the plugin binary; the local runtime passes
    /// each node's netns here.
    pub host_netns: Option<PathBuf>,
    pub pod: Option<PodRef>,
}

impl AttachRequest {
    pub fn new(container_id: &str, ifname: &str, netns: Option<PathBuf>) -> AttachRequest {
        AttachRequest {
            attachment: Attachment {
                container_id: container_id.to_string(),
                ifname: ifname.to_string(),
            },
            netns,
            host_netns: None,
            pod: None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        let a = &self.attachment;
        match &self.pod {
            Some(p) => format!("{}/{} ({} {})", p.namespace, p.name, a.container_id, a.ifname),
            None => format!("container {} {}", a.container_id, a.ifname),
        }
    }
}

/// Linux interface name rules, as the spec restates them.
pub(crate) fn check_ifname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > 15 {
        return Err("must be at most 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("must not be \".\" or \"..\"");
    }
    if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control()) {
        return Err("must not contain '/', ':' or whitespace");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_rules_for_ids_and_interface_names() {
        let ok = |c: &str, i: &str| Attachment { container_id: c.into(), ifname: i.into() }.validate();
        assert!(ok("abc-1.2_3", "eth0").is_ok());
        for (c, i) in [("", "eth0"), ("-x", "eth0"), ("a b", "eth0"), ("a", ""), ("a", "e/0"), ("a", "e:0"), ("a", "x".repeat(16).as_str()), ("a", ".."), ("a", "e 0")] {
            let e = ok(c, i).unwrap_err();
            assert_eq!(e.code, code::INVALID_ENV, "{c:?} {i:?}");
        }
    }
}
