//! Server-side printing: the columns that `kubectl get` shows for each kind, as
//! kube-apiserver's table convertors produce them.
//!
//! The apiserver always prints the wide form: every row carries the cells of the
//! priority-1 columns too, and kubectl hides those unless asked for `-o wide`. So
//! [`row`] returns exactly one cell per column of [`columns`].

mod age;
mod cluster;
mod config;
mod custom;
mod endpoints;
mod event;
mod jsonpath;
mod labels;
mod networking;
mod pod;
mod service;
mod workloads;

pub use age::human_duration;
pub use custom::{custom_columns, custom_row, CustomPrinter};

use crate::GroupKind;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// One column of a `meta.k8s.io/v1` Table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// `name` for the name column, otherwise usually empty.
    pub format: String,
    pub description: String,
    /// 0 = always shown, 1 and above = only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// A priority-0 column with no format.
    pub fn new(name: &str, type_: &str, description: &str) -> Self {
        Column {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: description.into(),
            priority: 0,
        }
    }

    /// The same column, shown only with `-o wide`.
    pub fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

    /// The same column, marked as holding the object's name.
    pub fn name_format(mut self) -> Self {
        self.format = "name".into();
        self
    }

    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.type_, "format": self.format, "description": self.description, "priority": self.priority})
    }
}

const NAME_DESCRIPTION: &str = "Name is unique within a namespace; it identifies the object.";
const CREATED_DESCRIPTION: &str = "When the object was created, as the server's clock saw it.";

/// The `Name` column every printer starts with.
pub(crate) fn name_column() -> Column {
    Column::new("Name", "string", NAME_DESCRIPTION).name_format()
}

/// The `Age` column: a human duration since creation.
pub(crate) fn age_column() -> Column {
    Column::new("Age", "string", CREATED_DESCRIPTION)
}

/// A kind's printer: its columns and how one object fills them.
struct Printer {
    columns: fn() -> Vec<Column>,
    row: fn(&Value, DateTime<Utc>) -> Vec<Value>,
}

fn printer(gk: &GroupKind) -> Option<Printer> {
    let p = |columns, row| Some(Printer { columns, row });
    match (gk.group.as_str(), gk.kind.as_str()) {
        ("", "Pod") => p(pod::columns, pod::row),
        ("", "Service") => p(service::columns, service::row),
        ("", "Endpoints") => p(endpoints::endpoints_columns, endpoints::endpoints_row),
        ("discovery.k8s.io", "EndpointSlice") => p(endpoints::slice_columns, endpoints::slice_row),
        ("", "Namespace") => p(cluster::namespace_columns, cluster::namespace_row),
        ("", "Node") => p(cluster::node_columns, cluster::node_row),
        ("coordination.k8s.io", "Lease") => p(cluster::lease_columns, cluster::lease_row),
        ("", "ConfigMap") => p(config::config_map_columns, config::config_map_row),
        ("", "Secret") => p(config::secret_columns, config::secret_row),
        ("", "ServiceAccount") => p(config::service_account_columns, config::service_account_row),
        ("", "Event") => p(event::columns, event::row),
        ("networking.k8s.io", "NetworkPolicy") => p(
            networking::network_policy_columns,
            networking::network_policy_row,
        ),
        ("networking.k8s.io", "Ingress") => p(networking::ingress_columns, networking::ingress_row),
        ("networking.k8s.io", "IngressClass") => p(
            networking::ingress_class_columns,
            networking::ingress_class_row,
        ),
        ("apps", "Deployment") => p(workloads::deployment_columns, workloads::deployment_row),
        ("apps", "ReplicaSet") => p(workloads::replica_set_columns, workloads::replica_set_row),
        // CustomResourceDefinitions, like every kind without a printer of its own, get
        // the generic table: Name and Created At.
        _ => None,
    }
}

/// True when `gk` has a printer of its own rather than the generic Name + Created At.
pub fn has_printer(gk: &GroupKind) -> bool {
    printer(gk).is_some()
}

/// The columns for a kind.
pub fn columns(gk: &GroupKind) -> Vec<Column> {
    match printer(gk) {
        Some(p) => (p.columns)(),
        None => default_columns(),
    }
}

/// The cells of one object's row, matching [`columns`].
pub fn row(gk: &GroupKind, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match printer(gk) {
        Some(p) => (p.row)(obj, now),
        None => default_row(obj),
    }
}

/// The row's `conditions`: kube marks pods that have finished (Succeeded or Failed) as
/// `Completed`, which kubectl uses to tell finished rows apart. Empty for everything else.
pub fn row_conditions(gk: &GroupKind, obj: &Value) -> Vec<Value> {
    if gk.is_core("Pod") {
        pod::conditions(obj)
    } else {
        Vec::new()
    }
}

