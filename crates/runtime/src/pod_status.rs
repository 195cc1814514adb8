//! A pod's status from its containers' states, as the kubelet computes it (pure):
//! the phase (upstream's getPhase, init containers and sidecars included), the
//! container statuses, and the conditions with their reasons and messages.
//! Transition times are the worker's (they change only when a status flips).

use serde_json::{json, Value};

/// One container as the worker knows it.
pub struct ContainerView<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub init: bool,
    /// An init container with `restartPolicy: Always`.
    pub sidecar: bool,
    pub running: bool,
    pub ready: bool,
    pub started: bool,
    pub restarts: u32,
    pub state: &'a Value,
    pub last_state: &'a Value,
    pub container_id: Option<String>,
}

pub struct PodView<'a> {
    pub restart_policy: &'a str,
    /// Init containers first, in order, then the app containers.
    pub containers: Vec<ContainerView<'a>>,
    /// Every init container has completed (or, for sidecars, started) once.
    pub initialized: bool,
    pub sandbox: bool,
    /// The pod's readiness gates and the status of their conditions (None: absent).
    pub readiness_gates: Vec<(String, Option<bool>)>,
}

/// A condition without its transition time.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
}

fn exit_code(state: &Value) -> Option<i64> {
    state.pointer("/terminated/exitCode").and_then(Value::as_i64)
}

/// Whether a regular init container is done (exited 0), or a sidecar has started.
pub fn init_done(c: &ContainerView) -> bool {
    if c.sidecar {
        c.running && c.started
    } else {
        exit_code(c.state) == Some(0)
    }
}

/// upstream's getPhase.
pub fn phase(v: &PodView) -> &'static str {
    if !v.initialized {
        let failed = v.containers.iter().filter(|c| c.init && !c.sidecar).any(|c| {
            exit_code(c.state).is_some_and(|e| e != 0) || (c.state.get("waiting").is_some() && exit_code(c.last_state).is_some_and(|e| e != 0))
        });
        return if failed && v.restart_policy == "Never" { "Failed" } else { "Pending" };
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in v.containers.iter().filter(|c| !c.init) {
        if c.running {
            running += 1;
        } else if let Some(e) = exit_code(c.state) {
            stopped += 1;
            if e == 0 {
                succeeded += 1;
            }
        } else if exit_code(c.last_state).is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match v.restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        }
    } else {
        "Pending"
    }
}

/// The pod's conditions (PodScheduled is the scheduler's and is left alone).
pub fn conditions(v: &PodView, phase: &str) -> Vec<Condition> {
    let names = |f: &dyn Fn(&ContainerView) -> bool| v.containers.iter().filter(|c| f(c)).map(|c| c.name).collect::<Vec<_>>().join(" ");
    let terminal = phase == "Succeeded" || phase == "Failed";
    let incomplete = names(&|c| c.init && !init_done(c));
    let unready = names(&|c| (!c.init || c.sidecar) && !(c.ready && v.initialized));
    let containers_ready = unready.is_empty() && !terminal;
    let cond = |type_, status: bool, reason: Option<String>, message: Option<String>| Condition { type_, status, reason: (!status).then_some(reason).flatten(), message: (!status).then_some(message).flatten() };
    let not_ready_reason = if terminal { "PodCompleted" } else { "ContainersNotReady" };
    let not_ready_message = (!terminal).then(|| format!("containers with unready status: [{unready}]"));
    let gate_problem = v.readiness_gates.iter().find_map(|(t, s)| match s {
        Some(true) => None,
        None => Some(format!("corresponding condition of pod readiness gate {t:?} does not exist.")),
        Some(false) => Some(format!("the status of pod readiness gate {t:?} is not \"True\", but False")),
    });
    let ready = if !containers_ready {
        cond("Ready", false, Some(not_ready_reason.into()), not_ready_message.clone())
    } else if let Some(m) = gate_problem {
        cond("Ready", false, Some("ReadinessGatesNotReady".into()), Some(m))
    } else {
        cond("Ready", true, None, None)
    };
    vec![
        cond("PodReadyToStartContainers", v.sandbox, None, None),
        cond("Initialized", v.initialized, Some("ContainersNotInitialized".into()), Some(format!("containers with incomplete status: [{incomplete}]"))),
        ready,
        cond("ContainersReady", containers_ready, Some(not_ready_reason.into()), not_ready_message),
    ]
}

