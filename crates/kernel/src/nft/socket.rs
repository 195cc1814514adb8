//! A blocking NETLINK_NETFILTER socket bound to one network namespace:
//! dumps, single requests, and batches with their acknowledgements.

use super::msg::{self, messages, parse_error, put_message, RawMsg, NLMSG_DONE, NLMSG_ERROR};
use crate::error::{Error, Result};
use crate::netns::{run_in, Netns};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};
use nix::sys::socket::{setsockopt, sockopt};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

/// Receive buffer for replies to big batches and dumps (SO_RCVBUFFORCE).
const RCVBUF: usize = 16 << 20;
/// Send buffer floor; raised per batch to fit it (SO_SNDBUFFORCE).
const SNDBUF: usize = 4 << 20;
/// One receive: the kernel never sends a single skb bigger than this for us.
const RECV_CHUNK: usize = 1 << 20;
/// How long to wait for the kernel's answer before giving up (bounded waits).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct NfSocket {
    sock: Socket,
    seq: u32,
    sndbuf: usize,
    buf: Vec<u8>,
    /// "in netns X", for errors.
    pub(crate) place: String,
}

/// A reply error from the kernel for one message of ours.
pub(crate) struct Reply {
    pub seq: u32,
    pub errno: i32,
    pub msg: Option<String>,
}

