//! The controllers kube-controller-manager (and kube-scheduler) would run, for
//! weft's local mode. They talk to the API server only through kube-rs, exactly
//! as against a real cluster: shared informers (watch + reflector store per kind)
//! feed one work queue per controller, each sync is a pure decision over the
//! cached state plus a thin applier that writes only what differs.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;
use kube::Client;

mod expectations;
mod informer;
mod pod_state;
mod queue;
mod recorder;
mod selector;
mod service_ports;

pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod gc;
pub mod loadbalancer;
pub mod namespace;
pub mod nodeipam;
pub mod replicaset;
pub mod scheduler;
pub mod serviceaccount;

use expectations::Expectations;
use informer::{Informer, Key};

pub struct ControllersConfig {
    /// The cluster's pod ranges, at most one per family, e.g. 10.244.0.0/16.
    pub pod_cidrs: Vec<ipnet::IpNet>,
    /// The prefix length of each node's IPv4 pod range, e.g. 24.
    pub node_cidr_mask_v4: u8,
    /// The prefix length of each node's IPv6 pod range, e.g. 64.
    pub node_cidr_mask_v6: u8,
    /// Where LoadBalancer Services get their addresses from (none: they stay pending).
    pub load_balancer_pools: Vec<ipnet::IpNet>,
}

/// What every controller shares: the client, the informers, and the writes
/// each controller made that its informers have not shown yet.
pub(crate) struct Ctx {
    pub client: Client,
    pub pods: Informer<Pod>,
    pub services: Informer<Service>,
    pub nodes: Informer<Node>,
    pub namespaces: Informer<Namespace>,
    pub replica_sets: Informer<ReplicaSet>,
    pub deployments: Informer<Deployment>,
    pub endpoint_slices: Informer<EndpointSlice>,
    pub endpoints: Informer<Endpoints>,
    pub service_accounts: Informer<ServiceAccount>,
    pub slice_writes: Expectations<Key>,
    pub endpoints_writes: Expectations<Key>,
}

/// Runs every controller until the returned future is dropped (or one fails).
pub async fn run(client: Client, config: ControllersConfig) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    macro_rules! informer {
        ($kind:ty, $cfg:expr) => {{
            let (informer, feed) = Informer::new(Api::<$kind>::all(client.clone()), $cfg);
            tasks.spawn(async move {
                feed.await;
                Ok::<(), anyhow::Error>(())
            });
            informer
        }};
    }
    let any = watcher::Config::default;
    let managed_slices = any().labels(&format!("{}={}", endpointslice::MANAGED_BY_LABEL, endpointslice::MANAGED_BY));
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pods: informer!(Pod, any()),
        services: informer!(Service, any()),
        nodes: informer!(Node, any()),
        namespaces: informer!(Namespace, any()),
        replica_sets: informer!(ReplicaSet, any()),
        deployments: informer!(Deployment, any()),
        endpoint_slices: informer!(EndpointSlice, managed_slices),
        endpoints: informer!(Endpoints, any()),
        service_accounts: informer!(ServiceAccount, any().fields("metadata.name=default")),
        slice_writes: Expectations::default(),
        endpoints_writes: Expectations::default(),
    });
    tasks.spawn(endpointslice::run(ctx.clone()));
    tasks.spawn(endpoints::run(ctx.clone()));
    tasks.spawn(replicaset::run(ctx.clone()));
    tasks.spawn(deployment::run(ctx.clone()));
    tasks.spawn(scheduler::run(ctx.clone()));
    tasks.spawn(namespace::run(ctx.clone()));
    tasks.spawn(gc::run(ctx.clone()));
    tasks.spawn(loadbalancer::run(ctx.clone(), config.load_balancer_pools.clone()));
    tasks.spawn(nodeipam::run(ctx.clone(), config));
    tasks.spawn(serviceaccount::run(ctx.clone()));
    // Nothing ends by itself; the first task to end (an error) ends the rest.
    // Dropping `tasks` (with this future) aborts every controller and informer.
    match tasks.join_next().await {
        Some(Ok(Ok(()))) | None => anyhow::bail!("a controller stopped"),
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(e.into()),
    }
}

/// Whether a kube-rs error is the API's answer with this HTTP status.
pub(crate) fn api_error_is(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}