/// `containerStatuses` and `initContainerStatuses`.
pub fn container_statuses(v: &PodView) -> (Vec<Value>, Vec<Value>) {
    let mut init = Vec::new();
    let mut app = Vec::new();
    for c in &v.containers {
        let (ready, started) = if c.init && !c.sidecar { (exit_code(c.state) == Some(0), c.running) } else { (c.ready && c.running, c.started && c.running) };
        let mut s = json!({
            "name": c.name, "image": c.image, "imageID": "",
            "ready": ready, "started": started, "restartCount": c.restarts,
            "state": c.state, "lastState": c.last_state,
        });
        if let Some(id) = &c.container_id {
            s["containerID"] = json!(id);
        }
        if c.init {
            init.push(s);
        } else {
            app.push(s);
        }
    }
    (init, app)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct C {
        name: &'static str,
        init: bool,
        sidecar: bool,
        running: bool,
        ready: bool,
        state: Value,
        last: Value,
    }

    fn c(name: &'static str, state: Value) -> C {
        let running = state.get("running").is_some();
        C { name, init: false, sidecar: false, running, ready: running, state, last: json!({}) }
    }

    fn init(name: &'static str, state: Value) -> C {
        C { init: true, ..c(name, state) }
    }

    fn view<'a>(policy: &'a str, cs: &'a [C], initialized: bool) -> PodView<'a> {
        PodView {
            restart_policy: policy,
            containers: cs
                .iter()
                .map(|c| ContainerView {
                    name: c.name,
                    image: "img",
                    init: c.init,
                    sidecar: c.sidecar,
                    running: c.running,
                    ready: c.ready,
                    started: c.running,
                    restarts: 0,
                    state: &c.state,
                    last_state: &c.last,
                    container_id: None,
                })
                .collect(),
            initialized,
            sandbox: true,
            readiness_gates: vec![],
        }
    }

    fn running() -> Value {
        json!({"running": {"startedAt": "t"}})
    }
    fn exited(code: i64) -> Value {
        json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}})
    }
    fn waiting(reason: &str) -> Value {
        json!({"waiting": {"reason": reason}})
    }

    fn get<'a>(conds: &'a [Condition], t: &str) -> &'a Condition {
        conds.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn initializing_pods_are_pending_and_say_which_init_containers_are_incomplete() {
        let cs = [init("a", exited(0)), init("b", running()), c("app", waiting("PodInitializing"))];
        let v = view("Always", &cs, false);
        assert_eq!(phase(&v), "Pending");
        let conds = conditions(&v, "Pending");
        let i = get(&conds, "Initialized");
        assert_eq!((i.status, i.reason.as_deref(), i.message.as_deref()), (false, Some("ContainersNotInitialized"), Some("containers with incomplete status: [b]")));
        assert_eq!(get(&conds, "Ready").message.as_deref(), Some("containers with unready status: [app]"));
    }

    #[test]
    fn a_failed_init_container_fails_the_pod_only_with_restart_policy_never() {
        let cs = [init("a", exited(1)), c("app", waiting("PodInitializing"))];
        assert_eq!(phase(&view("Never", &cs, false)), "Failed");
        assert_eq!(phase(&view("OnFailure", &cs, false)), "Pending");
        let mut backoff = init("a", waiting("CrashLoopBackOff"));
        backoff.last = exited(2);
        let cs = [backoff, c("app", waiting("PodInitializing"))];
        assert_eq!(phase(&view("Always", &cs, false)), "Pending");
    }

    #[test]
    fn app_phases_follow_upstream() {
        assert_eq!(phase(&view("Always", &[c("a", running()), c("b", waiting("ContainerCreating"))], true)), "Pending");
        assert_eq!(phase(&view("Always", &[c("a", running())], true)), "Running");
        assert_eq!(phase(&view("Always", &[c("a", exited(0))], true)), "Running");
        assert_eq!(phase(&view("Never", &[c("a", exited(0)), c("b", exited(0))], true)), "Succeeded");
        assert_eq!(phase(&view("Never", &[c("a", exited(0)), c("b", exited(3))], true)), "Failed");
        assert_eq!(phase(&view("OnFailure", &[c("a", exited(3))], true)), "Running");
        let mut crashing = c("a", waiting("CrashLoopBackOff"));
        crashing.last = exited(1);
        assert_eq!(phase(&view("Always", &[crashing], true)), "Running");
    }

    #[test]
    fn readiness_needs_every_container_ready_and_terminal_pods_say_pod_completed() {
        let mut unready = c("web", running());
        unready.ready = false;
        let cs = [unready, c("side", running())];
        let conds = conditions(&view("Always", &cs, true), "Running");
        let r = get(&conds, "Ready");
        assert_eq!((r.status, r.reason.as_deref(), r.message.as_deref()), (false, Some("ContainersNotReady"), Some("containers with unready status: [web]")));
        assert!(!get(&conds, "ContainersReady").status);
        let cs = [c("web", running())];
        assert!(get(&conditions(&view("Always", &cs, true), "Running"), "Ready").status);
        let cs = [c("job", exited(0))];
        let conds = conditions(&view("Never", &cs, true), "Succeeded");
        assert_eq!(get(&conds, "Ready").reason.as_deref(), Some("PodCompleted"));
    }

    #[test]
    fn readiness_gates_hold_ready_but_not_containers_ready() {
        let cs = [c("web", running())];
        let mut v = view("Always", &cs, true);
        v.readiness_gates = vec![("example.com/lb".into(), None)];
        let conds = conditions(&v, "Running");
        assert!(get(&conds, "ContainersReady").status);
        let r = get(&conds, "Ready");
        assert_eq!((r.status, r.reason.as_deref()), (false, Some("ReadinessGatesNotReady")));
        v.readiness_gates = vec![("example.com/lb".into(), Some(true))];
        assert!(get(&conditions(&v, "Running"), "Ready").status);
    }

    #[test]
    fn sidecars_count_for_readiness_and_completed_init_containers_are_ready() {
        let mut side = init("proxy", running());
        side.sidecar = true;
        side.ready = false;
        let cs = [init("setup", exited(0)), side, c("app", running())];
        let v = view("Always", &cs, true);
        assert_eq!(phase(&v), "Running");
        assert_eq!(get(&conditions(&v, "Running"), "Ready").message.as_deref(), Some("containers with unready status: [proxy]"));
        let (init_st, app_st) = container_statuses(&v);
        assert_eq!((init_st[0]["ready"].clone(), init_st[0]["started"].clone()), (json!(true), json!(false)));
        assert_eq!(init_st[1]["ready"], json!(false));
        assert_eq!(app_st[0]["ready"], json!(true));
    }
}
