//! The API: routes a request to discovery, OpenAPI, health, or a resource handler.

use crate::alloc::ServiceAllocator;
use crate::handlers;
use crate::http::{error_response, json_response, negotiate, text, Body, Want};
use crate::registry::{Registry, Served};
use crate::request::{parse_path, parse_query, verb, ResourceRequest, Target, Verb};
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weft_api::ApiError;
use weft_store::Store;

/// The caller, from its client certificate.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

pub struct Settings {
    /// How often an idle watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// `host:port` that clients reach the API on (for discovery's server addresses).
    pub public_address: String,
}

pub struct Api {
    pub store: Store,
    pub registry: Registry,
    pub services: tokio::sync::Mutex<ServiceAllocator>,
    pub settings: Settings,
    pub ready: AtomicBool,
    /// How pods/log and pods/exec reach kubelets (None: no credential to do so).
    pub kubelet: Option<crate::pod_streams::KubeletClient>,
}

/// A resource request with everything resolved.
pub struct Ctx {
    pub served: Served,
    pub req: ResourceRequest,
    pub query: HashMap<String, String>,
    pub want: Want,
    pub user: User,
    pub content_type: String,
    pub user_agent: String,
}

impl Ctx {
    pub fn ns(&self) -> Option<&str> {
        if self.served.info.namespaced { self.req.namespace.as_deref() } else { None }
    }
    pub fn name(&self) -> &str {
        self.req.name.as_deref().unwrap_or("")
    }
    pub fn group(&self) -> &str {
        &self.served.info.group
    }
    pub fn plural(&self) -> &str {
        &self.served.info.plural
    }
    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }
    /// The field manager for managedFields: `?fieldManager=` or the user agent's program.
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager") {
            return m.clone();
        }
        self.user_agent.split('/').next().filter(|s| !s.is_empty()).unwrap_or("unknown").to_string()
    }
}

const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

impl Api {
    pub async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>, user: Option<User>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let started = std::time::Instant::now();
        let resp = self.route(req, user).await;
        tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
        resp
    }

    async fn route(self: Arc<Self>, req: Request<hyper::body::Incoming>, user: Option<User>) -> Response<Body> {
        let path = req.uri().path().to_string();
        match path.as_str() {
            "/healthz" | "/livez" => return text(200, "ok"),
            "/readyz" => {
                return if self.ready.load(Ordering::Acquire) { text(200, "ok") } else { text(503, "not ready: the store is loading") };
            }
            "/version" => return json_response(200, &crate::discovery::version()),
            _ => {}
        }
        let Some(user) = user else {
            debug_assert!(!PUBLIC_PATHS.contains(&path.as_str()));
            return error_response(&ApiError::unauthorized());
        };
        if path.starts_with("/openapi/") {
            return crate::openapi::serve(&self, &path, req.uri().query(), req.headers());
        }
        let query = parse_query(req.uri().query());
        match parse_path(&path) {
            Target::Discovery { group, version, legacy } => crate::discovery::serve(&self, group.as_deref(), version.as_deref(), legacy),
            Target::Resource(r) => {
                // Logs and exec stream from the pod's node, not from the store.
                if let (true, Some(ns), Some(name), Some(sub)) = (r.group.is_empty() && r.resource == "pods", &r.namespace, &r.name, &r.subresource) {
                    if crate::pod_streams::handles(Some(sub)) {
                        return crate::pod_streams::serve(&self, ns, name, sub, req).await;
                    }
                }
                let Some(verb) = verb(req.method(), &r, &query) else {
                    return error_response(&ApiError::method_not_allowed(format!("the server does not allow this method on the requested resource: {}", req.method())));
                };
                let Some(served) = self.registry.lookup(&r.group, &r.version, &r.resource) else {
                    return error_response(&ApiError::new(404, "NotFound", "the server could not find the requested resource"));
                };
                if served.info.namespaced && r.namespace.is_none() && matches!(verb, Verb::Get | Verb::Create | Verb::Update | Verb::Patch | Verb::Delete) && r.name.is_some() {
                    return error_response(&ApiError::new(404, "NotFound", "the server could not find the requested resource"));
                }
                let want = negotiate(req.headers());
                let header = |h: http::header::HeaderName| req.headers().get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let content_type = header(http::header::CONTENT_TYPE);
                let user_agent = header(http::header::USER_AGENT);
                let method = req.method().clone();
                let body = if matches!(method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
                    match req.into_body().collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(e) => return error_response(&ApiError::bad_request(format!("reading the request body: {e}"))),
                    }
                } else {
                    Bytes::new()
                };
                let ctx = Ctx { served, req: r, query, want, user, content_type, user_agent };
                let result = match verb {
                    Verb::Get => handlers::read::get(&self, &ctx),
                    Verb::List => handlers::read::list(&self, &ctx),
                    Verb::Watch => return handlers::watch::watch(self.clone(), ctx).unwrap_or_else(|e| error_response(&e)),
                    Verb::Create => handlers::write::create(&self, &ctx, &body).await,
                    Verb::Update => handlers::write::update(&self, &ctx, &body).await,
                    Verb::Patch => handlers::write::patch(&self, &ctx, &body).await,
                    Verb::Delete => handlers::delete::delete(&self, &ctx, &body).await,
                    Verb::DeleteCollection => handlers::delete::delete_collection(&self, &ctx, &body).await,
                };
                result.unwrap_or_else(|e| error_response(&e))
            }
            Target::Other => error_response(&ApiError::new(404, "NotFound", "the server could not find the requested resource")),
        }
    }
}
