//! Walks a message's bytes with the generated table and builds the JSON that Go's
//! encoding/json would write for the same object.

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::schema::MESSAGES;
use super::table::{Field, Kind, Message, Shape};
use super::wire::{Reader, WireValue};

/// Deep enough for any real CRD schema, shallow enough that hostile input cannot
/// exhaust the stack (JSONSchemaProps nests itself).
const MAX_DEPTH: usize = 100;

/// Decodes one message. None stands for a value Go marshals as null or leaves out:
/// a zero Time, an empty RawExtension.
pub(super) fn message(index: usize, bytes: &[u8], depth: usize) -> Result<Option<Value>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("objects nest deeper than {MAX_DEPTH} levels"));
    }
    let msg = &MESSAGES[index];
    match msg.shape {
        Shape::Object => Ok(Some(Value::Object(object(msg, bytes, depth)?))),
        Shape::RawJson => raw_json(msg, bytes),
        // Go's Time.Unmarshal reads no bytes as the zero time, which marshals as null.
        Shape::Time | Shape::MicroTime if bytes.is_empty() => Ok(None),
        shape => {
            let fields = object(msg, bytes, depth)?;
            // The custom shapes' fields are named as in k8s-pb; look them up by tag.
            let get = |tag: u32| msg.field(tag).and_then(|f| fields.get(f.json));
            custom(msg, shape, get)
        }
    }
}

fn object(msg: &Message, bytes: &[u8], depth: usize) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut reader = Reader::new(bytes);
    while let Some((tag, value)) = reader.next_field().map_err(|e| format!("{}: {e}", short(msg.name)))? {
        // A field the table does not know comes from a newer client; Go skips it too.
        let Some(field) = msg.field(tag) else { continue };
        let index = out.get(field.json).and_then(Value::as_array).map_or(0, Vec::len);
        field_value(field, value, &mut out, depth).map_err(|e| in_field(field, index, e))?;
    }
    Ok(out)
}

/// Prefixes an error with the JSON path of the field it happened in, so that the
/// message reads `spec.containers[0].name: ...`.
fn in_field(field: &Field, index: usize, e: String) -> String {
    let here = match (field.json, field.repeated) {
        ("", _) => return e,
        (name, true) => format!("{name}[{index}]"),
        (name, false) => name.to_string(),
    };
    match e.strip_prefix(PATH) {
        Some(rest) if rest.starts_with('[') => format!("{PATH}{here}{rest}"),
        Some(rest) => format!("{PATH}{here}.{rest}"),
        None => format!("{PATH}{here}: {e}"),
    }
}

/// Marks an error that already starts with a field path.
const PATH: &str = "at ";

fn field_value(field: &Field, value: WireValue, out: &mut Map<String, Value>, depth: usize) -> Result<(), String> {
    match field.kind {
        Kind::Message(index) => {
            let decoded = message(index, length_delimited(value)?, depth + 1)?;
            if field.repeated {
                push(out, field.json, decoded.unwrap_or(Value::Null));
            } else if field.json.is_empty() {
                // A Go embedded struct: its fields are the parent's.
                if let Some(Value::Object(inner)) = decoded {
                    out.extend(inner);
                }
            } else if let Some(decoded) = decoded {
                // Protobuf merges a repeated occurrence of a message field into the first.
                match (out.get_mut(field.json), decoded) {
                    (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
                    (_, decoded) => {
                        out.insert(field.json.into(), decoded);
                    }
                }
            }
        }
        Kind::StringMap | Kind::BytesMap | Kind::MessageMap(_) => {
            let (key, entry) = map_entry(field.kind, length_delimited(value)?, depth)?;
            let map = out.entry(field.json).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = map {
                map.insert(key, entry);
            }
        }
        kind if field.repeated => match value {
            // Packed encoding: one length-delimited run of numbers.
            WireValue::LengthDelimited(bytes) if !matches!(kind, Kind::String | Kind::Bytes) => {
                let mut run = Reader::new(bytes);
                while !run.is_empty() {
                    let item = match kind {
                        Kind::Double => WireValue::Fixed64(run.fixed64()?),
                        _ => WireValue::Varint(run.varint()?),
                    };
                    push(out, field.json, scalar(kind, item)?);
                }
            }
            item => push(out, field.json, scalar(kind, item)?),
        },
        kind => {
            let v = scalar(kind, value)?;
            // Go writes plain optional fields even when zero, and its JSON encoder
            // leaves them out (omitempty); a pointer's zero is a real value.
            if is_zero(&v) && !field.required && !field.explicit_zero {
                out.remove(field.json);
            } else {
                out.insert(field.json.into(), v);
            }
        }
    }
    Ok(())
}

fn scalar(kind: Kind, value: WireValue) -> Result<Value, String> {
    Ok(match (kind, value) {
        (Kind::String, WireValue::LengthDelimited(b)) => {
            Value::String(std::str::from_utf8(b).map_err(|_| "a string is not valid UTF-8".to_string())?.to_string())
        }
        // Go's encoding/json writes []byte as standard, padded base64.
        (Kind::Bytes, WireValue::LengthDelimited(b)) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        (Kind::Bool, WireValue::Varint(v)) => Value::Bool(v != 0),
        // int32 travels sign-extended to 64 bits; truncating recovers it.
        (Kind::Int32, WireValue::Varint(v)) => Value::from(v as i32),
        (Kind::Int64, WireValue::Varint(v)) => Value::from(v as i64),
        (Kind::Double, WireValue::Fixed64(bits)) => number(f64::from_bits(bits))?,
        (kind, value) => return Err(format!("expected a {kind:?} field, found wire type {}", value.type_name())),
    })
}

/// Go prints a whole float64 without a fraction (`5`, not `5.0`).
fn number(f: f64) -> Result<Value, String> {
    const EXACT: f64 = (1u64 << 53) as f64;
    if f.fract() == 0.0 && f.abs() < EXACT {
        Ok(Value::from(f as i64))
    } else {
        Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("{f} is not a JSON number"))
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn push(out: &mut Map<String, Value>, name: &str, item: Value) {
    if let Value::Array(items) = out.entry(name).or_insert_with(|| Value::Array(vec![])) {
        items.push(item);
    }
}

fn length_delimited<'a>(value: WireValue<'a>) -> Result<&'a [u8], String> {
    match value {
        WireValue::LengthDelimited(bytes) => Ok(bytes),
        other => Err(format!("expected a length-delimited field, found wire type {}", other.type_name())),
    }
}

