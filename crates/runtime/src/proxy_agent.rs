//! The node's service proxy: watches Services and EndpointSlices (kube-rs, so it runs the
//! same against any cluster), keeps `weft_proxy::ProxyState`, and moves the node netns's
//! `inet weft-proxy` table with `weft_proxy::apply::Applier`.
//!
//! Events that arrive within a few milliseconds of each other are applied together. The
//! first sync waits for the initial list of both kinds (a half-listed state would delete
//! rules that are still wanted), then reads the table back and writes only what differs,
//! so a restart keeps established connections and rewrites nothing unchanged.

use crate::node::NodeConfig;
use crate::proxy_health::HealthServers;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_kernel::Netns;
use weft_proxy::apply::Applier;
use weft_proxy::metrics::{ProxyMetrics, SyncKind};
use weft_proxy::{NodeContext, ProxyState};

/// Services another proxy implements, and headless ones, are not ours (as kube-proxy;
/// `ProxyState` also leaves a service labelled for another proxy alone).
pub const NOT_OURS: &str = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless";
/// Events closer together than this are applied in one transaction.
const COALESCE: Duration = Duration::from_millis(5);

enum Ev {
    Svc(Box<Event<Service>>),
    Slice(Box<Event<EndpointSlice>>),
}

/// Whether each kind's initial list (kube-rs delivers Init, InitApply..., InitDone) is
/// complete. The objects of a list go into the state as they arrive (after Init forgot the
/// kind's old ones), so the watch's objects are never all held at once; nothing is synced
/// while a list is in progress.
#[derive(Default)]
struct Listing {
    services_done: bool,
    slices_done: bool,
}

impl Listing {
    fn done(&self) -> bool {
        self.services_done && self.slices_done
    }

    fn handle(&mut self, state: &mut ProxyState, ev: Ev) {
        match ev {
            Ev::Svc(e) => match *e {
                Event::Init => {
                    state.begin_services_relist();
                    self.services_done = false;
                }
                Event::InitApply(s) | Event::Apply(s) => state.apply_service(&s),
                Event::InitDone => self.services_done = true,
                Event::Delete(s) => state.delete_service(&s),
            },
            Ev::Slice(e) => match *e {
                Event::Init => {
                    state.begin_slices_relist();
                    self.slices_done = false;
                }
                Event::InitApply(s) | Event::Apply(s) => state.apply_slice(&s),
                Event::InitDone => self.slices_done = true,
                Event::Delete(s) => state.delete_slice(&s),
            },
        }
    }
}

pub async fn run(client: kube::Client, cfg: NodeConfig, metrics: Arc<ProxyMetrics>) -> anyhow::Result<()> {
    let ns = match &cfg.netns {
        Some(p) => Netns::open(p)?,
        None => Netns::current()?,
    };
    let wc = watcher::Config::default().labels(NOT_OURS);
    let svcs = watcher::watcher(Api::<Service>::all(client.clone()), wc.clone()).default_backoff().map_ok(|e| Ev::Svc(Box::new(e)));
    let slices = watcher::watcher(Api::<EndpointSlice>::all(client), wc).default_backoff().map_ok(|e| Ev::Slice(Box::new(e)));
    let events = futures::stream::select(svcs, slices);
    futures::pin_mut!(events);
    let mut state = ProxyState::new(NodeContext { node_name: cfg.name.clone(), pod_cidrs: cfg.cluster_cidrs.clone(), masquerade_all: false });
    let mut listing = Listing::default();
    let node = cfg.name.clone();
    let mut applier = Some(Applier::open(&ns)?);
    let mut health = HealthServers::new(ns, cfg.name.clone());
    let mut needs_resync = true;
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                None => return Ok(()),
                Some(Ok(ev)) => {
                    listing.handle(&mut state, ev);
                    // Coalesce what follows closely.
                    while let Ok(Some(more)) = tokio::time::timeout(COALESCE, events.next()).await {
                        match more {
                            Ok(ev) => listing.handle(&mut state, ev),
                            Err(e) => tracing::warn!(%node, %e, "watching services"),
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(%node, %e, "watching services");
                    continue;
                }
            },
            _ = retry.tick() => {
                if health.pending() {
                    health.update(&state).await;
                }
                if !needs_resync {
                    continue;
                }
            }
        }
        if !listing.done() || (!state.is_dirty() && !needs_resync) {
            continue;
        }
        let started = Instant::now();
        let changes = state.flush();
        let mut ap = applier.take().expect("the applier is back after each sync");
        let kind = if needs_resync { SyncKind::Full } else { SyncKind::Partial };
        let (ap, result) = if needs_resync {
            drop(changes);
            // The compiled ports are shared (Arc): the snapshot copies no rules.
            let snapshot: Vec<_> = state.compiled().map(|(k, c)| (k.clone(), c.clone())).collect();
            let node_context = state.node().clone();
            tokio::task::spawn_blocking(move || {
                let r = ap.resync_ports(&node_context, snapshot.iter().map(|(k, c)| (k, &**c)));
                drop(snapshot);
                // Rendering everything allocated far more than the proxy keeps.
                weft_proxy::trim_heap();
                (ap, r)
            })
            .await?
        } else {
            tokio::task::spawn_blocking(move || {
                let r = ap.apply(&changes);
                (ap, r)
            })
            .await?
        };
        applier = Some(ap);
        match result {
            Ok(r) => {
                needs_resync = false;
                metrics.synced(kind, started.elapsed(), &r, state.port_count());
                tracing::debug!(%node, weight = r.weight, took_us = started.elapsed().as_micros() as u64, "service proxy synced");
            }
            Err(e) => {
                metrics.failed(kind);
                // The kernel may hold part of a large sync: re-read it and diff again.
                tracing::warn!(%node, %e, "service proxy sync failed; resyncing from the kernel");
                needs_resync = true;
            }
        }
        health.update(&state).await;
    }
}
