//! SCTP for kernels without it (no CONFIG_IP_SCTP): the association handshake done in
//! user space over raw IP sockets (protocol 132), so that `porter`'s SCTP ports and
//! `connect --protocol=sctp` still send and answer real SCTP packets. They cross
//! veths, bridges, conntrack (which tracks SCTP without the SCTP stack), Service DNAT
//! and NetworkPolicy exactly as the kernel's own SCTP would.
//!
//! What is done (RFC 9260): INIT -> INIT-ACK (with a state cookie) -> COOKIE-ECHO ->
//! COOKIE-ACK, then one DATA each way (the client's payload, the server's value),
//! then the client ABORTs. The server keeps no state: its cookie carries both tags.
//! A raw socket sees every SCTP packet of its network namespace; each side keeps only
//! packets for its own port (and, for the client, its own tags). A kernel that has a
//! raw socket for a protocol it does not implement answers nothing itself.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub const IPPROTO_SCTP: i32 = 132;

const DATA: u8 = 0;
const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const SACK: u8 = 3;
const ABORT: u8 = 6;
const COOKIE_ECHO: u8 = 10;
const COOKIE_ACK: u8 = 11;
/// The State Cookie parameter of an INIT-ACK.
const STATE_COOKIE: u16 = 7;
const A_RWND: u32 = 65536;

/// CRC32c (Castagnoli), as SCTP's checksum uses it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub kind: u8,
    pub flags: u8,
    pub value: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
    pub chunks: Vec<Chunk>,
}

impl Packet {
    /// The packet on the wire, checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&self.src_port.to_be_bytes());
        b.extend_from_slice(&self.dst_port.to_be_bytes());
        b.extend_from_slice(&self.vtag.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        for c in &self.chunks {
            b.push(c.kind);
            b.push(c.flags);
            b.extend_from_slice(&((4 + c.value.len()) as u16).to_be_bytes());
            b.extend_from_slice(&c.value);
            while b.len() % 4 != 0 {
                b.push(0);
            }
        }
        let sum = crc32c(&b);
        // SCTP sends the CRC's bytes least significant first.
        b[8..12].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// A packet whose checksum holds; anything else is None.
    pub fn decode(b: &[u8]) -> Option<Packet> {
        if b.len() < 12 {
            return None;
        }
        let mut zeroed = b.to_vec();
        zeroed[8..12].copy_from_slice(&[0; 4]);
        if crc32c(&zeroed).to_le_bytes() != b[8..12] {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let mut p = Packet { src_port: u16_at(0), dst_port: u16_at(2), vtag: u32::from_be_bytes(b[4..8].try_into().ok()?), chunks: vec![] };
        let mut i = 12;
        while i + 4 <= b.len() {
            let len = u16_at(i + 2) as usize;
            if len < 4 || i + len > b.len() {
                return None;
            }
            p.chunks.push(Chunk { kind: b[i], flags: b[i + 1], value: b[i + 4..i + len].to_vec() });
            i += len.div_ceil(4) * 4;
        }
        Some(p)
    }

    fn first(&self, kind: u8) -> Option<&Chunk> {
        self.chunks.iter().find(|c| c.kind == kind)
    }
}

/// INIT / INIT-ACK's fixed part: initiate tag, a_rwnd, streams, initial TSN.
fn init_value(tag: u32, tsn: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&tag.to_be_bytes());
    v.extend_from_slice(&A_RWND.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes());
    v.extend_from_slice(&tsn.to_be_bytes());
    v
}

fn initiate_tag(c: &Chunk) -> Option<(u32, u32)> {
    (c.value.len() >= 16).then(|| (u32::from_be_bytes(c.value[0..4].try_into().unwrap()), u32::from_be_bytes(c.value[12..16].try_into().unwrap())))
}

fn data_chunk(tsn: u32, payload: &[u8]) -> Chunk {
    let mut v = Vec::with_capacity(12 + payload.len());
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(payload);
    // Beginning and end of an unfragmented message.
    Chunk { kind: DATA, flags: 0x03, value: v }
}

fn sack_chunk(cum_tsn: u32) -> Chunk {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(&cum_tsn.to_be_bytes());
    v.extend_from_slice(&A_RWND.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    Chunk { kind: SACK, flags: 0, value: v }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b)).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        b = (t.subsec_nanos() ^ std::process::id()).to_be_bytes();
    }
    u32::from_be_bytes(b).max(1)
}

