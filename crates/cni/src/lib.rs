//! weft-cni: pod networking on a node. One library, used two ways:
//!
//! - in process by weft's local pod runtime: [`attach`], [`detach`],
//!   [`check`], [`gc`], [`status`] with a [`NetConfig`] built in Rust;
//! - as the `weft-cni` binary a container runtime runs per the CNI spec
//!   1.1.0 (also 0.3.0, 0.3.1, 0.4.0, 1.0.0): see [`plugin`].
//!
//! Each pod gets a veth pair: the host end (`weft` + hash) on the node bridge
//! with hairpin on, the pod end (`eth0`) inside the pod netns with one
//! address per configured subnet and default routes via the bridge gateway.

mod attach;
pub mod backend;
mod bridge;
mod check;
pub mod config;
mod detach;
pub mod error;
mod gc;
pub mod ipam;
mod names;
pub mod overlay;
pub mod plugin;
pub mod request;
pub mod result;
pub mod routes;
pub mod version;

pub use backend::Backend;
pub use bridge::Node;
pub use config::{IpamConfig, NetConfig};
pub use error::{code, CniError};
pub use request::{AttachRequest, Attachment, PodRef};
pub use result::{CniResult, Dns, Interface, IpConfig, RouteConfig};
pub use version::Version;

use std::path::Path;

/// ADD: creates the pod's interface and returns what was made. A second ADD
/// of the same attachment without a DEL fails with [`code::ALREADY_ATTACHED`]:
/// the spec says a plugin MUST return an error if the interface already
/// exists in the container (reference plugins do the same).
pub async fn attach(req: &AttachRequest, conf: &NetConfig) -> Result<CniResult, CniError> {
    attach::attach(req, conf).await
}

/// ADD through `node`, a connection to the node netns opened once for many
/// ADDs ([`Node::open`] with the requests' `host_netns`): saves a thread and a
/// socket per ADD. `node` must be used on the tokio runtime that opened it.
pub async fn attach_on(node: &Node, req: &AttachRequest, conf: &NetConfig) -> Result<CniResult, CniError> {
    attach::attach_on(node, req, conf).await
}

/// DEL: removes the pod's interface and frees its addresses. Succeeds if
/// nothing is there, and without the pod netns.
pub async fn detach(req: &AttachRequest, conf: &NetConfig) -> Result<(), CniError> {
    detach::detach(req, conf).await
}

/// CHECK: verifies what `prev` (the ADD result) describes is still in place;
/// the error ([`code::CHECK_FAILED`]) lists every problem.
pub async fn check(req: &AttachRequest, conf: &NetConfig, prev: &CniResult) -> Result<(), CniError> {
    check::check(req, conf, prev).await
}

/// GC: frees addresses and host veths of every attachment not in `valid`.
/// `host_netns` is the node netns (`None`: the caller's).
pub async fn gc(conf: &NetConfig, valid: &[Attachment], host_netns: Option<&Path>) -> Result<(), CniError> {
    gc::gc(conf, valid, host_netns).await
}

/// STATUS: `Ok` if ADDs can succeed, else [`code::NOT_AVAILABLE`].
pub async fn status(conf: &NetConfig) -> Result<(), CniError> {
    gc::status(conf).await
}

/// The host-side veth name of an attachment (for logs, tests, observers).
pub fn host_veth_name(conf: &NetConfig, a: &Attachment) -> String {
    names::host_veth(&conf.name, &a.container_id, &a.ifname)
}
