//! The pod subresources that stream from the node: `pods/log` (a GET proxied to the
//! kubelet's containerLogs, streamed back) and `pods/exec` (the upgrade proxied to
//! the kubelet's exec and then relayed byte for byte, as kube-apiserver's
//! UpgradeAwareHandler does), and `pods/attach` and `pods/portforward` the same way
//! (port-forward's WebSocket carries SPDY, which the kubelet speaks, so the bytes
//! pass through unchanged).

// ApiError is this crate's error, returned by value as everywhere else in it.
#![allow(clippy::result_large_err)]

pub mod kubelet;
mod options;

pub use kubelet::KubeletClient;

use crate::api::Api;
use crate::http::{error_response, Body};
use bytes::Bytes;
use futures::StreamExt;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, Empty, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::convert::Infallible;
use weft_api::ApiError;

/// Whether a pods subresource is one served here.
pub fn handles(subresource: Option<&str>) -> bool {
    matches!(subresource, Some("log" | "exec" | "attach" | "portforward"))
}

pub async fn serve(api: &Api, ns: &str, name: &str, subresource: &str, req: Request<Incoming>) -> Response<Body> {
    let result = match subresource {
        "log" if matches!(*req.method(), Method::GET) => log(api, ns, name, req).await,
        "log" => Err(ApiError::method_not_allowed(format!("the server does not allow this method on the requested resource: {} pods/log", req.method()))),
        "exec" | "attach" | "portforward" if matches!(*req.method(), Method::GET | Method::POST) => stream(api, ns, name, subresource, req).await,
        _ => Err(ApiError::method_not_allowed(format!("the server does not allow this method on the requested resource: {} pods/{subresource}", req.method()))),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()).into_owned().collect()
}

fn pod(api: &Api, ns: &str, name: &str) -> Result<Value, ApiError> {
    api.store.get(&format!("/core/pods/{ns}/{name}")).map(|o| o.value()).ok_or_else(|| ApiError::not_found("", "pods", name))
}

/// The kubelet address of the pod's node, or None when the pod is not bound yet.
fn kubelet_of<'a>(api: &'a Api, pod: &Value) -> Result<Option<(std::net::SocketAddr, &'a KubeletClient)>, ApiError> {
    let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else { return Ok(None) };
    let node = api.store.get(&format!("/core/nodes/{node}")).ok_or_else(|| ApiError::not_found("", "nodes", node))?;
    let addr = kubelet::address_of(&node.value())?;
    let client = api.kubelet.as_ref().ok_or_else(|| ApiError::new(503, "ServiceUnavailable", "this API server has no client credential for kubelets (its PKI has no CA key)"))?;
    Ok(Some((addr, client)))
}

/// A backend body passed on as it arrives; a broken backend ends it.
fn relay(body: Incoming) -> Body {
    let frames = BodyStream::new(body).take_while(|r| futures::future::ready(r.is_ok())).filter_map(|r| futures::future::ready(r.ok().map(Ok::<_, Infallible>)));
    BodyExt::boxed(StreamBody::new(frames))
}

async fn log(api: &Api, ns: &str, name: &str, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let opts = options::log_request(name, &query_pairs(&req))?;
    let pod = pod(api, ns, name)?;
    let container = options::choose_container(&pod, opts.container.as_deref())?;
    let text = |body: Body| Response::builder().status(StatusCode::OK).header(header::CONTENT_TYPE, "text/plain").body(body).expect("valid response");
    // Not scheduled yet: no log, and no error, as kube-apiserver answers.
    let Some((addr, client)) = kubelet_of(api, &pod)? else { return Ok(text(crate::http::full(Bytes::new()))) };
    let path = format!("/containerLogs/{ns}/{name}/{container}?{}", options::encode(&opts.kubelet_query));
    let resp = client.send(addr, Request::get(path).body(Empty::new()).expect("valid request")).await.map_err(|e| ApiError::new(500, "InternalError", e))?;
    if resp.status().is_success() {
        return Ok(text(relay(resp.into_body())));
    }
    Err(backend_error(resp).await)
}

