//! A case's state, step by step: which namespaces and pods exist with which labels
//! and ports, and which policies are in force, kept in a [`World`] (what the
//! conformance runner restores and compares against) and in the pure model
//! ([`Cluster`], fed through its live `set_*` / `apply_*` / `delete_*` calls), whose
//! matrix is then compared with the expectation cell by cell.

use crate::corpus::{pod_key, template, Action, ContainerPort, Model, Probe, Reach};
use crate::evaluate::Query;
use crate::model::{Cluster, Labels, NamedPort, PodInfo, PodKey, Protocol};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Pod addresses, as a case's templates and the model read them.
pub type Addresses = BTreeMap<PodKey, IpAddr>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    pub labels: Labels,
    pub ports: Vec<ContainerPort>,
}

impl PodState {
    pub fn named_ports(&self) -> Vec<NamedPort> {
        self.ports.iter().filter_map(|p| Some(NamedPort { name: p.name.clone()?, port: p.container_port, protocol: p.protocol })).collect()
    }
}

/// What exists, as a case's actions leave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    /// Namespace -> its labels (with kubernetes.io/metadata.name).
    pub namespaces: BTreeMap<String, Labels>,
    pub pods: BTreeMap<PodKey, PodState>,
    /// (namespace, name) -> the policy as written (templates not yet rendered).
    pub policies: BTreeMap<(String, String), serde_json::Value>,
}

fn with_name(name: &str, mut labels: Labels) -> Labels {
    labels.insert(NAMESPACE_NAME_LABEL.into(), name.into());
    labels
}

/// `metadata.namespace` and `metadata.name` of a policy in the corpus.
pub fn policy_id(v: &serde_json::Value) -> Result<(String, String), String> {
    let m = &v["metadata"];
    match (m["namespace"].as_str(), m["name"].as_str()) {
        (Some(ns), Some(name)) => Ok((ns.into(), name.into())),
        _ => Err("a policy needs metadata.namespace and metadata.name".into()),
    }
}

/// A corpus policy with its templates rendered from `ips`, as the API would take it.
pub fn render_policy(v: &serde_json::Value, ips: &Addresses) -> Result<NetworkPolicy, String> {
    let (ns, name) = policy_id(v)?;
    let rendered = template::render(v, &|k| ips.get(k).copied()).map_err(|e| format!("policy {ns}/{name}: {e}"))?;
    serde_json::from_value(rendered).map_err(|e| format!("policy {ns}/{name}: not a NetworkPolicy: {e}"))
}

impl World {
    /// The model's clean state: no policies, default labels.
    pub fn initial(model: &Model) -> Result<World, String> {
        let namespaces = model.namespaces.iter().map(|(n, s)| (n.clone(), with_name(n, s.labels.clone()))).collect();
        let mut pods = BTreeMap::new();
        for (k, p) in &model.pods {
            pods.insert(pod_key(k)?, PodState { labels: p.labels.clone(), ports: p.container_ports.clone() });
        }
        Ok(World { namespaces, pods, policies: BTreeMap::new() })
    }

    fn pod_mut(&mut self, pod: &str) -> Result<(PodKey, &mut PodState), String> {
        let key = pod_key(pod)?;
        let state = self.pods.get_mut(&key).ok_or_else(|| format!("pod {pod} does not exist at this point of the case"))?;
        Ok((key, state))
    }

    fn namespace_mut(&mut self, ns: &str) -> Result<&mut Labels, String> {
        self.namespaces.get_mut(ns).ok_or_else(|| format!("namespace {ns} does not exist at this point of the case"))
    }

    /// Applies one action; an action on something that does not exist is an error.
    pub fn apply(&mut self, action: &Action) -> Result<(), String> {
        let at = action.describe();
        let r: Result<(), String> = (|| {
            match action {
                Action::CreatePolicy(v) | Action::UpdatePolicy(v) => {
                    let id = policy_id(v)?;
                    if !self.namespaces.contains_key(&id.0) {
                        return Err(format!("namespace {} does not exist", id.0));
                    }
                    self.policies.insert(id, v.clone());
                }
                Action::DeletePolicy { namespace, name } => {
                    self.policies.remove(&(namespace.clone(), name.clone())).ok_or_else(|| format!("policy {namespace}/{name} does not exist"))?;
                }
                Action::DeleteAllPolicies {} => self.policies.clear(),
                Action::AddNamespaceLabels { namespace, labels } => self.namespace_mut(namespace)?.extend(labels.clone()),
                Action::SetNamespaceLabels { namespace, labels } => *self.namespace_mut(namespace)? = with_name(namespace, labels.clone()),
                Action::AddPodLabels { pod, labels } => self.pod_mut(pod)?.1.labels.extend(labels.clone()),
                Action::SetPodLabels { pod, labels } => self.pod_mut(pod)?.1.labels = labels.clone(),
                Action::CreateNamespace { namespace, labels } => {
                    if self.namespaces.insert(namespace.clone(), with_name(namespace, labels.clone())).is_some() {
                        return Err(format!("namespace {namespace} exists already"));
                    }
                }
                Action::DeleteNamespace { namespace } => {
                    self.namespaces.remove(namespace).ok_or_else(|| format!("namespace {namespace} does not exist"))?;
                    self.pods.retain(|k, _| &k.namespace != namespace);
                    self.policies.retain(|k, _| &k.0 != namespace);
                }
                Action::CreatePod { pod, labels, container_ports } => {
                    let key = pod_key(pod)?;
                    if !self.namespaces.contains_key(&key.namespace) {
                        return Err(format!("namespace {} does not exist", key.namespace));
                    }
                    if self.pods.insert(key, PodState { labels: labels.clone(), ports: container_ports.clone() }).is_some() {
                        return Err(format!("pod {pod} exists already"));
                    }
                }
                Action::DeletePod { pod } => {
                    self.pods.remove(&pod_key(pod)?).ok_or_else(|| format!("pod {pod} does not exist"))?;
                }
            }
            Ok(())
        })();
        r.map_err(|e| format!("{at}: {e}"))
    }
}

