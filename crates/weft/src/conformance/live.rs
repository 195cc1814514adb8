//! The model on the live cluster: its namespaces, pods and Services made through the
//! API, a case's actions applied to them, and the clean state restored between cases
//! (from what the API lists, so a case that failed half way leaves nothing behind).

use super::fixture;
use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use weft_policy::corpus::replay::{render_policy, Addresses, World, NAMESPACE_NAME_LABEL};
use weft_policy::corpus::{pod_key, Action, ContainerPort, Model};
use weft_policy::model::Labels;
use weft_policy::{PodKey, Protocol};

/// Namespaces the cluster has of its own, never touched by a reset.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];
const READY_WITHIN: Duration = Duration::from_secs(120);
const GONE_WITHIN: Duration = Duration::from_secs(120);

pub struct Live {
    client: kube::Client,
    pub model: Model,
    /// What every pod serves, (port, protocol).
    pub serve: Vec<(u16, Protocol)>,
    /// What exists now (labels, declared ports), as the actions left it.
    pub world: World,
    pub ips: Addresses,
    pub service_ips: BTreeMap<PodKey, IpAddr>,
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// A merge patch that makes `labels` exactly `want` (`null` removes a key).
fn labels_patch(have: &Labels, want: &Labels) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for k in have.keys().filter(|k| !want.contains_key(*k)) {
        m.insert(k.clone(), serde_json::Value::Null);
    }
    for (k, v) in want {
        m.insert(k.clone(), json!(v));
    }
    json!({"metadata": {"labels": m}})
}

impl Live {
    pub fn new(client: kube::Client, model: &Model) -> Result<Live> {
        let mut serve = fixture::served(&model.probe_ports, &model.probe_protocols);
        for p in model.pods.values().flat_map(|p| &p.container_ports) {
            if !serve.contains(&(p.container_port, p.protocol)) {
                serve.push((p.container_port, p.protocol));
            }
        }
        if serve.is_empty() {
            bail!("model: no probe_ports/probe_protocols and no containerPorts: the pods would serve nothing");
        }
        Ok(Live { client, model: model.clone(), serve, world: World::initial(model).map_err(|e| anyhow!(e))?, ips: BTreeMap::new(), service_ips: BTreeMap::new() })
    }

    /// The container probes run in: the pod's first.
    pub fn first_container(&self) -> String {
        fixture::container_name(self.serve[0].0, self.serve[0].1)
    }

    fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn create_namespace(&self, name: &str, labels: &Labels) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        api.create(&PostParams::default(), &fixture::namespace(name, labels)).await.with_context(|| format!("creating namespace {name}"))?;
        Ok(())
    }

    /// Creates the pod and its Service (the ClusterIP is known from the answer).
    async fn create_pod(&mut self, key: &PodKey, labels: &Labels, declared: &[ContainerPort]) -> Result<()> {
        self.pods(&key.namespace).create(&PostParams::default(), &fixture::pod(key, labels, declared, &self.serve)).await.with_context(|| format!("creating pod {key}"))?;
        let services: Api<Service> = Api::namespaced(self.client.clone(), &key.namespace);
        let name = fixture::service_name(key);
        if services.get_opt(&name).await?.is_some() {
            services.delete(&name, &DeleteParams::default()).await.with_context(|| format!("replacing service {}/{name}", key.namespace))?;
        }
        let svc = services.create(&PostParams::default(), &fixture::service(key, labels, &self.serve)).await.with_context(|| format!("creating service {}/{name}", key.namespace))?;
        let ip = svc.spec.and_then(|s| s.cluster_ip).ok_or_else(|| anyhow!("service {}/{name} has no spec.clusterIP", key.namespace))?;
        self.service_ips.insert(key.clone(), ip.parse().with_context(|| format!("service {}/{name}: spec.clusterIP {ip:?}", key.namespace))?);
        Ok(())
    }

    async fn delete_pod(&mut self, key: &PodKey) -> Result<()> {
        let dp = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
        match self.pods(&key.namespace).delete(&key.name, &dp).await {
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting pod {key}")),
        }
        let services: Api<Service> = Api::namespaced(self.client.clone(), &key.namespace);
        match services.delete(&fixture::service_name(key), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting service of {key}")),
        }
        self.ips.remove(key);
        self.service_ips.remove(key);
        Ok(())
    }

    async fn wait_gone<K>(&self, api: &Api<K>, name: &str, what: &str) -> Result<()>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let deadline = Instant::now() + GONE_WITHIN;
        while api.get_opt(name).await?.is_some() {
            if Instant::now() > deadline {
                bail!("{what} still exists {GONE_WITHIN:?} after its deletion");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn delete_namespace(&mut self, name: &str) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting namespace {name}")),
        }
        self.wait_gone(&api, name, &format!("namespace {name}")).await?;
        self.ips.retain(|k, _| k.namespace != name);
        self.service_ips.retain(|k, _| k.namespace != name);
        Ok(())
    }

    /// Waits until every pod runs, is Ready and has an address; records the addresses.
    pub async fn wait_ready(&mut self, keys: &[PodKey]) -> Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        let mut waiting: BTreeSet<PodKey> = keys.iter().cloned().collect();
        while !waiting.is_empty() {
            for key in waiting.clone() {
                let Some(pod) = self.pods(&key.namespace).get_opt(&key.name).await? else { bail!("pod {key} disappeared while waiting for it to be ready") };
                let status = pod.status.unwrap_or_default();
                let ready = status.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True");
                let ip = status.pod_ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
                if let (true, Some("Running"), Some(ip)) = (ready, status.phase.as_deref(), ip) {
                    self.ips.insert(key.clone(), ip);
                    waiting.remove(&key);
                }
            }
            if waiting.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                bail!("pods not Running and Ready within {READY_WITHIN:?}: {}", waiting.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// The model's clean state: no policies, only the model's namespaces and pods, with
    /// their labels. Returns whether a pod had to be (re)created.
    pub async fn reset(&mut self) -> Result<bool> {
        let policies: Api<NetworkPolicy> = Api::all(self.client.clone());
        for np in policies.list(&ListParams::default()).await.context("listing policies")? {
            let (ns, name) = (np.metadata.namespace.clone().unwrap_or_default(), np.metadata.name.clone().unwrap_or_default());
            match Api::<NetworkPolicy>::namespaced(self.client.clone(), &ns).delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(e).with_context(|| format!("deleting policy {ns}/{name}")),
            }
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let live_ns = namespaces.list(&ListParams::default()).await.context("listing namespaces")?;
        for ns in &live_ns {
            let name = ns.metadata.name.clone().unwrap_or_default();
            if !self.model.namespaces.contains_key(&name) && !SYSTEM_NAMESPACES.contains(&name.as_str()) {
                self.delete_namespace(&name).await?;
            }
        }
        let mut recreate = Vec::new();
        for (name, spec) in &self.model.namespaces {
            let want = self.world_labels_of_model_namespace(name, &spec.labels);
            match namespaces.get_opt(name).await? {
                Some(ns) if ns.metadata.deletion_timestamp.is_some() => {
                    self.wait_gone(&namespaces, name, &format!("namespace {name}")).await?;
                    self.create_namespace(name, &spec.labels).await?;
                }
                Some(ns) => {
                    let have = ns.metadata.labels.unwrap_or_default();
                    if have != want {
                        namespaces.patch(name, &PatchParams::default(), &Patch::Merge(labels_patch(&have, &want))).await.with_context(|| format!("restoring the labels of namespace {name}"))?;
                    }
                }
                None => self.create_namespace(name, &spec.labels).await?,
            }
        }
        for ns in self.model.namespaces.keys().cloned().collect::<Vec<_>>() {
            let ns = &ns;
            for pod in self.pods(ns).list(&ListParams::default()).await.with_context(|| format!("listing pods in {ns}"))? {
                let key = PodKey { namespace: ns.clone(), name: pod.metadata.name.clone().unwrap_or_default() };
                if !self.model.pods.contains_key(&key.to_string()) {
                    self.delete_pod(&key).await?;
                    self.wait_gone(&self.pods(ns), &key.name, &format!("pod {key}")).await?;
                }
            }
        }
        for (k, spec) in &self.model.pods.clone() {
            let key = pod_key(k).map_err(|e| anyhow!(e))?;
            let api = self.pods(&key.namespace);
            match api.get_opt(&key.name).await? {
                Some(p) if p.metadata.deletion_timestamp.is_none() && self.service_ips.contains_key(&key) => {
                    let have = p.metadata.labels.unwrap_or_default();
                    if have != spec.labels {
                        api.patch(&key.name, &PatchParams::default(), &Patch::Merge(labels_patch(&have, &spec.labels))).await.with_context(|| format!("restoring the labels of pod {key}"))?;
                    }
                }
                Some(_) => {
                    self.delete_pod(&key).await?;
                    self.wait_gone(&api, &key.name, &format!("pod {key}")).await?;
                    self.create_pod(&key, &spec.labels, &spec.container_ports).await?;
                    recreate.push(key);
                }
                None => {
                    self.create_pod(&key, &spec.labels, &spec.container_ports).await?;
                    recreate.push(key);
                }
            }
        }
        if !recreate.is_empty() {
            tracing::info!(pods = recreate.len(), "waiting for recreated pods");
            self.wait_ready(&recreate).await?;
        }
        self.world = World::initial(&self.model).map_err(|e| anyhow!(e))?;
        Ok(!recreate.is_empty())
    }

    fn world_labels_of_model_namespace(&self, name: &str, labels: &Labels) -> Labels {
        let mut l = labels.clone();
        l.insert(NAMESPACE_NAME_LABEL.into(), name.into());
        l
    }

    /// Applies one action through the API; once it returns, what it made is ready
    /// (pods Running and Ready) and what it deleted is gone.
    pub async fn apply(&mut self, action: &Action) -> Result<()> {
        let mut next = self.world.clone();
        next.apply(action).map_err(|e| anyhow!(e))?;
        let pp = PostParams::default();
        match action {
            Action::CreatePolicy(v) | Action::UpdatePolicy(v) => {
                let np = render_policy(v, &self.ips).map_err(|e| anyhow!(e))?;
                let ns = np.metadata.namespace.clone().unwrap_or_default();
                let name = np.metadata.name.clone().unwrap_or_default();
                let api: Api<NetworkPolicy> = Api::namespaced(self.client.clone(), &ns);
                match api.get_opt(&name).await? {
                    Some(old) => {
                        let mut np = np;
                        np.metadata.resource_version = old.metadata.resource_version;
                        api.replace(&name, &pp, &np).await.with_context(|| format!("replacing policy {ns}/{name}"))?;
                    }
                    None => {
                        api.create(&pp, &np).await.with_context(|| format!("creating policy {ns}/{name}"))?;
                    }
                }
            }
            Action::DeletePolicy { namespace, name } => {
                Api::<NetworkPolicy>::namespaced(self.client.clone(), namespace).delete(name, &DeleteParams::default()).await.with_context(|| format!("deleting policy {namespace}/{name}"))?;
            }
            Action::DeleteAllPolicies {} => {
                for (ns, name) in self.world.policies.keys() {
                    Api::<NetworkPolicy>::namespaced(self.client.clone(), ns).delete(name, &DeleteParams::default()).await.with_context(|| format!("deleting policy {ns}/{name}"))?;
                }
            }
            Action::AddNamespaceLabels { namespace, .. } | Action::SetNamespaceLabels { namespace, .. } => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                let patch = labels_patch(&self.world.namespaces[namespace], &next.namespaces[namespace]);
                api.patch(namespace, &PatchParams::default(), &Patch::Merge(patch)).await.with_context(|| format!("labelling namespace {namespace}"))?;
            }
            Action::AddPodLabels { pod, .. } | Action::SetPodLabels { pod, .. } => {
                let key = pod_key(pod).map_err(|e| anyhow!(e))?;
                let patch = labels_patch(&self.world.pods[&key].labels, &next.pods[&key].labels);
                self.pods(&key.namespace).patch(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await.with_context(|| format!("labelling pod {key}"))?;
            }
            Action::CreateNamespace { namespace, labels } => self.create_namespace(namespace, labels).await?,
            Action::DeleteNamespace { namespace } => self.delete_namespace(namespace).await?,
            Action::CreatePod { pod, labels, container_ports } => {
                let key = pod_key(pod).map_err(|e| anyhow!(e))?;
                self.create_pod(&key, labels, container_ports).await?;
                self.wait_ready(std::slice::from_ref(&key)).await?;
            }
            Action::DeletePod { pod } => {
                let key = pod_key(pod).map_err(|e| anyhow!(e))?;
                self.delete_pod(&key).await?;
                self.wait_gone(&self.pods(&key.namespace), &key.name, &format!("pod {key}")).await?;
            }
        }
        self.world = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labels_patch_removes_what_is_not_wanted() {
        let have: Labels = [("pod".to_string(), "a".to_string()), ("t".to_string(), "i".to_string())].into();
        let want: Labels = [("pod".to_string(), "a".to_string())].into();
        assert_eq!(labels_patch(&have, &want), json!({"metadata": {"labels": {"t": null, "pod": "a"}}}));
    }
}
