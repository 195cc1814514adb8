//! create, update (incl. status, scale, finalize), patch, and pods/binding.

use crate::api::{Api, Ctx};
use crate::handlers::read::{fetch, present_one};
use crate::http::{json_response, parse_body, Body};
use crate::objects;
use http::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use weft_api::patch::PatchType;
use weft_api::{meta, ApiError, FieldError};
use weft_store::{Object, StoreError};

/// Maps a store error for this request.
pub fn store_err(ctx: &Ctx, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::AlreadyExists(_) => ApiError::already_exists(ctx.group(), ctx.plural(), name),
        StoreError::NotFound(_) => ApiError::not_found(ctx.group(), ctx.plural(), name),
        StoreError::Conflict { .. } => ApiError::conflict(ctx.group(), ctx.plural(), name, "the object has been modified; please apply your changes to the latest version and try again"),
        other => ApiError::internal(other.to_string()),
    }
}

fn check_kind(ctx: &Ctx, obj: &Value) -> Result<(), ApiError> {
    let info = &ctx.served.info;
    if let Some(k) = obj.get("kind").and_then(Value::as_str) {
        if k != info.kind {
            return Err(ApiError::bad_request(format!("the kind of the body ({k}) does not match the resource ({}); send a {} to {}", info.kind, info.kind, info.plural)));
        }
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str) {
        if av != info.api_version() {
            return Err(ApiError::bad_request(format!("the apiVersion of the body ({av}) does not match the endpoint ({})", info.api_version())));
        }
    }
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    Ok(())
}

fn check_namespace(ctx: &Ctx, obj: &Value) -> Result<(), ApiError> {
    if !ctx.served.info.namespaced {
        return Ok(());
    }
    let body_ns = meta::namespace(obj);
    let path_ns = ctx.req.namespace.as_deref().unwrap_or("");
    if !body_ns.is_empty() && body_ns != path_ns {
        return Err(ApiError::bad_request(format!("the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({path_ns})")));
    }
    Ok(())
}

/// New objects may only go into a namespace that exists and is not terminating.
fn check_namespace_open(api: &Api, ctx: &Ctx) -> Result<(), ApiError> {
    let Some(ns) = ctx.ns() else { return Ok(()) };
    match api.store.get(&format!("/core/namespaces/{ns}")) {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(o) if meta::deletion_timestamp(&o.value()).is_some() => Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            ctx.plural(),
            ctx.name()
        ))),
        Some(_) => Ok(()),
    }
}

fn invalid(ctx: &Ctx, obj: &Value, errs: &[FieldError]) -> ApiError {
    ApiError::invalid(ctx.group(), &ctx.served.info.kind, meta::name(obj), errs)
}

