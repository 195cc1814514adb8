//! A NetworkPolicy normalized once, when it is applied: defaults filled in
//! (policyTypes, protocol TCP), rules of unlisted directions dropped, selectors and
//! CIDRs validated. Evaluation and compilation read only this form.

use super::selector::Selector;
use super::Protocol;
use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// This version of the policy, unique in the model (0 until the model applies it):
    /// what compile caches are keyed by.
    pub uid: u64,
    pub namespace: String,
    pub name: String,
    pub pod_selector: Selector,
    /// `None` when `Ingress` is not in the effective policyTypes (the pod is not
    /// isolated for ingress by this policy); `Some(vec![])` denies all.
    pub ingress: Option<Vec<Rule>>,
    pub egress: Option<Vec<Rule>>,
}

impl Policy {
    pub fn rules(&self, egress: bool) -> Option<&[Rule]> {
        if egress { self.egress.as_deref() } else { self.ingress.as_deref() }
    }
}

/// Peers AND ports. Empty `peers`: any peer, outside the cluster too. Empty `ports`:
/// every port of every protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub peers: Vec<Peer>,
    pub ports: Vec<PortSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Pods matching `pods` in the namespaces matching `namespaces`; `None` is the
    /// policy's own namespace (a podSelector alone).
    Pods { namespaces: Option<Selector>, pods: Selector },
    /// Addresses in `cidr` and in no `except`.
    IpBlock { cidr: IpNet, except: Vec<IpNet> },
}

