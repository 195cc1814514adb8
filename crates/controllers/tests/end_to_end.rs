//! The controllers against weft's real API server, in process, through kube-rs:
//! a hermetic cluster per test (temp state dir, port 0), stopped at the end.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Event, Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

struct Cluster {
    client: Client,
    server: weft_apiserver::ApiServer,
    controllers: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = weft_apiserver::Config::new(dir.path().to_path_buf());
        cfg.port = 0;
        let server = weft_apiserver::start(cfg).await.expect("api server");
        let kc = kube::config::Kubeconfig::read_from(&server.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
        let client = Client::try_from(config).unwrap();
        let ctl = weft_controllers::ControllersConfig {
            pod_cidrs: vec!["10.244.0.0/16".parse().unwrap(), "fd00:10:244::/56".parse().unwrap()],
            node_cidr_mask_v4: 24,
            node_cidr_mask_v6: 64,
            load_balancer_pools: vec!["10.99.1.0/24".parse().unwrap()],
        };
        let controllers = tokio::spawn(weft_controllers::run(client.clone(), ctl));
        Cluster { client, server, controllers, _dir: dir }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.controllers.abort();
        self.server.stop();
    }
}

/// Polls `check` until it yields a value, or fails the test after `secs`.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create<K>(api: &Api<K>, value: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(value).unwrap();
    api.create(&PostParams::default(), &obj).await.expect("create")
}

