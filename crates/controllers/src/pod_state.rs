//! What controllers read off a Pod: readiness, availability, termination, IPs.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the Ready condition last became True, if it is True (epoch if unknown).
fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let cond = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    (cond.status == "True").then(|| cond.last_transition_time.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Succeeded and Failed pods never run again.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Counts toward a ReplicaSet's replicas: neither finished nor being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && !is_terminating(pod)
}

/// Available = ready for at least `min_ready_seconds`. When ready but not yet
/// available, also returns how long until it will be, so the caller can look again.
pub fn availability(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> (bool, Option<std::time::Duration>) {
    let Some(since) = ready_since(pod) else { return (false, None) };
    if min_ready_seconds <= 0 {
        return (true, None);
    }
    let ready_for = now.as_second() - since.as_second();
    if ready_for >= i64::from(min_ready_seconds) {
        (true, None)
    } else {
        (false, Some(std::time::Duration::from_secs((i64::from(min_ready_seconds) - ready_for) as u64)))
    }
}

/// The pod's IPs, from `status.podIPs` (or the older single `status.podIP`).
pub fn ips(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = pod.status.as_ref() else { return vec![] };
    let mut out: Vec<IpAddr> = status
        .pod_ips
        .as_ref()
        .map(|ips| ips.iter().filter_map(|i| i.ip.parse().ok()).collect())
        .unwrap_or_default();
    if out.is_empty() {
        out.extend(status.pod_ip.as_deref().and_then(|i| i.parse::<IpAddr>().ok()));
    }
    out
}

pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

pub fn is_controlled_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    controller_ref(meta).is_some_and(|r| r.uid == owner_uid)
}

#[cfg(test)]
pub mod fixtures {
    //! Small builders shared by the controllers' decision tests.
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodIP, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::collections::BTreeMap;

    pub fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()),
                creation_timestamp: Some(Time(Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus { phase: Some("Pending".into()), ..Default::default() }),
        }
    }

    pub fn with_ips(mut p: Pod, ips: &[&str]) -> Pod {
        let st = p.status.get_or_insert_with(Default::default);
        st.pod_ip = ips.first().map(|s| s.to_string());
        st.pod_ips = Some(ips.iter().map(|ip| PodIP { ip: ip.to_string() }).collect());
        st.phase = Some("Running".into());
        p
    }

    pub fn ready(mut p: Pod, ready: bool) -> Pod {
        let st = p.status.get_or_insert_with(Default::default);
        st.conditions = Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }]);
        p
    }

    pub fn on_node(mut p: Pod, node: &str) -> Pod {
        p.spec.get_or_insert_with(Default::default).node_name = Some(node.into());
        p
    }

    pub fn terminating(mut p: Pod) -> Pod {
        p.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        p
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn a_pod_ready_for_less_than_min_ready_seconds_is_not_yet_available() {
        let p = ready(pod("a", &[]), true);
        let now = Timestamp::from_second(10).unwrap();
        assert_eq!(availability(&p, 0, now), (true, None));
        assert_eq!(availability(&p, 5, now), (true, None));
        assert_eq!(availability(&p, 30, now), (false, Some(std::time::Duration::from_secs(20))));
        assert_eq!(availability(&ready(pod("b", &[]), false), 0, now), (false, None));
    }

    #[test]
    fn pod_ips_fall_back_to_the_single_pod_ip() {
        let mut p = pod("a", &[]);
        p.status.as_mut().unwrap().pod_ip = Some("10.0.0.1".into());
        assert_eq!(ips(&p), vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        let p = with_ips(pod("b", &[]), &["10.0.0.2", "fd00::2"]);
        assert_eq!(ips(&p).len(), 2);
    }
}
