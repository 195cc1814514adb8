//! httpGet, tcpSocket, grpc and exec probes against real servers, in a network namespace
//! of the test's own. Sockets are made in the namespace the probe is given (the node's),
//! which is what lets the kubelet's probes reach pod IPs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use weft_kernel::Netns;
use weft_runtime::probe::{HttpGet, Outcome, Scheme};
use weft_runtime::probe_net;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SECOND: Duration = Duration::from_secs(1);

/// A second namespace (the "node") with its loopback up.
async fn node_ns(dir: &std::path::Path) -> Netns {
    let ns = Netns::create(&dir.join("node")).unwrap();
    let h = weft_kernel::Handle::open(&ns).unwrap();
    let lo = h.link("lo").await.unwrap();
    h.set_link_up(lo.index).await.unwrap();
    ns
}

#[test]
fn tcp_probes_connect_from_the_namespace_they_are_given() {
    weft_testns::run_async("tcp_probes_ns", |t| async move {
        let here = tokio::net::TcpListener::bind((LO, 0)).await.unwrap();
        let port = here.local_addr().unwrap().port();
        let node = node_ns(t.dir()).await;
        assert_eq!(probe_net::tcp(None, LO, port, SECOND).await, Outcome::Success);
        // From the other namespace, nothing listens on that port.
        let Outcome::Failure(m) = probe_net::tcp(Some(&node), LO, port, SECOND).await else { panic!("expected a failure") };
        assert_eq!(m, format!("dial tcp 127.0.0.1:{port}: connect: connection refused"));
        // A listener made inside the node namespace is what the probe reaches there.
        let there = weft_kernel::run_in(&node, || std::net::TcpListener::bind((LO, 0)).unwrap()).unwrap();
        let port2 = there.local_addr().unwrap().port();
        assert_eq!(probe_net::tcp(Some(&node), LO, port2, SECOND).await, Outcome::Success);
        drop(node);
        let _ = Netns::remove(&t.dir().join("node"));
    });
}

async fn route(req: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let reply = |code: u16, loc: Option<&str>| {
        let mut b = hyper::Response::builder().status(code);
        if let Some(l) = loc {
            b = b.header("location", l);
        }
        Ok(b.body(Full::new(Bytes::from_static(b"body"))).unwrap())
    };
    let ua = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let custom = req.headers().get("x-probe").and_then(|v| v.to_str().ok()) == Some("yes");
    match req.uri().path() {
        "/ok" => reply(200, None),
        "/fail" => reply(500, None),
        "/moved" => reply(302, Some("/fail")),
        "/moved-ok" => reply(301, Some("ok")),
        "/loop" => reply(302, Some("/loop")),
        // Not followed: another host ends the chain with a warning (nothing is sent there).
        "/elsewhere" => reply(302, Some("http://192.0.2.1/")),
        "/headers" => reply(if ua == "kube-probe/1.33" && custom { 204 } else { 400 }, None),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            reply(200, None)
        }
        _ => reply(404, None),
    }
}

async fn serve_http(tls: Option<tokio_rustls::TlsAcceptor>) -> u16 {
    let l = tokio::net::TcpListener::bind((LO, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(route);
                match tls {
                    Some(a) => {
                        if let Ok(s) = a.accept(s).await {
                            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                    None => {
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc).await;
                    }
                }
            });
        }
    });
    port
}

fn get(port: u16, path: &str) -> HttpGet {
    HttpGet { scheme: Scheme::Http, host: LO, port, path: path.into(), headers: vec![] }
}

#[test]
fn http_probes_pass_on_2xx_and_3xx_follow_same_host_redirects_and_fail_with_the_status() {
    weft_testns::run_async("http_probes", |_t| async move {
        let port = serve_http(None).await;
        assert_eq!(probe_net::http_get(None, &get(port, "/ok"), SECOND).await, Outcome::Success);
        assert_eq!(probe_net::http_get(None, &get(port, "/fail"), SECOND).await, Outcome::Failure("HTTP probe failed with statuscode: 500".into()));
        assert_eq!(probe_net::http_get(None, &get(port, "/nothing"), SECOND).await, Outcome::Failure("HTTP probe failed with statuscode: 404".into()));
        assert_eq!(probe_net::http_get(None, &get(port, "/moved"), SECOND).await, Outcome::Failure("HTTP probe failed with statuscode: 500".into()), "a same-host redirect is followed");
        assert_eq!(probe_net::http_get(None, &get(port, "/moved-ok"), SECOND).await, Outcome::Success);
        let Outcome::Failure(m) = probe_net::http_get(None, &get(port, "/loop"), Duration::from_secs(5)).await else { panic!() };
        assert!(m.ends_with("stopped after 10 redirects"), "{m}");
        assert_eq!(probe_net::http_get(None, &get(port, "/elsewhere"), SECOND).await, Outcome::Warning("Probe terminated redirects, Response body: body".into()));
        let mut h = get(port, "/headers");
        assert_eq!(probe_net::http_get(None, &h, SECOND).await, Outcome::Failure("HTTP probe failed with statuscode: 400".into()));
        h.headers.push(("X-Probe".into(), "yes".into()));
        assert_eq!(probe_net::http_get(None, &h, SECOND).await, Outcome::Success);
        let Outcome::Failure(m) = probe_net::http_get(None, &get(port, "/slow"), SECOND).await else { panic!() };
        assert!(m.contains("Client.Timeout exceeded"), "{m}");
        let closed = std::net::TcpListener::bind((LO, 0)).unwrap().local_addr().unwrap().port();
        let Outcome::Failure(m) = probe_net::http_get(None, &get(closed, "/ok"), SECOND).await else { panic!() };
        assert_eq!(m, format!("Get \"http://127.0.0.1:{closed}/ok\": dial tcp 127.0.0.1:{closed}: connect: connection refused"));
    });
}

