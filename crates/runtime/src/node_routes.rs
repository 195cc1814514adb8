//! The node's routes to other nodes' pods (`direct` backend): watches Node objects and
//! keeps the node netns's routing table at `weft_cni::routes::plan`, changing only
//! what changed.

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use std::collections::BTreeSet;
use weft_cni::routes::{plan, NodeRoutes};
use weft_kernel::{Handle, Netns, Route};

use crate::node::NodeConfig;

fn of(n: &Node) -> NodeRoutes {
    let ips = n.status.as_ref().and_then(|s| s.addresses.clone()).unwrap_or_default();
    NodeRoutes {
        name: n.metadata.name.clone().unwrap_or_default(),
        internal_ips: ips.iter().filter(|a| a.type_ == "InternalIP").filter_map(|a| a.address.parse().ok()).collect(),
        pod_cidrs: n.spec.as_ref().and_then(|s| s.pod_cidrs.clone()).unwrap_or_default().iter().filter_map(|c| c.parse().ok()).collect(),
    }
}

pub async fn run(client: kube::Client, cfg: NodeConfig) -> anyhow::Result<()> {
    let ns = match &cfg.netns {
        Some(p) => Netns::open(p)?,
        None => Netns::current()?,
    };
    let h = Handle::open(&ns)?;
    let (store, writer) = reflector::store::<Node>();
    let stream = reflector::reflector(writer, watcher::watcher(Api::<Node>::all(client), Default::default()).default_backoff()).touched_objects();
    futures::pin_mut!(stream);
    let mut installed: BTreeSet<(ipnet::IpNet, std::net::IpAddr)> = BTreeSet::new();
    // Also resync on a timer: repairs routes someone removed by hand, and covers a
    // change that raced with the first list.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tokio::select! {
            next = stream.try_next() => if next?.is_none() { break },
            _ = tick.tick() => {
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
                installed.retain(|k| present.contains(k));
            }
        }
        let nodes: Vec<NodeRoutes> = store.state().iter().map(|n| of(n)).collect();
        let want: BTreeSet<_> = plan(&cfg.name, &nodes).into_iter().collect();
        for (dst, gw) in want.difference(&installed) {
            match h.replace_route(&Route::via(*dst, *gw)).await {
                Ok(()) => tracing::info!(node = %cfg.name, %dst, %gw, "route to pods of another node"),
                Err(e) => tracing::warn!(node = %cfg.name, %dst, %gw, %e, "adding a route to another node's pods"),
            }
        }
        for (dst, gw) in installed.difference(&want) {
            let _ = h.del_route(&Route::via(*dst, *gw)).await;
        }
        installed = want;
    }
    Ok(())
}