impl NfSocket {
    pub(crate) fn open(ns: Option<&Netns>) -> Result<NfSocket> {
        let place = match ns {
            Some(ns) => ns.describe(),
            None => "the current netns".to_string(),
        };
        let fd = match ns {
            Some(ns) => run_in(ns, new_fd)?,
            None => new_fd(),
        }
        .map_err(|e| Error::new("open", format!("nfnetlink socket in {place}"), e))?;
        // SAFETY: `fd` is a freshly created, owned netlink socket whose ownership moves here.
        let sock = unsafe { Socket::from_raw_fd(fd.into_raw_fd()) };
        let setup = || -> io::Result<()> {
            sock.set_ext_ack(true)?;
            sock.set_cap_ack(true)?;
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(sock.as_raw_fd()) };
            setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF)?;
            setsockopt(&fd, sockopt::SndBufForce, &SNDBUF)?;
            Ok(())
        };
        setup().map_err(|e| Error::new("configure", format!("nfnetlink socket in {place}"), e))?;
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(1);
        Ok(NfSocket { sock, seq: seed & 0x7fff_ffff, sndbuf: SNDBUF, buf: Vec::with_capacity(RECV_CHUNK), place })
    }

    /// Reserves `n` consecutive sequence numbers and returns the first.
    pub(crate) fn seqs(&mut self, n: u32) -> u32 {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(n);
        first
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() + 4096 > self.sndbuf {
            let want = (bytes.len() + 4096).next_power_of_two();
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.sock.as_raw_fd()) };
            setsockopt(&fd, sockopt::SndBufForce, &want)?;
            self.sndbuf = want;
        }
        let n = self.sock.send(bytes, 0)?;
        if n != bytes.len() {
            return Err(io::Error::other(format!("sent {n} of {} bytes", bytes.len())));
        }
        Ok(())
    }

    /// Waits (bounded) for data, then receives one datagram into `self.buf`.
    fn recv(&mut self, wait: bool) -> io::Result<bool> {
        if wait {
            let mut pfd = nix::libc::pollfd { fd: self.sock.as_raw_fd(), events: nix::libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { nix::libc::poll(&mut pfd, 1, ANSWER_TIMEOUT.as_millis() as i32) };
            if ready < 0 {
                return Err(io::Error::last_os_error());
            }
            if ready == 0 {
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer from the kernel in {ANSWER_TIMEOUT:?}")));
            }
        }
        self.buf.clear();
        self.buf.reserve(RECV_CHUNK);
        match self.sock.recv(&mut self.buf, libc_flags(!wait)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends a dump request and calls `each` with every reply message until done.
    pub(crate) fn dump(&mut self, ty: u16, family: u8, attrs: &[u8], what: &str, mut each: impl FnMut(&RawMsg<'_>) -> msg::Decoded<()>) -> Result<()> {
        let seq = self.seqs(1);
        let mut req = Vec::new();
        put_message(&mut req, ty, msg::NLM_F_REQUEST | msg::NLM_F_DUMP, seq, family, 0, attrs);
        let object_text = format!("{what} in {}", self.place);
        let object = || object_text.clone();
        self.send(&req).map_err(|e| Error::new("list", object(), e))?;
        loop {
            self.recv(true).map_err(|e| Error::new("list", object(), e))?;
            let buf = std::mem::take(&mut self.buf);
            let outcome = (|| -> Result<bool> {
                let msgs = messages(&buf).map_err(|e| Error::invalid("decode", object(), e.0))?;
                for m in &msgs {
                    if m.seq != seq {
                        continue;
                    }
                    if m.flags & msg::NLM_F_DUMP_INTR != 0 {
                        return Err(Error::new("list", object(), io::Error::from_raw_os_error(nix::libc::EBUSY)));
                    }
                    match m.ty {
                        NLMSG_DONE => return Ok(true),
                        NLMSG_ERROR => {
                            let e = parse_error(m).map_err(|e| Error::invalid("decode", object(), e.0))?;
                            return Err(kernel_error("list", object(), e.errno, e.msg));
                        }
                        _ => each(m).map_err(|e| Error::invalid("decode", object(), e.0))?,
                    }
                }
                Ok(false)
            })();
            self.buf = buf;
            if outcome? {
                return Ok(());
            }
        }
    }

    /// Sends one request with an ack; returns the non-error replies' payloads.
    pub(crate) fn request(&mut self, ty: u16, flags: u16, family: u8, attrs: &[u8], op: &'static str, what: &str) -> Result<Vec<Vec<u8>>> {
        let seq = self.seqs(1);
        let mut req = Vec::new();
        put_message(&mut req, ty, msg::NLM_F_REQUEST | msg::NLM_F_ACK | flags, seq, family, 0, attrs);
        let object_text = format!("{what} in {}", self.place);
        let object = || object_text.clone();
        self.send(&req).map_err(|e| Error::new(op, object(), e))?;
        let mut out = Vec::new();
        loop {
            self.recv(true).map_err(|e| Error::new(op, object(), e))?;
            let msgs = messages(&self.buf).map_err(|e| Error::invalid("decode", object(), e.0))?;
            for m in msgs.iter().filter(|m| m.seq == seq) {
                if m.ty == NLMSG_ERROR {
                    let e = parse_error(m).map_err(|e| Error::invalid("decode", object(), e.0))?;
                    if e.errno == 0 {
                        return Ok(out);
                    }
                    return Err(kernel_error(op, object(), e.errno, e.msg));
                }
                out.push(m.payload.to_vec());
            }
        }
    }

    /// Sends a batch whose messages `first..=last` each ask for an ack, and
    /// collects the replies: done when every message is acked or any failed
    /// (nfnetlink answers the whole batch before `send` returns).
    pub(crate) fn transact(&mut self, bytes: &[u8], first: u32, last: u32, acks_expected: usize) -> io::Result<Vec<Reply>> {
        let want_rcv = (acks_expected * 1024).max(RCVBUF);
        if want_rcv > RCVBUF {
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.sock.as_raw_fd()) };
            setsockopt(&fd, sockopt::RcvBufForce, &want_rcv)?;
        }
        self.send(bytes)?;
        let mut replies = Vec::new();
        let mut acked = 0;
        let mut failed = false;
        loop {
            let got = self.recv(false)?;
            if !got {
                if failed || acked >= acks_expected {
                    return Ok(replies);
                }
                self.recv(true)?;
            }
            let msgs = messages(&self.buf).map_err(|e| io::Error::other(e.0))?;
            for m in msgs.iter().filter(|m| (first..=last).contains(&m.seq) && m.ty == NLMSG_ERROR) {
                let e = parse_error(m).map_err(|e| io::Error::other(e.0))?;
                if e.errno == 0 {
                    acked += 1;
                } else {
                    failed = true;
                    replies.push(Reply { seq: m.seq, errno: e.errno, msg: e.msg });
                }
            }
        }
    }
}

fn libc_flags(dontwait: bool) -> i32 {
    if dontwait {
        nix::libc::MSG_DONTWAIT
    } else {
        0
    }
}

fn new_fd() -> io::Result<OwnedFd> {
    let fd = unsafe {
        nix::libc::socket(nix::libc::AF_NETLINK, nix::libc::SOCK_RAW | nix::libc::SOCK_CLOEXEC, NETLINK_NETFILTER as i32)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An error from the kernel, with its extended-ack text when it gave one.
pub(crate) fn kernel_error(op: &'static str, object: String, errno: i32, detail: Option<String>) -> Error {
    Error::new(op, object, io::Error::from_raw_os_error(errno)).with_detail(detail)
}
