//! OpenAPI documents for kubectl: `/openapi/v3` (an index of group-versions),
//! `/openapi/v3/<group-version>` (`explain`, strategic merge patches for `apply`, and the
//! check that the server takes `fieldValidation`), and `/openapi/v2` (kubectl's fallback
//! for client-side validation and patch types; protobuf or JSON).
//!
//! Documents are generated from k8s-openapi's schemas on first request and cached with
//! their hash as ETag; a group-version with custom resources is regenerated when the
//! resources it serves change.

mod custom;
mod paths;
mod proto;
mod schemas;
mod strict;
mod v2;
mod v3;

use crate::api::Api;
use crate::http::{error_response, full, Body};
use crate::registry::Served;
use bytes::Bytes;
use http::{header, HeaderMap, Response, StatusCode};
use schemas::Builtins;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use weft_api::resources::builtin_resources;
use weft_api::ApiError;

/// What client-go asks for (`...v2@v1.0+protobuf`) is not a valid media type, so the
/// answer says it as kube-apiserver does; Go's mime parser rejects the `@`.
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

pub fn serve(api: &Api, path: &str, query: Option<&str>, headers: &HeaderMap) -> Response<Body> {
    let path = path.trim_end_matches('/');
    match path {
        "/openapi/v2" => {
            let (json, pb) = v2_docs(api);
            if wants_v2_protobuf(headers) { respond(&pb, V2_PROTOBUF, headers) } else { respond(&json, "application/json", headers) }
        }
        "/openapi/v3" => respond(&index(api), "application/json", headers),
        _ => {
            let Some(gv) = path.strip_prefix("/openapi/v3/") else { return not_found(path) };
            if !accepts_json(headers) {
                return error_response(&ApiError::not_acceptable("only application/json is served for OpenAPI v3"));
            }
            let Some(doc) = v3_doc(api, gv) else { return not_found(path) };
            let hash = crate::request::parse_query(query).remove("hash");
            match hash {
                Some(h) if h != doc.etag => redirect(&format!("/openapi/v3/{gv}?hash={}", doc.etag)),
                Some(_) => {
                    let mut resp = respond(&doc, "application/json", headers);
                    let h = resp.headers_mut();
                    // The hash names this exact content, so clients may keep it for good.
                    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("public, immutable"));
                    let expires = (chrono::Utc::now() + chrono::Duration::days(365)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
                    if let Ok(v) = header::HeaderValue::from_str(&expires) {
                        h.insert(header::EXPIRES, v);
                    }
                    resp
                }
                None => respond(&doc, "application/json", headers),
            }
        }
    }
}

/// Server-side field validation of a create, update or patch result, for the request's
/// `?fieldValidation=` (`directive`): `Strict` turns undeclared fields into a 400 naming
/// them all; `Warn` (the default) returns `Warning` header values for them; `Ignore`
/// checks nothing.
pub fn field_validation(served: &Served, directive: Option<&str>, obj: &Value) -> Result<Vec<String>, ApiError> {
    match directive.unwrap_or("Warn") {
        "Ignore" => Ok(Vec::new()),
        "Warn" => Ok(strict::warnings(&unknown_fields(served, obj))),
        "Strict" => {
            let fields = unknown_fields(served, obj);
            if fields.is_empty() { Ok(Vec::new()) } else { Err(strict::strict_decoding_error(&served.info.kind, &served.info.version, &fields)) }
        }
        other => Err(ApiError::bad_request(format!("fieldValidation must be one of Ignore, Warn or Strict, not {other:?}"))),
    }
}

/// The fields of `obj` that the schema of `served`'s kind does not declare, as
/// `spec.ports[0].nodeport`.
pub fn unknown_fields(served: &Served, obj: &Value) -> Vec<String> {
    let b = builtins();
    let lookup = |n: &str| b.components.get(n);
    if served.custom {
        let [_, (_, schema)] = custom::components(served);
        return strict::unknown_fields(&schema, &lookup, obj);
    }
    let info = &served.info;
    match b.kind_name(&info.group, &info.version, &info.kind).and_then(|n| b.components.get(n)) {
        Some(schema) => strict::unknown_fields(schema, &lookup, obj),
        None => Vec::new(),
    }
}

