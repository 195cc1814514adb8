//! Keeps the zone and the configuration in step with the API: one kube-rs watcher per
//! kind, each event applied to the zone as it arrives (no whole-state rebuilds), a
//! re-list dropping what vanished meanwhile.

use crate::config::{CONFIGMAP_NAME, CONFIGMAP_NAMESPACE};
use crate::objects;
use crate::resolve::Dns;
use crate::zone::Zone;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use std::collections::HashSet;
use std::sync::Arc;

/// How one kind of object lands in the zone.
trait Follow: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static {
    const KIND: &'static str;
    /// The object's key in the zone.
    fn key(&self) -> String;
    fn apply(&self, z: &mut Zone);
    fn keys(z: &Zone) -> Vec<String>;
    fn remove(z: &mut Zone, key: &str);
    fn synced(z: &mut Zone);
}

fn ns_of<K: ResourceExt>(o: &K) -> String {
    o.namespace().unwrap_or_default()
}

impl Follow for Service {
    const KIND: &'static str = "services";
    fn key(&self) -> String {
        format!("{}/{}", ns_of(self), self.name_any())
    }
    fn apply(&self, z: &mut Zone) {
        match objects::service(self) {
            Some(s) => z.upsert_service(&ns_of(self), &self.name_any(), s),
            None => z.remove_service(&ns_of(self), &self.name_any()),
        }
    }
    fn keys(z: &Zone) -> Vec<String> {
        z.service_keys().into_iter().map(|(a, b)| format!("{a}/{b}")).collect()
    }
    fn remove(z: &mut Zone, key: &str) {
        if let Some((ns, n)) = key.split_once('/') {
            z.remove_service(ns, n);
        }
    }
    fn synced(z: &mut Zone) {
        z.synced.services = true;
    }
}

impl Follow for EndpointSlice {
    const KIND: &'static str = "endpointslices";
    fn key(&self) -> String {
        let svc = self.labels().get(objects::SERVICE_NAME_LABEL).cloned().unwrap_or_default();
        format!("{}/{svc}/{}", ns_of(self), self.name_any())
    }
    fn apply(&self, z: &mut Zone) {
        if let Some((svc, s)) = objects::slice(self) {
            z.upsert_slice(&ns_of(self), &svc, &self.name_any(), s);
        }
    }
    fn keys(z: &Zone) -> Vec<String> {
        z.slice_keys().into_iter().map(|(a, b, c)| format!("{a}/{b}/{c}")).collect()
    }
    fn remove(z: &mut Zone, key: &str) {
        let mut p = key.splitn(3, '/');
        if let (Some(ns), Some(svc), Some(n)) = (p.next(), p.next(), p.next()) {
            z.remove_slice(ns, svc, n);
        }
    }
    fn synced(z: &mut Zone) {
        z.synced.slices = true;
    }
}

impl Follow for Namespace {
    const KIND: &'static str = "namespaces";
    fn key(&self) -> String {
        self.name_any()
    }
    fn apply(&self, z: &mut Zone) {
        z.set_namespace(&self.name_any(), true);
    }
    fn keys(z: &Zone) -> Vec<String> {
        z.namespace_keys()
    }
    fn remove(z: &mut Zone, key: &str) {
        z.set_namespace(key, false);
    }
    fn synced(z: &mut Zone) {
        z.synced.namespaces = true;
    }
}

impl Follow for Pod {
    const KIND: &'static str = "pods";
    fn key(&self) -> String {
        format!("{}/{}", ns_of(self), self.name_any())
    }
    fn apply(&self, z: &mut Zone) {
        z.upsert_pod(&ns_of(self), &self.name_any(), objects::pod_ips(self));
    }
    fn keys(z: &Zone) -> Vec<String> {
        z.pod_keys().into_iter().map(|(a, b)| format!("{a}/{b}")).collect()
    }
    fn remove(z: &mut Zone, key: &str) {
        if let Some((ns, n)) = key.split_once('/') {
            z.remove_pod(ns, n);
        }
    }
    fn synced(z: &mut Zone) {
        z.synced.pods = true;
    }
}

async fn follow<K: Follow>(api: Api<K>, dns: Arc<Dns>) {
    let mut stream = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut seen: Option<HashSet<String>> = None;
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => seen = Some(HashSet::new()),
            Ok(Event::InitApply(o)) => {
                seen.get_or_insert_with(HashSet::new).insert(o.key());
                dns.update_zone(|z| o.apply(z));
            }
            Ok(Event::InitDone) => {
                let seen = seen.take().unwrap_or_default();
                let first = dns.update_zone(|z| {
                    for k in K::keys(z) {
                        if !seen.contains(&k) {
                            K::remove(z, &k);
                        }
                    }
                    let was = z.ready();
                    K::synced(z);
                    !was && z.ready()
                });
                tracing::debug!(kind = K::KIND, objects = seen.len(), "listed");
                if first {
                    let (s, e, r) = dns.zone().counts();
                    tracing::info!(services = s, endpoints = e, reverse = r, "DNS zone synced: serving cluster names");
                }
            }
            Ok(Event::Apply(o)) => dns.update_zone(|z| o.apply(z)),
            Ok(Event::Delete(o)) => dns.update_zone(|z| K::remove(z, &o.key())),
            Err(e) => tracing::warn!(kind = K::KIND, error = %e, "DNS watch failed; retrying"),
        }
    }
}

/// Follows `kube-system/weft-dns`; a bad ConfigMap is logged and changes nothing.
async fn follow_config(client: kube::Client, dns: Arc<Dns>) {
    let api: Api<ConfigMap> = Api::namespaced(client, CONFIGMAP_NAMESPACE);
    let wc = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));
    let mut stream = watcher::watcher(api, wc).default_backoff().boxed();
    let mut found = false;
    let apply = |cm: Option<&ConfigMap>| {
        let data = cm.map(|c| c.data.clone().unwrap_or_default());
        match dns.apply_configmap(data.as_ref()) {
            Ok(()) => tracing::info!(configmap = %format!("{CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}"), present = cm.is_some(), "DNS configuration loaded"),
            Err(e) => tracing::error!(error = %e, "DNS configuration rejected; the previous one stays in force"),
        }
    };
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => found = false,
            Ok(Event::InitApply(cm)) | Ok(Event::Apply(cm)) => {
                found = true;
                apply(Some(&cm));
            }
            Ok(Event::InitDone) if !found => apply(None),
            Ok(Event::InitDone) => {}
            Ok(Event::Delete(_)) => apply(None),
            Err(e) => tracing::warn!(error = %e, "DNS ConfigMap watch failed; retrying"),
        }
    }
}

/// Runs every watcher until the task is dropped.
pub async fn run(client: kube::Client, dns: Arc<Dns>) -> anyhow::Result<()> {
    tokio::join!(
        follow::<Service>(Api::all(client.clone()), dns.clone()),
        follow::<EndpointSlice>(Api::all(client.clone()), dns.clone()),
        follow::<Namespace>(Api::all(client.clone()), dns.clone()),
        follow::<Pod>(Api::all(client.clone()), dns.clone()),
        follow_config(client, dns),
    );
    anyhow::bail!("the DNS watchers stopped")
}
