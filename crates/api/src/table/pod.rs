//! Pods: READY, STATUS, RESTARTS as `kubectl get pods` computes them from container states.

use super::age::{age, parse_time};
use super::{age_column, arr_at, name_column, or_none, str_at, Column};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub(super) fn columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "Ready",
            "string",
            "How many of the pod's containers are ready, of how many.",
        ),
        Column::new(
            "Status",
            "string",
            "The pod's phase, or the reason its containers are not running.",
        ),
        Column::new(
            "Restarts",
            "string",
            "Container restarts, and how long ago the last one was.",
        ),
        age_column(),
        Column::new("IP", "string", "The pod's first IP address.").wide(),
        Column::new("Node", "string", "The node the pod is bound to.").wide(),
        Column::new(
            "Nominated Node",
            "string",
            "The node the scheduler expects to preempt pods on for this one.",
        )
        .wide(),
        Column::new(
            "Readiness Gates",
            "string",
            "How many of the pod's readiness gates are met.",
        )
        .wide(),
    ]
}

pub(super) fn row(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let s = summarize(pod);
    let restarts = match s.last_restart {
        Some(t) if s.restarts != 0 => {
            format!("{} ({} ago)", s.restarts, super::human_duration(now - t))
        }
        _ => s.restarts.to_string(),
    };
    let ip = arr_at(pod, "/status/podIPs")
        .first()
        .map(|p| str_at(p, "/ip"))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| str_at(pod, "/status/podIP"));
    vec![
        json!(crate::meta::name(pod)),
        json!(format!("{}/{}", s.ready, s.total)),
        json!(s.reason),
        json!(restarts),
        json!(age(pod, now)),
        json!(or_none(ip)),
        json!(or_none(str_at(pod, "/spec/nodeName"))),
        json!(or_none(str_at(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates(pod)),
    ]
}

/// Finished pods are marked `Completed` on their row.
pub(super) fn conditions(pod: &Value) -> Vec<Value> {
    let (reason, message) = match phase(pod) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return Vec::new(),
    };
    vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
}

/// What the READY, STATUS and RESTARTS cells are made of.
#[derive(Debug, PartialEq)]
struct Summary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<DateTime<Utc>>,
}

/// The phase; a pod is always created Pending, so an unset phase reads as Pending.
fn phase(pod: &Value) -> &str {
    match str_at(pod, "/status/phase") {
        "" => "Pending",
        p => p,
    }
}

