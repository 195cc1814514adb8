//! Container probes, the pure half: a probe spec compiled from the API (`Probe`) into
//! what to do (with ports and hosts resolved), and the kubelet's state machine over
//! results (initial values, success/failure thresholds, hold after a kill).
//! `probe_net`/`probe_exec` do the probing; `probe_run` runs the schedule.

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Readiness,
    Liveness,
    Startup,
}

impl Kind {
    /// As the kubelet writes it in events: "Readiness", "Liveness", "Startup".
    pub fn title(self) -> &'static str {
        match self {
            Kind::Readiness => "Readiness",
            Kind::Liveness => "Liveness",
            Kind::Startup => "Startup",
        }
    }

    /// The value a probe reports before it has run (upstream's initial values):
    /// not ready, alive, not started.
    pub fn initial(self) -> bool {
        matches!(self, Kind::Liveness)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpGet {
    pub scheme: Scheme,
    pub host: IpAddr,
    pub port: u16,
    /// Path and query, always starting with '/'.
    pub path: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Exec(Vec<String>),
    Http(HttpGet),
    Tcp { host: IpAddr, port: u16 },
    Grpc { host: IpAddr, port: u16, service: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds` of a liveness/startup probe: the grace of the
    /// kill it causes, instead of the pod's.
    pub kill_grace: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub kind: Kind,
    pub action: Action,
    pub timing: Timing,
}

/// One probe run's result, as upstream's prober classifies it.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Success,
    /// Success with something worth an event (e.g. a redirect to another host).
    Warning(String),
    Failure(String),
    /// The probe could not run (e.g. a named port the container does not have): the
    /// result is thrown away and the state does not change, as upstream.
    Error(String),
}

/// Compiles a container's probe. `pod_ip` is where httpGet/tcpSocket/grpc connect when
/// no `host` is given (the pod's first IP; the node's for hostNetwork pods). An `Err`
/// names the field that cannot work here.
pub fn compile(kind: Kind, p: &Probe, c: &Container, pod_ip: Option<IpAddr>) -> Result<Spec, String> {
    let timing = timing(p);
    let field = format!("containers[{}].{}Probe", c.name, kind.title().to_lowercase());
    let host = |h: Option<&String>, what: &str| -> Result<IpAddr, String> {
        match h.map(String::as_str).filter(|h| !h.is_empty()) {
            None => pod_ip.ok_or_else(|| format!("{field}.{what}: the pod has no IP yet")),
            Some(h) => h.trim_matches(|c| c == '[' || c == ']').parse().map_err(|_| {
                format!("{field}.{what}.host {h:?} is not an IP address: weft's prober does not resolve names; leave host empty (the pod's IP) or give an IP")
            }),
        }
    };
    let action = if let Some(e) = &p.exec {
        let cmd = e.command.clone().unwrap_or_default();
        if cmd.is_empty() {
            return Err(format!("{field}.exec.command is empty"));
        }
        Action::Exec(cmd)
    } else if let Some(h) = &p.http_get {
        let scheme = match h.scheme.as_deref().unwrap_or("HTTP") {
            "HTTP" => Scheme::Http,
            "HTTPS" => Scheme::Https,
            other => return Err(format!("{field}.httpGet.scheme {other:?} is not HTTP or HTTPS")),
        };
        let mut path = h.path.clone().unwrap_or_default();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        let headers = h.http_headers.iter().flatten().map(|hh| (hh.name.clone(), hh.value.clone())).collect();
        Action::Http(HttpGet { scheme, host: host(h.host.as_ref(), "httpGet")?, port: port(&h.port, c, &format!("{field}.httpGet.port"))?, path, headers })
    } else if let Some(t) = &p.tcp_socket {
        Action::Tcp { host: host(t.host.as_ref(), "tcpSocket")?, port: port(&t.port, c, &format!("{field}.tcpSocket.port"))? }
    } else if let Some(g) = &p.grpc {
        let n = u16::try_from(g.port).ok().filter(|p| *p > 0).ok_or_else(|| format!("{field}.grpc.port {} is not a port number", g.port))?;
        Action::Grpc { host: host(None, "grpc")?, port: n, service: g.service.clone().unwrap_or_default() }
    } else {
        return Err(format!("{field} has no action (exec, httpGet, tcpSocket or grpc)"));
    };
    Ok(Spec { kind, action, timing })
}

/// A probe's timing, with upstream's defaults for unset fields.
pub fn timing(p: &Probe) -> Timing {
    let secs = |v: Option<i32>, default: i32| Duration::from_secs(v.unwrap_or(default).max(0) as u64);
    Timing {
        initial_delay: secs(p.initial_delay_seconds, 0),
        period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
        timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
        success_threshold: p.success_threshold.unwrap_or(1).max(1) as u32,
        failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
        kill_grace: p.termination_grace_period_seconds.map(|s| Duration::from_secs(s.max(0) as u64)),
    }
}

/// A port by number, or by the name of one of the container's ports.
pub fn port(p: &IntOrString, c: &Container, field: &str) -> Result<u16, String> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).ok().filter(|n| *n > 0).ok_or_else(|| format!("{field} {n} is not a port number")),
        IntOrString::String(s) => {
            if let Ok(n) = s.parse::<u16>() {
                return Ok(n);
            }
            c.ports
                .iter()
                .flatten()
                .find(|cp| cp.name.as_deref() == Some(s.as_str()))
                .and_then(|cp| u16::try_from(cp.container_port).ok())
                .ok_or_else(|| format!("{field}: couldn't find port {s:?} in the container's ports"))
        }
    }
}

/// The kubelet's per-probe state: the reported result changes only after
/// `failureThreshold` failures or `successThreshold` successes in a row.
#[derive(Clone, Debug)]
pub struct Tracker {
    kind: Kind,
    success_threshold: u32,
    failure_threshold: u32,
    last: Option<bool>,
    run: u32,
    reported: bool,
}

impl Tracker {
    pub fn new(kind: Kind, timing: &Timing) -> Tracker {
        Tracker { kind, success_threshold: timing.success_threshold, failure_threshold: timing.failure_threshold, last: None, run: 0, reported: kind.initial() }
    }

    pub fn reported(&self) -> bool {
        self.reported
    }

    /// Records one run's result; returns the new reported value when it changes, or
    /// when a liveness/startup probe reaches its failure threshold (the container is
    /// then killed, and counting starts over for the next one).
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if self.last == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let threshold = if ok { self.success_threshold } else { self.failure_threshold };
        if self.run < threshold {
            return None;
        }
        let kills = !ok && self.kind != Kind::Readiness;
        if kills {
            self.run = 0;
            self.last = None;
            self.reported = self.kind.initial();
            return Some(false);
        }
        if self.reported == ok {
            return None;
        }
        self.reported = ok;
        Some(ok)
    }
}

/// The event text upstream writes for a failed (or warning, or erroring) run.
pub fn event_message(kind: Kind, outcome: &Outcome) -> Option<(&'static str, String)> {
    match outcome {
        Outcome::Success => None,
        Outcome::Warning(m) => Some((crate::events::WARNING, format!("{} probe warning: {m}", kind.title()))),
        Outcome::Failure(m) => Some((crate::events::WARNING, format!("{} probe failed: {m}", kind.title()))),
        Outcome::Error(m) => Some((crate::events::WARNING, format!("{} probe errored: {m}", kind.title()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(probe: serde_json::Value) -> Container {
        serde_json::from_value(json!({"name": "web", "ports": [{"name": "http", "containerPort": 8080}], "readinessProbe": probe})).unwrap()
    }

    fn compiled(kind: Kind, probe: serde_json::Value) -> Result<Spec, String> {
        let c = container(probe);
        compile(kind, c.readiness_probe.as_ref().unwrap(), &c, Some("10.244.1.5".parse().unwrap()))
    }

    #[test]
    fn http_get_defaults_to_the_pod_ip_and_resolves_named_ports() {
        let s = compiled(Kind::Readiness, json!({"httpGet": {"path": "healthz", "port": "http", "httpHeaders": [{"name": "X-A", "value": "1"}]}})).unwrap();
        assert_eq!(
            s.action,
            Action::Http(HttpGet { scheme: Scheme::Http, host: "10.244.1.5".parse().unwrap(), port: 8080, path: "/healthz".into(), headers: vec![("X-A".into(), "1".into())] })
        );
        assert_eq!(s.timing, Timing { initial_delay: Duration::ZERO, period: Duration::from_secs(10), timeout: Duration::from_secs(1), success_threshold: 1, failure_threshold: 3, kill_grace: None });
    }

    #[test]
    fn explicit_hosts_ports_and_timings_are_kept() {
        let s = compiled(
            Kind::Liveness,
            json!({"tcpSocket": {"port": 81, "host": "10.0.0.9"}, "initialDelaySeconds": 2, "periodSeconds": 1, "timeoutSeconds": 3, "failureThreshold": 1, "terminationGracePeriodSeconds": 5}),
        )
        .unwrap();
        assert_eq!(s.action, Action::Tcp { host: "10.0.0.9".parse().unwrap(), port: 81 });
        assert_eq!((s.timing.initial_delay, s.timing.period, s.timing.timeout), (Duration::from_secs(2), Duration::from_secs(1), Duration::from_secs(3)));
        assert_eq!((s.timing.failure_threshold, s.timing.kill_grace), (1, Some(Duration::from_secs(5))));
        let s = compiled(Kind::Readiness, json!({"httpGet": {"path": "/", "port": 443, "scheme": "HTTPS", "host": "[fd00::1]"}})).unwrap();
        let Action::Http(h) = s.action else { panic!() };
        assert_eq!((h.scheme, h.host), (Scheme::Https, "fd00::1".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn unknown_port_names_and_host_names_are_errors_that_name_the_field() {
        let e = compiled(Kind::Readiness, json!({"httpGet": {"path": "/", "port": "metrics"}})).unwrap_err();
        assert!(e.contains("containers[web].readinessProbe.httpGet.port") && e.contains("metrics"), "{e}");
        let e = compiled(Kind::Readiness, json!({"tcpSocket": {"port": 80, "host": "example.com"}})).unwrap_err();
        assert!(e.contains("tcpSocket.host") && e.contains("not an IP"), "{e}");
    }

    #[test]
    fn grpc_and_exec_compile() {
        let s = compiled(Kind::Startup, json!({"grpc": {"port": 9000, "service": "db"}})).unwrap();
        assert_eq!(s.action, Action::Grpc { host: "10.244.1.5".parse().unwrap(), port: 9000, service: "db".into() });
        let s = compiled(Kind::Readiness, json!({"exec": {"command": ["test", "-f", "/tmp/x"]}})).unwrap();
        assert_eq!(s.action, Action::Exec(vec!["test".into(), "-f".into(), "/tmp/x".into()]));
    }

    fn tracker(kind: Kind, success: u32, failure: u32) -> Tracker {
        let mut t = timing(&Probe::default());
        t.success_threshold = success;
        t.failure_threshold = failure;
        Tracker::new(kind, &t)
    }

    #[test]
    fn readiness_starts_not_ready_and_follows_thresholds() {
        let mut t = tracker(Kind::Readiness, 2, 3);
        assert!(!t.reported());
        assert_eq!(t.record(true), None, "one success of two");
        assert_eq!(t.record(true), Some(true));
        assert_eq!(t.record(true), None, "no change, no report");
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None, "a success breaks the failure run");
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
        assert!(!t.reported());
        assert_eq!(t.record(false), None, "readiness failures repeat without a new report");
    }

    #[test]
    fn liveness_starts_alive_and_reports_each_threshold_crossing_as_a_kill() {
        let mut t = tracker(Kind::Liveness, 1, 2);
        assert!(t.reported());
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
        // Counting starts over for the restarted container.
        assert!(t.reported());
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
    }

    #[test]
    fn startup_reports_started_once_and_kills_on_failure_threshold() {
        let mut t = tracker(Kind::Startup, 1, 3);
        assert!(!t.reported());
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), Some(true));
        let mut t = tracker(Kind::Startup, 1, 1);
        assert_eq!(t.record(false), Some(false));
    }

    #[test]
    fn event_messages_read_like_upstream() {
        let m = event_message(Kind::Liveness, &Outcome::Failure("HTTP probe failed with statuscode: 500".into())).unwrap();
        assert_eq!(m.1, "Liveness probe failed: HTTP probe failed with statuscode: 500");
        assert!(event_message(Kind::Readiness, &Outcome::Success).is_none());
    }
}