/// The pure model kept in step with a [`World`].
pub struct Replay {
    pub world: World,
    pub cluster: Cluster,
}

fn pod_info(key: &PodKey, state: &PodState, ips: &Addresses) -> Result<PodInfo, String> {
    let ip = ips.get(key).ok_or_else(|| format!("pod {key} has no address"))?;
    Ok(PodInfo { key: key.clone(), labels: state.labels.clone(), ips: vec![*ip], host_network: false, node: None, ports: state.named_ports() })
}

impl Replay {
    /// The model's clean state in the pure model, with these pod addresses.
    pub fn new(model: &Model, ips: &Addresses) -> Result<Replay, String> {
        let world = World::initial(model)?;
        let mut cluster = Cluster::new();
        for (name, labels) in &world.namespaces {
            cluster.set_namespace(name, labels.clone());
        }
        for (key, state) in &world.pods {
            cluster.set_pod(pod_info(key, state, ips)?);
        }
        Ok(Replay { world, cluster })
    }

    /// Applies an action to the world and to the model. `ips` must hold the address of
    /// a pod the action creates, and of every pod a policy's templates name.
    pub fn apply(&mut self, action: &Action, ips: &Addresses) -> Result<(), String> {
        let before = self.world.clone();
        self.world.apply(action)?;
        let at = action.describe();
        match action {
            Action::CreatePolicy(v) | Action::UpdatePolicy(v) => {
                let np = render_policy(v, ips)?;
                self.cluster.apply_policy(&np).map_err(|e| format!("{at}: the model rejected it: {e}"))?;
            }
            Action::DeletePolicy { namespace, name } => self.cluster.delete_policy(namespace, name),
            Action::DeleteAllPolicies {} => {
                for (ns, name) in before.policies.keys() {
                    self.cluster.delete_policy(ns, name);
                }
            }
            Action::AddNamespaceLabels { namespace, .. } | Action::SetNamespaceLabels { namespace, .. } | Action::CreateNamespace { namespace, .. } => {
                self.cluster.set_namespace(namespace, self.world.namespaces[namespace].clone());
            }
            Action::DeleteNamespace { namespace } => {
                for key in before.pods.keys().filter(|k| &k.namespace == namespace) {
                    self.cluster.delete_pod(key);
                }
                for (ns, name) in before.policies.keys().filter(|k| &k.0 == namespace) {
                    self.cluster.delete_policy(ns, name);
                }
                self.cluster.delete_namespace(namespace);
            }
            Action::AddPodLabels { pod, .. } | Action::SetPodLabels { pod, .. } | Action::CreatePod { pod, .. } => {
                let key = pod_key(pod)?;
                let info = pod_info(&key, &self.world.pods[&key], ips).map_err(|e| format!("{at}: {e}"))?;
                self.cluster.set_pod(info);
            }
            Action::DeletePod { pod } => self.cluster.delete_pod(&pod_key(pod)?),
        }
        Ok(())
    }

    /// The model's verdict for every ordered pair of existing pods (the diagonal too).
    pub fn matrix(&self, protocol: Protocol, port: u16, ips: &Addresses) -> Result<BTreeMap<(PodKey, PodKey), bool>, String> {
        let mut out = BTreeMap::new();
        for src in self.world.pods.keys() {
            for dst in self.world.pods.keys() {
                let (s, d) = (ips.get(src).ok_or_else(|| format!("pod {src} has no address"))?, ips.get(dst).ok_or_else(|| format!("pod {dst} has no address"))?);
                let v = self.cluster.evaluate(&Query { src: *s, dst: *d, protocol, port });
                out.insert((src.clone(), dst.clone()), v.allowed());
            }
        }
        Ok(out)
    }
}

