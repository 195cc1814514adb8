//! Per-namespace indexes: pods and policies by label, so that selecting the pods of a
//! selector, or the policies that select a pod, costs the size of the answer rather
//! than the size of the cluster.

use super::policy::Policy;
use super::selector::Selector;
use super::{Labels, PodInfo};
use super::fxhash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// key -> value -> name -> object.
type LabelIndex<V> = FxHashMap<String, FxHashMap<String, BTreeMap<String, V>>>;

fn index_add<V>(index: &mut LabelIndex<V>, k: &str, v: &str, name: &str, value: V) {
    index.entry(k.to_string()).or_default().entry(v.to_string()).or_default().insert(name.to_string(), value);
}

fn index_remove<V>(index: &mut LabelIndex<V>, k: &str, v: &str, name: &str) {
    if let Some(values) = index.get_mut(k) {
        if let Some(names) = values.get_mut(v) {
            names.remove(name);
            if names.is_empty() {
                values.remove(v);
            }
        }
        if values.is_empty() {
            index.remove(k);
        }
    }
}

fn index_get<'a, V>(index: &'a LabelIndex<V>, k: &str, v: &str) -> Option<&'a BTreeMap<String, V>> {
    index.get(k).and_then(|values| values.get(v))
}

#[derive(Clone, Debug, Default)]
pub struct NsPods {
    pub pods: BTreeMap<String, Arc<PodInfo>>,
    by_label: LabelIndex<Arc<PodInfo>>,
}

impl NsPods {
    pub fn insert(&mut self, pod: Arc<PodInfo>) -> Option<Arc<PodInfo>> {
        let old = self.remove(&pod.key.name.clone());
        for (k, v) in &pod.labels {
            index_add(&mut self.by_label, k, v, &pod.key.name, pod.clone());
        }
        self.pods.insert(pod.key.name.clone(), pod);
        old
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<PodInfo>> {
        let old = self.pods.remove(name)?;
        for (k, v) in &old.labels {
            index_remove(&mut self.by_label, k, v, name);
        }
        Some(old)
    }

    /// The pods of this namespace that `sel` matches, in name order.
    pub fn select<'a>(&'a self, sel: &'a Selector) -> Box<dyn Iterator<Item = &'a PodInfo> + 'a> {
        match sel.required_label() {
            Some((k, v)) => Box::new(
                index_get(&self.by_label, k, v).into_iter().flat_map(|pods| pods.values()).map(|p| &**p).filter(move |p| sel.matches(&p.labels)),
            ),
            None => Box::new(self.pods.values().map(|p| &**p).filter(move |p| sel.matches(&p.labels))),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct NsPolicies {
    pub policies: BTreeMap<String, Arc<Policy>>,
    by_label: LabelIndex<Arc<Policy>>,
    /// Policies whose podSelector requires no single label (`{}`, only expressions).
    unindexed: BTreeMap<String, Arc<Policy>>,
}

impl NsPolicies {
    pub fn insert(&mut self, p: Arc<Policy>) {
        self.remove(&p.name.clone());
        match p.pod_selector.required_label() {
            Some((k, v)) => index_add(&mut self.by_label, k, v, &p.name, p.clone()),
            None => {
                self.unindexed.insert(p.name.clone(), p.clone());
            }
        }
        self.policies.insert(p.name.clone(), p);
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<Policy>> {
        let old = self.policies.remove(name)?;
        match old.pod_selector.required_label() {
            Some((k, v)) => index_remove(&mut self.by_label, k, v, name),
            None => {
                self.unindexed.remove(name);
            }
        }
        Some(old)
    }

    /// The policies whose podSelector matches these pod labels, in name order.
    pub fn selecting(&self, labels: &Labels) -> Vec<&Arc<Policy>> {
        let mut out: Vec<&Arc<Policy>> = self.unindexed.values().collect();
        for (k, v) in labels {
            out.extend(index_get(&self.by_label, k, v).into_iter().flat_map(|p| p.values()));
        }
        out.retain(|p| p.pod_selector.matches(labels));
        if out.len() > 1 {
            // One policy is indexed under one label only, so there are no duplicates.
            out.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        }
        out
    }
}
