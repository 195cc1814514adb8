//! `/dial?request=&protocol=&host=&port=&tries=`: netexec as a client, the
//! heart of the e2e connectivity checks. Answers {"responses":[...],
//! "errors":[...]} as upstream, including its quirk that "responses" is only
//! present when the last try succeeded with a non-empty answer.

use super::handlers::bad_request;
use crate::go_errors::{errno_text, is_timeout, op_error};
use crate::http_server::{text, Body};
use crate::{go_json, sctp};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Upstream's per-try limit for every protocol.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
enum Proto {
    Http,
    Udp,
    Sctp,
}

pub async fn handle(query: &str) -> Response<Body> {
    let q = |key: &str| url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned()).unwrap_or_default();
    let (host, port, request, protocol, tries_s) = (q("host"), q("port"), q("request"), q("protocol"), q("tries"));
    crate::golog::golog!("GET /dial?host={host}&protocol={protocol}&port={port}&request={request}&tries={tries_s}");
    let tries = if tries_s.is_empty() {
        1
    } else {
        match tries_s.parse::<i64>() {
            Ok(t) => t,
            Err(_) => return bad_request(&format!("tries parameter is invalid. strconv.Atoi: parsing {tries_s:?}: invalid syntax")),
        }
    };
    if request.is_empty() {
        return bad_request("request parameter not specified. <nil>");
    }
    let proto = match protocol.to_lowercase().as_str() {
        "" | "http" => Proto::Http,
        "udp" => Proto::Udp,
        "sctp" => Proto::Sctp,
        _ => return bad_request(&format!("unsupported protocol. {protocol}")),
    };
    let addr = match resolve(&host, &port).await {
        Ok(a) => a,
        Err(e) => return bad_request(&format!("host and/or port param are invalid. {e}")),
    };

    let mut responses = Vec::new();
    let mut errors = Vec::new();
    let mut last = String::new();
    for _ in 0..tries.max(0) {
        let result = match proto {
            Proto::Http => dial_http(&request, addr).await,
            Proto::Udp => dial_udp(&request, addr).await,
            Proto::Sctp => dial_sctp(&request, addr).await,
        };
        match result {
            Ok(r) => {
                last = r.clone();
                responses.push(r);
            }
            Err(e) => {
                last.clear();
                errors.push(e);
            }
        }
    }
    let mut out = BTreeMap::new();
    if !last.is_empty() {
        out.insert("responses".to_string(), responses);
    }
    if !errors.is_empty() {
        out.insert("errors".to_string(), errors);
    }
    text(StatusCode::OK, go_json::object_of_lists(&out))
}

