//! Reading fields of untyped objects as Go's zero values would read them: a missing
//! string is "", a missing list is empty, a missing integer is absent.

use serde_json::{Map, Value};

static EMPTY: Vec<Value> = Vec::new();

/// The string at `key`, or "" when missing or not a string.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The list at `key`, or an empty list.
pub fn list_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).unwrap_or(&EMPTY)
}

/// The strings of the list at `key` (non-strings read as "").
pub fn strings_of<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    list_of(v, key).iter().map(|s| s.as_str().unwrap_or("")).collect()
}

pub fn map_of<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// Whether `key` holds something other than null.
pub fn is_set(v: &Value, key: &str) -> bool {
    v.get(key).map(|x| !x.is_null()).unwrap_or(false)
}

/// An integer field; JSON floats with no fraction count (YAML may produce them).
pub fn int(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
}

pub fn int_of(v: &Value, key: &str) -> Option<i64> {
    int(v.get(key))
}