fn validate(ctx: &Ctx, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let gk = ctx.served.info.group_kind();
    let mut errs = weft_api::validate::validate(&gk, obj, old);
    if ctx.served.custom {
        if let Some(schema) = &ctx.served.schema {
            errs.extend(crate::crd::validate_custom(schema, obj));
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(invalid(ctx, obj, &errs)) }
}

pub async fn create(api: &Api, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    match ctx.req.subresource.as_deref() {
        Some("binding") => return bind(api, ctx, body).await,
        Some(s) => return Err(ApiError::method_not_allowed(format!("create is not supported on {}/{s}", ctx.plural()))),
        None => {}
    }
    let obj = parse_body(&ctx.content_type, body)?;
    check_kind(ctx, &obj)?;
    crate::openapi::field_validation(&ctx.served, ctx.query.get("fieldValidation").map(String::as_str), &obj)?;
    check_namespace(ctx, &obj)?;
    let stored = create_object(api, ctx, obj).await?;
    Ok(match stored {
        Some(o) => {
            let mut r = present_one(ctx, &o);
            *r.status_mut() = http::StatusCode::CREATED;
            r
        }
        None => unreachable!(),
    })
}

/// Admission and storage of a new object; Ok(None) never happens but keeps dry runs
/// and real writes on one path.
pub async fn create_object(api: &Api, ctx: &Ctx, mut obj: Value) -> Result<Option<Arc<Object>>, ApiError> {
    let gk = ctx.served.info.group_kind();
    objects::prepare_create(&ctx.served, &mut obj, ctx.ns());
    if meta::name(&obj).is_empty() {
        return Err(invalid(ctx, &obj, &[FieldError::required("metadata.name", "name or generateName is required")]));
    }
    if ctx.served.info.plural != "namespaces" || !ctx.served.info.group.is_empty() {
        check_namespace_open(api, ctx)?;
    }
    weft_api::defaults::apply_defaults(&gk, &mut obj);
    if gk.is_core("Namespace") {
        let name = meta::name(&obj).to_string();
        meta::metadata_mut(&mut obj)
            .entry("labels")
            .or_insert(json!({}))
            .as_object_mut()
            .map(|l| l.insert("kubernetes.io/metadata.name".into(), json!(name)));
    }
    if gk.is("apiextensions.k8s.io", "CustomResourceDefinition") {
        crate::crd::establish(&mut obj);
    }
    validate(ctx, &obj, None)?;
    if !ctx.content_type.starts_with("application/apply-patch") {
        weft_api::patch::record_update(&gk, None, &mut obj, &ctx.field_manager(), &objects::now());
    }
    let key = objects::key(&ctx.served, ctx.ns(), meta::name(&obj));
    if gk.is_core("Service") {
        let mut alloc = api.services.lock().await;
        let taken = alloc.allocate(&mut obj, None).map_err(|errs| invalid(ctx, &obj, &errs))?;
        validate(ctx, &obj, None)?;
        if ctx.dry_run() {
            alloc.give_back(&taken);
            return Ok(Some(Arc::new(Object::new(key, 0, obj))));
        }
        return match api.store.create(&key, obj).await {
            Ok(o) => Ok(Some(o)),
            Err(e) => {
                alloc.give_back(&taken);
                Err(store_err(ctx, &key_name(&key), e))
            }
        };
    }
    if ctx.dry_run() {
        return Ok(Some(Arc::new(Object::new(key, 0, obj))));
    }
    let name = meta::name(&obj).to_string();
    let o = api.store.create(&key, obj).await.map_err(|e| store_err(ctx, &name, e))?;
    if gk.is("apiextensions.k8s.io", "CustomResourceDefinition") {
        api.refresh_crds();
    }
    Ok(Some(o))
}

fn key_name(key: &str) -> String {
    key.rsplit('/').next().unwrap_or("").to_string()
}

pub async fn update(api: &Api, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let sub = ctx.req.subresource.clone();
    let new = parse_body(&ctx.content_type, body)?;
    if sub.as_deref() == Some("scale") {
        let replicas = new.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
        return set_scale(api, ctx, replicas, new.pointer("/metadata/resourceVersion").and_then(Value::as_str)).await;
    }
    check_kind(ctx, &new)?;
    if sub.is_none() {
        crate::openapi::field_validation(&ctx.served, ctx.query.get("fieldValidation").map(String::as_str), &new)?;
    }
    check_namespace(ctx, &new)?;
    if !meta::name(&new).is_empty() && meta::name(&new) != ctx.name() {
        return Err(ApiError::bad_request(format!("the name of the object ({}) does not match the name on the URL ({})", meta::name(&new), ctx.name())));
    }
    let cur = match fetch(api, ctx) {
        Ok(c) => c,
        Err(e) if e.code == 404 && sub.is_none() && allow_create_on_update(ctx) => {
            let o = create_object(api, ctx, new).await?.unwrap();
            let mut r = present_one(ctx, &o);
            *r.status_mut() = http::StatusCode::CREATED;
            return Ok(r);
        }
        Err(e) => return Err(e),
    };
    let rv = meta::resource_version(&new);
    if !rv.is_empty() && rv != cur.revision.to_string() {
        return Err(ApiError::conflict(ctx.group(), ctx.plural(), ctx.name(), "the object has been modified; please apply your changes to the latest version and try again"));
    }
    let o = store_update(api, ctx, &cur, new, sub.as_deref()).await?;
    Ok(present_one(ctx, &o))
}

fn allow_create_on_update(ctx: &Ctx) -> bool {
    let i = &ctx.served.info;
    matches!((i.group.as_str(), i.kind.as_str()), ("", "Endpoints") | ("coordination.k8s.io", "Lease") | ("", "Event"))
}

/// Admission and storage of a changed object, conditional on `cur`'s revision.
pub async fn store_update(api: &Api, ctx: &Ctx, cur: &Arc<Object>, mut new: Value, sub: Option<&str>) -> Result<Arc<Object>, ApiError> {
    let gk = ctx.served.info.group_kind();
    let cur_v = cur.value();
    if sub == Some("finalize") {
        // Only spec.finalizers comes from the request.
        let fins = new.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
        new = cur_v.clone();
        new["spec"]["finalizers"] = fins;
    } else {
        objects::prepare_update(&ctx.served, &mut new, &cur_v, sub);
    }
    weft_api::defaults::apply_defaults(&gk, &mut new);
    validate(ctx, &new, Some(&cur_v))?;
    if sub.is_none() && !ctx.content_type.starts_with("application/apply-patch") {
        weft_api::patch::record_update(&gk, Some(&cur_v), &mut new, &ctx.field_manager(), &objects::now());
    }
    meta::metadata_mut(&mut new).insert("resourceVersion".into(), json!(cur.revision.to_string()));
    if new == cur_v {
        // A no-op write changes nothing, not even the resourceVersion.
        return Ok(cur.clone());
    }
    let key = cur.key.clone();
    let name = meta::name(&cur_v).to_string();
    if ready_to_go(&new) {
        if ctx.dry_run() {
            return Ok(cur.clone());
        }
        let o = api.store.delete(&key, Some(cur.revision)).await.map_err(|e| store_err(ctx, &name, e))?;
        crate::handlers::delete::after_delete(api, &gk, &o.value()).await;
        return Ok(o);
    }
    if gk.is_core("Service") {
        let mut alloc = api.services.lock().await;
        let taken = alloc.allocate(&mut new, Some(&cur_v)).map_err(|errs| invalid(ctx, &new, &errs))?;
        validate(ctx, &new, Some(&cur_v))?;
        if ctx.dry_run() {
            alloc.give_back(&taken);
            return Ok(Arc::new(Object::new(key, cur.revision, new)));
        }
        return match api.store.update(&key, new, Some(cur.revision)).await {
            Ok(o) => {
                alloc.settle_update(&cur_v, &o.value());
                Ok(o)
            }
            Err(e) => {
                alloc.give_back(&taken);
                Err(store_err(ctx, &name, e))
            }
        };
    }
    if ctx.dry_run() {
        return Ok(Arc::new(Object::new(key, cur.revision, new)));
    }
    let o = api.store.update(&key, new, Some(cur.revision)).await.map_err(|e| store_err(ctx, &name, e))?;
    if gk.is("apiextensions.k8s.io", "CustomResourceDefinition") {
        api.refresh_crds();
    }
    Ok(o)
}

/// An object marked for deletion goes once nothing holds it: no finalizers (for a
/// namespace, no spec finalizers either) and, for a pod, no grace period left.
pub fn ready_to_go(obj: &Value) -> bool {
    if meta::deletion_timestamp(obj).is_none() || !meta::finalizers(obj).is_empty() {
        return false;
    }
    if obj["kind"] == "Namespace" && obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        return false;
    }
    if obj["kind"] == "Pod" && obj.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) > 0 {
        return false;
    }
    true
}

