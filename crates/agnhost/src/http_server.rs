//! The HTTP(S) serving loop shared by netexec, serve-hostname and porter:
//! HTTP/1.1 and HTTP/2 like Go's net/http, optional TLS, and a graceful stop
//! with a deadline like Go's http.Server.Shutdown.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub type Body = Full<Bytes>;

/// Returned by a handler that must drop the connection without answering
/// (what a Go handler's panic does).
#[derive(Debug)]
pub struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("handler aborted the connection")
    }
}

impl std::error::Error for Abort {}

pub type Reply = Result<Response<Body>, Abort>;
pub type Handler = Arc<dyn Fn(Request<Incoming>, SocketAddr) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// A response with a text body; Go's content sniffing labels text this way.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let body = body.into();
    let mut b = Response::builder().status(status);
    if !body.is_empty() {
        b = b.header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8");
    }
    b.body(Full::new(body)).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Go's http.Error: the message plus a newline, marked as not sniffable.
pub fn go_error(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = text(status, format!("{msg}\n"));
    r.headers_mut().insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    r
}

/// Serves `listener` until `stop` carries a grace period, then stops
/// accepting, asks open connections to finish their requests and waits for
/// them at most that long. Returns at once if the sender of `stop` is dropped.
pub async fn serve(listener: tokio::net::TcpListener, tls: Option<Arc<rustls::ServerConfig>>, handler: Handler, mut stop: watch::Receiver<Option<Duration>>) {
    let graceful = GracefulShutdown::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Go's server also backs off and retries on accept errors (e.g. EMFILE).
                    crate::golog::golog!("http: Accept error: {e}; retrying in 50ms");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            changed = stop.changed() => {
                // A dropped sender means the process is ending without grace.
                if changed.is_err() { return; }
                if stop.borrow().is_some() { break; }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let handler = handler.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let h = handler.clone();
                async move { h(req, peer).await }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let result = match acceptor {
                None => watcher.watch(builder.serve_connection(TokioIo::new(stream), svc).into_owned()).await,
                Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => watcher.watch(builder.serve_connection(TokioIo::new(tls), svc).into_owned()).await,
                    Ok(Err(e)) => {
                        crate::golog::golog!("http: TLS handshake error from {}: {e}", crate::go_errors::canonical(peer));
                        return;
                    }
                    Err(_) => return,
                },
            };
            if let Err(e) = result {
                tracing::debug!("http: connection from {peer} ended: {e}");
            }
        });
    }
    drop(listener);
    let grace = stop.borrow().unwrap_or_default();
    let outcome = match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => "<nil>",
        Err(_) => "context deadline exceeded",
    };
    crate::golog::golog!("Graceful shutdown completed with: {outcome}");
}

/// A handler for the common case: every request gets the same kind of answer.
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |req, peer| Box::pin(f(req, peer)))
}

