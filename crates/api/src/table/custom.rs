//! Custom resources: the columns a CRD version declares in `additionalPrinterColumns`.
//!
//! As apiextensions-apiserver does: Name first, then each declared column, whose cell is
//! the first value its JSONPath selects, typed by the column's `type` (`integer`,
//! `number`, `boolean`, `string`, `date`). `date` cells are ages (`5m10s`), the same as
//! the built-in Age columns. A version without printer columns shows Name and Age.

use super::age::{human_duration, parse_time};
use super::jsonpath::JsonPath;
use super::{name_column, Column};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The columns of a custom resource, parsed once from its CRD version's
/// `additionalPrinterColumns`.
#[derive(Clone, Debug)]
pub struct CustomPrinter {
    columns: Vec<Column>,
    paths: Vec<JsonPath>,
}

impl CustomPrinter {
    /// Reads `additionalPrinterColumns`. Like kube, a column whose JSONPath does not parse
    /// ends the list there (CRD validation should have refused it).
    pub fn new(printer_columns: &[Value]) -> Self {
        let defaults;
        let printer_columns = if printer_columns.is_empty() {
            defaults = [
                json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
                               "description": "When the object was created, as the server's clock saw it."}),
            ];
            &defaults[..]
        } else {
            printer_columns
        };
        let mut columns = vec![name_column()];
        let mut paths = Vec::new();
        for pc in printer_columns {
            let text = |f: &str| pc.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            let json_path = text("jsonPath");
            let Ok(path) = JsonPath::parse(&json_path) else {
                break;
            };
            let description = match text("description") {
                d if d.is_empty() => format!("The custom resource's {json_path}"),
                d => d,
            };
            columns.push(Column {
                name: text("name"),
                type_: text("type"),
                format: text("format"),
                description,
                priority: pc.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
            });
            paths.push(path);
        }
        CustomPrinter { columns, paths }
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// One object's cells, matching [`CustomPrinter::columns`]. A path that selects nothing,
    /// or a value that does not fit the column's type, gives a null cell.
    pub fn row(&self, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let mut cells = vec![json!(crate::meta::name(obj))];
        for (column, path) in self.columns[1..].iter().zip(&self.paths) {
            let cell = match path.find(obj).first() {
                Some(value) => typed_cell(&column.type_, value, now),
                None => Value::Null,
            };
            cells.push(cell);
        }
        cells
    }
}

/// The columns for a custom resource version with these `additionalPrinterColumns`.
pub fn custom_columns(printer_columns: &[Value]) -> Vec<Column> {
    CustomPrinter::new(printer_columns).columns
}

/// One custom resource's cells for these `additionalPrinterColumns`, matching
/// [`custom_columns`].
pub fn custom_row(printer_columns: &[Value], obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    CustomPrinter::new(printer_columns).row(obj, now)
}

fn typed_cell(type_: &str, value: &Value, now: DateTime<Utc>) -> Value {
    match (type_, value) {
        (_, Value::Null) => Value::Null,
        ("string", v) => json!(go_print(v)),
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            // Go converts float64 to int64 by truncation.
            None => n
                .as_f64()
                .map(|f| json!(f.trunc() as i64))
                .unwrap_or(Value::Null),
        },
        ("number", Value::Number(n)) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => json!(date_cell(s, now)),
        _ => Value::Null,
    }
}

/// The age of a timestamp; `<unknown>` when it is empty or the zero time, `<invalid>`
/// when it is not a timestamp.
fn date_cell(s: &str, now: DateTime<Utc>) -> String {
    if s.is_empty() || s == "null" {
        return "<unknown>".into();
    }
    match parse_time(s) {
        Some(t) => human_duration(now - t),
        None if DateTime::parse_from_rfc3339(s).is_ok() => "<unknown>".into(),
        None => "<invalid>".into(),
    }
}

/// A value as kubectl's JSONPath prints it (Go's `%v` on decoded JSON): strings bare,
/// `map[k:v]` with sorted keys, `[a b]` for arrays.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(u)) => u.to_string(),
            _ => go_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_print).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut pairs: Vec<(&String, &Value)> = map.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = pairs
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect();
            format!("map[{}]", body.join(" "))
        }
    }
}

