//! httpGet, tcpSocket and grpc probes (and httpGet lifecycle hooks), made as the
//! kubelet makes them: from the node's network namespace to the pod's IP. Sockets are
//! created inside the node's netns (a socket keeps the namespace it was made in) and
//! then driven on the agent's runtime. Messages follow upstream's wording.

use crate::probe::{HttpGet, Outcome, Scheme};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use weft_kernel::Netns;

/// The User-Agent upstream's prober sends (`kube-probe/<major>.<minor>`).
pub const USER_AGENT: &str = "kube-probe/1.33";
/// How much of a response body is read (upstream's limit).
const MAX_BODY: usize = 10 * 1024;
const MAX_REDIRECTS: usize = 10;

/// Connects to `addr` from `ns` (None: the agent's own namespace).
pub async fn connect(ns: Option<&Netns>, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let make = || socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP));
    let sock = match ns {
        Some(ns) => weft_kernel::run_in(ns, make).map_err(|e| std::io::Error::other(e.to_string()))??,
        None => make()?,
    };
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(sock)).connect(addr).await
}

/// Go's wording for a dial error: "dial tcp 10.244.1.5:81: connect: connection refused".
pub(crate) fn dial_error(addr: SocketAddr, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => {
            let s = e.to_string();
            let s = s.split(" (os error").next().unwrap_or(&s).to_lowercase();
            format!("connect: {s}")
        }
    };
    format!("dial tcp {addr}: {why}")
}

