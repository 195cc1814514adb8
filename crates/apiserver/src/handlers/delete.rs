//! delete and deletecollection: graceful deletion, finalizers, propagation policy.

use crate::api::{Api, Ctx};
use crate::handlers::read::Filter;
use crate::handlers::write::{ready_to_go, store_err};
use crate::http::{json_response, Body};
use crate::objects;
use http::Response;
use serde_json::{json, Value};
use weft_api::{meta, ApiError, GroupKind};

#[derive(Default, Debug)]
struct Options {
    grace: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    rv: Option<String>,
}

fn options(ctx: &Ctx, body: &[u8]) -> Result<Options, ApiError> {
    let mut o = Options::default();
    if !body.is_empty() {
        let b: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("DeleteOptions is not valid JSON: {e}")))?;
        o.grace = b["gracePeriodSeconds"].as_i64();
        o.propagation = b["propagationPolicy"].as_str().map(String::from);
        if b["orphanDependents"].as_bool() == Some(true) && o.propagation.is_none() {
            o.propagation = Some("Orphan".into());
        }
        o.uid = b.pointer("/preconditions/uid").and_then(Value::as_str).map(String::from);
        o.rv = b.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(String::from);
    }
    if let Some(g) = ctx.query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()) {
        o.grace = Some(g);
    }
    if let Some(p) = ctx.query.get("propagationPolicy") {
        o.propagation = Some(p.clone());
    }
    if let Some(p) = &o.propagation {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::invalid("", "DeleteOptions", "", &[weft_api::FieldError::not_supported("propagationPolicy", json!(p), &["Foreground", "Background", "Orphan"])]));
        }
    }
    Ok(o)
}

pub async fn delete(api: &Api, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    if ctx.req.subresource.is_some() {
        return Err(ApiError::method_not_allowed("delete is not supported on subresources"));
    }
    let opts = options(ctx, body)?;
    let (code, v) = delete_one(api, ctx, ctx.name(), &opts).await?;
    Ok(json_response(code, &v))
}

/// Deletes one object; returns (status code, body) as kube-apiserver does: 200 with a
/// Success status when it is gone, 202 with the object while it is being finalized or
/// its grace period runs.
async fn delete_one(api: &Api, ctx: &Ctx, name: &str, opts: &Options) -> Result<(u16, Value), ApiError> {
    let gk = ctx.served.info.group_kind();
    let key = objects::key(&ctx.served, ctx.ns(), name);
    for _ in 0..8 {
        let cur = api.store.get(&key).ok_or_else(|| ApiError::not_found(ctx.group(), ctx.plural(), name))?;
        let cur_v = cur.value();
        if opts.uid.as_ref().is_some_and(|u| u != meta::uid(&cur_v)) {
            return Err(ApiError::conflict(ctx.group(), ctx.plural(), name, &format!("Precondition failed: UID in precondition: {}, UID in object meta: {}", opts.uid.as_ref().unwrap(), meta::uid(&cur_v))));
        }
        if opts.rv.as_ref().is_some_and(|r| *r != cur.revision.to_string()) {
            return Err(ApiError::conflict(ctx.group(), ctx.plural(), name, &format!("Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {}", opts.rv.as_ref().unwrap(), cur.revision)));
        }
        let mut obj = cur_v.clone();
        let grace = grace_period(&gk, &obj, opts.grace);
        let m = meta::metadata_mut(&mut obj);
        let mut fins: Vec<String> = meta::finalizers(&cur_v);
        let already = m.contains_key("deletionTimestamp");
        if !already {
            match opts.propagation.as_deref() {
                Some("Orphan") if !fins.iter().any(|f| f == "orphan") => fins.push("orphan".into()),
                Some("Foreground") if !fins.iter().any(|f| f == "foregroundDeletion") => fins.push("foregroundDeletion".into()),
                _ => {}
            }
        }
        if !fins.is_empty() {
            m.insert("finalizers".into(), json!(fins));
        }
        let now = chrono::Utc::now();
        if already {
            // A second delete may only shorten a pod's grace period.
            let cur_grace = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0);
            if grace < cur_grace {
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                m.insert("deletionTimestamp".into(), json!((now + chrono::Duration::seconds(grace)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
            }
        } else {
            m.insert("deletionTimestamp".into(), json!((now + chrono::Duration::seconds(grace)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if gk.is_core("Namespace") {
                obj["status"]["phase"] = json!("Terminating");
            }
        }
        if ready_to_go(&obj) {
            if ctx.dry_run() {
                return Ok((200, success(ctx, name, &cur_v)));
            }
            match api.store.delete(&key, Some(cur.revision)).await {
                Ok(o) => {
                    let gone = o.value();
                    after_delete(api, &gk, &gone).await;
                    return Ok((200, success(ctx, name, &gone)));
                }
                Err(weft_store::StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_err(ctx, name, e)),
            }
        }
        if obj == cur_v {
            return Ok((202, present(ctx, &cur)));
        }
        if ctx.dry_run() {
            return Ok((202, obj));
        }
        match api.store.update(&key, obj, Some(cur.revision)).await {
            Ok(o) => return Ok((202, present(ctx, &o))),
            Err(weft_store::StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_err(ctx, name, e)),
        }
    }
    Err(ApiError::conflict(ctx.group(), ctx.plural(), name, "too many concurrent writers; try again"))
}

fn present(ctx: &Ctx, o: &weft_store::Object) -> Value {
    crate::handlers::read::present(ctx, o).unwrap_or_else(|| o.value())
}

/// Pods bound to a node that are still running get their grace period; everything
/// else goes at once.
fn grace_period(gk: &GroupKind, obj: &Value, requested: Option<i64>) -> i64 {
    if !gk.is_core("Pod") {
        return 0;
    }
    let scheduled = obj.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let phase = obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if !scheduled || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    let g = requested.unwrap_or_else(|| obj.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30));
    // A requested 0 without force means 1 second upstream; weft honours 0 (kubectl --force sends 0).
    g.max(0)
}

fn success(ctx: &Ctx, name: &str, obj: &Value) -> Value {
    let mut d = json!({"name": name, "kind": ctx.plural(), "uid": meta::uid(obj)});
    if !ctx.group().is_empty() {
        d["group"] = json!(ctx.group());
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}

/// What goes with an object: a service's addresses and ports, a CRD's resources.
pub async fn after_delete(api: &Api, gk: &GroupKind, obj: &Value) {
    if gk.is_core("Service") {
        api.services.lock().await.release(obj);
    }
    if gk.is("apiextensions.k8s.io", "CustomResourceDefinition") {
        crate::crd::delete_custom_objects(api, obj).await;
        api.refresh_crds();
    }
}

pub async fn delete_collection(api: &Api, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let opts = options(ctx, body)?;
    let filter = Filter::from_query(ctx)?;
    let (items, _) = api.store.list(&objects::prefix(&ctx.served, ctx.ns()));
    for o in items.iter().filter(|o| filter.selects(o)) {
        let name = meta::name(&o.value()).to_string();
        // Per-object namespace for cluster-wide deletecollection of namespaced kinds.
        match delete_one(api, ctx, &name, &opts).await {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(200, &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})))
}