/// Go's `%v` for a float64: the shortest digits, in exponent form (`1.5e+06`, `1e-05`)
/// when the decimal exponent is below -4 or at least 6 (strconv's `%g` rule).
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return match f {
            f if f.is_nan() => "NaN".into(),
            f if f == f64::INFINITY => "+Inf".into(),
            f if f == f64::NEG_INFINITY => "-Inf".into(),
            _ => "0".into(),
        };
    }
    let sci = format!("{f:e}"); // shortest round-trip digits, e.g. "1.5e6"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        f.to_string()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;

    fn printer_columns() -> Vec<Value> {
        vec![
            json!({"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}),
            json!({"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status",
                   "description": "Whether the widget is ready."}),
            json!({"name": "Ratio", "type": "number", "jsonPath": ".status.ratio", "priority": 1}),
            json!({"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"}),
            json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
        ]
    }

    fn widget() -> Value {
        json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "gizmo", "creationTimestamp": ago(5 * 60 + 10)},
            "spec": {"replicas": 3, "paused": false},
            "status": {"ratio": 0.75, "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}]}
        })
    }

    #[test]
    fn printer_columns_follow_name_with_declared_type_format_and_priority() {
        let cols = custom_columns(&printer_columns());
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["Name", "Replicas", "Ready", "Ratio", "Paused", "Age"]
        );
        assert_eq!(cols[0].format, "name");
        assert_eq!(cols[1].type_, "integer");
        assert_eq!(cols[2].description, "Whether the widget is ready.");
        assert!(cols[1].description.contains(".spec.replicas"));
        assert_eq!(cols[3].priority, 1);
        assert_eq!(cols[5].type_, "date");
    }

    #[test]
    fn cells_are_typed_by_column_and_dates_shown_as_age() {
        assert_eq!(
            custom_row(&printer_columns(), &widget(), now()),
            vec![
                json!("gizmo"),
                json!(3),
                json!("False"),
                json!(0.75),
                json!(false),
                json!("5m10s")
            ]
        );
    }

    #[test]
    fn missing_or_mistyped_values_give_null_cells() {
        let obj =
            json!({"metadata": {"name": "bare"}, "spec": {"replicas": "three", "paused": "no"}});
        assert_eq!(
            custom_row(&printer_columns(), &obj, now()),
            vec![
                json!("bare"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
    }

    #[test]
    fn no_printer_columns_shows_name_and_age() {
        let cols = custom_columns(&[]);
        let names: Vec<(&str, &str)> = cols
            .iter()
            .map(|c| (c.name.as_str(), c.type_.as_str()))
            .collect();
        assert_eq!(names, [("Name", "string"), ("Age", "date")]);
        assert_eq!(
            custom_row(&[], &widget(), now()),
            vec![json!("gizmo"), json!("5m10s")]
        );
    }

    #[test]
    fn string_columns_print_numbers_lists_and_maps_like_kubectl() {
        let cols = vec![
            json!({"name": "Port", "type": "string", "jsonPath": ".spec.port"}),
            json!({"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts"}),
            json!({"name": "Selector", "type": "string", "jsonPath": ".spec.selector"}),
            json!({"name": "Scale", "type": "string", "jsonPath": ".spec.scale"}),
            json!({"name": "First", "type": "string", "jsonPath": ".spec.hosts[*]"}),
        ];
        let obj = json!({"metadata": {"name": "x"}, "spec": {
            "port": 8080, "hosts": ["a", "b"], "selector": {"tier": "web", "app": "shop"}, "scale": 1500000.0}});
        assert_eq!(
            custom_row(&cols, &obj, now()),
            vec![
                json!("x"),
                json!("8080"),
                json!("[a b]"),
                json!("map[app:shop tier:web]"),
                json!("1.5e+06"),
                json!("a")
            ]
        );
    }

    #[test]
    fn integer_column_truncates_fractions_and_bad_dates_are_invalid() {
        let cols = vec![
            json!({"name": "Count", "type": "integer", "jsonPath": ".spec.count"}),
            json!({"name": "Expires", "type": "date", "jsonPath": ".spec.expires"}),
            json!({"name": "Renewed", "type": "date", "jsonPath": ".spec.renewed"}),
        ];
        let obj = json!({"metadata": {"name": "x"}, "spec": {"count": 2.9, "expires": "next tuesday", "renewed": ""}});
        assert_eq!(
            custom_row(&cols, &obj, now()),
            vec![json!("x"), json!(2), json!("<invalid>"), json!("<unknown>")]
        );
    }

    #[test]
    fn unparseable_json_path_ends_the_column_list() {
        let cols = vec![
            json!({"name": "Good", "type": "string", "jsonPath": ".spec.a"}),
            json!({"name": "Bad", "type": "string", "jsonPath": ".spec[?("}),
            json!({"name": "After", "type": "string", "jsonPath": ".spec.b"}),
        ];
        let printer = CustomPrinter::new(&cols);
        assert_eq!(printer.columns().len(), 2);
        assert_eq!(
            printer.row(
                &json!({"metadata": {"name": "x"}, "spec": {"a": "A"}}),
                now()
            ),
            vec![json!("x"), json!("A")]
        );
    }

    #[test]
    fn floats_print_in_go_style() {
        assert_eq!(go_float(0.75), "0.75");
        assert_eq!(go_float(1.5e21), "1.5e+21");
        assert_eq!(go_float(123456.5), "123456.5");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5), "-2.5");
    }
}
