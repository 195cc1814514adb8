//! The WebSocket upgrade that `exec`, `attach` and `portForward` share: the checks the
//! kubelet makes before switching protocols, and the 101 answer with the negotiated
//! subprotocol.

use super::{text, Body};
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

/// A family of WebSocket subprotocols a handler speaks.
pub trait Subprotocol: Copy + Sized {
    /// Every version spoken, best first.
    fn supported() -> Vec<Self>;
    fn name(self) -> &'static str;

    /// The best version the client offers (`Sec-WebSocket-Protocol` values).
    fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let offered: Vec<&str> = offered.into_iter().flat_map(|h| h.split(',')).map(str::trim).collect();
        Self::supported().into_iter().find(|p| offered.contains(&p.name()))
    }
}

/// An accepted upgrade: answer with [`Upgrade::response`], then await `on_upgrade`.
pub struct Upgrade<P> {
    pub protocol: P,
    pub on_upgrade: OnUpgrade,
    key: Vec<u8>,
}

/// A header's comma-separated values over all its lines, each trimmed.
pub fn header_tokens<'a>(req: &'a Request<Incoming>, name: &'a str) -> impl Iterator<Item = &'a str> {
    req.headers().get_all(name).into_iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim)
}

fn header_values(req: &Request<Incoming>, name: header::HeaderName) -> impl Iterator<Item = &str> {
    req.headers().get_all(name).into_iter().filter_map(|v| v.to_str().ok())
}

/// Checks the request's upgrade headers (`what` names the operation in errors). The
/// error is the answer to send as it is, made once per request.
#[allow(clippy::result_large_err)]
pub fn accept<P: Subprotocol>(req: &mut Request<Incoming>, what: &str) -> Result<Upgrade<P>, Response<Body>> {
    let upgrade = header_values(req, header::UPGRADE).collect::<Vec<_>>().join(",").to_ascii_lowercase();
    if !upgrade.split(',').any(|u| u.trim() == "websocket") {
        let msg = if upgrade.contains("spdy") {
            let names: Vec<&str> = P::supported().into_iter().map(|p| p.name()).collect();
            format!("weft's kubelet streams {what} over WebSocket ({}), not SPDY: use kubectl v1.30 or newer, which tries WebSocket first", names.join(", "))
        } else {
            "unable to upgrade: missing upgrade headers in request".to_string()
        };
        return Err(text(StatusCode::BAD_REQUEST, msg));
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).map(|v| v.as_bytes().to_vec()) else {
        return Err(text(StatusCode::BAD_REQUEST, "unable to upgrade: no Sec-WebSocket-Key header"));
    };
    let offered: Vec<String> = header_values(req, header::SEC_WEBSOCKET_PROTOCOL).map(String::from).collect();
    let Some(protocol) = P::negotiate(offered.iter().map(String::as_str)) else {
        let supported: Vec<&str> = P::supported().into_iter().map(|p| p.name()).collect();
        return Err(text(StatusCode::BAD_REQUEST, format!("requested protocol(s) are not supported: {offered:?}; supports {supported:?}")));
    };
    Ok(Upgrade { protocol, on_upgrade: hyper::upgrade::on(req), key })
}

impl<P: Subprotocol> Upgrade<P> {
    /// The 101 answer; the stream is `on_upgrade` once it has been sent.
    pub fn response(&self) -> Response<Body> {
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, tokio_tungstenite::tungstenite::handshake::derive_accept_key(&self.key))
            .header(header::SEC_WEBSOCKET_PROTOCOL, self.protocol.name())
            .body(Empty::new().boxed())
            .expect("valid response")
    }
}