fn summarize(pod: &Value) -> Summary {
    let init_specs = arr_at(pod, "/spec/initContainers");
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_at(c, "/name") == name && str_at(c, "/restartPolicy") == "Always")
    };

    let phase = phase(pod);
    let mut reason = match str_at(pod, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let conditions = arr_at(pod, "/status/conditions");
    if conditions
        .iter()
        .any(|c| str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    // Sidecars (restartable init containers) count as containers of the pod.
    let total = arr_at(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| str_at(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart = None;
    let mut sidecar_restarts = 0;
    let mut sidecar_last_restart = None;

    let init_statuses = arr_at(pod, "/status/initContainerStatuses");
    let mut initializing = false;
    for (i, status) in init_statuses.iter().enumerate() {
        let count = status
            .get("restartCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        restarts += count;
        later(&mut last_restart, last_termination(status));
        let sidecar = is_sidecar(str_at(status, "/name"));
        if sidecar {
            sidecar_restarts += count;
            later(&mut sidecar_last_restart, last_termination(status));
        }
        let terminated = status.pointer("/state/terminated");
        let waiting_reason = str_at(status, "/state/waiting/reason");
        let started = status
            .get("started")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if terminated.is_some_and(|t| exit_code(t) == 0) {
            continue;
        }
        if sidecar && started {
            if is_ready(status) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match str_at(t, "/reason") {
                "" => format!("Init:{}", signal_or_exit(t)),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{}/{}", i, init_specs.len())
        };
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .any(|c| str_at(c, "/type") == "Initialized" && str_at(c, "/status") == "True");
    if !initializing || initialized {
        // Once initialized, only sidecar restarts still matter among init containers.
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        // Walk backwards so that the first container's state wins, as upstream does.
        for status in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts += status
                .get("restartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            later(&mut last_restart, last_termination(status));
            let waiting_reason = str_at(status, "/state/waiting/reason");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = status.pointer("/state/terminated") {
                reason = match str_at(t, "/reason") {
                    "" => signal_or_exit(t),
                    r => r.to_string(),
                };
            } else if is_ready(status) && status.pointer("/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose finished container reports Completed is still running if another
        // container is.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }

    if crate::meta::deletion_timestamp(pod).is_some() {
        if str_at(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }

    Summary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

fn is_ready(status: &Value) -> bool {
    status
        .get("ready")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn exit_code(terminated: &Value) -> i64 {
    terminated
        .get("exitCode")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `Signal:9` when a signal ended the container, otherwise `ExitCode:1`.
fn signal_or_exit(terminated: &Value) -> String {
    match terminated
        .get("signal")
        .and_then(Value::as_i64)
        .unwrap_or(0)
    {
        0 => format!("ExitCode:{}", exit_code(terminated)),
        sig => format!("Signal:{sig}"),
    }
}

/// When the container's previous run ended.
fn last_termination(status: &Value) -> Option<DateTime<Utc>> {
    status
        .pointer("/lastState/terminated/finishedAt")
        .and_then(Value::as_str)
        .and_then(parse_time)
}

fn later(acc: &mut Option<DateTime<Utc>>, t: Option<DateTime<Utc>>) {
    if let Some(t) = t {
        if acc.is_none_or(|a| a < t) {
            *acc = Some(t);
        }
    }
}

/// `true/total` readiness gates, `<none>` when the pod has none.
fn readiness_gates(pod: &Value) -> String {
    let gates = arr_at(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = arr_at(pod, "/status/conditions");
    let met = gates
        .iter()
        .filter(|g| {
            let ty = str_at(g, "/conditionType");
            conditions
                .iter()
                .find(|c| str_at(c, "/type") == ty)
                .is_some_and(|c| str_at(c, "/status") == "True")
        })
        .count();
    format!("{met}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;

    fn cells(pod: &Value) -> Vec<Value> {
        row(pod, now())
    }

    fn running(name: &str, ready: bool, restarts: i64) -> Value {
        json!({"name": name, "ready": ready, "restartCount": restarts, "started": true,
               "state": {"running": {"startedAt": ago(3600)}}})
    }

    fn pod(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": ago(3 * 86400 + 4 * 3600)},
               "spec": spec, "status": status})
    }

    fn two_containers() -> Value {
        json!({"containers": [{"name": "app", "image": "nginx"}, {"name": "sidecar", "image": "envoy"}], "nodeName": "node-1"})
    }

    #[test]
    fn running_pod_with_two_containers_and_restarts_shows_last_restart_age() {
        let mut app = running("app", true, 3);
        app["lastState"] =
            json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(310)}});
        let mut sidecar = running("sidecar", true, 1);
        sidecar["lastState"] = json!({"terminated": {"exitCode": 137, "finishedAt": ago(7200)}});
        let p = pod(
            two_containers(),
            json!({"phase": "Running", "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [app, sidecar]}),
        );
        assert_eq!(
            cells(&p),
            vec![
                json!("web-0"),
                json!("2/2"),
                json!("Running"),
                json!("4 (5m10s ago)"),
                json!("3d4h"),
                json!("10.244.1.7"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn one_unready_container_counts_in_ready_column() {
        let p = pod(
            two_containers(),
            json!({"phase": "Running", "containerStatuses": [running("app", true, 0), running("sidecar", false, 0)]}),
        );
        let c = cells(&p);
        assert_eq!(c[1], json!("1/2"));
        assert_eq!(c[2], json!("Running"));
        assert_eq!(c[3], json!("0"));
    }

    #[test]
    fn restarts_without_a_recorded_termination_show_only_the_count() {
        let p = pod(
            two_containers(),
            json!({"phase": "Running", "containerStatuses": [running("app", true, 2)]}),
        );
        assert_eq!(cells(&p)[3], json!("2"));
    }

    #[test]
    fn waiting_container_reason_replaces_the_phase() {
        let p = pod(
            two_containers(),
            json!({"phase": "Pending", "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}},
                {"name": "sidecar", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
            ]}),
        );
        assert_eq!(cells(&p)[1..3], [json!("0/2"), json!("ContainerCreating")]);
    }

    #[test]
    fn crash_looping_container_shows_crashloopbackoff_and_restart_age() {
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 7,
                 "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(45)}}}
            ]}),
        );
        assert_eq!(
            cells(&p)[1..4],
            [
                json!("0/1"),
                json!("CrashLoopBackOff"),
                json!("7 (45s ago)")
            ]
        );
    }

    #[test]
    fn first_container_state_wins_over_later_ones() {
        let p = pod(
            two_containers(),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "app", "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}},
                {"name": "sidecar", "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}),
        );
        assert_eq!(cells(&p)[2], json!("ImagePullBackOff"));
    }

    #[test]
    fn pending_init_container_shows_init_progress() {
        let p = pod(
            json!({"initContainers": [{"name": "migrate"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Pending",
                   "initContainerStatuses": [{"name": "migrate", "restartCount": 0, "state": {"running": {}}}],
                   "containerStatuses": [{"name": "app", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        assert_eq!(cells(&p)[1..3], [json!("0/1"), json!("Init:0/1")]);
    }

    #[test]
    fn second_of_two_init_containers_running_shows_init_1_of_2() {
        let p = pod(
            json!({"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "state": {"waiting": {"reason": "PodInitializing"}}}
            ]}),
        );
        assert_eq!(cells(&p)[2], json!("Init:1/2"));
    }

    #[test]
    fn failing_init_container_shows_its_reason_or_exit_code() {
        let with = |term: Value| {
            pod(
                json!({"initContainers": [{"name": "migrate"}], "containers": [{"name": "app"}]}),
                json!({"phase": "Pending", "initContainerStatuses": [
                    {"name": "migrate", "restartCount": 2, "state": {"terminated": term}}]}),
            )
        };
        assert_eq!(
            cells(&with(json!({"exitCode": 1, "reason": "Error"})))[2],
            json!("Init:Error")
        );
        assert_eq!(
            cells(&with(json!({"exitCode": 3})))[2],
            json!("Init:ExitCode:3")
        );
        assert_eq!(
            cells(&with(json!({"exitCode": 137, "signal": 9})))[2],
            json!("Init:Signal:9")
        );
        // Init container restarts count while the pod is still initializing.
        assert_eq!(
            cells(&with(json!({"exitCode": 1, "reason": "Error"})))[3],
            json!("2")
        );
    }

    #[test]
    fn init_container_stuck_waiting_shows_its_waiting_reason() {
        let p = pod(
            json!({"initContainers": [{"name": "migrate"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "migrate", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        );
        assert_eq!(cells(&p)[2], json!("Init:CrashLoopBackOff"));
    }

    #[test]
    fn started_sidecar_counts_as_a_ready_container_and_its_restarts_stay() {
        let p = pod(
            json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Running",
                   "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                   "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                                              "state": {"running": {}}}],
                   "containerStatuses": [running("app", true, 0)]}),
        );
        assert_eq!(
            cells(&p)[1..4],
            [json!("2/2"), json!("Running"), json!("1")]
        );
    }

    #[test]
    fn finished_init_container_restarts_are_dropped_once_initialized() {
        let p = pod(
            json!({"initContainers": [{"name": "migrate"}], "containers": [{"name": "app"}]}),
            json!({"phase": "Running",
                   "conditions": [{"type": "Initialized", "status": "True"}],
                   "initContainerStatuses": [{"name": "migrate", "restartCount": 4,
                                              "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                   "containerStatuses": [running("app", true, 0)]}),
        );
        assert_eq!(cells(&p)[3], json!("0"));
    }

    #[test]
    fn succeeded_pod_shows_completed_and_a_completed_row_condition() {
        let p = pod(
            json!({"containers": [{"name": "job"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [
                {"name": "job", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        assert_eq!(cells(&p)[1..3], [json!("0/1"), json!("Completed")]);
        let conds = conditions(&p);
        assert_eq!(conds[0]["type"], "Completed");
        assert_eq!(conds[0]["reason"], "Succeeded");
        assert!(conditions(&pod(json!({}), json!({"phase": "Running"}))).is_empty());
    }

    #[test]
    fn completed_container_beside_a_running_one_reads_running_or_not_ready() {
        let status = |ready_condition: &str| {
            json!({"phase": "Running",
                   "conditions": [{"type": "Ready", "status": ready_condition}],
                   "containerStatuses": [
                       running("app", true, 0),
                       {"name": "sidecar", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})
        };
        assert_eq!(
            cells(&pod(two_containers(), status("True")))[2],
            json!("Running")
        );
        assert_eq!(
            cells(&pod(two_containers(), status("False")))[2],
            json!("NotReady")
        );
    }

    #[test]
    fn container_terminated_without_reason_shows_signal_or_exit_code() {
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
        );
        assert_eq!(cells(&p)[2], json!("Signal:9"));
    }

    #[test]
    fn deleted_running_pod_shows_terminating() {
        let mut p = pod(
            two_containers(),
            json!({"phase": "Running", "containerStatuses": [running("app", true, 0)]}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(5));
        assert_eq!(cells(&p)[2], json!("Terminating"));
    }

    #[test]
    fn deleted_finished_pod_keeps_its_final_status() {
        let mut p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(5));
        assert_eq!(cells(&p)[2], json!("Completed"));
    }

    #[test]
    fn deleted_pod_on_lost_node_shows_unknown() {
        let mut p = pod(
            two_containers(),
            json!({"phase": "Running", "reason": "NodeLost"}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(5));
        assert_eq!(cells(&p)[2], json!("Unknown"));
    }

    #[test]
    fn evicted_pod_shows_status_reason() {
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Failed", "reason": "Evicted"}),
        );
        assert_eq!(cells(&p)[2], json!("Evicted"));
    }

    #[test]
    fn scheduling_gated_pod_says_so() {
        let p = pod(
            json!({"containers": [{"name": "app"}], "schedulingGates": [{"name": "example.com/quota"}]}),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(cells(&p)[2], json!("SchedulingGated"));
    }

    #[test]
    fn unscheduled_new_pod_is_pending_with_none_in_wide_columns() {
        let p = json!({"metadata": {"name": "new", "creationTimestamp": ago(30)}, "spec": {"containers": [{"name": "app"}]}});
        assert_eq!(
            cells(&p),
            vec![
                json!("new"),
                json!("0/1"),
                json!("Pending"),
                json!("0"),
                json!("30s"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn readiness_gates_count_true_conditions() {
        let p = pod(
            json!({"containers": [{"name": "app"}], "readinessGates": [
                {"conditionType": "example.com/lb-ready"}, {"conditionType": "example.com/dns-ready"}],
                "nodeName": "n1"}),
            json!({"phase": "Running", "nominatedNodeName": "n2", "conditions": [
                {"type": "example.com/lb-ready", "status": "True"},
                {"type": "example.com/dns-ready", "status": "False"}]}),
        );
        let c = cells(&p);
        assert_eq!(c[7], json!("n2"));
        assert_eq!(c[8], json!("1/2"));
    }

    #[test]
    fn pod_ip_falls_back_to_the_singular_field() {
        let p = pod(json!({}), json!({"phase": "Running", "podIP": "10.0.0.9"}));
        assert_eq!(cells(&p)[5], json!("10.0.0.9"));
    }
}