/// A map entry is a message {1: key, 2: value}; either may be missing and then
/// takes its zero value.
fn map_entry(kind: Kind, bytes: &[u8], depth: usize) -> Result<(String, Value), String> {
    let mut key = String::new();
    let mut value = None;
    let mut reader = Reader::new(bytes);
    while let Some((tag, wire)) = reader.next_field()? {
        match tag {
            1 => key = scalar(Kind::String, wire)?.as_str().unwrap_or_default().to_string(),
            2 => {
                value = Some(match kind {
                    Kind::StringMap => scalar(Kind::String, wire)?,
                    Kind::BytesMap => scalar(Kind::Bytes, wire)?,
                    Kind::MessageMap(index) => message(index, length_delimited(wire)?, depth + 1)?.unwrap_or(Value::Null),
                    _ => unreachable!("map_entry is only called for map kinds"),
                })
            }
            _ => {}
        }
    }
    let value = match (value, kind) {
        (Some(v), _) => v,
        (None, Kind::MessageMap(index)) => message(index, &[], depth + 1)?.unwrap_or(Value::Null),
        (None, _) => Value::String(String::new()),
    };
    Ok((key, value))
}

fn raw_json(msg: &Message, bytes: &[u8]) -> Result<Option<Value>, String> {
    let mut raw: &[u8] = &[];
    let mut reader = Reader::new(bytes);
    while let Some((tag, wire)) = reader.next_field()? {
        if tag == 1 {
            raw = length_delimited(wire)?;
        }
    }
    if raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(raw).map(Some).map_err(|e| format!("{} does not hold valid JSON: {e}", short(msg.name)))
}

fn custom<'a>(msg: &Message, shape: Shape, get: impl Fn(u32) -> Option<&'a Value>) -> Result<Option<Value>, String> {
    let int = |tag| get(tag).and_then(Value::as_i64).unwrap_or(0);
    let nonempty_array = |tag| get(tag).filter(|v| v.as_array().is_some_and(|a| !a.is_empty())).cloned();
    Ok(match shape {
        Shape::Time | Shape::MicroTime => {
            const GO_ZERO_TIME: i64 = -62_135_596_800;
            let seconds = int(1);
            if seconds == GO_ZERO_TIME {
                return Ok(None);
            }
            // Go's Time keeps whole seconds only (its protobuf reader drops nanos).
            let nanos = if shape == Shape::MicroTime { int(2) } else { 0 };
            let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000);
            let at = nanos
                .and_then(|n| chrono::DateTime::from_timestamp(seconds, n))
                .ok_or_else(|| format!("{}: {seconds}s {}ns is not a valid time", short(msg.name), int(2)))?;
            let format = if shape == Shape::MicroTime { "%Y-%m-%dT%H:%M:%S%.6fZ" } else { "%Y-%m-%dT%H:%M:%SZ" };
            Some(Value::String(at.format(format).to_string()))
        }
        // A Quantity with no string is Go's zero Quantity, "0".
        Shape::Quantity => Some(get(1).cloned().unwrap_or_else(|| Value::String("0".into()))),
        // type 1 is intstr.String; anything else is intstr.Int.
        Shape::IntOrString if int(1) == 1 => Some(get(3).cloned().unwrap_or_else(|| Value::String(String::new()))),
        Shape::IntOrString => Some(get(2).cloned().unwrap_or_else(|| Value::from(0))),
        Shape::SchemaOrBool => Some(get(2).cloned().unwrap_or_else(|| Value::Bool(get(1).and_then(Value::as_bool).unwrap_or(false)))),
        Shape::SchemaOrArray | Shape::SchemaOrStringArray => nonempty_array(2).or_else(|| get(1).cloned()),
        Shape::Object | Shape::RawJson => unreachable!("decoded by message()"),
    })
}

/// `io.k8s.api.core.v1.PodSpec` -> `PodSpec`, for error messages.
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}