/// One cell that differs from the expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub src: PodKey,
    pub dst: PodKey,
    pub expected: bool,
    /// None: the pair was not measured (a pod missing on this side).
    pub got: Option<bool>,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let got = self.got.map_or("nothing (not probed)", Reach::word);
        write!(f, "{} -> {} expected {}, got {}", self.src, self.dst, Reach::word(self.expected), got)
    }
}

/// The cells of `probe`'s matrix that `got` disagrees with: off the diagonal (what
/// counts, as upstream's ignoreLoopback) and on it (reported only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub cells: Vec<Cell>,
    pub diagonal: Vec<Cell>,
}

pub fn diff(probe: &Probe, got: &dyn Fn(&PodKey, &PodKey) -> Option<bool>) -> Result<Diff, String> {
    let pods = probe.pods()?;
    let mut d = Diff::default();
    for src in &pods {
        for dst in &pods {
            let expected = probe.expected(src, dst).ok_or_else(|| format!("matrix has no cell {src} -> {dst}"))?;
            let g = got(src, dst);
            if g != Some(expected) {
                let cell = Cell { src: src.clone(), dst: dst.clone(), expected, got: g };
                if src == dst {
                    d.diagonal.push(cell);
                } else {
                    d.cells.push(cell);
                }
            }
        }
    }
    Ok(d)
}

/// `step 2 TCP/80: x/a -> x/b expected allowed, got denied; ...`, at most `max` cells.
pub fn describe(step: usize, probe: &Probe, label: &str, cells: &[Cell], max: usize) -> String {
    let mut s = format!("step {step} {}/{}{label}: ", probe.protocol.as_str(), probe.port);
    let shown: Vec<String> = cells.iter().take(max).map(ToString::to_string).collect();
    s.push_str(&shown.join("; "));
    if cells.len() > max {
        s.push_str(&format!("; ... ({} more)", cells.len() - max));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;

    fn corpus() -> Corpus {
        Corpus::parse(
            "format: netpol-conformance-corpus/v1\nmodel:\n  namespaces: {x: {labels: {ns: x}}, y: {}}\n  pods: {x/a: {labels: {pod: a}, containerPorts: [{name: serve-80-tcp, containerPort: 80}]}, y/a: {labels: {pod: a}}}\ncases: []\n",
        )
        .unwrap()
    }

    #[test]
    fn the_world_follows_actions_and_refuses_missing_objects() {
        let c = corpus();
        let mut w = World::initial(&c.model).unwrap();
        assert_eq!(w.namespaces["x"].get(NAMESPACE_NAME_LABEL).map(String::as_str), Some("x"));
        assert_eq!(w.pods[&pod_key("x/a").unwrap()].named_ports(), vec![NamedPort { name: "serve-80-tcp".into(), port: 80, protocol: Protocol::Tcp }]);
        let act = |y: &str| Action::from_value(serde_yaml::from_str(y).unwrap()).unwrap();
        w.apply(&act("create_namespace: {namespace: y-2, labels: {ns: y}}")).unwrap();
        assert_eq!(w.namespaces["y-2"].len(), 2);
        w.apply(&act("create_pod: {pod: y-2/b, labels: {pod: b}}")).unwrap();
        w.apply(&act("set_namespace_labels: {namespace: x, labels: {a: b}}")).unwrap();
        assert_eq!(w.namespaces["x"].len(), 2, "metadata.name is kept");
        w.apply(&act("add_pod_labels: {pod: x/a, labels: {t: i}}")).unwrap();
        assert_eq!(w.pods[&pod_key("x/a").unwrap()].labels.len(), 2);
        w.apply(&act("create_policy: {metadata: {namespace: y-2, name: p}, spec: {podSelector: {}}}")).unwrap();
        w.apply(&act("delete_namespace: {namespace: y-2}")).unwrap();
        assert!(w.pods.keys().all(|k| k.namespace != "y-2") && w.policies.is_empty());
        let e = w.apply(&act("delete_pod: {pod: y-2/b}")).unwrap_err();
        assert_eq!(e, "delete_pod y-2/b: pod y-2/b does not exist");
        let e = w.apply(&act("add_namespace_labels: {namespace: q, labels: {}}")).unwrap_err();
        assert!(e.contains("namespace q does not exist"), "{e}");
    }

    #[test]
    fn a_diff_keeps_the_diagonal_apart_and_names_cells() {
        let p: Probe = serde_yaml::from_str("{protocol: UDP, port: 81, matrix: {x/a: {x/a: denied, y/a: allowed}, y/a: {x/a: denied, y/a: allowed}}}").unwrap();
        let d = diff(&p, &|s, t| Some(s.namespace == "y" || t.namespace == "x")).unwrap();
        assert_eq!(d.diagonal.len(), 1);
        assert_eq!(d.cells.len(), 2);
        assert_eq!(describe(3, &p, "", &d.cells, 1), "step 3 UDP/81: x/a -> y/a expected allowed, got denied; ... (1 more)");
        let none = diff(&p, &|_, _| None).unwrap();
        assert_eq!(none.cells[0].to_string(), "x/a -> y/a expected allowed, got nothing (not probed)");
    }
}
