//! The netpol-conformance-corpus/v1 format (conformance/netpol/README.md section 3):
//! a model of namespaces and pods, and cases of steps (actions, then probe matrices).
//!
//! - [`template`]: the IP templates (`{{host NS/POD}}`, `{{net NS/POD N}}`, `{{ip NS/POD}}`).
//! - [`replay`]: a case's state step by step (which namespaces and pods exist, with what
//!   labels and ports), fed into the pure model, and matrices compared cell by cell.
//!
//! `expect_dsl` is informational; the `matrix` is the truth.

pub mod replay;
pub mod template;

use crate::model::{Labels, NamedPort, PodKey, Protocol};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub const FORMAT: &str = "netpol-conformance-corpus/v1";

#[derive(Clone, Debug, Deserialize)]
pub struct Corpus {
    pub format: String,
    pub model: Model,
    pub cases: Vec<Case>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Model {
    pub namespaces: BTreeMap<String, NamespaceSpec>,
    /// `ns/pod` -> the pod.
    pub pods: BTreeMap<String, PodSpec>,
    #[serde(default)]
    pub probe_ports: Vec<u16>,
    #[serde(default, deserialize_with = "protocols")]
    pub probe_protocols: Vec<Protocol>,
    #[serde(default)]
    pub ip_plans: BTreeMap<String, IpPlan>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NamespaceSpec {
    #[serde(default)]
    pub labels: Labels,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodSpec {
    #[serde(default)]
    pub labels: Labels,
    #[serde(default, rename = "containerPorts")]
    pub container_ports: Vec<ContainerPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ContainerPort {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "containerPort")]
    pub container_port: u16,
    #[serde(default = "tcp", deserialize_with = "protocol")]
    pub protocol: Protocol,
}

impl PodSpec {
    /// The named containerPorts, as the model resolves named ports against them.
    pub fn named_ports(&self) -> Vec<NamedPort> {
        self.container_ports.iter().filter_map(|p| Some(NamedPort { name: p.name.clone()?, port: p.container_port, protocol: p.protocol })).collect()
    }
}

/// Example addresses for the model's pods, for reading the templates without a cluster.
#[derive(Clone, Debug, Deserialize)]
pub struct IpPlan {
    /// `IPv4` or `IPv6`.
    pub family: String,
    /// A prefix for pods that actions create: `10.244.9` or `fd00:10:244:9::`.
    #[serde(default)]
    pub spare: Option<String>,
    pub ips: BTreeMap<String, IpAddr>,
}

impl IpPlan {
    /// The address of the `n`th pod (from 1) that a case creates.
    pub fn spare_ip(&self, n: u16) -> Result<IpAddr, String> {
        let spare = self.spare.as_deref().ok_or_else(|| format!("ip plan ({}) has no `spare` prefix for created pods", self.family))?;
        let text = if spare.ends_with("::") { format!("{spare}{n:x}") } else { format!("{spare}.{n}") };
        text.parse().map_err(|_| format!("ip plan ({}): spare {spare:?} does not make an address for pod {n}", self.family))
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The families the case holds for (absent: all).
    #[serde(default)]
    pub ip_families: Option<Vec<String>>,
    #[serde(default)]
    pub notes: Option<String>,
    pub steps: Vec<Step>,
}

impl Case {
    pub fn allows_family(&self, family: &str) -> bool {
        self.ip_families.as_ref().is_none_or(|f| f.iter().any(|x| x == family))
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Step {
    #[serde(default, deserialize_with = "actions")]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub probes: Vec<Probe>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A whole NetworkPolicy, with IP templates still in it.
    CreatePolicy(serde_json::Value),
    /// Replace by namespace/name.
    UpdatePolicy(serde_json::Value),
    DeletePolicy { namespace: String, name: String },
    DeleteAllPolicies {},
    AddNamespaceLabels { namespace: String, labels: Labels },
    /// Replace (kubernetes.io/metadata.name is kept).
    SetNamespaceLabels { namespace: String, labels: Labels },
    AddPodLabels { pod: String, labels: Labels },
    SetPodLabels { pod: String, labels: Labels },
    CreateNamespace {
        namespace: String,
        #[serde(default)]
        labels: Labels,
    },
    DeleteNamespace { namespace: String },
    CreatePod {
        pod: String,
        #[serde(default)]
        labels: Labels,
        #[serde(default, rename = "containerPorts")]
        container_ports: Vec<ContainerPort>,
    },
    DeletePod { pod: String },
}

impl Action {
    /// `create_policy x/deny-all`, for messages.
    pub fn describe(&self) -> String {
        let policy = |verb: &str, v: &serde_json::Value| {
            let m = &v["metadata"];
            format!("{verb} {}/{}", m["namespace"].as_str().unwrap_or("?"), m["name"].as_str().unwrap_or("?"))
        };
        match self {
            Action::CreatePolicy(v) => policy("create_policy", v),
            Action::UpdatePolicy(v) => policy("update_policy", v),
            Action::DeletePolicy { namespace, name } => format!("delete_policy {namespace}/{name}"),
            Action::DeleteAllPolicies {} => "delete_all_policies".into(),
            Action::AddNamespaceLabels { namespace, .. } => format!("add_namespace_labels {namespace}"),
            Action::SetNamespaceLabels { namespace, .. } => format!("set_namespace_labels {namespace}"),
            Action::AddPodLabels { pod, .. } => format!("add_pod_labels {pod}"),
            Action::SetPodLabels { pod, .. } => format!("set_pod_labels {pod}"),
            Action::CreateNamespace { namespace, .. } => format!("create_namespace {namespace}"),
            Action::DeleteNamespace { namespace } => format!("delete_namespace {namespace}"),
            Action::CreatePod { pod, .. } => format!("create_pod {pod}"),
            Action::DeletePod { pod } => format!("delete_pod {pod}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    Allowed,
    Denied,
}

impl Reach {
    pub fn allowed(self) -> bool {
        self == Reach::Allowed
    }
    pub fn word(allowed: bool) -> &'static str {
        if allowed {
            "allowed"
        } else {
            "denied"
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Probe {
    #[serde(deserialize_with = "protocol")]
    pub protocol: Protocol,
    pub port: u16,
    /// How the expectation was written upstream; informational.
    #[serde(default)]
    pub expect_dsl: Option<serde_json::Value>,
    /// Row = source `ns/pod`, column = destination.
    pub matrix: BTreeMap<String, BTreeMap<String, Reach>>,
}

impl Probe {
    /// The pods of the matrix (its rows), as keys.
    pub fn pods(&self) -> Result<Vec<PodKey>, String> {
        self.matrix.keys().map(|k| pod_key(k)).collect()
    }

    pub fn expected(&self, src: &PodKey, dst: &PodKey) -> Option<bool> {
        self.matrix.get(&src.to_string())?.get(&dst.to_string()).map(|r| r.allowed())
    }
}

/// `ns/pod` -> its key.
pub fn pod_key(s: &str) -> Result<PodKey, String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => Ok(PodKey { namespace: ns.into(), name: name.into() }),
        _ => Err(format!("{s:?} is not a pod reference of the form NAMESPACE/POD")),
    }
}

/// serde_yaml reads enums only from YAML tags; an action is a one-key map, as JSON
/// would read it.
fn actions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Action>, D::Error> {
    let v = Vec::<serde_json::Value>::deserialize(d)?;
    v.into_iter().enumerate().map(|(i, a)| Action::from_value(a).map_err(|e| serde::de::Error::custom(format!("actions[{i}]: {e}")))).collect()
}

impl Action {
    /// From the one-key map `{create_policy: {...}}` (JSON or YAML read into a value).
    pub fn from_value(v: serde_json::Value) -> Result<Action, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }
}

fn tcp() -> Protocol {
    Protocol::Tcp
}

fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
    let s = String::deserialize(d)?;
    Protocol::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("protocol {s:?} is not TCP, UDP or SCTP")))
}

fn protocols<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Protocol>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter().map(|s| Protocol::parse(s).ok_or_else(|| serde::de::Error::custom(format!("probe_protocols: {s:?} is not TCP, UDP or SCTP")))).collect()
}

impl Corpus {
    /// Parses and checks a corpus file's text.
    pub fn parse(text: &str) -> Result<Corpus, String> {
        let corpus: Corpus = serde_yaml::from_str(text).map_err(|e| format!("not a {FORMAT} file: {e}"))?;
        corpus.check()?;
        Ok(corpus)
    }

    pub fn load(path: &std::path::Path) -> Result<Corpus, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Corpus::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// What serde cannot say: the format, unique case names, pod references, and
    /// square matrices over one set of pods per step.
    fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format: {:?}, expected {FORMAT:?}", self.format));
        }
        for (k, pod) in &self.model.pods {
            let key = pod_key(k).map_err(|e| format!("model.pods: {e}"))?;
            if !self.model.namespaces.contains_key(&key.namespace) {
                return Err(format!("model.pods.{k}: namespace {} is not in model.namespaces", key.namespace));
            }
            if !pod.labels.is_empty() && pod.labels.keys().any(|l| l.is_empty()) {
                return Err(format!("model.pods.{k}.labels: an empty key"));
            }
        }
        for (name, plan) in &self.model.ip_plans {
            for k in plan.ips.keys() {
                if !self.model.pods.contains_key(k) {
                    return Err(format!("model.ip_plans.{name}.ips: {k} is not a model pod"));
                }
            }
        }
        let mut names = BTreeSet::new();
        for case in &self.cases {
            if !names.insert(case.name.as_str()) {
                return Err(format!("cases: the name {:?} is used twice", case.name));
            }
            for (i, step) in case.steps.iter().enumerate() {
                for probe in &step.probes {
                    let at = || format!("case {} step {} {}/{}", case.name, i + 1, probe.protocol.as_str(), probe.port);
                    let rows: BTreeSet<&String> = probe.matrix.keys().collect();
                    probe.pods().map_err(|e| format!("{}: matrix: {e}", at()))?;
                    for (src, row) in &probe.matrix {
                        let cols: BTreeSet<&String> = row.keys().collect();
                        if cols != rows {
                            return Err(format!("{}: matrix row {src} has columns {cols:?}, not the rows {rows:?}", at()));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Cases whose name contains `only` (all without it).
    pub fn selected<'a>(&'a self, only: Option<&'a str>) -> impl Iterator<Item = &'a Case> + 'a {
        self.cases.iter().filter(move |c| only.is_none_or(|o| c.name.contains(o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../conformance/netpol/cases.yaml");

    #[test]
    fn the_shipped_corpus_parses_with_every_action_kind_it_uses() {
        let c = Corpus::parse(SHIPPED).unwrap();
        assert_eq!(c.cases.len(), SHIPPED.matches("\n- name: ").count());
        assert_eq!(c.model.pods.len(), 9);
        assert_eq!(c.model.pods["x/a"].named_ports().len(), 6);
        assert_eq!(c.model.ip_plans["ipv6-a"].spare_ip(10).unwrap(), "fd00:10:244:9::a".parse::<IpAddr>().unwrap());
        assert_eq!(c.model.ip_plans["ipv4-a"].spare_ip(2).unwrap(), "10.244.9.2".parse::<IpAddr>().unwrap());
        let actions: BTreeSet<String> = c.cases.iter().flat_map(|c| &c.steps).flat_map(|s| &s.actions).map(|a| a.describe().split(' ').next().unwrap().to_string()).collect();
        for kind in ["create_policy", "update_policy", "delete_policy", "delete_all_policies", "add_pod_labels", "add_namespace_labels", "create_namespace", "delete_namespace", "create_pod", "delete_pod"] {
            assert!(actions.contains(kind), "{kind} not in {actions:?}");
        }
        let e2e = c.cases.iter().find(|c| c.name == "e2e-default-deny-ingress").unwrap();
        let p = &e2e.steps[0].probes[0];
        let xa = pod_key("x/a").unwrap();
        assert_eq!(p.expected(&pod_key("y/b").unwrap(), &xa), Some(false));
        assert_eq!(p.expected(&xa, &pod_key("y/b").unwrap()), Some(true));
    }

    #[test]
    fn a_ragged_matrix_a_bad_format_and_a_duplicate_name_are_named() {
        let base = "format: netpol-conformance-corpus/v1\nmodel: {namespaces: {x: {}}, pods: {x/a: {}, x/b: {}}}\ncases:\n";
        let case = |name: &str, row_b: &str| format!("- name: {name}\n  steps:\n  - probes:\n    - {{protocol: TCP, port: 80, matrix: {{x/a: {{x/a: allowed, x/b: denied}}, x/b: {row_b}}}}}\n");
        let ok = format!("{base}{}", case("one", "{x/a: allowed, x/b: allowed}"));
        assert_eq!(Corpus::parse(&ok).unwrap().cases[0].steps[0].probes[0].expected(&pod_key("x/a").unwrap(), &pod_key("x/b").unwrap()), Some(false));
        let ragged = format!("{base}{}", case("one", "{x/a: allowed}"));
        assert!(Corpus::parse(&ragged).unwrap_err().contains("case one step 1 TCP/80: matrix row x/b"));
        let twice = format!("{base}{}{}", case("one", "{x/a: allowed, x/b: allowed}"), case("one", "{x/a: allowed, x/b: allowed}"));
        assert!(Corpus::parse(&twice).unwrap_err().contains("\"one\" is used twice"));
        let v2 = ok.replace("/v1", "/v2");
        assert!(Corpus::parse(&v2).unwrap_err().contains("format"));
        let proto = ok.replace("protocol: TCP", "protocol: ICMP");
        assert!(Corpus::parse(&proto).unwrap_err().contains("\"ICMP\" is not TCP, UDP or SCTP"));
    }

    #[test]
    fn pod_references_need_a_namespace_and_a_name() {
        assert_eq!(pod_key("y-2/b").unwrap(), PodKey { namespace: "y-2".into(), name: "b".into() });
        for bad in ["a", "/a", "x/", "x/a/b"] {
            assert!(pod_key(bad).is_err(), "{bad}");
        }
    }
}
