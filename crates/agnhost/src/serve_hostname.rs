//! `agnhost serve-hostname`: answers every HTTP request, TCP connection or
//! UDP datagram on `--port` with the pod's hostname.

use crate::flags::{parse_go_bool, parse_go_int};
use crate::golog::golog;
use crate::http_server::{self, text};
use crate::{hostname, listen};
use http::{HeaderValue, StatusCode};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Serve raw over TCP.
    #[arg(long, default_value = "false", default_missing_value = "true", num_args = 0..=1, require_equals = true, value_parser = parse_go_bool)]
    tcp: bool,
    /// Serve raw over UDP.
    #[arg(long, default_value = "false", default_missing_value = "true", num_args = 0..=1, require_equals = true, value_parser = parse_go_bool)]
    udp: bool,
    /// Serve HTTP.
    #[arg(long, default_value = "true", default_missing_value = "true", num_args = 0..=1, require_equals = true, value_parser = parse_go_bool)]
    http: bool,
    /// Close connection per each HTTP request.
    #[arg(long, default_value = "false", default_missing_value = "true", num_args = 0..=1, require_equals = true, value_parser = parse_go_bool)]
    close: bool,
    /// Port number.
    #[arg(long, default_value = "9376", value_parser = parse_go_int, allow_hyphen_values = true)]
    port: i64,
}

/// Upstream keeps serving this long after SIGTERM, waiting to be deleted.
const AWAIT_DELETION: Duration = Duration::from_secs(60);

pub async fn run(args: Args) -> i32 {
    match serve(args).await {
        Ok(code) => code,
        Err(e) => {
            golog!("{e:#}");
            1
        }
    }
}

async fn serve(args: Args) -> anyhow::Result<i32> {
    if args.http && (args.tcp || args.udp) {
        anyhow::bail!("Can't server TCP/UDP mode and HTTP mode at the same time");
    }
    let hostname = hostname::get().map_err(|e| anyhow::anyhow!("Error from os.Hostname(): {e}"))?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let port = listen::port(args.port)?;

    if args.tcp {
        let listener = listen::tcp_any(port).map_err(|e| anyhow::anyhow!("Error from net.Listen(): {e:#}"))?;
        let name = hostname.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((mut conn, peer)) => {
                        golog!("TCP request from {}", crate::go_errors::canonical(peer));
                        let name = name.clone();
                        tokio::spawn(async move {
                            let _ = conn.write_all(name.as_bytes()).await;
                            let _ = conn.shutdown().await;
                        });
                    }
                    Err(e) => {
                        golog!("Error from Accept(): {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    if args.udp {
        let sock = listen::udp_any(port).map_err(|e| anyhow::anyhow!("Error from ListenUDP(): {e:#}"))?;
        let name = hostname.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 16];
            loop {
                match sock.recv_from(&mut buf).await {
                    Ok((_, peer)) => {
                        golog!("UDP request from {}", crate::go_errors::canonical(peer));
                        let _ = sock.send_to(name.as_bytes(), peer).await;
                    }
                    Err(e) => golog!("Error from ReadFrom(): {e}"),
                }
            }
        });
    }
    // Kept alive until the end: dropping the sender would stop the server.
    let (_stop_tx, stop_rx) = watch::channel(None);
    if args.http {
        let listener = listen::tcp_any(port)?;
        let (name, close) = (hostname.clone(), args.close);
        let handler = http_server::handler(move |_req, peer| {
            golog!("HTTP request from {}", crate::go_errors::canonical(peer));
            let mut resp = text(StatusCode::OK, name.clone());
            if close {
                // Forces the connection closed after this response.
                resp.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            async move { Ok(resp) }
        });
        tokio::spawn(http_server::serve(listener, None, handler, stop_rx));
    }
    golog!("Serving on port {port}.");
    sigterm.recv().await;
    golog!("Shutting down after receiving signal: terminated.");
    golog!("Awaiting pod deletion.");
    tokio::time::sleep(AWAIT_DELETION).await;
    Ok(0)
}
