//! GC (spec 1.1.0): free whatever belongs to attachments the runtime no
//! longer knows: their addresses, and host veths left on our bridge.

use crate::bridge::Node;
use crate::config::NetConfig;
use crate::error::{code, CniError};
use crate::ipam;
use crate::names;
use crate::request::Attachment;
use std::collections::HashSet;
use std::path::Path;

/// Keeps `valid` and removes the rest. Goes on past individual failures and
/// reports the first, so one bad entry does not pin every other leak.
pub async fn gc(conf: &NetConfig, valid: &[Attachment], host_netns: Option<&Path>) -> Result<(), CniError> {
    let valid: HashSet<Attachment> = valid.iter().cloned().collect();
    let keep: HashSet<String> = valid
        .iter()
        .map(|a| names::host_veth(&conf.name, &a.container_id, &a.ifname))
        .collect();
    let ipam_result = ipam::blocking(|| ipam::gc(conf, &valid));

    let node = Node::open(host_netns)?;
    let mut first_err = ipam_result.err();
    if let Some(bridge) = node.handle.link_by_name(&conf.bridge).await? {
        for link in node.handle.links().await? {
            let stale = link.master == Some(bridge.index)
                && link.kind.as_deref() == Some("veth")
                && names::is_host_veth(&link.name)
                && !keep.contains(&link.name);
            if stale {
                if let Err(e) = node.handle.delete_link(link.index).await {
                    if !e.is_not_found() && first_err.is_none() {
                        first_err = Some(e.into());
                    }
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// STATUS (spec 1.1.0): can ADDs succeed? Error 50 if the store is unusable
/// or a subnet has no free address.
pub async fn status(conf: &NetConfig) -> Result<(), CniError> {
    let exhausted = ipam::blocking(|| ipam::exhausted(conf)).map_err(|e| CniError::new(code::NOT_AVAILABLE, "IPAM store unusable").with_details(e.to_string()))?;
    if !exhausted.is_empty() {
        let list: Vec<String> = exhausted.iter().map(ToString::to_string).collect();
        return Err(CniError::new(
            code::NOT_AVAILABLE,
            format!("no free addresses left in {}", list.join(", ")),
        ));
    }
    Ok(())
}