pub async fn patch(api: &Api, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let pt = PatchType::from_content_type(&ctx.content_type).ok_or_else(|| ApiError::unsupported_media_type(&ctx.content_type))?;
    let patch: Value = if pt == PatchType::Apply {
        parse_body("application/yaml", body)?
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?
    };
    let gk = ctx.served.info.group_kind();
    let sub = ctx.req.subresource.clone();
    for _attempt in 0..8 {
        let cur = match fetch(api, ctx) {
            Ok(c) => c,
            Err(e) if e.code == 404 && pt == PatchType::Apply && sub.is_none() => {
                // Server-side apply creates what does not exist.
                let now = objects::now();
                let force = ctx.query.get("force").is_some_and(|f| f == "true");
                let mut obj = weft_api::patch::server_side_apply(&gk, None, &patch, &ctx.field_manager(), force, &now)?;
                check_kind(ctx, &obj)?;
                check_namespace(ctx, &obj)?;
                meta::metadata_mut(&mut obj).insert("name".into(), json!(ctx.name()));
                let o = create_object(api, ctx, obj).await?.unwrap();
                let mut r = present_one(ctx, &o);
                *r.status_mut() = http::StatusCode::CREATED;
                return Ok(r);
            }
            Err(e) => return Err(e),
        };
        if sub.as_deref() == Some("scale") {
            let scale = scale_of(ctx, &cur.value());
            let patched = weft_api::patch::apply_patch(&gk, if pt == PatchType::StrategicMerge { PatchType::Merge } else { pt }, &scale, &patch)?;
            let replicas = patched.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
            return set_scale(api, ctx, replicas, None).await;
        }
        let base = match sub.as_deref() {
            Some("status") | None => cur.value(),
            Some(s) => return Err(ApiError::method_not_allowed(format!("patch is not supported on {}/{s}", ctx.plural()))),
        };
        let patched = if pt == PatchType::Apply {
            let force = ctx.query.get("force").is_some_and(|f| f == "true");
            weft_api::patch::server_side_apply(&gk, Some(&base), &patch, &ctx.field_manager(), force, &objects::now())?
        } else {
            weft_api::patch::apply_patch(&gk, pt, &base, &patch)?
        };
        if sub.is_none() {
            crate::openapi::field_validation(&ctx.served, ctx.query.get("fieldValidation").map(String::as_str), &patched)?;
        }
        let rv = meta::resource_version(&patched);
        if !rv.is_empty() && rv != cur.revision.to_string() {
            return Err(ApiError::conflict(ctx.group(), ctx.plural(), ctx.name(), "the object has been modified; please apply your changes to the latest version and try again"));
        }
        match store_update(api, ctx, &cur, patched, sub.as_deref()).await {
            Ok(o) => return Ok(present_one(ctx, &o)),
            // Someone wrote in between: patch again on the new state.
            Err(e) if e.code == 409 && e.reason == "Conflict" => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(ctx.group(), ctx.plural(), ctx.name(), "too many concurrent writers; try again"))
}

/// The `autoscaling/v1` Scale of a deployment or replica set.
pub fn scale_of(ctx: &Ctx, obj: &Value) -> Value {
    let sel = weft_api::selector::LabelSelector::from_object(obj.pointer("/spec/selector")).map(|s| s.to_string()).unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta::name(obj),
            "namespace": ctx.ns().unwrap_or(""),
            "uid": meta::uid(obj),
            "resourceVersion": meta::resource_version(obj),
            "creationTimestamp": obj.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {"replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0), "selector": sel},
    })
}

