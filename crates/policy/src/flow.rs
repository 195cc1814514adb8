//! Policy verdict flow records: one per new connection that a policy judged, as the
//! enforcer logged it (NFLOG group [`crate::plan::FLOW_LOG_GROUP`]), with the pods at
//! both ends and the policies that decided it, from the same model the enforcer is
//! compiled from. Stored and exported as JSON lines; `weft observe` prints them.

use crate::evaluate::{Query, RuleRef, Side, Verdict};
use crate::model::{Cluster, Protocol};
use crate::plan::FlowMark;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Egress,
    Ingress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowVerdict {
    Allowed,
    Denied,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }
    }
}

impl FlowVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowVerdict::Allowed => "allowed",
            FlowVerdict::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<FlowVerdict> {
        match s {
            "allowed" => Some(FlowVerdict::Allowed),
            "denied" => Some(FlowVerdict::Denied),
            _ => None,
        }
    }
}

/// One judged connection attempt, as one JSON line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// When the packet was logged, RFC 3339 in UTC with milliseconds (sorts as text).
    pub time: String,
    /// The node whose enforcer judged it: the source pod's for egress, the
    /// destination pod's for ingress.
    pub node: String,
    pub direction: Direction,
    pub verdict: FlowVerdict,
    /// `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6`, or the IP protocol number.
    pub protocol: String,
    pub src_ip: IpAddr,
    /// `namespace/name` of the pod with the source address, if any.
    pub src_pod: Option<String>,
    pub src_port: Option<u16>,
    /// The destination after Service DNAT: the pod's address.
    pub dst_ip: IpAddr,
    pub dst_pod: Option<String>,
    pub dst_port: Option<u16>,
    /// What decided it on this side: for allowed, the rules that allow it
    /// (`ns/policy ingress[i]`); for denied, the policies that isolate the pod
    /// (`ns/policy`). Empty when the model no longer agrees with the logged verdict
    /// (a policy changed in between) or the protocol is not one policies name.
    pub policies: Vec<String>,
}

/// The packet facts a record is made of (the logged packet's 5-tuple).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
}

/// `ns/policy ingress[i]`.
pub fn rule_text(r: &RuleRef) -> String {
    format!("{}/{} {}[{}]", r.namespace, r.policy, if r.egress { "egress" } else { "ingress" }, r.index)
}

/// The name of an IP protocol number as records print it.
pub fn protocol_name(n: u8) -> String {
    match n {
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        n => match [Protocol::Tcp, Protocol::Udp, Protocol::Sctp].into_iter().find(|p| p.number() == n) {
            Some(p) => p.as_str().into(),
            None => n.to_string(),
        },
    }
}

impl FlowKey {
    /// The policy query for this packet, when its protocol is one policies name
    /// (TCP, UDP, SCTP) and it has a destination port.
    pub fn query(&self) -> Option<Query> {
        let protocol = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp].into_iter().find(|p| p.number() == self.protocol)?;
        Some(Query { src: self.src, dst: self.dst, protocol, port: self.dst_port? })
    }
}

impl FlowRecord {
    /// The record of a packet the enforcer logged with `mark` on `node`, judged by
    /// the model: `verdict` is the model's evaluation of [`FlowKey::query`] (None
    /// when there is none), used for the pods and the deciding policies.
    pub fn new(node: &str, mark: FlowMark, at: SystemTime, key: &FlowKey, verdict: Option<&Verdict>) -> FlowRecord {
        let side = verdict.map(|v| if mark.egress() { &v.egress } else { &v.ingress });
        let policies = match (mark.allowed(), side) {
            (true, Some(Side::Allowed { by })) => by.iter().map(rule_text).collect(),
            (false, Some(Side::Denied { isolated_by })) => isolated_by.iter().map(|(ns, name)| format!("{ns}/{name}")).collect(),
            _ => Vec::new(),
        };
        FlowRecord {
            time: rfc3339_millis(at),
            node: node.to_string(),
            direction: if mark.egress() { Direction::Egress } else { Direction::Ingress },
            verdict: if mark.allowed() { FlowVerdict::Allowed } else { FlowVerdict::Denied },
            protocol: protocol_name(key.protocol),
            src_ip: key.src,
            src_pod: verdict.and_then(|v| v.src_pod.as_ref()).map(|k| k.to_string()),
            src_port: key.src_port,
            dst_ip: key.dst,
            dst_pod: verdict.and_then(|v| v.dst_pod.as_ref()).map(|k| k.to_string()),
            dst_port: key.dst_port,
            policies,
        }
    }

