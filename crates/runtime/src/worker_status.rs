//! The pod's status as the worker posts it: computed by `pod_status` from the runs,
//! with conditions' `lastTransitionTime` moving only when their status flips, sent as a
//! strategic merge patch (conditions merge by type, so others' conditions, such as
//! readiness gates', are kept).

use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};

use crate::pod_status::{self, ContainerView, PodView};
use crate::worker::Worker;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Worker {
    pub(crate) fn view(&self) -> PodView<'_> {
        let spec = self.pod.spec.as_ref();
        let images: Vec<&str> = spec
            .map(|s| s.init_containers.iter().flatten().chain(s.containers.iter()).map(|c| c.image.as_deref().unwrap_or_default()).collect())
            .unwrap_or_default();
        let conditions = self.pod.status.as_ref().and_then(|s| s.conditions.as_ref());
        let readiness_gates = spec
            .and_then(|s| s.readiness_gates.as_ref())
            .into_iter()
            .flatten()
            .map(|g| {
                let status = conditions.and_then(|cs| cs.iter().find(|c| c.type_ == g.condition_type)).map(|c| c.status == "True");
                (g.condition_type.clone(), status)
            })
            .collect();
        PodView {
            restart_policy: spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always"),
            containers: self
                .runs
                .iter()
                .enumerate()
                .map(|(i, r)| ContainerView {
                    name: &r.name,
                    image: images.get(i).copied().unwrap_or_default(),
                    init: r.init,
                    sidecar: r.sidecar,
                    running: r.pid.is_some(),
                    ready: r.ready(),
                    started: r.started(),
                    restarts: r.restarts,
                    state: &r.state,
                    last_state: &r.last_state,
                    container_id: r.started_once.then(|| format!("weft://{}/{}", self.uid, r.name)),
                })
                .collect(),
            initialized: self.initialized,
            sandbox: self.netns.is_some(),
            readiness_gates,
        }
    }

    fn status(&mut self) -> Value {
        let view = self.view();
        let phase = self.final_phase.unwrap_or_else(|| pod_status::phase(&view));
        let conds = pod_status::conditions(&view, phase);
        let (init_statuses, statuses) = pod_status::container_statuses(&view);
        drop(view);
        let created = self.pod.metadata.creation_timestamp.as_ref().map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_else(now);
        let mut conditions = Vec::new();
        for c in conds.iter() {
            let t = match self.transitions.get(c.type_) {
                Some((s, t)) if *s == c.status => t.clone(),
                _ => {
                    let t = now();
                    self.transitions.insert(c.type_.to_string(), (c.status, t.clone()));
                    t
                }
            };
            // null removes a reason/message left from the previous status (strategic merge).
            conditions.push(json!({
                "type": c.type_, "status": if c.status { "True" } else { "False" },
                "lastProbeTime": null, "lastTransitionTime": t, "reason": c.reason, "message": c.message,
            }));
        }
        let mut st = json!({
            "phase": phase,
            "hostIP": self.sh.cfg.addresses.first(),
            "hostIPs": self.sh.cfg.addresses.iter().map(|a| json!({"ip": a})).collect::<Vec<_>>(),
            "startTime": created,
            "qosClass": self.pod.status.as_ref().and_then(|s| s.qos_class.clone()).unwrap_or_else(|| "BestEffort".into()),
            "conditions": conditions,
            "containerStatuses": statuses,
        });
        if !init_statuses.is_empty() {
            st["initContainerStatuses"] = json!(init_statuses);
        }
        if !self.ips.is_empty() && self.netns.is_some() {
            st["podIP"] = json!(self.ips[0]);
            st["podIPs"] = json!(self.ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>());
        }
        if let Some(e) = &self.sandbox_error {
            st["message"] = json!(e);
            st["reason"] = json!("SandboxCreateFailed");
        } else {
            st["message"] = Value::Null;
            st["reason"] = Value::Null;
        }
        st
    }

    /// Posts the pod's status when it changed.
    pub(crate) async fn post_status(&mut self) {
        let status = self.status();
        if status == self.last_status {
            return;
        }
        let (Some(ns), Some(name)) = (self.pod.metadata.namespace.clone(), self.pod.metadata.name.clone()) else { return };
        let api: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(self.sh.client.clone(), &ns);
        match api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(json!({"status": status}))).await {
            Ok(_) => self.last_status = status,
            Err(e) => tracing::debug!(pod = %self.name(), %e, "posting pod status"),
        }
    }
}
