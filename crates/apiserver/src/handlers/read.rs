//! get and list.

use crate::api::{Api, Ctx};
use crate::http::{json_response, raw_json, Body, Want};
use crate::{fields, objects, table};
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use weft_api::selector::{FieldSelector, LabelSelector};
use weft_api::{meta, ApiError};
use weft_store::Object;

pub fn get(api: &Api, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let obj = fetch(api, ctx)?;
    if ctx.req.subresource.as_deref() == Some("scale") {
        return Ok(json_response(200, &crate::handlers::write::scale_of(ctx, &obj.value())));
    }
    Ok(match ctx.want {
        Want::Table => json_response(200, &table::table(ctx, &[obj.value()], &meta::resource_version(&obj.value()).to_string(), None)),
        Want::Metadata => json_response(200, &table::partial_metadata(&obj.value())),
        Want::Object => present_one(ctx, &obj),
    })
}

pub fn fetch(api: &Api, ctx: &Ctx) -> Result<Arc<Object>, ApiError> {
    let key = objects::key(&ctx.served, ctx.ns(), ctx.name());
    api.store.get(&key).ok_or_else(|| ApiError::not_found(ctx.group(), ctx.plural(), ctx.name()))
}

/// The object as the requested version shows it (custom resources may be served at
/// several versions; conversion strategy None only rewrites apiVersion).
pub fn present(ctx: &Ctx, obj: &Object) -> Option<Value> {
    let av = ctx.served.info.api_version();
    if obj.api_version != av {
        let mut v = obj.value();
        v["apiVersion"] = json!(av);
        Some(v)
    } else {
        None
    }
}

pub fn present_one(ctx: &Ctx, obj: &Object) -> Response<Body> {
    match present(ctx, obj) {
        Some(v) => json_response(200, &v),
        None => raw_json(200, obj.raw.clone()),
    }
}

/// Selectors of a list or watch, parsed and checked.
pub struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn from_query(ctx: &Ctx) -> Result<Filter, ApiError> {
        let labels = LabelSelector::parse(ctx.query.get("labelSelector").map(String::as_str).unwrap_or("")).map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(ctx.query.get("fieldSelector").map(String::as_str).unwrap_or("")).map_err(ApiError::bad_request)?;
        fields::check(&ctx.served.info.group_kind(), &fields).map_err(ApiError::bad_request)?;
        Ok(Filter { labels, fields })
    }
    /// Whether a stored object is selected; parses it only when a selector is set.
    pub fn selects(&self, o: &weft_store::Object) -> bool {
        (self.labels.is_empty() && self.fields.is_empty()) || self.matches(&o.value())
    }
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(meta::labels(obj)) && (self.fields.is_empty() || fields::matches(&self.fields, obj))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Continue {
    rv: u64,
    start: String,
}

pub fn list(api: &Api, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(ctx)?;
    let (all, rev) = api.store.list(&objects::prefix(&ctx.served, ctx.ns()));
    let limit: usize = ctx.query.get("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let (start_after, list_rev) = match ctx.query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => {
            let token: Continue = base64::engine::general_purpose::STANDARD
                .decode(c)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| ApiError::bad_request("continue key is not valid: send the continue value from the previous list response"))?;
            if token.rv < api.store.oldest_watchable() {
                return Err(ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."));
            }
            (Some(token.start), token.rv)
        }
        None => (None, rev),
    };
    let mut items: Vec<&Arc<Object>> = Vec::new();
    let mut next: Option<String> = None;
    let mut remaining = 0usize;
    for o in &all {
        if start_after.as_ref().is_some_and(|s| o.key.as_str() <= s.as_str()) {
            continue;
        }
        if !filter.selects(o) {
            continue;
        }
        if items.len() >= limit {
            if next.is_none() {
                next = Some(items.last().map(|l| l.key.clone()).unwrap_or_default());
            }
            remaining += 1;
            continue;
        }
        items.push(o);
    }
    let cont = next.map(|start| base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&Continue { rv: list_rev, start }).unwrap()));
    let rv = list_rev.to_string();
    match ctx.want {
        Want::Table => {
            let values: Vec<Value> = items.iter().map(|o| present(ctx, o).unwrap_or_else(|| o.value())).collect();
            let mut t = table::table(ctx, &values, &rv, cont.as_deref());
            if remaining > 0 {
                t["metadata"]["remainingItemCount"] = json!(remaining);
            }
            Ok(json_response(200, &t))
        }
        Want::Metadata => {
            let values: Vec<Value> = items.iter().map(|o| table::partial_metadata(&o.value())).collect();
            let mut m = json!({"resourceVersion": rv});
            if let Some(c) = &cont {
                m["continue"] = json!(c);
            }
            Ok(json_response(200, &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": m, "items": values})))
        }
        Want::Object => {
            // Lists are assembled from the stored bytes: no parse, no re-serialization.
            let mut m = json!({"resourceVersion": rv});
            if let Some(c) = &cont {
                m["continue"] = json!(c);
                m["remainingItemCount"] = json!(remaining);
            }
            let head = json!({"kind": ctx.served.info.list_kind(), "apiVersion": ctx.served.info.api_version(), "metadata": m});
            let head = serde_json::to_vec(&head).unwrap();
            let mut buf = BytesMut::with_capacity(head.len() + items.iter().map(|o| o.raw.len() + 1).sum::<usize>() + 16);
            buf.put_slice(&head[..head.len() - 1]);
            buf.put_slice(b",\"items\":[");
            for (i, o) in items.iter().enumerate() {
                if i > 0 {
                    buf.put_u8(b',');
                }
                match present(ctx, o) {
                    Some(v) => buf.put_slice(&serde_json::to_vec(&v).unwrap()),
                    None => buf.put_slice(&o.raw),
                }
            }
            buf.put_slice(b"]}");
            Ok(raw_json(200, Bytes::from(buf)))
        }
    }
}
