//! A container log file back into what `kubectl logs` prints: records parsed, the
//! stream tags dropped, `tailLines`, `sinceTime`, `timestamps` and `limitBytes`
//! applied, and with `follow` the file watched until its writer (the shim) is gone.

use super::cri;
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// `PodLogOptions` as the kubelet applies them to one log file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
    /// Records older than this are left out.
    pub since: Option<DateTime<Utc>>,
}

/// What the reader does when it has caught up with a live log: wait a little and say
/// whether to go on (false: the client is gone).
pub trait Idle {
    fn wait(&mut self) -> bool;
}

impl<F: FnMut() -> bool> Idle for F {
    fn wait(&mut self) -> bool {
        self()
    }
}

/// Streams `file` through `sink` (false: stop) as the options say. Without `follow`
/// it stops at the end of the file; with it, once the log has no writer left.
pub fn stream(mut file: File, opts: &LogOptions, sink: &mut dyn FnMut(Vec<u8>) -> bool, idle: &mut dyn Idle) -> io::Result<()> {
    if let Some(n) = opts.tail_lines {
        let start = tail_start(&mut file, n)?;
        file.seek(SeekFrom::Start(start))?;
    }
    let mut out = Output { opts, left: opts.limit_bytes, pending: Vec::new() };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n > 0 {
            let chunk = out.lines(&buf[..n], false);
            if !chunk.is_empty() && !sink(chunk) {
                return Ok(());
            }
            if out.left == Some(0) {
                return Ok(());
            }
            continue;
        }
        // At the end of what is written so far.
        let done = !opts.follow || !super::has_writer(&file);
        if done {
            // The writer may have written more between the read above and its exit.
            let mut rest = Vec::new();
            file.read_to_end(&mut rest)?;
            let chunk = out.lines(&rest, true);
            if !chunk.is_empty() {
                sink(chunk);
            }
            return Ok(());
        }
        if !idle.wait() {
            return Ok(());
        }
    }
}

struct Output<'a> {
    opts: &'a LogOptions,
    /// Bytes still allowed by limitBytes.
    left: Option<u64>,
    /// The start of a record whose newline has not been read yet.
    pending: Vec<u8>,
}

impl Output<'_> {
    /// What the complete records in `data` print as; at `end`, an unterminated last
    /// record counts too.
    fn lines(&mut self, data: &[u8], end: bool) -> Vec<u8> {
        self.pending.extend_from_slice(data);
        let mut printed = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|b| *b == b'\n') {
            self.print(start, start + nl, &mut printed);
            start += nl + 1;
        }
        if end && start < self.pending.len() {
            let len = self.pending.len();
            self.print(start, len, &mut printed);
            start = len;
        }
        self.pending.drain(..start);
        if let Some(left) = self.left.as_mut() {
            printed.truncate(printed.len().min(*left as usize));
            *left -= printed.len() as u64;
        }
        printed
    }

    fn print(&self, from: usize, to: usize, printed: &mut Vec<u8>) {
        let Ok(r) = cri::parse(&self.pending[from..to]) else {
            tracing::debug!(line = %String::from_utf8_lossy(&self.pending[from..to]), "skipping a line that is not a CRI log record");
            return;
        };
        if self.opts.since.is_some_and(|since| r.time < since) {
            return;
        }
        if self.opts.timestamps {
            printed.extend_from_slice(cri::format_time(r.time).as_bytes());
            printed.push(b' ');
        }
        printed.extend_from_slice(r.content);
        if !r.partial {
            printed.push(b'\n');
        }
    }
}

