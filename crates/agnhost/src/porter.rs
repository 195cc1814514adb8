//! `agnhost porter`: for every environment variable SERVE_{PORT,TCP_PORT,
//! UDP_PORT,TLS_PORT,SCTP_PORT}_<port>=<value>, serves <value> on that port
//! (IPv4, as upstream binds 0.0.0.0). TLS uses CERT_FILE/KEY_FILE, by default
//! the image's localhost.crt/localhost.key.

use crate::golog::golog;
use crate::http_server::{self, text};
use crate::{go_json, listen, sctp, tls};
use http::{HeaderValue, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Responds to requests with a json response that includes the default value with the http.Request Method
    #[arg(long, default_value = "false", default_missing_value = "true", num_args = 0..=1, require_equals = true, value_parser = crate::flags::parse_go_bool)]
    json_response: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    Udp,
    Tls,
    Sctp,
}

/// What the environment asks to serve: (kind, port as written, value).
fn plan(env: &[(String, String)]) -> Vec<(Kind, String, String)> {
    const PREFIXES: [(&str, Kind); 5] = [("SERVE_PORT_", Kind::Tcp), ("SERVE_TCP_PORT_", Kind::Tcp), ("SERVE_UDP_PORT_", Kind::Udp), ("SERVE_SCTP_PORT_", Kind::Sctp), ("SERVE_TLS_PORT_", Kind::Tls)];
    let mut out = Vec::new();
    for (key, value) in env {
        for (prefix, kind) in &PREFIXES {
            if let Some(port) = key.strip_prefix(prefix) {
                out.push((*kind, port.to_string(), value.clone()));
                break;
            }
        }
    }
    out
}

/// Serves until the process is killed; returns only on a fatal error.
pub async fn run(args: Args, env: Vec<(String, String)>) -> i32 {
    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel::<()>();
    // Never sent: porter's HTTP servers run until the process ends.
    let (_stop_tx, stop_rx) = watch::channel(None);
    let cert_file = env.iter().find(|(k, _)| k == "CERT_FILE").map(|(_, v)| v.clone()).filter(|v| !v.is_empty()).unwrap_or_else(|| "localhost.crt".into());
    let key_file = env.iter().find(|(k, _)| k == "KEY_FILE").map(|(_, v)| v.clone()).filter(|v| !v.is_empty()).unwrap_or_else(|| "localhost.key".into());
    for (kind, port, value) in plan(&env) {
        let parsed = port.parse::<u16>().map_err(|_| anyhow::anyhow!("listen tcp: address 0.0.0.0:{port}: invalid port"));
        match kind {
            Kind::Tcp | Kind::Tls => {
                let tls = if kind == Kind::Tls {
                    match tls::server_config(&cert_file, &key_file) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            golog!("tls server on port {port:?} with certFile={cert_file:?}, keyFile={key_file:?} failed: {e:#}");
                            continue;
                        }
                    }
                } else {
                    None
                };
                match parsed.and_then(listen::tcp_v4_any) {
                    Ok(l) => {
                        tokio::spawn(http_server::serve(l, tls, body_handler(value, args.json_response), stop_rx.clone()));
                    }
                    Err(e) => golog!("server on port {port:?} failed: {e:#}"),
                }
            }
            Kind::Udp => match parsed.and_then(|p| listen::udp_at(std::net::Ipv4Addr::UNSPECIFIED.into(), p)) {
                Ok(sock) => {
                    golog!("Started UDP server on port {port}");
                    tokio::spawn(serve_udp(sock, value));
                }
                Err(e) => {
                    golog!("UDP: failed to listen on port {port}: {e:#}");
                    let _ = fatal_tx.send(());
                }
            },
            // A kernel without SCTP: the handshake in user space over a raw socket.
            Kind::Sctp if !sctp::kernel_supports_sctp() => match parsed {
                Ok(port) => {
                    golog!("Started SCTP server (user space, this kernel has no SCTP)");
                    std::thread::spawn(move || {
                        if let Err(e) = crate::sctp_raw::serve_v4(port, &value) {
                            golog!("SCTP: serving on port {port}: {e}");
                        }
                    });
                }
                Err(e) => golog!("Failed to listen SCTP on port {port}. error: {e}; continuing without it"),
            },
            Kind::Sctp => match parsed.map_err(std::io::Error::other).and_then(sctp::listen_v4_any) {
                Ok(l) => {
                    golog!("Started SCTP server");
                    tokio::spawn(serve_sctp(l, value));
                }
                // Upstream exits; weft keeps the other ports up on hosts without SCTP.
                Err(e) => golog!("Failed to listen SCTP on port {port}. error: {e}; continuing without it"),
            },
        }
    }
    let _ = fatal_rx.recv().await;
    1
}

fn body_handler(value: String, json: bool) -> http_server::Handler {
    http_server::handler(move |req: http::Request<hyper::body::Incoming>, _peer| {
        let resp = if json {
            let body = format!("{{\"Method\":{},\"Body\":{}}}", go_json::string(req.method().as_str()), go_json::string(&value));
            let mut r = text(StatusCode::OK, body);
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        } else {
            text(StatusCode::OK, value.clone())
        };
        async move { Ok(resp) }
    })
}

async fn serve_udp(sock: tokio::net::UdpSocket, value: String) {
    let mut buf = [0u8; 16];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((_, client)) => {
                if let Err(e) = sock.send_to(value.as_bytes(), client).await {
                    golog!("UDP: error from WriteTo(): {e}");
                }
            }
            Err(e) => {
                golog!("UDP: error from ReadFrom(): {e}");
                return;
            }
        }
    }
}

async fn serve_sctp(listener: tokio::net::TcpListener, value: String) {
    loop {
        match listener.accept().await {
            Ok((mut conn, _)) => {
                let value = value.clone();
                tokio::spawn(async move {
                    let _ = conn.write_all(value.as_bytes()).await;
                });
            }
            Err(e) => {
                golog!("Failed to accept SCTP. error: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_the_ports() {
        let env: Vec<(String, String)> = [("SERVE_PORT_80", "a"), ("SERVE_TCP_PORT_81", "b"), ("SERVE_UDP_PORT_82", "c"), ("SERVE_TLS_PORT_443", "d"), ("SERVE_SCTP_PORT_84", "e"), ("HOME", "/")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let got: Vec<(Kind, String, String)> = plan(&env);
        assert_eq!(
            got,
            vec![
                (Kind::Tcp, "80".into(), "a".into()),
                (Kind::Tcp, "81".into(), "b".into()),
                (Kind::Udp, "82".into(), "c".into()),
                (Kind::Tls, "443".into(), "d".into()),
                (Kind::Sctp, "84".into(), "e".into()),
            ]
        );
    }
}
