//! DEL: remove the pod's veth and free its addresses. Idempotent, and it
//! works without the pod netns: the host end's name is derived from the
//! attachment, and deleting either end of a veth removes both.

use crate::bridge::Node;
use crate::config::NetConfig;
use crate::error::CniError;
use crate::ipam;
use crate::names;
use crate::request::AttachRequest;

pub async fn detach(req: &AttachRequest, conf: &NetConfig) -> Result<(), CniError> {
    req.attachment.validate()?;
    let a = &req.attachment;
    let node = Node::open(req.host_netns.as_deref())?;
    node.handle
        .delete_link_by_name(&names::host_veth(&conf.name, &a.container_id, &a.ifname))
        .await?;
    ipam::blocking(|| ipam::release(conf, a))?;
    Ok(())
}
