//! core/v1 Events: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, and more with `-o wide`.

use super::age::since;
use super::{name_column, str_at, Column};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub(super) fn columns() -> Vec<Column> {
    vec![
        Column::new("Last Seen", "string", "When the event was last observed."),
        Column::new("Type", "string", "Normal or Warning."),
        Column::new(
            "Reason",
            "string",
            "A short, machine-readable reason for the event.",
        ),
        Column::new(
            "Object",
            "string",
            "The object the event is about, as kind/name.",
        ),
        Column::new(
            "Subobject",
            "string",
            "The part of the object the event is about, e.g. a container.",
        )
        .wide(),
        Column::new(
            "Source",
            "string",
            "The component (and host) that reported the event.",
        )
        .wide(),
        Column::new("Message", "string", "What happened, for humans."),
        Column::new("First Seen", "string", "When the event was first observed.").wide(),
        Column::new(
            "Count",
            "string",
            "How many times the event has been observed.",
        )
        .wide(),
        name_column().wide(),
    ]
}

pub(super) fn row(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first_seen = if has_time(ev, "/firstTimestamp") {
        since(ev.pointer("/firstTimestamp"), now)
    } else {
        since(ev.pointer("/eventTime"), now)
    };
    let mut last_seen = if has_time(ev, "/lastTimestamp") {
        since(ev.pointer("/lastTimestamp"), now)
    } else {
        first_seen.clone()
    };
    let mut count = ev.get("count").and_then(Value::as_i64).unwrap_or(0);
    if let Some(series) = ev.get("series").filter(|s| s.is_object()) {
        last_seen = since(series.get("lastObservedTime"), now);
        count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
    } else if count == 0 {
        // Events written through events.k8s.io carry no count when they happened once.
        count = 1;
    }
    let kind = str_at(ev, "/involvedObject/kind").to_lowercase();
    let object = match str_at(ev, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    vec![
        json!(last_seen),
        json!(str_at(ev, "/type")),
        json!(str_at(ev, "/reason")),
        json!(object),
        json!(str_at(ev, "/involvedObject/fieldPath")),
        json!(source(ev)),
        json!(str_at(ev, "/message").trim()),
        json!(first_seen),
        json!(count),
        json!(crate::meta::name(ev)),
    ]
}

fn has_time(ev: &Value, pointer: &str) -> bool {
    ev.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(super::age::parse_time)
        .is_some()
}

/// `component, host`, falling back to the reporting controller and instance.
fn source(ev: &Value) -> String {
    let first = |a: &str, b: &str| -> String {
        let a = str_at(ev, a);
        if a.is_empty() {
            str_at(ev, b).to_string()
        } else {
            a.to_string()
        }
    };
    let component = first("/source/component", "/reportingComponent");
    let host = first("/source/host", "/reportingInstance");
    if host.is_empty() {
        component
    } else {
        format!("{component}, {host}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;

    #[test]
    fn pod_event_shows_ages_object_and_wide_source() {
        let ev = json!({
            "metadata": {"name": "web-0.17c2a3b4d5e6f708", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(3600), "lastTimestamp": ago(65), "count": 12
        });
        assert_eq!(
            row(&ev, now()),
            vec![
                json!("65s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-0"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting failed container"),
                json!("60m"),
                json!(12),
                json!("web-0.17c2a3b4d5e6f708")
            ]
        );
    }

    #[test]
    fn new_style_event_uses_event_time_series_and_reporting_controller() {
        let ev = json!({
            "metadata": {"name": "svc.1"},
            "involvedObject": {"kind": "Service", "name": "web"},
            "reason": "EnsuredLoadBalancer", "type": "Normal", "message": "ok",
            "eventTime": "2024-05-01T11:50:00.000000Z",
            "series": {"count": 4, "lastObservedTime": "2024-05-01T11:59:00.000000Z"},
            "reportingComponent": "weft-lb", "reportingInstance": "weft-0"
        });
        let c = row(&ev, now());
        assert_eq!(c[0], json!("60s"));
        assert_eq!(c[5], json!("weft-lb, weft-0"));
        assert_eq!(c[7], json!("10m"));
        assert_eq!(c[8], json!(4));
    }

    #[test]
    fn singleton_event_without_times_counts_one_and_reads_unknown() {
        let ev = json!({"metadata": {"name": "n.1"}, "involvedObject": {"kind": "Node"}, "source": {"component": "weft"}});
        let c = row(&ev, now());
        assert_eq!(c[0], json!("<unknown>"));
        assert_eq!(c[3], json!("node"));
        assert_eq!(c[5], json!("weft"));
        assert_eq!(c[8], json!(1));
    }
}
