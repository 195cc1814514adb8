//! SPDY/3 header blocks: `count(32)` then, per pair, `len(32) name len(32) value`
//! (several values of one name are joined by NUL), compressed with zlib primed by the
//! SPDY dictionary. Each direction of a session is one zlib stream: every header block
//! continues the stream of the blocks before it, so a session reads all of them with
//! one [`Decoder`], in order, even those of frames it then ignores.
//!
//! Reading inflates with `miniz_oxide` over a 32 KiB ring whose start holds the
//! dictionary, which is how a preset dictionary looks to the inflater. Writing needs
//! no compressor: deflate's stored blocks are valid compressed data, and what a
//! server sends here is a handful of bytes per stream.

use super::dictionary::{adler32, dictionary};
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// The inflater's window: deflate refers back at most 32 KiB.
const WINDOW: usize = 32 * 1024;
/// The most a header block may grow to when inflated.
const MAX_INFLATED: usize = 256 * 1024;

pub type Headers = Vec<(String, String)>;

/// An empty, non-final stored block: the marker zlib's sync flush writes.
const SYNC_FLUSH: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(pub String);

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SPDY header block: {}", self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, HeaderError> {
    Err(HeaderError(msg.into()))
}

/// The receiving side of a session's header compression.
pub struct Decoder {
    inflater: Box<DecompressorOxide>,
    ring: Vec<u8>,
    pos: usize,
    /// The zlib header (2 bytes, 6 with a dictionary id) not yet read in full.
    zlib_header: Vec<u8>,
    header_done: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        let dict = dictionary();
        let mut ring = vec![0u8; WINDOW];
        ring[..dict.len()].copy_from_slice(dict);
        Decoder {
            inflater: Box::default(),
            ring,
            pos: dict.len(),
            zlib_header: Vec::new(),
            header_done: false,
        }
    }

    /// Reads the zlib stream header off the front of `input`; the rest is deflate data.
    fn strip_zlib_header<'a>(&mut self, mut input: &'a [u8]) -> Result<&'a [u8], HeaderError> {
        while !self.header_done && !input.is_empty() {
            self.zlib_header.push(input[0]);
            input = &input[1..];
            let h = &self.zlib_header;
            if h.len() == 2 {
                if h[0] & 0x0f != 8 || (u16::from(h[0]) << 8 | u16::from(h[1])) % 31 != 0 {
                    return err(format!(
                        "not a zlib stream (header {:02x} {:02x})",
                        h[0], h[1]
                    ));
                }
                self.header_done = h[1] & 0x20 == 0;
            } else if h.len() == 6 {
                let id = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
                if id != adler32(dictionary()) {
                    return err(format!(
                        "compressed with dictionary {id:#010x}, not SPDY/3's"
                    ));
                }
                self.header_done = true;
            }
        }
        Ok(input)
    }

    /// Inflates one frame's header block (the continuation of the session's stream).
    pub fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, HeaderError> {
        let mut input = self.strip_zlib_header(block)?;
        let mut out = Vec::new();
        loop {
            let (status, used, written) = decompress(
                &mut self.inflater,
                input,
                &mut self.ring,
                self.pos,
                inflate_flags::TINFL_FLAG_HAS_MORE_INPUT,
            );
            out.extend_from_slice(&self.ring[self.pos..self.pos + written]);
            self.pos = (self.pos + written) % WINDOW;
            input = &input[used..];
            if out.len() > MAX_INFLATED {
                return err(format!("inflates to more than {MAX_INFLATED} bytes"));
            }
            match status {
                TINFLStatus::HasMoreOutput => continue,
                TINFLStatus::NeedsMoreInput if input.is_empty() => return Ok(out),
                TINFLStatus::NeedsMoreInput => continue,
                TINFLStatus::Done => return err("the peer ended its compression stream"),
                other => return err(format!("corrupt compressed data ({other:?})")),
            }
        }
    }

    /// Inflates and parses one header block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, HeaderError> {
        parse(&self.inflate(block)?)
    }
}

/// The name/value pairs of an inflated header block, names as sent (SPDY sends them
/// in lower case).
pub fn parse(raw: &[u8]) -> Result<Headers, HeaderError> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], HeaderError> {
        let s = raw.get(at..at + n).ok_or_else(|| {
            HeaderError(format!(
                "ends after {at} of the {n} more bytes it announces"
            ))
        })?;
        at += n;
        Ok(s)
    };
    let word = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let count = word(take(4)?);
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = word(take(4)?);
        let name = String::from_utf8_lossy(take(n)?).into_owned();
        let n = word(take(4)?);
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        for v in value.split('\0') {
            headers.push((name.clone(), v.to_string()));
        }
    }
    Ok(headers)
}