/// Go's Resolve{TCP,UDP}Addr of JoinHostPort(host, port): an empty host is
/// the local system, an empty port is 0, IPv4 answers are preferred.
async fn resolve(host: &str, port: &str) -> Result<SocketAddr, String> {
    let joined = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let port: u16 = if port.is_empty() {
        0
    } else if port.bytes().all(|b| b.is_ascii_digit()) {
        port.parse().map_err(|_| format!("address {joined}: invalid port"))?
    } else {
        return Err(format!("lookup tcp/{port}: unknown port"));
    };
    if host.is_empty() {
        return Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.map_err(|e| format!("lookup {host}: {e}"))?.collect();
    addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied().ok_or_else(|| format!("lookup {host}: no such host"))
}

/// A GET of http://addr/request with Go's http.Client behaviour: 5s for the
/// whole exchange, redirects followed (at most 10), any status's body returned.
async fn dial_http(request: &str, addr: SocketAddr) -> Result<String, String> {
    let first = format!("http://{addr}/{}", escape_uri(request));
    let deadline = Instant::now() + TRY_TIMEOUT;
    let mut url = first.clone();
    for _ in 0..=10 {
        let uri: http::Uri = url.parse().map_err(|e| format!("parse {url:?}: {e}"))?;
        let step = tokio::time::timeout_at(deadline, get_once(&uri)).await;
        let (status, location, body) = match step {
            Err(_) => return Err(format!("Get {first:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
            Ok(Err(e)) => return Err(format!("Get {url:?}: {e}")),
            Ok(Ok(r)) => r,
        };
        let redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
        match (redirect, location) {
            (true, Some(loc)) => url = join_location(&uri, &loc),
            _ => return Ok(body),
        }
    }
    Err(format!("Get {url:?}: stopped after 10 redirects"))
}

/// One request on a fresh connection: (status, Location, body).
async fn get_once(uri: &http::Uri) -> Result<(StatusCode, Option<String>, String), String> {
    if uri.scheme_str() != Some("http") {
        return Err(format!("unsupported protocol scheme {:?}", uri.scheme_str().unwrap_or("")));
    }
    let authority = uri.authority().ok_or("no Host in request URL")?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let target = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => resolve(host, &port.to_string()).await?,
    };
    let stream = tokio::net::TcpStream::connect(target).await.map_err(|e| op_error("dial", "tcp", None, target, "connect", &e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(http::header::HOST, authority.as_str())
        .header(http::header::USER_AGENT, "Go-http-client/1.1")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let location = resp.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    // Upstream returns "" and no error when the body cannot be read.
    let body = match Limited::new(resp.into_body(), 64 << 20).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    Ok((status, location, body))
}

fn join_location(base: &http::Uri, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    if let Some(rest) = loc.strip_prefix("//") {
        return format!("http://{rest}");
    }
    if loc.starts_with('/') {
        return format!("http://{authority}{loc}");
    }
    let dir = base.path().rsplit_once('/').map(|(d, _)| d).unwrap_or_default();
    format!("http://{authority}{dir}/{loc}")
}

/// Percent-encodes what a URI may not hold (spaces, quotes, non-ASCII),
/// leaving reserved characters such as `?`, `&` and `=` to mean what they mean.
fn escape_uri(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn dial_udp(request: &str, addr: SocketAddr) -> Result<String, String> {
    let local: SocketAddr = if addr.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = tokio::net::UdpSocket::bind(local).await.map_err(|e| format!("udp dial failed. err:{}", op_error("dial", "udp", None, addr, "socket", &e)))?;
    sock.connect(addr).await.map_err(|e| format!("udp dial failed. err:{}", op_error("dial", "udp", None, addr, "connect", &e)))?;
    let me = sock.local_addr().ok();
    sock.send(request.as_bytes()).await.map_err(|e| format!("udp connection write failed. err:{}", op_error("write", "udp", me, addr, "write", &e)))?;
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(TRY_TIMEOUT, sock.recv(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Ok(_)) => Err("reading from udp connection failed. err:'<nil>'".to_string()),
        Ok(Err(e)) => Err(format!("reading from udp connection failed. err:'{}'", op_error("read", "udp", me, addr, "read", &e))),
        Err(_) => {
            let timeout = std::io::Error::from(std::io::ErrorKind::TimedOut);
            Err(format!("reading from udp connection failed. err:'{}'", op_error("read", "udp", me, addr, "read", &timeout)))
        }
    }
}

async fn dial_sctp(request: &str, addr: SocketAddr) -> Result<String, String> {
    let dialed = tokio::task::spawn_blocking(move || sctp::connect(addr, None)).await.map_err(|e| format!("sctp dial failed. err:{e}"))?;
    let std_stream = dialed.map_err(|e| format!("sctp dial failed. err:{}", errno_text(&e)))?;
    let stream = std_stream.set_nonblocking(true).and_then(|_| tokio::net::TcpStream::from_std(std_stream));
    let mut stream = stream.map_err(|e| format!("sctp dial failed. err:{}", errno_text(&e)))?;
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("sctp connection write failed. err:{}", errno_text(&e)))?;
    let mut buf = vec![0u8; 1024];
    match tokio::time::timeout(TRY_TIMEOUT, stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Ok(_)) => Err("reading from sctp connection failed. err:'EOF'".to_string()),
        Ok(Err(e)) if is_timeout(&e) => Err("reading from sctp connection failed. err:'i/o timeout'".to_string()),
        Ok(Err(e)) => Err(format!("reading from sctp connection failed. err:'{}'", errno_text(&e))),
        Err(_) => Err("reading from sctp connection failed. err:'i/o timeout'".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_valid_uris() {
        assert_eq!(escape_uri("echo?msg=hello world"), "echo?msg=hello%20world");
        assert_eq!(escape_uri("hostName"), "hostName");
    }

    #[test]
    fn redirect_locations_resolve_against_the_request() {
        let base: http::Uri = "http://127.0.0.1:80/a/b".parse().unwrap();
        assert_eq!(join_location(&base, "/x?y=1"), "http://127.0.0.1:80/x?y=1");
        assert_eq!(join_location(&base, "c"), "http://127.0.0.1:80/a/c");
        assert_eq!(join_location(&base, "http://[::1]:8/z"), "http://[::1]:8/z");
    }
}
