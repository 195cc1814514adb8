//! The shape of the generated message table (`schema.rs`): what the decoder needs to
//! know about each Kubernetes protobuf message to turn it into its JSON form.

/// One protobuf message, as the JSON API spells it.
pub(super) struct Message {
    /// The OpenAPI definition name, for error messages.
    pub(super) name: &'static str,
    pub(super) shape: Shape,
    /// Sorted by tag.
    pub(super) fields: &'static [Field],
}

/// How a message becomes JSON: most are objects of their fields, a few have custom
/// Go marshalers that the decoder reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Object,
    /// meta/v1 Time {seconds, nanos}: RFC 3339 to the second, as Go marshals it.
    Time,
    /// meta/v1 MicroTime {seconds, nanos}: RFC 3339 to the microsecond.
    MicroTime,
    /// {raw: bytes} holding JSON: RawExtension, FieldsV1, apiextensions JSON.
    RawJson,
    /// {string}: the quantity's canonical string.
    Quantity,
    /// {type, intVal, strVal}: a number or a string.
    IntOrString,
    /// {allows, schema}: a schema, or a boolean when there is none.
    SchemaOrBool,
    /// {schema, jsonSchemas}: an array of schemas when there are any, else one schema.
    SchemaOrArray,
    /// {schema, property}: an array of strings when there are any, else a schema.
    SchemaOrStringArray,
}

pub(super) struct Field {
    pub(super) tag: u32,
    /// The JSON name; empty for a Go embedded struct whose fields sit in the parent.
    pub(super) json: &'static str,
    pub(super) kind: Kind,
    pub(super) repeated: bool,
    /// Required in the OpenAPI schema: Go has no omitempty, so zeros are kept.
    pub(super) required: bool,
    /// An optional Go pointer whose zero value means something other than unset.
    pub(super) explicit_zero: bool,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    /// Index into `MESSAGES`.
    Message(usize),
    StringMap,
    BytesMap,
    /// map<string, message>, the value's index into `MESSAGES`.
    MessageMap(usize),
}

/// A top-level kind that a request body may carry.
pub(super) struct Root {
    pub(super) api_version: &'static str,
    pub(super) kind: &'static str,
    pub(super) message: usize,
}

impl Message {
    pub(super) fn field(&self, tag: u32) -> Option<&Field> {
        self.fields.binary_search_by_key(&tag, |f| f.tag).ok().map(|i| &self.fields[i])
    }
}
