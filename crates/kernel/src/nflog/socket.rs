//! The nfnetlink_log socket: bound to one group in one network namespace, it
//! receives what `log group N` rules copy. Blocking; [`Nflog::into_channel`] moves
//! it onto a thread of its own that feeds a tokio channel.

use super::parse::{self, error_code, messages, nfnl_type, LoggedPacket, NFULNL_MSG_CONFIG, NLMSG_ERROR, NLMSG_HDRLEN};
use crate::error::{Error, Result};
use crate::netns::{run_in, Netns};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};
use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;

const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULA_CFG_TIMEOUT: u16 = 4;
const NFULA_CFG_QTHRESH: u16 = 5;

const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_CFG_CMD_PF_BIND: u8 = 3;
const NFULNL_COPY_PACKET: u8 = 2;

/// Room for a burst of logged packets between two reads.
const RCVBUF: usize = 4 << 20;
/// One datagram: a few packet messages of at most the copy range each.
const RECV_CHUNK: usize = 64 << 10;
/// How long a configuration request may wait for the kernel's ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the channel thread checks that someone still listens.
const CHANNEL_POLL: Duration = Duration::from_millis(250);

/// A subscription to one nflog group in one netns. Only one socket per netns can
/// hold a group; closing it (drop) releases the group.
pub struct Nflog {
    sock: Socket,
    group: u16,
    seq: u32,
    buf: Vec<u8>,
    /// Packets that arrived while a configuration request waited for its ack.
    pending: VecDeque<LoggedPacket>,
    /// Datagrams the kernel dropped because we read too slowly (ENOBUFS), so far.
    overruns: u64,
    place: String,
}

impl Nflog {
    /// Binds `group` in `ns` (None: the calling thread's netns), copying the first
    /// `copy_range` bytes of each packet (enough for the IP and L4 headers: 128).
    pub fn open(ns: Option<&Netns>, group: u16, copy_range: u32) -> Result<Nflog> {
        let place = match ns {
            Some(ns) => ns.describe(),
            None => "the current netns".to_string(),
        };
        let object_text = format!("nflog group {group} in {place}");
        let object = || object_text.clone();
        let sock = match ns {
            Some(ns) => run_in(ns, || Socket::new(NETLINK_NETFILTER))?,
            None => Socket::new(NETLINK_NETFILTER),
        }
        .map_err(|e| Error::new("open", object(), e))?;
        let mut log = Nflog { sock, group, seq: 0, buf: Vec::with_capacity(RECV_CHUNK), pending: VecDeque::new(), overruns: 0, place };
        log.setup().map_err(|e| Error::new("configure", object(), e))?;
        // IPv4 and IPv6 hand their logged packets to nfnetlink_log (a no-op on kernels
        // since 3.17, where the group decides; kept for older ones).
        for family in [nix::libc::AF_INET as u8, nix::libc::AF_INET6 as u8] {
            let _ = log.config(family, 0, &cmd(NFULNL_CFG_CMD_PF_BIND));
        }
        log.config(nix::libc::AF_UNSPEC as u8, group, &cmd(NFULNL_CFG_CMD_BIND)).map_err(|e| {
            // The kernel answers EPERM when another socket holds the group.
            let busy = matches!(e.raw_os_error(), Some(nix::libc::EBUSY | nix::libc::EPERM));
            let hint = busy.then(|| "another socket already listens on this group in this netns, or this process lacks CAP_NET_ADMIN".to_string());
            Error::new("bind", object(), e).with_detail(hint)
        })?;
        let mut mode = Vec::new();
        mode.extend_from_slice(&copy_range.to_be_bytes());
        mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
        let mut settings = attr(NFULA_CFG_MODE, &mode);
        // Send each packet at once (queue threshold 1, flush timeout 10 ms).
        settings.extend(attr(NFULA_CFG_QTHRESH, &1u32.to_be_bytes()));
        settings.extend(attr(NFULA_CFG_TIMEOUT, &1u32.to_be_bytes()));
        log.config(nix::libc::AF_UNSPEC as u8, group, &settings).map_err(|e| Error::new("set the copy mode of", object(), e))?;
        tracing::debug!(group, place = %log.place, "listening for logged packets");
        Ok(log)
    }