#[test]
fn https_probes_do_not_verify_the_certificate() {
    weft_testns::run_async("https_probes", |_t| async move {
        // A self-signed certificate for a name that is not the address probed.
        let ck = rcgen::generate_simple_self_signed(vec!["pod.invalid".to_string()]).unwrap();
        let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
        let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let port = serve_http(Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))).await;
        let mut h = get(port, "/ok");
        h.scheme = Scheme::Https;
        assert_eq!(probe_net::http_get(None, &h, SECOND).await, Outcome::Success);
        h.path = "/fail".into();
        assert_eq!(probe_net::http_get(None, &h, SECOND).await, Outcome::Failure("HTTP probe failed with statuscode: 500".into()));
        // Plain HTTP to a TLS port is a failure, not a hang.
        h.scheme = Scheme::Http;
        assert!(matches!(probe_net::http_get(None, &h, SECOND).await, Outcome::Failure(_)));
    });
}

type GrpcBody = StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// grpc.health.v1.Health/Check: "" is SERVING, "down" NOT_SERVING, others NotFound.
async fn health(req: hyper::Request<Incoming>) -> Result<hyper::Response<GrpcBody>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let service = String::from_utf8_lossy(body.get(7..).unwrap_or_default()).to_string();
    let mut trailers = http::HeaderMap::new();
    let mut frames = Vec::new();
    if path != "/grpc.health.v1.Health/Check" {
        trailers.insert("grpc-status", "12".parse().unwrap());
    } else if service.is_empty() || service == "down" {
        let status = if service.is_empty() { 1u8 } else { 2 };
        frames.push(Ok(Frame::data(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]))));
        trailers.insert("grpc-status", "0".parse().unwrap());
    } else {
        trailers.insert("grpc-status", "5".parse().unwrap());
        trailers.insert("grpc-message", "unknown service".parse().unwrap());
    }
    frames.push(Ok(Frame::trailers(trailers)));
    Ok(hyper::Response::builder().header("content-type", "application/grpc").body(StreamBody::new(futures::stream::iter(frames))).unwrap())
}

#[test]
fn grpc_probes_ask_the_health_service_over_h2c() {
    weft_testns::run_async("grpc_probes", |_t| async move {
        let l = tokio::net::TcpListener::bind((LO, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(s), hyper::service::service_fn(health)));
            }
        });
        assert_eq!(probe_net::grpc(None, LO, port, "", SECOND).await, Outcome::Success);
        assert_eq!(probe_net::grpc(None, LO, port, "down", SECOND).await, Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into()));
        assert_eq!(probe_net::grpc(None, LO, port, "db", SECOND).await, Outcome::Failure("health rpc probe failed: rpc error: code = NotFound desc = unknown service".into()));
        let closed = std::net::TcpListener::bind((LO, 0)).unwrap().local_addr().unwrap().port();
        let Outcome::Failure(m) = probe_net::grpc(None, LO, closed, "", SECOND).await else { panic!() };
        assert!(m.starts_with(&format!("failed to connect service \"{}\"", SocketAddr::new(LO, closed))), "{m}");
    });
}

#[test]
fn exec_probes_pass_on_exit_0_report_output_and_kill_what_times_out() {
    weft_testns::run_async("exec_probes", |t| async move {
        let mut target = tokio::process::Command::new("sleep").arg("60").kill_on_drop(true).spawn().unwrap();
        let pid = target.id().unwrap();
        let sh = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        assert_eq!(weft_runtime::probe_exec::exec(pid, &sh("exit 0"), Some(SECOND)).await, Outcome::Success);
        assert_eq!(weft_runtime::probe_exec::exec(pid, &sh("echo not yet; exit 3"), Some(SECOND)).await, Outcome::Failure("not yet".into()));
        assert_eq!(weft_runtime::probe_exec::exec(pid, &sh("exit 4"), Some(SECOND)).await, Outcome::Failure("command \"sh -c exit 4\" exited with code 4".into()));
        let marker = t.dir().join("pid");
        let slow = sh(&format!("echo $$ > {}; sleep 30 & wait", marker.display()));
        assert_eq!(weft_runtime::probe_exec::exec(pid, &slow, Some(SECOND)).await, Outcome::Failure(format!("command {:?} timed out", slow.join(" "))));
        // The timed-out command's whole group is gone.
        let shell: i32 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
        let mut alive = true;
        for _ in 0..100 {
            alive = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(shell), None).is_ok();
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!alive, "the timed-out command's process group is still there");
        target.kill().await.unwrap();
    });
}
