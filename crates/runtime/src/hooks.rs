//! Container lifecycle hooks (`postStart`, `preStop`): exec inside the container,
//! httpGet from the node's namespace to the pod (as probes), or sleep. An error names
//! the hook and what failed, for the `FailedPostStartHook`/`FailedPreStopHook` events.

use crate::probe::{self, Outcome};
use k8s_openapi::api::core::v1::{Container, LifecycleHandler};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use weft_kernel::Netns;

/// What a hook needs of its container.
#[derive(Clone)]
pub struct Target {
    pub container: Container,
    pub pid: u32,
    pub pod_ip: Option<IpAddr>,
    pub node_netns: Option<Arc<Netns>>,
}

/// Runs one handler to its end (callers bound it with the grace period).
pub async fn run(h: &LifecycleHandler, t: &Target) -> Result<(), String> {
    if let Some(e) = &h.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return match crate::probe_exec::exec(t.pid, &cmd, None).await {
            Outcome::Success | Outcome::Warning(_) => Ok(()),
            Outcome::Failure(m) | Outcome::Error(m) => Err(format!("Exec lifecycle hook ({}) for Container {:?} failed: {m}", cmd.join(" "), t.container.name)),
        };
    }
    if let Some(g) = &h.http_get {
        // Compiled as an httpGet probe: same host default, named ports and headers.
        let p = k8s_openapi::api::core::v1::Probe { http_get: Some(g.clone()), ..Default::default() };
        let spec = probe::compile(probe::Kind::Liveness, &p, &t.container, t.pod_ip).map_err(|e| format!("HTTP lifecycle hook for Container {:?}: {e}", t.container.name))?;
        let probe::Action::Http(get) = spec.action else { unreachable!("an httpGet handler compiles to an HTTP action") };
        // Hooks have no timeoutSeconds; the caller's grace period bounds them.
        return match crate::probe_net::http_get(t.node_netns.as_deref(), &get, Duration::from_secs(3600)).await {
            Outcome::Success | Outcome::Warning(_) => Ok(()),
            Outcome::Failure(m) | Outcome::Error(m) => Err(format!("HTTP lifecycle hook ({}) for Container {:?} failed: {m}", get.path, t.container.name)),
        };
    }
    if let Some(s) = &h.sleep {
        tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
        return Ok(());
    }
    if h.tcp_socket.is_some() {
        return Err(format!("tcpSocket lifecycle hooks are not supported (container {:?}); use exec, httpGet or sleep", t.container.name));
    }
    Err(format!("container {:?}: a lifecycle hook with no action", t.container.name))
}
