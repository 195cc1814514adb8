//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), turned
//! into the JSON the rest of the server works with.
//!
//! Since client-go 1.31, typed clients (and so kubectl create/run/delete) send the
//! built-in kinds as protobuf only. A body is the magic `k8s\0` followed by a
//! `runtime.Unknown` {1: typeMeta {1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding,
//! 4: contentType}, where raw is the object's own message. The decoder is generic: it
//! walks raw with a generated table of messages (`schema.rs`, from k8s-pb and
//! k8s-openapi; see tools/gen_protobuf_schema.py) and writes what Go's JSON encoder
//! would write for the same object.

mod decode;
#[rustfmt::skip]
mod schema;
mod table;
mod wire;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use wire::{Reader, WireValue};

/// The four bytes that open every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// Decodes a Kubernetes protobuf request body into the object's JSON form, with
/// `apiVersion` and `kind` from the envelope. The error says what is wrong in words
/// fit for a 400 or 415 response.
pub fn decode_body(bytes: &[u8]) -> Result<Value, String> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body does not start with the Kubernetes magic bytes \"k8s\\x00\"")?;
    let envelope = Envelope::parse(body)?;
    if !envelope.content_encoding.is_empty() {
        return Err(format!("protobuf bodies with contentEncoding {:?} are not supported", envelope.content_encoding));
    }
    let index = root(&envelope.api_version, &envelope.kind).ok_or_else(|| {
        format!(
            "protobuf bodies of kind {:?} (apiVersion {:?}) are not supported; send it as JSON",
            envelope.kind, envelope.api_version
        )
    })?;
    let decoded = decode::message(index, envelope.raw, 0).map_err(|e| format!("the {} in the protobuf body: {e}", envelope.kind))?;
    let Some(Value::Object(fields)) = decoded else {
        unreachable!("every root kind is an object message");
    };
    let mut object = Map::with_capacity(fields.len() + 2);
    object.insert("apiVersion".into(), Value::String(envelope.api_version));
    object.insert("kind".into(), Value::String(envelope.kind));
    object.extend(fields);
    Ok(Value::Object(object))
}

/// The table index of the message for a top-level kind.
fn root(api_version: &str, kind: &str) -> Option<usize> {
    // DeleteOptions travels under the group version of whatever is being deleted.
    if kind == "DeleteOptions" {
        return Some(schema::DELETE_OPTIONS);
    }
    schema::ROOTS.iter().find(|r| r.api_version == api_version && r.kind == kind).map(|r| r.message)
}

/// `runtime.Unknown`, the wrapper around every protobuf body.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

impl<'a> Envelope<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let mut envelope = Envelope { api_version: String::new(), kind: String::new(), raw: &[], content_encoding: String::new() };
        let mut reader = Reader::new(bytes);
        while let Some((tag, value)) = reader.next_field().map_err(|e| format!("the protobuf envelope is malformed: {e}"))? {
            match (tag, value) {
                (1, WireValue::LengthDelimited(type_meta)) => {
                    let mut tm = Reader::new(type_meta);
                    while let Some((tag, value)) = tm.next_field().map_err(|e| format!("the protobuf typeMeta is malformed: {e}"))? {
                        match (tag, value) {
                            (1, WireValue::LengthDelimited(s)) => envelope.api_version = text(s)?,
                            (2, WireValue::LengthDelimited(s)) => envelope.kind = text(s)?,
                            _ => {}
                        }
                    }
                }
                (2, WireValue::LengthDelimited(raw)) => envelope.raw = raw,
                (3, WireValue::LengthDelimited(s)) => envelope.content_encoding = text(s)?,
                // 4, contentType, names this very encoding; nothing to check against.
                _ => {}
            }
        }
        if envelope.kind.is_empty() {
            return Err("the protobuf envelope names no kind".into());
        }
        Ok(envelope)
    }
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "the protobuf envelope holds a string that is not UTF-8".into())
}
