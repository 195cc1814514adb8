//! Which containers to start now, as the kubelet orders them (pure): init containers
//! one at a time in order, each to completion (a sidecar, `restartPolicy: Always`, only
//! until it has started, then it keeps running beside the rest), then the app
//! containers and sidecars together. Back-off timing is the caller's.

/// A container's state, as far as ordering cares.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Slot {
    pub init: bool,
    pub sidecar: bool,
    pub running: bool,
    /// Started (startup probe passed, postStart done) in its current run.
    pub started: bool,
    /// Has started at least once in this pod.
    pub started_once: bool,
    /// Final exit code when it will not run again (`state.terminated`).
    pub terminated: Option<i64>,
}

#[derive(Debug, PartialEq)]
pub struct Starts {
    /// Indexes of the containers to start (if their back-off allows).
    pub start: Vec<usize>,
    /// Every init container is done: the app containers may run.
    pub initialized: bool,
}

/// `initialized` is sticky: once the pod has been initialized, init containers do not
/// run again (sidecars are restarted as needed).
pub fn starts(slots: &[Slot], initialized: bool) -> Starts {
    let idle = |s: &Slot| !s.running && s.terminated.is_none();
    let mut start = Vec::new();
    if !initialized {
        for (i, s) in slots.iter().enumerate().filter(|(_, s)| s.init) {
            if s.sidecar {
                if idle(s) {
                    start.push(i);
                    if !s.started_once {
                        return Starts { start, initialized: false };
                    }
                } else if s.running && !s.started && !s.started_once {
                    return Starts { start, initialized: false };
                }
                continue;
            }
            match s.terminated {
                Some(0) => continue,
                Some(_) => return Starts { start, initialized: false },
                None if s.running => return Starts { start, initialized: false },
                None => {
                    start.push(i);
                    return Starts { start, initialized: false };
                }
            }
        }
    }
    for (i, s) in slots.iter().enumerate() {
        if (!s.init || s.sidecar) && idle(s) {
            start.push(i);
        }
    }
    Starts { start, initialized: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> Slot {
        Slot { init: true, ..Default::default() }
    }
    fn sidecar() -> Slot {
        Slot { init: true, sidecar: true, ..Default::default() }
    }
    fn app() -> Slot {
        Slot::default()
    }
    fn running(mut s: Slot) -> Slot {
        s.running = true;
        s.started_once = true;
        s
    }
    fn exited(mut s: Slot, code: i64) -> Slot {
        s.terminated = Some(code);
        s.started_once = true;
        s
    }

    #[test]
    fn init_containers_run_one_at_a_time_in_order() {
        assert_eq!(starts(&[init(), init(), app()], false), Starts { start: vec![0], initialized: false });
        assert_eq!(starts(&[running(init()), init(), app()], false), Starts { start: vec![], initialized: false });
        assert_eq!(starts(&[exited(init(), 0), init(), app()], false), Starts { start: vec![1], initialized: false });
        assert_eq!(starts(&[exited(init(), 0), exited(init(), 0), app(), app()], false), Starts { start: vec![2, 3], initialized: true });
    }

    #[test]
    fn a_failed_init_container_holds_the_pod() {
        assert_eq!(starts(&[exited(init(), 1), init(), app()], false), Starts { start: vec![], initialized: false });
        // Waiting in back-off (not terminated for good): it is started again.
        let mut backoff = init();
        backoff.started_once = true;
        assert_eq!(starts(&[backoff, init(), app()], false), Starts { start: vec![0], initialized: false });
    }

    #[test]
    fn a_sidecar_must_start_before_the_next_init_container_and_then_keeps_running() {
        assert_eq!(starts(&[sidecar(), init(), app()], false), Starts { start: vec![0], initialized: false });
        let mut not_started = running(sidecar());
        not_started.started_once = false;
        assert_eq!(starts(&[not_started, init(), app()], false), Starts { start: vec![], initialized: false });
        let mut up = running(sidecar());
        up.started = true;
        assert_eq!(starts(&[up, init(), app()], false), Starts { start: vec![1], initialized: false });
        assert_eq!(starts(&[up, exited(init(), 0), app()], false), Starts { start: vec![2], initialized: true });
    }

    #[test]
    fn once_initialized_sidecars_and_app_containers_restart_and_init_containers_do_not() {
        let mut crashed_sidecar = sidecar();
        crashed_sidecar.started_once = true;
        let mut crashed_app = app();
        crashed_app.started_once = true;
        assert_eq!(starts(&[crashed_sidecar, init(), crashed_app], true), Starts { start: vec![0, 2], initialized: true });
        assert_eq!(starts(&[exited(init(), 0), exited(app(), 0)], true), Starts { start: vec![], initialized: true });
    }
}