/// A generated document and its hash.
struct Doc {
    body: Bytes,
    etag: String,
}

impl Doc {
    fn new(body: Vec<u8>) -> Doc {
        let digest = ring::digest::digest(&ring::digest::SHA512, &body);
        let etag = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Doc { body: Bytes::from(body), etag }
    }
    fn json(v: &Value) -> Doc {
        Doc::new(serde_json::to_vec(v).expect("JSON serializes"))
    }
}

#[derive(Default)]
struct Cache {
    /// Group-version path → (fingerprint of its resources, document).
    v3: HashMap<String, (u64, Arc<Doc>)>,
    /// (fingerprint of all resources, JSON, protobuf).
    v2: Option<(u64, Arc<Doc>, Arc<Doc>)>,
}

static BUILTINS: OnceLock<Builtins> = OnceLock::new();
static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();

fn builtins() -> &'static Builtins {
    BUILTINS.get_or_init(|| schemas::builtin_components(&builtin_resources()))
}

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

fn kube_version() -> String {
    crate::discovery::version()["gitVersion"].as_str().unwrap_or("").to_string()
}

/// Identifies a set of served resources, so a cached document is reused while it holds.
fn fingerprint(served: &[Served]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{served:?}").hash(&mut h);
    h.finish()
}

fn v3_doc_for(cache: &mut Cache, gv: &str, served: &[Served]) -> Arc<Doc> {
    let fp = fingerprint(served);
    if let Some((f, d)) = cache.v3.get(gv) {
        if *f == fp {
            return d.clone();
        }
    }
    let doc = Arc::new(Doc::json(&v3::document(builtins(), served, &kube_version())));
    cache.v3.insert(gv.to_string(), (fp, doc.clone()));
    doc
}

fn v3_doc(api: &Api, gv: &str) -> Option<Arc<Doc>> {
    let (_, served) = v3::by_group_version(api.registry.all()).into_iter().find(|(p, _)| p == gv)?;
    Some(v3_doc_for(&mut cache(), gv, &served))
}

