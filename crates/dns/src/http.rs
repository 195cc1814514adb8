//! The admin port: `/metrics` (Prometheus text), `/healthz` (the process serves),
//! `/readyz` (200 once the first full sync of API state is done, 503 before).

use crate::resolve::Dns;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

pub async fn serve(listener: TcpListener, dns: Arc<Dns>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else { continue };
        let dns = dns.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let r = route(&dns, req.uri().path());
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(conn), svc).await;
        });
    }
}

pub fn route(dns: &Dns, path: &str) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match path {
        "/metrics" => (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", dns.metrics.encode()),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" if dns.ready() => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", "waiting for the first sync of services, endpoints, namespaces and pods\n".to_string()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found: try /metrics, /healthz or /readyz\n".to_string()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(ctype));
    r
}