async fn dial(ns: Option<&Netns>, addr: SocketAddr, deadline: Instant) -> Result<TcpStream, String> {
    match timeout_at(deadline, connect(ns, addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(dial_error(addr, &e)),
        Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// tcpSocket: success when the connection is established.
pub async fn tcp(ns: Option<&Netns>, host: IpAddr, port: u16, timeout: Duration) -> Outcome {
    match dial(ns, SocketAddr::new(host, port), Instant::now() + timeout).await {
        Ok(_) => Outcome::Success,
        Err(e) => Outcome::Failure(e),
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// httpGet: 200..399 is success; same-host redirects are followed (up to 10), a
/// redirect elsewhere ends the probe with a warning, as upstream.
pub async fn http_get(ns: Option<&Netns>, h: &HttpGet, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut target = (h.scheme, h.host, h.port, h.path.clone());
    for hop in 0..=MAX_REDIRECTS {
        let url = url_of(target.0, target.1, target.2, &target.3);
        let resp = match timeout_at(deadline, get_once(ns, &target, &h.headers, deadline)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Outcome::Failure(format!("Get {url:?}: {e}")),
            Err(_) => return Outcome::Failure(format!("Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
        };
        let (code, location, body) = resp;
        if (300..400).contains(&code) {
            if let Some(next) = location.as_deref().and_then(|l| redirect_target(&target, l)) {
                if next.1 == target.1 {
                    if hop == MAX_REDIRECTS {
                        return Outcome::Failure(format!("Get {url:?}: stopped after 10 redirects"));
                    }
                    target = next;
                    continue;
                }
            }
            return Outcome::Warning(format!("Probe terminated redirects, Response body: {}", String::from_utf8_lossy(&body)));
        }
        return if (200..400).contains(&code) { Outcome::Success } else { Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")) };
    }
    unreachable!("the loop returns by its last hop")
}

fn url_of(scheme: Scheme, host: IpAddr, port: u16, path: &str) -> String {
    let s = if scheme == Scheme::Https { "https" } else { "http" };
    format!("{s}://{}{path}", SocketAddr::new(host, port))
}

type Target = (Scheme, IpAddr, u16, String);

/// Where a `Location` points, relative to the request that got it. Only IP hosts are
/// followed (weft's prober does not resolve names); others end the chain.
fn redirect_target(from: &Target, location: &str) -> Option<Target> {
    if location.starts_with('/') && !location.starts_with("//") {
        return Some((from.0, from.1, from.2, location.to_string()));
    }
    let (scheme, rest) = if let Some(r) = location.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = location.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        // A relative path: resolved against the current path's directory.
        let dir = &from.3[..from.3.rfind('/').map(|i| i + 1).unwrap_or(0)];
        return Some((from.0, from.1, from.2, format!("{dir}{location}")));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let default_port = if scheme == Scheme::Https { 443 } else { 80 };
    let (host, port) = if let Ok(sa) = authority.parse::<SocketAddr>() {
        (sa.ip(), sa.port())
    } else {
        (authority.trim_matches(|c| c == '[' || c == ']').parse().ok()?, default_port)
    };
    Some((scheme, host, port, path))
}

/// One GET: (status, Location, first 10 KiB of the body).
async fn get_once(ns: Option<&Netns>, t: &Target, headers: &[(String, String)], deadline: Instant) -> Result<(u16, Option<String>, Vec<u8>), String> {
    let addr = SocketAddr::new(t.1, t.2);
    let tcp = dial(ns, addr, deadline).await?;
    let io: Box<dyn Io> = match t.0 {
        Scheme::Http => Box::new(tcp),
        Scheme::Https => Box::new(tls(tcp, t.1).await.map_err(|e| format!("tls: {e}"))?),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::get(t.3.as_str());
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("host") {
        req = req.header(http::header::HOST, addr.to_string());
    }
    if !has("user-agent") {
        req = req.header(http::header::USER_AGENT, USER_AGENT);
    }
    if !has("accept") {
        req = req.header(http::header::ACCEPT, "*/*");
    }
    req = req.header(http::header::CONNECTION, "close");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let code = resp.status().as_u16();
    let location = resp.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    while buf.len() < MAX_BODY {
        match body.frame().await {
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    buf.extend_from_slice(d);
                }
            }
            _ => break,
        }
    }
    buf.truncate(MAX_BODY);
    Ok((code, location, buf))
}

/// TLS without certificate verification, as upstream's HTTPS probes.
async fn tls(tcp: TcpStream, host: IpAddr) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::IpAddress(host.into());
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await
}

/// Accepts any certificate (still checking that the handshake is signed by it).
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, m: &[u8], c: &rustls::pki_types::CertificateDer<'_>, d: &rustls::DigitallySignedStruct) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, m: &[u8], c: &rustls::pki_types::CertificateDer<'_>, d: &rustls::DigitallySignedStruct) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// grpc: `grpc.health.v1.Health/Check` over HTTP/2 without TLS (h2c), as upstream.
pub async fn grpc(ns: Option<&Netns>, host: IpAddr, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = SocketAddr::new(host, port);
    let deadline = Instant::now() + timeout;
    match timeout_at(deadline, grpc_check(ns, addr, service, deadline)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Outcome::Failure(format!("failed to connect service {:?} within {}s: {e}", addr.to_string(), timeout.as_secs())),
        Err(_) => Outcome::Failure(format!("timeout: health rpc did not complete within {}s", timeout.as_secs())),
    }
}

async fn grpc_check(ns: Option<&Netns>, addr: SocketAddr, service: &str, deadline: Instant) -> Result<Outcome, String> {
    let tcp = dial(ns, addr, deadline).await?;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, USER_AGENT)
        .body(Full::new(Bytes::from(grpc_frame(&health_request(service)))))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let http_status = resp.status();
    let head = resp.headers().clone();
    let collected = resp.into_body().collect().await.map_err(|e| e.to_string())?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let body = collected.to_bytes();
    let get = |k: &str| trailers.get(k).or_else(|| head.get(k)).and_then(|v| v.to_str().ok()).map(str::to_string);
    let code: i64 = match get("grpc-status") {
        Some(c) => c.parse().unwrap_or(2),
        None if http_status != http::StatusCode::OK => return Ok(Outcome::Failure(format!("health rpc probe failed: HTTP status {http_status}"))),
        None => 2,
    };
    let message = get("grpc-message").unwrap_or_default();
    Ok(grpc_outcome(code, &message, &body))
}

/// The protobuf `HealthCheckRequest{service}`.
fn health_request(service: &str) -> Vec<u8> {
    let mut m = Vec::new();
    if !service.is_empty() {
        m.push(0x0a);
        put_varint(&mut m, service.len() as u64);
        m.extend_from_slice(service.as_bytes());
    }
    m
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A gRPC message frame: not compressed, big-endian length, message.
fn grpc_frame(msg: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8];
    f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    f.extend_from_slice(msg);
    f
}

const SERVING_STATUS: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// Classifies a Check answer: gRPC status, then the `status` field of
/// `HealthCheckResponse` (1 = SERVING).
fn grpc_outcome(code: i64, message: &str, body: &[u8]) -> Outcome {
    match code {
        0 => {}
        12 => return Outcome::Failure(format!("this server doesn't implement the grpc health protocol (grpc.health.v1.Health): {message}")),
        4 => return Outcome::Failure("timeout: health rpc did not complete".to_string()),
        c => return Outcome::Failure(format!("health rpc probe failed: rpc error: code = {} desc = {message}", grpc_code_name(c))),
    }
    let msg = body.get(5..).unwrap_or_default();
    let status = serving_status(msg);
    if status == 1 {
        Outcome::Success
    } else {
        let name = SERVING_STATUS.get(status as usize).copied().unwrap_or("UNKNOWN");
        Outcome::Failure(format!("service unhealthy (responded with {name:?})"))
    }
}

/// Field 1 (varint) of the message; 0 when absent.
fn serving_status(mut m: &[u8]) -> u64 {
    let mut status = 0;
    while let Some((&tag, rest)) = m.split_first() {
        m = rest;
        let Some((v, rest)) = varint(m) else { break };
        match tag & 7 {
            0 => {
                if tag >> 3 == 1 {
                    status = v;
                }
                m = rest;
            }
            2 => m = rest.get(v as usize..).unwrap_or_default(),
            _ => break,
        }
    }
    status
}

fn varint(m: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, b) in m.iter().enumerate().take(10) {
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, &m[i + 1..]));
        }
    }
    None
}