/// A raw SCTP socket of this family.
fn raw(v6: bool) -> io::Result<Socket> {
    Socket::new(if v6 { Domain::IPV6 } else { Domain::IPV4 }, Type::RAW, Some(Protocol::from(IPPROTO_SCTP)))
}

/// One received SCTP packet and where it came from. IPv4 raw sockets deliver the IP
/// header too; IPv6 ones do not.
fn recv(sock: &Socket, v6: bool) -> io::Result<Option<(IpAddr, Packet)>> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    let (n, from) = sock.recv_from(&mut buf)?;
    // SAFETY: recv_from initialised the first n bytes.
    let b: &[u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, n) };
    let Some(from) = from.as_socket() else { return Ok(None) };
    let body = if v6 {
        b
    } else {
        let ihl = (b.first().copied().unwrap_or(0) & 0x0f) as usize * 4;
        if ihl < 20 || b.len() < ihl {
            return Ok(None);
        }
        &b[ihl..]
    };
    Ok(Packet::decode(body).map(|p| (from.ip(), p)))
}

fn send(sock: &Socket, to: IpAddr, p: &Packet) -> io::Result<()> {
    sock.send_to(&p.encode(), &SockAddr::from(SocketAddr::new(to, 0))).map(|_| ())
}

/// Serves SCTP on `port` (IPv4, as porter binds) until an error: each association is
/// answered, and each message gets `value` back. Blocking; run it on a thread.
pub fn serve_v4(port: u16, value: &str) -> io::Result<()> {
    let sock = raw(false)?;
    let secret = random_u32();
    loop {
        let Some((from, p)) = recv(&sock, false)? else { continue };
        if p.dst_port != port {
            continue;
        }
        let reply = |vtag: u32, chunks: Vec<Chunk>| Packet { src_port: port, dst_port: p.src_port, vtag, chunks };
        if let Some(init) = p.first(INIT) {
            let Some((peer_tag, peer_tsn)) = initiate_tag(init) else { continue };
            let my_tag = random_u32();
            // The cookie: both tags and the peer's TSN, sealed with a per-process secret.
            let mut cookie = Vec::with_capacity(16);
            for x in [peer_tag, my_tag, peer_tsn, peer_tag ^ my_tag ^ peer_tsn ^ secret] {
                cookie.extend_from_slice(&x.to_be_bytes());
            }
            let mut v = init_value(my_tag, my_tag);
            v.extend_from_slice(&STATE_COOKIE.to_be_bytes());
            v.extend_from_slice(&((4 + cookie.len()) as u16).to_be_bytes());
            v.extend_from_slice(&cookie);
            send(&sock, from, &reply(peer_tag, vec![Chunk { kind: INIT_ACK, flags: 0, value: v }]))?;
        } else if let Some(echo) = p.first(COOKIE_ECHO) {
            let c = &echo.value;
            if c.len() < 16 {
                continue;
            }
            let w = |i: usize| u32::from_be_bytes(c[i..i + 4].try_into().unwrap());
            let (peer_tag, my_tag, peer_tsn) = (w(0), w(4), w(8));
            if w(12) != peer_tag ^ my_tag ^ peer_tsn ^ secret || p.vtag != my_tag {
                continue;
            }
            send(&sock, from, &reply(peer_tag, vec![Chunk { kind: COOKIE_ACK, flags: 0, value: vec![] }]))?;
            // The client's message comes bundled with its COOKIE-ECHO.
            if let Some(d) = p.first(DATA) {
                let tsn = u32::from_be_bytes(d.value.get(0..4).and_then(|s| s.try_into().ok()).unwrap_or_default());
                send(&sock, from, &reply(peer_tag, vec![sack_chunk(tsn), data_chunk(my_tag, value.as_bytes())]))?;
            }
        }
    }
}

