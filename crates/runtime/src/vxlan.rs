//! The `vxlan` backend's applier: keeps the node's VXLAN device as
//! `weft_cni::overlay` says, and its routes, neighbours and FDB entries at the plan.
//! It owns everything on that device and nothing else: whatever is on the device and
//! not planned goes, and nothing off it is touched.

use anyhow::{Context, Result};
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::IpAddr;
use weft_cni::overlay::{VxlanPlan, DEVICE, PORT, VNI};
use weft_kernel::{FdbEntry, Handle, Link, Mac, Route, VxlanSpec, MAIN_TABLE};

use crate::underlay::Underlay;

/// The device as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub index: u32,
    pub mac: Mac,
}

/// Makes the device if it is missing, or remakes it if it was made with other
/// settings (another VTEP address or underlay); fixes its MTU and state in place.
/// An existing device keeps its MAC, so a restarted agent changes nothing for others.
pub async fn ensure_device(h: &Handle, under: &Underlay, mtu: u32) -> Result<Device> {
    let want = |l: &Link, i: &weft_kernel::VxlanInfo| i.vni == VNI && i.local == Some(under.ip) && i.port == PORT && i.underlay == Some(under.link.index) && !i.learning && l.mac.is_some();
    match h.vxlan(DEVICE).await? {
        Some((link, Some(info))) if want(&link, &info) => {
            if link.mtu != mtu {
                h.set_link_mtu(link.index, mtu)
                    .await
                    .with_context(|| format!("{DEVICE} must fit inside its underlay {} (MTU {}): it cannot take MTU {mtu}", under.link.name, under.link.mtu))?;
            }
            if !link.up {
                h.set_link_up(link.index).await?;
            }
            return Ok(Device { index: link.index, mac: link.mac.expect("checked above") });
        }
        Some((link, info)) => {
            tracing::warn!(device = DEVICE, ?info, vtep = %under.ip, underlay = %under.link.name, "remaking the vxlan device: it has other settings than planned");
            h.delete_link(link.index).await?;
        }
        None => {}
    }
    h.create_vxlan(&VxlanSpec { name: DEVICE, vni: VNI, local: under.ip, port: PORT, underlay: Some(under.link.index), learning: false, mtu: Some(mtu), mac: None, up: true })
        .await?;
    let link = h.link(DEVICE).await?;
    let mac = link.mac.with_context(|| format!("the new vxlan device {DEVICE} reports no MAC address"))?;
    tracing::info!(device = DEVICE, %mac, vtep = %under.ip, underlay = %under.link.name, mtu, "made the vxlan device");
    Ok(Device { index: link.index, mac })
}

/// What one convergence changed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub removed: usize,
    pub failed: usize,
}

/// Makes the device's addresses, routes, neighbours and FDB entries equal the plan:
/// adds (replacing) what is missing first, then removes what is not planned, so an
/// entry that moves (a new MAC, a new node IP) never goes missing in between.
pub async fn converge(h: &Handle, dev: Device, plan: &VxlanPlan) -> Result<Changes> {
    let mut c = Changes::default();
    let idx = dev.index;

    let addrs: BTreeSet<IpNet> = h.addresses(Some(idx)).await?.into_iter().map(|a| a.net).filter(|n| !is_link_local(n.addr())).collect();
    for net in plan.addresses.difference(&addrs) {
        count(&mut c, true, h.ensure_address(idx, *net).await, || format!("address {net} on {DEVICE}"));
    }
    for net in addrs.difference(&plan.addresses) {
        count(&mut c, false, h.del_address(idx, *net).await, || format!("address {net} on {DEVICE}"));
    }

    let route = |dst: IpNet, gw: IpAddr| Route::via(dst, gw).with_oif(idx).onlink();
    let mut routes = BTreeSet::new();
    for v6 in [false, true] {
        for r in h.routes(v6, Some(MAIN_TABLE)).await? {
            if let (Some(gw), Some(oif)) = (r.gateway, r.oif) {
                if oif == idx {
                    routes.insert((r.dst, gw));
                }
            }
        }
    }
    for (dst, gw) in plan.routes.difference(&routes) {
        count(&mut c, true, h.replace_route(&route(*dst, *gw)).await, || format!("route {dst} via {gw} dev {DEVICE}"));
    }
    for (dst, gw) in routes.difference(&plan.routes) {
        count(&mut c, false, h.del_route(&route(*dst, *gw)).await, || format!("route {dst} via {gw} dev {DEVICE}"));
    }

    let neigh: BTreeSet<(IpAddr, Mac)> = h.neighbours(Some(idx)).await?.into_iter().filter(|n| n.permanent).filter_map(|n| Some((n.ip, n.mac?))).collect();
    for (ip, mac) in plan.neighbours.difference(&neigh) {
        count(&mut c, true, h.add_neighbour(idx, *ip, *mac, true).await, || format!("neighbour {ip} at {mac} on {DEVICE}"));
    }
    let wanted_ips: BTreeSet<IpAddr> = plan.neighbours.iter().map(|(ip, _)| *ip).collect();
    for (ip, mac) in neigh.difference(&plan.neighbours).filter(|(ip, _)| !wanted_ips.contains(ip)) {
        count(&mut c, false, h.del_neighbour(idx, *ip).await, || format!("neighbour {ip} at {mac} on {DEVICE}"));
    }

    let fdb: BTreeSet<(Mac, IpAddr)> = h.fdb(idx).await?.into_iter().filter(|e| e.mac.0 != [0; 6]).filter_map(|e| Some((e.mac, e.dst?))).collect();
    let entry = |mac: Mac, dst: IpAddr| FdbEntry { index: idx, mac, dst: Some(dst) };
    for (mac, dst) in plan.fdb.difference(&fdb) {
        count(&mut c, true, h.add_fdb(&entry(*mac, *dst), true).await, || format!("fdb {mac} dst {dst} on {DEVICE}"));
    }
    // A MAC still planned had its destination replaced in place just above.
    let wanted_macs: BTreeSet<Mac> = plan.fdb.iter().map(|(m, _)| *m).collect();
    for (mac, dst) in fdb.difference(&plan.fdb).filter(|(m, _)| !wanted_macs.contains(m)) {
        count(&mut c, false, h.del_fdb(&entry(*mac, *dst)).await, || format!("fdb {mac} dst {dst} on {DEVICE}"));
    }
    Ok(c)
}

fn count(c: &mut Changes, add: bool, r: weft_kernel::Result<()>, what: impl FnOnce() -> String) {
    match r {
        Ok(()) if add => c.added += 1,
        Ok(()) => c.removed += 1,
        // Already gone (e.g. with the address its route went): what we wanted.
        Err(e) if !add && e.is_not_found() => {}
        Err(e) => {
            c.failed += 1;
            tracing::warn!(%e, "{} {}", if add { "adding" } else { "removing" }, what());
        }
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}
