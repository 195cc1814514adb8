//! SPDY/3.1 frames (SPDY draft 3.1, section 2.2): parsing from a byte buffer that may
//! hold part of a frame, and encoding of the frames a server sends. Header blocks are
//! left compressed here; [`super::header_block`] reads and writes them.
//!
//! A control frame: `1 | version(15) | type(16) | flags(8) | length(24) | data`.
//! A data frame:    `0 | stream id(31) | flags(8) | length(24) | data`.

use bytes::{Buf, Bytes, BytesMut};

pub const VERSION: u16 = 3;
/// The FIN flag, on data frames and on SYN_STREAM/SYN_REPLY/HEADERS.
pub const FLAG_FIN: u8 = 0x01;
const HEADER_LEN: usize = 8;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes used here.
pub mod status {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        flags: u8,
        header_block: Bytes,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        header_block: Bytes,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings,
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        header_block: Bytes,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        payload: Bytes,
    },
    /// A control frame type this side does not know; the specification says to ignore it.
    Unknown {
        kind: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    UnsupportedVersion(u16),
    /// A control frame too short for its type.
    Truncated {
        kind: u16,
        length: usize,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::UnsupportedVersion(v) => write!(f, "SPDY control frame of version {v}; only SPDY/3.1 is spoken"),
            FrameError::Truncated { kind, length } => write!(f, "SPDY control frame of type {kind} is {length} bytes long, too short for its fields"),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Takes one whole frame off the front of `buf`, or None when it holds less than one.
pub fn parse(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let first = u32_at(buf, 0);
    let flags = buf[4];
    let length = (u32_at(buf, 4) & 0x00ff_ffff) as usize;
    if buf.len() < HEADER_LEN + length {
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let body = buf.split_to(length).freeze();
    if first & 0x8000_0000 == 0 {
        return Ok(Some(Frame::Data {
            stream_id: first & 0x7fff_ffff,
            flags,
            payload: body,
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    let kind = (first & 0xffff) as u16;
    let need = |n: usize| {
        if length < n {
            Err(FrameError::Truncated { kind, length })
        } else {
            Ok(())
        }
    };
    let id = |at: usize| u32_at(&body, at) & 0x7fff_ffff;
    Ok(Some(match kind {
        SYN_STREAM => {
            // stream id, associated-to stream id, priority and slot, then the headers.
            need(10)?;
            Frame::SynStream {
                stream_id: id(0),
                flags,
                header_block: body.slice(10..),
            }
        }
        SYN_REPLY => {
            need(4)?;
            Frame::SynReply {
                stream_id: id(0),
                flags,
                header_block: body.slice(4..),
            }
        }
        RST_STREAM => {
            need(8)?;
            Frame::RstStream {
                stream_id: id(0),
                status: u32_at(&body, 4),
            }
        }
        SETTINGS => Frame::Settings,
        PING => {
            need(4)?;
            Frame::Ping {
                id: u32_at(&body, 0),
            }
        }
        GOAWAY => {
            need(8)?;
            Frame::GoAway {
                last_good_stream_id: id(0),
                status: u32_at(&body, 4),
            }
        }
        HEADERS => {
            need(4)?;
            Frame::Headers {
                stream_id: id(0),
                flags,
                header_block: body.slice(4..),
            }
        }
        WINDOW_UPDATE => {
            need(8)?;
            Frame::WindowUpdate {
                stream_id: id(0),
                delta: u32_at(&body, 4) & 0x7fff_ffff,
            }
        }
        other => Frame::Unknown { kind: other },
    }))
}

fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&((0x8000u32 | VERSION as u32) << 16 | kind as u32).to_be_bytes());
    out.extend_from_slice(&((flags as u32) << 24 | body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The most a data frame carries here (the length field allows 16 MiB).
pub const MAX_DATA: usize = 32 * 1024;

/// A data frame; `payload` must be at most [`MAX_DATA`] bytes.
pub fn data(stream_id: u32, fin: bool, payload: &[u8]) -> Vec<u8> {
    debug_assert!(payload.len() <= MAX_DATA);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
    let flags = if fin { FLAG_FIN as u32 } else { 0 };
    out.extend_from_slice(&(flags << 24 | payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// SYN_REPLY for a stream the client opened, with an encoded header block.
pub fn syn_reply(stream_id: u32, header_block: &[u8]) -> Vec<u8> {
    let mut body = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
    body.extend_from_slice(header_block);
    control(SYN_REPLY, 0, &body)
}

pub fn rst_stream(stream_id: u32, status: u32) -> Vec<u8> {
    let mut body = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
    body.extend_from_slice(&status.to_be_bytes());
    control(RST_STREAM, 0, &body)
}

pub fn ping(id: u32) -> Vec<u8> {
    control(PING, 0, &id.to_be_bytes())
}

pub fn goaway(last_good_stream_id: u32, status: u32) -> Vec<u8> {
    let mut body = (last_good_stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
    body.extend_from_slice(&status.to_be_bytes());
    control(GOAWAY, 0, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn_stream(stream_id: u32, flags: u8, header_block: &[u8]) -> Vec<u8> {
        let mut body = stream_id.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(header_block);
        control(SYN_STREAM, flags, &body)
    }

    #[test]
    fn frames_are_taken_whole_from_a_buffer_that_fills_a_byte_at_a_time() {
        let mut wire = syn_stream(1, FLAG_FIN, b"hdrs");
        wire.extend(data(3, true, b"hello"));
        wire.extend(ping(7));
        let mut buf = BytesMut::new();
        let mut got = vec![];
        for b in wire {
            buf.extend_from_slice(&[b]);
            while let Some(f) = parse(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![
                Frame::SynStream {
                    stream_id: 1,
                    flags: FLAG_FIN,
                    header_block: Bytes::from_static(b"hdrs")
                },
                Frame::Data {
                    stream_id: 3,
                    flags: FLAG_FIN,
                    payload: Bytes::from_static(b"hello")
                },
                Frame::Ping { id: 7 },
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn what_a_server_sends_parses_back() {
        let mut buf = BytesMut::new();
        for f in [
            syn_reply(5, b"x"),
            rst_stream(5, status::INVALID_STREAM),
            goaway(5, 0),
            data(5, false, &[]),
        ] {
            buf.extend_from_slice(&f);
        }
        assert_eq!(
            parse(&mut buf).unwrap(),
            Some(Frame::SynReply {
                stream_id: 5,
                flags: 0,
                header_block: Bytes::from_static(b"x")
            })
        );
        assert_eq!(
            parse(&mut buf).unwrap(),
            Some(Frame::RstStream {
                stream_id: 5,
                status: status::INVALID_STREAM
            })
        );
        assert_eq!(
            parse(&mut buf).unwrap(),
            Some(Frame::GoAway {
                last_good_stream_id: 5,
                status: 0
            })
        );
        assert_eq!(
            parse(&mut buf).unwrap(),
            Some(Frame::Data {
                stream_id: 5,
                flags: 0,
                payload: Bytes::new()
            })
        );
        assert_eq!(parse(&mut buf).unwrap(), None);
    }

    #[test]
    fn other_versions_and_short_control_frames_are_refused_unknown_types_kept() {
        let mut v2 = control(PING, 0, &1u32.to_be_bytes());
        v2[1] = 2;
        assert_eq!(
            parse(&mut BytesMut::from(&v2[..])),
            Err(FrameError::UnsupportedVersion(2))
        );
        assert_eq!(
            parse(&mut BytesMut::from(
                &control(RST_STREAM, 0, &[0, 0, 0, 1])[..]
            )),
            Err(FrameError::Truncated {
                kind: RST_STREAM,
                length: 4
            })
        );
        assert_eq!(
            parse(&mut BytesMut::from(&control(0x42, 0, &[1, 2])[..])).unwrap(),
            Some(Frame::Unknown { kind: 0x42 })
        );
    }
}