/// The sending side of a session's header compression.
#[derive(Default)]
pub struct Encoder {
    started: bool,
}

impl Encoder {
    /// One header block: the pairs, as stored (uncompressed) deflate blocks that
    /// continue this session's zlib stream, which names the SPDY dictionary.
    pub fn encode(&mut self, pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = (pairs.len() as u32).to_be_bytes().to_vec();
        for (name, value) in pairs {
            for s in [name.to_ascii_lowercase().as_str(), *value] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(raw.len() + 16);
        if !self.started {
            // CMF 0x78 (deflate, 32 KiB window), FLG 0xf9 (a dictionary follows, FCHECK).
            out.extend_from_slice(&[0x78, 0xf9]);
            out.extend_from_slice(&adler32(dictionary()).to_be_bytes());
            self.started = true;
        }
        for chunk in raw.chunks(u16::MAX as usize) {
            // BFINAL 0, BTYPE 00 (stored), padded to the byte; LEN and its complement.
            let len = chunk.len() as u16;
            out.push(0);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        // An empty stored block ends each header block, as zlib's sync flush does: an
        // inflater hands out what it has at the end of a block, and Go's would read on
        // into the next frame after a block that carries data.
        out.extend_from_slice(&SYNC_FLUSH);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(h: &Headers) -> Vec<(&str, &str)> {
        h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    #[test]
    fn what_the_encoder_writes_the_decoder_reads_block_after_block() {
        let (mut enc, mut dec) = (Encoder::default(), Decoder::new());
        let blocks = [
            vec![],
            vec![("streamtype", "data"), ("port", "8080"), ("requestid", "0")],
            vec![("Multi", "a\0b")],
        ];
        for b in blocks {
            let got = dec.decode(&enc.encode(&b)).unwrap();
            let want: Vec<(String, String)> = b
                .iter()
                .flat_map(|(n, v)| {
                    v.split('\0')
                        .map(move |v| (n.to_ascii_lowercase(), v.to_string()))
                })
                .collect();
            assert_eq!(got, want);
        }
        // The first block names SPDY/3's dictionary, as peers check.
        let first = Encoder::default().encode(&[]);
        assert_eq!(&first[..6], &[0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2]);
        assert!(
            first.ends_with(&SYNC_FLUSH),
            "each block ends on a flush marker"
        );
    }

    /// Header blocks as Go's `compress/zlib` writes them in kubectl (best compression,
    /// the SPDY dictionary, a sync flush after each block), made with Python's zlib
    /// (the same library family) for three successive SYN_STREAMs of a port-forward:
    /// the later blocks refer back into the dictionary and the earlier blocks.
    const KUBECTL_LIKE: [&str; 3] = [
        "78f9e3c6a7c202253a20e62c82c44f2628dd321a404ae42250ea65b23000a7c392a2d4c45c6851c39a0a8a0800000000ffff",
        "224b2ba8944a04000000ffff",
        "c2aad390284b01000000ffff",
    ];

    #[test]
    fn zlib_compressed_blocks_with_the_dictionary_are_read_in_sequence() {
        let mut dec = Decoder::new();
        let got: Vec<Headers> = KUBECTL_LIKE
            .iter()
            .map(|h| dec.decode(&hex(h)).unwrap())
            .collect();
        assert_eq!(
            pairs(&got[0]),
            vec![("requestid", "0"), ("port", "80"), ("streamtype", "error")]
        );
        assert_eq!(
            pairs(&got[1]),
            vec![("requestid", "0"), ("port", "80"), ("streamtype", "data")]
        );
        assert_eq!(
            pairs(&got[2]),
            vec![("requestid", "1"), ("port", "80"), ("streamtype", "error")]
        );
    }

    #[test]
    fn garbage_and_other_dictionaries_are_refused() {
        assert!(Decoder::new()
            .inflate(&[0x12, 0x34])
            .unwrap_err()
            .0
            .contains("not a zlib stream"));
        assert!(Decoder::new()
            .inflate(&[0x78, 0xf9, 0, 0, 0, 1])
            .unwrap_err()
            .0
            .contains("not SPDY/3's"));
        assert!(parse(&[0, 0, 0, 1, 0, 0, 0, 9, b'x'])
            .unwrap_err()
            .0
            .contains("announces"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