fn index(api: &Api) -> Doc {
    let groups = v3::by_group_version(api.registry.all());
    let mut c = cache();
    c.v3.retain(|gv, _| groups.iter().any(|(p, _)| p == gv));
    let mut paths = serde_json::Map::new();
    for (gv, served) in &groups {
        let doc = v3_doc_for(&mut c, gv, served);
        paths.insert(gv.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", doc.etag)}));
    }
    Doc::json(&json!({"paths": paths}))
}

fn v2_docs(api: &Api) -> (Arc<Doc>, Arc<Doc>) {
    let all = api.registry.all();
    let fp = fingerprint(&all);
    let mut c = cache();
    if let Some((f, j, p)) = &c.v2 {
        if *f == fp {
            return (j.clone(), p.clone());
        }
    }
    let b = builtins();
    let custom: Vec<(String, Value)> = all.iter().filter(|s| s.custom).flat_map(custom::components).collect();
    let doc = v2::document(b.components.iter().chain(custom.iter().map(|(n, s)| (n, s))), &kube_version());
    let json = Arc::new(Doc::json(&doc));
    let pb = Arc::new(Doc::new(proto::encode_document(&doc)));
    c.v2 = Some((fp, json.clone(), pb.clone()));
    (json, pb)
}

fn wants_v2_protobuf(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("application/com.github.proto-openapi.spec.v2")
}

fn accepts_json(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.is_empty() || accept.split(',').map(|p| p.split(';').next().unwrap_or("").trim()).any(|t| matches!(t, "application/json" | "*/*" | "application/*"))
}

/// 200 with the document, or 304 when the client's `If-None-Match` names it.
fn respond(doc: &Doc, content_type: &str, headers: &HeaderMap) -> Response<Body> {
    let etag = format!("\"{}\"", doc.etag);
    let matched = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    let builder = Response::builder().header(header::ETAG, &etag).header(header::VARY, "Accept");
    if matched {
        return builder.status(StatusCode::NOT_MODIFIED).body(full(Bytes::new())).expect("valid response");
    }
    builder.status(StatusCode::OK).header(header::CONTENT_TYPE, content_type).body(full(doc.body.clone())).expect("valid response")
}

fn redirect(location: &str) -> Response<Body> {
    Response::builder().status(StatusCode::MOVED_PERMANENTLY).header(header::LOCATION, location).body(full(Bytes::new())).expect("valid response")
}

fn not_found(path: &str) -> Response<Body> {
    error_response(&ApiError::new(404, "NotFound", format!("the server could not find the requested resource: {path}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use http::HeaderValue;
    use http_body_util::BodyExt;

    fn test_api() -> (Api, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = weft_store::Store::open(&dir.path().join("store.redb")).unwrap();
        let api = Api {
            store,
            registry: Registry::new(),
            services: tokio::sync::Mutex::new(crate::alloc::ServiceAllocator::new(vec!["10.96.0.0/16".parse().unwrap()], (30000, 32767))),
            settings: crate::api::Settings { bookmark_interval: std::time::Duration::from_secs(60), public_address: "127.0.0.1:6443".into() },
            ready: true.into(),
            kubelet: None,
        };
        (api, dir)
    }

    fn body(resp: Response<Body>) -> Bytes {
        futures::executor::block_on(resp.into_body().collect()).unwrap().to_bytes()
    }

    fn get(api: &Api, path_and_query: &str, headers: &[(header::HeaderName, &str)]) -> Response<Body> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        serve(api, path, query, &h)
    }

    #[test]
    fn index_lists_every_group_version_with_a_hashed_url_that_serves_it() {
        let (api, _dir) = test_api();
        let index: Value = serde_json::from_slice(&body(get(&api, "/openapi/v3", &[]))).unwrap();
        for gv in ["api/v1", "apis/apps/v1", "apis/networking.k8s.io/v1", "apis/discovery.k8s.io/v1", "apis/coordination.k8s.io/v1", "apis/apiextensions.k8s.io/v1"] {
            let url = index["paths"][gv]["serverRelativeURL"].as_str().unwrap_or_else(|| panic!("{gv} missing"));
            assert!(url.starts_with(&format!("/openapi/v3/{gv}?hash=")), "{url}");
            let resp = get(&api, url, &[]);
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "public, immutable");
        }
    }

    #[test]
    fn a_stale_hash_redirects_to_the_current_one() {
        let (api, _dir) = test_api();
        let resp = get(&api, "/openapi/v3/apis/apps/v1?hash=0000", &[]);
        assert_eq!(resp.status(), 301);
        let loc = resp.headers()[header::LOCATION].to_str().unwrap();
        assert!(loc.starts_with("/openapi/v3/apis/apps/v1?hash=") && !loc.ends_with("=0000"), "{loc}");
    }

    #[test]
    fn if_none_match_with_the_etag_gets_304() {
        let (api, _dir) = test_api();
        let first = get(&api, "/openapi/v3/api/v1", &[]);
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_string();
        assert_eq!(get(&api, "/openapi/v3/api/v1", &[(header::IF_NONE_MATCH, &etag)]).status(), 304);
        assert_eq!(get(&api, "/openapi/v3/api/v1", &[(header::IF_NONE_MATCH, "\"other\"")]).status(), 200);
    }

    #[test]
    fn unknown_paths_are_404() {
        let (api, _dir) = test_api();
        assert_eq!(get(&api, "/openapi/v3/apis/nope/v1", &[]).status(), 404);
        assert_eq!(get(&api, "/openapi/v4", &[]).status(), 404);
    }

    #[test]
    fn crd_groups_appear_and_change_the_hash_when_the_crd_changes() {
        let (api, _dir) = test_api();
        let mut crd = custom::crontab_crd();
        api.registry.set_crds(&[crd.clone()]);
        let index: Value = serde_json::from_slice(&body(get(&api, "/openapi/v3", &[]))).unwrap();
        let first = index["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"].as_str().unwrap().to_string();
        let doc: Value = serde_json::from_slice(&body(get(&api, &first, &[]))).unwrap();
        assert!(doc["components"]["schemas"]["com.example.stable.v1.CronTab"].is_object());

        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] = json!({"type": "string"});
        api.registry.set_crds(&[crd]);
        let index: Value = serde_json::from_slice(&body(get(&api, "/openapi/v3", &[]))).unwrap();
        let second = index["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"].as_str().unwrap();
        assert_ne!(first, second);
        let doc: Value = serde_json::from_slice(&body(get(&api, second, &[]))).unwrap();
        assert!(doc["components"]["schemas"]["com.example.stable.v1.CronTab"]["properties"]["spec"]["properties"]["image"].is_object());

        api.registry.set_crds(&[]);
        let index: Value = serde_json::from_slice(&body(get(&api, "/openapi/v3", &[]))).unwrap();
        assert!(index["paths"].get("apis/stable.example.com/v1").is_none());
    }

    #[test]
    fn v2_is_protobuf_when_asked_and_json_otherwise() {
        let (api, _dir) = test_api();
        api.registry.set_crds(&[custom::crontab_crd()]);
        let pb = get(&api, "/openapi/v2", &[(header::ACCEPT, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")]);
        assert_eq!(pb.headers()[header::CONTENT_TYPE], V2_PROTOBUF);
        let pb = body(pb);
        assert_eq!(&pb[..5], b"\x0a\x032.0");
        let json: Value = serde_json::from_slice(&body(get(&api, "/openapi/v2", &[(header::ACCEPT, "application/json")]))).unwrap();
        assert_eq!(json["swagger"], "2.0");
        assert!(json["definitions"]["io.k8s.api.core.v1.Service"]["properties"]["spec"]["$ref"].as_str().unwrap().starts_with("#/definitions/"));
        assert!(json["definitions"]["com.example.stable.v1.CronTab"].is_object());
    }

    #[test]
    fn field_validation_is_strict_warn_or_ignore_as_asked() {
        let (api, _dir) = test_api();
        let svc = api.registry.lookup("", "v1", "services").unwrap();
        let obj = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"prots": []}});
        let e = field_validation(&svc, Some("Strict"), &obj).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.prots\""));
        assert_eq!(field_validation(&svc, None, &obj).unwrap(), vec![r#"299 - "unknown field \"spec.prots\"""#]);
        assert_eq!(field_validation(&svc, Some("Ignore"), &obj).unwrap(), Vec::<String>::new());
        assert!(field_validation(&svc, Some("Strict"), &json!({"spec": {"ports": []}})).unwrap().is_empty());
        assert_eq!(field_validation(&svc, Some("Loud"), &obj).unwrap_err().code, 400);
    }

    #[test]
    fn unknown_fields_checks_builtins_and_custom_resources() {
        let (api, _dir) = test_api();
        api.registry.set_crds(&[custom::crontab_crd()]);
        let svc = api.registry.lookup("", "v1", "services").unwrap();
        assert_eq!(unknown_fields(&svc, &json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP", "typo": 1}})), vec!["spec.typo"]);
        let ct = api.registry.lookup("stable.example.com", "v1", "crontabs").unwrap();
        assert_eq!(unknown_fields(&ct, &json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "a"}, "spec": {"cronSpec": "* * * * *", "imag": "x"}})), vec!["spec.imag"]);
    }
}