/// The generic table of kinds without a printer: Name and the creation time as RFC 3339.
fn default_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new("Created At", "date", CREATED_DESCRIPTION),
    ]
}

fn default_row(obj: &Value) -> Vec<Value> {
    let created = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(age::parse_time)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        // Go formats its zero time when the field is unset.
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    vec![json!(crate::meta::name(obj)), json!(created)]
}

// Small accessors shared by the printers. Untyped objects may lack any field, and the
// printers read a missing field as Go reads a zero value.

/// The string at a JSON pointer, or `""`.
pub(crate) fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The integer at a JSON pointer, or 0.
pub(crate) fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The array at a JSON pointer, or an empty slice.
pub(crate) fn arr_at<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The number of entries of the object at a JSON pointer, or 0.
pub(crate) fn len_at(obj: &Value, pointer: &str) -> usize {
    match obj.pointer(pointer) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

/// `s`, or `<none>` when it is empty.
pub(crate) fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.into()
    }
}

/// The `Containers` and `Images` cells of a pod template: names and images, comma-joined.
pub(crate) fn container_cells(template_spec: Option<&Value>) -> (String, String) {
    let containers = template_spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `a,b,c + 4 more...` for a list cut at three; `rest` is how many were left off.
pub(crate) fn list_with_more(shown: &[String], rest: usize) -> String {
    let joined = shown.join(",");
    if rest > 0 {
        format!("{joined} + {rest} more...")
    } else {
        joined
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use chrono::{DateTime, Utc};

    /// A fixed "now" for tests: 2024-05-01T12:00:00Z.
    pub fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The RFC 3339 time `secs` seconds before [`now`].
    pub fn ago(secs: i64) -> String {
        (now() - chrono::TimeDelta::seconds(secs))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::now;
    use super::*;

    const ALL_KINDS: &[(&str, &str)] = &[
        ("", "Pod"),
        ("", "Service"),
        ("", "Endpoints"),
        ("", "Namespace"),
        ("", "Node"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ServiceAccount"),
        ("", "Event"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "IngressClass"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("coordination.k8s.io", "Lease"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("example.com", "Widget"),
    ];

    #[test]
    fn every_kind_has_one_cell_per_column_even_for_a_bare_object() {
        for (group, kind) in ALL_KINDS {
            let gk = GroupKind::new(group, kind);
            let cols = columns(&gk);
            let cells = row(&gk, &json!({"metadata": {"name": "x"}}), now());
            assert_eq!(cols.len(), cells.len(), "{gk}");
        }
    }

    #[test]
    fn every_kind_has_exactly_one_name_formatted_column() {
        for (group, kind) in ALL_KINDS {
            let gk = GroupKind::new(group, kind);
            let names = columns(&gk).iter().filter(|c| c.format == "name").count();
            assert_eq!(names, 1, "{gk}");
        }
    }

    #[test]
    fn unknown_kind_gets_name_and_created_at_in_rfc3339_utc() {
        let gk = GroupKind::new("example.com", "Widget");
        let cols: Vec<Value> = columns(&gk).iter().map(Column::to_json).collect();
        assert_eq!(cols[0]["name"], "Name");
        assert_eq!(cols[0]["format"], "name");
        assert_eq!(cols[1]["name"], "Created At");
        assert_eq!(cols[1]["type"], "date");
        let obj =
            json!({"metadata": {"name": "w1", "creationTimestamp": "2024-05-01T14:00:00+02:00"}});
        assert_eq!(
            row(&gk, &obj, now()),
            vec![json!("w1"), json!("2024-05-01T12:00:00Z")]
        );
    }

    #[test]
    fn crd_listing_uses_the_generic_table() {
        let gk = GroupKind::new("apiextensions.k8s.io", "CustomResourceDefinition");
        assert!(!has_printer(&gk));
        let names: Vec<String> = columns(&gk).into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Created At"]);
        let obj = json!({"metadata": {"name": "widgets.example.com"}});
        assert_eq!(row(&gk, &obj, now())[1], json!("0001-01-01T00:00:00Z"));
    }

    #[test]
    fn column_json_carries_priority_for_wide_columns() {
        let c = Column::new("IP", "string", "d").wide();
        assert_eq!(
            c.to_json(),
            json!({"name": "IP", "type": "string", "format": "", "description": "d", "priority": 1})
        );
    }

    #[test]
    fn list_with_more_counts_what_was_left_off() {
        let shown = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(list_with_more(&shown, 0), "a,b,c");
        assert_eq!(list_with_more(&shown, 4), "a,b,c + 4 more...");
    }
}
