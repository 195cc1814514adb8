//! Response helpers: JSON bodies, `Status` errors, content negotiation.

use bytes::Bytes;
use http::{header, HeaderMap, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde_json::Value;
use std::convert::Infallible;
use weft_api::ApiError;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    raw_json(code, Bytes::from(serde_json::to_vec(v).expect("JSON serializes")))
}

pub fn raw_json(code: u16, b: Bytes) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(b))
        .expect("valid response")
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

pub fn text(code: u16, s: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(s.to_string()))
        .expect("valid response")
}

/// What the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Want {
    Object,
    Table,
    /// `as=PartialObjectMetadata(List)`: metadata only.
    Metadata,
}

pub fn negotiate(headers: &HeaderMap) -> Want {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    // Take the first acceptable JSON media type in the client's order.
    for part in accept.split(',') {
        let p = part.trim();
        if !(p.starts_with("application/json") || p.starts_with("*/*") || p.starts_with("application/*")) {
            continue;
        }
        if p.contains("as=Table") {
            return Want::Table;
        }
        if p.contains("as=PartialObjectMetadata") {
            return Want::Metadata;
        }
        return Want::Object;
    }
    Want::Object
}

/// Parses a request body as JSON, or YAML when the content type says so.
pub fn parse_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty; send the object as JSON"));
    }
    if content_type.contains("application/vnd.kubernetes.protobuf") {
        return crate::protobuf::decode_body(body).map_err(ApiError::bad_request);
    }
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(weft_api::ApiError::unsupported_media_type(content_type));
    }
    if content_type.contains("yaml") {
        serde_yaml::from_slice::<Value>(body).map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }
}