async fn set_scale(api: &Api, ctx: &Ctx, replicas: i64, rv: Option<&str>) -> Result<Response<Body>, ApiError> {
    if !ctx.served.info.has_scale {
        return Err(ApiError::new(404, "NotFound", "the server could not find the requested resource"));
    }
    for _ in 0..8 {
        let cur = fetch(api, ctx)?;
        if rv.is_some_and(|rv| !rv.is_empty() && rv != cur.revision.to_string()) {
            return Err(ApiError::conflict(ctx.group(), ctx.plural(), ctx.name(), "the object has been modified; please apply your changes to the latest version and try again"));
        }
        let mut new = cur.value();
        new["spec"]["replicas"] = json!(replicas);
        match store_update(api, ctx, &cur, new, None).await {
            Ok(o) => return Ok(json_response(200, &scale_of(ctx, &o.value()))),
            Err(e) if e.code == 409 && e.reason == "Conflict" && rv.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(ctx.group(), ctx.plural(), ctx.name(), "too many concurrent writers; try again"))
}

/// `POST pods/{name}/binding`: the scheduler's decision.
async fn bind(api: &Api, ctx: &Ctx, body: &[u8]) -> Result<Response<Body>, ApiError> {
    if ctx.plural() != "pods" || !ctx.group().is_empty() {
        return Err(ApiError::method_not_allowed("binding is a subresource of pods only"));
    }
    let b = parse_body(&ctx.content_type, body)?;
    let node = b.pointer("/target/name").and_then(Value::as_str).unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiError::invalid("", "Binding", ctx.name(), &[FieldError::required("target.name", "")]));
    }
    for _ in 0..8 {
        let cur = fetch(api, ctx)?;
        if meta::deletion_timestamp(&cur.value()).is_some() {
            return Err(ApiError::conflict("", "pods", ctx.name(), "pod is being deleted, cannot be assigned to a host"));
        }
        if let Some(n) = cur.value().pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict("", "pods", ctx.name(), &format!("pod {} is already assigned to node \"{n}\"", ctx.name())));
        }
        let mut new = cur.value();
        new["spec"]["nodeName"] = json!(node);
        let conds = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": objects::now()}));
        new["status"]["conditions"] = json!(conds);
        // Binding writes spec and status together, as kube-apiserver's binding REST does.
        let key = cur.key.clone();
        match api.store.update(&key, new, Some(cur.revision)).await {
            Ok(_) => return Ok(json_response(201, &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_err(ctx, ctx.name(), e)),
        }
    }
    Err(ApiError::conflict("", "pods", ctx.name(), "too many concurrent writers; try again"))
}