/// The offset where the last `n` records of the file start.
fn tail_start(file: &mut File, n: u64) -> io::Result<u64> {
    let len = file.metadata()?.len();
    if n == 0 {
        return Ok(len);
    }
    let mut seen = 0u64;
    let mut end = len;
    let mut buf = vec![0u8; 8192];
    // The newline that ends the last record does not start a record.
    let mut skip_last = true;
    while end > 0 {
        let from = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(chunk)?;
        for i in (0..chunk.len()).rev() {
            if chunk[i] != b'\n' {
                continue;
            }
            let at = from + i as u64;
            if skip_last && at == len - 1 {
                continue;
            }
            seen += 1;
            if seen == n {
                return Ok(at + 1);
            }
        }
        skip_last = false;
        end = from;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container_log::cri::{encode, Stream};
    use chrono::TimeZone;
    use std::io::Write;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, s).unwrap()
    }

    fn log_file(records: &[(u32, Stream, bool, &str)]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for (s, stream, partial, text) in records {
            f.write_all(&encode(at(*s), *stream, *partial, text.as_bytes())).unwrap();
        }
        f
    }

    fn read(f: &tempfile::NamedTempFile, opts: &LogOptions) -> String {
        let mut out = Vec::new();
        stream(File::open(f.path()).unwrap(), opts, &mut |c| { out.extend(c); true }, &mut || true).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn sample() -> tempfile::NamedTempFile {
        log_file(&[(1, Stream::Stdout, false, "one"), (2, Stream::Stderr, false, "two"), (3, Stream::Stdout, true, "thr"), (3, Stream::Stdout, false, "ee"), (4, Stream::Stdout, false, "four")])
    }

    #[test]
    fn both_streams_print_in_order_and_partial_records_join_into_one_line() {
        assert_eq!(read(&sample(), &LogOptions::default()), "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn tail_lines_counts_records_from_the_end() {
        let f = sample();
        let tail = |n| read(&f, &LogOptions { tail_lines: Some(n), ..Default::default() });
        assert_eq!(tail(1), "four\n");
        assert_eq!(tail(3), "three\nfour\n");
        assert_eq!(tail(0), "");
        assert_eq!(tail(99), "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn timestamps_prefix_each_record_with_nine_digit_time() {
        let f = log_file(&[(1, Stream::Stdout, false, "one")]);
        assert_eq!(read(&f, &LogOptions { timestamps: true, ..Default::default() }), "2024-05-01T12:00:01.000000000Z one\n");
    }

    #[test]
    fn since_leaves_out_older_records_and_limit_bytes_cuts_the_output() {
        let f = sample();
        assert_eq!(read(&f, &LogOptions { since: Some(at(3)), ..Default::default() }), "three\nfour\n");
        assert_eq!(read(&f, &LogOptions { limit_bytes: Some(6), ..Default::default() }), "one\ntw");
    }

    #[test]
    fn lines_that_are_not_records_are_skipped() {
        let mut f = sample();
        f.write_all(b"garbage\n").unwrap();
        assert_eq!(read(&f, &LogOptions { tail_lines: Some(2), ..Default::default() }), "four\n");
    }

    #[test]
    fn follow_returns_what_the_writer_adds_and_ends_when_it_lets_go() {
        let f = log_file(&[(1, Stream::Stdout, false, "one")]);
        let writer = std::fs::OpenOptions::new().append(true).open(f.path()).unwrap();
        super::super::lock(&writer, libc::LOCK_EX).unwrap();
        let mut out = Vec::new();
        let mut waits = 0;
        let mut writer = Some(writer);
        let opts = LogOptions { follow: true, ..Default::default() };
        stream(File::open(f.path()).unwrap(), &opts, &mut |c| { out.extend(c); true }, &mut || {
            waits += 1;
            match waits {
                1 => { writer.as_mut().unwrap().write_all(&encode(at(2), Stream::Stdout, false, b"two")).unwrap(); }
                // The writer exits after a last, unterminated write.
                2 => { writer.take().unwrap().write_all(b"2024-05-01T12:00:03Z stdout F three").unwrap(); }
                _ => panic!("follow did not end once the writer was gone"),
            }
            true
        }).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "one\ntwo\nthree\n");
    }
}
