//! netexec's UDP and SCTP command servers: `hostname`, `echo <msg>` and
//! `clientip`, matched after trimming and lowercasing (so an echo comes back
//! lowercased, as upstream's does).

use super::{Exit, State};
use crate::golog::golog;
use crate::{go_errors, hostname};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Hostname,
    Echo(String),
    ClientIp,
    Unknown(String),
    Empty,
}

/// Decides what a datagram asks for; the servers only do the I/O.
pub fn parse(received: &[u8]) -> Command {
    let text = String::from_utf8_lossy(received).trim().to_lowercase();
    if text == "hostname" {
        Command::Hostname
    } else if let Some(msg) = text.strip_prefix("echo ") {
        Command::Echo(msg.to_string())
    } else if text == "clientip" {
        Command::ClientIp
    } else if text.is_empty() {
        Command::Empty
    } else {
        Command::Unknown(text)
    }
}

/// The answer to a command from `client`, or None for no answer.
fn answer(cmd: Command, client: SocketAddr, proto: &str) -> Option<Vec<u8>> {
    let client = go_errors::canonical(client);
    match cmd {
        Command::Hostname => {
            golog!("Sending {proto} hostName response");
            Some(hostname::get_or_log().into_bytes())
        }
        Command::Echo(msg) => {
            golog!("Echoing {msg} to {proto} client {client}");
            Some(msg.into_bytes())
        }
        Command::ClientIp => {
            golog!("Sending clientip back to {proto} client {client}");
            Some(client.to_string().into_bytes())
        }
        Command::Unknown(text) => {
            golog!("Unknown {proto} command received from {client}: {text}");
            None
        }
        Command::Empty => None,
    }
}

pub async fn serve(sock: tokio::net::UdpSocket, state: Arc<State>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, client) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => return fatal(&state, &format!("failed accepting UDP connections:{e}")),
        };
        if let Some(reply) = answer(parse(&buf[..n]), client, "udp") {
            if let Err(e) = sock.send_to(&reply, client).await {
                return fatal(&state, &format!("failed to write to UDP client {client}:{e}"));
            }
        }
    }
}

/// One command per association, then close, as upstream's SCTP server.
pub async fn serve_sctp(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let (mut conn, client) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => return fatal(&state, &format!("failed accepting SCTP connections:{e}")),
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1024];
            let Ok(n) = conn.read(&mut buf).await else { return };
            if let Some(reply) = answer(parse(&buf[..n]), client, "SCTP") {
                let _ = conn.write_all(&reply).await;
            }
        });
    }
}

/// Upstream's assertNoError: log and end the process with 1.
fn fatal(state: &State, detail: &str) {
    golog!("Error occurred: {detail}");
    state.ready.store(false, Ordering::SeqCst);
    let _ = state.exit.send(Exit::Now(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_trimmed_and_lowercased() {
        assert_eq!(parse(b"hostname\n"), Command::Hostname);
        assert_eq!(parse(b"  HostName "), Command::Hostname);
        assert_eq!(parse(b"echo Hello World\n"), Command::Echo("hello world".into()));
        assert_eq!(parse(b"clientip"), Command::ClientIp);
        assert_eq!(parse(b"\n"), Command::Empty);
        assert_eq!(parse(b"what"), Command::Unknown("what".into()));
        assert_eq!(parse(b"echo"), Command::Unknown("echo".into()));
    }
}
