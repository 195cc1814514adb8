//! The node's paths to other nodes' pods: watches Node objects and keeps the node
//! netns at the backend's plan, resyncing every 2 s (which also repairs what someone
//! removed by hand, and covers a change that raced with the first list).
//!
//! - `direct`: routes from `weft_cni::routes::plan`, changing only what changed.
//! - `vxlan`: the VXLAN device, its routes, neighbours and FDB entries from
//!   `weft_cni::overlay::plan`; the node's VTEP MAC goes to its Node annotation.

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use std::collections::BTreeSet;
use std::time::Duration;
use weft_cni::overlay::{self, VxlanPlan, VTEP_MAC_ANNOTATION};
use weft_cni::routes::{plan, NodeRoutes};
use weft_cni::Backend;
use weft_kernel::{Handle, Route};

use crate::node::NodeConfig;
use crate::underlay::{self, Underlay};
use crate::vxlan;

fn of(n: &Node) -> NodeRoutes {
    let ips = n.status.as_ref().and_then(|s| s.addresses.clone()).unwrap_or_default();
    NodeRoutes {
        name: n.metadata.name.clone().unwrap_or_default(),
        internal_ips: ips.iter().filter(|a| a.type_ == "InternalIP").filter_map(|a| a.address.parse().ok()).collect(),
        pod_cidrs: n.spec.as_ref().and_then(|s| s.pod_cidrs.clone()).unwrap_or_default().iter().filter_map(|c| c.parse().ok()).collect(),
        vtep_mac: n.metadata.annotations.as_ref().and_then(|a| a.get(VTEP_MAC_ANNOTATION)).cloned(),
    }
}

