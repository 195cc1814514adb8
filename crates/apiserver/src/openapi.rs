//! OpenAPI documents for kubectl (`explain`, field validation).

use crate::api::Api;
use crate::http::{error_response, Body};
use http::Response;
use weft_api::ApiError;

pub fn serve(_api: &Api, path: &str) -> Response<Body> {
    error_response(&ApiError::new(404, "NotFound", format!("{path} is not served yet")))
}