fn grpc_code_name(c: i64) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal",
        "Unavailable", "DataLoss", "Unauthenticated",
    ];
    NAMES.get(c as usize).copied().unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(path: &str) -> Target {
        (Scheme::Http, "10.0.0.1".parse().unwrap(), 8080, path.into())
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        assert_eq!(redirect_target(&t("/a/b"), "/c"), Some(t("/c")));
        assert_eq!(redirect_target(&t("/a/b"), "c?x=1"), Some(t("/a/c?x=1")));
        assert_eq!(redirect_target(&t("/"), "https://10.0.0.1:8443/x"), Some((Scheme::Https, "10.0.0.1".parse().unwrap(), 8443, "/x".into())));
        assert_eq!(redirect_target(&t("/"), "http://10.0.0.2"), Some((Scheme::Http, "10.0.0.2".parse().unwrap(), 80, "/".into())));
        assert_eq!(redirect_target(&t("/"), "http://[fd00::1]:81/y"), Some((Scheme::Http, "fd00::1".parse().unwrap(), 81, "/y".into())));
        assert_eq!(redirect_target(&t("/"), "http://example.com/"), None);
    }

    #[test]
    fn grpc_requests_and_answers_are_framed_protobuf() {
        assert_eq!(grpc_frame(&health_request("")), vec![0, 0, 0, 0, 0]);
        assert_eq!(grpc_frame(&health_request("db")), vec![0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']);
        assert_eq!(grpc_outcome(0, "", &[0, 0, 0, 0, 2, 0x08, 1]), Outcome::Success);
        assert_eq!(grpc_outcome(0, "", &[0, 0, 0, 0, 2, 0x08, 2]), Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into()));
        assert_eq!(grpc_outcome(0, "", &[0, 0, 0, 0, 0]), Outcome::Failure("service unhealthy (responded with \"UNKNOWN\")".into()));
        let Outcome::Failure(m) = grpc_outcome(12, "unknown service", &[]) else { panic!() };
        assert!(m.contains("doesn't implement the grpc health protocol"), "{m}");
        let Outcome::Failure(m) = grpc_outcome(5, "unknown service db", &[]) else { panic!() };
        assert_eq!(m, "health rpc probe failed: rpc error: code = NotFound desc = unknown service db");
    }
}