/// An association to `addr` on which `payload` is sent and an answer read, within
/// `timeout`. Errors: `TimedOut` when nothing (or not the whole exchange) came back.
pub fn exchange(addr: SocketAddr, payload: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let v6 = addr.is_ipv6();
    let sock = raw(v6)?;
    let deadline = Instant::now() + timeout;
    let my_port = 32768 + (random_u32() % 28000) as u16;
    let my_tag = random_u32();
    let my_tsn = my_tag;
    let packet = |vtag: u32, chunks: Vec<Chunk>| Packet { src_port: my_port, dst_port: addr.port(), vtag, chunks };
    let init = packet(0, vec![Chunk { kind: INIT, flags: 0, value: init_value(my_tag, my_tsn) }]);
    let mut peer: Option<u32> = None;
    let mut sent_at = Instant::now();
    send(&sock, addr.ip(), &init)?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if let Some(tag) = peer {
                let _ = send(&sock, addr.ip(), &packet(tag, vec![Chunk { kind: ABORT, flags: 0, value: vec![] }]));
            }
            return Err(io::Error::new(io::ErrorKind::TimedOut, "i/o timeout"));
        }
        // INIT is retransmitted after a lost first try, as the kernel's SCTP would.
        sock.set_read_timeout(Some(left.min(Duration::from_millis(300))))?;
        let got = match recv(&sock, v6) {
            Ok(g) => g,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if peer.is_none() && sent_at.elapsed() >= Duration::from_millis(300) {
                    send(&sock, addr.ip(), &init)?;
                    sent_at = Instant::now();
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some((_, p)) = got else { continue };
        if p.dst_port != my_port || p.src_port != addr.port() || p.vtag != my_tag {
            continue;
        }
        if p.first(ABORT).is_some() {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused"));
        }
        if let Some(ack) = p.first(INIT_ACK) {
            let Some((tag, _)) = initiate_tag(ack) else { continue };
            // The state cookie parameter, echoed back as it came.
            let mut i = 16;
            let mut cookie = None;
            while i + 4 <= ack.value.len() {
                let kind = u16::from_be_bytes([ack.value[i], ack.value[i + 1]]);
                let len = u16::from_be_bytes([ack.value[i + 2], ack.value[i + 3]]) as usize;
                if len < 4 || i + len > ack.value.len() {
                    break;
                }
                if kind == STATE_COOKIE {
                    cookie = Some(ack.value[i + 4..i + len].to_vec());
                }
                i += len.div_ceil(4) * 4;
            }
            let Some(cookie) = cookie else { continue };
            peer = Some(tag);
            let echo = packet(tag, vec![Chunk { kind: COOKIE_ECHO, flags: 0, value: cookie }, data_chunk(my_tsn, payload)]);
            send(&sock, addr.ip(), &echo)?;
        } else if let (Some(d), Some(tag)) = (p.first(DATA), peer) {
            let answer = d.value.get(12..).unwrap_or_default().to_vec();
            let _ = send(&sock, addr.ip(), &packet(tag, vec![Chunk { kind: ABORT, flags: 0, value: vec![] }]));
            return Ok(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnolis() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn packets_round_trip_and_a_bad_checksum_is_refused() {
        let p = Packet { src_port: 40000, dst_port: 80, vtag: 0, chunks: vec![Chunk { kind: INIT, flags: 0, value: init_value(7, 9) }, data_chunk(9, b"abc")] };
        let wire = p.encode();
        assert_eq!(wire.len() % 4, 0);
        assert_eq!(Packet::decode(&wire), Some(p.clone()));
        let mut bad = wire.clone();
        bad[13] ^= 1;
        assert_eq!(Packet::decode(&bad), None);
    }
}
