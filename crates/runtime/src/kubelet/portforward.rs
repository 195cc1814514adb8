//! `GET|POST /portForward/{namespace}/{pod}`: `kubectl port-forward`. Each connection
//! the client accepts locally becomes a pair of SPDY streams (an error stream and a
//! data stream, tied by a `requestid` header and naming the pod `port`); the kubelet
//! connects to that port on localhost inside the pod's network namespace, as a
//! container runtime does, and relays bytes both ways.
//!
//! Two transports carry the SPDY session: a WebSocket whose subprotocol is
//! `SPDY/3.1+portforward.k8s.io` (kubectl 1.31 and newer; each message carries SPDY
//! bytes), and the older HTTP upgrade to `SPDY/3.1` with
//! `X-Stream-Protocol-Version: portforward.k8s.io`.

mod forward;
mod session;
mod transport;

use super::upgrade::{self, Subprotocol};
use super::{text, Body, Kubelet};
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use std::sync::Arc;

pub use session::Target;

/// The port-forward protocol, the one version there is.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// What the WebSocket transport is called: SPDY tunnelled in WebSocket messages.
const TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

#[derive(Clone, Copy)]
struct Tunnel;

impl Subprotocol for Tunnel {
    fn supported() -> Vec<Tunnel> {
        vec![Tunnel]
    }
    fn name(self) -> &'static str {
        TUNNEL
    }
}

pub async fn handle(
    k: &Kubelet,
    ns: &str,
    name: &str,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let Some(pod) = k.pods.get(ns, name) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let spec = pod.spec.as_ref();
    let netns = if spec.and_then(|s| s.host_network).unwrap_or(false) {
        k.cfg.netns.clone()
    } else {
        let path = k.pod_dir(&pod).join("netns");
        if !path.exists() {
            return text(StatusCode::BAD_REQUEST, format!("pod {ns}/{name} has no network namespace on node {} yet: it is not running; wait until it is Running", k.cfg.name));
        }
        Some(path)
    };
    let target = Arc::new(Target {
        pod: format!("{ns}/{name}"),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        netns,
    });
    if upgrade::header_tokens(&req, "upgrade").any(|v| v.eq_ignore_ascii_case("SPDY/3.1")) {
        let offered: Vec<&str> = upgrade::header_tokens(&req, "x-stream-protocol-version").collect();
        if !offered.is_empty() && !offered.contains(&PROTOCOL) {
            return text(
                StatusCode::FORBIDDEN,
                format!(
                    "requested protocol(s) are not supported: {offered:?}; supports [{PROTOCOL:?}]"
                ),
            );
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(io) => transport::over_spdy_upgrade(io, target).await,
                Err(e) => tracing::debug!(%e, "port-forward: the upgrade did not complete"),
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "SPDY/3.1")
            .header("X-Stream-Protocol-Version", PROTOCOL)
            .body(Empty::new().boxed())
            .expect("valid response");
    }
    let up = match upgrade::accept::<Tunnel>(&mut req, "port-forward") {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let response = up.response();
    let on_upgrade = up.on_upgrade;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(io) => transport::over_websocket(io, target).await,
            Err(e) => tracing::debug!(%e, "port-forward: the upgrade did not complete"),
        }
    });
    response
}