pub async fn run(client: kube::Client, cfg: NodeConfig) -> anyhow::Result<()> {
    let h = underlay::handle(&cfg)?;
    let (store, writer) = reflector::store::<Node>();
    let stream = reflector::reflector(writer, watcher::watcher(Api::<Node>::all(client.clone()), Default::default()).default_backoff()).touched_objects();
    futures::pin_mut!(stream);
    let mut paths = match cfg.backend {
        Backend::Direct => Paths::Direct(Direct::new(&h).await),
        Backend::Vxlan => Paths::Vxlan(Box::new(Vxlan { client, under: None, device: None, applied: None, skipped: vec![] })),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut ready = false;
    loop {
        let resync = tokio::select! {
            next = stream.try_next() => { if next?.is_none() { break } false }
            _ = tick.tick() => true,
            r = store.wait_until_ready(), if !ready => { r?; ready = true; true }
        };
        // Until the first list is in, an empty store would read as "no other nodes".
        if ready {
            match &mut paths {
                Paths::Direct(d) => d.sync(&h, &cfg, &store, resync).await,
                Paths::Vxlan(v) => {
                    if let Err(e) = v.sync(&h, &cfg, &store, resync).await {
                        tracing::warn!(node = %cfg.name, "vxlan backend: {e:#}; retrying in 2s");
                        v.device = None;
                    }
                }
            }
        }
    }
    Ok(())
}

/// One backend's state between syncs. Each `sync` brings the kernel to the plan for
/// the current Node objects; `resync` also re-reads the kernel when the plan has not
/// changed.
enum Paths {
    Direct(Direct),
    Vxlan(Box<Vxlan>),
}

struct Direct {
    installed: BTreeSet<(ipnet::IpNet, std::net::IpAddr)>,
}

impl Direct {
    async fn new(h: &Handle) -> Direct {
        // A vxlan device left from a run with the other backend: its routes go with it.
        if let Ok(true) = h.delete_link_by_name(overlay::DEVICE).await {
            tracing::info!(device = overlay::DEVICE, "removed the vxlan device: this node uses the direct backend");
        }
        Direct { installed: BTreeSet::new() }
    }

    async fn sync(&mut self, h: &Handle, cfg: &NodeConfig, store: &Store<Node>, resync: bool) {
        if resync {
            // Forget only what the kernel no longer has, so the resync writes nothing
            // when all is in place.
            let mut present = BTreeSet::new();
            for v6 in [false, true] {
                for r in h.routes(v6, None).await.unwrap_or_default() {
                    if let Some(gw) = r.gateway {
                        present.insert((r.dst, gw));
                    }
                }
            }
            self.installed.retain(|k| present.contains(k));
        }
        let nodes: Vec<NodeRoutes> = store.state().iter().map(|n| of(n)).collect();
        let want: BTreeSet<_> = plan(&cfg.name, &nodes).into_iter().collect();
        for (dst, gw) in want.difference(&self.installed) {
            match h.replace_route(&Route::via(*dst, *gw)).await {
                Ok(()) => tracing::info!(node = %cfg.name, %dst, %gw, "route to pods of another node"),
                Err(e) => tracing::warn!(node = %cfg.name, %dst, %gw, %e, "adding a route to another node's pods"),
            }
        }
        for (dst, gw) in self.installed.difference(&want) {
            let _ = h.del_route(&Route::via(*dst, *gw)).await;
        }
        self.installed = want;
    }
}


struct Vxlan {
    client: kube::Client,
    under: Option<Underlay>,
    device: Option<vxlan::Device>,
    /// The plan last converged to; an unchanged plan waits for the next resync.
    applied: Option<VxlanPlan>,
    skipped: Vec<String>,
}

impl Vxlan {
    async fn sync(&mut self, h: &Handle, cfg: &NodeConfig, store: &Store<Node>, resync: bool) -> anyhow::Result<()> {
        if self.under.is_none() || resync {
            let u = underlay::find(h, cfg).await?;
            if self.under.as_ref().is_some_and(|old| old.ip != u.ip || old.link.index != u.link.index) {
                self.applied = None;
            }
            self.under = Some(u);
        }
        let under = self.under.as_ref().expect("set above");
        if self.device.is_none() || resync {
            let d = vxlan::ensure_device(h, under, Backend::Vxlan.pod_mtu(under.link.mtu, under.ip.is_ipv6())).await?;
            if self.device != Some(d) {
                // A new device has none of the old one's entries.
                self.applied = None;
            }
            self.device = Some(d);
        }
        let dev = self.device.expect("set above");

        let me = store.get(&ObjectRef::new(&cfg.name));
        let published = me.as_ref().and_then(|n| n.metadata.annotations.as_ref()).and_then(|a| a.get(VTEP_MAC_ANNOTATION)).cloned();
        if me.is_some() && published.as_deref() != Some(dev.mac.to_string().as_str()) {
            let patch = serde_json::json!({"metadata": {"annotations": {VTEP_MAC_ANNOTATION: dev.mac.to_string()}}});
            Api::<Node>::all(self.client.clone())
                .patch(&cfg.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map_err(|e| anyhow::anyhow!("publishing the VTEP MAC {} in Node {} annotation {VTEP_MAC_ANNOTATION}: {e}", dev.mac, cfg.name))?;
            tracing::info!(node = %cfg.name, mac = %dev.mac, "published the VTEP MAC");
        }

        let mut nodes: Vec<NodeRoutes> = store.state().iter().map(|n| of(n)).collect();
        // Our own entry says what our device really has, even before the patch lands.
        if let Some(n) = nodes.iter_mut().find(|n| n.name == cfg.name) {
            n.vtep_mac = Some(dev.mac.to_string());
        }
        let p = overlay::plan(&cfg.name, under.ip, &nodes);
        if p.skipped != self.skipped {
            for why in p.skipped.iter().filter(|w| !self.skipped.contains(w)) {
                tracing::info!(node = %cfg.name, "overlay: {why}");
            }
            self.skipped = p.skipped.clone();
        }
        if !resync && self.applied.as_ref() == Some(&p) {
            return Ok(());
        }
        let c = vxlan::converge(h, dev, &p).await?;
        if c != vxlan::Changes::default() {
            tracing::info!(node = %cfg.name, added = c.added, removed = c.removed, failed = c.failed, routes = p.routes.len(), fdb = p.fdb.len(), "overlay converged");
        }
        // A failure is retried at the next resync, whatever the plan.
        self.applied = (c.failed == 0).then_some(p);
        Ok(())
    }
}