    /// [`FlowRecord::new`] with the verdict evaluated on `cluster` now. Pods are
    /// named from the model even for protocols that policies do not name.
    pub fn judge(cluster: &Cluster, node: &str, mark: FlowMark, at: SystemTime, key: &FlowKey) -> FlowRecord {
        let verdict = key.query().map(|q| cluster.evaluate(&q));
        let mut r = FlowRecord::new(node, mark, at, key, verdict.as_ref());
        if verdict.is_none() {
            r.src_pod = cluster.pod_by_ip(key.src).map(|p| p.key.to_string());
            r.dst_pod = cluster.pod_by_ip(key.dst).map(|p| p.key.to_string());
        }
        r
    }

    /// `TIME NODE DIRECTION VERDICT PROTO SRC:sport -> DST:dport by POLICY, ...`,
    /// where an end is `ns/pod(ip)` or the bare address.
    pub fn text(&self) -> String {
        let end = |pod: &Option<String>, ip: &IpAddr, port: Option<u16>| {
            let who = match pod {
                Some(p) => format!("{p}({})", bracketed(ip)),
                None => bracketed(ip),
            };
            match port {
                Some(port) => format!("{who}:{port}"),
                None => who,
            }
        };
        let by = if self.policies.is_empty() { String::new() } else { format!(" by {}", self.policies.join(", ")) };
        format!(
            "{} {} {} {} {} {} -> {}{by}",
            self.time,
            self.node,
            self.direction.as_str(),
            self.verdict.as_str(),
            self.protocol,
            end(&self.src_pod, &self.src_ip, self.src_port),
            end(&self.dst_pod, &self.dst_ip, self.dst_port),
        )
    }
}

fn bracketed(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// `2026-11-22T09:03:16.123Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How long the same attempt (5-tuple and mark) is recorded once: denied TCP SYNs
/// are retransmitted after 1 s, and UDP without replies is new on every packet.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(2);
/// Attempts remembered at most; beyond it the oldest window is forgotten early.
const DEDUP_CAPACITY: usize = 100_000;

/// Suppresses repeats of one attempt within [`DEDUP_WINDOW`] of its first record.
/// Bounded: entries older than the window are dropped as time passes.
#[derive(Debug, Default)]
pub struct Deduper {
    seen: HashMap<(FlowKey, FlowMark), Instant>,
    last_prune: Option<Instant>,
}

impl Deduper {
    pub fn new() -> Deduper {
        Deduper::default()
    }

    /// Whether to record this attempt seen at `now` (false: a repeat within the
    /// window of the recorded one).
    pub fn admit(&mut self, key: FlowKey, mark: FlowMark, now: Instant) -> bool {
        self.prune(now);
        match self.seen.get(&(key, mark)) {
            Some(first) if now.saturating_duration_since(*first) < DEDUP_WINDOW => false,
            _ => {
                self.seen.insert((key, mark), now);
                true
            }
        }
    }

    /// Attempts remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn prune(&mut self, now: Instant) {
        let due = self.last_prune.is_none_or(|t| now.saturating_duration_since(t) >= DEDUP_WINDOW);
        if due || self.seen.len() >= DEDUP_CAPACITY {
            self.seen.retain(|_, first| now.saturating_duration_since(*first) < DEDUP_WINDOW);
            if self.seen.len() >= DEDUP_CAPACITY {
                // A flood of distinct attempts within one window: start over rather
                // than grow; the cost is a repeat record, never a lost one.
                self.seen.clear();
            }
            self.last_prune = Some(now);
        }
    }
}

#[cfg(test)]
mod tests;