/// A kubelet's refusal as kube-apiserver reports it (its GenericHttpResponseChecker).
async fn backend_error(resp: Response<Incoming>) -> ApiError {
    let code = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let msg = String::from_utf8_lossy(&body).trim().to_string();
    match code {
        400 => ApiError::bad_request(msg),
        404 => ApiError::new(404, "NotFound", msg),
        500 => ApiError::internal(msg),
        _ => ApiError::new(code, "", msg),
    }
}

/// Request headers that belong to one hop, never passed on (Connection and Upgrade
/// are set again for an upgrade).
const HOP_BY_HOP: [&str; 10] = ["connection", "upgrade", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "host", "authorization"];

/// Where on the kubelet a streaming subresource goes: `exec` and `attach` name the
/// container and pass the checked options; `portForward` passes the query as it is.
fn kubelet_path(pod: &Value, ns: &str, name: &str, subresource: &str, req: &Request<Incoming>) -> Result<String, ApiError> {
    if subresource == "portforward" {
        return Ok(format!("/portForward/{ns}/{name}{}", req.uri().query().map(|q| format!("?{q}")).unwrap_or_default()));
    }
    let opts = options::exec_request(&query_pairs(req))?;
    let container = options::choose_container(pod, opts.container.as_deref())?;
    Ok(format!("/{subresource}/{ns}/{name}/{container}?{}", options::encode(&opts.kubelet_query)))
}

/// `pods/exec`, `pods/attach` and `pods/portforward`: the upgrade proxied to the
/// kubelet's `exec`, `attach` or `portForward`, then relayed byte for byte.
async fn stream(api: &Api, ns: &str, name: &str, subresource: &str, mut req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let pod = pod(api, ns, name)?;
    let path = kubelet_path(&pod, ns, name, subresource, &req)?;
    let Some((addr, client)) = kubelet_of(api, &pod)? else { return Err(ApiError::bad_request(format!("pod {name} does not have a host assigned"))) };
    let mut up = Request::builder().method(req.method().clone()).uri(path);
    for (k, v) in req.headers() {
        if !HOP_BY_HOP.contains(&k.as_str()) && k != header::CONTENT_LENGTH {
            up = up.header(k, v);
        }
    }
    if let Some(u) = req.headers().get(header::UPGRADE) {
        up = up.header(header::CONNECTION, "Upgrade").header(header::UPGRADE, u);
    }
    let up = up.body(Empty::new()).map_err(|e| ApiError::bad_request(format!("building the kubelet request: {e}")))?;
    let client_upgrade = hyper::upgrade::on(&mut req);
    let resp = client.send(addr, up).await.map_err(|e| ApiError::new(500, "InternalError", e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The backend's answer goes back as it is: clients read its body as the reason.
        let mut out = Response::builder().status(resp.status());
        if let Some(ct) = resp.headers().get(header::CONTENT_TYPE) {
            out = out.header(header::CONTENT_TYPE, ct);
        }
        return Ok(out.body(relay(resp.into_body())).expect("valid response"));
    }
    let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let backend_upgrade = hyper::upgrade::on(resp);
    let target = format!("{subresource} {ns}/{name}");
    tokio::spawn(async move {
        let (client_io, backend_io) = match tokio::join!(client_upgrade, backend_upgrade) {
            (Ok(c), Ok(b)) => (c, b),
            (c, b) => return tracing::debug!(%target, client = ?c.err(), backend = ?b.err(), "pod stream: an upgrade did not complete"),
        };
        let (mut c, mut b) = (TokioIo::new(client_io), TokioIo::new(backend_io));
        match tokio::io::copy_bidirectional(&mut c, &mut b).await {
            Ok((up, down)) => tracing::debug!(%target, up, down, "pod stream ended"),
            Err(e) => tracing::debug!(%target, %e, "pod stream ended"),
        }
    });
    Ok(out.body(crate::http::full(Bytes::new())).expect("valid response"))
}
