//! netexec's request routing, as Go's http.ServeMux does it: unclean paths
//! get a 301 to the clean one, known paths match exactly, the rest goes to `/`.
//! With `--http-override`, every request is served as a GET of that URL.

use super::{handlers, State};
use crate::golog::golog;
use crate::http_server::{self, Handler, Reply};
use http::{HeaderMap, Method, StatusCode};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;

/// One request as the endpoints see it.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    /// None when the request is synthesized from --http-override.
    pub body: Option<Incoming>,
    /// Go's r.RemoteAddr; empty for an --http-override request, as upstream.
    pub peer: Option<SocketAddr>,
}

pub fn handler(state: Arc<State>, http_override: String) -> Handler {
    http_server::handler(move |req: http::Request<Incoming>, peer| {
        let state = state.clone();
        let call = if http_override.is_empty() {
            let (parts, body) = req.into_parts();
            Ok(Call {
                method: parts.method,
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or_default().to_string(),
                headers: parts.headers,
                body: Some(body),
                peer: Some(peer),
            })
        } else {
            override_call(&http_override)
        };
        async move {
            match call {
                Ok(call) => route(call, &state).await,
                Err(msg) => Ok(http_server::go_error(StatusCode::INTERNAL_SERVER_ERROR, &msg)),
            }
        }
    })
}

fn override_call(target: &str) -> Result<Call, String> {
    let uri: http::Uri = target.parse().map_err(|e| format!("override request failed: parse {target:?}: {e}"))?;
    Ok(Call {
        method: Method::GET,
        path: if uri.path().is_empty() { "/".into() } else { uri.path().to_string() },
        query: uri.query().unwrap_or_default().to_string(),
        headers: HeaderMap::new(),
        body: None,
        peer: None,
    })
}

async fn route(call: Call, state: &Arc<State>) -> Reply {
    let clean = clean_path(&call.path);
    if clean != call.path {
        let mut target = clean;
        if !call.query.is_empty() {
            target = format!("{target}?{}", call.query);
        }
        return handlers::redirect_to(&call, &target, StatusCode::MOVED_PERMANENTLY);
    }
    match call.path.as_str() {
        "/clientip" => handlers::clientip(&call),
        "/header" => handlers::header(call).await,
        "/dial" => Ok(super::dial::handle(&call.query).await),
        "/echo" => handlers::echo(call).await,
        "/exit" => handlers::exit(call, state).await,
        "/healthz" => handlers::healthz(state),
        "/readyz" => handlers::readyz(state),
        "/hostname" | "/hostName" => handlers::hostname(&call),
        "/redirect" => handlers::redirect(call).await,
        "/shell" => handlers::shell(call).await,
        "/upload" => super::upload::handle(call, &state.upload_dir).await,
        "/shutdown" => {
            golog!("GET /shutdown");
            let _ = state.exit.send(super::Exit::Now(0));
            std::future::pending().await
        }
        _ => handlers::root(state),
    }
}

/// Go's path.Clean for request paths, keeping a trailing slash as the mux does.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return "/".into();
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if p.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn paths_clean_like_go() {
        for (raw, clean) in [("/", "/"), ("//hostname", "/hostname"), ("/a/./b/../c", "/a/c"), ("/echo/", "/echo/"), ("/..", "/"), ("", "/")] {
            assert_eq!(clean_path(raw), clean, "{raw}");
        }
    }
}
