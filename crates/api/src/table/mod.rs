//! Server-side printing: the columns that `kubectl get` shows for each kind, as
//! kube-apiserver's table convertors produce them.

use crate::GroupKind;
use serde_json::{json, Value};

/// One column of a `meta.k8s.io/v1` Table.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: &'static str,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: &'static str,
    /// `name` for the name column, otherwise usually empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 = always shown, 1 = only with `-o wide`.
    pub priority: u8,
}

impl Column {
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.type_, "format": self.format, "description": self.description, "priority": self.priority})
    }
}

/// The columns for a kind.
pub fn columns(gk: &GroupKind) -> Vec<Column> {
    let _ = gk;
    vec![
        Column { name: "Name", type_: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 },
        Column { name: "Created At", type_: "date", format: "", description: "CreationTimestamp is a timestamp representing the server time when this object was created.", priority: 0 },
    ]
}

/// The cells of one object's row, matching [`columns`].
pub fn row(gk: &GroupKind, obj: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    let _ = (gk, now);
    vec![json!(crate::meta::name(obj)), obj.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null)]
}