    fn setup(&mut self) -> io::Result<()> {
        self.sock.bind_auto()?;
        self.sock.set_ext_ack(true)?;
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.sock.as_raw_fd()) };
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::RcvBufForce, &RCVBUF)?;
        Ok(())
    }

    pub fn group(&self) -> u16 {
        self.group
    }

    /// Datagrams lost to a full socket buffer so far.
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// Sends one NFULNL_MSG_CONFIG and waits for its ack.
    fn config(&mut self, family: u8, res_id: u16, attrs: &[u8]) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = NLMSG_HDRLEN + 4 + attrs.len();
        let mut m = Vec::with_capacity(len);
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&nfnl_type(NFULNL_MSG_CONFIG).to_ne_bytes());
        m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[family, 0]);
        m.extend_from_slice(&res_id.to_be_bytes());
        m.extend_from_slice(attrs);
        self.sock.send(&m, 0)?;
        let deadline = std::time::Instant::now() + ACK_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || !self.wait(left)? {
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer from the kernel in {ACK_TIMEOUT:?}")));
            }
            self.read()?;
            let mut answer = None;
            for msg in messages(&self.buf).map_err(|e| io::Error::other(e.0))? {
                if msg.ty == NLMSG_ERROR && msg.seq == seq {
                    answer = Some(error_code(msg.body).map_err(|e| io::Error::other(e.0))?);
                }
            }
            // Packets logged meanwhile are kept for the next `recv`.
            let packets = parse::parse_datagram(&self.buf).map_err(|e| io::Error::other(e.0))?;
            self.pending.extend(packets);
            match answer {
                Some(0) => return Ok(()),
                Some(errno) => return Err(io::Error::from_raw_os_error(errno)),
                None => {}
            }
        }
    }

    /// Whether data arrives within `timeout`.
    fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = nix::libc::pollfd { fd: self.sock.as_raw_fd(), events: nix::libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { nix::libc::poll(&mut pfd, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
        match ready {
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
            0 => Ok(false),
            _ => Ok(true),
        }
    }

    fn read(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.buf.reserve(RECV_CHUNK);
        self.sock.recv(&mut self.buf, nix::libc::MSG_DONTWAIT)?;
        Ok(())
    }

    /// The next logged packets: waits up to `timeout` (None: forever) and returns
    /// what one datagram held (empty when the time ran out). A full socket buffer
    /// loses packets; that is counted ([`Nflog::overruns`]) and logged, not an error.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Vec<LoggedPacket>> {
        if !self.pending.is_empty() {
            return Ok(self.pending.drain(..).collect());
        }
        let object_text = format!("nflog group {} in {}", self.group, self.place);
        let object = || object_text.clone();
        let ready = match timeout {
            Some(t) => self.wait(t),
            None => loop {
                match self.wait(Duration::from_secs(3600)) {
                    Ok(false) => continue,
                    other => break other,
                }
            },
        }
        .map_err(|e| Error::new("wait for", object(), e))?;
        if !ready {
            return Ok(Vec::new());
        }
        match self.read() {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                self.overruns += 1;
                tracing::warn!(group = self.group, place = %self.place, overruns = self.overruns, "logged packets lost: the socket buffer was full");
                return Ok(Vec::new());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Vec::new()),
            Err(e) => return Err(Error::new("receive from", object(), e)),
        }
        parse::parse_datagram(&self.buf).map_err(|e| Error::invalid("decode a message of", object(), e.0))
    }

    /// Moves the socket onto a thread of its own that sends every logged packet
    /// into the returned channel (bounded: `capacity`). The thread ends when the
    /// receiver is dropped, or after sending an error it cannot recover from.
    pub fn into_channel(mut self, capacity: usize) -> tokio::sync::mpsc::Receiver<Result<LoggedPacket>> {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let name = format!("nflog-{}", self.group);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            while !tx.is_closed() {
                match self.recv(Some(CHANNEL_POLL)) {
                    Ok(packets) => {
                        for p in packets {
                            if tx.blocking_send(Ok(p)).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the nflog reader thread");
        }
        rx
    }
}

fn attr(ty: u16, v: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(8 + v.len());
    a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
    a.extend_from_slice(&ty.to_ne_bytes());
    a.extend_from_slice(v);
    a.resize((a.len() + 3) & !3, 0);
    a
}

fn cmd(command: u8) -> Vec<u8> {
    attr(NFULA_CFG_CMD, &[command])
}
