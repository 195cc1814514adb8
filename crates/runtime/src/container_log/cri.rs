//! The CRI container log format, one record per line, as containerd writes it and the
//! kubelet reads it:
//!
//! ```text
//! 2016-10-06T00:17:09.669794202Z stdout F the whole line
//! 2016-10-06T00:17:09.669794202Z stderr P the first 16 KiB of a longer line...
//! ```
//!
//! Time (RFC 3339, UTC, nanoseconds), stream, tag (`F` a full line, `P` a partial one
//! that the next record of the stream continues), and the content without its newline.

use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: DateTime<Utc>,
    pub stream: Stream,
    /// `P`: the line goes on in the next record.
    pub partial: bool,
    pub content: &'a [u8],
}

/// `2016-10-06T00:17:09.669794202Z`: always nine digits, as the kubelet prints them.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// One record, newline included.
pub fn encode(time: DateTime<Utc>, stream: Stream, partial: bool, content: &[u8]) -> Vec<u8> {
    let head = format!("{} {} {} ", format_time(time), stream.as_str(), if partial { 'P' } else { 'F' });
    let mut out = Vec::with_capacity(head.len() + content.len() + 1);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(content);
    out.push(b'\n');
    out
}

/// Parses one record (without its trailing newline).
pub fn parse(line: &[u8]) -> Result<Record<'_>, String> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let (Some(time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("not a CRI log record (want `<time> <stream> <tag> <content>`): {:?}", String::from_utf8_lossy(line)));
    };
    let content = parts.next().unwrap_or_default();
    let time = std::str::from_utf8(time)
        .ok()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or_else(|| format!("bad time {:?} in a CRI log record", String::from_utf8_lossy(time)))?
        .with_timezone(&Utc);
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        other => return Err(format!("bad stream {:?} in a CRI log record (want stdout or stderr)", String::from_utf8_lossy(other))),
    };
    // Tags may carry more flags after `:`; only the first one matters here.
    let partial = match tag.split(|b| *b == b':').next().unwrap_or_default() {
        b"P" => true,
        b"F" => false,
        other => return Err(format!("bad tag {:?} in a CRI log record (want F or P)", String::from_utf8_lossy(other))),
    };
    Ok(Record { time, stream, partial, content })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2016, 10, 6, 0, 17, 9).unwrap() + chrono::Duration::nanoseconds(669_794_000)
    }

    #[test]
    fn a_record_round_trips_with_nine_digit_time() {
        let line = encode(t(), Stream::Stderr, false, b"hello world");
        assert_eq!(line, b"2016-10-06T00:17:09.669794000Z stderr F hello world\n");
        let r = parse(&line[..line.len() - 1]).unwrap();
        assert_eq!(r, Record { time: t(), stream: Stream::Stderr, partial: false, content: b"hello world" });
    }

    #[test]
    fn partial_records_and_empty_lines_parse() {
        let r = parse(b"2016-10-06T00:17:09.669794000Z stdout P abc").unwrap();
        assert!(r.partial);
        assert_eq!(r.content, b"abc");
        assert_eq!(parse(b"2016-10-06T00:17:09Z stdout F ").unwrap().content, b"");
        assert_eq!(parse(b"2016-10-06T00:17:09Z stdout F:x y").unwrap().content, b"y");
    }

    #[test]
    fn garbage_is_refused_with_what_was_wrong() {
        assert!(parse(b"hello").unwrap_err().contains("not a CRI log record"));
        assert!(parse(b"yesterday stdout F x").unwrap_err().contains("bad time"));
        assert!(parse(b"2016-10-06T00:17:09Z stdin F x").unwrap_err().contains("bad stream"));
        assert!(parse(b"2016-10-06T00:17:09Z stdout X x").unwrap_err().contains("bad tag"));
    }
}
