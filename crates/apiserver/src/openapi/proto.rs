//! The protobuf form of a Swagger 2.0 document (gnostic's `openapi.v2.Document`), which
//! is the only form client-go's `OpenAPISchema()` decodes. Only the messages a schema
//! document needs are written: Document, Info, Paths (empty), Definitions and Schema.

use serde_json::{Map, Value};

/// Encodes a Swagger 2.0 document (`swagger`, `info`, `definitions`) as `openapi.v2.Document`.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, 1, doc["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Vec::new();
    string(&mut info, 1, doc["info"]["title"].as_str().unwrap_or(""));
    string(&mut info, 2, doc["info"]["version"].as_str().unwrap_or(""));
    message(&mut out, 2, &info);
    message(&mut out, 8, &[]);
    let mut defs = Vec::new();
    if let Some(d) = doc["definitions"].as_object() {
        for (name, s) in d {
            message(&mut defs, 1, &named_schema(name, s));
        }
    }
    message(&mut out, 9, &defs);
    out
}

fn named_schema(name: &str, s: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, 1, name);
    message(&mut out, 2, &schema(s));
    out
}

/// `openapi.v2.Schema`; keys without a place in it (v3-only keywords) are dropped.
fn schema(s: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(o) = s.as_object() else { return out };
    for (k, v) in o {
        match (k.as_str(), v) {
            ("$ref", Value::String(x)) => string(&mut out, 1, x),
            ("format", Value::String(x)) => string(&mut out, 2, x),
            ("title", Value::String(x)) => string(&mut out, 3, x),
            ("description", Value::String(x)) => string(&mut out, 4, x),
            ("default", x) => message(&mut out, 5, &any(x)),
            ("multipleOf", Value::Number(n)) => double(&mut out, 6, n.as_f64().unwrap_or(0.0)),
            ("maximum", Value::Number(n)) => double(&mut out, 7, n.as_f64().unwrap_or(0.0)),
            ("exclusiveMaximum", Value::Bool(b)) => boolean(&mut out, 8, *b),
            ("minimum", Value::Number(n)) => double(&mut out, 9, n.as_f64().unwrap_or(0.0)),
            ("exclusiveMinimum", Value::Bool(b)) => boolean(&mut out, 10, *b),
            ("maxLength", Value::Number(n)) => int(&mut out, 11, n.as_i64().unwrap_or(0)),
            ("minLength", Value::Number(n)) => int(&mut out, 12, n.as_i64().unwrap_or(0)),
            ("pattern", Value::String(x)) => string(&mut out, 13, x),
            ("maxItems", Value::Number(n)) => int(&mut out, 14, n.as_i64().unwrap_or(0)),
            ("minItems", Value::Number(n)) => int(&mut out, 15, n.as_i64().unwrap_or(0)),
            ("uniqueItems", Value::Bool(b)) => boolean(&mut out, 16, *b),
            ("maxProperties", Value::Number(n)) => int(&mut out, 17, n.as_i64().unwrap_or(0)),
            ("minProperties", Value::Number(n)) => int(&mut out, 18, n.as_i64().unwrap_or(0)),
            ("required", Value::Array(a)) => a.iter().filter_map(Value::as_str).for_each(|r| string(&mut out, 19, r)),
            ("enum", Value::Array(a)) => a.iter().for_each(|e| message(&mut out, 20, &any(e))),
            ("additionalProperties", x) => {
                let mut item = Vec::new();
                match x {
                    Value::Bool(b) => boolean_always(&mut item, 2, *b),
                    other => message(&mut item, 1, &schema(other)),
                }
                message(&mut out, 21, &item);
            }
            ("type", Value::String(t)) => {
                let mut item = Vec::new();
                string(&mut item, 1, t);
                message(&mut out, 22, &item);
            }
            ("items", x @ Value::Object(_)) => {
                let mut item = Vec::new();
                message(&mut item, 1, &schema(x));
                message(&mut out, 23, &item);
            }
            ("allOf", Value::Array(a)) => a.iter().for_each(|x| message(&mut out, 24, &schema(x))),
            ("properties", Value::Object(props)) => message(&mut out, 25, &properties(props)),
            ("readOnly", Value::Bool(b)) => boolean(&mut out, 27, *b),
            ("example", x) => message(&mut out, 30, &any(x)),
            (ext, x) if ext.starts_with("x-") => {
                let mut named = Vec::new();
                string(&mut named, 1, ext);
                message(&mut named, 2, &any(x));
                message(&mut out, 31, &named);
            }
            _ => {}
        }
    }
    out
}

fn properties(props: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, s) in props {
        message(&mut out, 1, &named_schema(name, s));
    }
    out
}

/// `openapi.v2.Any` with the value as YAML text; JSON is YAML, and gnostic's readers parse it so.
fn any(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, 2, &v.to_string());
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn message(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// proto3 omits default values; so does this.
fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        message(out, field, s.as_bytes());
    }
}

fn boolean(out: &mut Vec<u8>, field: u32, b: bool) {
    if b {
        boolean_always(out, field, b);
    }
}

/// A bool inside a `oneof`, where `false` must be written to say which case is set.
fn boolean_always(out: &mut Vec<u8>, field: u32, b: bool) {
    key(out, field, 0);
    out.push(u8::from(b));
}

fn int(out: &mut Vec<u8>, field: u32, v: i64) {
    if v != 0 {
        key(out, field, 0);
        varint(out, v as u64);
    }
}

fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    if v != 0.0 {
        key(out, field, 1);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn document_encodes_swagger_info_and_named_definitions() {
        let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1"}, "definitions": {"A": {"type": "string"}}});
        let b = encode_document(&doc);
        // swagger (field 1, len 3)
        assert_eq!(&b[..5], &[0x0a, 3, b'2', b'.', b'0']);
        // info (field 2): title (1) "Kubernetes", version (2) "v1"
        assert_eq!(b[5], 0x12);
        assert_eq!(&b[7..9], &[0x0a, 10]);
        // definitions (field 9) holds one NamedSchema {name "A", value {type {value "string"}}}
        let defs_at = b.iter().position(|&x| x == 0x4a).unwrap();
        assert_eq!(&b[defs_at..], &[0x4a, 18, 0x0a, 16, 0x0a, 1, b'A', 0x12, 11, 0xb2, 0x01, 8, 0x0a, 6, b's', b't', b'r', b'i', b'n', b'g'][..]);
    }

    #[test]
    fn long_lengths_use_multi_byte_varints() {
        let mut out = Vec::new();
        message(&mut out, 4, &[b'x'; 300]);
        assert_eq!(&out[..3], &[0x22, 0xac, 0x02]);
        assert_eq!(out.len(), 303);
    }

    #[test]
    fn extensions_become_named_any_with_json_text() {
        let s = schema(&json!({"x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]}));
        assert_eq!(s[0], 0xfa); // field 31, wire type 2: (31 << 3 | 2) = 250
        assert_eq!(s[1], 0x01);
        let text = String::from_utf8_lossy(&s);
        assert!(text.contains("x-kubernetes-group-version-kind"));
        assert!(text.contains(r#"[{"group":"","kind":"Pod","version":"v1"}]"#));
    }
}
