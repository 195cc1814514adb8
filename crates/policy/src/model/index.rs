//! Per-namespace indexes: pods and policies by label, so that selecting the pods of a
//! selector, or the policies that select a pod, costs the size of the answer rather
//! than the size of the cluster.

use super::policy::Policy;
use super::selector::Selector;
use super::{Labels, PodInfo};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// key -> value -> names.
type LabelIndex = HashMap<String, HashMap<String, BTreeSet<String>>>;

fn index_add(index: &mut LabelIndex, k: &str, v: &str, name: &str) {
    index.entry(k.to_string()).or_default().entry(v.to_string()).or_default().insert(name.to_string());
}

fn index_remove(index: &mut LabelIndex, k: &str, v: &str, name: &str) {
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

fn index_get<'a>(index: &'a LabelIndex, k: &str, v: &str) -> Option<&'a BTreeSet<String>> {
    index.get(k).and_then(|values| values.get(v))
}

#[derive(Clone, Debug, Default)]
pub struct NsPods {
    pub pods: BTreeMap<String, PodInfo>,
    by_label: LabelIndex,
}

impl NsPods {
    pub fn insert(&mut self, pod: PodInfo) -> Option<PodInfo> {
        let old = self.remove(&pod.key.name.clone());
        for (k, v) in &pod.labels {
            index_add(&mut self.by_label, k, v, &pod.key.name);
        }
        self.pods.insert(pod.key.name.clone(), pod);
        old
    }

    pub fn remove(&mut self, name: &str) -> Option<PodInfo> {
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
                index_get(&self.by_label, k, v).into_iter().flatten().filter_map(|n| self.pods.get(n)).filter(move |p| sel.matches(&p.labels)),
            ),
            None => Box::new(self.pods.values().filter(move |p| sel.matches(&p.labels))),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct NsPolicies {
    pub policies: BTreeMap<String, Arc<Policy>>,
    by_label: LabelIndex,
    /// Policies whose podSelector requires no single label (`{}`, only expressions).
    unindexed: BTreeSet<String>,
}

impl NsPolicies {
    pub fn insert(&mut self, p: Arc<Policy>) {
        self.remove(&p.name.clone());
        match p.pod_selector.required_label() {
            Some((k, v)) => index_add(&mut self.by_label, k, v, &p.name),
            None => {
                self.unindexed.insert(p.name.clone());
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
        let mut names: Vec<&String> = self.unindexed.iter().collect();
        for (k, v) in labels {
            names.extend(index_get(&self.by_label, k, v).into_iter().flatten());
        }
        names.sort_unstable();
        names.dedup();
        names.into_iter().filter_map(|n| self.policies.get(n)).filter(|p| p.pod_selector.matches(labels)).collect()
    }
}