impl Peer {
    pub fn ip_block_contains(cidr: &IpNet, except: &[IpNet], ip: IpAddr) -> bool {
        cidr.contains(&ip) && !except.iter().any(|e| e.contains(&ip))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub protocol: Protocol,
    pub port: PortMatch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortMatch {
    /// No `port`: every port of the protocol.
    All,
    /// `port`, or `port..=endPort`.
    Range(u16, u16),
    /// A containerPort name, resolved on the destination pod with the protocol.
    Named(String),
}

impl Policy {
    /// Normalizes an API object; the error names `<ns>/<name>` and the field.
    pub fn from_api(np: &NetworkPolicy) -> Result<Policy, String> {
        let namespace = np.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
        let name = np.metadata.name.clone().ok_or_else(|| format!("NetworkPolicy in {namespace}: metadata.name: missing"))?;
        let at = |e: String| format!("NetworkPolicy {namespace}/{name}: {e}");
        let spec = np.spec.clone().unwrap_or_default();
        let pod_selector = Selector::parse(&spec.pod_selector.clone().unwrap_or_default(), "spec.podSelector").map_err(at)?;
        let egress_rules = spec.egress.clone().unwrap_or_default();
        let (mut want_ingress, mut want_egress) = (false, false);
        match spec.policy_types.as_deref() {
            None | Some([]) => {
                want_ingress = true;
                want_egress = !egress_rules.is_empty();
            }
            Some(types) => {
                for (i, t) in types.iter().enumerate() {
                    match t.as_str() {
                        "Ingress" => want_ingress = true,
                        "Egress" => want_egress = true,
                        other => return Err(at(format!("spec.policyTypes[{i}]: unknown policy type {other:?} (want Ingress or Egress)"))),
                    }
                }
            }
        }
        let ingress = if want_ingress {
            let mut rules = Vec::new();
            for (i, r) in spec.ingress.iter().flatten().enumerate() {
                let path = format!("spec.ingress[{i}]");
                rules.push(Rule::parse(r.from.as_deref(), r.ports.as_deref(), &path, "from").map_err(at)?);
            }
            Some(rules)
        } else {
            None
        };
        let egress = if want_egress {
            let mut rules = Vec::new();
            for (i, r) in egress_rules.iter().enumerate() {
                let path = format!("spec.egress[{i}]");
                rules.push(Rule::parse(r.to.as_deref(), r.ports.as_deref(), &path, "to").map_err(at)?);
            }
            Some(rules)
        } else {
            None
        };
        Ok(Policy { uid: 0, namespace, name, pod_selector, ingress, egress })
    }
}

impl Rule {
    fn parse(peers: Option<&[NetworkPolicyPeer]>, ports: Option<&[NetworkPolicyPort]>, path: &str, field: &str) -> Result<Rule, String> {
        let peers = peers.unwrap_or_default().iter().enumerate().map(|(i, p)| parse_peer(p, &format!("{path}.{field}[{i}]"))).collect::<Result<_, _>>()?;
        let ports = ports.unwrap_or_default().iter().enumerate().map(|(i, p)| parse_port(p, &format!("{path}.ports[{i}]"))).collect::<Result<_, _>>()?;
        Ok(Rule { peers, ports })
    }
}

fn parse_peer(p: &NetworkPolicyPeer, path: &str) -> Result<Peer, String> {
    if let Some(block) = &p.ip_block {
        if p.pod_selector.is_some() || p.namespace_selector.is_some() {
            return Err(format!("{path}: ipBlock may not be combined with podSelector or namespaceSelector"));
        }
        let cidr = parse_cidr(&block.cidr, &format!("{path}.ipBlock.cidr"))?;
        let mut except = Vec::new();
        for (i, e) in block.except.iter().flatten().enumerate() {
            let epath = format!("{path}.ipBlock.except[{i}]");
            let net = parse_cidr(e, &epath)?;
            if !cidr.contains(&net) || net.prefix_len() <= cidr.prefix_len() {
                return Err(format!("{epath}: {e} must be a strict subset of cidr {}", block.cidr));
            }
            except.push(net);
        }
        return Ok(Peer::IpBlock { cidr, except });
    }
    let namespaces = match &p.namespace_selector {
        Some(s) => Some(Selector::parse(s, &format!("{path}.namespaceSelector"))?),
        None => None,
    };
    let pods = match &p.pod_selector {
        Some(s) => Selector::parse(s, &format!("{path}.podSelector"))?,
        None if namespaces.is_some() => Selector::everything(),
        None => return Err(format!("{path}: must specify a podSelector, namespaceSelector or ipBlock")),
    };
    Ok(Peer::Pods { namespaces, pods })
}

/// A CIDR as the API accepts it; host bits are cleared as Go's ParseCIDR does.
fn parse_cidr(s: &str, path: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>().map(|n| n.trunc()).map_err(|_| format!("{path}: {s:?} is not a valid CIDR"))
}

fn parse_port(p: &NetworkPolicyPort, path: &str) -> Result<PortSpec, String> {
    let protocol = match p.protocol.as_deref() {
        None => Protocol::Tcp,
        Some(s) => Protocol::parse(s).ok_or_else(|| format!("{path}.protocol: unknown protocol {s:?} (want TCP, UDP or SCTP)"))?,
    };
    let port = match (&p.port, p.end_port) {
        (None, None) => PortMatch::All,
        (None, Some(_)) => return Err(format!("{path}.endPort: may not be set without port")),
        (Some(IntOrString::Int(n)), end) => {
            let first = port_number(*n, &format!("{path}.port"))?;
            let last = match end {
                None => first,
                Some(e) => {
                    let last = port_number(e, &format!("{path}.endPort"))?;
                    if last < first {
                        return Err(format!("{path}.endPort: {last} must be greater than or equal to port {first}"));
                    }
                    last
                }
            };
            PortMatch::Range(first, last)
        }
        (Some(IntOrString::String(name)), end) => {
            if end.is_some() {
                return Err(format!("{path}.endPort: may not be set when port is the named port {name:?}"));
            }
            if !valid_port_name(name) {
                return Err(format!("{path}.port: {name:?} is not a valid port name (1-15 lowercase letters, digits and '-', with a letter)"));
            }
            PortMatch::Named(name.clone())
        }
    };
    Ok(PortSpec { protocol, port })
}

fn port_number(n: i32, path: &str) -> Result<u16, String> {
    u16::try_from(n).ok().filter(|&p| p != 0).ok_or_else(|| format!("{path}: {n} is not a port number (1-65535)"))
}

/// IANA_SVC_NAME, as the API validates containerPort names.
fn valid_port_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Pods { namespaces: None, pods } => write!(f, "podSelector {pods}"),
            Peer::Pods { namespaces: Some(ns), pods } if pods.is_everything() => write!(f, "namespaceSelector {ns}"),
            Peer::Pods { namespaces: Some(ns), pods } => write!(f, "namespaceSelector {ns} and podSelector {pods}"),
            Peer::IpBlock { cidr, except } if except.is_empty() => write!(f, "ipBlock {cidr}"),
            Peer::IpBlock { cidr, except } => {
                write!(f, "ipBlock {cidr} except {}", except.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(","))
            }
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = self.protocol.as_str();
        match &self.port {
            PortMatch::All => write!(f, "{proto}/any"),
            PortMatch::Range(a, b) if a == b => write!(f, "{proto}/{a}"),
            PortMatch::Range(a, b) => write!(f, "{proto}/{a}-{b}"),
            PortMatch::Named(n) => write!(f, "{proto}/{n}"),
        }
    }
}

/// `from podSelector pod=b; ports TCP/80` (ingress) or `to ...` (egress).
impl Rule {
    pub fn describe(&self, egress: bool) -> String {
        let dir = if egress { "to" } else { "from" };
        let peers = if self.peers.is_empty() {
            format!("{dir} anywhere")
        } else {
            format!("{dir} {}", self.peers.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" or "))
        };
        let ports = if self.ports.is_empty() {
            "all ports".to_string()
        } else {
            format!("ports {}", self.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))
        };
        format!("{peers}; {ports}")
    }
}
