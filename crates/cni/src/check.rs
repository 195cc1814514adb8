//! CHECK: is everything ADD made still there? Lists every problem found, each
//! naming the object, so an operator can see what was damaged.

use crate::attach::{default_route, open_pod_netns};
use crate::bridge::Node;
use crate::config::NetConfig;
use crate::error::{code, CniError};
use crate::ipam;
use crate::names;
use crate::request::AttachRequest;
use crate::result::CniResult;
use std::collections::HashSet;
use weft_kernel::Handle;

pub async fn check(req: &AttachRequest, conf: &NetConfig, prev: &CniResult) -> Result<(), CniError> {
    req.attachment.validate()?;
    let a = &req.attachment;
    let netns_path = req
        .netns
        .as_deref()
        .ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_NETNS is required for CHECK"))?;
    let pod_ns = open_pod_netns(netns_path)?;
    let node = Node::open(req.host_netns.as_deref())?;
    let mut problems: Vec<String> = Vec::new();

    let leases = ipam::blocking(|| ipam::lookup(conf, a))?;
    let leases = leases.unwrap_or_else(|| {
        problems.push(format!("no IP reservation recorded for container {} {}", a.container_id, a.ifname));
        Vec::new()
    });

    // The prevResult's addresses on our sandbox interface must be ours.
    let ours = prev
        .interfaces
        .iter()
        .position(|i| i.name == a.ifname && i.sandbox.is_some());
    let held: HashSet<_> = leases.iter().map(|l| l.address).collect();
    for ip in prev.ips.iter().filter(|ip| ip.interface.is_some() && ip.interface == ours) {
        if !held.contains(&ip.address) {
            problems.push(format!("prevResult address {} is not reserved for this container", ip.address));
        }
    }

    // Host side.
    let host_veth = names::host_veth(&conf.name, &a.container_id, &a.ifname);
    let h = &node.handle;
    let bridge = h.link_by_name(&conf.bridge).await?;
    match &bridge {
        None => problems.push(format!("bridge {} is missing", conf.bridge)),
        Some(b) if !b.up => problems.push(format!("bridge {} is down", conf.bridge)),
        _ => {}
    }
    match h.link_by_name(&host_veth).await? {
        None => problems.push(format!("host veth {host_veth} is missing")),
        Some(l) => {
            if bridge.as_ref().map(|b| b.index) != l.master {
                problems.push(format!("host veth {host_veth} is not attached to bridge {}", conf.bridge));
            }
            if !l.up {
                problems.push(format!("host veth {host_veth} is down"));
            }
            if conf.hairpin && l.hairpin != Some(true) {
                problems.push(format!("hairpin mode is off on host veth {host_veth}"));
            }
        }
    }

    // Pod side.
    let p = Handle::open(&pod_ns)?;
    let where_ = netns_path.display();
    match p.link_by_name(&a.ifname).await? {
        None => problems.push(format!("interface {} is missing in netns {where_}", a.ifname)),
        Some(link) => {
            if !link.up {
                problems.push(format!("interface {} is down in netns {where_}", a.ifname));
            }
            let want_mac = ours.and_then(|i| prev.interfaces[i].mac.as_deref());
            let have_mac = link.mac.map(|m| m.to_string());
            if let (Some(want), Some(have)) = (want_mac, have_mac.as_deref()) {
                if !want.eq_ignore_ascii_case(have) {
                    problems.push(format!("interface {} has MAC {have}, prevResult says {want}", a.ifname));
                }
            }
            let addrs: HashSet<_> = p.addresses(Some(link.index)).await?.into_iter().map(|x| x.net).collect();
            for l in &leases {
                if !addrs.contains(&l.address) {
                    problems.push(format!("address {} is missing on {} in netns {where_}", l.address, a.ifname));
                }
            }
            for l in &leases {
                let v6 = l.address.addr().is_ipv6();
                let routes = p.routes(v6, None).await?;
                let dst = default_route(l.address);
                let found = routes
                    .iter()
                    .any(|r| r.dst == dst && r.gateway == Some(l.gateway) && r.oif == Some(link.index));
                if !found {
                    problems.push(format!(
                        "default route {dst} via {} dev {} is missing in netns {where_}",
                        l.gateway, a.ifname
                    ));
                }
            }
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(CniError::new(
            code::CHECK_FAILED,
            format!("CHECK failed for {}: {}", req.describe(), problems.join("; ")),
        ))
    }
}