fn web_deployment(replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_pod_cidrs_and_pods_of_a_deployment_are_scheduled_onto_them() {
    let c = Cluster::start().await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    for n in ["n1", "n2"] {
        create(&nodes, json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}})).await;
    }
    let cidrs = eventually("both nodes get pod CIDRs", 20, || async {
        let list = nodes.list(&ListParams::default()).await.ok()?;
        let cidrs: Vec<Vec<String>> = list.items.iter().filter_map(|n| n.spec.as_ref()?.pod_cidrs.clone()).collect();
        (cidrs.len() == 2).then_some(cidrs)
    })
    .await;
    assert_ne!(cidrs[0], cidrs[1], "never the same range twice");
    assert!(cidrs.iter().all(|c| c.len() == 2 && c[0].ends_with("/24") && c[1].ends_with("/64")), "{cidrs:?}");

    let ns = "default";
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), ns);
    create(&deployments, web_deployment(4)).await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    let placed = eventually("four pods, all bound to a node", 30, || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
        let nodes: Vec<String> = list.items.iter().filter_map(|p| p.spec.as_ref()?.node_name.clone()).collect();
        (nodes.len() == 4 && list.items.len() == 4).then_some(nodes)
    })
    .await;
    // Spread by pod count: two on each node.
    assert_eq!(placed.iter().filter(|n| *n == "n1").count(), 2, "{placed:?}");

    let status = eventually("deployment status observed", 20, || async {
        let d = deployments.get("web").await.ok()?;
        let s = d.status?;
        (s.updated_replicas == Some(4) && s.replicas == Some(4)).then_some(s)
    })
    .await;
    // No kubelet runs these pods: they stay Pending, so the Deployment is not available.
    let available = status.conditions.unwrap().into_iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!((available.status.as_str(), available.reason.as_deref()), ("False", Some("MinimumReplicasUnavailable")));
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.annotations().get("deployment.kubernetes.io/revision").map(String::as_str), Some("1"));

    // Events that `kubectl describe` shows.
    let events: Api<Event> = Api::namespaced(c.client.clone(), ns);
    eventually("ScalingReplicaSet, SuccessfulCreate and Scheduled events", 20, || async {
        let reasons: Vec<String> = events.list(&ListParams::default()).await.ok()?.items.into_iter().filter_map(|e| e.reason).collect();
        ["ScalingReplicaSet", "SuccessfulCreate", "Scheduled"].iter().all(|r| reasons.iter().any(|x| x == r)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_rolling_out_and_deleting_a_deployment() {
    let c = Cluster::start().await;
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    create(&deployments, web_deployment(2)).await;
    let count_pods = || async { pods.list(&ListParams::default().labels("app=web")).await.map(|l| l.items.len()).unwrap_or(0) };
    eventually("two pods", 20, || async { (count_pods().await == 2).then_some(()) }).await;

    // kubectl scale goes through the scale subresource.
    deployments.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}}))).await.unwrap();
    eventually("three pods after scaling", 20, || async { (count_pods().await == 3).then_some(()) }).await;

    // A new template makes a second ReplicaSet, revision 2.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}});
    deployments.patch("web", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    let revs = eventually("a second replica set", 20, || async {
        let list = sets.list(&ListParams::default()).await.ok()?;
        let mut revs: Vec<String> = list.items.iter().filter_map(|r| r.annotations().get("deployment.kubernetes.io/revision").cloned()).collect();
        revs.sort();
        (revs.len() == 2).then_some(revs)
    })
    .await;
    assert_eq!(revs, vec!["1", "2"]);

    // Background deletion: the garbage collector removes the sets and their pods.
    deployments.delete("web", &DeleteParams::background()).await.unwrap();
    eventually("replica sets collected", 30, || async { sets.list(&ListParams::default()).await.ok()?.items.is_empty().then_some(()) }).await;
    eventually("pods collected", 30, || async { (count_pods().await == 0).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_endpoints_and_slices_that_follow_pod_readiness() {
    let c = Cluster::start().await;
    let services: Api<Service> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(c.client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(c.client.clone(), "default");
    create(
        &services,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
    )
    .await;
    let pod = create(
        &pods,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "labels": {"app": "web"}},
               "spec": {"schedulerName": "nobody", "containers": [{"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}}),
    )
    .await;
    // Without an IP the pod is no endpoint: one empty placeholder slice.
    let by_service = ListParams::default().labels("kubernetes.io/service-name=web");
    eventually("placeholder slice", 20, || async {
        let l = slices.list(&by_service).await.ok()?;
        (l.items.len() == 1 && l.items[0].endpoints.is_empty()).then_some(())
    })
    .await;

    // The "kubelet" reports an IP, not yet ready.
    let mut p = pod.clone();
    let status = json!({"phase": "Running", "podIP": "10.244.0.7", "podIPs": [{"ip": "10.244.0.7"}],
                        "conditions": [{"type": "Ready", "status": "False"}]});
    p.status = Some(serde_json::from_value(status).unwrap());
    pods.replace_status("web-1", &PostParams::default(), &p).await.unwrap();
    eventually("a not-ready endpoint on the named port", 20, || async {
        let l = slices.list(&by_service).await.ok()?;
        let s = l.items.iter().find(|s| !s.endpoints.is_empty())?;
        let e = &s.endpoints[0];
        let ok = l.items.len() == 1
            && e.addresses == vec!["10.244.0.7".to_string()]
            && e.conditions.as_ref()?.ready == Some(false)
            && s.ports.as_ref()?.first()?.port == Some(8080)
            && s.owner_references().first()?.name == "web";
        ok.then_some(())
    })
    .await;
    eventually("Endpoints lists it as not ready", 20, || async {
        let e = endpoints.get("web").await.ok()?;
        let sub = e.subsets?.into_iter().next()?;
        (sub.not_ready_addresses?.first()?.ip == "10.244.0.7").then_some(())
    })
    .await;

    let mut p = pods.get("web-1").await.unwrap();
    p.status.as_mut().unwrap().conditions = Some(vec![serde_json::from_value(json!({"type": "Ready", "status": "True"})).unwrap()]);
    pods.replace_status("web-1", &PostParams::default(), &p).await.unwrap();
    eventually("the endpoint turns ready in both", 20, || async {
        let l = slices.list(&by_service).await.ok()?;
        let slice_ready = l.items.first()?.endpoints.first()?.conditions.as_ref()?.ready == Some(true);
        let e = endpoints.get("web").await.ok()?;
        let ep_ready = e.subsets?.first()?.addresses.as_ref()?.first()?.ip == "10.244.0.7";
        (slice_ready && ep_ready).then_some(())
    })
    .await;

    // The service goes: so do its Endpoints and slices.
    services.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("endpoints and slices removed", 20, || async {
        let none_slices = slices.list(&by_service).await.ok()?.items.is_empty();
        let no_endpoints = endpoints.get_opt("web").await.ok()?.is_none();
        (none_slices && no_endpoints).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_namespace_gets_a_default_service_account_and_a_deleted_one_is_emptied_and_removed() {
    let c = Cluster::start().await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    create(&namespaces, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scratch"}})).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "scratch");
    eventually("default service account", 20, || async { accounts.get_opt("default").await.ok()?.map(|_| ()) }).await;

    let services: Api<Service> = Api::namespaced(c.client.clone(), "scratch");
    create(&services, json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}]}})).await;

    namespaces.delete("scratch", &DeleteParams::default()).await.unwrap();
    eventually("namespace removed once empty", 30, || async { namespaces.get_opt("scratch").await.ok()?.is_none().then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_services_get_addresses_from_the_pool_and_give_them_back() {
    let c = Cluster::start().await;
    let svcs: Api<Service> = Api::namespaced(c.client.clone(), "default");
    let lb_ip = |s: &Service| s.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?.first()?.ip.clone();
    create(&svcs, json!({"metadata": {"name": "lb1"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})).await;
    create(&svcs, json!({"metadata": {"name": "lb2"}, "spec": {"type": "LoadBalancer", "loadBalancerIP": "10.99.1.77", "ports": [{"port": 80}]}})).await;
    create(&svcs, json!({"metadata": {"name": "other"}, "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/other", "ports": [{"port": 80}]}})).await;
    let first = eventually("lb1 gets an address", 20, || async { svcs.get("lb1").await.ok().as_ref().and_then(lb_ip) }).await;
    assert_eq!(first, "10.99.1.1");
    let second = eventually("lb2 gets the address it asked for", 20, || async { svcs.get("lb2").await.ok().as_ref().and_then(lb_ip) }).await;
    assert_eq!(second, "10.99.1.77");
    // Another class's service is left to its own controller.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(lb_ip(&svcs.get("other").await.unwrap()), None);
    // A third service asking for a taken address gets none, and an event says why.
    create(&svcs, json!({"metadata": {"name": "lb3"}, "spec": {"type": "LoadBalancer", "loadBalancerIP": "10.99.1.77", "ports": [{"port": 80}]}})).await;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(c.client.clone(), "default");
    let msg = eventually("an AllocationFailed event for lb3", 20, || async {
        events.list(&Default::default()).await.ok()?.items.into_iter().find(|e| e.reason.as_deref() == Some("AllocationFailed") && e.involved_object.name.as_deref() == Some("lb3"))?.message
    })
    .await;
    assert!(msg.contains("already used"), "{msg}");
    // Turning lb1 into a ClusterIP service returns its address to the pool.
    svcs.patch("lb1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"type": "ClusterIP"}}))).await.unwrap();
    eventually("lb1 loses its address", 20, || async { svcs.get("lb1").await.ok().filter(|s| lb_ip(s).is_none()) }).await;
    create(&svcs, json!({"metadata": {"name": "lb4"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})).await;
    let fourth = eventually("lb4 gets the freed address", 20, || async { svcs.get("lb4").await.ok().as_ref().and_then(lb_ip) }).await;
    assert_eq!(fourth, "10.99.1.1");
}
