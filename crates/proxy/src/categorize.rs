//! Which endpoints each traffic policy may use, as upstream (kube-proxy's
//! CategorizeEndpoints, without topology hints): Ready endpoints, or when there are
//! none, those that are still serving while terminating — independently for the
//! Cluster and the Local policy.

use crate::endpoints::Endpoint;
use crate::service::ServicePort;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Categorized {
    /// Endpoints for Cluster traffic policy (empty when the port never uses it).
    pub cluster: Vec<Endpoint>,
    /// Endpoints on this node for Local traffic policy (empty when unused).
    pub local: Vec<Endpoint>,
    /// Any usable endpoint anywhere in the cluster.
    pub any: bool,
}

pub fn categorize(port: &ServicePort, endpoints: &[Endpoint]) -> Categorized {
    let mut c = Categorized::default();
    if endpoints.is_empty() {
        return c;
    }
    if port.uses_cluster_endpoints() {
        c.cluster = endpoints.iter().filter(|e| e.ready).cloned().collect();
        if c.cluster.is_empty() {
            c.cluster = endpoints
                .iter()
                .filter(|e| e.serving && e.terminating)
                .cloned()
                .collect();
        }
        c.any = !c.cluster.is_empty();
    }
    if port.uses_local_endpoints() {
        c.any |= endpoints
            .iter()
            .any(|e| e.ready || (e.serving && e.terminating));
        c.local = endpoints
            .iter()
            .filter(|e| e.local && e.ready)
            .cloned()
            .collect();
        if c.local.is_empty() {
            c.local = endpoints
                .iter()
                .filter(|e| e.local && e.serving && e.terminating)
                .cloned()
                .collect();
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(internal_local: bool, external_local: bool, node_port: u16) -> ServicePort {
        ServicePort { internal_local, external_local, node_port, ..crate::service::example_port() }
    }

    fn ep(last: u8, ready: bool, serving: bool, terminating: bool, local: bool) -> Endpoint {
        Endpoint {
            ip: format!("10.244.0.{last}").parse().unwrap(),
            port: 8080,
            ready,
            serving,
            terminating,
            local,
        }
    }

    #[test]
    fn ready_endpoints_win_over_terminating_ones() {
        let eps = [
            ep(1, true, true, false, false),
            ep(2, false, true, true, true),
        ];
        let c = categorize(&port(false, false, 0), &eps);
        assert_eq!(c.cluster, vec![eps[0].clone()]);
        assert!(c.local.is_empty() && c.any);
    }

    #[test]
    fn serving_terminating_endpoints_are_used_only_when_nothing_is_ready() {
        let eps = [
            ep(1, false, true, true, false),
            ep(2, false, false, true, false),
            ep(3, false, false, false, false),
        ];
        let c = categorize(&port(false, false, 0), &eps);
        assert_eq!(c.cluster, vec![eps[0].clone()]);
        assert!(c.any);
    }

    #[test]
    fn not_ready_and_not_serving_means_no_endpoints() {
        let eps = [ep(1, false, false, false, true)];
        let c = categorize(&port(false, false, 0), &eps);
        assert!(c.cluster.is_empty() && !c.any);
    }

    #[test]
    fn internal_local_uses_only_this_nodes_endpoints_but_knows_about_remote_ones() {
        let eps = [
            ep(1, true, true, false, false),
            ep(2, true, true, false, true),
        ];
        let c = categorize(&port(true, false, 0), &eps);
        assert!(
            c.cluster.is_empty(),
            "a ClusterIP-only port with iTP Local never uses cluster endpoints"
        );
        assert_eq!(c.local, vec![eps[1].clone()]);
        let remote_only = [ep(1, true, true, false, false)];
        let c = categorize(&port(true, false, 0), &remote_only);
        assert!(c.local.is_empty() && c.any);
    }

    #[test]
    fn external_local_keeps_cluster_endpoints_for_internal_traffic() {
        let eps = [
            ep(1, true, true, false, false),
            ep(2, false, true, true, true),
        ];
        let c = categorize(&port(false, true, 30080), &eps);
        assert_eq!(c.cluster, vec![eps[0].clone()]);
        assert_eq!(
            c.local,
            vec![eps[1].clone()],
            "local falls back to serving-terminating on its own"
        );
    }
}
