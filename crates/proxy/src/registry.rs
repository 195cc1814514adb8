//! What the applier remembers between syncs, in compact form: each service port's id
//! (which names its endpoint slots and affinity entries, and is kept in its chains'
//! comments so a restart finds it again), which port holds each address-keyed map
//! element, and which endpoints each port's affinity entries may point at. Rendered
//! objects are not kept: an update renders the old compiled form again.

use crate::layout::Objects;
use crate::plan::{Rule, Target};
use crate::render;
use crate::state::{Compiled, PortKey};
use std::collections::{BTreeSet, HashMap};
use weft_kernel::nft::Value;

#[derive(Debug, Default)]
pub struct Registry {
    ids: HashMap<PortKey, u32>,
    next_id: u32,
    /// Address keys a port's render had but that another port holds: what was written for
    /// a port is its render minus these.
    withheld: HashMap<u32, BTreeSet<(String, Value)>>,
    /// The id of the service port holding each address-keyed element (two services may
    /// claim the same external IP and port: the first keeps it, as a map holds one
    /// verdict per key).
    owners: HashMap<(String, Value), u32>,
    /// Endpoints that affinity entries of each service id may point at.
    affinity: HashMap<u32, BTreeSet<Target>>,
}

pub fn is_dynamic(set: &str) -> bool {
    set.starts_with("affinity-")
}

pub fn is_per_id(set: &str) -> bool {
    set.starts_with("endpoints-") || is_dynamic(set)
}

fn affinity_targets(c: &Compiled) -> Option<BTreeSet<Target>> {
    let mut any = false;
    let mut out = BTreeSet::new();
    for r in c.rules.chains.values().flatten() {
        if let Rule::Balance { endpoints, affinity_seconds: Some(_) } = r {
            any = true;
            out.extend(endpoints.iter().copied());
        }
    }
    any.then_some(out)
}

/// Whether a port compiled to `c` has session affinity.
pub fn has_affinity(c: &Compiled) -> bool {
    affinity_targets(c).is_some()
}

impl Registry {
    /// Forgets everything; ids start after `max_id` (the largest one the kernel holds).
    pub fn reset(&mut self, max_id: Option<u32>) {
        *self = Registry { next_id: max_id.map_or(1, |m| m + 1), ..Default::default() };
    }

    pub fn id(&self, key: &PortKey) -> Option<u32> {
        self.ids.get(key).copied()
    }

    /// Gives `key` the id `id` (recovered from the kernel).
    pub fn adopt(&mut self, key: &PortKey, id: u32) {
        self.ids.insert(key.clone(), id);
    }

    fn id_or_new(&mut self, key: &PortKey) -> u32 {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(key.clone(), id);
        id
    }

    /// The objects written for a service port compiled to `c`: its render, minus the
    /// address keys another port holds.
    pub fn written(&self, key: &PortKey, c: &Compiled) -> Objects {
        let Some(id) = self.ids.get(key).copied() else { return Objects::default() };
        let mut o = render::service(&c.port, &c.rules, id);
        for (set, k) in self.withheld.get(&id).into_iter().flatten() {
            if let Some(m) = o.elements.get_mut(set) {
                m.remove(k);
            }
        }
        o
    }

    /// Renders `c` for `key` (giving it an id if it has none) and takes the address keys
    /// that are free; the ones another port holds are withheld (and logged).
    pub fn render_and_own(&mut self, key: &PortKey, c: &Compiled) -> Objects {
        let id = self.id_or_new(key);
        let mut o = render::service(&c.port, &c.rules, id);
        let mut withheld = BTreeSet::new();
        for (set, elems) in o.elements.iter_mut() {
            if is_per_id(set) {
                continue;
            }
            elems.retain(|k, _| {
                let slot = self.owners.entry((set.clone(), k.clone())).or_insert(id);
                if *slot == id {
                    return true;
                }
                let other = self.ids.iter().find(|(_, i)| **i == *slot).map(|(k, _)| k.0.to_string()).unwrap_or_default();
                tracing::warn!(service = %c.port.name, %other, set, "two services claim the same address and port; the first one keeps it");
                withheld.insert((set.clone(), k.clone()));
                false
            });
        }
        if withheld.is_empty() {
            self.withheld.remove(&id);
        } else {
            self.withheld.insert(id, withheld);
        }
        o
    }

    /// Releases the address keys of `old` (what was written for `key`).
    pub fn release(&mut self, key: &PortKey, old: &Objects) {
        let Some(id) = self.id(key) else { return };
        for (set, elems) in old.elements.iter().filter(|(s, _)| !is_per_id(s)) {
            for k in elems.keys() {
                let owned = (set.clone(), k.clone());
                if self.owners.get(&owned) == Some(&id) {
                    self.owners.remove(&owned);
                }
            }
        }
    }

    /// `key` is gone: forget its id and everything under it.
    pub fn forget(&mut self, key: &PortKey) {
        if let Some(id) = self.ids.remove(key) {
            self.withheld.remove(&id);
            self.affinity.remove(&id);
        }
    }

    /// Records which endpoints `key`'s affinity entries may point at (none: no affinity).
    pub fn remember_affinity(&mut self, key: &PortKey, c: Option<&Compiled>) {
        let Some(id) = self.id(key) else { return };
        match c.and_then(affinity_targets) {
            Some(targets) => {
                self.affinity.insert(id, targets);
            }
            None => {
                self.affinity.remove(&id);
            }
        }
    }

    /// An affinity entry of service `id` pointing at `target` may stay.
    pub fn affinity_is_live(&self, id: u32, target: &Target) -> bool {
        self.affinity.get(&id).is_some_and(|ts| ts.contains(target))
    }
}
