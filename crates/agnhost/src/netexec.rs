//! `agnhost netexec`: an HTTP(S) server with test endpoints, a UDP command
//! server and, when asked, an SCTP command server.

mod dial;
mod handlers;
mod mux;
mod shell;
mod udp;
mod upload;

use crate::flags::parse_go_int;
use crate::golog::golog;
use crate::{http_server, listen, sctp, tls};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// HTTP Listen Port
    #[arg(long, default_value = "8080", value_parser = parse_go_int, allow_hyphen_values = true)]
    http_port: i64,
    /// File containing an x509 certificate for HTTPS. (CA cert, if any, concatenated after server cert)
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    tls_cert_file: String,
    /// File containing an x509 private key matching --tls-cert-file
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    tls_private_key_file: String,
    /// UDP Listen Port
    #[arg(long, default_value = "8081", value_parser = parse_go_int, allow_hyphen_values = true)]
    udp_port: i64,
    /// SCTP Listen Port
    #[arg(long, default_value = "-1", value_parser = parse_go_int, allow_hyphen_values = true)]
    sctp_port: i64,
    /// Override the HTTP handler to always respond as if it were a GET with this path & params
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    http_override: String,
    /// A comma separated list of ip addresses the udp servers listen from
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    udp_listen_addresses: String,
    /// Number of seconds to delay shutdown when receiving SIGTERM.
    #[arg(long, default_value = "0", value_parser = parse_go_int, allow_hyphen_values = true)]
    delay_shutdown: i64,
    /// Where /upload writes files (upstream: /uploads in the image). weft only.
    #[arg(long, default_value = "/uploads", hide = true)]
    upload_dir: PathBuf,
}

/// How the process should end, asked for by /exit, /shutdown or SIGTERM.
#[derive(Debug)]
pub enum Exit {
    /// Exit at once (Go's os.Exit).
    Now(i32),
    /// Stop accepting, let open requests finish for up to `timeout`, then exit.
    Graceful { code: i32, timeout: Duration },
}

/// What the endpoints share.
pub struct State {
    /// Go's serverReady: a UDP or SCTP server is running.
    ready: AtomicBool,
    sigterm_received: AtomicBool,
    exit: mpsc::UnboundedSender<Exit>,
    upload_dir: PathBuf,
    started: Instant,
}

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
    // Registered first, so a SIGTERM any time after start is seen.
    let mut sigterm = signal(SignalKind::terminate())?;
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel();
    let state = Arc::new(State {
        ready: AtomicBool::new(false),
        sigterm_received: AtomicBool::new(false),
        exit: exit_tx.clone(),
        upload_dir: args.upload_dir.clone(),
        started: Instant::now(),
    });

    let http_port = listen::port(args.http_port)?;
    let tls = if args.tls_cert_file.is_empty() { None } else { Some(tls::server_config(&args.tls_cert_file, &args.tls_private_key_file)?) };
    if args.udp_port != -1 {
        let port = listen::port(args.udp_port)?;
        for address in parse_addresses(&args.udp_listen_addresses)? {
            let sock = match address {
                None => listen::udp_any(port)?,
                Some(ip) => listen::udp_at(ip, port)?,
            };
            let shown = address.map(|a| a.to_string()).unwrap_or_default();
            golog!("Started UDP server on port {shown} {port}");
            state.ready.store(true, Ordering::SeqCst);
            tokio::spawn(udp::serve(sock, state.clone()));
        }
    }

    if args.sctp_port != -1 {
        start_sctp(args.sctp_port, &state);
    }

    // Bound after the UDP servers, so a client that sees the HTTP port open
    // finds them ready too.
    let listener = listen::tcp_any(http_port)?;
    let (stop_tx, stop_rx) = watch::channel(None);
    let handler = mux::handler(state.clone(), args.http_override.clone());
    let server = tokio::spawn(http_server::serve(listener, tls, handler, stop_rx));
    golog!("Started HTTP server on port {http_port}");

    let delay = Duration::from_secs(args.delay_shutdown.max(0) as u64);
    loop {
        tokio::select! {
            Some(()) = sigterm.recv() => {
                // /readyz turns 503 while the pod is being removed from endpoints.
                state.sigterm_received.store(true, Ordering::SeqCst);
                let exit = exit_tx.clone();
                if !delay.is_zero() {
                    golog!("Sleeping {} seconds before terminating...", delay.as_secs());
                }
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = exit.send(Exit::Now(0));
                });
            }
            exit = exit_rx.recv() => match exit {
                Some(Exit::Now(code)) | Some(Exit::Graceful { code, timeout: Duration::ZERO }) => return Ok(code),
                Some(Exit::Graceful { code, timeout }) => {
                    let _ = stop_tx.send(Some(timeout));
                    let _ = server.await;
                    return Ok(code);
                }
                None => return Ok(1),
            },
        }
    }
}

/// Starts the SCTP command server. A kernel without SCTP is reported and the
/// other servers keep running (upstream exits; weft's hosts may lack SCTP).
fn start_sctp(port: i64, state: &Arc<State>) {
    let listener = listen::port(port).map_err(std::io::Error::other).and_then(sctp::listen_any);
    match listener {
        Ok(l) => {
            golog!("Started SCTP server");
            state.ready.store(true, Ordering::SeqCst);
            tokio::spawn(udp::serve_sctp(l, state.clone()));
        }
        Err(e) => golog!("Error occurred: failed to create listener for SCTP port {port}: {e}; continuing without SCTP"),
    }
}

/// `--udp-listen-addresses`: empty means any address (`None`); otherwise the
/// distinct addresses, sorted as Go's sets.String.List returns them.
fn parse_addresses(addresses: &str) -> anyhow::Result<Vec<Option<IpAddr>>> {
    if addresses.is_empty() {
        return Ok(vec![None]);
    }
    let mut out: Vec<&str> = Vec::new();
    for a in addresses.split(',') {
        if parse_ip_sloppy(a).is_none() {
            anyhow::bail!("parseAddress: invalid address {a}");
        }
        out.push(a);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out.into_iter().filter_map(parse_ip_sloppy).map(Some).collect())
}

/// k8s.io/utils/net.ParseIPSloppy: like Go's ParseIP but IPv4 octets may have
/// leading zeros (read as decimal).
fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let octets: Vec<u8> = s.split('.').map(|o| o.parse::<u8>().ok()).collect::<Option<_>>()?;
    let arr: [u8; 4] = octets.try_into().ok()?;
    Some(IpAddr::from(arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_listen_addresses_are_sorted_distinct_and_sloppy() {
        assert_eq!(parse_addresses("").unwrap(), vec![None]);
        let got = parse_addresses("127.0.0.1,::1,127.0.0.1,010.0.0.1").unwrap();
        let want: Vec<Option<IpAddr>> = vec![Some("10.0.0.1".parse().unwrap()), Some("127.0.0.1".parse().unwrap()), Some("::1".parse().unwrap())];
        assert_eq!(got, want);
        assert_eq!(parse_addresses("nope").unwrap_err().to_string(), "parseAddress: invalid address nope");
    }
}
