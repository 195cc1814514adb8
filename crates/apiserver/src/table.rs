//! `meta.k8s.io/v1` Table responses for `kubectl get`.

use crate::api::Ctx;
use serde_json::{json, Value};

pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn column_defs(ctx: &Ctx) -> Vec<Value> {
    if ctx.served.custom {
        weft_api::table::custom_columns(&ctx.served.printer_columns).iter().map(|c| c.to_json()).collect()
    } else {
        weft_api::table::columns(&ctx.served.info.group_kind()).iter().map(|c| c.to_json()).collect()
    }
}

fn cells(ctx: &Ctx, obj: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    if ctx.served.custom {
        weft_api::table::custom_row(&ctx.served.printer_columns, obj, now)
    } else {
        weft_api::table::row(&ctx.served.info.group_kind(), obj, now)
    }
}

/// One row for `obj`, with the object embedded as `?includeObject=` asks.
pub fn row(ctx: &Ctx, obj: &Value, now: chrono::DateTime<chrono::Utc>) -> Value {
    let object = match ctx.query.get("includeObject").map(String::as_str) {
        Some("None") => Value::Null,
        Some("Object") => obj.clone(),
        _ => partial_metadata(obj),
    };
    let mut r = json!({"cells": cells(ctx, obj, now)});
    if !object.is_null() {
        r["object"] = object;
    }
    r
}

pub fn table(ctx: &Ctx, objs: &[Value], rv: &str, cont: Option<&str>) -> Value {
    let now = chrono::Utc::now();
    let mut m = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        m["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": m,
        "columnDefinitions": column_defs(ctx),
        "rows": objs.iter().map(|o| row(ctx, o, now)).collect::<Vec<_>>(),
    })
}

/// A watch event's Table: rows only; column definitions ride on the first event.
pub fn watch_table(ctx: &Ctx, obj: &Value, with_columns: bool) -> Value {
    let now = chrono::Utc::now();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": weft_api::meta::resource_version(obj)},
        "columnDefinitions": if with_columns { Value::Array(column_defs(ctx)) } else { Value::Array(vec![]) },
        "rows": [row(ctx, obj, now)],
    })
}
